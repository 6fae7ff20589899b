// The FHIR interactions through the handle() seam with a real SQLite store: each test names the
// clause of https://hl7.org/fhir/R4/http.html (or of the README) it proves.
#include "application_fixture.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <set>

using caregate::testing::application_fixture;
using caregate::testing::observation_json;
using caregate::testing::patient_json;

using caregate::testing::json_of;
using caregate::testing::at;
using caregate::testing::text_at;

namespace {

/// The first OperationOutcome issue's code and expression.
std::pair<std::string, std::string> first_issue(const caregate::http::response& r) {
    auto doc = json_of(r);
    REQUIRE(std::string(doc["resourceType"].GetString()) == "OperationOutcome");
    const auto& issue = at(doc, "issue", 0);
    std::string expression = issue.HasMember("expression") ? text_at(issue, "expression", 0) : "";
    return {issue["code"].GetString(), expression};
}

std::size_t history_size(application_fixture& f, const std::string& path) {
    auto r = f.call("GET", path + "/_history");
    REQUIRE(r.status == 200);
    auto doc = json_of(r);
    return doc.HasMember("entry") ? doc["entry"].Size() : 0;
}

} // namespace

TEST_CASE("create: a Patient's id is its NHS number; 201 with Location, ETag and Last-Modified") {
    application_fixture f;
    auto r = f.call("POST", "/Patient", patient_json("9000000009"));
    CHECK(r.status == 201);
    CHECK(r.header("Location") == "https://localhost:8443/fhir/Patient/9000000009/_history/1");
    CHECK(r.header("ETag") == "W/\"1\"");
    CHECK(r.header("Last-Modified").ends_with(" GMT"));
    auto doc = json_of(r);
    CHECK(std::string(doc["id"].GetString()) == "9000000009");
    CHECK(std::string(doc["meta"]["versionId"].GetString()) == "1");
    CHECK(doc["meta"].HasMember("lastUpdated"));
}

TEST_CASE("create: a second Patient with the same NHS number is a 409 that says where it is") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_json("9000000009")).status == 201);
    auto r = f.call("POST", "/Patient", patient_json("9000000009"));
    CHECK(r.status == 409);
    CHECK(r.body.find("Patient/9000000009") != std::string::npos);
    CHECK(history_size(f, "/Patient/9000000009") == 1);
}

TEST_CASE("create: an invalid NHS number is refused naming Patient.identifier, and nothing is stored") {
    application_fixture f;
    auto r = f.call("POST", "/Patient", patient_json("9000000000"));
    CHECK(r.status == 422);
    CHECK(first_issue(r).second.starts_with("Patient.identifier"));
    CHECK(history_size(f, "/Patient") == 0);
}

TEST_CASE("create: other types get a server-assigned id") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_json("9000000009")).status == 201);
    auto r = f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})"));
    REQUIRE(r.status == 201);
    auto doc = json_of(r);
    const std::string id = doc["id"].GetString();
    CHECK(id.size() == 36);
    CHECK(r.header("Location") == "https://localhost:8443/fhir/Observation/" + id + "/_history/1");
    CHECK(r.body.find("72.10") != std::string::npos); // decimals kept exactly as written
}

TEST_CASE("read, update (v2), vread v1, history with 2 entries, delete then 410") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_json("9000000009")).status == 201);
    auto v1 = f.call("GET", "/Patient/9000000009");
    CHECK(v1.status == 200);
    CHECK(v1.header("ETag") == "W/\"1\"");

    auto v2 = f.call("PUT", "/Patient/9000000009", patient_json("9000000009", R"("id":"9000000009","gender":"female")"));
    CHECK(v2.status == 200);
    CHECK(v2.header("ETag") == "W/\"2\"");
    CHECK(v2.header("Location") == "https://localhost:8443/fhir/Patient/9000000009/_history/2");

    auto old = f.call("GET", "/Patient/9000000009/_history/1");
    CHECK(old.status == 200);
    CHECK(old.body == v1.body); // the stored bytes, exactly
    CHECK(history_size(f, "/Patient/9000000009") == 2);

    auto gone = f.call("DELETE", "/Patient/9000000009");
    CHECK(gone.status == 204);
    CHECK(gone.header("ETag") == "W/\"3\"");
    auto after = f.call("GET", "/Patient/9000000009");
    CHECK(after.status == 410);
    CHECK(first_issue(after).first == "deleted");
    CHECK(f.call("GET", "/Patient/9000000009/_history/2").status == 200);
    CHECK(f.call("GET", "/Patient/9000000009/_history/3").status == 410);
    CHECK(history_size(f, "/Patient/9000000009") == 3);
}

TEST_CASE("update: unchanged content makes no new version and answers 200") {
    application_fixture f;
    const auto body = patient_json("9000000009", R"("id":"9000000009")");
    CHECK(f.call("PUT", "/Patient/9000000009", body).status == 201); // update as create
    auto again = f.call("PUT", "/Patient/9000000009", body);
    CHECK(again.status == 200);
    CHECK(again.header("ETag") == "W/\"1\"");
    CHECK(history_size(f, "/Patient/9000000009") == 1);
}

TEST_CASE("update: the id in the body must match the URL (400); a Patient's must be its NHS number (422)") {
    application_fixture f;
    CHECK(f.call("PUT", "/Patient/9000000009", patient_json("9000000009")).status == 400); // no id
    CHECK(f.call("PUT", "/Patient/9000000009", patient_json("9000000009", R"("id":"9000000017")")).status == 400);
    auto r = f.call("PUT", "/Patient/9000000017", patient_json("9000000009", R"("id":"9000000017")"));
    CHECK(r.status == 422);
    CHECK(first_issue(r).second == "Patient.identifier");
    CHECK(history_size(f, "/Patient") == 0);
}

TEST_CASE("concurrency: If-Match with a stale version is 412 and changes nothing") {
    application_fixture f;
    const auto body = patient_json("9000000009", R"("id":"9000000009")");
    REQUIRE(f.call("PUT", "/Patient/9000000009", body).status == 201);
    REQUIRE(f.call("PUT", "/Patient/9000000009", patient_json("9000000009", R"("id":"9000000009","gender":"male")")).status == 200);
    auto stale = f.call("PUT", "/Patient/9000000009", body, {{"If-Match", "W/\"1\""}});
    CHECK(stale.status == 412);
    CHECK(f.call("GET", "/Patient/9000000009").header("ETag") == "W/\"2\"");
    auto fresh = f.call("PUT", "/Patient/9000000009", body, {{"If-Match", "W/\"2\""}});
    CHECK(fresh.status == 200);
    CHECK(fresh.header("ETag") == "W/\"3\"");
    CHECK(f.call("PUT", "/Patient/9000000009", body, {{"If-Match", "yesterday"}}).status == 400);
}

TEST_CASE("conditional read: If-None-Match and If-Modified-Since answer 304") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_json("9000000009")).status == 201);
    auto r = f.call("GET", "/Patient/9000000009", {}, {{"If-None-Match", "W/\"1\""}});
    CHECK(r.status == 304);
    CHECK(r.body.empty());
    CHECK(f.call("GET", "/Patient/9000000009", {}, {{"If-None-Match", "W/\"7\""}}).status == 200);
    CHECK(f.call("GET", "/Patient/9000000009", {}, {{"If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"}}).status == 304);
    CHECK(f.call("GET", "/Patient/9000000009", {}, {{"If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}}).status == 200);
}

TEST_CASE("Prefer: return=minimal gives no body, return=OperationOutcome an OperationOutcome") {
    application_fixture f;
    auto minimal = f.call("POST", "/Patient", patient_json("9000000009"), {{"Prefer", "return=minimal"}});
    CHECK(minimal.status == 201);
    CHECK(minimal.body.empty());
    CHECK_FALSE(minimal.header("Location").empty());
    auto outcome = f.call("POST", "/Patient", patient_json("9000000017"), {{"Prefer", "return=OperationOutcome"}});
    CHECK(outcome.status == 201);
    CHECK(first_issue(outcome).first == "informational");
}

TEST_CASE("citizen links: a reference to an unknown NHS number is 422 naming the element") {
    application_fixture f;
    auto r = f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000017"})"));
    CHECK(r.status == 422);
    CHECK(first_issue(r).second == "Observation.subject");
    CHECK(history_size(f, "/Observation") == 0);
}

TEST_CASE("citizen links: a logical reference by NHS number is resolved and stored as Patient/{nhs}") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_json("9000000017")).status == 201);
    auto r = f.call("POST", "/Observation",
                    observation_json(R"({"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000017"}})"));
    REQUIRE(r.status == 201);
    auto doc = json_of(r);
    CHECK(std::string(doc["subject"]["reference"].GetString()) == "Patient/9000000017");
    CHECK(std::string(doc["subject"]["identifier"]["value"].GetString()) == "9000000017");
}

TEST_CASE("errors: malformed JSON 400, unknown element and bad date 422, each an OperationOutcome") {
    application_fixture f;
    auto broken = f.call("POST", "/Patient", R"({"resourceType":"Patient",)");
    CHECK(broken.status == 400);
    CHECK(first_issue(broken).first == "structure");
    auto unknown = f.call("POST", "/Patient", patient_json("9000000009", R"("colour":"blue")"));
    CHECK(unknown.status == 422);
    auto bad_date = f.call("POST", "/Patient",
                           R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"birthDate":"2019-13-45"})");
    CHECK(bad_date.status == 422);
    CHECK(first_issue(bad_date).second == "Patient.birthDate");
    CHECK(f.call("POST", "/Patient", R"({"resourceType":"Observation","status":"final"})").status == 422);
    CHECK(history_size(f, "/Patient") == 0);
}

TEST_CASE("formats: JSON and XML are read and served; Turtle gets 406, other bodies 415") {
    application_fixture f;
    CHECK(f.call("GET", "/metadata?_format=json").status == 200);
    CHECK(f.call("GET", "/metadata", {}, {{"Accept", "application/fhir+json"}}).status == 200);
    auto xml = f.call("GET", "/metadata", {}, {{"Accept", "application/fhir+xml"}});
    CHECK(xml.status == 200);
    CHECK(xml.header("Content-Type").starts_with("application/fhir+xml"));
    CHECK(xml.body.find("<CapabilityStatement xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
    CHECK(f.call("GET", "/metadata?_format=xml").header("Content-Type").starts_with("application/fhir+xml"));
    CHECK(f.call("GET", "/metadata?_format=turtle").status == 406);
    CHECK(f.call("GET", "/metadata", {}, {{"Accept", "text/turtle"}}).status == 406);
    // The most wanted of the two, the first listed on a tie.
    auto accept_type = [&](const std::string& accept) {
        return std::string(f.call("GET", "/metadata", {}, {{"Accept", accept}}).header("Content-Type"));
    };
    CHECK(accept_type("application/fhir+xml;q=1.0, application/fhir+json;q=1.0").starts_with("application/fhir+xml"));
    CHECK(accept_type("application/fhir+xml;q=0.5, application/fhir+json").starts_with("application/fhir+json"));
    CHECK(accept_type("text/html, application/xml;q=0.9, */*;q=0.8").starts_with("application/fhir+xml"));
    CHECK(accept_type("*/*").starts_with("application/fhir+json"));
    auto text = f.call("POST", "/Patient", "a patient", {{"Content-Type", "text/plain"}});
    CHECK(text.status == 415);
    CHECK(first_issue(text).first == "not-supported");
    // An XML body that is not a resource the definitions know: 400, and nothing written.
    auto empty = f.call("POST", "/Patient", "<Patient xmlns=\"http://other.example\"/>",
                        {{"Content-Type", "application/fhir+xml"}});
    CHECK(empty.status == 400);
    CHECK(history_size(f, "/Patient") == 0);
}

TEST_CASE("routing: unknown type 404, unknown id 404, wrong method 405, unknown parameter 400") {
    application_fixture f;
    CHECK(f.call("GET", "/Claim/1").status == 404);
    CHECK(f.call("GET", "/Patient/9000000009").status == 404);
    auto wrong = f.call("DELETE", "/metadata");
    CHECK(wrong.status == 405);
    CHECK(wrong.header("Allow") == "GET");
    CHECK(f.call("TRACE", "/Patient/9000000009").header("Allow") == "GET, HEAD, PUT, DELETE, PATCH");
    CHECK(f.call("POST", "/Patient/9000000009", patient_json("9000000009")).status == 405);
    CHECK(f.call("POST", "/AuditEvent", R"({"resourceType":"AuditEvent"})").status == 405);
    auto unknown = f.call("GET", "/Patient/9000000009?_elements=id");
    CHECK(unknown.status == 400);
    CHECK(unknown.body.find("_elements") != std::string::npos);
    CHECK(f.call("GET", "/other/path").status == 404);
}

TEST_CASE("request ids: X-Request-ID is echoed, or made when absent; one that is not a UUID is 400") {
    application_fixture f;
    const std::string id = "6b7d2f3e-0c4a-4e8b-9f1d-2a3b4c5d6e7f";
    auto r = f.call("GET", "/metadata", {}, {{"X-Request-ID", id}, {"X-Correlation-ID", "abc-123"}});
    CHECK(r.header("X-Request-ID") == id);
    CHECK(r.header("X-Correlation-ID") == "abc-123");
    auto made = f.call("GET", "/metadata");
    CHECK(caregate::interactions::is_uuid(made.header("X-Request-ID")));
    CHECK(made.header("Date").ends_with(" GMT"));
    auto bad = f.call("GET", "/metadata", {}, {{"X-Request-ID", "not-a-uuid"}});
    CHECK(bad.status == 400);
    CHECK(caregate::interactions::is_uuid(bad.header("X-Request-ID")));
}

TEST_CASE("random_uuid: version 4 UUIDs in the 8-4-4-4-12 form, none repeated across the thread's draws") {
    // 1,000 ids cross the per-thread pool's refills (256 ids a draw).
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const std::string id = caregate::interactions::random_uuid();
        REQUIRE(caregate::interactions::is_uuid(id));
        CHECK(id[14] == '4');                                       // version 4
        CHECK(std::string_view("89ab").find(id[19]) != std::string_view::npos); // RFC 4122 variant
        CHECK(seen.insert(id).second);
    }
}

TEST_CASE("metadata: the CapabilityStatement lists exactly what the router serves") {
    application_fixture f;
    auto r = f.call("GET", "/metadata");
    REQUIRE(r.status == 200);
    auto doc = json_of(r);
    CHECK(std::string(doc["fhirVersion"].GetString()) == "4.0.1");
    CHECK(std::string(doc["software"]["name"].GetString()) == "caregate");
    bool saw_patient = false;
    for (const auto& resource : at(doc, "rest", 0, "resource").GetArray()) {
        const std::string type = resource["type"].GetString();
        std::vector<std::string> codes;
        for (const auto& i : resource["interaction"].GetArray())
            codes.push_back(i["code"].GetString());
        const bool claims_create = std::find(codes.begin(), codes.end(), "create") != codes.end();
        CHECK(claims_create == (type != "AuditEvent"));
        saw_patient = saw_patient || type == "Patient";
        // What is claimed is routed: a read of a missing id is a 404 OperationOutcome, never a 405
        // (the audit trail as the information governance role, who may read it).
        const auto reader = type == "AuditEvent" ? caregate::testing::ig_officer() : caregate::testing::system_identity();
        CHECK(f.call_as(reader, "GET", "/" + type + "/no-such-id").status == 404);
    }
    CHECK(saw_patient);
}

TEST_CASE("history: pages follow next links, each entry once; _since filters; system and type levels") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_json("9000000009")).status == 201);
    for (int i = 0; i < 6; ++i)
        REQUIRE(f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})")).status == 201);
    std::string next = "/Observation/_history?_count=4";
    std::set<std::string> seen;
    int pages = 0;
    while (!next.empty()) {
        auto r = f.call("GET", next);
        REQUIRE(r.status == 200);
        auto doc = json_of(r);
        CHECK(std::string(doc["type"].GetString()) == "history");
        for (const auto& e : doc["entry"].GetArray())
            CHECK(seen.insert(e["fullUrl"].GetString()).second);
        next.clear();
        for (const auto& link : doc["link"].GetArray())
            if (std::string(link["relation"].GetString()) == "next")
                next = std::string(link["url"].GetString()).substr(std::string("https://localhost:8443/fhir").size());
        ++pages;
    }
    CHECK(seen.size() == 6);
    CHECK(pages == 2);
    CHECK(history_size(f, "") == 7);
    auto future = f.call("GET", "/_history?_since=2100-01-01T00:00:00Z");
    CHECK(future.status == 200);
    CHECK_FALSE(json_of(future).HasMember("entry")); // no empty arrays in FHIR JSON
    CHECK(f.call("GET", "/_history?_since=yesterday").status == 400);
    CHECK(f.call("GET", "/Patient/9000000025/_history").status == 404);
}

TEST_CASE("durability: data survives a restart of the store") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_json("9000000009")).status == 201);
    auto before = f.call("GET", "/Patient/9000000009");
    f.restart();
    auto after = f.call("GET", "/Patient/9000000009");
    CHECK(after.status == 200);
    CHECK(after.body == before.body);
}
