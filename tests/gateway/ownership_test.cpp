// The owner rule as a client and the audit trail see it, through the handle() seam with a real store:
// only the organisation that contributed a resource may update, patch or delete it, alone, by
// criteria or in a transaction; any other gets 403 with an OperationOutcome, nothing of the write is
// stored, and the request's audit record says "denied". The rule is the writer's alone (invariant 10
// of storage/src/write_rules.cpp), so these tests fail if that check goes. A resource the caller may not
// see is 404, exactly as if absent, before anyone asks whose it is.
#include "application_fixture.hpp"

#include <rapidjson/document.h>

using namespace caregate;
using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009"; // registered with the GP practice A81001
constexpr const char* obs_system = "https://example.org/observation-id";

std::string observation(const std::string& status, const std::string& identifier = "own-1") {
    return R"({"resourceType":"Observation","identifier":[{"system":")" + std::string(obs_system) +
           R"(","value":")" + identifier + R"("}],"status":")" + status +
           R"(","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/9000000009"},"valueQuantity":{"value":72,"unit":"/min"}})";
}

std::string with_id(const std::string& id, const std::string& status) {
    return R"({"id":")" + id + R"(",)" + observation(status).substr(1);
}

const std::string by_identifier = std::string("/Observation?identifier=") + obs_system + "%7Cown-1";

std::string encounter_of_rx1() {
    return R"({"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/9000000009"},"serviceProvider":{"reference":"Organization/RX1"}})";
}

std::string transaction(const std::vector<std::string>& entries) {
    std::string text = R"({"resourceType":"Bundle","type":"transaction","entry":[)";
    for (std::size_t i = 0; i < entries.size(); ++i)
        text += (i ? "," : "") + entries[i];
    return text + "]}";
}

/// Tom, registered with the GP; one of the GP's Observations of him (identifier own-1); and, when
/// `acute_sees_it`, a relationship of the acute trust (RX1) with Tom, so that it may see the
/// Observation but, not having contributed it, not change it.
struct owned_fixture : application_fixture {
    std::string id;
    std::string path;
    explicit owned_fixture(bool acute_sees_it = true) {
        REQUIRE(call("PUT", std::string("/Patient/") + tom,
                     patient_json(tom, R"("id":"9000000009","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
        auto made = call_as(gp_clinician(), "POST", "/Observation", observation("final"));
        REQUIRE_MESSAGE(made.status == 201, made.body);
        id = id_of(made);
        path = "/Observation/" + id;
        if (acute_sees_it)
            REQUIRE(call_as(acute_clinician(), "POST", "/Encounter", encounter_of_rx1()).status == 201);
        REQUIRE(call_as(acute_clinician(), "GET", path).status == (acute_sees_it ? 200 : 404));
    }
    /// The Observation as its owner reads it: the whole body, with its versionId and lastUpdated.
    std::string stored() {
        auto read = call_as(gp_clinician(), "GET", path);
        REQUIRE(read.status == 200);
        return read.body;
    }
    /// The audit records of the request that `answer` answered, newest first.
    std::vector<storage::audit_record> audited(const http::response& answer, const std::string& user) {
        const std::string request_id(answer.header("X-Request-ID"));
        REQUIRE_FALSE(request_id.empty());
        flush(); // reads' records wait for the writer's next group
        storage::store::audit_query query;
        query.agent = user;
        query.count = 1000;
        auto page = store->audit(query);
        REQUIRE(page.ok());
        std::vector<storage::audit_record> records;
        for (auto& record : page->records)
            if (record.request_id == request_id)
                records.push_back(std::move(record));
        return records;
    }
};

/// A 403 with an OperationOutcome that says why and names no organisation.
void check_forbidden(const http::response& answer) {
    INFO(answer.body);
    CHECK(answer.status == 403);
    CHECK(outcome_of(answer)["issue"][0]["code"] == "forbidden");
    CHECK(answer.body.find("A81001") == std::string::npos);
}

/// The newest audit record of the request is the refused write's: `action`, outcome denied. Returns it.
storage::audit_record check_denied(owned_fixture& f, const http::response& answer, const std::string& action) {
    const auto records = f.audited(answer, "acute-doctor-1");
    REQUIRE_FALSE(records.empty());
    CHECK(records.front().action == action);
    CHECK(records.front().outcome == "denied");
    CHECK(records.front().resource_type == "Observation");
    return records.front();
}

} // namespace

TEST_CASE("owner rule: another organisation's update, delete and PATCH are 403, change nothing, and are audited as denied") {
    owned_fixture f;
    const std::string before = f.stored();
    REQUIRE(json_of(f.call_as(gp_clinician(), "GET", f.path))["meta"]["versionId"] == "1");

    SUBCASE("update") {
        auto refused = f.call_as(acute_clinician(), "PUT", f.path, with_id(f.id, "amended"));
        check_forbidden(refused);
        const auto record = check_denied(f, refused, "update");
        CHECK(record.resource_ids == f.id);
        CHECK(record.nhs_number == tom);
    }
    SUBCASE("update with a stale If-Match: still 403, so the answer tells nothing of the version") {
        auto refused = f.call_as(acute_clinician(), "PUT", f.path, with_id(f.id, "amended"), {{"If-Match", "W/\"7\""}});
        check_forbidden(refused);
        check_denied(f, refused, "update");
    }
    SUBCASE("delete") {
        auto refused = f.call_as(acute_clinician(), "DELETE", f.path);
        check_forbidden(refused);
        const auto record = check_denied(f, refused, "delete");
        CHECK(record.resource_ids == f.id);
        CHECK(record.nhs_number == tom);
    }
    SUBCASE("PATCH") {
        auto refused = f.call_as(acute_clinician(), "PATCH", f.path, R"([{"op":"replace","path":"/status","value":"amended"}])",
                                 {{"Content-Type", "application/json-patch+json"}});
        check_forbidden(refused);
        const auto record = check_denied(f, refused, "update");
        CHECK(record.resource_ids == f.id);
        CHECK(record.nhs_number == tom);
        CHECK(record.detail.find("patch") != std::string::npos);
    }
    SUBCASE("conditional update") {
        auto refused = f.call_as(acute_clinician(), "PUT", by_identifier, observation("amended"));
        check_forbidden(refused);
        CHECK(check_denied(f, refused, "update").nhs_number == tom);
    }
    SUBCASE("conditional delete") {
        auto refused = f.call_as(acute_clinician(), "DELETE", by_identifier);
        check_forbidden(refused);
        check_denied(f, refused, "delete");
    }
    SUBCASE("conditional PATCH") {
        auto refused = f.call_as(acute_clinician(), "PATCH", by_identifier,
                                 R"([{"op":"replace","path":"/status","value":"amended"}])",
                                 {{"Content-Type", "application/json-patch+json"}});
        check_forbidden(refused);
        check_denied(f, refused, "update");
    }
    CHECK(f.stored() == before); // the same version, the same content
    auto matches = f.call("GET", by_identifier + "&_total=accurate");
    REQUIRE(matches.status == 200);
    CHECK(json_of(matches)["total"].GetInt() == 1); // a refused conditional update created nothing either
}

TEST_CASE("owner rule: a transaction entry changing another organisation's resource fails the transaction with 403; nothing of it is stored, and the entry is audited as denied") {
    owned_fixture f;
    const std::string before = f.stored();
    const std::string update_entry = R"({"resource":)" + with_id(f.id, "amended") +
                                     R"(,"request":{"method":"PUT","url":"Observation/)" + f.id + R"("}})";

    SUBCASE("the entry alone") {
        auto refused = f.call_as(acute_clinician(), "POST", "", transaction({update_entry}));
        check_forbidden(refused);
        CHECK(refused.body.find("entry 0") != std::string::npos);
        const auto record = check_denied(f, refused, "update");
        CHECK(record.resource_ids == f.id);
        CHECK(record.nhs_number == tom);
    }
    SUBCASE("with an entry the caller may make, which is undone with it and audited as failed") {
        const std::string own_entry = R"({"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000001","resource":)" +
                                      observation("final", "rx1-1") + R"(,"request":{"method":"POST","url":"Observation"}})";
        auto refused = f.call_as(acute_clinician(), "POST", "", transaction({own_entry, update_entry}));
        check_forbidden(refused);
        CHECK(refused.body.find("entry 1") != std::string::npos);
        check_denied(f, refused, "update"); // the update is written after the create, so its record is newer
        const auto records = f.audited(refused, "acute-doctor-1");
        REQUIRE(records.size() >= 2);
        CHECK(records[1].action == "create");
        CHECK(records[1].outcome == "failed");
        auto created = f.call("GET", std::string("/Observation?identifier=") + obs_system + "%7Crx1-1&_total=accurate");
        REQUIRE(created.status == 200);
        CHECK(json_of(created)["total"].GetInt() == 0);
    }
    CHECK(f.stored() == before);
}

TEST_CASE("owner rule: the ICS's integration service may change any organisation's resource") {
    owned_fixture f;
    auto corrected = f.call("PUT", f.path, with_id(f.id, "amended"));
    CHECK(corrected.status == 200);
    CHECK(corrected.header("ETag") == "W/\"2\"");
    const auto records = f.audited(corrected, "test-system");
    REQUIRE_FALSE(records.empty());
    CHECK(records.front().outcome == "success");
}

TEST_CASE("owner rule: a resource the caller may not see is 404 to update, delete or PATCH, never 403, and audited as not found") {
    owned_fixture f(false); // the acute trust has no relationship with Tom
    const std::string before = f.stored();
    const std::string patch = R"([{"op":"replace","path":"/status","value":"amended"}])";
    const std::vector<http::header_field> json_patch = {{"Content-Type", "application/json-patch+json"}};
    const std::string absent = "/Observation/00000000-0000-4000-8000-00000000dead";
    http::response hidden;
    SUBCASE("update") { hidden = f.call_as(acute_clinician(), "PUT", f.path, with_id(f.id, "amended")); }
    SUBCASE("delete: the answer is the one for an id that does not exist") {
        hidden = f.call_as(acute_clinician(), "DELETE", f.path);
        CHECK(hidden.body == f.call_as(acute_clinician(), "DELETE", absent).body);
    }
    SUBCASE("PATCH: the answer is the one for an id that does not exist") {
        hidden = f.call_as(acute_clinician(), "PATCH", f.path, patch, json_patch);
        CHECK(hidden.body == f.call_as(acute_clinician(), "PATCH", absent, patch, json_patch).body);
    }
    SUBCASE("conditional PATCH: the hidden resource is no match") {
        hidden = f.call_as(acute_clinician(), "PATCH", by_identifier, patch, json_patch);
    }
    CHECK(hidden.status == 404);
    const auto records = f.audited(hidden, "acute-doctor-1");
    REQUIRE_FALSE(records.empty());
    CHECK(records.front().outcome == "not-found");
    CHECK(f.stored() == before);
}

TEST_CASE("owner rule: a conditional delete does not match a resource the caller may not see: 204, nothing deleted") {
    owned_fixture f(false);
    const std::string before = f.stored();
    CHECK(f.call_as(acute_clinician(), "DELETE", by_identifier).status == 204);
    CHECK(f.stored() == before);
}
