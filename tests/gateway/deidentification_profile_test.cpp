// The shipped de-identification profile (gateway/export/default-deidentification.json) on the types
// whose direct identifiers and free text are not where the profile's "everywhere" keys find them: a
// relative's name and birth date in a family history, instructions in a diet order, advice in a risk
// assessment, and where an image lives.
#include "export/embedded_deidentification.hpp"
#include "fhir_model/deidentify.hpp"

#include <doctest/doctest.h>

using namespace caregate;

namespace {

std::string pseudonymised(const std::string& json) {
    auto profile = fhir::deidentification_profile::parse(exports::default_deidentification_json);
    REQUIRE(profile.ok());
    auto out = fhir::deidentify_resource(json, *profile, [](std::string_view type, std::string_view id) {
        return "p-" + std::string(type) + "-" + std::string(id).substr(0, 3);
    });
    REQUIRE(out.ok());
    return *out;
}

} // namespace

TEST_CASE("default de-identification: the direct identifiers and free text of the newer clinical types go") {
    const std::string history = pseudonymised(
        R"({"resourceType":"FamilyMemberHistory","id":"fmh-1","status":"completed","patient":{"reference":"Patient/9000000009"},)"
        R"("name":"Peter Jones","relationship":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-RoleCode","code":"FTH"}]},)"
        R"("bornDate":"1941-06-17","deceasedString":"died at home in Leeds"})");
    CHECK(history.find("Peter") == std::string::npos);
    CHECK(history.find("Leeds") == std::string::npos);
    CHECK(history.find(R"("bornDate":"1941-06")") != std::string::npos);
    CHECK(history.find("9000000009") == std::string::npos);
    CHECK(history.find("FTH") != std::string::npos); // the relationship is planning data

    const std::string diet = pseudonymised(
        R"({"resourceType":"NutritionOrder","id":"no-1","status":"active","intent":"order","patient":{"reference":"Patient/9000000009"},)"
        R"("dateTime":"2026-11-01","oralDiet":{"type":[{"coding":[{"system":"http://snomed.info/sct","code":"160670007"}]}],)"
        R"("instruction":"Mrs Jones at 14 Park Road likes her tea at 4"}})");
    CHECK(diet.find("Park Road") == std::string::npos);
    CHECK(diet.find("160670007") != std::string::npos);

    const std::string risk = pseudonymised(
        R"({"resourceType":"RiskAssessment","id":"ra-1","status":"final","subject":{"reference":"Patient/9000000009"},)"
        R"("mitigation":"Ask her daughter Sarah to visit daily"})");
    CHECK(risk.find("Sarah") == std::string::npos);

    const std::string media = pseudonymised(
        R"({"resourceType":"Media","id":"m-1","status":"completed","subject":{"reference":"Patient/9000000009"},)"
        R"("deviceName":"Ward 3 camera","content":{"contentType":"image/jpeg","url":"https://pacs.example/jones-9000000009.jpg"}})");
    CHECK(media.find("jones") == std::string::npos);
    CHECK(media.find("Ward 3") == std::string::npos);
    CHECK(media.find("image/jpeg") != std::string::npos);
}
