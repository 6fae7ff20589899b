#!/usr/bin/env python3
"""Selects the official FHIRPath test cases for FHIR R4 that fall inside fhir_model's FHIRPath subset.

Reads tests-fhir-r4.xml, the HL7 FHIRPath test cases for FHIR R4 as shipped in the npm package
fhirpath@3.0.0 (converter/dataset/fhir-r4.xml, with the inputs it names in converter/dataset/input/),
and writes tests/data/fhirpath-r4-cases.json, which tests/fhir_model/fhirpath_official_test.cpp runs
against fhir_model/src/fhirpath.cpp on the JSON twins of those inputs (tests/data/r4-examples/).
Prints how many cases the file holds, how many were selected, and the rejections tallied by reason.
Python 3 stdlib only. With the package unpacked in DIR (`npm pack fhirpath@3.0.0 && tar xzf
fhirpath-3.0.0.tgz` there):

    python3 fhir_model/generator/fhirpath_cases.py DIR/package/converter/dataset/fhir-r4.xml

The selection rule. A case is taken when none of these applies (a rejected case is tallied under the
first that does, in this order):

1. its input has no JSON twin in tests/data/r4-examples/: the twin is named {resourceType}-{id}.json
   after the XML input beside fhir-r4.xml (questionnaire-example.xml is Questionnaire-3141.json);
   valueset-example-expansion.xml has none there, ValueSet not being a type the server stores.
2. predicate="true": the expected output is whether the result is non-empty, a mode of running an
   expression that search values never use. (predicate="false" is the default and is honoured.)
3. a mode attribute (mode="strict", with or without checkOrderedFunctions): the case expects an error
   from checking paths against the model before evaluation (`name.given1`, `Observation.valueQuantity`);
   the evaluator has no strict mode: an unknown element is an empty result, as FHIRPath itself says.
   (ordered="false" would be honoured, but no case with it survives rule 4.)
4. the expression is outside the subset's syntax, which is the grammar of fhirpath.cpp's parser as
   mirrored by search_parameters.check (imported below, so that there is one mirror):
     - paths of identifiers, `backtick-delimited` identifiers included;
     - literals: 'strings' (with \\-escapes), non-negative integers, true, false; nothing else (no
       decimals, no @dates or @times, no quantities, no {}, no %variables, no $this);
     - operators: `.`, `[integer]`, `|`, `=`, `!=`, `and`, `or`, `is T`, `as T`, parentheses;
       not: unary + and -, * / div mod + - &, < <= > >=, ~ !~, xor, implies, in, contains;
     - functions: where(criteria), exists(), exists(criteria), empty(), not(), first(), as(T),
       ofType(T), is(T), resolve(), extension(url); every other function (count(), select(),
       today(), type(), ...) is outside.
5. the expression expects an error that only evaluation could raise (the case's invalid attribute is
   set although the expression is inside the syntax, e.g. `(1|2).not()`): the evaluator has no run-time
   errors; where FHIRPath would raise one (a Boolean from a collection of more than one item) it gives
   empty, which is what search value extraction wants (a resource is never refused for how an index
   expression reads it).
6. the case is one of ERRATA below: its expectation contradicts the FHIRPath N1 specification, and
   HL7 corrected it in later revisions of the suite; the evaluator follows the specification.

For each selected case the JSON holds group, name, input (the JSON twin's file name), expression,
outputs as [type, text] in order, and error (true when the case expects the expression to fail).
"""
import argparse
import collections
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

from search_parameters import Unsupported, check

SOURCE = ("fhirpath@3.0.0 converter/dataset/fhir-r4.xml: the official FHIRPath test cases for FHIR R4 "
          "(HL7 tests-fhir-r4.xml)")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(REPO, "tests", "data", "r4-examples")
OUT = os.path.join(REPO, "tests", "data", "fhirpath-r4-cases.json")
FHIR_NS = "{http://hl7.org/fhir}"

# Cases whose expected output contradicts FHIRPath N1 (http://hl7.org/fhirpath/N1/), by name and
# expression, with the clause and HL7's later correction (tests-fhir-r5.xml in FHIR/fhir-test-cases).
ERRATA = {
    ("testIntegerBooleanNotTrue", "(0).not() = true"):
        "§4.5 singleton evaluation: a single Integer evaluated as a Boolean is true (there is no implicit "
        "Integer-to-Boolean conversion), so (0).not() is false; corrected to `(0).not() = false`, true",
    ("testPrecedence4", "1 | 1 is Integer"):
        "§6 operator precedence: `is` (#6) binds tighter than `|` (#7), so this is 1 | (1 is Integer), "
        "[1, true]; corrected to `(1 | 1 is Integer).count()`, 2",
}


def json_twin(input_dir, input_file):
    """{resourceType}-{id}.json of an XML input, from its root element and id."""
    root = ET.parse(os.path.join(input_dir, input_file)).getroot()
    resource_type = root.tag.replace(FHIR_NS, "")
    resource_id = root.find(FHIR_NS + "id").get("value")
    return f"{resource_type}-{resource_id}.json"


# Every token of FHIRPath N1's lexer, used only to name what puts an expression outside the subset in
# the printed tally (the decision is search_parameters.check's).
FULL_TOKEN = re.compile(r"\s*(?:(?P<datetime>@[0-9T][0-9T:.+\-Z]*)|(?P<str>'(?:[^'\\]|\\.)*')"
                        r"|(?P<num>\d+(?:\.\d+)?)|(?P<var>%(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)|\$[a-z]+)"
                        r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)"
                        r"|(?P<sym><=|>=|!=|!~|[<>=~+\-*/&|.()\[\]{},]))")
UNITS = {"year", "years", "month", "months", "week", "weeks", "day", "days", "hour", "hours", "minute",
         "minutes", "second", "seconds", "millisecond", "milliseconds"}
WORD_OPERATORS = {"div": "arithmetic (+ - * / div mod)", "mod": "arithmetic (+ - * / div mod)",
                  "xor": "xor, implies", "implies": "xor, implies", "in": "in, contains",
                  "contains": "in, contains"}
SYMBOL_OPERATORS = {"<": "ordering (< <= > >=)", "<=": "ordering (< <= > >=)", ">": "ordering (< <= > >=)",
                    ">=": "ordering (< <= > >=)", "~": "equivalence (~ !~)", "!~": "equivalence (~ !~)",
                    "*": "arithmetic (+ - * / div mod)", "/": "arithmetic (+ - * / div mod)",
                    "&": "string concatenation (&)", "{": "empty collection literal {}"}


def full_tokens(text):
    out, pos = [], 0
    while text[pos:].strip():
        m = FULL_TOKEN.match(text, pos)
        if not m:
            return out + [("other", text[pos:].strip())]
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return out


def outside_construct(expression, message):
    """What FHIRPath construct outside the subset the expression uses (for the tally)."""
    if message.startswith("unsupported function"):
        return "function " + message.removeprefix("unsupported function ")
    toks = full_tokens(expression)
    for i, (kind, text) in enumerate(toks):
        before = toks[i - 1] if i > 0 else None
        after = toks[i + 1] if i + 1 < len(toks) else None
        if kind == "datetime":
            return "date/time literal (@...)"
        if kind == "var":
            return "$this, $total, %variable"
        if kind == "num" and after and (after[0] == "str" or after[1] in UNITS):
            return "quantity literal"
        if kind == "num" and "." in text and not (before and before[1] == "."):
            return "decimal literal"
        if kind == "id" and text in WORD_OPERATORS and before and before[1] != ".":
            return WORD_OPERATORS[text]
        if kind == "sym" and text in SYMBOL_OPERATORS:
            return SYMBOL_OPERATORS[text]
        if kind == "sym" and text in "+-":
            polarity = before is None or before[0] == "sym" and before[1] not in ")]" \
                or before[1] in ("and", "or", "is", "as")
            return "unary + or - (polarity)" if polarity else "arithmetic (+ - * / div mod)"
    return message


def rejection(test, expression, invalid, twin):
    """(rule, detail) of the first rule (see the module's docstring) that rejects the case, or None."""
    if twin is None:
        return "1 input has no JSON twin in tests/data/r4-examples", None
    if test.get("predicate") == "true":
        return "2 predicate=\"true\"", None
    if test.get("mode"):
        return f"3 mode=\"{test.get('mode')}\" (the evaluator has no strict mode)", None
    try:
        check(expression)
    except Unsupported as e:
        return "4 outside the subset's syntax", outside_construct(expression, str(e))
    if invalid:
        return "5 expects an error that only evaluation could raise", None
    if (test.get("name"), expression) in ERRATA:
        return "6 an erratum of the suite (see ERRATA)", None
    return None


def select(xml_path):
    """All cases of the file, those selected, and the rejections tallied by rule and by construct."""
    input_dir = os.path.join(os.path.dirname(xml_path), "input")
    twins = {}
    selected, total = [], 0
    rules, constructs = collections.Counter(), collections.Counter()
    for group in ET.parse(xml_path).getroot().iter("group"):
        for test in group.findall("test"):
            total += 1
            node = test.find("expression")
            expression = (node.text or "").strip()
            invalid = node.get("invalid") is not None
            input_file = test.get("inputfile")
            if input_file not in twins:
                twin = json_twin(input_dir, input_file)
                twins[input_file] = twin if os.path.exists(os.path.join(EXAMPLES, twin)) else None
            rejected = rejection(test, expression, invalid, twins[input_file])
            if rejected:
                rules[rejected[0]] += 1
                if rejected[1]:
                    constructs[rejected[1]] += 1
                continue
            selected.append({
                "group": group.get("name"),
                "name": test.get("name") or "(unnamed)",
                "input": twins[input_file],
                "expression": expression,
                "outputs": [[o.get("type"), o.text or ""] for o in test.findall("output")],
                "error": invalid,
            })
    return total, selected, rules, constructs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("xml", help="path of fhir-r4.xml (fhirpath@3.0.0's converter/dataset/fhir-r4.xml)")
    args = parser.parse_args()
    total, selected, rules, constructs = select(args.xml)
    document = {
        "generated": "GENERATED by fhir_model/generator/fhirpath_cases.py; do not edit. Regenerate with "
                     "`python3 fhir_model/generator/fhirpath_cases.py PATH/fhir-r4.xml`.",
        "source": SOURCE,
        "selection": "the cases inside fhir_model's FHIRPath subset, by the rule in the generator's header",
        "total": total,
        "selected": len(selected),
        "rejected": {rule: rules[rule] for rule in sorted(rules)},
    }
    # One case a line, so that a regeneration's diff reads case by case.
    head = json.dumps(document, indent=1, ensure_ascii=False)[:-2]
    cases = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in selected)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(head + ',\n "cases": [\n' + cases + "\n ]\n}\n")
    print(f"{total} cases in {args.xml}; {len(selected)} selected, {total - len(selected)} rejected:")
    for rule, count in sorted(rules.items()):
        print(f"  {count:4d}  rule {rule}")
        if rule.startswith("4"):
            functions = {k: v for k, v in constructs.items() if k.startswith("function ")}
            others = {k: v for k, v in constructs.items() if not k.startswith("function ")}
            print(f"          by the first construct outside the subset met: "
                  f"{sum(functions.values())} a function: " +
                  ", ".join(f"{k.removeprefix('function ')} {v}" for k, v in
                            sorted(functions.items(), key=lambda kv: (-kv[1], kv[0]))))
            for construct, n in sorted(others.items(), key=lambda kv: (-kv[1], kv[0])):
                print(f"          {n} {construct}")
    print(f"wrote {os.path.relpath(OUT, REPO)}")


if __name__ == "__main__":
    sys.exit(main())
