// Storage faults as a client sees them (the reliability issue): a database another process has
// locked, a full disk, a file system gone read-only (the last two injected by
// tests/support/fault_vfs.hpp) answer writes with 503, an OperationOutcome and Retry-After, change
// nothing, and serve again as soon as the fault goes, without a restart; reads go on meanwhile, and
// their audit records are committed once the database is free. Past a bound of uncommitted reads'
// audit records, every request is refused (fail closed).
#include "application_fixture.hpp"

#include "../support/fault_vfs.hpp"
#include "../support/write_lock.hpp"

#include <chrono>
#include <thread>

using namespace caregate;
using namespace caregate::testing;

TEST_CASE("a database locked by another process: writes get 503 with Retry-After, reads go on, and all is served again once the lock goes") {
    application_fixture f;
    f.busy_timeout = std::chrono::milliseconds(100);
    f.restart();
    const std::string nhs = "9000000009";
    REQUIRE(f.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")")).status == 201);
    f.flush();

    testing::write_lock other((f.dir / "test.db").string()); // as another process would

    auto refused = f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})"));
    auto read = f.call("GET", "/Patient/" + nhs); // WAL readers need no lock: reads are served
    other.release();
    CHECK(refused.status == 503);
    CHECK(refused.header("Retry-After") == "1");
    auto outcome = outcome_of(refused);
    const std::string diagnostics = text_at(outcome, "issue", 0, "diagnostics");
    CHECK(diagnostics.find("temporarily unavailable") != std::string::npos);
    CHECK(diagnostics.find(nhs) == std::string::npos); // says nothing of the record
    CHECK(read.status == 200);

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

TEST_CASE("a full disk or a read-only file system: writes get 503 with Retry-After, reads go on, and writes are served again once it clears") {
    for (const auto fault : {testing::fs_fault::disk_full, testing::fs_fault::read_only}) {
        CAPTURE(static_cast<int>(fault));
        application_fixture f;
        f.vfs = testing::fault_vfs_name();
        f.restart();
        const std::string nhs = "9000000009";
        REQUIRE(f.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")")).status == 201);

        testing::fault_while faulty(fault);
        auto refused = f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})"));
        auto refused_update = f.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(","gender":"female")"));
        auto read = f.call("GET", "/Patient/" + nhs);
        faulty.clear();

        for (const auto* answer : {&refused, &refused_update}) {
            CHECK(answer->status == 503);
            CHECK(answer->header("Retry-After") == "1");
            auto outcome = outcome_of(*answer);
            const std::string diagnostics = text_at(outcome, "issue", 0, "diagnostics");
            CHECK(diagnostics.find("temporarily unavailable") != std::string::npos);
            CHECK(diagnostics.find(nhs) == std::string::npos);
        }
        CHECK(read.status == 200);

        auto accepted = f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})"));
        CHECK(accepted.status == 201);
        auto found = f.call("GET", "/Observation?patient=" + nhs + "&_total=accurate");
        REQUIRE(found.status == 200);
        CHECK(json_of(found)["total"].GetInt() == 1);
        auto patient = f.call("GET", "/Patient/" + nhs);
        REQUIRE(patient.status == 200);
        CHECK(json_of(patient)["meta"]["versionId"] == "1"); // the refused update left nothing
    }
}

TEST_CASE("fail closed: while reads' audit records cannot be committed and have piled up to the bound, every request gets 503, and service resumes once they are written") {
    application_fixture f;
    f.vfs = testing::fault_vfs_name();
    f.max_audit_backlog = 5;
    f.restart();
    const std::string nhs = "9000000009";
    REQUIRE(f.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")")).status == 201);
    f.flush();

    testing::fault_while faulty(testing::fs_fault::disk_full);
    int served = 0;
    http::response last;
    for (int i = 0; i < 20; ++i) {
        last = f.call("GET", "/Patient/" + nhs);
        if (last.status != 200)
            break;
        ++served;
    }
    faulty.clear();
    CHECK(served == 5); // one audit record a read: the sixth finds the backlog full
    CHECK(last.status == 503);
    CHECK(last.header("Retry-After") == "1");
    const std::string diagnostics = outcome_of(last)["issue"][0]["diagnostics"].GetString();
    CHECK(diagnostics.find("audit log") != std::string::npos);
    CHECK(last.body.find("Tess") == std::string::npos);

    // The writer commits the backlog on its own once the disk has room; then reads are served again.
    for (int i = 0; i < 500 && f.store->audit_backlog_full(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(f.call("GET", "/Patient/" + nhs).status == 200);
    f.flush();
    auto log = f.store->audit(storage::store::audit_query{nhs, {}, {}, {}, 100, {}});
    REQUIRE(log.ok());
    int reads_audited = 0;
    for (const auto& record : log->records)
        reads_audited += record.action == "read" && record.outcome == "success";
    CHECK(reads_audited == served + 1); // every read that was answered is in the log
}
