// Tests for fhir_model/src/search_values.cpp: the values each search parameter type yields from the
// official R4 examples where the answer is evident, and the edge cases (choice types, resolve() is
// filtering, missing elements, open periods, composites, identifier types for :of-type).
#include "fhir_model/search_values.hpp"

#include "fhir_model/fhirpath.hpp"
#include "fhir_model/resource.hpp"
#include "fhir_model/search_parameters.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <set>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fhir = caregate::fhir;

namespace {

std::string example(const std::string& name) {
    std::ifstream in(std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data/r4-examples" / (name + ".json"));
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<fhir::search_value> of(const std::vector<fhir::search_value>& all, std::string_view code) {
    std::vector<fhir::search_value> out;
    for (auto& v : all)
        if (v.code == code)
            out.push_back(v);
    return out;
}

std::vector<std::string> normalized(const std::vector<fhir::search_value>& values) {
    std::vector<std::string> out;
    for (auto& v : values)
        out.push_back(v.normalized);
    return out;
}

constexpr std::int64_t micros_per_day = 86400LL * 1000000;
using strings = std::vector<std::string>;

} // namespace

TEST_CASE("Patient-example: family, name parts, birthdate range, gender token, identifier, phone") {
    auto values = fhir::extract_search_values(example("Patient-example"));
    CHECK(normalized(of(values, "family")) == strings{"chalmers", "windsor"});
    CHECK(of(values, "family")[0].text == "Chalmers");
    auto name = normalized(of(values, "name"));
    CHECK(name == strings{"chalmers", "peter", "james", "jim", "windsor", "peter", "james"});

    auto birthdate = of(values, "birthdate");
    REQUIRE(birthdate.size() == 1);
    auto day = fhir::parse_date_time("1974-12-25");
    REQUIRE(day);
    CHECK(birthdate[0].range.begin == day->begin);
    CHECK(birthdate[0].range.end - birthdate[0].range.begin == micros_per_day);
    CHECK(birthdate[0].text == "1974-12-25");

    auto gender = of(values, "gender");
    REQUIRE(gender.size() == 1);
    CHECK(gender[0].code_value == "male");
    CHECK_FALSE(gender[0].has_system);

    auto identifier = of(values, "identifier");
    REQUIRE(identifier.size() == 1);
    CHECK(identifier[0].system == "urn:oid:1.2.36.146.595.217.0.1");
    CHECK(identifier[0].code_value == "12345");
    REQUIRE(identifier[0].identifier_types.size() == 1); // type MR, for :of-type
    CHECK(identifier[0].identifier_types[0].system == "http://terminology.hl7.org/CodeSystem/v2-0203");
    CHECK(identifier[0].identifier_types[0].code == "MR");

    auto phone = of(values, "phone");
    CHECK(phone.size() == 3);
    CHECK(phone[0].code_value == "(03) 5555 6473");
    CHECK(of(values, "email").empty());
    auto id = of(values, "_id");
    REQUIRE(id.size() == 1);
    CHECK(id[0].code_value == "example");
    CHECK(of(values, "active")[0].code_value == "true");
    CHECK(of(values, "organization")[0].target_type == "Organization");
    CHECK(of(values, "organization")[0].id == "1");
}

TEST_CASE("Invoice-example: a Money is a quantity whose code is its currency, in ISO 4217") {
    auto values = fhir::extract_search_values(example("Invoice-example"));
    for (auto* param : {"totalnet", "totalgross"}) {
        CAPTURE(param);
        auto total = of(values, param);
        REQUIRE(total.size() == 1);
        CHECK(total[0].has_system);
        CHECK(total[0].system == "urn:iso:std:iso:4217");
        CHECK(total[0].code_value == "EUR");
        CHECK(total[0].unit.empty());
    }
    CHECK(of(values, "totalnet")[0].text == "40");
    CHECK(of(values, "totalgross")[0].text == "48");
}

TEST_CASE("Observation-example: code token with system, value-quantity, subject and patient reference") {
    auto values = fhir::extract_search_values(example("Observation-example"));
    auto code = of(values, "code");
    REQUIRE(code.size() == 4);
    CHECK(code[0].system == "http://loinc.org");
    CHECK(code[0].code_value == "29463-7");
    CHECK(code[0].text == "Body Weight");

    auto quantity = of(values, "value-quantity");
    REQUIRE(quantity.size() == 1);
    CHECK(quantity[0].text == "185");
    CHECK(quantity[0].number == 185.0);
    CHECK(quantity[0].system == "http://unitsofmeasure.org");
    CHECK(quantity[0].code_value == "[lb_av]");
    CHECK(quantity[0].unit == "lbs");

    for (auto* param : {"subject", "patient"}) {
        CAPTURE(param);
        auto ref = of(values, param);
        REQUIRE(ref.size() == 1);
        CHECK(ref[0].target_type == "Patient");
        CHECK(ref[0].id == "example");
        CHECK(ref[0].url.empty());
    }
    auto date = of(values, "date"); // effectiveDateTime through the choice Observation.effective
    REQUIRE(date.size() == 1);
    CHECK(date[0].range.begin == fhir::parse_date_time("2016-03-28")->begin);

    auto composite = of(values, "code-value-quantity");
    REQUIRE(composite.size() == 4); // each code with the one quantity
    REQUIRE(composite[0].components.size() == 2);
    CHECK(composite[0].components[0].code_value == "29463-7");
    CHECK(composite[0].components[1].text == "185");
    CHECK(of(values, "value-string").empty()); // no valueString: no value
    CHECK(of(values, "value-concept").empty());
}

TEST_CASE("Observation-blood-pressure: component-code-value-quantity pairs each component's own values") {
    auto values = of(fhir::extract_search_values(example("Observation-blood-pressure")), "component-code-value-quantity");
    REQUIRE(values.size() == 4); // systolic has three codings, diastolic one; never systolic with 60
    for (auto& v : values) {
        CAPTURE(v.components[0].code_value);
        CHECK(v.components[1].text == (v.components[0].code_value == "8462-4" ? "60" : "107"));
    }
    CHECK(values[0].components[0].code_value == "8480-6");
    CHECK(values[3].components[0].code_value == "8462-4");
}

TEST_CASE("Encounter-f203: the period gives one date range from start to end") {
    auto date = of(fhir::extract_search_values(example("Encounter-f203")), "date");
    REQUIRE(date.size() == 1);
    CHECK(date[0].range.begin == fhir::parse_date_time("2013-03-11")->begin);
    CHECK(date[0].range.end == fhir::parse_date_time("2013-03-20")->end);
}

TEST_CASE("an open period is unbounded at its open end") {
    auto date = of(fhir::extract_search_values(
                       R"({"resourceType":"Encounter","status":"planned","class":{"code":"AMB"},"period":{"start":"2026-01"}})"),
                   "date");
    REQUIRE(date.size() == 1);
    CHECK(date[0].range.begin == fhir::parse_date_time("2026-01")->begin);
    CHECK(date[0].range.end == fhir::unbounded_high);
}

TEST_CASE("resolve() is Patient keeps a Practitioner out of the patient parameter") {
    auto values = fhir::extract_search_values(R"({"resourceType":"Appointment","status":"booked","participant":[
        {"actor":{"reference":"Patient/9000000009"},"status":"accepted"},
        {"actor":{"reference":"Practitioner/p1"},"status":"accepted"},
        {"actor":{"reference":"https://example.org/fhir/Location/l1"},"status":"accepted"}]})");
    auto patient = of(values, "patient");
    REQUIRE(patient.size() == 1);
    CHECK(patient[0].id == "9000000009");
    auto practitioner = of(values, "practitioner");
    REQUIRE(practitioner.size() == 1);
    CHECK(practitioner[0].id == "p1");
    auto location = of(values, "location");
    REQUIRE(location.size() == 1);
    CHECK(location[0].url == "https://example.org/fhir/Location/l1");
    CHECK(location[0].id.empty()); // another server's Location/l1 is not ours: matched by URL only
    CHECK(of(values, "actor").size() == 3);
}

TEST_CASE("a relative canonical names our resource by type and id as well as by URL") {
    auto values = fhir::extract_search_values(R"({"resourceType":"QuestionnaireResponse","status":"completed",
        "questionnaire":"Questionnaire/gcs"})");
    auto questionnaire = of(values, "questionnaire");
    REQUIRE(questionnaire.size() == 1);
    CHECK(questionnaire[0].url == "Questionnaire/gcs");
    CHECK(questionnaire[0].target_type == "Questionnaire");
    CHECK(questionnaire[0].id == "gcs");
}

TEST_CASE("a logical reference gives the identifier's system and value") {
    auto values = fhir::extract_search_values(R"({"resourceType":"Condition","subject":{"type":"Patient",
        "identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}}})");
    auto subject = of(values, "subject");
    REQUIRE(subject.size() == 1);
    CHECK(subject[0].system == "https://fhir.nhs.uk/Id/nhs-number");
    CHECK(subject[0].code_value == "9000000009");
    CHECK(subject[0].target_type == "Patient");
    CHECK(of(values, "patient").size() == 1); // Reference.type says Patient
}

TEST_CASE("choice types: Condition.onset as Age, dateTime or string feeds only its own parameter") {
    auto values = fhir::extract_search_values(
        R"({"resourceType":"Condition","subject":{"reference":"Patient/a"},"onsetAge":{"value":52,"unit":"a","system":"http://unitsofmeasure.org","code":"a"}})");
    CHECK(of(values, "onset-age").size() == 1);
    CHECK(of(values, "onset-age")[0].text == "52");
    CHECK(of(values, "onset-date").empty());
    auto dated = fhir::extract_search_values(
        R"({"resourceType":"Condition","subject":{"reference":"Patient/a"},"onsetDateTime":"2020-02"})");
    CHECK(of(dated, "onset-date").size() == 1);
    CHECK(of(dated, "onset-age").empty());
}

TEST_CASE("an Identifier's value comes with each coding of its type that has a system and a code") {
    auto values = of(fhir::extract_search_values(R"({"resourceType":"Patient","identifier":[
        {"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"},
        {"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"},
                           {"system":"http://example.org/id-types","code":"hospital"},
                           {"code":"no-system"},{"system":"http://example.org/no-code"}],"text":"Hospital number"},
         "system":"http://example.org/mrn","value":"A 12345"},
        {"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"DL"}],"text":"Licence"}}]})"),
                     "identifier");
    REQUIRE(values.size() == 3);
    CHECK(values[0].identifier_types.empty()); // no type
    CHECK(values[1].code_value == "A 12345"); // the value as written: :of-type matches it exactly
    CHECK(values[1].text == "Hospital number");
    REQUIRE(values[1].identifier_types.size() == 2);
    CHECK(values[1].identifier_types[0].system == "http://terminology.hl7.org/CodeSystem/v2-0203");
    CHECK(values[1].identifier_types[0].code == "MR");
    CHECK(values[1].identifier_types[1].system == "http://example.org/id-types");
    CHECK(values[1].identifier_types[1].code == "hospital");
    // A type but no value: a token for the type's text only, nothing :of-type can meet.
    CHECK(values[2].code_value.empty());
    CHECK(values[2].text == "Licence");
    CHECK(values[2].identifier_types.empty());
    // Only tokens from an Identifier have them.
    for (auto& v : fhir::extract_search_values(example("Observation-example")))
        CHECK(v.identifier_types.empty());
}

// FHIR's FHIRPath page, "Using FHIR types in expressions": a FHIR primitive converts to its System
// type (FHIR.dateTime -> System.DateTime), and only is() tells them apart; ofType() (and as()) take
// either name.
TEST_CASE("FHIRPath casts to a System type take the FHIR primitives that convert to it; is() does not") {
    rapidjson::Document observation;
    observation.Parse(R"({"resourceType":"Observation","status":"final","code":{"text":"onset"},)"
                      R"("valueDateTime":"2026-11-23","issued":"2026-11-23T10:00:00Z"})");
    REQUIRE_FALSE(observation.HasParseError());
    auto count = [&](std::string_view text) {
        std::string error;
        auto parsed = fhir::fhirpath_expression::parse(text, error);
        REQUIRE_MESSAGE(parsed, error);
        return parsed->evaluate(observation).size();
    };
    auto truth = [&](std::string_view text) {
        std::string error;
        auto parsed = fhir::fhirpath_expression::parse(text, error);
        REQUIRE_MESSAGE(parsed, error);
        auto result = parsed->evaluate(observation);
        REQUIRE(result.size() == 1);
        REQUIRE(result[0].boolean);
        return *result[0].boolean;
    };
    CHECK(count("Observation.value.as(DateTime)") == 1);
    CHECK(count("Observation.value.as(System.DateTime)") == 1);
    CHECK(count("Observation.value.as(dateTime)") == 1);
    CHECK(count("Observation.value.ofType(DateTime)") == 1);
    CHECK(count("Observation.value as DateTime") == 1);
    CHECK(count("Observation.issued.as(DateTime)") == 1); // instant -> System.DateTime
    CHECK(count("Observation.status.as(String)") == 1);   // code -> System.String
    CHECK(count("Observation.value.as(Period)") == 0);
    CHECK(count("Observation.value.as(String)") == 0);
    CHECK(count("Observation.value.as(Date)") == 0); // dateTime converts to DateTime, not Date
    CHECK(truth("Observation.value is dateTime"));
    CHECK_FALSE(truth("Observation.value is DateTime"));
    CHECK_FALSE(truth("Observation.value.is(System.DateTime)"));
}

TEST_CASE("Observation code-value-date: the code with a valueDateTime or a valuePeriod") {
    auto dated = of(fhir::extract_search_values(
                        R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org",)"
                        R"("code":"11368-8"}]},"valueDateTime":"2026-11-23"})"),
                    "code-value-date");
    REQUIRE(dated.size() == 1);
    REQUIRE(dated[0].components.size() == 2);
    CHECK(dated[0].components[0].code_value == "11368-8");
    CHECK(dated[0].components[1].type == fhir::search_param_type::date);
    CHECK(dated[0].components[1].range.begin == fhir::parse_date_time("2026-11-23")->begin);
    CHECK(dated[0].components[1].range.end == fhir::parse_date_time("2026-11-23")->end);

    auto period = of(fhir::extract_search_values(
                         R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org",)"
                         R"("code":"11368-8"}]},"valuePeriod":{"start":"2026-11-01","end":"2026-11-23"}})"),
                     "code-value-date");
    REQUIRE(period.size() == 1);
    CHECK(period[0].components[1].range.begin == fhir::parse_date_time("2026-11-01")->begin);
    CHECK(period[0].components[1].range.end == fhir::parse_date_time("2026-11-23")->end);

    CHECK(of(fhir::extract_search_values(example("Observation-example")), "code-value-date").empty()); // a Quantity
}

TEST_CASE("DocumentReference relationship: the target reference first, the relation code second") {
    auto values = fhir::extract_search_values(R"({"resourceType":"DocumentReference","status":"current",)"
                                              R"("relatesTo":[{"code":"replaces","target":{"reference":"DocumentReference/doc-0"}},)"
                                              R"({"code":"appends","target":{"reference":"DocumentReference/doc-1"}}],)"
                                              R"("content":[{"attachment":{"url":"http://example.org/letter.pdf"}}]})");
    auto relationship = of(values, "relationship");
    REQUIRE(relationship.size() == 2); // each relatesTo with its own code, never replaces with doc-1
    for (std::size_t i = 0; i < 2; ++i) {
        CAPTURE(i);
        REQUIRE(relationship[i].components.size() == 2);
        CHECK(relationship[i].components[0].type == fhir::search_param_type::reference);
        CHECK(relationship[i].components[0].target_type == "DocumentReference");
        CHECK(relationship[i].components[0].id == (i == 0 ? "doc-0" : "doc-1"));
        CHECK(relationship[i].components[1].type == fhir::search_param_type::token);
        CHECK(relationship[i].components[1].code_value == (i == 0 ? "replaces" : "appends"));
    }
    // The component parameters on their own agree.
    REQUIRE(of(values, "relatesto").size() == 2);
    CHECK(of(values, "relatesto")[0].id == "doc-0");
    CHECK(of(values, "relation")[0].code_value == "replaces");
    const auto* parameter = fhir::find_search_parameter("DocumentReference", "relationship");
    REQUIRE(parameter);
    REQUIRE(parameter->components.size() == 2);
    CHECK(parameter->components[0].code == "relatesto");
    CHECK(parameter->components[0].expression.text() == "target");
    CHECK(parameter->components[1].code == "relation");
    CHECK(parameter->components[1].expression.text() == "code");
}

TEST_CASE("Patient.deceased: a token from a Boolean-valued expression") {
    auto alive = fhir::extract_search_values(R"({"resourceType":"Patient","deceasedBoolean":false})");
    REQUIRE(of(alive, "deceased").size() == 1);
    CHECK(of(alive, "deceased")[0].code_value == "false");
    auto died = fhir::extract_search_values(R"({"resourceType":"Patient","deceasedDateTime":"2020-01-01"})");
    CHECK(of(died, "deceased")[0].code_value == "true");
}

TEST_CASE("string normalisation folds case, Latin-1 accents and whitespace") {
    CHECK(fhir::normalize_search_string("  Ren\xC3\xA9" "e   M\xC3\x9C" "LLER\t") == "renee muller");
    CHECK(fhir::normalize_search_string("\xC3\x86sop Stra\xC3\x9F" "e") == "aesop strasse");
    auto values = fhir::extract_search_values(R"({"resourceType":"Patient","address":[{"line":["1 High St"],"city":"Z\u00fcrich","postalCode":"8001"}]})");
    CHECK(normalized(of(values, "address")) == strings{"1 high st", "zurich", "8001"});
    CHECK(normalized(of(values, "address-city")) == strings{"zurich"});
}

TEST_CASE("missing elements give no values, and errors are values") {
    auto values = fhir::extract_search_values(R"({"resourceType":"Patient"})");
    // Only deceased: its expression (deceased.exists() and deceased != false) is false, not empty.
    REQUIRE(values.size() == 1);
    CHECK(values[0].code == "deceased");
    CHECK(values[0].code_value == "false");
    std::vector<fhir::search_value> out;
    CHECK_FALSE(fhir::extract_search_values(R"({"resourceType":"Bundle"})", out));
    CHECK_FALSE(fhir::extract_search_values(R"({"resourceType":)", out));
    CHECK_FALSE(fhir::extract_search_values(R"({"id":"x"})", out));
}

TEST_CASE("every official example of the supported types extracts without throwing") {
    int files = 0;
    for (auto& entry : std::filesystem::directory_iterator(std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data/r4-examples")) {
        std::ifstream in(entry.path());
        std::stringstream text;
        text << in.rdbuf();
        std::vector<fhir::search_value> out;
        CAPTURE(entry.path().filename().string());
        CHECK(fhir::extract_search_values(text.str(), out));
        ++files;
    }
    CHECK(files > 300);
}

/// A value as text that tells any two apart (composites by their components); not its parameter.
std::string value_key(const fhir::search_value& v) {
    std::string text = v.text + '\x1f' + v.normalized + '\x1f' + v.system + (v.has_system ? "+" : "-") + '\x1f' +
                       v.code_value + '\x1f' + v.unit + '\x1f' + std::to_string(v.range.begin) + '\x1f' +
                       std::to_string(v.range.end) + '\x1f' + v.target_type + '\x1f' + v.id + '\x1f' + v.url;
    for (const auto& c : v.components)
        text += "\x1e" + value_key(c);
    return text;
}

// The index is made from one parse (fhir::stamp_and_extract): it must be exactly what stamping and
// then extracting from the stamped JSON gives, the server's id and lastUpdated included.
TEST_CASE("stamp_and_extract gives stamp_resource's JSON and that JSON's values, on every official example") {
    constexpr std::string_view instant = "2026-12-07T05:00:00.123456Z";
    int files = 0;
    for (const auto& file : std::filesystem::directory_iterator(std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data/r4-examples")) {
        const std::string name = file.path().stem().string();
        const std::string content = example(name);
        CAPTURE(name);
        const std::string stamped = fhir::stamp_resource(content, "server-id", 7, instant);
        for (auto which : {fhir::search_values_of::every_parameter, fhir::search_values_of::own_values_only}) {
            auto made = fhir::stamp_and_extract(content, "server-id", 7, instant, which);
            REQUIRE(made);
            CHECK(made->stamped == stamped);
            std::vector<fhir::search_value> expected;
            REQUIRE(fhir::extract_search_values(stamped, expected, which));
            std::multiset<std::string> got, want;
            for (const auto& v : made->values)
                got.insert(v.parameter->base + "." + std::string(v.code) + '\x1d' + value_key(v));
            for (const auto& v : expected)
                want.insert(v.parameter->base + "." + std::string(v.code) + '\x1d' + value_key(v));
            CHECK(got == want);
        }
        ++files;
    }
    CHECK(files > 300);
    auto values_of = [&](std::string_view content) {
        auto made = fhir::stamp_and_extract(content, "p1", 2, instant);
        REQUIRE(made);
        return made->values;
    };
    // The server's id and lastUpdated, not the client's; meta made where there was none or it was no object.
    for (std::string_view content : {R"({"resourceType":"Patient","id":"client","meta":{"lastUpdated":"2001-01-01T00:00:00Z"}})",
                                     R"({"resourceType":"Patient"})", R"({"resourceType":"Patient","meta":"x"})"}) {
        CAPTURE(content);
        const auto values = values_of(content);
        CHECK(of(values, "_id").size() == 1);
        CHECK(of(values, "_id")[0].code_value == "p1");
        REQUIRE(of(values, "_lastUpdated").size() == 1);
        CHECK(of(values, "_lastUpdated")[0].text == instant);
    }
    CHECK_FALSE(fhir::stamp_and_extract(R"({"resourceType":)", "p1", 1, instant));
    CHECK_FALSE(fhir::stamp_and_extract(R"({"id":"x"})", "p1", 1, instant));
    CHECK_FALSE(fhir::stamp_and_extract(R"(["resourceType"])", "p1", 1, instant));
    CHECK_FALSE(fhir::stamp_and_extract(R"({"resourceType":"Bundle"})", "p1", 1, instant));
}

// A union parameter (search_parameters.hpp) is stored and searched as its parts: that is exact only
// if its values are always theirs together. Checked on every official example of a type that has one.
TEST_CASE("a union parameter's values are exactly its parts' values, on every official example") {
    std::vector<const fhir::search_parameter*> unions;
    for (const fhir::search_parameter& p : fhir::all_search_parameters())
        if (!p.union_of.empty())
            unions.push_back(&p);
    auto named = [&](std::string_view base, std::string_view code) {
        for (const auto* p : unions)
            if (p->base == base && p->code == code) {
                strings parts;
                for (const auto* part : p->union_of)
                    parts.emplace_back(part->code);
                return parts;
            }
        return strings{};
    };
    CHECK(named("Observation", "combo-code") == strings{"code", "component-code"});
    CHECK(named("Observation", "combo-code-value-quantity") ==
          strings{"code-value-quantity", "component-code-value-quantity"});
    CHECK(named("Observation", "combo-value-quantity") == strings{"component-value-quantity", "value-quantity"});
    CHECK(named("Patient", "phonetic") == strings{"name"});
    CHECK(named("Patient", "name").empty());        // the one of the two that keeps its values
    CHECK(named("Organization", "name").empty());   // name | alias: phonetic (name) is only a part of it
    CHECK(named("Observation", "patient").empty()); // a reference is never a union
    for (const auto* p : unions)
        CHECK(p->type != fhir::search_param_type::reference);

    int compared = 0;
    for (const auto& file : std::filesystem::directory_iterator(std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data/r4-examples")) {
        const std::string name = file.path().stem().string();
        const std::string type = name.substr(0, name.find('-'));
        std::vector<const fhir::search_parameter*> here;
        for (const auto* p : unions)
            if (p->base == type)
                here.push_back(p);
        if (here.empty())
            continue;
        const auto values = fhir::extract_search_values(example(name));
        for (const auto* p : here) {
            CAPTURE(name);
            CAPTURE(p->code);
            std::multiset<std::string> own, parts;
            for (const auto& v : of(values, p->code))
                own.insert(value_key(v));
            for (const auto* part : p->union_of)
                for (const auto& v : of(values, part->code))
                    parts.insert(value_key(v));
            CHECK(own == parts);
            compared += !own.empty();
        }
    }
    CHECK(compared > 20); // the check saw values, not only empty sets
}

// A narrowing (search_parameters.hpp) is stored as its parameter's rows of one target type: exact only
// if the index records, for every reference, the type resolve() gives. Checked on every official
// example, and on references that are not a relative Type/id.
TEST_CASE("a narrowing's values are exactly its parameter's values of its target type") {
    const auto* patient = fhir::find_search_parameter("Observation", "patient");
    REQUIRE(patient != nullptr);
    REQUIRE(patient->narrows != nullptr);
    CHECK(patient->narrows->code == "subject");
    CHECK(patient->narrowed_to == "Patient");
    CHECK_FALSE(patient->has_own_values());
    const auto* location = fhir::find_search_parameter("Appointment", "location");
    REQUIRE(location->narrows != nullptr);
    CHECK(location->narrows->code == "actor");
    CHECK(location->narrowed_to == "Location");
    // AuditEvent's patient narrows two parameters' references (agent.who and entity.what): not one.
    CHECK(fhir::find_search_parameter("AuditEvent", "patient")->narrows == nullptr);
    CHECK(fhir::find_search_parameter("Observation", "subject")->has_own_values());

    auto key = [](const fhir::search_value& v) {
        return v.target_type + '\x1f' + v.id + '\x1f' + v.url + '\x1f' + v.system + '\x1f' + v.code_value;
    };
    auto same = [&](const std::string& json, const std::string& name) {
        const auto values = fhir::extract_search_values(json);
        int narrowed = 0;
        for (const fhir::search_parameter& p : fhir::all_search_parameters()) {
            if (!p.narrows)
                continue;
            CAPTURE(name);
            CAPTURE(p.base);
            CAPTURE(p.code);
            std::multiset<std::string> own, narrowing;
            for (const auto& v : values)
                if (v.parameter == &p)
                    own.insert(key(v));
                else if (v.parameter == p.narrows && v.target_type == p.narrowed_to)
                    narrowing.insert(key(v));
            CHECK(own == narrowing);
            narrowed += !own.empty();
        }
        return narrowed;
    };
    int compared = 0;
    for (const auto& file : std::filesystem::directory_iterator(std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data/r4-examples"))
        compared += same(example(file.path().stem().string()), file.path().stem().string());
    CHECK(compared > 50);
    // A contained Patient, an absolute URL and an identifier with a type: resolve() names the type.
    CHECK(same(R"({"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"}],"status":"final",)"
               R"("code":{"text":"x"},"subject":{"reference":"#p"}})", "contained") == 1);
    CHECK(same(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
               R"("subject":{"reference":"https://other.example/fhir/Patient/1"}})", "absolute") == 1);
    CHECK(same(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
               R"("subject":{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}}})",
               "identifier") == 1);
    CHECK(same(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
               R"("subject":{"reference":"https://other.example/fhir/Group/1"}})", "a Group") == 0);
}
