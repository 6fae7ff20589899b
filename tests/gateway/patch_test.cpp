// PATCH (https://hl7.org/fhir/R4/http.html#patch) through the handle() seam with a real store: JSON
// Patch and FHIRPath Patch, the patched resource validated like any update (422 and nothing
// changed), If-Match, ownership and visibility, conditional patch, and a patch never applied to a
// version it was not computed on.
#include "application_fixture.hpp"

#include "interactions/write_plan.hpp"
#include "http/error_response.hpp"

#include <rapidjson/document.h>

using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009"; // registered with the GP practice A81001
constexpr const char* json_patch = "application/json-patch+json";
constexpr const char* fhir_json = "application/fhir+json";

std::string observation(const std::string& identifier = "p1") {
    return R"({"resourceType":"Observation","identifier":[{"system":"https://example.org/observation-id","value":")" +
           identifier +
           R"("}],"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/9000000009"},"valueQuantity":{"value":72,"unit":"/min"}})";
}

/// A FHIRPath Patch of one operation, its parts given as JSON members of the `part` array.
std::string fhirpath_patch(const std::string& parts) {
    return R"({"resourceType":"Parameters","parameter":[{"name":"operation","part":[)" + parts + "]}]}";
}

/// Tom registered with the GP, and one of the GP's Observations of him.
struct patch_fixture : application_fixture {
    std::string id;
    std::string path;
    patch_fixture() {
        REQUIRE(call("PUT", std::string("/Patient/") + tom,
                     patient_json(tom, R"("id":"9000000009","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
        auto made = call_as(gp_clinician(), "POST", "/Observation", observation());
        REQUIRE(made.status == 201);
        id = id_of(made);
        path = "/Observation/" + id;
    }
    caregate::http::response patch(const std::string& body, const char* type = json_patch,
                                   std::vector<caregate::http::header_field> headers = {},
                                   const identity& who = gp_clinician(), const std::string& target = {}) {
        headers.push_back({"Content-Type", type});
        return call_as(who, "PATCH", target.empty() ? path : target, body, std::move(headers));
    }
    std::string etag() { return std::string(call("GET", path).header("ETag")); }
};

} // namespace

TEST_CASE("JSON Patch: replace and add make a new version with the change; the answer is the patched resource") {
    patch_fixture f;
    auto replaced = f.patch(R"([{"op":"replace","path":"/status","value":"amended"}])");
    REQUIRE_MESSAGE(replaced.status == 200, replaced.body);
    CHECK(replaced.header("ETag") == "W/\"2\"");
    CHECK(replaced.header("Location") == std::string(test_base_url) + f.path + "/_history/2");
    CHECK(json_of(replaced)["status"].GetString() == std::string("amended"));
    CHECK(json_of(replaced)["meta"]["versionId"].GetString() == std::string("2"));

    auto added = f.patch(R"([{"op":"add","path":"/note","value":[{"text":"taken at rest"}]},
                             {"op":"test","path":"/status","value":"amended"}])");
    REQUIRE_MESSAGE(added.status == 200, added.body);
    CHECK(text_at(json_of(f.call("GET", f.path)), "note", 0, "text") == std::string("taken at rest"));
    CHECK(f.etag() == "W/\"3\"");
}

TEST_CASE("JSON Patch: a failing test, or a patch that makes the resource invalid, is 422 and changes nothing") {
    patch_fixture f;
    const std::string before = f.call("GET", f.path).body;
    for (const char* bad : {
             R"([{"op":"test","path":"/status","value":"preliminary"},{"op":"replace","path":"/status","value":"amended"}])",
             R"([{"op":"remove","path":"/status"}])",                            // Observation.status is required
             R"([{"op":"replace","path":"/status","value":"not-a-status"}])",    // not in the required value set
             R"([{"op":"add","path":"/colour","value":"blue"}])",                // not an element of Observation
             R"([{"op":"replace","path":"/id","value":"another-id"}])",          // the id never changes
             R"([{"op":"replace","path":"/subject/reference","value":"Patient/9000000017"}])", // a citizen not held
         }) {
        CAPTURE(bad);
        auto r = f.patch(bad);
        CHECK(r.status == 422);
        CHECK(json_of(r)["resourceType"].GetString() == std::string("OperationOutcome"));
    }
    CHECK(f.call("GET", f.path).body == before);
    CHECK(f.call("GET", f.path + "/_history/2").status == 404); // no new version
    CHECK(f.patch("not json").status == 400);
    CHECK(f.patch(R"({"op":"replace"})").status == 400); // not an array of operations
    CHECK(f.call("GET", f.path).body == before);
}

TEST_CASE("FHIRPath Patch: add, replace and delete, as in the spec's examples") {
    patch_fixture f;
    auto added = f.patch(fhirpath_patch(R"({"name":"type","valueCode":"add"},{"name":"path","valueString":"Observation"},
                                          {"name":"name","valueString":"issued"},{"name":"value","valueInstant":"2026-11-01T10:00:00Z"})"),
                         fhir_json);
    REQUIRE_MESSAGE(added.status == 200, added.body);
    CHECK(json_of(added)["issued"].GetString() == std::string("2026-11-01T10:00:00Z"));

    auto replaced = f.patch(fhirpath_patch(R"({"name":"type","valueCode":"replace"},{"name":"path","valueString":"Observation.status"},
                                             {"name":"value","valueCode":"amended"})"),
                            fhir_json);
    REQUIRE_MESSAGE(replaced.status == 200, replaced.body);
    CHECK(json_of(replaced)["status"].GetString() == std::string("amended"));

    auto deleted = f.patch(fhirpath_patch(R"({"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.issued"})"),
                           fhir_json);
    REQUIRE_MESSAGE(deleted.status == 200, deleted.body);
    CHECK_FALSE(json_of(deleted).HasMember("issued"));
    CHECK(f.etag() == "W/\"4\"");

    // A replace that makes the resource invalid: 422, nothing changes.
    auto invalid = f.patch(fhirpath_patch(R"({"name":"type","valueCode":"replace"},{"name":"path","valueString":"Observation.status"},
                                            {"name":"value","valueCode":"not-a-status"})"),
                           fhir_json);
    CHECK(invalid.status == 422);
    auto removed = f.patch(fhirpath_patch(R"({"name":"type","valueCode":"delete"},{"name":"path","valueString":"Observation.status"})"),
                           fhir_json);
    CHECK(removed.status == 422);
    CHECK(f.etag() == "W/\"4\"");
    // Not a Parameters resource.
    CHECK(f.patch(observation(), fhir_json).status == 400);
}

TEST_CASE("PATCH: Content-Type decides the format; anything else is 415") {
    patch_fixture f;
    CHECK(f.patch(R"([{"op":"replace","path":"/status","value":"amended"}])", "text/plain").status == 415);
    CHECK(f.patch(R"([{"op":"replace","path":"/status","value":"amended"}])", "application/pdf").status == 415);
    // XML is a FHIRPath Patch's Parameters in XML: a JSON Patch labelled XML is not well-formed XML.
    CHECK(f.patch(R"([{"op":"replace","path":"/status","value":"amended"}])", "application/xml").status == 400);
    // A JSON Patch document sent with the wrong method.
    CHECK(f.call("POST", "/Observation", observation(), {{"Content-Type", json_patch}}).status == 415);
    CHECK(f.etag() == "W/\"1\"");
}

TEST_CASE("PATCH: If-Match must name the current version (412); a write between read and commit is 409") {
    patch_fixture f;
    const std::string amend = R"([{"op":"replace","path":"/status","value":"amended"}])";
    CHECK(f.patch(amend, json_patch, {{"If-Match", "W/\"7\""}}).status == 412);
    CHECK(f.etag() == "W/\"1\"");
    CHECK(f.patch(amend, json_patch, {{"If-Match", "W/\"1\""}}).status == 200);
    CHECK(f.etag() == "W/\"2\"");

    // Planned on version 2, then another write makes version 3 before the patch is queued: the patch
    // must not be applied to version 3, which it was not computed on.
    caregate::http::request req;
    req.method = "PATCH";
    req.target = "/fhir" + f.path;
    req.body = R"([{"op":"add","path":"/note","value":[{"text":"on version 2"}]}])";
    req.headers = {{"Authorization", "Bearer " + token_for(gp_clinician())}, {"Content-Type", json_patch}};
    req.secure = true;
    req.client_ods = "A81001";
    const auto now = caregate::access::now_micros();
    auto who = f.guard->authenticate(caregate::rest::credentials_of(req), now / 1'000'000);
    REQUIRE(who.ok());
    caregate::interactions::rest_config config;
    config.base_url = test_base_url;
    caregate::interactions::route where{caregate::interactions::interaction::patch, "Observation", f.id, 0};
    caregate::interactions::context ctx{std::move(req),
                                where,
                                {},
                                *f.store,
                                config,
                                "6b7d2f3e-0c4a-4e8b-9f1d-2a3b4c5d6e7f",
                                f.guard.get(),
                                std::move(who.value()),
                                now,
                                {},
                                {},  // no subrequests: planning a PATCH runs none
                                {}}; // nothing deferred
    auto plan = caregate::interactions::detail::plan_patch(ctx);
    REQUIRE(plan.ok());
    CHECK(plan->write.if_match == 2);
    REQUIRE(f.patch(R"([{"op":"replace","path":"/status","value":"corrected"}])").status == 200); // version 3
    auto outcome = f.store->write(plan->write);
    REQUIRE_FALSE(outcome.ok());
    const caregate::fhir::error answer = caregate::interactions::detail::write_failure(*plan, outcome.failure());
    CHECK(caregate::http::http_status(answer.kind) == 409);
    CHECK(f.etag() == "W/\"3\"");
    CHECK(json_of(f.call("GET", f.path))["status"].GetString() == std::string("corrected"));
    CHECK_FALSE(json_of(f.call("GET", f.path)).HasMember("note"));
}

TEST_CASE("PATCH: another organisation's resource is 403; one the caller may not see is 404, as if absent") {
    patch_fixture f;
    const std::string amend = R"([{"op":"replace","path":"/status","value":"amended"}])";
    // The acute trust has no relationship with Tom yet: it may not see the GP's Observation.
    auto hidden = f.patch(amend, json_patch, {}, acute_clinician());
    CHECK(hidden.status == 404);
    CHECK(hidden.body == f.patch(amend, json_patch, {}, acute_clinician(), "/Observation/no-such-id").body);
    REQUIRE(f.call_as(acute_clinician(), "POST", "/Encounter",
                      R"({"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/9000000009"},"serviceProvider":{"reference":"Organization/RX1"}})")
                .status == 201);
    CHECK(f.patch(amend, json_patch, {}, acute_clinician()).status == 403);
    CHECK(f.patch(amend, json_patch, {}, gp_admin()).status == 403); // admin roles may never change Observations
    CHECK(f.etag() == "W/\"1\"");
    // The ICS's integration system may correct anyone's contribution.
    CHECK(f.patch(amend, json_patch, {}, system_identity()).status == 200);
    // Deleted: 410.
    REQUIRE(f.call("DELETE", f.path).status == 204);
    CHECK(f.patch(amend).status == 410);
}

TEST_CASE("PATCH of a Patient: the NHS number cannot be patched away from the id") {
    patch_fixture f;
    auto renamed = f.patch(R"([{"op":"replace","path":"/name/0/family","value":"Other"}])", json_patch, {}, system_identity(),
                           std::string("/Patient/") + tom);
    CHECK(renamed.status == 200);
    auto renumbered = f.patch(R"([{"op":"replace","path":"/identifier/0/value","value":"9000000017"}])", json_patch, {},
                              system_identity(), std::string("/Patient/") + tom);
    CHECK(renumbered.status == 422);
    CHECK(f.call("GET", std::string("/Patient/") + tom).header("ETag") == "W/\"2\"");
}

TEST_CASE("conditional PATCH: one match is patched; none is 404; several 412") {
    patch_fixture f;
    const std::string amend = R"([{"op":"replace","path":"/status","value":"amended"}])";
    const std::string by_identifier = "/Observation?identifier=https://example.org/observation-id%7Cp1";
    auto patched = f.patch(amend, json_patch, {}, gp_clinician(), by_identifier);
    CHECK(patched.status == 200);
    CHECK(id_of(patched) == f.id);
    CHECK(f.etag() == "W/\"2\"");
    CHECK(f.patch(amend, json_patch, {}, gp_clinician(), "/Observation?identifier=https://example.org/observation-id%7Cnone")
              .status == 404);
    // Hidden from the acute trust: not a match for it.
    CHECK(f.patch(amend, json_patch, {}, acute_clinician(), by_identifier).status == 404);
    REQUIRE(f.call_as(gp_clinician(), "POST", "/Observation", observation("p1")).status == 201);
    CHECK(f.patch(amend, json_patch, {}, gp_clinician(), by_identifier).status == 412);
    CHECK(f.patch(amend, json_patch, {}, gp_clinician(), "/Observation").status == 400);
    CHECK(f.patch(amend, json_patch, {}, gp_clinician(), "/Observation?_count=1").status == 400);
}
