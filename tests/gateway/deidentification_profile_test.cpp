// The shipped de-identification profile (gateway/export/default-deidentification.json) on the types
// whose direct identifiers and free text are not where the profile's "everywhere" keys find them: a
// relative's name and birth date in a family history, instructions in a diet order, advice in a risk
// assessment, where an image lives; a Person's demographics, a genome, billing and insurance numbers,
// addresses where care was given, and typed summaries.
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

TEST_CASE("default de-identification: a Person as a Patient, a genome, payers' numbers, addresses of care, typed summaries") {
    const std::string person = pseudonymised(
        R"({"resourceType":"Person","id":"pe-1","name":[{"family":"Jones","given":["Maureen"]}],)"
        R"("telecom":[{"system":"phone","value":"0113 496 0000"}],"gender":"female","birthDate":"1948-03-09",)"
        R"("address":[{"line":["14 Park Road"],"city":"Leeds","postalCode":"LS6 2AB"}],)"
        R"("link":[{"target":{"reference":"Patient/9000000009"}}]})");
    for (const char* gone : {"Jones", "Maureen", "0113", "Park Road", "Leeds", "9000000009", "2AB"})
        CHECK_MESSAGE(person.find(gone) == std::string::npos, gone);
    CHECK(person.find(R"("birthDate":"1948-03")") != std::string::npos);
    CHECK(person.find(R"("postalCode":"LS6")") != std::string::npos);

    const std::string sequence = pseudonymised(
        R"({"resourceType":"MolecularSequence","id":"ms-1","type":"dna","coordinateSystem":0,"patient":{"reference":"Patient/9000000009"},)"
        R"("referenceSeq":{"genomeBuild":"GRCh38","windowStart":1,"windowEnd":9},"observedSeq":"ACGTTGCA",)"
        R"("variant":[{"start":3,"end":4,"observedAllele":"G","referenceAllele":"T"}],)"
        R"("repository":[{"type":"login","url":"https://genomes.example/jones","datasetId":"ds-9000000009"}]})");
    CHECK(sequence.find("ACGTTGCA") == std::string::npos);
    CHECK(sequence.find("observedAllele") == std::string::npos);
    CHECK(sequence.find("genomes.example") == std::string::npos);
    CHECK(sequence.find("GRCh38") != std::string::npos);

    const std::string coverage = pseudonymised(
        R"({"resourceType":"Coverage","id":"cv-1","status":"active","beneficiary":{"reference":"Patient/9000000009"},)"
        R"("subscriberId":"AB-98765","dependent":"02","payor":[{"reference":"Organization/1"}]})");
    CHECK(coverage.find("AB-98765") == std::string::npos);
    CHECK(coverage.find("dependent") == std::string::npos);

    const std::string claim = pseudonymised(
        R"({"resourceType":"Claim","id":"cl-1","status":"active","use":"claim","patient":{"reference":"Patient/9000000009"},)"
        R"("created":"2026-11-01","type":{"coding":[{"code":"institutional"}]},"provider":{"reference":"Organization/1"},)"
        R"("priority":{"coding":[{"code":"normal"}]},"insurance":[{"sequence":1,"focal":true,"preAuthRef":["PA-55"],)"
        R"("coverage":{"reference":"Coverage/cv-1"}}],"accident":{"date":"2026-10-30","locationAddress":{"line":["14 Park Road"]}},)"
        R"("item":[{"sequence":1,"productOrService":{"text":"visit"},"locationAddress":{"line":["14 Park Road"]}}]})");
    CHECK(claim.find("Park Road") == std::string::npos);
    CHECK(claim.find("PA-55") == std::string::npos);
    CHECK(claim.find("2026-10-30") != std::string::npos);

    const std::string impression = pseudonymised(
        R"({"resourceType":"ClinicalImpression","id":"ci-1","status":"completed","subject":{"reference":"Patient/9000000009"},)"
        R"("summary":"Mrs Jones is struggling since her husband died","finding":[{"itemCodeableConcept":{"coding":[{"code":"x"}]},)"
        R"("basis":"told me at 14 Park Road"}]})");
    CHECK(impression.find("Jones") == std::string::npos);
    CHECK(impression.find("Park Road") == std::string::npos);

    const std::string request = pseudonymised(
        R"({"resourceType":"CommunicationRequest","id":"cr-1","status":"active","subject":{"reference":"Patient/9000000009"},)"
        R"("payload":[{"contentString":"Remind Maureen about her insulin"}]})");
    CHECK(request.find("Maureen") == std::string::npos);

    const std::string issue = pseudonymised(
        R"({"resourceType":"DetectedIssue","id":"di-1","status":"final","patient":{"reference":"Patient/9000000009"},)"
        R"("detail":"Mrs Jones takes warfarin from her neighbour"})");
    CHECK(issue.find("Jones") == std::string::npos);

    const std::string account = pseudonymised(
        R"({"resourceType":"Account","id":"ac-1","status":"active","name":"Maureen Jones care fees",)"
        R"("subject":[{"reference":"Patient/9000000009"}]})");
    CHECK(account.find("Maureen") == std::string::npos);

    const std::string group = pseudonymised(
        R"({"resourceType":"RequestGroup","id":"rg-1","status":"active","intent":"plan","subject":{"reference":"Patient/9000000009"},)"
        R"("action":[{"textEquivalent":"Call Maureen","action":[{"textEquivalent":"Then her daughter Sarah"}]}]})");
    CHECK(group.find("Maureen") == std::string::npos);
    CHECK(group.find("Sarah") == std::string::npos);
}
