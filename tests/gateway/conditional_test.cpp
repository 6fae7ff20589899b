// Conditional create, update and delete (https://hl7.org/fhir/R4/http.html#ccreate, #cond-update,
// #3.1.0.7.1) and the deletion of a citizen's Patient, through the handle() seam with a real store.
// The criteria are run by the writer inside the write transaction, so concurrent identical requests
// make exactly one resource: proven here with 32 threads on every run.
#include "application_fixture.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <thread>

using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009"; // registered with the GP practice A81001
constexpr const char* obs_system = "https://example.org/observation-id";

/// An Observation of Tom's carrying identifier obs_system|value.
std::string identified_observation(const std::string& value, const std::string& status = "final",
                                   const std::string& extra = {}) {
    return R"({"resourceType":"Observation",)" + extra + R"("identifier":[{"system":")" + obs_system +
           R"(","value":")" + value + R"("}],"status":")" + status +
           R"(","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/9000000009"},"valueQuantity":{"value":72,"unit":"/min"}})";
}

/// The criteria selecting that Observation, as a header value, and as a request target's query
/// (`|` escaped, as URL parsers require).
std::string criteria(const std::string& value) { return std::string("identifier=") + obs_system + "|" + value; }
std::string query(const std::string& value) { return std::string("identifier=") + obs_system + "%7C" + value; }

/// How many Observations with that identifier the system caller sees.
std::int64_t count(application_fixture& f, const std::string& value) {
    auto r = f.call("GET", "/Observation?" + query(value) + "&_total=accurate");
    REQUIRE(r.status == 200);
    return json_of(r)["total"].GetInt64();
}

std::string first_diagnostics(const caregate::http::response& r) {
    auto doc = json_of(r);
    REQUIRE(std::string(doc["resourceType"].GetString()) == "OperationOutcome");
    std::string all;
    for (const auto& issue : doc["issue"].GetArray())
        if (issue.HasMember("diagnostics"))
            all += std::string(issue["diagnostics"].GetString()) + "\n";
    return all;
}

/// Tom registered with the GP, made by the ICS's integration system.
struct tom_fixture : application_fixture {
    tom_fixture() {
        REQUIRE(call("PUT", std::string("/Patient/") + tom,
                     patient_json(tom, R"("id":"9000000009","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
    }
    /// Serves with another REST configuration over the same store.
    void configure(caregate::interactions::rest_config config) {
        config.base_url = test_base_url;
        app = std::make_unique<caregate::rest::application>(*store, *guard, config);
    }
};

/// `n` requests sent at once, each on its own thread, all released together; their statuses.
template <class Send>
std::vector<unsigned> at_once(int n, Send send) {
    std::vector<unsigned> statuses(static_cast<std::size_t>(n));
    std::latch start(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
            start.arrive_and_wait();
            statuses[static_cast<std::size_t>(i)] = send();
        });
    for (auto& t : threads)
        t.join();
    return statuses;
}

} // namespace

TEST_CASE("conditional create: no match 201; the same again 200 with the match, no new version; two matches 412") {
    tom_fixture f;
    auto made = f.call("POST", "/Observation", identified_observation("a1"), {{"If-None-Exist", criteria("a1")}});
    REQUIRE_MESSAGE(made.status == 201, made.body);
    const std::string id = id_of(made);

    auto again = f.call("POST", "/Observation", identified_observation("a1", "amended"), {{"If-None-Exist", criteria("a1")}});
    CHECK(again.status == 200);
    CHECK(id_of(again) == id);
    CHECK(json_of(again)["status"].GetString() == std::string("final")); // the match as it is, not the body
    CHECK(again.header("ETag") == "W/\"1\"");
    CHECK(again.header("Location") == std::string(test_base_url) + "/Observation/" + id + "/_history/1");
    CHECK(count(f, "a1") == 1);
    CHECK(f.call("GET", "/Observation/" + id + "/_history/2").status == 404);

    // Also accepted as "?criteria" and "Observation?criteria", and percent-encoded.
    CHECK(f.call("POST", "/Observation", identified_observation("a1"), {{"If-None-Exist", "?" + criteria("a1")}}).status == 200);
    CHECK(f.call("POST", "/Observation", identified_observation("a1"), {{"If-None-Exist", "Observation?" + query("a1")}})
              .status == 200);

    REQUIRE(f.call("POST", "/Observation", identified_observation("b2")).status == 201);
    REQUIRE(f.call("POST", "/Observation", identified_observation("b2")).status == 201);
    auto several = f.call("POST", "/Observation", identified_observation("b2"), {{"If-None-Exist", criteria("b2")}});
    CHECK(several.status == 412);
    CHECK(count(f, "b2") == 2);
}

TEST_CASE("conditional create: criteria that are empty, only result parameters, unknown or for another type are 400") {
    tom_fixture f;
    for (const char* bad : {"_count=1", "_sort=date", "colour=blue", "identifier=x&_include=Observation:subject",
                            "Patient?identifier=x", "identifier=%zz"}) {
        CAPTURE(bad);
        auto r = f.call("POST", "/Observation", identified_observation("c3"), {{"If-None-Exist", bad}});
        CHECK(r.status == 400);
        CHECK(json_of(r)["resourceType"].GetString() == std::string("OperationOutcome"));
    }
    CHECK(count(f, "c3") == 0);
}

TEST_CASE("conditional create: a match the caller may not see does not count, and nothing of it is revealed") {
    tom_fixture f;
    // Very restricted (V): only the GP practice that wrote it sees it; the integration system does not.
    const std::string hidden_body = identified_observation(
        "h1", "final", R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"V"}]},)");
    auto hidden = f.call_as(gp_clinician(), "POST", "/Observation", hidden_body);
    REQUIRE(hidden.status == 201);
    const std::string hidden_id = id_of(hidden);
    REQUIRE(f.call("GET", "/Observation/" + hidden_id).status == 404);

    // The system's conditional create makes a second resource (a duplicate of what it cannot see)
    // rather than reveal the hidden one with a 200 or a 412.
    auto made = f.call("POST", "/Observation", identified_observation("h1"), {{"If-None-Exist", criteria("h1")}});
    CHECK(made.status == 201);
    CHECK(id_of(made) != hidden_id);
    CHECK(made.body.find(hidden_id) == std::string::npos);
    CHECK(made.header("Location").find(hidden_id) == std::string::npos);
    CHECK(count(f, "h1") == 1);
    auto again = f.call("POST", "/Observation", identified_observation("h1"), {{"If-None-Exist", criteria("h1")}});
    CHECK(again.status == 200);
    CHECK(id_of(again) == id_of(made));
    // The GP, who sees both, is told there are several.
    CHECK(f.call_as(gp_clinician(), "POST", "/Observation", identified_observation("h1"), {{"If-None-Exist", criteria("h1")}})
              .status == 412);
}

TEST_CASE("conditional create, 32 clients at once: exactly one resource, one 201 and 31 200s") {
    tom_fixture f;
    const std::string token = "Bearer " + token_for(system_identity());
    const std::string body = identified_observation("race-create");
    auto statuses = at_once(32, [&] {
        return f.call("POST", "/Observation", body, {{"Authorization", token}, {"If-None-Exist", criteria("race-create")}})
            .status;
    });
    CHECK(std::count(statuses.begin(), statuses.end(), 201u) == 1);
    CHECK(std::count(statuses.begin(), statuses.end(), 200u) == 31);
    CHECK(count(f, "race-create") == 1);
}

TEST_CASE("conditional update, 32 clients at once: exactly one resource, one 201 and 31 200s") {
    tom_fixture f;
    const std::string token = "Bearer " + token_for(system_identity());
    const std::string body = identified_observation("race-update");
    auto statuses = at_once(32, [&] {
        return f.call("PUT", "/Observation?" + query("race-update"), body, {{"Authorization", token}}).status;
    });
    CHECK(std::count(statuses.begin(), statuses.end(), 201u) == 1);
    CHECK(std::count(statuses.begin(), statuses.end(), 200u) == 31);
    CHECK(count(f, "race-update") == 1);
}

TEST_CASE("conditional update: no match creates (new id, or the body's); one match is updated; several 412") {
    tom_fixture f;
    auto made = f.call("PUT", "/Observation?" + query("u1"), identified_observation("u1"));
    REQUIRE_MESSAGE(made.status == 201, made.body);
    const std::string id = id_of(made);
    CHECK(id.size() == 36); // a server-assigned UUID

    auto changed = f.call("PUT", "/Observation?" + query("u1"), identified_observation("u1", "amended"));
    CHECK(changed.status == 200);
    CHECK(id_of(changed) == id);
    CHECK(changed.header("ETag") == "W/\"2\"");
    CHECK(changed.header("Location") == std::string(test_base_url) + "/Observation/" + id + "/_history/2");

    // With the match's id in the body: fine. With another id: 400, and nothing changes.
    const std::string with_id = R"("id":")" + id + R"(",)";
    CHECK(f.call("PUT", "/Observation?" + query("u1"), identified_observation("u1", "final", with_id)).status == 200);
    auto wrong = f.call("PUT", "/Observation?" + query("u1"), identified_observation("u1", "amended", R"("id":"other-id",)"));
    CHECK(wrong.status == 400);
    CHECK(f.call("GET", "/Observation/" + id).header("ETag") == "W/\"3\"");
    CHECK(f.call("GET", "/Observation/other-id").status == 404);

    // No match, with an id in the body: created with that id.
    auto named = f.call("PUT", "/Observation?" + query("u2"), identified_observation("u2", "final", R"("id":"chosen-id",)"));
    CHECK(named.status == 201);
    CHECK(named.header("Location") == std::string(test_base_url) + "/Observation/chosen-id/_history/1");

    REQUIRE(f.call("POST", "/Observation", identified_observation("u3")).status == 201);
    REQUIRE(f.call("POST", "/Observation", identified_observation("u3")).status == 201);
    CHECK(f.call("PUT", "/Observation?" + query("u3"), identified_observation("u3", "amended")).status == 412);

    // Criteria are required, and must be criteria.
    CHECK(f.call("PUT", "/Observation", identified_observation("u4")).status == 400);
    CHECK(f.call("PUT", "/Observation?_count=1", identified_observation("u4")).status == 400);
    CHECK(f.call("PUT", "/Observation?colour=blue", identified_observation("u4")).status == 400);
    CHECK(count(f, "u4") == 0);
}

TEST_CASE("conditional update of a Patient: the id is the NHS number, matched or created") {
    application_fixture f;
    const std::string nhs_query = "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9000000017";
    auto made = f.call("PUT", nhs_query, patient_json("9000000017"));
    CHECK(made.status == 201);
    CHECK(made.header("Location") == std::string(test_base_url) + "/Patient/9000000017/_history/1");
    auto changed = f.call("PUT", nhs_query, patient_json("9000000017", R"("gender":"female")"));
    CHECK(changed.status == 200);
    CHECK(changed.header("ETag") == "W/\"2\"");
    // A body for another citizen than the match: refused, nothing changes.
    CHECK(f.call("PUT", nhs_query, patient_json("9000000025")).status >= 400);
    CHECK(f.call("GET", "/Patient/9000000017").header("ETag") == "W/\"2\"");
    CHECK(f.call("GET", "/Patient/9000000025").status == 404);
}

TEST_CASE("conditional delete: no match 204; one match deleted; several 412 and nothing deleted") {
    tom_fixture f;
    auto none = f.call("DELETE", "/Observation?" + query("d0"));
    CHECK(none.status == 204);
    auto said = f.call("DELETE", "/Observation?" + query("d0"), {}, {{"Prefer", "return=OperationOutcome"}});
    CHECK(said.status == 200);
    CHECK(first_diagnostics(said).find("nothing to delete") != std::string::npos);

    const std::string id = id_of(f.call("POST", "/Observation", identified_observation("d1")));
    auto one = f.call("DELETE", "/Observation?" + query("d1"));
    CHECK(one.status == 204);
    CHECK(one.header("ETag") == "W/\"2\"");
    CHECK(f.call("GET", "/Observation/" + id).status == 410);
    CHECK(count(f, "d1") == 0);

    REQUIRE(f.call("POST", "/Observation", identified_observation("d2")).status == 201);
    REQUIRE(f.call("POST", "/Observation", identified_observation("d2")).status == 201);
    CHECK(f.call("DELETE", "/Observation?" + query("d2")).status == 412);
    CHECK(count(f, "d2") == 2);

    // Criteria are required: a DELETE of the whole type is never read as "everything".
    CHECK(f.call("DELETE", "/Observation").status == 400);
    CHECK(f.call("DELETE", "/Observation?_count=1").status == 400);
    CHECK(f.call("DELETE", "/Observation?code=8867-4&_count=1").status == 400);
    CHECK(count(f, "d2") == 2);
}

TEST_CASE("conditional delete of several matches, when configured: every match is deleted") {
    tom_fixture f;
    caregate::interactions::rest_config config;
    config.conditional_delete_multiple = true;
    f.configure(config);
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i)
        ids.push_back(id_of(f.call("POST", "/Observation", identified_observation("m1"))));
    auto r = f.call("DELETE", "/Observation?" + query("m1"), {}, {{"Prefer", "return=OperationOutcome"}});
    CHECK(r.status == 200);
    CHECK(first_diagnostics(r).find("deleted 3") != std::string::npos);
    CHECK(count(f, "m1") == 0);
    for (const auto& id : ids)
        CHECK(f.call("GET", "/Observation/" + id).status == 410);
}

TEST_CASE("conditional delete: a match of another organisation is not the caller's to delete (403)") {
    tom_fixture f;
    const std::string id = id_of(f.call_as(gp_clinician(), "POST", "/Observation", identified_observation("o1")));
    REQUIRE(f.call_as(acute_clinician(), "POST", "/Encounter",
                      R"({"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/9000000009"},"serviceProvider":{"reference":"Organization/RX1"}})")
                .status == 201);
    CHECK(f.call_as(acute_clinician(), "DELETE", "/Observation?" + query("o1")).status == 403);
    CHECK(f.call("GET", "/Observation/" + id).header("ETag") == "W/\"1\"");
}

TEST_CASE("metadata: conditional create, update and delete, and patch, are declared as served") {
    tom_fixture f;
    auto statement = [&] {
        auto doc = json_of(f.call("GET", "/metadata"));
        for (auto& resource : at(doc, "rest", 0, "resource").GetArray())
            if (resource["type"].GetString() == std::string("Observation")) {
                std::vector<std::string> codes;
                for (const auto& i : resource["interaction"].GetArray())
                    codes.push_back(i["code"].GetString());
                CHECK(std::find(codes.begin(), codes.end(), "patch") != codes.end());
                CHECK(resource["conditionalCreate"].GetBool());
                CHECK(resource["conditionalUpdate"].GetBool());
                return std::string(resource["conditionalDelete"].GetString());
            }
        FAIL("no Observation in the CapabilityStatement");
        return std::string();
    };
    CHECK(statement() == "single");
    caregate::interactions::rest_config config;
    config.conditional_delete_multiple = true;
    f.configure(config);
    CHECK(statement() == "multiple");
    auto wrong = f.call("POST", "/Observation/some-id", identified_observation("x"));
    CHECK(wrong.status == 405);
    CHECK(wrong.header("Allow") == "GET, HEAD, PUT, DELETE, PATCH");
    auto on_type = f.call("HEAD", "/Observation");
    CHECK(on_type.status == 405);
    CHECK(on_type.header("Allow") == "GET, POST, PUT, DELETE, PATCH");
}

TEST_CASE("Patient delete: refused (409) while the record holds items, saying what to do; erased with _cascade=delete") {
    tom_fixture f;
    const std::string obs = id_of(f.call_as(gp_clinician(), "POST", "/Observation", identified_observation("e1")));
    const std::string other = id_of(f.call("POST", "/Observation", identified_observation("e2")));

    auto refused = f.call("DELETE", std::string("/Patient/") + tom);
    CHECK(refused.status == 409);
    CHECK(first_diagnostics(refused).find("_cascade=delete") != std::string::npos);
    CHECK(f.call("GET", std::string("/Patient/") + tom).status == 200);

    // Erasure is the integration system's alone (the policy's erase_record), and only when asked for.
    auto gp = f.call_as(gp_clinician(), "DELETE", std::string("/Patient/") + tom + "?_cascade=delete");
    CHECK(gp.status == 403);
    f.flush(); // the denial's audit record
    CHECK(f.call("DELETE", "/Observation/" + obs + "?_cascade=delete").status == 400); // a Patient's only
    CHECK(f.call("DELETE", std::string("/Patient/") + tom + "?_cascade=everything").status == 400);
    CHECK(f.call("GET", "/Observation/" + obs).status == 200);

    auto erased = f.call("DELETE", std::string("/Patient/") + tom + "?_cascade=delete", {},
                         {{"Prefer", "return=OperationOutcome"}});
    CHECK(erased.status == 200);
    CHECK(first_diagnostics(erased).find("erased") != std::string::npos);
    // An erasure is final: nothing is left to say it existed (restricted_items_test.cpp).
    CHECK(f.call("GET", std::string("/Patient/") + tom).status == 404);
    CHECK(f.call("GET", "/Observation/" + obs).status == 404);
    CHECK(f.call("GET", "/Observation/" + other).status == 404);

    caregate::storage::store::audit_query audit;
    audit.nhs_number = tom;
    auto page = f.store->audit(audit);
    REQUIRE(page.ok());
    bool erase_audited = false, gp_denied = false;
    for (const auto& record : page->records) {
        erase_audited = erase_audited || (record.action == "erase" && record.outcome == "success" &&
                                          record.resource_type == "Patient" && record.user == "test-system");
        // The refused attempt is in the citizen's access log too.
        gp_denied = gp_denied || (record.action == "erase" && record.outcome == "denied" && record.user == "gp-doctor-1");
    }
    CHECK(erase_audited); // in the erasure's own transaction: no flush needed
    CHECK(gp_denied);
}

TEST_CASE("Patient delete: a Patient whose record holds nothing else is deleted as before") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_json("9000000017")).status == 201);
    CHECK(f.call("DELETE", "/Patient/9000000017").status == 204);
    CHECK(f.call("GET", "/Patient/9000000017").status == 410);
}
