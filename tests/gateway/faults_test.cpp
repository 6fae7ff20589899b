// Storage faults as a client sees them (the reliability issue): a database another process has
// locked answers writes with 503, an OperationOutcome and Retry-After, changes nothing, and serves
// again as soon as the lock goes, without a restart; reads go on meanwhile, and their audit records
// are committed once the database is free.
#include "application_fixture.hpp"

#include <sqlite3.h>

#include <chrono>

using namespace caregate;
using namespace caregate::testing;

TEST_CASE("a database locked by another process: writes get 503 with Retry-After, reads go on, and all is served again once the lock goes") {
    application_fixture f;
    f.busy_timeout = std::chrono::milliseconds(100);
    f.restart();
    const std::string nhs = "9000000009";
    REQUIRE(f.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")")).status == 201);
    f.flush();

    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open_v2((f.dir / "test.db").string().c_str(), &other, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK); // holds the write lock

    auto refused = f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})"));
    CHECK(refused.status == 503);
    CHECK(refused.header("Retry-After") == "1");
    auto outcome = json_of(refused);
    REQUIRE(outcome["resourceType"] == "OperationOutcome");
    const std::string diagnostics = outcome["issue"][0]["diagnostics"].GetString();
    CHECK(diagnostics.find("temporarily unavailable") != std::string::npos);
    CHECK(diagnostics.find(nhs) == std::string::npos); // says nothing of the record

    auto read = f.call("GET", "/Patient/" + nhs); // WAL readers need no lock: reads are served
    CHECK(read.status == 200);

    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close_v2(other);

    // The same server, no restart: the write goes through, and the refused one left nothing.
    auto accepted = f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})"));
    CHECK(accepted.status == 201);
    auto found = f.call("GET", "/Observation?patient=" + nhs + "&_total=accurate");
    REQUIRE(found.status == 200);
    CHECK(json_of(found)["total"].GetInt() == 1);
    // ...and the read made while the database was locked is in the audit trail.
    f.flush();
    auto log = f.store->audit(storage::store::audit_query{nhs, {}, {}, {}, 100, {}});
    REQUIRE(log.ok());
    bool read_audited = false;
    for (const auto& record : log->records)
        read_audited = read_audited || (record.action == "read" && record.outcome == "success");
    CHECK(read_audited);
}
