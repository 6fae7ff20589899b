// Tests for fhir_model/src/fhirpath.cpp: cases written by hand from the FHIRPath N1 specification
// (https://hl7.org/fhirpath/N1/, sections 3 Path selection, 4.1 literals, 5.1 existence, 5.2 filtering
// (where, ofType), 5.3 subsetting ([n], first), 6.1 equality, 6.3 types (is, as), 6.5 Boolean logic,
// 6.9 union); the npm package fhirpath 5.2.2 ships no test files, so none were imported. Plus the
// parse errors that keep unsupported syntax from silently matching nothing.
#include "fhir_model/fhirpath.hpp"
#include "fhir_model/search_parameters.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace fhir = caregate::fhir;

namespace {

// The spec's running example (patient-example), trimmed; numbers avoided (the test parses with plain
// RapidJSON, not the json layer that marks numbers).
constexpr const char* patient = R"({
  "resourceType": "Patient", "id": "example", "active": true, "gender": "male",
  "birthDate": "1974-12-25", "deceasedBoolean": false,
  "extension": [{"url": "http://example.org/ext/colour", "valueString": "blue"}],
  "name": [
    {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
    {"use": "usual", "given": ["Jim"]},
    {"use": "maiden", "family": "Windsor", "given": ["Peter", "James"]}],
  "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"},
              {"system": "email", "value": "p@example.org"}],
  "generalPractitioner": [{"reference": "Practitioner/gp"}],
  "managingOrganization": {"reference": "http://example.org/fhir/Organization/1"},
  "link": [{"other": {"reference": "#rp"}, "type": "seealso"}],
  "contained": [{"resourceType": "RelatedPerson", "id": "rp", "patient": {"reference": "Patient/example"}}]
})";

constexpr const char* observation = R"({
  "resourceType": "Observation", "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
  "subject": {"reference": "Patient/example"},
  "valueQuantity": {"unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
  "effectivePeriod": {"start": "2013-04-02T09:30:10+01:00"}
})";

rapidjson::Document parse(const char* text) {
    rapidjson::Document doc;
    doc.Parse(text);
    REQUIRE_FALSE(doc.HasParseError());
    return doc;
}

fhir::fhirpath_expression compile(const std::string& text) {
    std::string error;
    auto out = fhir::fhirpath_expression::parse(text, error);
    INFO(text << ": " << error);
    REQUIRE(out.has_value());
    return *out;
}

/// The result as text: strings as written, computed Booleans as true/false, objects as "{}".
std::vector<std::string> eval(const rapidjson::Value& root, const std::string& text) {
    std::vector<std::string> out;
    for (auto& node : compile(text).evaluate(root)) {
        if (node.boolean)
            out.emplace_back(*node.boolean ? "true" : "false");
        else if (node.value == nullptr)
            out.emplace_back(node.literal);
        else if (node.value->IsString())
            out.emplace_back(node.value->GetString());
        else if (node.value->IsBool())
            out.emplace_back(node.value->GetBool() ? "true" : "false");
        else
            out.emplace_back("{}");
    }
    return out;
}

using strings = std::vector<std::string>;

} // namespace

TEST_CASE("fhirpath 3: path selection flattens collections, and the type name selects the root") {
    auto doc = parse(patient);
    CHECK(eval(doc, "Patient.name.given") == strings{"Peter", "James", "Jim", "Peter", "James"});
    CHECK(eval(doc, "name.given") == strings{"Peter", "James", "Jim", "Peter", "James"});
    CHECK(eval(doc, "Patient.name.family") == strings{"Chalmers", "Windsor"});
    CHECK(eval(doc, "Observation.status").empty()); // another type selects nothing
    CHECK(eval(doc, "Resource.id") == strings{"example"});
    CHECK(eval(doc, "Patient.nothing").empty());
    CHECK(eval(doc, "Patient.`gender`") == strings{"male"});
}

TEST_CASE("fhirpath 3: a choice element is reached by its name without the type") {
    auto patient_doc = parse(patient);
    CHECK(eval(patient_doc, "Patient.deceased") == strings{"false"});
    auto doc = parse(observation);
    CHECK(eval(doc, "Observation.value.unit") == strings{"lbs"});
    CHECK(eval(doc, "Observation.effective.start") == strings{"2013-04-02T09:30:10+01:00"});
    CHECK(eval(doc, "Observation.valueQuantity").empty()); // the JSON name is not a FHIRPath name
}

TEST_CASE("fhirpath 6.3: as, ofType and is test the element's FHIR type") {
    auto doc = parse(observation);
    CHECK(eval(doc, "(Observation.value as Quantity).unit") == strings{"lbs"});
    CHECK(eval(doc, "Observation.value.as(Quantity).unit") == strings{"lbs"});
    CHECK(eval(doc, "Observation.value.ofType(Quantity).code") == strings{"[lb_av]"});
    CHECK(eval(doc, "Observation.value.as(FHIR.Quantity).code") == strings{"[lb_av]"});
    CHECK(eval(doc, "Observation.value.as(string)").empty());
    CHECK(eval(doc, "Observation.effective.as(dateTime)").empty());
    CHECK(eval(doc, "Observation.effective.as(Period).start") == strings{"2013-04-02T09:30:10+01:00"});
    CHECK(eval(doc, "Observation.value is Quantity") == strings{"true"});
    CHECK(eval(doc, "Observation.value.is(Period)") == strings{"false"});
}

TEST_CASE("fhirpath 5.2: where filters by criteria evaluated on each item") {
    auto doc = parse(patient);
    CHECK(eval(doc, "Patient.name.where(use = 'official').family") == strings{"Chalmers"});
    CHECK(eval(doc, "Patient.telecom.where(system='email').value") == strings{"p@example.org"});
    CHECK(eval(doc, "Patient.telecom.where(system='phone' and use='work').value") == strings{"(03) 5555 6473"});
    CHECK(eval(doc, "Patient.telecom.where(system='fax' or use='work').value") == strings{"(03) 5555 6473"});
    CHECK(eval(doc, "Patient.name.where(family.exists()).use") == strings{"official", "maiden"});
    CHECK(eval(doc, "Patient.name.where(given = 'Jim').use") == strings{"usual"});
    CHECK(eval(doc, "Patient.name.where(use != 'usual').use") == strings{"official", "maiden"});
}

TEST_CASE("fhirpath: resolve() is decides by the reference's type") {
    auto doc = parse(patient);
    CHECK(eval(doc, "Patient.generalPractitioner.where(resolve() is Practitioner).reference") == strings{"Practitioner/gp"});
    CHECK(eval(doc, "Patient.generalPractitioner.where(resolve() is Organization)").empty());
    CHECK(eval(doc, "Patient.managingOrganization.where(resolve() is Organization).reference").size() == 1);
    CHECK(eval(doc, "Patient.link.other.where(resolve() is RelatedPerson).reference") == strings{"#rp"});
    auto typed = parse(R"({"resourceType":"Observation","subject":{"identifier":{"value":"x"},"type":"Group"}})");
    CHECK(eval(typed, "Observation.subject.where(resolve() is Group)").size() == 1);
    CHECK(eval(typed, "Observation.subject.where(resolve() is Patient)").empty());
}

TEST_CASE("fhirpath 5.1, 5.3: exists, empty, not, indexers and first") {
    auto doc = parse(patient);
    CHECK(eval(doc, "Patient.name.exists()") == strings{"true"});
    CHECK(eval(doc, "Patient.photo.exists()") == strings{"false"});
    CHECK(eval(doc, "Patient.photo.empty()") == strings{"true"});
    CHECK(eval(doc, "Patient.name.exists(use = 'maiden')") == strings{"true"});
    CHECK(eval(doc, "Patient.active.not()") == strings{"false"});
    CHECK(eval(doc, "Patient.name[0].family") == strings{"Chalmers"});
    CHECK(eval(doc, "Patient.name[2].family") == strings{"Windsor"});
    CHECK(eval(doc, "Patient.name[3]").empty());
    CHECK(eval(doc, "Patient.name.given.first()") == strings{"Peter"});
    CHECK(eval(doc, "Patient.deceased.exists() and Patient.deceased != false") == strings{"false"});
}

TEST_CASE("fhirpath 6.9: union merges and removes duplicates") {
    auto doc = parse(patient);
    CHECK(eval(doc, "Patient.name.family | Patient.name.given.first()") == strings{"Chalmers", "Windsor", "Peter"});
    CHECK(eval(doc, "Patient.name[0] | Patient.name.where(use='official')").size() == 1);
    CHECK(eval(doc, "Observation.code | Patient.gender") == strings{"male"});
}

TEST_CASE("fhirpath: extension(url) and extension.where(url=...)") {
    auto doc = parse(patient);
    CHECK(eval(doc, "Patient.extension('http://example.org/ext/colour').value") == strings{"blue"});
    CHECK(eval(doc, "Patient.extension.where(url='http://example.org/ext/colour').value.as(string)") == strings{"blue"});
    CHECK(eval(doc, "Patient.extension('http://example.org/other')").empty());
}

TEST_CASE("fhirpath: syntax outside the subset fails to parse with a reason") {
    for (const char* text : {"Patient.name.count() > 1", "Patient.name.select(given)", "%resource.id",
                             "Patient.name[0 + 1]", "$this", "Patient.birthDate + 1 year", "Patient.name.",
                             "(Patient.name", "Patient.name.where(use = 'a'", "Patient.x.where(a, b)",
                             "1.5", "Patient.name.first(1)"}) {
        std::string error;
        CAPTURE(text);
        CHECK_FALSE(fhir::fhirpath_expression::parse(text, error).has_value());
        CHECK_FALSE(error.empty());
    }
    std::string error;
    fhir::fhirpath_expression::parse("Patient.name.count()", error);
    CHECK(error == "unsupported function count()");
}

TEST_CASE("fhirpath: an expression of more than 1000 tokens fails to parse, however it nests") {
    // Found with tests/fuzz/fuzz_fhirpath (on a hand-made input): the parser, the evaluator and the
    // tree's destructor recurse per nesting level and path step, so 10000 `(` (a 20 KB FHIRPath Patch
    // body) overflowed the stack.
    auto repeat = [](const std::string& text, std::size_t times) {
        std::string out;
        for (std::size_t i = 0; i < times; ++i)
            out += text;
        return out;
    };
    for (const std::string& text :
         {repeat("(", 100000) + "Patient.name" + repeat(")", 100000), "Patient" + repeat(".name", 100000),
          "Patient.name" + repeat(" | Patient.name", 100000), repeat("Patient.name.where(", 100000),
          repeat("(", 501) + "a" + repeat(")", 501)}) {
        std::string error;
        CAPTURE(text.substr(0, 40));
        CHECK_FALSE(fhir::fhirpath_expression::parse(text, error).has_value());
        CHECK(error == "the expression is too long (more than 1000 tokens)");
    }
    // 999 tokens and the end still parse (and evaluate).
    rapidjson::Document doc = parse(patient);
    CHECK(eval(doc, repeat("(", 498) + "Patient.gender" + repeat(")", 498)) == strings{"male"});
}

TEST_CASE("every generated search parameter's expression parses (the generator's grammar mirrors ours)") {
    // Building the table parses every expression and throws if one does not.
    const auto& all = fhir::all_search_parameters();
    CHECK(all.size() == 1667);
    for (auto& p : all) {
        std::string error;
        CAPTURE(p.base + "." + p.code);
        CHECK(fhir::fhirpath_expression::parse(p.expression.text(), error).has_value());
        for (auto& c : p.components)
            CHECK(fhir::fhirpath_expression::parse(c.expression.text(), error).has_value());
    }
    const auto& unsupported = fhir::unsupported_search_parameters();
    REQUIRE(unsupported.size() == 9);
    for (auto& u : unsupported)
        CHECK_FALSE(u.reason.empty());
    CHECK(fhir::find_search_parameter("Location", "near") == nullptr);
    CHECK(fhir::find_search_parameter("Patient", "family") != nullptr);
    CHECK(fhir::find_search_parameter("Patient", "_lastUpdated") != nullptr);
    CHECK(fhir::find_search_parameter("Patient", "code") == nullptr);
    CHECK(fhir::search_parameters_for("Bundle").empty());
}
