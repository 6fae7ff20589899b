"""The R4 SearchParameters of the supported types, as data for fhir_model (called by generate.py).

For each supported type: every SearchParameter whose base includes it, its FHIRPath expression cut down to
the alternatives that start with the type, reference targets (those of the parameter that the type's own
elements may refer to, by its StructureDefinition) and composite components (each with the
expression of its own parameter, see component_expressions); plus the common parameters of Resource. A
parameter whose expression falls outside the FHIRPath subset that fhir_model/src/fhirpath.cpp evaluates
(checked by `check` below, which mirrors that parser) or whose type is `special` is listed as unsupported
with the reason, never dropped silently.
"""
import glob
import json

from embed import write_embedded_json
import os
import re

COMMON_BASES = ["Resource", "DomainResource"]
# Mirrors fhir_model/src/fhirpath.cpp: the functions it evaluates.
FUNCTIONS = {"where": 1, "resolve": 0, "as": 1, "ofType": 1, "is": 1, "exists": (0, 1), "first": 0,
             "extension": 1, "empty": 0, "not": 0}
KEYWORDS = {"and", "or", "is", "as", "true", "false"}
TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)"
                   r"|(?P<sym>!=|[.()\[\]|=,]))")


class Unsupported(Exception):
    pass


def tokens(text):
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m:
            raise Unsupported(f"unsupported syntax at '{text[pos:].strip()[:20]}'")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def check(text):
    """Raises Unsupported when `text` is outside the subset; same grammar as fhirpath.cpp."""
    toks = tokens(text)
    pos = [0]

    def peek(value=None):
        if pos[0] >= len(toks):
            return None
        t = toks[pos[0]]
        return t if value is None or t[1] == value else None

    def take(value):
        if not peek(value):
            raise Unsupported(f"expected '{value}'")
        pos[0] += 1

    def type_name():
        t = peek()
        if not t or t[0] != "id":
            raise Unsupported("expected a type name")
        pos[0] += 1
        if peek("."):
            pos[0] += 1
            type_name()

    def invocation(first):
        t = peek()
        if not t or t[0] != "id" or (t[1] in KEYWORDS and t[1] not in ("is", "as")):
            raise Unsupported("expected a name")
        pos[0] += 1
        if peek("("):
            pos[0] += 1
            if t[1] not in FUNCTIONS:
                raise Unsupported(f"unsupported function {t[1]}()")
            args = 0
            if not peek(")"):
                if t[1] in ("as", "ofType", "is"):
                    type_name()
                else:
                    expression()
                args = 1
                while peek(","):
                    raise Unsupported(f"too many arguments to {t[1]}()")
            take(")")
            want = FUNCTIONS[t[1]]
            if args not in (want if isinstance(want, tuple) else (want,)):
                raise Unsupported(f"wrong number of arguments to {t[1]}()")

    def term():
        t = peek()
        if t is None:
            raise Unsupported("unexpected end")
        if t[1] == "(":
            pos[0] += 1
            expression()
            take(")")
        elif t[0] in ("str", "num") or t[1] in ("true", "false"):
            pos[0] += 1
        else:
            invocation(True)
        while True:
            if peek("."):
                pos[0] += 1
                invocation(False)
            elif peek("["):
                pos[0] += 1
                t = peek()
                if not t or t[0] != "num":
                    raise Unsupported("only integer indexers")
                pos[0] += 1
                take("]")
            else:
                return

    def type_expr():
        term()
        while peek("is") or peek("as"):
            pos[0] += 1
            type_name()

    def union():
        type_expr()
        while peek("|"):
            pos[0] += 1
            type_expr()

    def equality():
        union()
        if peek("=") or peek("!="):
            pos[0] += 1
            union()

    def conjunction():
        equality()
        while peek("and"):
            pos[0] += 1
            equality()

    def expression():
        conjunction()
        while peek("or"):
            pos[0] += 1
            conjunction()

    expression()
    if pos[0] != len(toks):
        raise Unsupported(f"unsupported syntax at '{toks[pos[0]][1]}'")


def alternatives(expression):
    """The top-level `|` alternatives of an expression (not those inside parentheses or strings)."""
    out, depth, quote, start = [], 0, False, 0
    for i, c in enumerate(expression):
        if quote:
            quote = c != "'" or expression[i - 1] == "\\"
        elif c == "'":
            quote = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(expression[start:i].strip())
            start = i + 1
    out.append(expression[start:].strip())
    return out


def starts_with(alternative, type_name):
    return re.match(r"\(*\s*" + type_name + r"\b", alternative) is not None


SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


def element_reference_targets(package_dir):
    """(element path -> the types its References may name) for every element of a resource's
    StructureDefinition (base specialisations) that is a Reference: its targetProfiles' types, or
    None where any resource may be named (no targetProfile, or Resource)."""
    out = {}
    for path in glob.glob(os.path.join(package_dir, "StructureDefinition-*.json")):
        with open(path, encoding="utf-8") as f:
            sd = json.load(f)
        if sd.get("kind") != "resource" or sd.get("derivation") != "specialization" or \
                sd.get("url") != SD_PREFIX + sd.get("type", ""):
            continue
        for e in sd["snapshot"]["element"]:
            types, any_type = set(), False
            for t in e.get("type", []):
                if t.get("code") != "Reference":
                    continue
                profiles = [p[len(SD_PREFIX):] for p in t.get("targetProfile", []) if p.startswith(SD_PREFIX)]
                if not profiles or "Resource" in profiles:
                    any_type = True
                types.update(profiles)
            if types or any_type:
                out[e["path"]] = None if any_type else types
    return out


# An alternative of a reference parameter's expression whose element the definitions type: a plain
# path, or one narrowed by `.where(resolve() is Type)` (then that type alone).
PLAIN_PATH = re.compile(r"\(?\s*([A-Z][A-Za-z]*(?:\.[a-z][A-Za-z0-9]*)+)\s*\)?"
                        r"(?:\.where\(\s*resolve\(\)\s+is\s+([A-Z][A-Za-z]*)\s*\))?")


def element_targets(kept, element_types):
    """The types the elements of the alternatives `kept` may refer to, or None when any alternative
    is not a plain path of a Reference element the definitions type (then nothing is narrowed)."""
    found = set()
    for alternative in kept:
        m = PLAIN_PATH.fullmatch(alternative.strip())
        if not m:
            return None
        if m.group(2):
            found.add(m.group(2))
            continue
        allowed = element_types.get(m.group(1), None) if m.group(1) in element_types else None
        if allowed is None:
            return None
        found.update(allowed)
    return found


def relative_path(expression, focus):
    """`expression` (a component parameter's own expression) as a plain path relative to `focus` (the
    composite's expression): "DocumentReference.relatesTo.target" under "DocumentReference.relatesTo"
    is "target". None when it is not a plain path under `focus`."""
    m = re.fullmatch(re.escape(focus) + r"\.([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)", expression.strip())
    return m.group(1) if m else None


def component_expressions(sp, by_url):
    """The expression of each of a composite's components, in order.

    A component names its parameter by URL and gives its expression relative to the composite, and
    the two must agree. R4 4.0.1's DocumentReference-relationship pairs them crosswise: the component
    defined by DocumentReference-relatesto (a reference, `DocumentReference.relatesTo.target`) has
    the expression `code`, and DocumentReference-relation (a token, `...relatesTo.code`) has `target`.
    When the expressions given are exactly the component parameters' own paths under the composite,
    in another order, each component gets its own parameter's path; otherwise they stay as given."""
    given = [c["expression"] for c in sp.get("component", [])]
    own = []
    for c in sp.get("component", []):
        target = by_url.get(c["definition"])
        own.append(relative_path(target.get("expression", ""), sp.get("expression", "")) if target else None)
    if None not in own and given != own and sorted(given) == sorted(own):
        return own
    return given


def build(package_dir, supported_types):
    with open(os.path.join(package_dir, "Bundle-searchParams.json"), encoding="utf-8") as f:
        all_params = [e["resource"] for e in json.load(f)["entry"]]
    by_url = {sp["url"]: sp for sp in all_params}
    element_types = element_reference_targets(package_dir)
    parameters, unsupported = [], []
    for base in COMMON_BASES + list(supported_types):
        for sp in sorted((p for p in all_params if base in p.get("base", [])), key=lambda p: p["code"]):
            row = {"base": base, "code": sp["code"], "type": sp["type"]}
            expression = sp.get("expression", "")
            prefixes = [base] + (COMMON_BASES if base in COMMON_BASES else [])
            kept = [a for a in alternatives(expression) if any(starts_with(a, p) for p in prefixes)] \
                if expression else []
            row["expression"] = " | ".join(kept)
            reason = None
            if sp["type"] == "special":
                reason = "special parameter type (needs its own matching logic)"
            elif not kept:
                reason = "no FHIRPath expression for this base type"
            else:
                try:
                    check(row["expression"])
                except Unsupported as e:
                    reason = f"expression outside the supported FHIRPath subset: {e}"
            if sp.get("target"):
                # A parameter shared by several bases names every target of all of them (R4's
                # clinical-encounter: Encounter and EpisodeOfCare); for this base, only those its
                # elements may refer to (Observation.encounter is Reference(Encounter)).
                targets = set(sp["target"])
                allowed = element_targets(kept, element_types) if kept else None
                if allowed is not None and targets & allowed:
                    targets &= allowed
                row["targets"] = sorted(targets)
            if sp["type"] == "composite":
                components = []
                for c, component_expression in zip(sp.get("component", []), component_expressions(sp, by_url)):
                    target = by_url.get(c["definition"])
                    if target is None or target["type"] in ("composite", "special"):
                        reason = reason or f"composite component {c['definition']} is not a simple parameter"
                        continue
                    try:
                        check(component_expression)
                    except Unsupported as e:
                        reason = reason or f"component expression outside the subset: {e}"
                    components.append({"definition": c["definition"], "code": target["code"],
                                       "type": target["type"], "expression": component_expression})
                row["components"] = components
                # The index's composite table (storage's search_index.cpp, fits_composite_table)
                # holds pairs: a token or reference, then a token, quantity, date or string.
                shape = [c["type"] for c in components]
                if len(shape) != 2 or shape[0] not in ("token", "reference") \
                        or shape[1] not in ("token", "quantity", "date", "string"):
                    reason = reason or ("a composite of " + ", ".join(shape) + ": the index holds a token or "
                                        "reference paired with a token, quantity, date or string")
            if reason:
                row["reason"] = reason
                unsupported.append(row)
            else:
                parameters.append(row)
    return {"parameters": parameters, "unsupported": unsupported}


def write(data, out_path):
    write_embedded_json(data, out_path, "generated_search_parameter", "sp", [
        "GENERATED by fhir_model/generator/generate.py (search_parameters.py) from hl7.fhir.r4.examples 4.0.1",
        "— do not edit. The R4 SearchParameters of the supported types and the common ones, with their",
        "expressions cut to each base type, and those left unsupported with the reason, as one JSON",
        "document that fhir_model/src/search_parameters.cpp parses once.",
    ])
