// What an attacker tried against items restricted after they were written, items that point at
// others, erased records and the access log, through the API as each caller sends requests: a version
// is shown only when its caller may see both it and the resource as it is now; a Provenance only to
// those who may see what it points at; an erasure is final; an access log never names an item
// withheld from its reader.
#include "patient_fixture.hpp"

#include <sqlite3.h>

#include <string>
#include <vector>

using namespace caregate::testing;
using caregate::http::response;

namespace {

constexpr const char* confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
constexpr const char* act_code = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
constexpr const char* secret = "POSITIVE - not yet discussed";

std::string observation_with(const std::string& nhs, const std::string& id, const std::string& security,
                             const std::string& category = "laboratory") {
    return R"({"resourceType":"Observation","id":")" + id + R"(",)" +
           (security.empty() ? std::string() : R"("meta":{"security":[)" + security + "]},") +
           R"("status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
           category + R"("}]}],"code":{"coding":[{"system":"http://loinc.org","code":"94500-6"}]},"subject":{"reference":"Patient/)" +
           nhs + R"("},"valueString":")" + secret + R"("})";
}

std::string label(const char* system, const char* code) {
    return R"({"system":")" + std::string(system) + R"(","code":")" + code + R"("})";
}

/// An Encounter an organisation records itself, which gives it a relationship with the citizen.
std::string encounter_by(const std::string& nhs, const std::string& ods) {
    return R"({"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/)" +
           nhs + R"("},"serviceProvider":{"reference":"Organization/)" + ods + R"("}})";
}

/// Every history a caller can ask for, in the forms the attack used.
std::vector<std::string> history_paths(const std::string& type) {
    return {"/" + type + "/_history", "/_history", "/" + type + "/_history?_since=2000-01-01T00:00:00Z",
            "/" + type + "/_history?_at=2000-01-01T00:00:00Z", "/_history?_since=2000-01-01T00:00:00Z",
            "/" + type + "/_history?_count=1", "/_history?_at=" + std::string("2099-01-01")};
}

/// The (type/id, version) of every entry of a history Bundle.
std::vector<std::string> entries_of(const response& r) {
    REQUIRE_MESSAGE(r.status == 200, r.body);
    std::vector<std::string> out;
    auto doc = json_of(r);
    if (doc.HasMember("entry"))
        for (const auto& e : doc["entry"].GetArray())
            out.push_back(std::string(e["fullUrl"].GetString()) + " " + e["response"]["etag"].GetString());
    return out;
}

bool mentions(const response& r, const std::string& text) { return r.body.find(text) != std::string::npos; }

/// Follows a history's next links from `path`, collecting every page's entries.
std::vector<std::string> all_pages(patient_fixture& f, const identity& who, std::string path) {
    std::vector<std::string> all;
    for (int page = 0; page < 100 && !path.empty(); ++page) {
        const response r = f.call_as(who, "GET", path);
        for (auto& entry : entries_of(r))
            all.push_back(entry);
        path.clear();
        auto doc = json_of(r);
        for (const auto& link : doc["link"].GetArray())
            if (std::string_view(link["relation"].GetString()) == "next")
                path = std::string(link["url"].GetString()).substr(std::string(test_base_url).size());
    }
    return all;
}

} // namespace

TEST_CASE("history: a version restricted since it was written (NOPAT, V) is in no history of the citizen or of an acute trust") {
    patient_fixture f;
    const std::string tom_token = citizen_token(tom);
    REQUIRE(f.call_as(acute_clinician(), "POST", "/Encounter", encounter_by(tom, "RX1")).status == 201);
    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/result-1", observation_with(tom, "result-1", "")).status == 201);
    // Both see version 1 while it is unrestricted: the checks below can fail.
    CHECK(mentions(f.as_citizen(tom_token, "GET", "/Observation/_history"), secret));
    CHECK(mentions(f.call_as(acute_clinician(), "GET", "/Observation/_history"), secret));

    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/result-1",
                      observation_with(tom, "result-1", label(act_code, "NOPAT") + "," + label(confidentiality, "V")))
                .status == 200);
    for (const std::string& path : history_paths("Observation")) {
        CAPTURE(path);
        const response citizen = f.as_citizen(tom_token, "GET", path);
        CHECK(citizen.status == 200);
        CHECK_FALSE(mentions(citizen, secret));
        CHECK_FALSE(mentions(citizen, "result-1"));
        const response acute = f.call_as(acute_clinician(), "GET", path);
        CHECK(acute.status == 200);
        CHECK_FALSE(mentions(acute, secret));
        CHECK_FALSE(mentions(acute, "result-1"));
    }
    CHECK(f.as_citizen(tom_token, "GET", "/Observation/result-1/_history/1").status == 404);
    CHECK(f.call_as(acute_clinician(), "GET", "/Observation/result-1/_history/1").status == 404);
    // The GP who wrote it still sees both versions.
    CHECK(entries_of(f.call_as(gp_clinician(), "GET", "/Observation/result-1/_history")).size() == 2);
    CHECK(mentions(f.call_as(gp_clinician(), "GET", "/Observation/_history"), secret));
}

TEST_CASE("history: an item labelled R since is in no history of a social worker") {
    patient_fixture f;
    // The council's CareTeam for Tom gives it a relationship.
    REQUIRE(f.call_as(social_worker(), "POST", "/CareTeam",
                      R"({"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/9000000009"},"managingOrganization":[{"reference":"Organization/8JK23"}]})")
                .status == 201);
    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/living-1", observation_with(tom, "living-1", "", "social-history")).status == 201);
    CHECK(mentions(f.call_as(social_worker(), "GET", "/Observation/_history"), secret));
    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/living-1",
                      observation_with(tom, "living-1", label(confidentiality, "R"), "social-history"))
                .status == 200);
    for (const std::string& path : history_paths("Observation")) {
        CAPTURE(path);
        const response r = f.call_as(social_worker(), "GET", path);
        CHECK(r.status == 200);
        CHECK_FALSE(mentions(r, secret));
        CHECK_FALSE(mentions(r, "living-1"));
    }
}

TEST_CASE("history: an item moved to another citizen leaves the first citizen's histories") {
    patient_fixture f;
    // Written for Tom (the GP's patient), then corrected to Bunmi, with whom the GP has no relationship.
    REQUIRE(f.call("PUT", "/Observation/moved-1", observation_with(tom, "moved-1", "")).status == 201);
    CHECK(mentions(f.call_as(gp_clinician(), "GET", "/Observation/_history"), "moved-1"));
    REQUIRE(f.call("PUT", "/Observation/moved-1", observation_with(bunmi, "moved-1", "")).status == 200);
    for (const std::string& path : history_paths("Observation")) {
        CAPTURE(path);
        CHECK_FALSE(mentions(f.call_as(gp_clinician(), "GET", path), "moved-1"));
    }
    CHECK_FALSE(mentions(f.as_citizen(citizen_token(tom), "GET", "/Observation/_history"), "moved-1"));
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/moved-1/_history/1").status == 404);
}

TEST_CASE("history: a deleted item's history follows its last live version") {
    patient_fixture f;
    const std::string tom_token = citizen_token(tom);
    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/gone-1", observation_with(tom, "gone-1", "")).status == 201);
    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/gone-1",
                      observation_with(tom, "gone-1", label(act_code, "NOPAT")))
                .status == 200);
    REQUIRE(f.call_as(gp_clinician(), "DELETE", "/Observation/gone-1").status / 100 == 2);
    for (const std::string& path : history_paths("Observation")) {
        CAPTURE(path);
        CHECK_FALSE(mentions(f.as_citizen(tom_token, "GET", path), "gone-1"));
    }
    // The GP sees the deletion and both versions.
    CHECK(entries_of(f.call_as(gp_clinician(), "GET", "/Observation/gone-1/_history")).size() == 3);
}

TEST_CASE("history: pages hold _count entries the caller may see, and the next links reach every one") {
    patient_fixture f;
    // Bunmi's items (hidden from the GP) between Tom's (visible), so that a page filtered after its
    // query would come back short.
    for (int i = 0; i < 6; ++i) {
        REQUIRE(f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000017"})")).status == 201);
        REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/page-" + std::to_string(i),
                          observation_with(tom, "page-" + std::to_string(i), ""))
                    .status == 201);
    }
    const response first = f.call_as(gp_clinician(), "GET", "/Observation/_history?_count=3");
    CHECK(entries_of(first).size() == 3);
    // Tom's observations: the fixture's three and these six.
    CHECK(all_pages(f, gp_clinician(), "/Observation/_history?_count=2").size() == 9);
}

TEST_CASE("Provenance: seen only by those who may see what it points at; ?target= tells nothing of a hidden id") {
    patient_fixture f;
    // The acute trust treats Bunmi and records an R Condition, and its Provenance.
    REQUIRE(f.call_as(acute_clinician(), "POST", "/Encounter", encounter_by(bunmi, "RX1")).status == 201);
    const std::string condition = R"({"resourceType":"Condition","meta":{"security":[)" + label(confidentiality, "R") +
                                  R"(]},"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":{"text":"Depression"},"subject":{"reference":"Patient/9000000017"}})";
    const std::string condition_id = patient_fixture::created_id(f.call_as(acute_clinician(), "POST", "/Condition", condition));
    const std::string provenance =
        R"({"resourceType":"Provenance","target":[{"reference":"Condition/)" + condition_id +
        R"("}],"recorded":"2026-11-01T10:00:00Z","reason":[{"text":"Depression review - sertraline started"}],"agent":[{"who":{"reference":"Organization/RX1"}}]})";
    const std::string provenance_id = patient_fixture::created_id(f.call_as(acute_clinician(), "POST", "/Provenance", provenance));

    // Tom on the patient endpoint, and Tom's GP, who has no relationship with Bunmi.
    const std::string tom_token = citizen_token(tom);
    CHECK(f.as_citizen(tom_token, "GET", "/Provenance/" + provenance_id).status == 404);
    CHECK_FALSE(mentions(f.as_citizen(tom_token, "GET", "/Provenance"), "sertraline"));
    CHECK_FALSE(mentions(f.as_citizen(tom_token, "GET", "/Provenance/_history"), "sertraline"));
    CHECK(f.call_as(gp_clinician(), "GET", "/Provenance/" + provenance_id).status == 404);
    CHECK(f.call_as(gp_clinician(), "GET", "/Provenance/" + provenance_id + "/_history/1").status == 404);
    CHECK_FALSE(mentions(f.call_as(gp_clinician(), "GET", "/Provenance"), "sertraline"));
    CHECK_FALSE(mentions(f.call_as(gp_clinician(), "GET", "/_history"), "sertraline"));
    CHECK_FALSE(mentions(f.call_as(gp_clinician(), "GET", "/Condition?_revinclude=Provenance:target"), "sertraline"));
    // ?target= answers a hidden id exactly as an id that does not exist.
    const response hidden = f.call_as(gp_clinician(), "GET", "/Provenance?target=Condition/" + condition_id + "&_total=accurate");
    const response absent = f.call_as(gp_clinician(), "GET", "/Provenance?target=Condition/no-such-condition&_total=accurate");
    CHECK(hidden.status == 200);
    CHECK(json_of(hidden)["total"].GetInt() == 0);
    CHECK(json_of(absent)["total"].GetInt() == 0);
    CHECK_FALSE(mentions(hidden, provenance_id));
    // The trust, which may see the Condition, sees its Provenance.
    CHECK(f.call_as(acute_clinician(), "GET", "/Provenance/" + provenance_id).status == 200);
    CHECK(json_of(f.call_as(acute_clinician(), "GET", "/Provenance?target=Condition/" + condition_id + "&_total=accurate"))["total"].GetInt() == 1);

    // Relabelled later, a Provenance of an item once visible goes with it.
    REQUIRE(f.call_as(acute_clinician(), "POST", "/Encounter", encounter_by(tom, "RX1")).status == 201);
    const std::string tom_condition = patient_fixture::created_id(f.call_as(
        acute_clinician(), "POST", "/Condition",
        R"({"resourceType":"Condition","code":{"text":"Fracture"},"subject":{"reference":"Patient/9000000009"}})"));
    const std::string tom_provenance = patient_fixture::created_id(f.call_as(
        acute_clinician(), "POST", "/Provenance",
        R"({"resourceType":"Provenance","target":[{"reference":"Condition/)" + tom_condition +
            R"("}],"recorded":"2026-11-01T10:00:00Z","agent":[{"who":{"reference":"Organization/RX1"}}]})"));
    CHECK(f.as_citizen(tom_token, "GET", "/Provenance/" + tom_provenance).status == 200);
    REQUIRE(f.call_as(acute_clinician(), "PUT", "/Condition/" + tom_condition,
                      R"({"resourceType":"Condition","id":")" + tom_condition + R"(","meta":{"security":[)" +
                          label(act_code, "NOPAT") +
                          R"(]},"code":{"text":"Fracture"},"subject":{"reference":"Patient/9000000009"}})")
                .status == 200);
    CHECK(f.as_citizen(tom_token, "GET", "/Provenance/" + tom_provenance).status == 404);
    CHECK_FALSE(mentions(f.as_citizen(tom_token, "GET", "/Provenance"), tom_provenance));
    CHECK_FALSE(mentions(f.as_citizen(tom_token, "GET", "/Provenance/_history"), tom_provenance));
}

TEST_CASE("Provenance: a writer cannot point at an item it may not see, and learns nothing of whether it exists") {
    patient_fixture f;
    const std::string bunmis = patient_fixture::created_id(
        f.call("POST", "/Condition", R"({"resourceType":"Condition","code":{"text":"Secret"},"subject":{"reference":"Patient/9000000017"}})"));
    auto provenance_of = [](const std::string& target) {
        return R"({"resourceType":"Provenance","target":[{"reference":")" + target +
               R"("}],"recorded":"2026-11-01T10:00:00Z","agent":[{"who":{"reference":"Organization/RX1"}}]})";
    };
    const response hidden = f.call_as(acute_clinician(), "POST", "/Provenance", provenance_of("Condition/" + bunmis));
    const response absent = f.call_as(acute_clinician(), "POST", "/Provenance", provenance_of("Condition/no-such-condition"));
    CHECK(hidden.status == 422);
    CHECK(absent.status == 422);
    auto diagnostics = [](const response& r) {
        auto doc = json_of(r);
        REQUIRE_MESSAGE((doc.HasMember("issue") && doc["issue"].IsArray() && !doc["issue"].Empty()), r.body);
        return std::string(doc["issue"][0]["diagnostics"].GetString());
    };
    CHECK(diagnostics(hidden) == diagnostics(absent));
    // No other spelling of the reference escapes: one version of it, or an absolute URL.
    CHECK(f.call_as(acute_clinician(), "POST", "/Provenance", provenance_of("Condition/" + bunmis + "/_history/1")).status == 422);
    CHECK(f.call_as(acute_clinician(), "POST", "/Provenance",
                    provenance_of(std::string(test_base_url) + "/Condition/" + bunmis)).status == 422);
    // A Provenance of a Provenance is refused: visibility follows one level.
    const std::string own = patient_fixture::created_id(f.call("POST", "/Provenance", provenance_of("Patient/9000000009")));
    CHECK(f.call("POST", "/Provenance", provenance_of("Provenance/" + own)).status == 422);
}

TEST_CASE("erasure is final: a new registration of the same NHS number starts an empty record") {
    patient_fixture f;
    constexpr const char* erased = "9000000025";
    REQUIRE(f.call("PUT", std::string("/Patient/") + erased,
                   patient_json(erased, R"("id":"9000000025","telecom":[{"system":"phone","value":"01632 960000 ERASED"}],"generalPractitioner":[{"reference":"Organization/A81001"}])"))
                .status == 201);
    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/erased-1", observation_with(erased, "erased-1", "")).status == 201);
    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Observation/erased-1", observation_with(erased, "erased-1", label(confidentiality, "R"))).status == 200);
    const std::string provenance = patient_fixture::created_id(f.call_as(
        gp_clinician(), "POST", "/Provenance",
        R"({"resourceType":"Provenance","target":[{"reference":"Observation/erased-1"}],"recorded":"2026-11-01T10:00:00Z","reason":[{"text":"erased reason"}],"agent":[{"who":{"reference":"Organization/A81001"}}]})"));
    const response erase = f.call("DELETE", std::string("/Patient/") + erased + "?_cascade=delete");
    REQUIRE_MESSAGE(erase.status / 100 == 2, erase.body);

    // The GP registers the same NHS number again.
    REQUIRE(f.call_as(gp_clinician(), "POST", "/Patient",
                      patient_json(erased, R"("generalPractitioner":[{"reference":"Organization/A81001"}])"))
                .status == 201);
    for (const std::string& path : {std::string("/Observation/_history"), std::string("/_history"),
                                    std::string("/Provenance/_history"), std::string("/Observation?subject=Patient/") + erased}) {
        CAPTURE(path);
        const response r = f.call_as(gp_clinician(), "GET", path);
        CHECK(r.status == 200);
        CHECK_FALSE(mentions(r, secret));
        CHECK_FALSE(mentions(r, "erased-1"));
        CHECK_FALSE(mentions(r, "ERASED"));
        CHECK_FALSE(mentions(r, "erased reason"));
    }
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/erased-1/_history/1").status == 404);
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/erased-1").status == 404);
    CHECK(f.call("GET", "/Observation/erased-1/_history/1").status == 404);
    CHECK(f.call("GET", "/Provenance/" + provenance).status == 404);
    const response demographics = f.call_as(gp_clinician(), "GET", std::string("/Patient/") + erased + "/_history");
    CHECK(entries_of(demographics).size() == 1);
    CHECK_FALSE(mentions(demographics, "ERASED"));
    CHECK(json_of(f.call_as(gp_clinician(), "GET", std::string("/Patient/") + erased))["meta"]["versionId"].GetString() ==
          std::string("1"));

    // Nothing of it is left in the database: no version, no index row, no derived row.
    f.flush();
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2((f.dir / "test.db").string().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    auto count = [&](const std::string& sql) {
        sqlite3_stmt* stmt = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
        const auto n = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        return n;
    };
    CHECK(count("SELECT count(*) FROM resource_versions WHERE id IN ('erased-1', '" + provenance + "')") == 0);
    CHECK(count("SELECT count(*) FROM resource_versions WHERE instr(json, 'ERASED') > 0 OR instr(json, 'erased reason') > 0") == 0);
    CHECK(count("SELECT count(*) FROM resource_versions WHERE type = 'Patient' AND id = '9000000025'") == 1);
    CHECK(count("SELECT count(*) FROM search_token WHERE instr(code, 'ERASED') > 0") == 0);
    CHECK(count("SELECT count(*) FROM search_token WHERE seq NOT IN (SELECT seq FROM resource_versions)") == 0);
    CHECK(count("SELECT count(*) FROM search_reference WHERE seq NOT IN (SELECT seq FROM resource_versions)") == 0);
    CHECK(count("SELECT count(*) FROM version_citizens WHERE seq NOT IN (SELECT seq FROM resource_versions)") == 0);
    // The audit trail keeps the erasure.
    CHECK(count("SELECT count(*) FROM audit_log WHERE nhs_number = '9000000025' AND action IN ('erase', 'delete')") >= 1);
    sqlite3_close(db);
}

TEST_CASE("the access log: a citizen sees who read their withheld items, when and why, without naming the items") {
    patient_fixture f;
    // The GP reads the fixture's NOPAT and V items, and an ordinary one.
    REQUIRE(f.call_as(gp_clinician(), "GET", "/Observation/" + f.tom_hidden).status == 200);
    REQUIRE(f.call_as(gp_clinician(), "GET", "/Observation/" + f.tom_safeguarding).status == 200);
    REQUIRE(f.call_as(gp_clinician(), "GET", "/Observation/" + f.tom_observation).status == 200);
    REQUIRE(f.call_as(gp_clinician(), "GET", "/Observation?subject=Patient/9000000009").status == 200);
    f.flush();
    const std::string tom_token = citizen_token(tom);
    const response log = f.as_citizen(tom_token, "GET", "/AuditEvent?_count=100");
    REQUIRE(log.status == 200);
    CHECK_FALSE(mentions(log, f.tom_hidden));
    CHECK_FALSE(mentions(log, f.tom_safeguarding));
    CHECK(mentions(log, f.tom_observation));
    // The reads are there: who (the GP's user), and the record of each, by its id.
    auto doc = json_of(log);
    int gp_reads = 0;
    for (const auto& entry : doc["entry"].GetArray()) {
        const auto& event = entry["resource"];
        if (text_at(event, "agent", 0, "who", "identifier", "value") != "gp-doctor-1" ||
            text_at(event, "subtype", 0, "code") != "read")
            continue;
        ++gp_reads;
        const response one = f.as_citizen(tom_token, "GET", std::string("/AuditEvent/") + event["id"].GetString());
        CHECK(one.status == 200);
        CHECK_FALSE(mentions(one, f.tom_hidden));
        CHECK_FALSE(mentions(one, f.tom_safeguarding));
    }
    CHECK(gp_reads >= 3);
    // Information governance sees the records whole.
    const response whole = f.call_as(ig_officer(), "GET", "/AuditEvent?patient=9000000009&_count=100");
    CHECK(mentions(whole, f.tom_hidden));
    CHECK(mentions(whole, f.tom_safeguarding));
}
