// Tests for fhir_model/src/patch.cpp and fhir_model/src/fhirpath_patch.cpp (fhir_model/patch.hpp):
// JSON Patch by RFC 6902's Appendix A examples (A.1-A.16) plus the FHIR use of it on a resource;
// FHIRPath Patch by the official test cases of https://hl7.org/fhir/R4/fhirpatch.html (the FHIR
// project's fhir-test-cases, r5/patch/fhir-path-tests.xml, written here in JSON and named as there)
// plus failures; and the reference work of transactions (https://hl7.org/fhir/R4/http.html#trules).
#include "fhir_model/patch.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace fhir = caregate::fhir;

namespace {

std::string json_patch(const std::string& resource, const std::string& patch) {
    auto out = fhir::apply_json_patch(resource, patch);
    INFO((out.ok() ? std::string() : out.failure().issues.front().diagnostics));
    REQUIRE(out.ok());
    return *out;
}

fhir::error json_patch_error(const std::string& resource, const std::string& patch) {
    auto out = fhir::apply_json_patch(resource, patch);
    REQUIRE_FALSE(out.ok());
    return out.failure();
}

/// One FHIRPath Patch operation: its type and path, then any other parts (JSON text).
std::string operation(const std::string& type, const std::string& path, const std::string& parts = "") {
    return R"({"name":"operation","part":[{"name":"type","valueCode":")" + type +
           R"("},{"name":"path","valueString":")" + path + "\"}" + (parts.empty() ? "" : "," + parts) + "]}";
}

std::string parameters(const std::vector<std::string>& operations) {
    std::string out = R"({"resourceType":"Parameters","parameter":[)";
    for (std::size_t i = 0; i < operations.size(); ++i)
        out += (i ? "," : "") + operations[i];
    return out + "]}";
}

std::string fhirpath_patch(const std::string& resource, const std::vector<std::string>& operations) {
    auto out = fhir::apply_fhirpath_patch(resource, parameters(operations));
    INFO((out.ok() ? std::string() : out.failure().issues.front().diagnostics));
    REQUIRE(out.ok());
    return *out;
}

fhir::error fhirpath_patch_error(const std::string& resource, const std::vector<std::string>& operations) {
    auto out = fhir::apply_fhirpath_patch(resource, parameters(operations));
    REQUIRE_FALSE(out.ok());
    return out.failure();
}

/// A part: its name and its value member(s) as JSON text, e.g. part("name", R"("valueString":"gender")").
std::string part(const std::string& name, const std::string& value) {
    return R"({"name":")" + name + "\"," + value + "}";
}
std::string index_part(const std::string& name, int index) {
    return part(name, "\"valueInteger\":" + std::to_string(index));
}

// The five operations; `value` is the value part's members as JSON text: `"valueDate":"1930-01-01"`,
// `"part":[...]` or `"resource":{...}`.
std::string add_op(const std::string& path, const std::string& name, const std::string& value) {
    return operation("add", path, part("name", "\"valueString\":\"" + name + "\"") + "," + part("value", value));
}
std::string insert_op(const std::string& path, int index, const std::string& value) {
    return operation("insert", path, index_part("index", index) + "," + part("value", value));
}
std::string delete_op(const std::string& path) { return operation("delete", path); }
std::string replace_op(const std::string& path, const std::string& value) {
    return operation("replace", path, part("value", value));
}
std::string move_op(const std::string& path, int source, int destination) {
    return operation("move", path, index_part("source", source) + "," + index_part("destination", destination));
}

} // namespace

// --- JSON Patch: RFC 6902 Appendix A (members added at the end: order is not significant in JSON) ---

TEST_CASE("json patch A.1: adding an object member") {
    CHECK(json_patch(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux"}])") ==
          R"({"foo":"bar","baz":"qux"})");
}

TEST_CASE("json patch A.2: adding an array element") {
    CHECK(json_patch(R"({"foo":["bar","baz"]})", R"([{"op":"add","path":"/foo/1","value":"qux"}])") ==
          R"({"foo":["bar","qux","baz"]})");
}

TEST_CASE("json patch A.3: removing an object member") {
    CHECK(json_patch(R"({"baz":"qux","foo":"bar"})", R"([{"op":"remove","path":"/baz"}])") == R"({"foo":"bar"})");
}

TEST_CASE("json patch A.4: removing an array element") {
    CHECK(json_patch(R"({"foo":["bar","qux","baz"]})", R"([{"op":"remove","path":"/foo/1"}])") ==
          R"({"foo":["bar","baz"]})");
}

TEST_CASE("json patch A.5: replacing a value") {
    CHECK(json_patch(R"({"baz":"qux","foo":"bar"})", R"([{"op":"replace","path":"/baz","value":"boo"}])") ==
          R"({"baz":"boo","foo":"bar"})");
}

TEST_CASE("json patch A.6: moving a value") {
    CHECK(json_patch(R"({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}})",
                     R"([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])") ==
          R"({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})");
}

TEST_CASE("json patch A.7: moving an array element") {
    CHECK(
        json_patch(R"({"foo":["all","grass","cows","eats"]})", R"([{"op":"move","from":"/foo/1","path":"/foo/3"}])") ==
        R"({"foo":["all","cows","eats","grass"]})");
}

TEST_CASE("json patch A.8: testing a value, success") {
    CHECK(json_patch(R"({"baz":"qux","foo":["a",2,"c"]})",
                     R"([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}])") ==
          R"({"baz":"qux","foo":["a",2,"c"]})");
}

TEST_CASE("json patch A.9: testing a value, error") {
    auto failure = json_patch_error(R"({"baz":"qux"})", R"([{"op":"test","path":"/baz","value":"bar"}])");
    CHECK(failure.kind == fhir::category::invalid);
    CHECK(failure.issues.front().diagnostics == "JSON Patch operation 0 (test /baz): the test failed: the value at the "
                                                "path is not the one given");
}

TEST_CASE("json patch A.10: adding a nested member object") {
    CHECK(json_patch(R"({"foo":"bar"})", R"([{"op":"add","path":"/child","value":{"grandchild":{}}}])") ==
          R"({"foo":"bar","child":{"grandchild":{}}})");
}

TEST_CASE("json patch A.11: ignoring unrecognized elements") {
    CHECK(json_patch(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux","xyz":123}])") ==
          R"({"foo":"bar","baz":"qux"})");
}

TEST_CASE("json patch A.12: adding to a nonexistent target") {
    auto failure = json_patch_error(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz/bat","value":"qux"}])");
    CHECK(failure.kind == fhir::category::invalid);
    CHECK(failure.issues.front().code == "not-found");
}

TEST_CASE("json patch A.13: invalid JSON Patch document (an operation repeats 'op')") {
    auto failure = json_patch_error(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux","op":"remove"}])");
    CHECK(failure.kind == fhir::category::malformed);
}

TEST_CASE("json patch A.14: ~ escape ordering (~01 is the member ~1)") {
    CHECK(json_patch(R"({"/":9,"~1":10})", R"([{"op":"test","path":"/~01","value":10}])") == R"({"/":9,"~1":10})");
}

TEST_CASE("json patch A.15: comparing strings and numbers") {
    auto failure = json_patch_error(R"({"/":9,"~1":10})", R"([{"op":"test","path":"/~01","value":"10"}])");
    CHECK(failure.kind == fhir::category::invalid);
}

TEST_CASE("json patch A.16: adding an array value") {
    CHECK(json_patch(R"({"foo":["bar"]})", R"([{"op":"add","path":"/foo/-","value":["abc","def"]}])") ==
          R"({"foo":["bar",["abc","def"]]})");
}

// --- JSON Patch: the rest of RFC 6902 and 6901, and FHIR's use of it ---------------------------------

TEST_CASE("json patch on a resource (R4 http.html#patch): test, replace /birthDate, add to /name/-") {
    const std::string patient =
        R"({"resourceType":"Patient","id":"9000000009","name":[{"family":"Smith"}],"birthDate":"1970-01-01"})";
    CHECK(
        json_patch(patient, R"([{"op":"test","path":"/id","value":"9000000009"},)"
                            R"({"op":"replace","path":"/birthDate","value":"1971-02-03"},)"
                            R"({"op":"add","path":"/name/-","value":{"use":"nickname","given":["Jo"]}}])") ==
        R"({"resourceType":"Patient","id":"9000000009","name":[{"family":"Smith"},{"use":"nickname","given":["Jo"]}],)"
        R"("birthDate":"1971-02-03"})");

    SUBCASE("all or nothing: a failing test after a replace fails the patch; the diagnostic names no value") {
        auto failure = json_patch_error(patient, R"([{"op":"replace","path":"/birthDate","value":"1971-02-03"},)"
                                                 R"({"op":"test","path":"/name/0/family","value":"Jones"}])");
        CHECK(failure.kind == fhir::category::invalid);
        const std::string& diagnostics = failure.issues.front().diagnostics;
        CHECK(diagnostics.starts_with("JSON Patch operation 1 (test /name/0/family): "));
        CHECK(diagnostics.find("Smith") == std::string::npos);
        CHECK(diagnostics.find("Jones") == std::string::npos);
    }
}

TEST_CASE("json patch: numbers keep their text; test compares numbers by value, exactly") {
    const std::string observation = R"({"resourceType":"Observation","valueQuantity":{"value":1.10,"unit":"kg"}})";
    CHECK(json_patch(observation, R"([{"op":"add","path":"/valueQuantity/code","value":"kg"}])") ==
          R"({"resourceType":"Observation","valueQuantity":{"value":1.10,"unit":"kg","code":"kg"}})");
    for (const char* same : {"1.1", "1.100", "11e-1", "0.11E+1", "110E-2"})
        CHECK(json_patch(observation, std::string(R"([{"op":"test","path":"/valueQuantity/value","value":)") + same +
                                          "}]") == observation);
    for (const char* other : {"1.11", "-1.1", "1", "\"1.10\""})
        CHECK_FALSE(
            fhir::apply_json_patch(observation, std::string(R"([{"op":"test","path":"/valueQuantity/value","value":)") +
                                                    other + "}]")
                .ok());
    CHECK(json_patch(R"({"a":0})", R"([{"op":"test","path":"/a","value":-0.0}])") == R"({"a":0})");
}

TEST_CASE("json patch: test compares objects by members in any order, arrays in order") {
    const std::string doc = R"({"a":{"x":1,"y":[1,2]}})";
    CHECK(json_patch(doc, R"([{"op":"test","path":"/a","value":{"y":[1,2],"x":1}}])") == doc);
    CHECK_FALSE(fhir::apply_json_patch(doc, R"([{"op":"test","path":"/a","value":{"y":[2,1],"x":1}}])").ok());
    CHECK_FALSE(fhir::apply_json_patch(doc, R"([{"op":"test","path":"/a","value":{"x":1}}])").ok());
    CHECK(json_patch(doc, R"([{"op":"test","path":"","value":{"a":{"x":1,"y":[1,2]}}}])") == doc);
}

TEST_CASE("json patch: copy, replace in place, move to the same place, pointers with ~1 and ~0") {
    CHECK(json_patch(R"({"a":{"b":1},"c":2})",
                     R"([{"op":"copy","from":"/a","path":"/d"},{"op":"replace","path":"/a/b","value":3}])") ==
          R"({"a":{"b":3},"c":2,"d":{"b":1}})");
    CHECK(json_patch(R"({"a":1,"b":2})", R"([{"op":"add","path":"/a","value":5}])") == R"({"a":5,"b":2})");
    CHECK(json_patch(R"({"a":1,"b":2})", R"([{"op":"move","from":"/a","path":"/a"}])") == R"({"a":1,"b":2})");
    CHECK(json_patch(R"({"a/b":1,"m~n":2})",
                     R"([{"op":"remove","path":"/a~1b"},{"op":"replace","path":"/m~0n","value":3}])") ==
          R"({"m~n":3})");
    CHECK(json_patch(R"({"a":1})", R"([{"op":"replace","path":"","value":[1]}])") == "[1]");
}

TEST_CASE("json patch: targets that do not exist, and array indexes, are invalid (422)") {
    const std::string doc = R"({"a":[1,2],"o":{"x":1}})";
    auto invalid = [&](const std::string& patch) {
        auto failure = json_patch_error(doc, patch);
        CHECK(failure.kind == fhir::category::invalid);
    };
    invalid(R"([{"op":"remove","path":"/b"}])");
    invalid(R"([{"op":"replace","path":"/b","value":1}])");
    invalid(R"([{"op":"remove","path":"/a/2"}])");
    invalid(R"([{"op":"remove","path":"/a/-"}])");
    invalid(R"([{"op":"add","path":"/a/3","value":1}])");
    invalid(R"([{"op":"add","path":"/a/01","value":1}])");
    invalid(R"([{"op":"test","path":"/b","value":1}])");
    invalid(R"([{"op":"copy","from":"/b","path":"/c"}])");
    invalid(R"([{"op":"move","from":"/o","path":"/o/x/y"}])");
    invalid(R"([{"op":"remove","path":""}])");
    invalid(R"([{"op":"add","path":"/a/0/x","value":1}])");
    CHECK(json_patch(doc, R"([{"op":"add","path":"/a/2","value":3}])") == R"({"a":[1,2,3],"o":{"x":1}})");
    CHECK(json_patch(doc, R"([{"op":"add","path":"/o/01","value":3}])") == R"({"a":[1,2],"o":{"x":1,"01":3}})");
}

TEST_CASE("json patch: a patch that is not a patch is malformed (400)") {
    auto malformed = [](const std::string& patch) {
        auto failure = json_patch_error(R"({"a":1})", patch);
        CHECK(failure.kind == fhir::category::malformed);
        return failure.issues.front().diagnostics;
    };
    malformed("{\"op\":\"add\"}");
    malformed("[1]");
    malformed(R"([{"op":"frobnicate","path":"/a"}])");
    malformed(R"([{"path":"/a"}])");
    malformed(R"([{"op":"add","path":"/b"}])");
    malformed(R"([{"op":"replace","path":"/a"}])");
    malformed(R"([{"op":"move","path":"/a"}])");
    malformed(R"([{"op":"add","value":1}])");
    CHECK(malformed(R"([{"op":"test","path":"/a","value":1},{"op":"add","path":"a","value":1}])") ==
          "JSON Patch operation 1 (add a): 'path' is not a JSON Pointer (no leading '/')");
    malformed(R"([{"op":"remove","path":"/a~2"}])");
    malformed("not json");
    CHECK(fhir::apply_json_patch("{", "[]").failure().kind == fhir::category::malformed);
}

TEST_CASE("json patch: a result nested past the JSON layer's limit is refused") {
    std::string deep = "1";
    for (int i = 0; i < 63; ++i)
        deep = "[" + deep + "]";
    CHECK(fhir::apply_json_patch(R"({"a":1})", R"([{"op":"add","path":"/b","value":)" + deep + "}]")
              .failure()
              .issues.front()
              .code == "too-costly");
}

// --- FHIRPath Patch: the official test cases -------------------------------------------------------

TEST_CASE("fhirpath patch, official: No Difference") {
    const std::string patient = R"({"resourceType":"Patient","birthDate":"1920-01-01"})";
    CHECK(fhirpath_patch(patient, {}) == patient);
    CHECK(*fhir::apply_fhirpath_patch(patient, R"({"resourceType":"Parameters"})") == patient);
}

TEST_CASE("fhirpath patch, official: primitives (Replace, Delete, Add Primitive)") {
    const std::string patient = R"({"resourceType":"Patient","birthDate":"1920-01-01"})";
    CHECK(fhirpath_patch(patient, {replace_op("Patient.birthDate", R"("valueDate":"1930-01-01")")}) ==
          R"({"resourceType":"Patient","birthDate":"1930-01-01"})");
    CHECK(fhirpath_patch(patient, {delete_op("Patient.birthDate")}) == R"({"resourceType":"Patient"})");
    CHECK(fhirpath_patch(R"({"resourceType":"Patient"})",
                         {add_op("Patient", "birthDate", R"("valueDate":"1930-01-01")")}) ==
          R"({"resourceType":"Patient","birthDate":"1930-01-01"})");
}

TEST_CASE("fhirpath patch, official: nested primitives") {
    const std::string patient = R"({"resourceType":"Patient","contact":[{"name":{"text":"a name"},"gender":"male"}]})";
    SUBCASE("Replace Nested Primitive #1") {
        CHECK(fhirpath_patch(patient, {replace_op("Patient.contact[0].gender", R"("valueCode":"female")")}) ==
              R"({"resourceType":"Patient","contact":[{"name":{"text":"a name"},"gender":"female"}]})");
    }
    SUBCASE("Replace Nested Primitive #2") {
        CHECK(fhirpath_patch(patient, {replace_op("Patient.contact[0].name.text", R"("valueString":"the name")")}) ==
              R"({"resourceType":"Patient","contact":[{"name":{"text":"the name"},"gender":"male"}]})");
    }
    SUBCASE("Delete Nested Primitive #1") {
        CHECK(fhirpath_patch(patient, {delete_op("Patient.contact[0].gender")}) ==
              R"({"resourceType":"Patient","contact":[{"name":{"text":"a name"}}]})");
    }
    SUBCASE("Delete Nested Primitive #2: the name left empty goes too") {
        CHECK(fhirpath_patch(patient, {delete_op("Patient.contact[0].name.text")}) ==
              R"({"resourceType":"Patient","contact":[{"gender":"male"}]})");
    }
    SUBCASE("Add Nested Primitive") {
        CHECK(fhirpath_patch(R"({"resourceType":"Patient","contact":[{"name":{"text":"a name"}}]})",
                             {add_op("Patient.contact[0]", "gender", R"("valueCode":"male")")}) == patient);
    }
}

TEST_CASE("fhirpath patch, official: complex and anonymous types") {
    SUBCASE("Add Complex") {
        CHECK(fhirpath_patch(R"({"resourceType":"Patient"})",
                             {add_op("Patient", "maritalStatus", R"("valueCodeableConcept":{"text":"married"})")}) ==
              R"({"resourceType":"Patient","maritalStatus":{"text":"married"}})");
    }
    SUBCASE("Replace Complex: the whole value, its id with it") {
        CHECK(fhirpath_patch(
                  R"({"resourceType":"Patient","maritalStatus":{"id":"1","text":"married"}})",
                  {replace_op("Patient.maritalStatus", R"("valueCodeableConcept":{"id":"2","text":"not married"})")}) ==
              R"({"resourceType":"Patient","maritalStatus":{"id":"2","text":"not married"}})");
    }
    SUBCASE("Delete Complex") {
        CHECK(fhirpath_patch(R"({"resourceType":"Patient","maritalStatus":{"text":"married"}})",
                             {delete_op("Patient.maritalStatus")}) == R"({"resourceType":"Patient"})");
    }
    SUBCASE("Add Anonymous Type: a backbone element from parts") {
        CHECK(fhirpath_patch(
                  R"({"resourceType":"Patient"})",
                  {add_op("Patient", "contact", R"("part":[{"name":"name","valueHumanName":{"text":"a name"}}])")}) ==
              R"({"resourceType":"Patient","contact":[{"name":{"text":"a name"}}]})");
    }
    SUBCASE("Delete Anonymous Type") {
        CHECK(fhirpath_patch(R"({"resourceType":"Patient","contact":[{"name":{"text":"a name"}}]})",
                             {delete_op("Patient.contact[0]")}) == R"({"resourceType":"Patient"})");
    }
}

namespace {

/// The official list cases' Patient: identifiers with values "value 1" .. "value n".
std::string patient_with_identifiers(std::vector<int> values, const std::vector<std::string>& ids = {}) {
    std::string out = R"({"resourceType":"Patient","identifier":[)";
    for (std::size_t i = 0; i < values.size(); ++i)
        out += std::string(i ? "," : "") + "{" + (ids.empty() ? "" : R"("id":")" + ids[i] + "\",") +
               R"("system":"http://example.org","value":"value )" + std::to_string(values[i]) + "\"}";
    return out + "]}";
}

std::string identifier_value(int n) {
    return R"("valueIdentifier":{"system":"http://example.org","value":"value )" + std::to_string(n) + "\"}";
}

} // namespace

TEST_CASE("fhirpath patch, official: lists") {
    SUBCASE("List unchanged") {
        CHECK(fhirpath_patch(patient_with_identifiers({1, 2}), {}) == patient_with_identifiers({1, 2}));
    }
    SUBCASE("List unchanged, contents changed") {
        CHECK(fhirpath_patch(patient_with_identifiers({1, 2}, {"a", "b"}),
                             {replace_op("Patient.identifier[0].value", R"("valueString":"value 2")"),
                              replace_op("Patient.identifier[1].value", R"("valueString":"value 1")")}) ==
              patient_with_identifiers({2, 1}, {"a", "b"}));
    }
    SUBCASE("Add to list (an insert at the end), Insert in list #1, #2") {
        const std::string two = patient_with_identifiers({1, 2});
        CHECK(fhirpath_patch(two, {insert_op("Patient.identifier", 2, identifier_value(3))}) ==
              patient_with_identifiers({1, 2, 3}));
        CHECK(fhirpath_patch(two, {insert_op("Patient.identifier", 1, identifier_value(3))}) ==
              patient_with_identifiers({1, 3, 2}));
        CHECK(fhirpath_patch(two, {insert_op("Patient.identifier", 0, identifier_value(3))}) ==
              patient_with_identifiers({3, 1, 2}));
    }
    SUBCASE("Delete from List #1, #2, #3") {
        const std::string three = patient_with_identifiers({1, 2, 3});
        CHECK(fhirpath_patch(three, {delete_op("Patient.identifier[0]")}) == patient_with_identifiers({2, 3}));
        CHECK(fhirpath_patch(three, {delete_op("Patient.identifier[1]")}) == patient_with_identifiers({1, 3}));
        CHECK(fhirpath_patch(three, {delete_op("Patient.identifier[2]")}) == patient_with_identifiers({1, 2}));
    }
    SUBCASE("Reorder List #1 to #6") {
        const std::string four = patient_with_identifiers({1, 2, 3, 4});
        const std::string list = "Patient.identifier";
        CHECK(fhirpath_patch(four, {move_op(list, 3, 1)}) == patient_with_identifiers({1, 4, 2, 3}));
        CHECK(fhirpath_patch(four, {move_op(list, 3, 0)}) == patient_with_identifiers({4, 1, 2, 3}));
        CHECK(fhirpath_patch(four, {move_op(list, 3, 2)}) == patient_with_identifiers({1, 2, 4, 3}));
        CHECK(fhirpath_patch(four, {move_op(list, 0, 3)}) == patient_with_identifiers({2, 3, 4, 1}));
        CHECK(fhirpath_patch(four, {move_op(list, 1, 0), move_op(list, 2, 1)}) ==
              patient_with_identifiers({2, 3, 1, 4}));
        CHECK(fhirpath_patch(four, {move_op(list, 3, 0), move_op(list, 3, 1), move_op(list, 3, 2)}) ==
              patient_with_identifiers({4, 3, 2, 1}));
    }
}

TEST_CASE("fhirpath patch, official: Operation on missing element (#1 fails, #2 adds a first identifier)") {
    auto failure = fhirpath_patch_error(
        R"({"resourceType":"Patient","identifier":[{"use":"official","value":"123"}]})",
        {add_op("Patient.identifier.where(use = 'official').period", "end", R"("valueDate":"2021-12-01")")});
    CHECK(failure.kind == fhir::category::invalid);
    CHECK(failure.issues.front().code == "not-found");
    CHECK(failure.issues.front().diagnostics ==
          "FHIRPath Patch operation 0 (add Patient.identifier.where(use = 'official').period): the path selects "
          "nothing; add needs exactly one element to add to");
    CHECK(failure.issues.front().expression == "Parameters.parameter[0]");

    CHECK(fhirpath_patch(R"({"resourceType":"Patient"})", {add_op("Patient", "identifier", identifier_value(3))}) ==
          patient_with_identifiers({3}));
}

TEST_CASE("fhirpath patch, official: Full Resource (narrative and a family name; the birthDate extension stays)") {
    const std::string before =
        R"({"resourceType":"Patient","id":"example","text":{"status":"generated",)"
        R"("div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><b>Chalmers</b></div>"},)"
        R"("name":[{"use":"official","family":"Chalmers","given":["Peter","James"]},{"use":"usual","given":["Jim"]}],)"
        R"("birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/)"
        R"(patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]},)"
        R"("deceasedBoolean":false,"managingOrganization":{"reference":"Organization/1"}})";
    std::string after = before;
    after.replace(after.find("<b>Chalmers"), 11, "<b>Chalmers1");
    after.replace(after.find("\"family\":\"Chalmers\""), 19, "\"family\":\"Chalmers1\"");
    CHECK(fhirpath_patch(
              before, {replace_op("Patient.text.div", R"("valueString":"<div xmlns=\"http://www.w3.org/1999/xhtml\">)"
                                                      R"(<b>Chalmers1</b></div>")"),
                       replace_op("Patient.name[0].family", R"("valueString":"Chalmers1")")}) == after);
}

// --- FHIRPath Patch: the rest of the page's rules, and failures ---------------------------------------

TEST_CASE("fhirpath patch: a deeply nested path is refused as malformed, not a stack overflow") {
    // Found with tests/fuzz/fuzz_fhirpath: a path of 10000 `(` crashed the server (fhirpath.cpp's parser).
    const std::string path = std::string(100000, '(') + "Patient.birthDate" + std::string(100000, ')');
    auto failure = fhirpath_patch_error(patient_with_identifiers({1}), {delete_op(path)});
    CHECK(failure.kind == fhir::category::malformed);
    CHECK(failure.issues.front().diagnostics.find("the expression is too long") != std::string::npos);
}

TEST_CASE("fhirpath patch: delete of nothing is not an error; of two elements it is") {
    const std::string patient = patient_with_identifiers({1, 2});
    CHECK(fhirpath_patch(patient, {delete_op("Patient.birthDate")}) == patient);
    CHECK(fhirpath_patch(patient, {delete_op("Patient.identifier.where(value = 'value 9')")}) == patient);
    auto failure = fhirpath_patch_error(patient, {delete_op("Patient.identifier")});
    CHECK(failure.kind == fhir::category::invalid);
    CHECK(
        failure.issues.front().diagnostics ==
        "FHIRPath Patch operation 0 (delete Patient.identifier): the path selects 2 elements; delete removes only one");
    CHECK(fhirpath_patch(patient, {delete_op("Patient.identifier.where(value = 'value 2')")}) ==
          patient_with_identifiers({1}));
}

TEST_CASE("fhirpath patch: replace needs exactly one element; add, one parent; diagnostics carry no patient data") {
    const std::string patient = R"({"resourceType":"Patient","name":[{"family":"Smith"},{"family":"Jones"}]})";
    auto none = fhirpath_patch_error(patient, {replace_op("Patient.birthDate", R"("valueDate":"2000-01-01")")});
    CHECK(none.kind == fhir::category::invalid);
    CHECK(none.issues.front().code == "not-found");
    auto two = fhirpath_patch_error(patient, {replace_op("Patient.name.family", R"("valueString":"Brown")")});
    CHECK(two.issues.front().diagnostics == "FHIRPath Patch operation 0 (replace Patient.name.family): the path "
                                            "selects 2 elements; replace needs exactly one element");
    auto add_two = fhirpath_patch_error(patient, {add_op("Patient.name", "text", R"("valueString":"Brown")")});
    CHECK(add_two.kind == fhir::category::invalid);
    for (const fhir::error* failure : {&none, &two, &add_two})
        for (const char* value : {"Smith", "Jones", "Brown"})
            CHECK(failure->issues.front().diagnostics.find(value) == std::string::npos);
}

TEST_CASE("fhirpath patch: add to a single element that has a value fails; a list is appended to") {
    const std::string patient = R"({"resourceType":"Patient","birthDate":"1920-01-01","name":[{"given":["A"]}]})";
    CHECK(fhirpath_patch_error(patient, {add_op("Patient", "birthDate", R"("valueDate":"1930-01-01")")}).kind ==
          fhir::category::invalid);
    CHECK(fhirpath_patch(patient, {add_op("Patient.name[0]", "given", R"("valueString":"B")")}) ==
          R"({"resourceType":"Patient","birthDate":"1920-01-01","name":[{"given":["A","B"]}]})");
}

TEST_CASE("fhirpath patch: choice elements take the value's type in their JSON name") {
    SUBCASE("add deceased with a valueBoolean makes deceasedBoolean; a second deceased[x] is refused") {
        const std::string patient = R"({"resourceType":"Patient","active":true})";
        const std::string added = fhirpath_patch(patient, {add_op("Patient", "deceased", R"("valueBoolean":true)")});
        CHECK(added == R"({"resourceType":"Patient","active":true,"deceasedBoolean":true})");
        CHECK(fhirpath_patch_error(added, {add_op("Patient", "deceased", R"("valueDateTime":"2020-01-01")")}).kind ==
              fhir::category::invalid);
        CHECK(fhirpath_patch_error(patient, {add_op("Patient", "deceased", R"("valueQuantity":{"value":1})")})
                  .issues.front()
                  .code == "value");
        CHECK(fhirpath_patch_error(patient, {add_op("Patient", "deceasedBoolean", R"("valueDateTime":"2020")")})
                  .issues.front()
                  .code == "value");
    }
    SUBCASE("replace Observation.value: valueQuantity becomes valueString, where it was") {
        CHECK(fhirpath_patch(R"({"resourceType":"Observation","status":"final","valueQuantity":{"value":1.10},)"
                             R"("note":[{"text":"n"}]})",
                             {replace_op("Observation.value", R"("valueString":"high")")}) ==
              R"({"resourceType":"Observation","status":"final","valueString":"high","note":[{"text":"n"}]})");
    }
    SUBCASE("a component from parts, its value[x] named by its part") {
        CHECK(fhirpath_patch(R"({"resourceType":"Observation","status":"final"})",
                             {add_op("Observation", "component",
                                     R"("part":[{"name":"code","valueCodeableConcept":{"text":"systolic"}},)"
                                     R"({"name":"value","valueQuantity":{"value":120.0,"unit":"mmHg"}}])")}) ==
              R"({"resourceType":"Observation","status":"final","component":[{"code":{"text":"systolic"},)"
              R"("valueQuantity":{"value":120.0,"unit":"mmHg"}}]})");
    }
}

TEST_CASE("fhirpath patch: values are type-checked against the definitions") {
    auto add_to_patient = [](const std::string& name, const std::string& value) {
        return fhir::apply_fhirpath_patch(R"({"resourceType":"Patient"})",
                                          parameters({add_op("Patient", name, value)}));
    };
    CHECK(add_to_patient("maritalStatus", R"("valueCoding":{"code":"M"})").failure().issues.front().code == "value");
    CHECK(add_to_patient("maritalStatus", R"("valueFoo":{"code":"M"})").failure().issues.front().code == "value");
    CHECK(add_to_patient("contact", R"("valueString":"x")").failure().kind == fhir::category::invalid);
    CHECK(add_to_patient("birthDate", R"("part":[{"name":"x","valueString":"y"}])").failure().kind ==
          fhir::category::invalid);
    CHECK(add_to_patient("favouriteColour", R"("valueString":"blue")").failure().kind == fhir::category::invalid);
    CHECK(add_to_patient("contact", R"("part":[{"name":"colour","valueString":"blue"}])").failure().kind ==
          fhir::category::invalid);
    CHECK(add_to_patient("birthDate", R"("valueString":"1930-01-01")").ok()); // primitives: the validator checks text
}

TEST_CASE("fhirpath patch: insert into a list that does not exist yet; indexes past the end fail") {
    const std::string patient = R"({"resourceType":"Patient","name":[{"family":"Smith"}]})";
    CHECK(fhirpath_patch(patient, {insert_op("Patient.name[0].given", 0, R"("valueString":"Jo")")}) ==
          R"({"resourceType":"Patient","name":[{"family":"Smith","given":["Jo"]}]})");
    CHECK(fhirpath_patch_error(patient, {insert_op("Patient.name[0].given", 1, R"("valueString":"Jo")")})
              .issues.front()
              .code == "value");
    CHECK(fhirpath_patch_error(patient, {insert_op("Patient.name", 2, R"("valueHumanName":{"text":"x"})")}).kind ==
          fhir::category::invalid);
    CHECK(fhirpath_patch_error(patient, {insert_op("Patient.name[0].family", 0, R"("valueString":"Jo")")}).kind ==
          fhir::category::invalid); // family is not a list
    const std::string two = patient_with_identifiers({1, 2});
    CHECK(fhirpath_patch_error(two, {move_op("Patient.identifier", 0, 2)}).issues.front().code == "value");
    CHECK(fhirpath_patch_error(two, {move_op("Patient.identifier[1]", 0, 0)}).kind == fhir::category::invalid);
    CHECK(fhirpath_patch_error(two, {insert_op("Patient.identifier.where(value = 'value 1')", 0, identifier_value(3))})
              .kind == fhir::category::invalid); // part of a list: the index would be ambiguous
}

TEST_CASE("fhirpath patch: a primitive's id and extensions (_name) go with it and stay aligned in lists") {
    const std::string extension = R"({"url":"http://example.org/e","valueString":"x"})";
    SUBCASE("add an extension to a primitive creates its _name") {
        CHECK(fhirpath_patch(R"({"resourceType":"Patient","birthDate":"1920-01-01"})",
                             {add_op("Patient.birthDate", "extension", "\"valueExtension\":" + extension)}) ==
              R"({"resourceType":"Patient","birthDate":"1920-01-01","_birthDate":{"extension":[)" + extension + "]}}");
    }
    SUBCASE("delete and replace of a primitive take its _name with it; a value part's _value[x] is kept") {
        const std::string patient =
            R"({"resourceType":"Patient","birthDate":"1920-01-01","_birthDate":{"extension":[)" + extension + "]}}";
        CHECK(fhirpath_patch(patient, {delete_op("Patient.birthDate")}) == R"({"resourceType":"Patient"})");
        CHECK(fhirpath_patch(patient, {replace_op("Patient.birthDate", R"("valueDate":"1930-01-01")")}) ==
              R"({"resourceType":"Patient","birthDate":"1930-01-01"})");
        CHECK(fhirpath_patch(
                  patient, {replace_op("Patient.birthDate", R"("valueDate":"1930-01-01","_valueDate":{"id":"b"})")}) ==
              R"({"resourceType":"Patient","birthDate":"1930-01-01","_birthDate":{"id":"b"}})");
        CHECK(fhirpath_patch(patient, {delete_op("Patient.birthDate.extension[0]")}) ==
              R"({"resourceType":"Patient","birthDate":"1920-01-01"})");
    }
    SUBCASE("delete, insert, move and add keep _given aligned with given") {
        const std::string patient =
            R"({"resourceType":"Patient","name":[{"given":["A","B","C"],"_given":[null,{"id":"b"},null]}]})";
        CHECK(fhirpath_patch(patient, {delete_op("Patient.name[0].given[1]")}) ==
              R"({"resourceType":"Patient","name":[{"given":["A","C"]}]})");
        CHECK(fhirpath_patch(patient, {delete_op("Patient.name[0].given[0]")}) ==
              R"({"resourceType":"Patient","name":[{"given":["B","C"],"_given":[{"id":"b"},null]}]})");
        CHECK(
            fhirpath_patch(patient, {insert_op("Patient.name[0].given", 0, R"("valueString":"Z")")}) ==
            R"({"resourceType":"Patient","name":[{"given":["Z","A","B","C"],"_given":[null,null,{"id":"b"},null]}]})");
        CHECK(fhirpath_patch(patient, {move_op("Patient.name[0].given", 1, 2)}) ==
              R"({"resourceType":"Patient","name":[{"given":["A","C","B"],"_given":[null,null,{"id":"b"}]}]})");
        CHECK(fhirpath_patch(patient, {add_op("Patient.name[0].given[0]", "id", R"("valueString":"a")")}) ==
              R"({"resourceType":"Patient","name":[{"given":["A","B","C"],"_given":[{"id":"a"},{"id":"b"},null]}]})");
    }
}

TEST_CASE("fhirpath patch: a contained resource from a resource part; numbers keep their text") {
    CHECK(fhirpath_patch(R"({"resourceType":"Observation","status":"final","valueQuantity":{"value":1.10}})",
                         {add_op("Observation", "contained", R"("resource":{"resourceType":"Patient","id":"p"})"),
                          add_op("Observation", "subject", R"("valueReference":{"reference":"#p"})"),
                          replace_op("Observation.contained[0].id", R"("valueId":"q")")}) ==
          R"({"resourceType":"Observation","status":"final","valueQuantity":{"value":1.10},)"
          R"("contained":[{"resourceType":"Patient","id":"q"}],"subject":{"reference":"#p"}})");
}

TEST_CASE("fhirpath patch: not a FHIRPath Patch is malformed (400); FHIRPath outside the subset is unsupported") {
    const std::string patient = R"({"resourceType":"Patient","birthDate":"1920-01-01"})";
    auto kind_of = [&](const std::string& parameters_json) {
        auto out = fhir::apply_fhirpath_patch(patient, parameters_json);
        REQUIRE_FALSE(out.ok());
        return out.failure().kind;
    };
    CHECK(kind_of(R"({"resourceType":"Patient"})") == fhir::category::malformed);
    CHECK(kind_of("[]") == fhir::category::malformed);
    CHECK(kind_of(R"({"resourceType":"Parameters","parameter":{}})") == fhir::category::malformed);
    CHECK(kind_of(parameters({R"({"name":"other","valueString":"x"})"})) == fhir::category::malformed);

    auto unknown = fhirpath_patch_error(patient, {operation("upsert", "Patient.birthDate")});
    CHECK(unknown.kind == fhir::category::malformed);
    CHECK(unknown.issues.front().code == "code-invalid");
    auto missing = fhirpath_patch_error(patient, {operation("replace", "Patient.birthDate")});
    CHECK(missing.issues.front().code == "required");
    CHECK(missing.issues.front().diagnostics == "FHIRPath Patch operation 0: replace needs the part 'value'");
    CHECK(fhirpath_patch_error(patient, {operation("delete", "Patient.birthDate", index_part("index", 0))}).kind ==
          fhir::category::malformed); // a part that delete does not take
    CHECK(fhirpath_patch_error(patient, {insert_op("Patient.name", -1, R"("valueString":"x")")}).kind ==
          fhir::category::malformed);
    CHECK(fhirpath_patch_error(patient, {operation("replace", "Patient.birthDate", R"({"name":"value"})")}).kind ==
          fhir::category::malformed);
    CHECK(fhirpath_patch_error(patient, {delete_op("Patient.birthDate.")}).kind == fhir::category::malformed);
    CHECK(fhirpath_patch_error(patient, {delete_op("Patient.name.select(given)")}).kind == fhir::category::unsupported);
    CHECK(fhirpath_patch_error(R"({"resourceType":"Observation","status":"final","subject":{"reference":"#p"}})",
                               {delete_op("Observation.subject.resolve().id")})
              .kind == fhir::category::unsupported);
    CHECK(fhirpath_patch_error(patient, {replace_op("Patient.birthDate.exists()", R"("valueBoolean":true)")}).kind ==
          fhir::category::invalid); // a computed value is not an element
    CHECK(fhirpath_patch_error(patient, {delete_op("Patient")}).kind == fhir::category::invalid);
}

// --- references ---------------------------------------------------------------------------------------

TEST_CASE("find_references: every Reference.reference in document order, with its path") {
    const std::string observation =
        R"({"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p",)"
        R"("managingOrganization":{"reference":"Organization/A1"}}],)"
        R"("extension":[{"url":"http://example.org/e","valueReference":{"reference":"Device/d1"}}],"status":"final",)"
        R"("_status":{"extension":[{"url":"http://example.org/s","valueReference":{"reference":"Practitioner/s"}}]},)"
        R"("subject":{"reference":"#p","display":"x"},)"
        R"("performer":[{"display":"no reference"},{"reference":"urn:uuid:0f3c"}],"valueQuantity":{"value":1.10},)"
        R"("note":[{"authorReference":{"reference":"Practitioner/a",)"
        R"("identifier":{"value":"1","assigner":{"reference":"Organization/B2"}}}}]})";
    auto found = fhir::find_references(observation);
    REQUIRE(found.ok());
    std::vector<std::pair<std::string, std::string>> got;
    for (auto& f : *found)
        got.emplace_back(f.reference, f.path);
    CHECK(got == std::vector<std::pair<std::string, std::string>>{
                     {"Organization/A1", "Observation.contained[0].managingOrganization.reference"},
                     {"Device/d1", "Observation.extension[0].valueReference.reference"},
                     {"Practitioner/s", "Observation.status.extension[0].valueReference.reference"},
                     {"#p", "Observation.subject.reference"},
                     {"urn:uuid:0f3c", "Observation.performer[1].reference"},
                     {"Practitioner/a", "Observation.note[0].authorReference.reference"},
                     {"Organization/B2", "Observation.note[0].authorReference.identifier.assigner.reference"},
                 });
}

TEST_CASE("find_references: elements named `reference` that are not Reference.reference are not references") {
    // Immunization.education.reference is a uri (R4 definitions); so is Expression.reference.
    auto found = fhir::find_references(
        R"({"resourceType":"Immunization","status":"completed","patient":{"reference":"Patient/9000000009"},)"
        R"("education":[{"reference":"http://example.org/leaflet.pdf"}]})");
    REQUIRE(found.ok());
    REQUIRE(found->size() == 1);
    CHECK(found->front().path == "Immunization.patient.reference");
    CHECK(fhir::find_references("{").failure().kind == fhir::category::malformed);
}

namespace {

const std::string full_url = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";
const std::string conditional = "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000017&active=true";

/// An Observation that refers to `patient` and `other` in its elements and its narratives' links (`other_in_div`
/// as written in XHTML), and names the full URL in text that is no link.
std::string observation_referring_to(const std::string& patient, const std::string& other,
                                     const std::string& other_in_div) {
    const std::string div_start = R"(<div xmlns=\"http://www.w3.org/1999/xhtml\">)";
    return R"({"resourceType":"Observation","text":{"status":"generated","div":")" + div_start + R"(<a href=\")" +
           patient + R"(\">)" + full_url + "</a> <img src='" + patient + R"('/><a title=\")" + full_url +
           R"(\" href=\")" + other_in_div + R"(\">b</a></div>"},)" +
           R"("contained":[{"resourceType":"Provenance","text":{"status":"generated","div":")" + div_start +
           "<a href='" + patient + R"('>p</a></div>"},"target":[{"reference":")" + patient + R"("}]}],)" +
           R"("status":"final","subject":{"reference":")" + patient + R"("},"performer":[{"reference":")" + other +
           R"("}],"derivedFrom":[{"reference":")" + full_url + R"(/other"}],"valueQuantity":{"value":1.10}})";
}

} // namespace

TEST_CASE("replace_references: strings equal to a key, and narrative href/src, are rewritten; nothing else") {
    const std::unordered_map<std::string, std::string> replacements = {
        {full_url, "Patient/9000000009"},
        {conditional, "Patient/9000000017"},
    };
    std::string conditional_in_div = conditional;
    conditional_in_div.replace(conditional_in_div.find('&'), 1, "&amp;");
    auto out =
        fhir::replace_references(observation_referring_to(full_url, conditional, conditional_in_div), replacements);
    REQUIRE(out.ok());
    CHECK(*out == observation_referring_to("Patient/9000000009", "Patient/9000000017", "Patient/9000000017"));
    CHECK(*fhir::replace_references(R"({ "a" : 1.0e2 , "b":"x"})", {}) == R"({"a":1.0e2,"b":"x"})");
    CHECK(fhir::replace_references("[", replacements).failure().kind == fhir::category::malformed);
}

TEST_CASE("find_references: an Attachment's url counts where it names a Binary kept by a server") {
    auto found = fhir::find_references(
        R"({"resourceType":"DocumentReference","status":"current","subject":{"reference":"Patient/9000000009"},)"
        R"("content":[{"attachment":{"url":"Binary/b1"}},{"attachment":{"url":"urn:uuid:0c8f1b2e-1111-4a8e-9a51-000000000002"}},)"
        R"({"attachment":{"url":"https://elsewhere.example/fhir/Binary/b2"}},)"
        R"({"attachment":{"url":"https://documents.example/letters/1.pdf"}}]})");
    REQUIRE(found.ok());
    REQUIRE(found->size() == 4);
    CHECK((*found)[1].reference == "Binary/b1");
    CHECK((*found)[1].path == "DocumentReference.content[0].attachment.url");
    CHECK((*found)[2].reference == "urn:uuid:0c8f1b2e-1111-4a8e-9a51-000000000002");
    CHECK((*found)[3].reference == "https://elsewhere.example/fhir/Binary/b2");
}
