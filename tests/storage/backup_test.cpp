// Tests for backup_database (storage/src/sqlite/backup.cpp): an online backup while a writer writes is one
// consistent moment of the database, opens as a store, verifies, and never overwrites or leaves half
// a file.
#include "store_fixture.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

std::string note_json(int i) {
    return R"({"resourceType":"Basic","code":{"text":"note )" + std::to_string(i) + R"("}})";
}

audit_record create_audit(int i) {
    audit_record record;
    record.time = 1'000 + i;
    record.request_id = "request-" + std::to_string(i);
    record.user = "writer";
    record.organisation = "QZZ";
    record.purpose = "TREAT";
    record.resource_type = "Basic";
    record.action = "create";
    return record;
}

} // namespace

TEST_CASE("an online backup while writes go on is one consistent moment: every acknowledged write before it, each with its audit record" * caregate::testing::sqlite_only()) {
    store_fixture db;
    std::atomic<int> acknowledged{0};
    std::atomic<bool> write_failed{false};
    // Stopped and joined as the test ends, however it ends.
    std::jthread writer([&](std::stop_token stop) {
        for (int i = 0; !stop.stop_requested(); ++i) {
            auto request = create_request("Basic", "note-" + std::to_string(i), note_json(i));
            request.audit = create_audit(i);
            if (!db->write(std::move(request)).ok()) { // no REQUIRE off the test's own thread
                write_failed = true;
                return;
            }
            acknowledged = i + 1;
        }
    });
    while (acknowledged < 50 && !write_failed)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const int before = acknowledged;
    temp_directory elsewhere;
    const std::string copy = (elsewhere.path() / "backup.db").string();
    auto report = backup_database(db.options.path, copy);
    const int after = acknowledged;
    writer.request_stop();
    writer.join();
    REQUIRE_FALSE(write_failed);
    REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.failure().issues.at(0).diagnostics));
    CHECK(report->pages > 0);
    CHECK(report->bytes == static_cast<std::int64_t>(std::filesystem::file_size(copy)));
    CHECK_FALSE(std::filesystem::exists(copy + ".partial"));
    CHECK_FALSE(std::filesystem::exists(copy + "-wal")); // one self-contained file

    // Opened as a store (as a restore does): the schema as it was, the chain intact, and a prefix of
    // the writes: all acknowledged before the backup began, none half, each with its audit record.
    sqlite_options restored;
    restored.path = copy;
    auto opened = sqlite_store::open(restored);
    REQUIRE(opened.ok());
    auto& back = **opened;
    auto verdict = back.verify_audit();
    REQUIRE(verdict.ok());
    CHECK_FALSE(verdict->first_broken);
    int present = 0;
    while (back.read("Basic", "note-" + std::to_string(present)).ok())
        ++present;
    CHECK(present >= before);
    CHECK(present <= after + 1); // at most the write in flight when the snapshot was taken
    CHECK_FALSE(back.read("Basic", "note-" + std::to_string(present + 1)).ok()); // a prefix, no gaps
    CHECK(verdict->records == present);
    CHECK(report->audit_records == present);
}

TEST_CASE("a backup never overwrites a file, and a failed one leaves nothing at its name" * caregate::testing::sqlite_only()) {
    store_fixture db;
    REQUIRE(db->write(create_request("Basic", "note-1", note_json(1))).ok());
    temp_directory elsewhere;
    const std::string existing = (elsewhere.path() / "existing.db").string();
    std::ofstream(existing) << "something precious";
    auto refused = backup_database(db.options.path, existing);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().kind == fhir::category::conflict);
    CHECK(std::filesystem::file_size(existing) == std::string("something precious").size());

    const std::string nowhere = (elsewhere.path() / "no-such-directory" / "backup.db").string();
    auto failed = backup_database(db.options.path, nowhere);
    REQUIRE_FALSE(failed.ok());
    CHECK_FALSE(std::filesystem::exists(nowhere));

    auto missing = backup_database((elsewhere.path() / "absent.db").string(), (elsewhere.path() / "b.db").string());
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.failure().kind == fhir::category::not_found);
    CHECK_FALSE(std::filesystem::exists(elsewhere.path() / "absent.db")); // reading never creates it
}
