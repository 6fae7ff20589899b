// Tests for fhir_model/deidentify.hpp: pseudonyms in place of NHS numbers, ids and references
// (invariants 1 to 3), contained resources (4), exact numbers, and the profile's actions and errors.
#include "fhir_model/deidentify.hpp"

#include <doctest/doctest.h>

using namespace caregate;

namespace {

const fhir::pseudonym_function tagged = [](std::string_view type, std::string_view id) {
    return "p-" + std::string(type) + "-" + std::string(id).substr(0, 3);
};

fhir::deidentification_profile profile_of(const std::string& json) {
    auto parsed = fhir::deidentification_profile::parse(json);
    REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? "" : parsed.failure().issues.front().diagnostics));
    return std::move(*parsed);
}

} // namespace

TEST_CASE("deidentify: NHS numbers, ids and every kind of literal reference become pseudonyms") {
    const auto none = profile_of("{}");
    const std::string patient =
        R"({"resourceType":"Patient","id":"9000000009","meta":{"versionId":"2","lastUpdated":"2026-01-01T00:00:00Z"},)"
        R"("identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"gender":"male"})";
    auto out = fhir::deidentify_resource(patient, none, tagged);
    REQUIRE(out.ok());
    CHECK(*out == R"({"resourceType":"Patient","id":"p-Patient-900","meta":{"versionId":"2","lastUpdated":"2026-01-01T00:00:00Z"},)"
                  R"("identifier":[{"system":"https://fhir.caregate.nhs.uk/Id/pseudonym","value":"p-Patient-900"}],"gender":"male"})");

    const std::string observation =
        R"({"resourceType":"Observation","id":"9000000009-obs-1","status":"final","code":{"text":"x"},)"
        R"("subject":{"reference":"Patient/9000000009","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}},)"
        R"("encounter":{"reference":"https://elsewhere.example/fhir/Encounter/enc-1/_history/3"},)"
        R"("performer":[{"reference":"Practitioner/abc/_history/1"},{"reference":"#contained-1"},{"reference":"urn:odd:thing"}],)"
        R"("contained":[{"resourceType":"Patient","id":"contained-1","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000017"}]}],)"
        R"("valueQuantity":{"value":72.10,"unit":"/min"}})";
    out = fhir::deidentify_resource(observation, none, tagged);
    REQUIRE(out.ok());
    CHECK(out->find("9000000009") == std::string::npos);
    CHECK(out->find("9000000017") == std::string::npos);
    CHECK(out->find(R"("id":"p-Observation-900")") != std::string::npos);
    CHECK(out->find(R"("reference":"Patient/p-Patient-900")") != std::string::npos);
    CHECK(out->find(R"("reference":"Encounter/p-Encounter-enc")") != std::string::npos);
    CHECK(out->find(R"("reference":"Practitioner/p-Practitioner-abc")") != std::string::npos);
    CHECK(out->find(R"("reference":"#contained-1")") != std::string::npos); // local
    CHECK(out->find("urn:odd:thing") == std::string::npos);                // not an item's: it goes
    CHECK(out->find(R"("id":"contained-1")") != std::string::npos);        // a contained id is local
    CHECK(out->find(R"("value":"p-Patient-900")") != std::string::npos);   // the contained one's NHS number too
    CHECK(out->find("72.10") != std::string::npos);                        // numbers as written
}

TEST_CASE("deidentify: the profile removes keys everywhere or within one, and cuts by path") {
    const auto profile = profile_of(R"({
      "everywhere": [
        {"key": "text", "action": "remove", "comment": "free text"},
        {"key": "display", "action": "remove", "comment": "names people"},
        {"key": "source", "within": "meta", "action": "remove", "comment": "the writer"},
        {"key": "identifier", "action": "keep-systems", "systems": ["https://fhir.caregate.nhs.uk/Id/pseudonym", "https://fhir.nhs.uk/Id/ods-organization-code"], "comment": "record numbers"}
      ],
      "types": {"Patient": [
        {"path": "address.postalCode", "action": "postcode-district", "comment": "area only"},
        {"path": "address.line", "action": "remove", "comment": "direct identifier"},
        {"path": "birthDate", "action": "year-month", "comment": "age bands"}]}})");
    const std::string patient =
        R"({"resourceType":"Patient","id":"9000000009","meta":{"source":"https://gp.example/system#user-7"},)"
        R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Tom Demo</div>"},)"
        R"("identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"},{"system":"https://hospital.example/mrn","value":"MRN-1"}],)"
        R"("address":[{"line":["1 High Street"],"postalCode":"LS1 4AP"},{"postalCode":"M11AE"}],"birthDate":"1941-03-07",)"
        R"("generalPractitioner":[{"display":"Dr Who"},{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"},"display":"Practice"}]})";
    auto out = fhir::deidentify_resource(patient, profile, tagged);
    REQUIRE(out.ok());
    CHECK(*out == R"({"resourceType":"Patient","id":"p-Patient-900",)"
                  R"("identifier":[{"system":"https://fhir.caregate.nhs.uk/Id/pseudonym","value":"p-Patient-900"}],)"
                  R"("address":[{"postalCode":"LS1"},{"postalCode":"M1"}],"birthDate":"1941-03",)"
                  R"("generalPractitioner":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"}}]})");
}

TEST_CASE("deidentify: a profile without reasons, or with an unknown action, is refused") {
    CHECK_FALSE(fhir::deidentification_profile::parse(R"({"everywhere":[{"key":"text","action":"remove"}]})").ok());
    CHECK_FALSE(fhir::deidentification_profile::parse(R"({"everywhere":[{"key":"text","action":"blur","comment":"c"}]})").ok());
    CHECK_FALSE(fhir::deidentification_profile::parse(R"({"types":{"Patient":[{"action":"remove","comment":"c"}]}})").ok());
    CHECK_FALSE(fhir::deidentification_profile::parse("not json").ok());
    CHECK_FALSE(fhir::deidentify_resource("[]", profile_of("{}"), tagged).ok());
}
