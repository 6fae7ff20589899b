// Transaction and batch Bundles (https://hl7.org/fhir/R4/http.html#transaction) through the handle()
// seam with a real store: references between entries rewritten, conditional references resolved,
// all or nothing, each entry checked and audited as if sent alone, referential integrity.
#include "application_fixture.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <latch>
#include <set>
#include <thread>

using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009"; // created by the fixture, registered with A81001
constexpr const char* nhs_system = "https://fhir.nhs.uk/Id/nhs-number";

std::string uuid(int n) {
    char text[64];
    std::snprintf(text, sizeof text, "urn:uuid:00000000-0000-4000-8000-%012d", n);
    return text;
}

/// One entry: `resource` may be empty (DELETE, GET).
std::string entry(const std::string& method, const std::string& url, const std::string& resource = {},
                  const std::string& full_url = {}, const std::string& extra_request = {}) {
    std::string text = "{";
    if (!full_url.empty())
        text += R"("fullUrl":")" + full_url + R"(",)";
    if (!resource.empty())
        text += R"("resource":)" + resource + ",";
    text += R"("request":{"method":")" + method + R"(","url":")" + url + "\"" +
            (extra_request.empty() ? "" : "," + extra_request) + "}}";
    return text;
}

std::string bundle(const std::string& type, const std::vector<std::string>& entries) {
    std::string text = R"({"resourceType":"Bundle","type":")" + type + R"(","entry":[)";
    for (std::size_t i = 0; i < entries.size(); ++i)
        text += (i ? "," : "") + entries[i];
    return text + "]}";
}

std::string subject(const std::string& reference) { return R"({"reference":")" + reference + R"("})"; }

std::string observation(const std::string& subject_json, const std::string& extra = {}) {
    return R"({"resourceType":"Observation",)" + extra +
           R"("status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":)" +
           subject_json + R"(,"valueQuantity":{"value":72.10,"unit":"/min"}})";
}

std::string encounter(const std::string& subject_json, const std::string& extra = {}) {
    return R"({"resourceType":"Encounter",)" + extra +
           R"("status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},)"
           R"("subject":)" + subject_json + R"(,"serviceProvider":{"reference":"Organization/RX1"}})";
}

std::string condition(const std::string& subject_json) {
    return R"({"resourceType":"Condition","code":{"text":"a condition"},"subject":)" + subject_json + "}";
}

std::string appointment(const std::string& patient_reference) {
    return R"({"resourceType":"Appointment","status":"booked","participant":[{"actor":{"reference":")" + patient_reference +
           R"("},"status":"accepted"}]})";
}

std::int64_t count(application_fixture& f, const std::string& query) {
    auto r = f.call("GET", query + (query.find('?') == std::string::npos ? "?" : "&") + "_total=accurate&_count=0");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return json_of(r)["total"].GetInt64();
}

struct bundle_fixture : application_fixture {
    bundle_fixture() {
        REQUIRE(call("PUT", std::string("/Patient/") + tom,
                     patient_json(tom, R"("id":"9000000009","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
        REQUIRE(call("PUT", "/Organization/RX1",
                     R"({"resourceType":"Organization","id":"RX1","identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RX1"}],"name":"Acute"})")
                    .status == 201);
    }
};

} // namespace

TEST_CASE("transaction of 1,000 entries: urn:uuid and conditional citizen references rewritten, all stored") {
    bundle_fixture f;
    const std::string new_citizen = "9000000025";
    std::vector<std::string> entries;
    entries.push_back(entry("POST", "Patient", patient_json(new_citizen), uuid(1)));
    // The citizen by conditional reference; the Encounter by its urn:uuid, also in narrative and contained.
    const std::string by_nhs = std::string("Patient?identifier=") + nhs_system + "|" + new_citizen;
    entries.push_back(entry(
        "POST", "Encounter",
        encounter(subject(by_nhs), R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\")" +
                                        uuid(1) + R"(\">the patient</a></div>"},)"),
        uuid(2)));
    for (int i = 3; i <= 1000; ++i)
        entries.push_back(entry("POST", "Observation",
                                observation(subject(i % 2 ? by_nhs : uuid(1)),
                                            R"("encounter":{"reference":")" + uuid(2) + R"("},)"),
                                uuid(i)));
    auto r = f.call("POST", "", bundle("transaction", entries));
    REQUIRE_MESSAGE(r.status == 200, r.body.substr(0, 2000));
    auto doc = json_of(r);
    CHECK(std::string(doc["type"].GetString()) == "transaction-response");
    REQUIRE(doc["entry"].Size() == 1000);
    CHECK(text_at(doc, "entry", 0, "response", "status") == "201 Created");
    std::string location = text_at(doc, "entry", 1, "response", "location");
    CHECK(location.starts_with(std::string(test_base_url) + "/Encounter/"));
    const std::string encounter_id = location.substr(std::string(test_base_url).size() + 11, 36);
    std::set<std::string> locations;
    for (const auto& e : doc["entry"].GetArray()) {
        CHECK(std::string(e["response"]["status"].GetString()) == "201 Created");
        CHECK(e["response"].HasMember("etag"));
        CHECK(e["response"].HasMember("lastModified"));
        locations.insert(e["response"]["location"].GetString());
    }
    CHECK(locations.size() == 1000);

    CHECK(count(f, "/Observation?encounter=Encounter/" + encounter_id) == 998);
    CHECK(count(f, std::string("/Observation?subject=Patient/") + new_citizen) == 998);
    auto stored = f.call("GET", "/Encounter/" + encounter_id);
    REQUIRE(stored.status == 200);
    CHECK(stored.body.find("urn:uuid") == std::string::npos);
    CHECK(stored.body.find(std::string("Patient/") + new_citizen) != std::string::npos);
    CHECK(stored.body.find(R"(href=\"Patient/)" + new_citizen) != std::string::npos);
}

TEST_CASE("transaction: one invalid entry stores nothing and the answer names it") {
    bundle_fixture f;
    const auto before = count(f, "/Observation");
    std::vector<std::string> entries;
    for (int i = 0; i < 5; ++i)
        entries.push_back(entry("POST", "Observation", observation(subject("Patient/9000000009")), uuid(i)));
    entries.push_back(entry("POST", "Observation",
                            R"({"resourceType":"Observation","status":"no-such-status","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"}})"));
    auto r = f.call("POST", "", bundle("transaction", entries));
    CHECK(r.status == 422);
    auto outcome = json_of(r);
    REQUIRE(outcome["issue"].Size() >= 1);
    CHECK(text_at(outcome, "issue", 0, "expression", 0).starts_with("Bundle.entry[5]"));
    CHECK(text_at(outcome, "issue", 0, "diagnostics").starts_with("entry 5 (POST Observation)"));
    CHECK(count(f, "/Observation") == before);
}

TEST_CASE("transaction: the same Bundle twice with ifNoneExist stores nothing twice") {
    bundle_fixture f;
    const std::string identified =
        observation(subject("Patient/9000000009"), R"("identifier":[{"system":"https://trust.example/obs","value":"o-1"}],)");
    const std::string visit = encounter(subject("Patient/9000000009"),
                                        R"("identifier":[{"system":"https://trust.example/enc","value":"v-1"}],)");
    const auto body = bundle(
        "transaction",
        {entry("POST", "Encounter", visit, uuid(1), R"("ifNoneExist":"identifier=https://trust.example/enc|v-1")"),
         entry("POST", "Observation",
               observation(subject("Patient/9000000009"),
                           R"("identifier":[{"system":"https://trust.example/obs","value":"o-1"}],"encounter":{"reference":")" +
                               uuid(1) + R"("},)"),
               uuid(2), R"("ifNoneExist":"identifier=https://trust.example/obs|o-1")")});
    auto first = f.call("POST", "", body);
    REQUIRE_MESSAGE(first.status == 200, first.body);
    auto again = f.call("POST", "", body);
    REQUIRE_MESSAGE(again.status == 200, again.body);
    auto doc = json_of(again);
    CHECK(text_at(doc, "entry", 0, "response", "status") == "200 OK");
    CHECK(text_at(doc, "entry", 1, "response", "status") == "200 OK");
    CHECK(count(f, "/Encounter?identifier=https://trust.example/enc%7Cv-1") == 1);
    CHECK(count(f, "/Observation?identifier=https://trust.example/obs%7Co-1") == 1);
    (void)identified;
}

TEST_CASE("transaction: a reference to nothing is 422 naming entry and element; a conditional reference to nothing 412") {
    bundle_fixture f;
    auto dangling = f.call("POST", "", bundle("transaction", {entry("POST", "Observation",
                                                                    observation(subject("Patient/9000000009"),
                                                                                R"("encounter":{"reference":"Encounter/nope"},)"))}));
    CHECK(dangling.status == 422);
    auto outcome = json_of(dangling);
    CHECK(text_at(outcome, "issue", 0, "expression", 0) == "Bundle.entry[0].resource.encounter.reference");

    auto unknown_uuid = f.call("POST", "", bundle("transaction", {entry("POST", "Observation",
                                                                        observation(subject("Patient/9000000009"),
                                                                                    R"("encounter":{"reference":")" + uuid(9) + R"("},)"))}));
    CHECK(unknown_uuid.status == 422);

    auto no_match = f.call("POST", "", bundle("transaction", {entry("POST", "Observation",
                                                                    observation(subject("Patient/9000000009"),
                                                                                R"("encounter":{"reference":"Encounter?identifier=x|none"},)"))}));
    CHECK(no_match.status == 412);
    // The same with its '?' escaped in the JSON: still a conditional reference, still resolved.
    auto escaped = f.call("POST", "", bundle("transaction", {entry("POST", "Observation",
                                                                   observation(subject("Patient/9000000009"),
                                                                               R"("encounter":{"reference":"Encounter\u003fidentifier=x|none"},)"))}));
    CHECK(escaped.status == 412);
    CHECK(count(f, "/Observation") == 0);
}

TEST_CASE("transaction: one entry the caller may not write fails it all, naming the entry; in a batch only that entry") {
    bundle_fixture f;
    const auto entries = std::vector<std::string>{
        entry("POST", "Appointment", appointment("Patient/9000000009"), uuid(1)),
        entry("POST", "Condition", condition(subject("Patient/9000000009")), uuid(2))};
    auto denied = f.call_as(gp_admin(), "POST", "", bundle("transaction", entries));
    CHECK(denied.status == 403);
    auto outcome = json_of(denied);
    CHECK(text_at(outcome, "issue", 0, "expression", 0).starts_with("Bundle.entry[1]"));
    CHECK(count(f, "/Appointment") == 0);

    auto batch = f.call_as(gp_admin(), "POST", "", bundle("batch", entries));
    REQUIRE_MESSAGE(batch.status == 200, batch.body);
    auto doc = json_of(batch);
    CHECK(std::string(doc["type"].GetString()) == "batch-response");
    CHECK(text_at(doc, "entry", 0, "response", "status") == "201 Created");
    CHECK(text_at(doc, "entry", 1, "response", "status") == "403 Forbidden");
    CHECK(at(doc, "entry", 1, "response", "outcome", "resourceType") == "OperationOutcome");
    CHECK(count(f, "/Appointment") == 1);
    CHECK(count(f, "/Condition") == 0);
}

TEST_CASE("transaction: DELETE, POST, PUT, PATCH, then GET, which sees the writes") {
    bundle_fixture f;
    auto made = f.call("POST", "/Observation", observation(subject("Patient/9000000009")));
    REQUIRE(made.status == 201);
    const std::string gone = json_of(made)["id"].GetString();
    auto kept = f.call("POST", "/Observation", observation(subject("Patient/9000000009")));
    const std::string patched = json_of(kept)["id"].GetString();
    const std::string patch =
        R"({"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"replace"},)"
        R"({"name":"path","valueString":"Observation.status"},{"name":"value","valueCode":"amended"}]}]})";
    auto r = f.call("POST", "",
                    bundle("transaction",
                           {entry("GET", "Observation?subject=Patient/9000000009&_total=accurate"),
                            entry("PATCH", "Observation/" + patched, patch),
                            entry("DELETE", "Observation/" + gone),
                            entry("POST", "Observation", observation(subject("Patient/9000000009")), uuid(1))}));
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto doc = json_of(r);
    CHECK(text_at(doc, "entry", 0, "response", "status") == "200 OK");
    CHECK(at(doc, "entry", 0, "resource", "total").GetInt() == 2); // after: one deleted, one created
    CHECK(text_at(doc, "entry", 1, "response", "status") == "200 OK");
    CHECK(text_at(doc, "entry", 1, "resource", "status") == "amended");
    CHECK(text_at(doc, "entry", 2, "response", "status") == "204 No Content");
    CHECK(text_at(doc, "entry", 3, "response", "status") == "201 Created");
    CHECK(f.call("GET", "/Observation/" + gone).status == 410);
}

TEST_CASE("transaction: ifMatch that does not hold fails it all with 412") {
    bundle_fixture f;
    auto r = f.call("POST", "",
                    bundle("transaction",
                           {entry("POST", "Observation", observation(subject("Patient/9000000009")), uuid(1)),
                            entry("PUT", "Patient/9000000009", patient_json(tom, R"("id":"9000000009")"), {},
                                  R"("ifMatch":"W/\"9\"")")}));
    CHECK(r.status == 412);
    CHECK(count(f, "/Observation") == 0);
}

TEST_CASE("batch: entries are independent, each with its own status; a Bundle over the entry limit is 413") {
    bundle_fixture f;
    auto r = f.call("POST", "",
                    bundle("batch", {entry("POST", "Observation", observation(subject("Patient/9000000009"))),
                                     entry("GET", "Patient/9000000009"), entry("GET", "Patient/9000000017"),
                                     entry("POST", "Observation", R"({"resourceType":"Observation"})")}));
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto doc = json_of(r);
    CHECK(text_at(doc, "entry", 0, "response", "status") == "201 Created");
    CHECK(text_at(doc, "entry", 1, "response", "status") == "200 OK");
    CHECK(text_at(doc, "entry", 2, "response", "status") == "404 Not Found");
    CHECK(text_at(doc, "entry", 3, "response", "status") == "422 Unprocessable Content");
    CHECK(count(f, "/Observation") == 1);

    std::vector<std::string> many(10001, entry("GET", "Patient/9000000009"));
    auto over = f.call("POST", "", bundle("batch", many));
    CHECK(over.status == 413);
}

TEST_CASE("transaction: each written entry has its audit record, naming the citizen") {
    bundle_fixture f;
    auto r = f.call("POST", "",
                    bundle("transaction", {entry("POST", "Observation", observation(subject("Patient/9000000009")), uuid(1)),
                                           entry("POST", "Encounter", encounter(subject("Patient/9000000009")), uuid(2))}));
    REQUIRE(r.status == 200);
    f.flush();
    auto trail = f.store->audit({tom, {}, {}, {}, 50, {}});
    REQUIRE(trail.ok());
    int creates = 0;
    for (const auto& record : trail->records)
        if (record.action == "create" && record.outcome == "success" &&
            (record.resource_type == "Observation" || record.resource_type == "Encounter"))
            ++creates;
    CHECK(creates == 2);
}

TEST_CASE("transaction: a JSON Patch entry as a Binary; two entries with one fullUrl are 400") {
    bundle_fixture f;
    auto made = f.call("POST", "/Observation", observation(subject("Patient/9000000009")));
    REQUIRE(made.status == 201);
    const std::string id = json_of(made)["id"].GetString();
    // [{"op":"replace","path":"/status","value":"amended"}]
    const std::string binary =
        R"({"resourceType":"Binary","contentType":"application/json-patch+json","data":"W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9zdGF0dXMiLCJ2YWx1ZSI6ImFtZW5kZWQifV0="})";
    auto r = f.call("POST", "", bundle("transaction", {entry("PATCH", "Observation/" + id, binary)}));
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto read = f.call("GET", "/Observation/" + id);
    CHECK(std::string(json_of(read)["status"].GetString()) == "amended");

    auto twice = f.call("POST", "", bundle("transaction",
                                           {entry("POST", "Observation", observation(subject("Patient/9000000009")), uuid(1)),
                                            entry("POST", "Observation", observation(subject("Patient/9000000009")), uuid(1))}));
    CHECK(twice.status == 400);
    CHECK(text_at(json_of(twice), "issue", 0, "expression", 0) == "Bundle.entry[1].fullUrl");
}

TEST_CASE("32 clients sending the same transaction at once: one Encounter, every item once per client, no deadlock") {
    bundle_fixture f;
    const std::string token = "Bearer " + token_for(system_identity());
    const std::string visit = encounter(subject("Patient/9000000009"),
                                        R"("identifier":[{"system":"https://trust.example/enc","value":"race"}],)");
    const auto body = bundle(
        "transaction",
        {entry("POST", "Encounter", visit, uuid(1), R"("ifNoneExist":"identifier=https://trust.example/enc|race")"),
         entry("POST", "Observation",
               observation(subject("Patient/9000000009"), R"("encounter":{"reference":")" + uuid(1) + R"("},)"), uuid(2))});
    constexpr int clients = 32;
    std::vector<caregate::http::response> answers(clients);
    std::latch start(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i)
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            answers[static_cast<std::size_t>(i)] = f.call("POST", "", body, {{"Authorization", token}});
        });
    for (auto& t : threads)
        t.join();
    int created = 0;
    for (const auto& answer : answers) {
        REQUIRE_MESSAGE(answer.status == 200, answer.body);
        created += text_at(json_of(answer), "entry", 0, "response", "status") == "201 Created";
    }
    CHECK(created == 1);
    CHECK(count(f, "/Encounter?identifier=https://trust.example/enc%7Crace") == 1);
    auto encounters = f.call("GET", "/Encounter?identifier=https://trust.example/enc%7Crace");
    const std::string id = text_at(json_of(encounters), "entry", 0, "resource", "id");
    CHECK(count(f, "/Observation?encounter=Encounter/" + id) == clients); // each client's item points at the one
}

TEST_CASE("transaction: a reference alone never opens another citizen's record by break-glass") {
    bundle_fixture f;
    const std::string other = "9000000017";
    REQUIRE(f.call("PUT", "/Patient/" + other, patient_json(other, R"("id":"9000000017")")).status == 201);
    auto visit = f.call("POST", "/Encounter", encounter(subject("Patient/" + other)));
    REQUIRE(visit.status == 201);
    identity emergency = acute_clinician();
    emergency.purpose = "ETREAT";
    emergency.reason = "unconscious in A&E";
    // Tom's record is opened by break-glass for the entry about him; the reference to the other
    // citizen's Encounter must not open theirs, so it is as if it did not exist.
    auto r = f.call_as(emergency, "POST", "",
                       bundle("transaction", {entry("POST", "Observation",
                                                    observation(subject("Patient/9000000009"),
                                                                R"("encounter":{"reference":"Encounter/)" +
                                                                    id_of(visit) + R"("},)"))}));
    CHECK(r.status == 422);
    f.flush();
    caregate::storage::store::audit_query query;
    query.nhs_number = other;
    query.purpose = "ETREAT";
    auto trail = f.store->audit(query);
    REQUIRE(trail.ok());
    for (const auto& record : trail->records)
        CHECK(record.action != "break-glass");
}
