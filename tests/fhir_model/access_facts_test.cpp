// Tests for fhir_model/src/access_facts.cpp (through prepare_resource): the access facts a written
// resource yields for the access model — security labels, coded facets (and facets_satisfy, the rule
// policies decide by), organisation links (the legitimate relationship) and a Consent's objection —
// each rule accepted and refused.
#include "fhir_model/resource.hpp"

#include "fhir_model/date_time.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace fhir = caregate::fhir;

namespace {

constexpr const char* citizen = R"({"reference":"Patient/9000000009"})";
constexpr const char* ods_system = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr const char* confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

std::string type_of(const std::string& body) {
    const auto at = body.find("\"resourceType\":\"") + 16;
    return body.substr(at, body.find('"', at) - at);
}

std::string describe(const fhir::error& failure) {
    std::string out;
    for (const auto& issue : failure.issues)
        out += "[" + issue.code + "] " + issue.expression + ": " + issue.diagnostics + "\n";
    return out;
}

fhir::access_facts facts_of(const std::string& body) {
    auto prepared = fhir::prepare_resource(body, type_of(body));
    REQUIRE_MESSAGE(prepared.ok(), (prepared.ok() ? "" : describe(prepared.failure())));
    return prepared->access;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items)
        out += (out.empty() ? "" : ", ") + item;
    return out;
}

/// "ODS kind active|over [ended=µs]" for each link, "; "-separated: one string that doctest prints on failure.
std::string links_of(const std::string& body) {
    std::string out;
    for (const auto& link : facts_of(body).organisations) {
        out += (out.empty() ? "" : "; ") + link.ods + " " + link.kind + (link.active ? " active" : " over");
        if (link.ended)
            out += " ended=" + std::to_string(*link.ended);
    }
    return out;
}

std::string with(std::string head, const std::string& extra) {
    return head + (extra.empty() ? "" : "," + extra) + "}";
}

std::string patient(const std::string& extra) {
    return with(R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}])",
                extra);
}

std::string observation(const std::string& extra) {
    return with(std::string(R"({"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":)") +
                    citizen,
                extra);
}

std::string encounter(const std::string& status, const std::string& extra = {}) {
    return with(R"({"resourceType":"Encounter","status":")" + status +
                    R"(","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":)" +
                    citizen + R"(,"serviceProvider":{"reference":"Organization/RR8"})",
                extra);
}

std::string episode_of_care(const std::string& status, const std::string& extra = {}) {
    return with(R"({"resourceType":"EpisodeOfCare","status":")" + status + R"(","patient":)" + citizen +
                    R"(,"managingOrganization":{"reference":"Organization/RX1"})",
                extra);
}

std::string care_team(const std::string& status, const std::string& extra = {}) {
    return with(R"({"resourceType":"CareTeam","status":")" + status + R"(","subject":)" + citizen +
                    R"(,"participant":[{"member":{"reference":"Organization/X26"}}])",
                extra);
}

/// A Consent: `status`, scope `scope_code` (consentscope system), provision `provision` (none if empty).
std::string consent(const std::string& status, const std::string& scope_code, const std::string& provision) {
    return with(R"({"resourceType":"Consent","status":")" + status +
                    R"(","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":")" +
                    scope_code + R"("}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":)" +
                    citizen,
                provision.empty() ? "" : R"("provision":{"type":")" + provision + R"("})");
}

/// µs since the epoch.
constexpr std::int64_t second = 1000000;
constexpr std::int64_t january_1_2026 = 1767225600000000;
constexpr std::int64_t march_1_2026 = 1772323200000000;
constexpr std::int64_t march_1_2026_10_30 = march_1_2026 + (10 * 3600 + 30 * 60) * second;
constexpr std::int64_t april_1_2026 = 1775001600000000;

} // namespace

// ---- labels: meta.security ----

TEST_CASE("labels: every meta.security coding as system|code (R and V of v3 Confidentiality)") {
    const auto facts = facts_of(observation(R"("meta":{"security":[{"system":")" + std::string(confidentiality) +
                                            R"(","code":"R"},{"system":")" + confidentiality + R"(","code":"V"}]})"));
    CHECK(joined(facts.labels) == std::string(confidentiality) + "|R, " + confidentiality + "|V");
}

TEST_CASE("labels: a coding without a system is |code; duplicates once; in the order given") {
    const auto facts = facts_of(observation(R"("meta":{"security":[{"code":"HIDDEN"},{"system":")" +
                                            std::string(confidentiality) + R"(","code":"R"},{"code":"HIDDEN"}]})"));
    CHECK(joined(facts.labels) == "|HIDDEN, " + std::string(confidentiality) + "|R");
}

TEST_CASE("labels: none without meta.security; meta.tag is not a label") {
    CHECK(facts_of(observation("")).labels.empty());
    CHECK(facts_of(observation(R"("meta":{"tag":[{"system":"http://example.org/tags","code":"R"}]})")).labels.empty());
}

TEST_CASE("labels: a code with a line break cannot be kept, so the resource is refused rather than unlabelled") {
    const std::string body =
        observation(R"("meta":{"security":[{"system":")" + std::string(confidentiality) + R"(","code":"R\nV"}]})");
    auto prepared = fhir::prepare_resource(body, "Observation");
    REQUIRE_FALSE(prepared.ok());
    CHECK(prepared.failure().kind == fhir::category::invalid);
    REQUIRE(prepared.failure().issues.size() == 1);
    CHECK(prepared.failure().issues[0].expression == "Observation.meta.security[0].code");
}

// ---- facets: the root's Coding and CodeableConcept elements, each coding as element=system|code ----

TEST_CASE("facets: Observation category and code with their systems, sorted; nested elements and bare codes do not count") {
    const std::string body =
        R"({"resourceType":"Observation","status":"final",)"
        R"("category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]},)"
        R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],)"
        R"("code":{"coding":[{"system":"http://loinc.org","code":"8867-4"},{"system":"http://snomed.info/sct","code":"364075005"}]},)"
        R"("subject":{"reference":"Patient/9000000009"},)"
        R"("component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120}}]})";
    CHECK(joined(facts_of(body).facets) ==
          "category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs, code=http://loinc.org|8867-4, "
          "code=http://snomed.info/sct|364075005");
}

TEST_CASE("facets: Condition clinicalStatus, verificationStatus and category; a text-only concept is a value naming no code") {
    const std::string body =
        R"({"resourceType":"Condition",)"
        R"("clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},)"
        R"("verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},)"
        R"("category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"problem-list-item"}]}],)"
        R"("code":{"text":"asthma"},"subject":{"reference":"Patient/9000000009"}})";
    CHECK(joined(facts_of(body).facets) ==
          "category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item, "
          "clinicalStatus=http://terminology.hl7.org/CodeSystem/condition-clinical|active, code=|, "
          "verificationStatus=http://terminology.hl7.org/CodeSystem/condition-ver-status|confirmed");
}

TEST_CASE("facets: a choice element under its JSON name (valueCodeableConcept)") {
    const auto facts =
        facts_of(observation(R"("valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"260385009"}]})"));
    CHECK(joined(facts.facets) == "code=|, valueCodeableConcept=http://snomed.info/sct|260385009"); // code: text only
}

TEST_CASE("facets: elements of type code have no system to name and give none (AllergyIntolerance.category, criticality)") {
    const std::string body = R"({"resourceType":"AllergyIntolerance","category":["food","medication"],)"
                             R"("criticality":"high","patient":{"reference":"Patient/9000000009"}})";
    CHECK(joined(facts_of(body).facets) == "");
}

TEST_CASE("facets: a value that names no code exactly is kept as one no rule names, never left out") {
    const std::string long_code(65, 'a'), longest(64, 'b');
    const std::string long_system = "http://example.org/" + std::string(240, 's');
    const auto facts = facts_of(
        R"({"resourceType":"Observation","status":"final","category":[{"coding":[{"code":"vital-signs"}]},)"
        R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category"}]},{"text":"laboratory"},)"
        R"({"coding":[{"system":")" + long_system + R"(","code":"survey"}]}],)"
        R"("code":{"coding":[{"system":"http://example.org","code":")" + long_code +
        R"("},{"system":"http://example.org","code":")" + longest + R"("}]},"subject":)" + citizen + "}");
    // No system, no code, text only, a system too long: each a category value that fits no rule.
    CHECK(joined(facts.facets) ==
          "category=|, category=|survey, category=|vital-signs, code=http://example.org|" + longest + ", code=|");
}

TEST_CASE("facets: elements of other types (string, Reference, Identifier, code) give none") {
    const auto facts = facts_of(patient(R"("gender":"female","name":[{"family":"Smith"}])"));
    CHECK(joined(facts.facets) == "");
}

// ---- facets_satisfy: a rule's `where` against a version's facets ----

TEST_CASE("facets_satisfy: every value of each element named must be allowed, and there must be one") {
    const std::string category = "category=http://terminology.hl7.org/CodeSystem/observation-category|";
    const std::vector<std::string> social_care = {category + "social-history", category + "survey", category + "activity"};
    auto fits = [&](std::vector<std::string> facets) {
        std::sort(facets.begin(), facets.end());
        return fhir::facets_satisfy(social_care, facets);
    };
    CHECK(fits({category + "survey"}));
    CHECK(fits({category + "survey", category + "activity", "code=http://loinc.org|44249-1"}));
    CHECK_FALSE(fits({category + "survey", category + "laboratory"})); // a laboratory result too
    CHECK_FALSE(fits({"category=http://example.org/x|survey"}));        // another system's code
    CHECK_FALSE(fits({category + "survey", "category=http://example.org/x|survey"}));
    CHECK_FALSE(fits({category + "survey", "category=|"})); // a value naming no code
    CHECK_FALSE(fits({}));                                  // no category at all
    CHECK_FALSE(fits({"code=http://loinc.org|44249-1"}));
    CHECK(fhir::facets_satisfy({}, {category + "laboratory"})); // the whole type
    // Two elements named: each must be satisfied.
    const std::vector<std::string> two = {category + "survey", "status=http://example.org/s|final"};
    CHECK(fhir::facets_satisfy(two, {category + "survey", "status=http://example.org/s|final"}));
    CHECK_FALSE(fhir::facets_satisfy(two, {category + "survey"}));
    // A prefix of an element's name is another element.
    CHECK_FALSE(fhir::facets_satisfy({"code=http://loinc.org|1"}, {"codeX=http://loinc.org|1"}));
}

// ---- organisations: Patient.generalPractitioner ----

TEST_CASE("registered GP: Organization/{ODS}, active, no end") {
    CHECK(links_of(patient(R"("generalPractitioner":[{"reference":"Organization/A81001"}])")) ==
          "A81001 registered-gp active");
}

TEST_CASE("registered GP: a logical reference by ODS identifier") {
    CHECK(links_of(patient(R"("generalPractitioner":[{"type":"Organization","identifier":{"system":")" +
                           std::string(ods_system) + R"(","value":"B82002"}}])")) == "B82002 registered-gp active");
    CHECK(links_of(patient(R"("generalPractitioner":[{"identifier":{"system":")" + std::string(ods_system) +
                           R"(","value":"B82002"}}])")) == "B82002 registered-gp active");
}

TEST_CASE("registered GP: a Practitioner (or PractitionerRole) is not an organisation") {
    CHECK(links_of(patient(R"("generalPractitioner":[{"reference":"Practitioner/G8123456"}])")).empty());
    CHECK(links_of(patient(R"("generalPractitioner":[{"reference":"PractitionerRole/A81001"}])")).empty());
    CHECK(links_of(patient(R"("generalPractitioner":[{"type":"Practitioner","identifier":{"system":")" +
                           std::string(ods_system) + R"(","value":"B82002"}}])"))
              .empty());
    CHECK(links_of(patient(R"("generalPractitioner":[{"reference":"Practitioner/G8123456"},{"reference":"Organization/A81001"}])")) ==
          "A81001 registered-gp active");
}

TEST_CASE("organisation references: only a relative Organization/{ODS} or the ODS identifier names one") {
    auto gp = [](const std::string& reference) {
        return links_of(patient(R"("generalPractitioner":[)" + reference + "]"));
    };
    const std::string ods = ods_system;
    CHECK(gp(R"({"reference":"https://example.org/fhir/Organization/A81001"})").empty()); // absolute
    CHECK(gp(R"({"reference":"Organization/a81001"})").empty());                          // not upper case
    CHECK(gp(R"({"reference":"Organization/A8"})").empty());                              // too short
    CHECK(gp(R"({"reference":"Organization/A810011234567"})").empty());                   // too long
    CHECK(gp(R"({"identifier":{"system":")" + ods + R"(","value":"b82002"}})").empty());
    CHECK(gp(R"({"identifier":{"system":"http://example.org/ids","value":"B82002"}})").empty()); // another system
    CHECK(gp(R"({"display":"The Surgery"})").empty());
    // A reference and an identifier that disagree name no one; that agree, or a local id, name the code.
    CHECK(gp(R"({"reference":"Organization/A81001","identifier":{"system":")" + ods + R"(","value":"B82002"}})").empty());
    CHECK(gp(R"({"reference":"Organization/A81001","identifier":{"system":")" + ods + R"(","value":"A81001"}})") ==
          "A81001 registered-gp active");
    CHECK(gp(R"({"reference":"Organization/local-1","identifier":{"system":")" + ods + R"(","value":"B82002"}})") ==
          "B82002 registered-gp active");
}

TEST_CASE("organisation links: identical links once") {
    CHECK(links_of(patient(R"("generalPractitioner":[{"reference":"Organization/A81001"},{"identifier":{"system":")" +
                           std::string(ods_system) + R"(","value":"A81001"}}])")) == "A81001 registered-gp active");
}

// ---- organisations: Encounter.serviceProvider ----

TEST_CASE("encounter: planned, arrived, triaged, in-progress, onleave are active") {
    for (const char* status : {"planned", "arrived", "triaged", "in-progress", "onleave"}) {
        CAPTURE(status);
        CHECK(links_of(encounter(status)) == "RR8 encounter active");
    }
}

TEST_CASE("encounter: cancelled, entered-in-error, unknown link nothing") {
    for (const char* status : {"cancelled", "entered-in-error", "unknown"}) {
        CAPTURE(status);
        CHECK(links_of(encounter(status, R"("period":{"end":"2026-03-01T10:30:00Z"})")).empty());
    }
}

TEST_CASE("encounter: finished ended at period.end, the end of the instant it names") {
    const std::string end = "2026-03-01T10:30:00Z";
    const auto links = facts_of(encounter("finished", R"("period":{"start":"2026-03-01T09:00:00Z","end":")" + end + "\"}"))
                           .organisations;
    REQUIRE(links.size() == 1);
    CHECK(links[0].ods == "RR8");
    CHECK(links[0].kind == "encounter");
    CHECK_FALSE(links[0].active);
    REQUIRE(links[0].ended.has_value());
    CHECK(*links[0].ended == fhir::parse_date_time(end)->end);
    CHECK(*links[0].ended == march_1_2026_10_30 + second); // to the second given
}

TEST_CASE("encounter: a period.end of month precision ends with the month") {
    CHECK(links_of(encounter("finished", R"("period":{"end":"2026-03"})")) ==
          "RR8 encounter over ended=" + std::to_string(april_1_2026));
}

TEST_CASE("encounter: finished without period.end is over with no end, so never recent") {
    CHECK(links_of(encounter("finished")) == "RR8 encounter over");
}

TEST_CASE("encounter: an active one with a period.end stays active and keeps the end") {
    CHECK(links_of(encounter("in-progress", R"("period":{"end":"2026-03"})")) ==
          "RR8 encounter active ended=" + std::to_string(april_1_2026));
}

// ---- organisations: EpisodeOfCare.managingOrganization ----

TEST_CASE("episode of care: planned, waitlist, active, onhold are active") {
    for (const char* status : {"planned", "waitlist", "active", "onhold"}) {
        CAPTURE(status);
        CHECK(links_of(episode_of_care(status)) == "RX1 episode-of-care active");
    }
}

TEST_CASE("episode of care: finished ended at period.end; cancelled and entered-in-error link nothing") {
    const std::string period = R"("period":{"start":"2026-01","end":"2026-03"})";
    CHECK(links_of(episode_of_care("finished", period)) == "RX1 episode-of-care over ended=" + std::to_string(april_1_2026));
    CHECK(links_of(episode_of_care("active", period)) == "RX1 episode-of-care active ended=" + std::to_string(april_1_2026));
    CHECK(links_of(episode_of_care("cancelled", period)).empty());
    CHECK(links_of(episode_of_care("entered-in-error", period)).empty());
}

// ---- organisations: CareTeam ----

TEST_CASE("care team: managingOrganization, organisation members and onBehalfOf of an active team") {
    const std::string body =
        R"({"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/9000000009"},)"
        R"("participant":[{"member":{"reference":"Practitioner/p1"},"onBehalfOf":{"reference":"Organization/RR8"}},)"
        R"({"member":{"reference":"Organization/X26"}},{"member":{"reference":"RelatedPerson/r1"}},)"
        R"({"member":{"type":"Organization","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RX1"}}}],)"
        R"("managingOrganization":[{"reference":"Organization/A81001"}]})";
    CHECK(links_of(body) == "A81001 care-team active; RR8 care-team active; X26 care-team active; RX1 care-team active");
}

TEST_CASE("care team: a participant's period.end ends that membership (the store judges whether it is past)") {
    const auto body = care_team("active", R"("managingOrganization":[{"reference":"Organization/A81001"}],)"
                                          R"("period":{"end":"2026-03"})");
    CHECK(links_of(body) == "A81001 care-team active ended=" + std::to_string(april_1_2026) +
                                "; X26 care-team active ended=" + std::to_string(april_1_2026));
    const std::string left =
        R"({"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/9000000009"},)"
        R"("participant":[{"member":{"reference":"Organization/X26"},"period":{"end":"2025-12-31"}}]})";
    CHECK(links_of(left) == "X26 care-team active ended=" + std::to_string(january_1_2026));
}

TEST_CASE("care team: proposed, suspended, entered-in-error link nothing; inactive is over at period.end") {
    for (const char* status : {"proposed", "suspended", "entered-in-error"}) {
        CAPTURE(status);
        CHECK(links_of(care_team(status, R"("period":{"end":"2026-03"})")).empty());
    }
    CHECK(links_of(care_team("inactive", R"("period":{"end":"2026-02-28"})")) ==
          "X26 care-team over ended=" + std::to_string(march_1_2026));
    CHECK(links_of(care_team("inactive")) == "X26 care-team over");
}

TEST_CASE("organisation links: only Patient, Encounter, EpisodeOfCare and CareTeam record them") {
    CHECK(links_of(observation(R"("performer":[{"reference":"Organization/A81001"}])")).empty());
}

// ---- objection: Consent ----

TEST_CASE("objection: an active Consent of scope patient-privacy whose provision denies") {
    CHECK(facts_of(consent("active", "patient-privacy", "deny")).objection);
}

TEST_CASE("objection: not when draft, inactive, permitting, without a provision, or of another scope") {
    CHECK_FALSE(facts_of(consent("draft", "patient-privacy", "deny")).objection);
    CHECK_FALSE(facts_of(consent("inactive", "patient-privacy", "deny")).objection);
    CHECK_FALSE(facts_of(consent("active", "patient-privacy", "permit")).objection);
    CHECK_FALSE(facts_of(consent("active", "patient-privacy", "")).objection);
    CHECK_FALSE(facts_of(consent("active", "research", "deny")).objection);
    CHECK_FALSE(facts_of(consent("active", "treatment", "deny")).objection);
}

TEST_CASE("objection: the patient-privacy code must carry the consentscope system") {
    const std::string body =
        R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://example.org/scopes","code":"patient-privacy"}]},)"
        R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/9000000009"},)"
        R"("provision":{"type":"deny"}})";
    CHECK_FALSE(facts_of(body).objection);
}

// ---- the root resource only ----

TEST_CASE("contained resources: their labels, codes, organisation links and objection do not count") {
    const std::string body =
        R"({"resourceType":"Observation","contained":[)"
        R"({"resourceType":"Encounter","id":"enc","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"V"}]},)"
        R"("status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},)"
        R"("serviceProvider":{"reference":"Organization/RR8"}},)"
        R"({"resourceType":"Consent","id":"objection","status":"active",)"
        R"("scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
        R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"provision":{"type":"deny"}}],)"
        R"("status":"final","code":{"text":"weight"},"subject":{"reference":"Patient/9000000009"},"encounter":{"reference":"#enc"}})";
    const auto facts = facts_of(body);
    CHECK(facts.labels.empty());
    CHECK(joined(facts.facets) == "code=|");
    CHECK(facts.organisations.empty());
    CHECK_FALSE(facts.objection);

    const std::string gp_in_contained_patient =
        R"({"resourceType":"Consent","contained":[{"resourceType":"Patient","id":"p","generalPractitioner":[{"reference":"Organization/A81001"}]}],)"
        R"("status":"draft","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
        R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/9000000009"},)"
        R"("performer":[{"reference":"#p"}]})";
    CHECK(links_of(gp_in_contained_patient).empty());
}
