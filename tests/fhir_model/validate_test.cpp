// Tests for fhir_model/src/validate.cpp (through prepare_resource): each structural rule, accepted
// and refused, with the issue code and the FHIRPath expression a client sees.
#include "fhir_model/resource.hpp"

#include <doctest/doctest.h>

#include <string>

namespace fhir = caregate::fhir;

namespace {

constexpr const char* subject = R"("subject":{"reference":"Patient/9000000009"})";

/// An Observation with the required elements, and `extra` members appended.
std::string observation(const std::string& extra = {}) {
    return std::string(R"({"resourceType":"Observation","status":"final","code":{"text":"weight"},)") + subject +
           (extra.empty() ? "" : "," + extra) + "}";
}

std::string patient(const std::string& extra = {}) {
    return std::string(R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}])") +
           (extra.empty() ? "" : "," + extra) + "}";
}

fhir::result<fhir::prepared_resource> prepare(const std::string& body) {
    const auto at = body.find("\"resourceType\":\"") + 16;
    return fhir::prepare_resource(body, body.substr(at, body.find('"', at) - at));
}

std::string describe(const fhir::result<fhir::prepared_resource>& result) {
    if (result.ok())
        return "accepted";
    std::string out;
    for (const auto& issue : result.failure().issues)
        out += "[" + issue.code + "] " + issue.expression + ": " + issue.diagnostics + "\n";
    return out;
}

/// Refused as invalid with an issue of `code` at `expression`.
bool refused_with(const std::string& body, const std::string& code, const std::string& expression) {
    auto result = prepare(body);
    if (result.ok() || result.failure().kind != fhir::category::invalid)
        return false;
    for (const auto& issue : result.failure().issues)
        if (issue.code == code && issue.expression == expression)
            return true;
    return false;
}

#define ACCEPTED(body)                                                                                                 \
    do {                                                                                                               \
        auto accepted_result = prepare(body);                                                                          \
        CHECK_MESSAGE(accepted_result.ok(), describe(accepted_result));                                                \
    } while (false)
#define REFUSED(body, code, expression) CHECK_MESSAGE(refused_with(body, code, expression), describe(prepare(body)))

} // namespace

TEST_CASE("validate: a body that is not JSON is malformed, code structure") {
    auto result = fhir::prepare_resource("{\"resourceType\":", "Observation");
    REQUIRE_FALSE(result.ok());
    CHECK(result.failure().kind == fhir::category::malformed);
    CHECK(result.failure().issues.at(0).code == "structure");
}

TEST_CASE("validate: the body is an object whose resourceType is the expected type") {
    auto array = fhir::prepare_resource("[]", "Observation");
    REQUIRE_FALSE(array.ok());
    CHECK(array.failure().kind == fhir::category::invalid);
    auto other = fhir::prepare_resource(patient(), "Observation");
    REQUIRE_FALSE(other.ok());
    CHECK(other.failure().kind == fhir::category::invalid);
    CHECK(other.failure().issues.at(0).code == "invalid");
    auto missing = fhir::prepare_resource(R"({"status":"final"})", "Observation");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.failure().kind == fhir::category::invalid);
    ACCEPTED(observation());
}

TEST_CASE("validate: unknown elements are refused with code structure") {
    REFUSED(observation(R"("colour":"blue")"), "structure", "Observation.colour");
    REFUSED(observation(R"("code2":{"text":"x"})"), "structure", "Observation.code2");
    REFUSED(observation(R"("valueQuantity":{"value":1,"unitt":"kg"})"), "structure", "Observation.valueQuantity.unitt");
    REFUSED(observation(R"("value":1)"), "structure", "Observation.value");
}

TEST_CASE("validate: resourceType is allowed only at a resource root") {
    REFUSED(R"({"resourceType":"Observation","status":"final","code":{"resourceType":"CodeableConcept","text":"x"},)" +
                std::string(subject) + "}",
            "structure", "Observation.code.resourceType");
}

TEST_CASE("validate: arrays exactly for repeating elements") {
    REFUSED(observation(R"("issued":["2020-01-01T00:00:00Z"])"), "structure", "Observation.issued");
    REFUSED(observation(R"("category":{"text":"vital-signs"})"), "structure", "Observation.category");
    ACCEPTED(observation(R"("category":[{"text":"vital-signs"}])"));
}

TEST_CASE("validate: wrong JSON types are refused with code structure") {
    REFUSED(observation(R"("method":"weight")"), "structure", "Observation.method");
    REFUSED(observation(R"("valueQuantity":{"value":"72.5"})"), "structure", "Observation.valueQuantity.value");
    REFUSED(observation(R"("valueBoolean":"true")"), "structure", "Observation.valueBoolean");
    REFUSED(observation(R"("valueString":12)"), "structure", "Observation.valueString");
    REFUSED(observation(R"("valueString":null)"), "structure", "Observation.valueString");
}

TEST_CASE("validate: cardinality minimum, missing elements are code required") {
    REFUSED(R"({"resourceType":"Observation","status":"final",)" + std::string(subject) + "}", "required",
            "Observation.code");
    REFUSED(observation(R"("component":[{"valueString":"x"}])"), "required", "Observation.component[0].code");
    REFUSED(observation(R"("extension":[{"valueString":"x"}])"), "required", "Observation.extension[0].url");
}

TEST_CASE("validate: a choice element takes exactly one type") {
    ACCEPTED(observation(R"("valueQuantity":{"value":72.5,"unit":"kg"})"));
    REFUSED(observation(R"("valueString":"a","valueBoolean":true)"), "structure", "Observation.valueBoolean");
    REFUSED(observation(R"("valueString":"a","_valueBoolean":{"id":"x"})"), "structure", "Observation._valueBoolean");
    ACCEPTED(observation(R"("valueString":"a","_valueString":{"id":"x"})"));
}

TEST_CASE("validate: a required choice element is required in any one of its types") {
    const std::string head =
        R"({"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"2","type":"string","enableWhen":[{"question":"1","operator":"exists")";
    ACCEPTED(head + R"(,"answerBoolean":true}]}]})");
    REFUSED(head + "}]}]}", "required", "Questionnaire.item[0].enableWhen[0].answer[x]");
}

TEST_CASE("validate: empty objects, arrays and strings are refused") {
    REFUSED(observation(R"("valueQuantity":{})"), "structure", "Observation.valueQuantity");
    REFUSED(observation(R"("category":[])"), "structure", "Observation.category");
    REFUSED(observation(R"("valueString":"")"), "structure", "Observation.valueString");
}

TEST_CASE("validate: primitive formats follow the R4 regexes") {
    SUBCASE("date") {
        ACCEPTED(patient(R"("birthDate":"1980")"));
        ACCEPTED(patient(R"("birthDate":"1980-02")"));
        ACCEPTED(patient(R"("birthDate":"2000-02-29")"));
        REFUSED(patient(R"("birthDate":"1980-02-30")"), "value", "Patient.birthDate");
        REFUSED(patient(R"("birthDate":"1980-13")"), "value", "Patient.birthDate");
        REFUSED(patient(R"("birthDate":"80-01-01")"), "value", "Patient.birthDate");
        REFUSED(patient(R"("birthDate":"1980-01-01T00:00:00Z")"), "value", "Patient.birthDate");
    }
    SUBCASE("dateTime") {
        ACCEPTED(observation(R"("effectiveDateTime":"2020-03-04T10:11:12.123+01:00")"));
        ACCEPTED(observation(R"("effectiveDateTime":"2020-03")"));
        REFUSED(observation(R"("effectiveDateTime":"2020-03-04T10:11:12")"), "value", "Observation.effectiveDateTime");
        REFUSED(observation(R"("effectiveDateTime":"2020-03-04T25:00:00Z")"), "value", "Observation.effectiveDateTime");
        REFUSED(observation(R"("effectiveDateTime":"2020-03T10:00:00Z")"), "value", "Observation.effectiveDateTime");
        REFUSED(observation(R"("effectiveDateTime":"2020-03-04T10:00:00+15:00")"), "value", "Observation.effectiveDateTime");
    }
    SUBCASE("instant") {
        ACCEPTED(observation(R"("issued":"2020-03-04T10:11:12Z")"));
        REFUSED(observation(R"("issued":"2020-03-04")"), "value", "Observation.issued");
        REFUSED(observation(R"("issued":"2020-03-04T10:11Z")"), "value", "Observation.issued");
    }
    SUBCASE("time") {
        ACCEPTED(observation(R"("valueTime":"23:59:60.5")"));
        REFUSED(observation(R"("valueTime":"24:00:00")"), "value", "Observation.valueTime");
        REFUSED(observation(R"("valueTime":"10:00")"), "value", "Observation.valueTime");
    }
    SUBCASE("id") {
        ACCEPTED(observation(R"("id":"abc-123.X")"));
        REFUSED(observation(R"("id":"abc_123")"), "value", "Observation.id");
        REFUSED(observation(R"("id":")" + std::string(65, 'a') + "\""), "value", "Observation.id");
    }
    SUBCASE("string: no control characters other than tab, CR and LF (so never the number marker)") {
        ACCEPTED(observation(R"("valueString":"line one\r\n\tline two")"));
        REFUSED(observation(R"("valueString":"bell\u0007")"), "value", "Observation.valueString");
        auto forged = prepare(observation(R"("valueString":"\u00011.5")")); // U+0001 is refused by the parser
        REQUIRE_FALSE(forged.ok());
        CHECK(forged.failure().kind == caregate::fhir::category::malformed);
        auto nul = prepare(observation(R"("note":[{"text":"a\u0000b"}])")); // so is a NUL (400, not 422)
        REQUIRE_FALSE(nul.ok());
        CHECK(nul.failure().kind == caregate::fhir::category::malformed);
    }
    SUBCASE("code") {
        REFUSED(observation(R"("valueQuantity":{"value":1,"code":"a  b"})"), "value", "Observation.valueQuantity.code");
        REFUSED(observation(R"("valueQuantity":{"value":1,"code":" kg"})"), "value", "Observation.valueQuantity.code");
        ACCEPTED(observation(R"("valueQuantity":{"value":1,"code":"mm[Hg]"})"));
    }
    SUBCASE("uri, url, canonical, oid, uuid") {
        REFUSED(observation(R"("valueQuantity":{"value":1,"system":"http://unitsofmeasure.org x"})"), "value",
                "Observation.valueQuantity.system");
        ACCEPTED(observation(R"("identifier":[{"system":"urn:oid:2.16.840.1.113883.2.1.4.1","value":"1"}])"));
        REFUSED(observation(R"("extension":[{"url":"http://example.org/e","valueOid":"urn:oid:3.1"}])"), "value",
                "Observation.extension[0].valueOid");
        ACCEPTED(observation(R"("extension":[{"url":"http://example.org/e","valueUuid":"urn:uuid:c757873d-ec9a-4326-a141-556f43239520"}])"));
        REFUSED(observation(R"("extension":[{"url":"http://example.org/e","valueUuid":"urn:uuid:C757873D-EC9A-4326-A141-556F43239520"}])"),
                "value", "Observation.extension[0].valueUuid");
        REFUSED(observation(R"("extension":[{"url":"http://example.org/e","valueCanonical":"a b"}])"), "value",
                "Observation.extension[0].valueCanonical");
    }
    SUBCASE("decimal keeps its text; integer, positiveInt, unsignedInt are whole numbers in range") {
        auto exact = prepare(observation(R"("valueQuantity":{"value":1.10})"));
        REQUIRE(exact.ok());
        CHECK(exact->content.find(R"("value":1.10)") != std::string::npos);
        ACCEPTED(observation(R"("valueInteger":-2147483648)"));
        REFUSED(observation(R"("valueInteger":2147483648)"), "value", "Observation.valueInteger");
        REFUSED(observation(R"("valueInteger":1.0)"), "value", "Observation.valueInteger");
        REFUSED(observation(R"("valueInteger":1e2)"), "value", "Observation.valueInteger");
        REFUSED(observation(R"("extension":[{"url":"http://example.org/e","valuePositiveInt":0}])"), "value",
                "Observation.extension[0].valuePositiveInt");
        REFUSED(observation(R"("extension":[{"url":"http://example.org/e","valueUnsignedInt":-1}])"), "value",
                "Observation.extension[0].valueUnsignedInt");
        ACCEPTED(observation(R"("extension":[{"url":"http://example.org/e","valueUnsignedInt":0}])"));
    }
    SUBCASE("boolean, base64Binary, markdown, xhtml") {
        ACCEPTED(patient(R"("active":false)"));
        REFUSED(patient(R"("active":"false")"), "structure", "Patient.active");
        ACCEPTED(patient(R"("photo":[{"data":"aGVs bG8="}])"));
        REFUSED(patient(R"("photo":[{"data":"aGVsbG8"}])"), "value", "Patient.photo[0].data");
        REFUSED(patient(R"("photo":[{"data":"aGV*bG8="}])"), "value", "Patient.photo[0].data");
        ACCEPTED(observation(R"("note":[{"text":"**bold**"}])"));
        ACCEPTED(patient(R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"})"));
        REFUSED(patient(R"("text":{"status":"generated","div":"plain text"})"), "value", "Patient.text.div");
    }
}

TEST_CASE("validate: primitive extensions (_element) hold id and extension only") {
    ACCEPTED(patient(R"("birthDate":"1980-01-01","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1980-01-01T10:00:00Z"}]})"));
    ACCEPTED(patient(R"("_birthDate":{"extension":[{"url":"http://example.org/e","valueString":"unknown"}]})"));
    REFUSED(patient(R"("_birthDate":"1980")"), "structure", "Patient._birthDate");
    REFUSED(patient(R"("_birthDate":{"value":"1980"})"), "structure", "Patient._birthDate.value");
    REFUSED(patient(R"("_birthDate":{})"), "structure", "Patient._birthDate");
}

TEST_CASE("validate: repeating primitives align values and extensions, null only where the other has an item") {
    ACCEPTED(patient(R"("name":[{"given":["Ann",null],"_given":[null,{"extension":[{"url":"http://example.org/e","valueString":"x"}]}]}])"));
    REFUSED(patient(R"("name":[{"given":["Ann",null]}])"), "structure", "Patient.name[0].given[1]");
    REFUSED(patient(R"("name":[{"given":["Ann"],"_given":[null,{"id":"a"}]}])"), "structure", "Patient.name[0]._given");
}

TEST_CASE("validate: required bindings refuse codes outside the value set (code-invalid)") {
    REFUSED(R"({"resourceType":"Observation","status":"done","code":{"text":"x"},)" + std::string(subject) + "}",
            "code-invalid", "Observation.status");
    REFUSED(patient(R"("gender":"m")"), "code-invalid", "Patient.gender");
    ACCEPTED(patient(R"("gender":"unknown")"));
    const std::string condition = R"({"resourceType":"Condition","subject":{"reference":"Patient/9000000009"},"clinicalStatus":{"coding":[)";
    ACCEPTED(condition + R"({"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]}})");
    REFUSED(condition + R"({"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"alive"}]}})",
            "code-invalid", "Condition.clinicalStatus.coding[0]");
    REFUSED(condition + R"({"system":"http://snomed.info/sct","code":"55561003"}]}})", "code-invalid",
            "Condition.clinicalStatus.coding");
    // Coding bound required: Provenance.entity.role is a code; Meta.tag etc. are not bound. Timing.repeat.periodUnit is code.
    REFUSED(observation(R"("effectiveTiming":{"repeat":{"period":1,"periodUnit":"fortnight"}})"), "code-invalid",
            "Observation.effectiveTiming.repeat.periodUnit");
}

TEST_CASE("validate: references are relative Type/id, absolute URLs, #contained or urn:uuid") {
    ACCEPTED(observation(R"("performer":[{"reference":"Practitioner/abc.1"}])"));
    ACCEPTED(observation(R"("performer":[{"reference":"Practitioner/abc/_history/2"}])"));
    ACCEPTED(observation(R"("performer":[{"reference":"https://example.org/fhir/Practitioner/1"}])"));
    ACCEPTED(observation(R"("performer":[{"reference":"urn:uuid:c757873d-ec9a-4326-a141-556f43239520"}])"));
    ACCEPTED(observation(R"("performer":[{"identifier":{"system":"https://fhir.nhs.uk/Id/sds-user-id","value":"1"}}])"));
    REFUSED(observation(R"("performer":[{"reference":"Practitioner"}])"), "value", "Observation.performer[0].reference");
    REFUSED(observation(R"("performer":[{"reference":"Dragon/1"}])"), "value", "Observation.performer[0].reference");
    REFUSED(observation(R"("performer":[{"reference":"Practitioner/a b"}])"), "value", "Observation.performer[0].reference");
    REFUSED(observation(R"("performer":[{"reference":"urn:uuid:nope"}])"), "value", "Observation.performer[0].reference");
    REFUSED(observation(R"("performer":[{"reference":"#missing"}])"), "value", "Observation.performer[0].reference");
}

TEST_CASE("validate: a reference's type must be one of the element's target profiles") {
    REFUSED(observation(R"("performer":[{"reference":"Medication/1"}])"), "value", "Observation.performer[0]");
    REFUSED(observation(R"("performer":[{"reference":"http://example.org/fhir/Medication/1"}])"), "value",
            "Observation.performer[0]");
    REFUSED(observation(R"("performer":[{"type":"Medication","display":"x"}])"), "value", "Observation.performer[0]");
    REFUSED(observation(R"("performer":[{"reference":"Practitioner/1","type":"Organization"}])"), "value",
            "Observation.performer[0].type");
    REFUSED(observation(R"("performer":[{"type":"Dragon","display":"x"}])"), "value", "Observation.performer[0].type");
    ACCEPTED(observation(R"("focus":[{"reference":"Medication/1"}])")); // Reference(Any)
}

TEST_CASE("validate: contained resources are validated as their own type") {
    ACCEPTED(observation(R"("contained":[{"resourceType":"Practitioner","id":"p1","name":[{"family":"Jones"}]}],"performer":[{"reference":"#p1"}])"));
    REFUSED(observation(R"("contained":[{"resourceType":"Practitioner","id":"p1","gender":"m"}],"performer":[{"reference":"#p1"}])"),
            "code-invalid", "Observation.contained[0].gender");
    REFUSED(observation(R"("contained":[{"resourceType":"Practitioner","id":"p1","colour":"x"}])"), "structure",
            "Observation.contained[0].colour");
    // Contained-only types (generator's CONTAINED_ONLY_TYPES) are validated, though not stored on their own.
    ACCEPTED(observation(R"("contained":[{"resourceType":"Substance","id":"s1","code":{"text":"x"}}])"));
    REFUSED(observation(R"("contained":[{"resourceType":"Substance","id":"s1"}])"), "required", "Observation.contained[0].code");
    REFUSED(observation(R"("contained":[{"resourceType":"Task","id":"t1","status":"draft","intent":"order"}])"), "not-supported",
            "Observation.contained[0]");
    REFUSED(observation(R"("contained":[{"id":"p1"}])"), "required", "Observation.contained[0]");
    REFUSED(observation(R"("contained":[{"resourceType":"Practitioner","id":"p1","contained":[{"resourceType":"Organization","id":"o"}]}])"),
            "structure", "Observation.contained[0].contained");
    // Contained resources keep their meta as sent.
    auto kept = prepare(observation(R"("contained":[{"resourceType":"Practitioner","id":"p1","meta":{"versionId":"3"}}])"));
    REQUIRE(kept.ok());
    CHECK(kept->content.find(R"("meta":{"versionId":"3"})") != std::string::npos);
}

TEST_CASE("validate: an extension has a url and exactly one of value[x] or nested extensions") {
    ACCEPTED(observation(R"("extension":[{"url":"http://example.org/e","extension":[{"url":"part","valueCode":"a"}]}])"));
    REFUSED(observation(R"("extension":[{"url":"http://example.org/e"}])"), "required", "Observation.extension[0]");
    REFUSED(observation(R"("extension":[{"url":"http://example.org/e","valueCode":"a","extension":[{"url":"part","valueCode":"a"}]}])"),
            "structure", "Observation.extension[0]");
    REFUSED(observation(R"("modifierExtension":[{"valueCode":"a"}])"), "required", "Observation.modifierExtension[0].url");
    REFUSED(observation(R"("extension":[{"url":"http://example.org/e","valueDragon":"a"}])"), "structure",
            "Observation.extension[0].valueDragon");
}

TEST_CASE("validate: backbone elements and contentReference (Questionnaire.item.item)") {
    const std::string questionnaire =
        R"({"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"string"},{"type":"string"}]}]})";
    REFUSED(questionnaire, "required", "Questionnaire.item[0].item[1].linkId");
    REFUSED(R"({"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"essay"}]}]})",
            "code-invalid", "Questionnaire.item[0].item[0].type");
}

TEST_CASE("validate: diagnostics never carry values from the resource") {
    auto result = prepare(patient(R"("birthDate":"1980-02-30","gender":"secret-gender","name":[{"family":"Smith\u0007"}])"));
    REQUIRE_FALSE(result.ok());
    CHECK(result.failure().issues.size() == 3);
    for (const auto& issue : result.failure().issues) {
        CHECK(issue.diagnostics.find("1980") == std::string::npos);
        CHECK(issue.diagnostics.find("secret") == std::string::npos);
        CHECK(issue.diagnostics.find("Smith") == std::string::npos);
    }
}

TEST_CASE("validate: every problem is reported, each with its own expression") {
    auto result = prepare(R"({"resourceType":"Observation","status":"done","colour":1,)" + std::string(subject) + "}");
    REQUIRE_FALSE(result.ok());
    CHECK(result.failure().issues.size() == 3); // status code, unknown colour, missing code
}

TEST_CASE("validate: a string over FHIR's 1 MiB (1,048,576 characters) is refused too-long; base64Binary and narrative are bounded by the body only") {
    const std::size_t limit = 1'048'576;
    REFUSED(observation(R"("valueString":")" + std::string(limit + 1, 'a') + "\""), "too-long", "Observation.valueString");
    ACCEPTED(observation(R"("valueString":")" + std::string(limit, 'a') + "\""));
    // Counted in characters, not bytes: a million two-byte characters is within it.
    std::string wide;
    for (std::size_t i = 0; i < limit; ++i)
        wide += "\xC3\xA9";
    ACCEPTED(observation(R"("valueString":")" + wide + "\""));
    REFUSED(observation(R"("note":[{"text":")" + std::string(limit + 1, 'a') + "\"}]"), "too-long", "Observation.note[0].text");
    ACCEPTED(observation(R"("extension":[{"url":"https://example.org/scan","valueAttachment":{"contentType":"text/plain","data":")" +
                        std::string(limit + 4, 'A') + "\"}}]"));
}

TEST_CASE("outside the record: a type outside the Patient compartment names no citizen nor a citizen's item") {
    // Directory, definition and knowledge types are shown to every role that reads them.
    ACCEPTED(R"({"resourceType":"HealthcareService","name":"Reablement","providedBy":{"reference":"Organization/8JK23"}})");
    ACCEPTED(R"({"resourceType":"Slot","schedule":{"reference":"Schedule/clinic-1"},"status":"free","start":"2026-12-01T09:00:00Z","end":"2026-12-01T09:15:00Z"})");
    ACCEPTED(R"({"resourceType":"DeviceMetric","type":{"text":"pulse"},"category":"measurement","source":{"reference":"Device/d1"}})");
    ACCEPTED(R"({"resourceType":"ResearchStudy","status":"active","enrollment":[{"reference":"Group/cohort"}]})");
    // A Patient, anywhere: relative, absolute, by Reference.type, in an extension, in a contained resource.
    REFUSED(R"({"resourceType":"GuidanceResponse","moduleUri":"https://x.example/m","status":"success","subject":{"reference":"Patient/9000000009"}})",
            "business-rule", "GuidanceResponse.subject");
    REFUSED(R"({"resourceType":"GuidanceResponse","moduleUri":"https://x.example/m","status":"success","subject":{"reference":"https://elsewhere.example/fhir/Patient/1"}})",
            "business-rule", "GuidanceResponse.subject");
    REFUSED(R"({"resourceType":"GuidanceResponse","moduleUri":"https://x.example/m","status":"success","subject":{"type":"Patient","display":"Tom"}})",
            "business-rule", "GuidanceResponse.subject");
    REFUSED(R"({"resourceType":"HealthcareService","extension":[{"url":"https://x.example/e","valueReference":{"reference":"Patient/9000000009"}}]})",
            "business-rule", "HealthcareService.extension[0].valueReference");
    REFUSED(R"({"resourceType":"HealthcareService","contained":[{"resourceType":"Patient","id":"p"}]})", "business-rule",
            "HealthcareService.contained[0]");
    REFUSED(R"({"resourceType":"HealthcareService","contained":[{"resourceType":"Organization","id":"o","extension":[{"url":"https://x.example/e","valueReference":{"reference":"Patient/9000000009"}}]}]})",
            "business-rule", "HealthcareService.contained[0].extension[0].valueReference");
    // A citizen's items (any type of the compartment that must name its citizen), and a Task.
    REFUSED(R"({"resourceType":"Linkage","item":[{"type":"source","resource":{"reference":"Observation/o1"}}]})",
            "business-rule", "Linkage.item[0].resource");
    REFUSED(R"({"resourceType":"MessageHeader","eventUri":"https://x.example/e","source":{"endpoint":"https://x.example"},"focus":[{"reference":"Task/t1"}]})",
            "business-rule", "MessageHeader.focus[0]");
    // An NHS number anywhere, a logical reference by it included.
    REFUSED(R"({"resourceType":"HealthcareService","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}]})",
            "business-rule", "HealthcareService.identifier[0]");
    REFUSED(R"({"resourceType":"GuidanceResponse","moduleUri":"https://x.example/m","status":"success","subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}}})",
            "business-rule", "GuidanceResponse.subject.identifier");
    // The record's own types are unaffected: they name their citizen.
    ACCEPTED(R"({"resourceType":"Device","patient":{"reference":"Patient/9000000009"}})");
    // A Binary's securityContext names the item it is seen with, a citizen's item too; anything else
    // of a Binary is held to the rule.
    ACCEPTED(R"({"resourceType":"Binary","contentType":"application/pdf","securityContext":{"reference":"DocumentReference/d1"}})");
    ACCEPTED(R"({"resourceType":"Binary","contentType":"application/pdf","securityContext":{"reference":"Patient/9000000009"}})");
    REFUSED(R"({"resourceType":"Binary","meta":{"extension":[{"url":"https://x.example/e","valueReference":{"reference":"Patient/9000000009"}}]},"contentType":"application/pdf","securityContext":{"reference":"DocumentReference/d1"}})",
            "business-rule", "Binary.meta.extension[0].valueReference");
}
