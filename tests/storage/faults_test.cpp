// File system faults under the store (the reliability issue): a full disk and a file system gone
// read-only, injected by a VFS in front of SQLite's own (tests/support/fault_vfs.hpp) while the
// store is open. A write meeting one fails `busy` (a 503 at the API), changes nothing, and the same
// store writes again once the fault clears; reads go on meanwhile; reads' audit records wait and
// are committed afterwards, in order; the database stays intact and its audit chain verifies.
#include "store_fixture.hpp"

#include "../support/fault_vfs.hpp"

#include <chrono>
#include <future>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;
using caregate::testing::fault_vfs_name;
using caregate::testing::fault_vfs_refused;
using caregate::testing::fault_while;
using caregate::testing::fs_fault;

namespace {

const std::string nhs = "9000000009";

audit_record read_record(std::string user) {
    audit_record record;
    record.time = 1'000;
    record.request_id = "request-" + user;
    record.user = std::move(user);
    record.role = "R8000";
    record.organisation = "A81001";
    record.purpose = "TREAT";
    record.nhs_number = nhs;
    record.resource_type = "Patient";
    record.resource_ids = nhs;
    record.action = "read";
    record.outcome = "success";
    return record;
}

sqlite_options faulty_options() {
    sqlite_options options;
    options.vfs = fault_vfs_name();
    return options;
}

bool wait_until(const std::function<bool()>& done) {
    for (int i = 0; i < 500; ++i) {
        if (done())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
}

} // namespace

TEST_CASE("a full disk or a read-only file system: the write fails busy, nothing of it stays, and the store writes again once the fault clears" * caregate::testing::sqlite_only()) {
    for (const auto fault : {fs_fault::disk_full, fs_fault::read_only}) {
        CAPTURE(static_cast<int>(fault));
        store_fixture db(faulty_options());
        REQUIRE(db->write(create_request("Patient", nhs, patient_json(nhs))).ok());
        REQUIRE(db->write(observation_request("before", nhs)).ok());

        const auto refused_before = fault_vfs_refused().load();
        fault_while faulty(fault);
        auto failed = db->write(observation_request("during", nhs));
        REQUIRE_FALSE(failed.ok());
        CHECK(failed.failure().kind == fhir::category::busy); // 503 with Retry-After at the API
        CHECK(failed.failure().issues.at(0).diagnostics.find("temporarily unavailable") != std::string::npos);
        CHECK(failed.failure().issues.at(0).diagnostics.find(fault == fs_fault::disk_full ? "full" : "I/O") != std::string::npos);
        CHECK(fault_vfs_refused().load() > refused_before); // the fault was met, not missed
        // A transaction fails whole.
        std::promise<std::variant<std::vector<write_outcome>, transaction_failure>> finished;
        db->submit_transaction({observation_request("in-transaction-1", nhs), observation_request("in-transaction-2", nhs)},
                               [&](std::variant<std::vector<write_outcome>, transaction_failure> result) { finished.set_value(std::move(result)); });
        CHECK(std::holds_alternative<transaction_failure>(finished.get_future().get()));
        // Reads go on.
        auto read = db->read("Observation", "before");
        REQUIRE(read.ok());
        CHECK(read->version_id == 1);

        faulty.clear();
        auto written = db->write(observation_request("after", nhs)); // the same store: no reopening
        REQUIRE(written.ok());
        CHECK_FALSE(db->read("Observation", "during").ok());
        CHECK_FALSE(db->read("Observation", "in-transaction-1").ok());
        CHECK_FALSE(db->read("Observation", "in-transaction-2").ok());
        CHECK(db->read("Observation", "after").ok());

        db.close(); // the log copied back into the database: what a restart finds
        CHECK(db.rows("PRAGMA integrity_check") == std::vector<std::vector<std::string>>{{"ok"}});
        CHECK(db.count("SELECT count(*) FROM resources WHERE type = 'Observation'") == 2);
        db.reopen();
        auto verdict = db->verify_audit();
        REQUIRE(verdict.ok());
        CHECK_FALSE(verdict->first_broken.has_value());
    }
}

TEST_CASE("reads' audit records kept out by a full disk are committed once it clears, in order, and count against the backlog until then" * caregate::testing::sqlite_only()) {
    sqlite_options options = faulty_options();
    options.max_audit_backlog = 3;
    store_fixture db(options);
    REQUIRE(db->write(create_request("Patient", nhs, patient_json(nhs))).ok());
    CHECK(db->audit_backlog() == 0);
    {
        fault_while faulty(fs_fault::disk_full);
        db->append_audit({read_record("user-1")});
        db->append_audit({read_record("user-2")});
        CHECK(db->audit_backlog() == 2);
        CHECK_FALSE(db->audit_backlog_full());
        // The writer tries, fails and puts them back, more than once while the disk is full.
        const auto refused_before = fault_vfs_refused().load();
        CHECK(wait_until([&] { return fault_vfs_refused().load() > refused_before + 2; }));
        CHECK(db->audit_backlog() == 2); // none dropped
        db->append_audit({read_record("user-3")});
        CHECK(db->audit_backlog_full()); // the bound: the gateway refuses every request now
    }
    CHECK(wait_until([&] { return db->audit_backlog() == 0; })); // committed by the writer on its own
    CHECK_FALSE(db->audit_backlog_full());
    store::audit_query query;
    query.count = 100;
    auto log = db->audit(query);
    REQUIRE(log.ok());
    std::vector<std::string> users;
    for (const auto& record : log->records)
        if (record.action == "read")
            users.insert(users.begin(), record.user); // newest first: put back in order
    CHECK(users == std::vector<std::string>{"user-1", "user-2", "user-3"});
    auto verdict = db->verify_audit();
    REQUIRE(verdict.ok());
    CHECK_FALSE(verdict->first_broken.has_value());
}

TEST_CASE("a fault while the log is copied back (checkpoint) loses nothing and the copy completes later" * caregate::testing::sqlite_only()) {
    sqlite_options options = faulty_options();
    // No checkpoint of the store's own (the checkpointer thread's would copy the log before the
    // fault, racing the test): the log keeps every commit until store::checkpoint below.
    options.checkpoint_frames = 1'000'000;
    store_fixture db(options);
    REQUIRE(db->write(create_request("Patient", nhs, patient_json(nhs))).ok());
    for (int i = 0; i < 20; ++i)
        REQUIRE(db->write(observation_request("o-" + std::to_string(i), nhs)).ok());
    {
        fault_while faulty(fs_fault::disk_full);
        CHECK_FALSE(db->make_durable().ok()); // the copy into the database file fails
        CHECK(db->read("Observation", "o-19").ok());
    }
    REQUIRE(db->make_durable().ok());
    db.close();
    CHECK(db.rows("PRAGMA integrity_check") == std::vector<std::vector<std::string>>{{"ok"}});
    CHECK(db.count("SELECT count(*) FROM resources WHERE type = 'Observation'") == 20);
}
