// Access control for providers (README, the access model) through the handle() seam with the shipped
// default policy: GP, acute, adult social care and ICS callers in clinical, nurse, admin, social
// worker, information governance and system roles; relationships, break-glass, objections, labels,
// ownership; tokens; and the audit trail. Every denial is 403 (never allowed) or 404 (may not see).
#include "application_fixture.hpp"

#include "auth/detail/jose.hpp"

#include <rapidjson/document.h>

#include <map>
#include <optional>

using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009";   // registered with the GP practice A81001
constexpr const char* bunmi = "9000000017"; // registered nowhere the record knows of
constexpr const char* ada = "9000000025";   // not held until a test records her

std::string ref(const std::string& nhs) { return R"({"reference":"Patient/)" + nhs + R"("})"; }

std::string condition_json(const std::string& nhs, const std::string& clinical_status, const std::string& meta = {}) {
    return R"({"resourceType":"Condition",)" + (meta.empty() ? "" : meta + ",") +
           R"("clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":")" +
           clinical_status + R"("}]},"code":{"text":"a condition"},"subject":)" + ref(nhs) + "}";
}

std::string observation_in(const std::string& nhs, const std::string& category) {
    return R"({"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
           category + R"("}]}],"code":{"text":"an observation"},"subject":)" + ref(nhs) + "}";
}

std::string encounter_json(const std::string& nhs, const std::string& ods, const std::string& status,
                           const std::string& period = {}) {
    return R"({"resourceType":"Encounter","status":")" + status +
           R"(","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":)" + ref(nhs) +
           (period.empty() ? "" : R"(,"period":)" + period) + R"(,"serviceProvider":{"reference":"Organization/)" + ods +
           R"("}})";
}

std::string episode_json(const std::string& nhs, const std::string& ods) {
    return R"({"resourceType":"EpisodeOfCare","status":"active","patient":)" + ref(nhs) +
           R"(,"managingOrganization":{"reference":"Organization/)" + ods + R"("}})";
}

std::string labelled(const std::string& code) {
    return R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":")" + code +
           R"("}]})";
}

/// Tom registered with the GP, Bunmi with nobody; created by the ICS's integration system.
struct record_fixture : application_fixture {
    record_fixture() {
        REQUIRE(call("PUT", std::string("/Patient/") + tom,
                     patient_json(tom, R"("id":"9000000009","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
        REQUIRE(call("PUT", std::string("/Patient/") + bunmi, patient_json(bunmi, R"("id":"9000000017")")).status == 201);
    }
    /// Creates as `who` and returns the new id.
    std::string create_as(const identity& who, const std::string& type, const std::string& body) {
        auto r = call_as(who, "POST", "/" + type, body);
        REQUIRE_MESSAGE(r.status == 201, r.body);
        return id_of(r);
    }
};

} // namespace

TEST_CASE("authentication: no token, a malformed header, a forged or foreign token are 401 with WWW-Authenticate") {
    record_fixture f;
    caregate::http::request bare; // with a certificate, but no token at all
    bare.method = "GET";
    bare.target = "/fhir/Patient/9000000009";
    bare.secure = true;
    bare.client_ods = "A81001";
    std::promise<caregate::http::response> answered;
    f.app->handle(std::move(bare), [&](caregate::http::response out) { answered.set_value(std::move(out)); });
    auto none = answered.get_future().get();
    CHECK(none.status == 401);
    CHECK(none.header("WWW-Authenticate") == "Bearer realm=\"caregate\"");
    auto without = f.call_as(gp_clinician(), "GET", "/Patient/9000000009", {}, {{"Authorization", "Basic abc"}});
    CHECK(without.status == 401);
    CHECK(without.header("WWW-Authenticate").starts_with("Bearer"));
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009", {}, {{"Authorization", "Bearer not.a.jwt"}}).status == 401);
    std::string token = token_for(gp_clinician());
    token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A'; // one byte changed
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009", {}, {{"Authorization", "Bearer " + token}}).status == 401);
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009", {}, {{"Authorization", "Bearer " + token_for(gp_clinician(), -120)}})
              .status == 401); // expired two minutes ago, beyond the clock skew
}

TEST_CASE("authentication: a token of one organisation over another's certificate is 401; an unknown organisation 403") {
    record_fixture f;
    identity impostor = gp_clinician();
    auto r = f.call_as(impostor, "GET", "/Patient/9000000009", {},
                       {{"Authorization", "Bearer " + token_for(acute_clinician())}}); // certificate A81001, token RX1
    CHECK(r.status == 401);
    identity stranger{"ZZZ99", "R8000", "stranger-1", {}, {}, {}};
    CHECK(f.call_as(stranger, "GET", "/Patient/9000000009").status == 403);
    CHECK(f.call_as(gp_clinician(), "GET", "/metadata", {}, {{"Authorization", "Bearer nonsense"}}).status == 200); // public
}

TEST_CASE("legitimate relationship: the registered GP reads; an acute trust without a relationship gets 404") {
    record_fixture f;
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009").status == 200);
    CHECK(f.call_as(gp_nurse(), "GET", "/Patient/9000000009").status == 200);
    auto hidden = f.call_as(acute_clinician(), "GET", "/Patient/9000000009");
    CHECK(hidden.status == 404);
    // Exactly the answer for a citizen that does not exist.
    auto absent = f.call_as(acute_clinician(), "GET", "/Patient/9000000025");
    CHECK(absent.status == 404);
    CHECK(hidden.body == absent.body);
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000017").status == 404); // not registered there
}

TEST_CASE("legitimate relationship: an acute trust that records its own Encounter may then open the record") {
    record_fixture f;
    CHECK(f.call_as(acute_clinician(), "GET", "/Patient/9000000009").status == 404);
    // Recording its own admission is how a trust starts caring for a citizen.
    f.create_as(acute_clinician(), "Encounter", encounter_json(tom, "RX1", "in-progress"));
    CHECK(f.call_as(acute_clinician(), "GET", "/Patient/9000000009").status == 200);
    // But it cannot write other items for a citizen it has no relationship with: the same 422 as an
    // unknown citizen, so a write cannot probe who is held.
    auto refused = f.call_as(acute_clinician(), "POST", "/Condition", condition_json(bunmi, "active"));
    CHECK(refused.status == 422);
    auto unknown = f.call_as(acute_clinician(), "POST", "/Condition", condition_json("9000000025", "active"));
    CHECK(unknown.status == 422);
    CHECK(refused.body == unknown.body);
}

TEST_CASE("legitimate relationship: an encounter that ended long ago no longer counts; a recent one does") {
    record_fixture f;
    f.create_as(system_identity(), "Encounter",
                encounter_json(tom, "RX1", "finished", R"({"start":"2001-01-01","end":"2001-01-05"})"));
    CHECK(f.call_as(acute_clinician(), "GET", "/Patient/9000000009").status == 404);
    const std::string recent = R"({"start":"2026-11-01T00:00:00Z","end":")" +
                               caregate::storage::store::format_instant(caregate::access::now_micros() - 86'400'000'000LL) +
                               R"("})";
    f.create_as(system_identity(), "Encounter", encounter_json(tom, "RX1", "finished", recent));
    CHECK(f.call_as(acute_clinician(), "GET", "/Patient/9000000009").status == 200);
}

TEST_CASE("break-glass: a clinician with ETREAT and a reason opens the record; it is flagged in the audit trail") {
    record_fixture f;
    identity emergency = acute_clinician();
    emergency.purpose = "ETREAT";
    emergency.reason = "unconscious in A&E";
    auto r = f.call_as(emergency, "GET", "/Patient/9000000009");
    CHECK(r.status == 200);
    // The grant lasts: the same clinician without ETREAT keeps access for the policy's period.
    f.flush();
    CHECK(f.call_as(acute_clinician(), "GET", "/Patient/9000000009").status == 200);
    // ETREAT without a reason is not break-glass; admin roles may not break the glass.
    identity no_reason = acute_clinician();
    no_reason.user = "acute-doctor-2";
    no_reason.purpose = "ETREAT";
    CHECK(f.call_as(no_reason, "GET", "/Patient/9000000009").status == 404);
    identity clerk = acute_admin();
    clerk.purpose = "ETREAT";
    clerk.reason = "curious";
    CHECK(f.call_as(clerk, "GET", "/Patient/9000000009").status == 404);
    f.flush();
    caregate::storage::store::audit_query query;
    query.purpose = "ETREAT";
    auto page = f.store->audit(query);
    REQUIRE(page.ok());
    bool granted = false;
    for (const auto& record : page->records)
        granted = granted || (record.action == "break-glass" && record.nhs_number == tom &&
                              record.break_glass_reason == "unconscious in A&E" && record.organisation == "RX1" &&
                              record.outcome == "success");
    CHECK(granted);
}

TEST_CASE("break-glass opens one named record, never every citizen a history walks through") {
    record_fixture f;
    const auto id = f.create_as(gp_clinician(), "Condition", condition_json(tom, "active"));
    identity emergency = acute_clinician();
    emergency.purpose = "ETREAT";
    emergency.reason = "unconscious in A&E";
    auto walked = f.call_as(emergency, "GET", "/Condition/_history");
    REQUIRE(walked.status == 200);
    CHECK(walked.body.find(id) == std::string::npos);
    auto everything = f.call_as(emergency, "GET", "/_history");
    REQUIRE(everything.status == 200);
    CHECK(everything.body.find(tom) == std::string::npos);
    f.flush();
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + id).status == 404); // no grant was made
    CHECK(f.call_as(emergency, "GET", "/Condition/" + id).status == 200);         // a named record: yes
}

TEST_CASE("policy: admin roles see demographics and appointments only; other types are 403") {
    record_fixture f;
    f.create_as(gp_clinician(), "Condition", condition_json(tom, "active"));
    CHECK(f.call_as(gp_admin(), "GET", "/Patient/9000000009").status == 200);
    auto forbidden = f.call_as(gp_admin(), "GET", "/Condition/anything");
    CHECK(forbidden.status == 403);
    CHECK(f.call_as(gp_admin(), "POST", "/Condition", condition_json(tom, "active")).status == 403);
    CHECK(f.call_as(gp_admin(), "GET", "/Condition/_history").status == 403);
}

TEST_CASE("policy: adult social care reads active problems and social care observations, writes care plans") {
    record_fixture f;
    f.create_as(system_identity(), "EpisodeOfCare", episode_json(tom, "8JK23"));
    const auto active = f.create_as(gp_clinician(), "Condition", condition_json(tom, "active"));
    const auto resolved = f.create_as(gp_clinician(), "Condition", condition_json(tom, "resolved"));
    const auto vitals = f.create_as(gp_clinician(), "Observation", observation_in(tom, "vital-signs"));
    const auto social = f.create_as(gp_clinician(), "Observation", observation_in(tom, "social-history"));
    CHECK(f.call_as(social_worker(), "GET", "/Condition/" + active).status == 200);
    CHECK(f.call_as(social_worker(), "GET", "/Condition/" + resolved).status == 404);
    CHECK(f.call_as(social_worker(), "GET", "/Observation/" + vitals).status == 404);
    CHECK(f.call_as(social_worker(), "GET", "/Observation/" + social).status == 200);
    CHECK(f.call_as(social_worker(), "POST", "/MedicationRequest", R"({"resourceType":"MedicationRequest"})").status == 403);
    CHECK(f.call_as(social_worker(), "POST", "/Observation", observation_in(tom, "vital-signs")).status == 403);
    CHECK(f.call_as(social_worker(), "POST", "/Observation", observation_in(tom, "social-history")).status == 201);
    CHECK(f.call_as(social_worker(), "POST", "/CarePlan",
                    R"({"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/9000000009"}})")
              .status == 201);
}

TEST_CASE("policy: the newer types: social care reads medicines given and equipment, not impressions, documents or billing; admin keeps diaries") {
    record_fixture f;
    f.create_as(system_identity(), "EpisodeOfCare", episode_json(tom, "8JK23"));
    const std::string subject = R"("subject":{"reference":"Patient/9000000009"})";
    const auto given = f.create_as(gp_clinician(), "MedicationAdministration",
        R"({"resourceType":"MedicationAdministration","status":"completed","medicationCodeableConcept":{"text":"paracetamol"},)" +
            subject + R"(,"effectiveDateTime":"2026-11-01T09:00:00Z"})");
    const auto hoist = f.create_as(gp_clinician(), "DeviceUseStatement",
        R"({"resourceType":"DeviceUseStatement","status":"active","device":{"reference":"Device/hoist"},)" + subject + "}");
    const auto impression = f.create_as(gp_clinician(), "ClinicalImpression",
        R"({"resourceType":"ClinicalImpression","status":"completed",)" + subject + R"(,"summary":"low mood"})");
    const auto letter = f.create_as(gp_clinician(), "Composition",
        R"({"resourceType":"Composition","status":"final","type":{"coding":[{"system":"http://loinc.org","code":"18842-5"}]},)" +
            subject + R"(,"date":"2026-11-01","author":[{"reference":"Organization/A81001"}],"title":"Discharge summary"})");
    const auto invoice = f.create_as(gp_clinician(), "Invoice",
        R"({"resourceType":"Invoice","status":"issued",)" + subject + R"(,"totalNet":{"value":10,"currency":"GBP"}})");
    CHECK(f.call_as(social_worker(), "GET", "/MedicationAdministration/" + given).status == 200);
    CHECK(f.call_as(social_worker(), "GET", "/DeviceUseStatement/" + hoist).status == 200);
    for (const auto& item : std::vector<std::pair<std::string, std::string>>{
             {"ClinicalImpression", impression}, {"Composition", letter}, {"Invoice", invoice}}) {
        const std::string& type = item.first;
        CAPTURE(type);
        CHECK(f.call_as(social_worker(), "GET", "/" + type + "/" + item.second).status == 403);
        CHECK(f.call_as(social_worker(), "GET", "/" + type + "?patient=" + std::string(tom)).status == 403);
        CHECK(f.call_as(gp_admin(), "GET", "/" + type + "/" + item.second).status == 403);
    }
    CHECK(f.call_as(social_worker(), "POST", "/MedicationAdministration",
                    R"({"resourceType":"MedicationAdministration","status":"completed","medicationCodeableConcept":{"text":"insulin"},)" +
                        subject + R"(,"effectiveDateTime":"2026-11-02T09:00:00Z"})")
              .status == 201);
    CHECK(f.call_as(social_worker(), "POST", "/ClinicalImpression",
                    R"({"resourceType":"ClinicalImpression","status":"completed",)" + subject + "}")
              .status == 403);
    // Admin: a clinic's diary (naming no citizen) and the responses to appointments; nothing clinical.
    CHECK(f.call_as(gp_admin(), "POST", "/Schedule",
                    R"({"resourceType":"Schedule","actor":[{"reference":"Practitioner/dr-jones"}]})")
              .status == 201);
    CHECK(f.call_as(gp_admin(), "GET", "/MedicationAdministration/" + given).status == 403);
    CHECK(f.call_as(gp_admin(), "POST", "/MedicationAdministration",
                    R"({"resourceType":"MedicationAdministration","status":"completed","medicationCodeableConcept":{"text":"x"},)" +
                        subject + R"(,"effectiveDateTime":"2026-11-02T09:00:00Z"})")
              .status == 403);
}

TEST_CASE("the newer types keep the record's rule: an organisation with no relationship gets nothing of them, totals included") {
    record_fixture f;
    const std::string subject = R"("subject":{"reference":"Patient/9000000009"})";
    const auto impression = f.create_as(gp_clinician(), "ClinicalImpression",
        R"({"resourceType":"ClinicalImpression","status":"completed",)" + subject + R"(,"summary":"low mood"})");
    const auto sequence = f.create_as(gp_clinician(), "MolecularSequence",
        R"({"resourceType":"MolecularSequence","coordinateSystem":0,"patient":{"reference":"Patient/9000000009"}})");
    CHECK(f.call_as(gp_clinician(), "GET", "/ClinicalImpression/" + impression).status == 200);
    // The acute trust has no relationship with Tom: 404, and searches that find nothing, totals 0.
    CHECK(f.call_as(acute_clinician(), "GET", "/ClinicalImpression/" + impression).status == 404);
    CHECK(f.call_as(acute_clinician(), "GET", "/MolecularSequence/" + sequence).status == 404);
    for (const std::string& query : std::vector<std::string>{"/ClinicalImpression?_total=accurate", "/ClinicalImpression?subject=Patient/9000000009&_total=accurate",
                                    "/MolecularSequence?_id=" + sequence + "&_total=accurate"}) {
        CAPTURE(query);
        auto found = f.call_as(acute_clinician(), "GET", query);
        REQUIRE(found.status == 200);
        CHECK(json_of(found)["total"].GetInt() == 0);
        CHECK_FALSE(json_of(found).HasMember("entry")); // the self link repeats the query, and nothing else names them
    }
    auto history = f.call_as(acute_clinician(), "GET", "/ClinicalImpression/_history");
    CHECK(history.body.find(impression) == std::string::npos);
}

TEST_CASE("a citizen's Device is their item: an organisation with no relationship gets nothing of it; a Device for nobody is a directory item") {
    record_fixture f;
    const auto pacemaker = f.create_as(gp_clinician(), "Device",
                                       R"({"resourceType":"Device","patient":{"reference":"Patient/9000000009"},"type":{"text":"pacemaker"}})");
    const auto spare = f.create_as(gp_clinician(), "Device", R"({"resourceType":"Device","type":{"text":"hoist"}})");
    CHECK(f.call_as(gp_clinician(), "GET", "/Device/" + pacemaker).status == 200);
    CHECK(f.call_as(acute_clinician(), "GET", "/Device/" + pacemaker).status == 404);
    CHECK(f.call_as(acute_clinician(), "GET", "/Device/" + spare).status == 200);
    for (const std::string& query : std::vector<std::string>{"/Device?_total=accurate", "/Device?patient=9000000009&_total=accurate",
                                                             "/Device?type=pacemaker&_total=accurate"}) {
        CAPTURE(query);
        auto found = f.call_as(acute_clinician(), "GET", query);
        REQUIRE(found.status == 200);
        CHECK(found.body.find(pacemaker) == std::string::npos);
    }
    CHECK(json_of(f.call_as(acute_clinician(), "GET", "/Device?type=pacemaker&_total=accurate"))["total"].GetInt() == 0);
    // ... and it is in Tom's compartment, for those who may open it.
    auto compartment = f.call_as(gp_clinician(), "GET", "/Patient/9000000009/Device");
    REQUIRE(compartment.status == 200);
    CHECK(compartment.body.find(pacemaker) != std::string::npos);
    CHECK(compartment.body.find(spare) == std::string::npos);
}

TEST_CASE("outside the record: a directory or definition naming a citizen or their item is refused, alone or in a transaction") {
    record_fixture f;
    const auto observation = f.create_as(gp_clinician(), "Observation", observation_in(tom, "vital-signs"));
    auto named = f.call_as(gp_clinician(), "POST", "/HealthcareService",
                           R"({"resourceType":"HealthcareService","name":"Tom's own service","extension":[{"url":"https://x.example/for","valueReference":{"reference":"Patient/9000000009"}}]})");
    CHECK(named.status == 422);
    CHECK(named.body.find("business-rule") != std::string::npos);
    CHECK(f.call_as(gp_clinician(), "POST", "/Linkage",
                    R"({"resourceType":"Linkage","item":[{"type":"source","resource":{"reference":"Observation/)" + observation + R"("}}]})")
              .status == 422);
    auto bundle = f.call_as(gp_clinician(), "POST", "/",
                            R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"GuidanceResponse",)"
                            R"("moduleUri":"https://x.example/m","status":"success","subject":{"reference":"Patient/9000000009"}},)"
                            R"("request":{"method":"POST","url":"GuidanceResponse"}}]})");
    CHECK(bundle.status == 422);
    CHECK(json_of(f.call_as(gp_clinician(), "GET", "/GuidanceResponse?_total=accurate"))["total"].GetInt() == 0);
    // What names nobody is stored, and seen by the type grant: admin staff read the services and slots.
    const auto service = f.create_as(gp_clinician(), "HealthcareService",
                                     R"({"resourceType":"HealthcareService","name":"Reablement","providedBy":{"reference":"Organization/8JK23"}})");
    CHECK(f.call_as(gp_admin(), "GET", "/HealthcareService/" + service).status == 200);
    CHECK(f.call_as(social_worker(), "GET", "/HealthcareService/" + service).status == 200);
    CHECK(f.call_as(gp_admin(), "POST", "/Slot",
                    R"({"resourceType":"Slot","schedule":{"reference":"Schedule/clinic"},"status":"free","start":"2026-12-01T09:00:00Z","end":"2026-12-01T09:15:00Z"})")
              .status == 201);
    CHECK(f.call_as(gp_admin(), "POST", "/PlanDefinition", R"({"resourceType":"PlanDefinition","status":"draft"})").status == 403);
}

TEST_CASE("objection: a citizen's objection limits the record to what each organisation wrote") {
    record_fixture f;
    f.create_as(acute_clinician(), "Encounter", encounter_json(tom, "RX1", "in-progress"));
    const auto gp_item = f.create_as(gp_clinician(), "Condition", condition_json(tom, "active"));
    const auto acute_item = f.create_as(acute_clinician(), "Condition", condition_json(tom, "active"));
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + gp_item).status == 200);
    const auto consent = f.create_as(gp_clinician(), "Consent",
        R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/9000000009"},"provision":{"type":"deny"}})");
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + gp_item).status == 404);
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + acute_item).status == 200);
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + gp_item).status == 200);
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + acute_item).status == 404);
    // Break-glass does not override an objection under the default policy.
    identity emergency = acute_clinician();
    emergency.user = "acute-doctor-3";
    emergency.purpose = "ETREAT";
    emergency.reason = "cardiac arrest";
    CHECK(f.call_as(emergency, "GET", "/Condition/" + gp_item).status == 404);
    // Withdrawn (deleted by the GP who recorded it): sharing resumes.
    CHECK(f.call_as(gp_clinician(), "DELETE", "/Consent/" + consent).status == 204);
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + gp_item).status == 200);
}

TEST_CASE("labels: R items only for clinical roles; V items only for the organisation that wrote them") {
    record_fixture f;
    f.create_as(system_identity(), "EpisodeOfCare", episode_json(tom, "8JK23"));
    f.create_as(acute_clinician(), "Encounter", encounter_json(tom, "RX1", "in-progress"));
    const auto restricted = f.create_as(gp_clinician(), "Condition", condition_json(tom, "active", labelled("R")));
    const auto very = f.create_as(gp_clinician(), "Condition", condition_json(tom, "active", labelled("V")));
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + restricted).status == 200);
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + restricted).status == 200);
    CHECK(f.call_as(social_worker(), "GET", "/Condition/" + restricted).status == 404);
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + very).status == 200);
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + very).status == 404);
    // Nothing leaks through history or vread either.
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + very + "/_history").status == 404);
    CHECK(f.call_as(acute_clinician(), "GET", "/Condition/" + very + "/_history/1").status == 404);
    auto history = f.call_as(acute_clinician(), "GET", "/Condition/_history");
    REQUIRE(history.status == 200);
    CHECK(history.body.find(very) == std::string::npos);
    CHECK(history.body.find(restricted) != std::string::npos);
}

TEST_CASE("ownership: only the contributing organisation updates or deletes; others add their own") {
    record_fixture f;
    f.create_as(acute_clinician(), "Encounter", encounter_json(tom, "RX1", "in-progress"));
    const auto id = f.create_as(gp_clinician(), "Condition", condition_json(tom, "active"));
    const std::string changed = R"({"resourceType":"Condition","id":")" + id +
                                R"(","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"resolved"}]},"code":{"text":"a condition"},"subject":{"reference":"Patient/9000000009"}})";
    auto theirs = f.call_as(acute_clinician(), "PUT", "/Condition/" + id, changed);
    CHECK(theirs.status == 403);
    CHECK(f.call_as(acute_clinician(), "DELETE", "/Condition/" + id).status == 403);
    CHECK(f.call_as(gp_clinician(), "GET", "/Condition/" + id).header("ETag") == "W/\"1\"");
    CHECK(f.call_as(gp_clinician(), "PUT", "/Condition/" + id, changed).status == 200);
    CHECK(f.call_as(gp_clinician(), "DELETE", "/Condition/" + id).status == 204);
    // The ICS's own integration service may correct anyone's contribution.
    const auto other = f.create_as(gp_clinician(), "Condition", condition_json(tom, "active"));
    CHECK(f.call("DELETE", "/Condition/" + other).status == 204);
}

TEST_CASE("scopes: a token's SMART scopes narrow what the policy allows") {
    record_fixture f;
    identity reader = gp_clinician();
    reader.scopes = {"user/Patient.rs"};
    CHECK(f.call_as(reader, "GET", "/Patient/9000000009").status == 200);
    CHECK(f.call_as(reader, "POST", "/Condition", condition_json(tom, "active")).status == 403);
    identity v1 = gp_clinician();
    v1.scopes = {"user/*.read"};
    CHECK(f.call_as(v1, "GET", "/Patient/9000000009").status == 200);
    CHECK(f.call_as(v1, "POST", "/Condition", condition_json(tom, "active")).status == 403);
}

TEST_CASE("audit: every access is recorded; information governance reads the trail as AuditEvent") {
    record_fixture f;
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009").status == 200);
    CHECK(f.call_as(acute_clinician(), "GET", "/Patient/9000000009").status == 404);
    f.flush();
    auto trail = f.call_as(ig_officer(), "GET", "/AuditEvent?patient=Patient/9000000009");
    REQUIRE(trail.status == 200);
    rapidjson::Document doc;
    doc.Parse(trail.body.c_str());
    REQUIRE(doc.HasMember("entry"));
    bool gp_read = false;
    for (const auto& entry : doc["entry"].GetArray()) {
        const auto& event = entry["resource"];
        CHECK(std::string(event["resourceType"].GetString()) == "AuditEvent");
        const std::string who = text_at(event, "agent", 1, "who", "identifier", "value");
        gp_read = gp_read || (who == "A81001" && std::string(event["action"].GetString()) == "R" &&
                              std::string(event["outcome"].GetString()) == "0");
    }
    CHECK(gp_read);
    auto by_agent = f.call_as(ig_officer(), "GET", "/AuditEvent?agent=RX1");
    CHECK(by_agent.status == 200);
    CHECK(by_agent.body.find("A81001") == std::string::npos);
    CHECK(f.call_as(gp_clinician(), "GET", "/AuditEvent?patient=9000000009").status == 403);
    CHECK(f.call_as(ig_officer(), "GET", "/Patient/9000000009").status == 403);
    auto verified = f.store->verify_audit();
    REQUIRE(verified.ok());
    CHECK_FALSE(verified->first_broken.has_value());
    CHECK(verified->records >= 4);
}

TEST_CASE("audit: a write and its audit record commit together") {
    record_fixture f;
    const auto id = f.create_as(gp_clinician(), "Condition", condition_json(tom, "active"));
    caregate::storage::store::audit_query query;
    query.agent = "gp-doctor-1";
    auto page = f.store->audit(query);
    REQUIRE(page.ok());
    bool found = false;
    for (const auto& record : page->records)
        found = found || (record.action == "create" && record.resource_ids == id && record.nhs_number == tom &&
                          record.outcome == "success");
    CHECK(found); // no flush needed: it was in the write's transaction
}

// ---- rules no looser than the policy says ----

namespace {

/// A provider token as `who`'s, but with exactly `scope_claim` (raw JSON) as its scope claim.
std::string token_with_scope(const identity& who, const std::string& scope_claim) {
    namespace jose = caregate::auth::detail;
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string payload = R"({"iss":")" + std::string(test_issuer) + R"(","aud":")" + test_base_url + R"(","sub":")" +
                                who.user + R"(","ods_code":")" + who.ods + R"(","role":")" + who.role +
                                R"(","scope":)" + scope_claim + R"(,"iat":)" + std::to_string(now) +
                                R"(,"nbf":)" + std::to_string(now) + R"(,"exp":)" + std::to_string(now + 600) + "}";
    const auto key = jose::private_key_from_pem(test_keys::get().private_pem);
    const std::string input = jose::base64url_encode(R"({"alg":"RS256","typ":"JWT"})") + "." + jose::base64url_encode(payload);
    return input + "." + jose::base64url_encode(jose::sign(jose::algorithm_of(key.get()), key.get(), input));
}

std::string care_team_json(const std::string& nhs, const std::string& manager, const std::string& member) {
    return R"({"resourceType":"CareTeam","status":"active","subject":)" + ref(nhs) +
           R"(,"managingOrganization":[{"reference":"Organization/)" + manager +
           R"("}],"participant":[{"member":{"reference":"Organization/)" + member + R"("}}]})";
}

} // namespace

TEST_CASE("scopes: a scope claim that names nothing (\"\", \" \", []) grants nothing; no claim leaves it to the policy") {
    record_fixture f;
    for (const std::string claim : {R"("")", R"(" ")", "[]"}) {
        CAPTURE(claim);
        const std::vector<caregate::http::header_field> bearer = {{"Authorization", "Bearer " + token_with_scope(gp_clinician(), claim)}};
        CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009", {}, bearer).status == 403);
        CHECK(f.call_as(gp_clinician(), "GET", "/Condition?patient=9000000009", {}, bearer).status == 403);
        CHECK(f.call_as(gp_clinician(), "POST", "/Condition", condition_json(tom, "active"), bearer).status == 403);
    }
    // The same token with a scope, and without the claim at all, as the README documents.
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009", {},
                    {{"Authorization", "Bearer " + token_with_scope(gp_clinician(), R"("user/Patient.rs")")}})
              .status == 200);
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000009").status == 200);
}

TEST_CASE("legitimate relationship: links another organisation's record names give the named organisation nothing") {
    record_fixture f;
    auto acute_sees_tom = [&] { return f.call_as(acute_clinician(), "GET", "/Patient/9000000009").status; };
    auto social_care_sees_tom = [&] { return f.call_as(social_worker(), "GET", "/Patient/9000000009").status; };
    const std::string gp_encounter = encounter_json(tom, "RX1", "in-progress");
    SUBCASE("a GP's Encounter naming the acute trust as serviceProvider: create, conditional create, update, conditional update, patch") {
        const auto id = f.create_as(gp_clinician(), "Encounter", gp_encounter);
        CHECK(acute_sees_tom() == 404);
        CHECK(f.call_as(gp_clinician(), "POST", "/Encounter", gp_encounter, {{"If-None-Exist", "identifier=https://gp.example/enc|1"}})
                  .status == 201);
        CHECK(acute_sees_tom() == 404);
        std::string updated = gp_encounter;
        updated.insert(1, R"("id":")" + id + R"(",)");
        CHECK(f.call_as(gp_clinician(), "PUT", "/Encounter/" + id, updated).status == 200);
        CHECK(acute_sees_tom() == 404);
        std::string identified = gp_encounter;
        identified.insert(1, R"("identifier":[{"system":"https://gp.example/enc","value":"2"}],)");
        CHECK(f.call_as(gp_clinician(), "PUT", "/Encounter?identifier=https://gp.example/enc%7C2", identified).status == 201);
        CHECK(acute_sees_tom() == 404);
        const auto own = f.create_as(gp_clinician(), "Encounter", encounter_json(tom, "A81001", "in-progress"));
        CHECK(f.call_as(gp_clinician(), "PATCH", "/Encounter/" + own,
                        R"([{"op":"replace","path":"/serviceProvider/reference","value":"Organization/RX1"}])",
                        {{"Content-Type", "application/json-patch+json"}})
                  .status == 200);
        CHECK(acute_sees_tom() == 404);
    }
    SUBCASE("in a transaction") {
        // Organisations named by identifier: a transaction checks that literal references resolve.
        auto by_identifier = [](std::string body, const std::string& ods) {
            const std::string literal = R"({"reference":"Organization/)" + ods + R"("})";
            return body.replace(body.find(literal), literal.size(),
                                R"({"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" + ods + R"("}})");
        };
        const std::string bundle =
            R"({"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Encounter"},"resource":)" +
            by_identifier(gp_encounter, "RX1") + R"(},{"request":{"method":"POST","url":"EpisodeOfCare"},"resource":)" +
            by_identifier(episode_json(tom, "8JK23"), "8JK23") + "}]}";
        auto answered = f.call_as(gp_clinician(), "POST", "", bundle);
        REQUIRE_MESSAGE(answered.status == 200, answered.body);
        CHECK(acute_sees_tom() == 404);
        CHECK(social_care_sees_tom() == 404);
    }
    SUBCASE("an EpisodeOfCare or CareTeam naming other organisations; a Patient naming another practice") {
        f.create_as(gp_clinician(), "EpisodeOfCare", episode_json(tom, "8JK23"));
        f.create_as(gp_clinician(), "CareTeam", care_team_json(tom, "RX1", "8JK23"));
        CHECK(acute_sees_tom() == 404);
        CHECK(social_care_sees_tom() == 404);
        // The acute trust records its own care: its own links count, those it names for others do not.
        f.create_as(acute_clinician(), "CareTeam", care_team_json(tom, "RX1", "8JK23"));
        CHECK(acute_sees_tom() == 200);
        CHECK(social_care_sees_tom() == 404);
        auto registered = f.call_as(acute_clinician(), "PUT", std::string("/Patient/") + ada,
                                    patient_json(ada, R"("id":"9000000025","generalPractitioner":[{"reference":"Organization/A81001"}])"));
        REQUIRE_MESSAGE(registered.status == 201, registered.body);
        CHECK(f.call_as(gp_clinician(), "GET", std::string("/Patient/") + ada).status == 404);
    }
    SUBCASE("what the ICS's integration service records counts") {
        f.create_as(system_identity(), "Encounter", gp_encounter);
        CHECK(acute_sees_tom() == 200);
    }
}

TEST_CASE("break-glass: a grant follows the user, organisation and role that opened it, not the user into another role") {
    record_fixture f;
    identity emergency = acute_clinician();
    emergency.user = "acute-doctor-7";
    emergency.purpose = "ETREAT";
    emergency.reason = "unconscious in A&E";
    REQUIRE(f.call_as(emergency, "GET", "/Patient/9000000009").status == 200);
    f.flush();
    identity same_role = acute_clinician();
    same_role.user = "acute-doctor-7";
    CHECK(f.call_as(same_role, "GET", "/Patient/9000000009").status == 200);
    // The same person with an admin token of the same organisation: the grant was not theirs as admin.
    identity as_admin = acute_admin();
    as_admin.user = "acute-doctor-7";
    CHECK(f.call_as(as_admin, "GET", "/Patient/9000000009").status == 404);
    auto found = f.call_as(as_admin, "GET", "/Patient?_id=9000000009&_total=accurate");
    REQUIRE(found.status == 200);
    CHECK(json_of(found)["total"].GetInt() == 0);
    identity as_nurse = acute_clinician();
    as_nurse.user = "acute-doctor-7";
    as_nurse.role = "R8001";
    CHECK(f.call_as(as_nurse, "GET", "/Patient/9000000009").status == 404);
}

TEST_CASE("break-glass: the grant lasts the policy's minutes from the request's time, and not a moment longer") {
    record_fixture f;
    identity emergency = acute_clinician();
    emergency.purpose = "ETREAT";
    emergency.reason = "unconscious in A&E";
    REQUIRE(f.call_as(emergency, "GET", "/Patient/9000000009").status == 200);
    f.flush();
    caregate::storage::store::audit_query query;
    query.purpose = "ETREAT";
    auto page = f.store->audit(query);
    REQUIRE(page.ok());
    std::optional<caregate::storage::timestamp> opened;
    for (const auto& record : page->records)
        if (record.action == "break-glass")
            opened = record.time; // the request's time, which the guard was given
    REQUIRE(opened);
    const caregate::storage::timestamp window = 480LL * 60 * 1'000'000; // default-policy.json: "minutes": 480
    REQUIRE(f.policy.break_glass_micros() == window);
    auto until = [&](caregate::storage::timestamp now) {
        auto standing = f.store->standing(tom, "RX1", "acute-doctor-1", "R8000", 0, now);
        REQUIRE(standing.ok());
        return standing->break_glass_until;
    };
    CHECK(until(*opened) == *opened + window);
    CHECK(until(*opened + window - 1) == *opened + window);
    CHECK_FALSE(until(*opened + window));

    // A policy of one minute: the guard opens the record at the request's time, and a request a minute
    // later finds it closed.
    std::string one_minute(caregate::access::default_policy_json);
    one_minute.replace(one_minute.find(R"("minutes": 480)"), std::string(R"("minutes": 480)").size(), R"("minutes": 1)");
    const auto brief = caregate::access::policy::parse(one_minute);
    caregate::access::guard guard(brief, f.organisations, *f.tokens, *f.store);
    emergency.user = "acute-doctor-8";
    caregate::http::request req;
    req.headers.push_back({"Authorization", "Bearer " + token_for(emergency)});
    req.secure = true;
    req.client_ods = "RX1";
    const caregate::storage::timestamp now = caregate::access::now_micros();
    caregate::access::request_views views;
    auto doctor_8 = guard.authenticate(caregate::rest::credentials_of(req), now / 1'000'000);
    REQUIRE(doctor_8.ok());
    auto opened_now = guard.open_citizen(*doctor_8, bunmi, "request-1", now, views, true);
    REQUIRE(opened_now.ok());
    CHECK(opened_now->break_glass);
    f.flush();
    auto later = [&](caregate::storage::timestamp at) {
        caregate::access::request_views fresh;
        auto view = guard.open_citizen(*doctor_8, bunmi, "request-2", at, fresh, false);
        REQUIRE(view.ok());
        return view->open;
    };
    CHECK(later(now + 59'000'000));
    CHECK_FALSE(later(now + 60'000'000));
}

TEST_CASE("policy: a part-of-type grant needs every value of the element, in the named code system") {
    record_fixture f;
    f.create_as(system_identity(), "EpisodeOfCare", episode_json(tom, "8JK23"));
    const std::string category_system = "http://terminology.hl7.org/CodeSystem/observation-category";
    auto with_categories = [&](const std::string& codings) {
        return R"({"resourceType":"Observation","status":"final","category":[)" + codings +
               R"(],"code":{"text":"an observation"},"subject":)" + ref(tom) + "}";
    };
    auto category = [&](const std::string& code, const std::string& system) {
        return R"({"coding":[{"system":")" + system + R"(","code":")" + code + R"("}]})";
    };
    const std::string mixed = with_categories(category("social-history", category_system) + "," + category("laboratory", category_system));
    const std::string foreign = with_categories(category("social-history", "http://example.org/x"));
    const std::string text_only = with_categories(category("social-history", category_system) + R"(,{"text":"laboratory"})");
    // Reads: what the GP wrote.
    const auto mixed_id = f.create_as(gp_clinician(), "Observation", mixed);
    const auto foreign_id = f.create_as(gp_clinician(), "Observation", foreign);
    const auto text_id = f.create_as(gp_clinician(), "Observation", text_only);
    const auto social_id = f.create_as(gp_clinician(), "Observation",
                                       with_categories(category("social-history", category_system) + "," + category("survey", category_system)));
    CHECK(f.call_as(social_worker(), "GET", "/Observation/" + mixed_id).status == 404);
    CHECK(f.call_as(social_worker(), "GET", "/Observation/" + foreign_id).status == 404);
    CHECK(f.call_as(social_worker(), "GET", "/Observation/" + text_id).status == 404);
    CHECK(f.call_as(social_worker(), "GET", "/Observation/" + social_id).status == 200);
    auto found = f.call_as(social_worker(), "GET", std::string("/Observation?patient=") + tom + "&_total=accurate");
    REQUIRE(found.status == 200);
    CHECK(json_of(found)["total"].GetInt() == 1);
    CHECK(found.body.find(social_id) != std::string::npos);
    const std::string other_status =
        R"({"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"},{"system":"http://example.org/x","code":"active"}]},"code":{"text":"a condition"},"subject":)" +
        ref(tom) + "}";
    CHECK(f.call_as(social_worker(), "GET", "/Condition/" + f.create_as(gp_clinician(), "Condition", other_status)).status == 404);
    // Writes: the social worker's own.
    CHECK(f.call_as(social_worker(), "POST", "/Observation", mixed).status == 403);
    CHECK(f.call_as(social_worker(), "POST", "/Observation", foreign).status == 403);
    CHECK(f.call_as(social_worker(), "POST", "/Observation", text_only).status == 403);
    CHECK(f.call_as(social_worker(), "POST", "/Observation", with_categories(category("social-history", category_system))).status == 201);
}

TEST_CASE("policy: a `where` entry must name element=system|code; a bare code stops the server at start") {
    std::string old_style(caregate::access::default_policy_json);
    const std::string entry = R"("category=http://terminology.hl7.org/CodeSystem/observation-category|survey")";
    old_style.replace(old_style.find(entry), entry.size(), R"("category=survey")");
    CHECK_THROWS_AS(caregate::access::policy::parse(old_style), std::invalid_argument);
}
