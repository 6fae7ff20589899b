// Tests for storage/src/relational/engine.hpp: versions, reads, history, citizen links, schema and instants,
// each on a real SQLite file (or PostgreSQL database). Concurrency and group commit are in writer_test.cpp.
#include "store_fixture.hpp"

#include "fhir_model/resource.hpp"

#include <chrono>
#include <future>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

write_outcome must_write(store& db, write_request request) {
    auto outcome = db.write(std::move(request));
    REQUIRE_MESSAGE(outcome.ok(), (outcome.ok() ? "" : outcome.failure().issues.at(0).diagnostics));
    return std::move(outcome).value();
}

std::size_t history_size(store& db, history_query query) {
    query.count = 1000;
    auto page = db.history(query);
    REQUIRE(page.ok());
    return page->entries.size();
}

} // namespace

TEST_CASE("a create is read back as the stamped JSON with meta.versionId 1") {
    store_fixture db;
    const auto created = must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009")));
    CHECK(created.created);
    CHECK_FALSE(created.unchanged);
    CHECK(created.version.version_id == 1);
    CHECK(created.version.method == "POST");

    auto read = db->read("Patient", "9000000009");
    REQUIRE(read.ok());
    CHECK(read->version_id == 1);
    CHECK_FALSE(read->deleted);
    CHECK(read->json == fhir::stamp_resource(patient_json("9000000009"), "9000000009", 1,
                                             store::format_instant(read->last_updated)));
    CHECK(read->json.find(R"("meta":{"versionId":"1","lastUpdated":")") != std::string::npos);
    CHECK(read->json == created.version.json);
    CHECK(read->last_updated == created.version.last_updated);
}

TEST_CASE("an update makes version 2 and vread of version 1 still returns version 1's bytes exactly") {
    store_fixture db;
    const auto first = must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009", "Smith")));
    const auto second = must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009", "Jones")));
    CHECK_FALSE(second.created);
    CHECK(second.version.version_id == 2);
    CHECK(second.version.method == "PUT");
    CHECK(second.version.last_updated > first.version.last_updated);

    auto v1 = db->vread("Patient", "9000000009", 1);
    REQUIRE(v1.ok());
    CHECK(v1->json == first.version.json);
    auto current = db->read("Patient", "9000000009");
    REQUIRE(current.ok());
    CHECK(current->version_id == 2);
    CHECK(current->json.find("Jones") != std::string::npos);

    auto missing = db->vread("Patient", "9000000009", 3);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.failure().kind == fhir::category::not_found);
    CHECK(missing.failure().issues.at(0).code == "not-found");
}

TEST_CASE("an update whose content is unchanged creates no new version") {
    store_fixture db;
    const auto first = must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009")));
    const auto again = must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009")));
    CHECK(again.unchanged);
    CHECK_FALSE(again.created);
    CHECK(again.version.version_id == 1);
    CHECK(again.version.json == first.version.json);
    CHECK(again.version.last_updated == first.version.last_updated);
    CHECK(history_size(*db, history_of("Patient", "9000000009")) == 1);
    CHECK(db.count("SELECT count(*) FROM resource_versions") == 1);
}

TEST_CASE("If-Match that does not name the current version fails with precondition_failed and writes nothing") {
    store_fixture db;
    must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009", "Smith")));
    auto stale = update_request("Patient", "9000000009", patient_json("9000000009", "Jones"));
    stale.if_match = 7;
    auto refused = db->write(stale);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().kind == fhir::category::precondition_failed);
    CHECK(db->read("Patient", "9000000009")->version_id == 1);
    CHECK(db.count("SELECT count(*) FROM resource_versions") == 1);

    auto no_current = update_request("Patient", "9000000017", patient_json("9000000017"));
    no_current.if_match = 1;
    auto refused_absent = db->write(no_current);
    REQUIRE_FALSE(refused_absent.ok());
    CHECK(refused_absent.failure().kind == fhir::category::precondition_failed);
    CHECK(db->read("Patient", "9000000017").failure().kind == fhir::category::not_found);

    auto stale_remove = remove_request("Patient", "9000000009");
    stale_remove.if_match = 2;
    CHECK(db->write(stale_remove).failure().kind == fhir::category::precondition_failed);
    CHECK(db->read("Patient", "9000000009").ok());

    auto matching = update_request("Patient", "9000000009", patient_json("9000000009", "Jones"));
    matching.if_match = 1;
    CHECK(must_write(*db, matching).version.version_id == 2);
}

TEST_CASE("a create with fail_if_exists on a live resource is a conflict naming only type and id") {
    store_fixture db;
    must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009", "Smith")));
    auto duplicate = create_request("Patient", "9000000009", patient_json("9000000009", "Jones"));
    duplicate.fail_if_exists = true;
    auto refused = db->write(duplicate);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().kind == fhir::category::conflict);
    CHECK(refused.failure().issues.at(0).diagnostics == "Patient/9000000009 already exists");
    CHECK(db.count("SELECT count(*) FROM resource_versions") == 1);

    SUBCASE("without fail_if_exists a create of an existing resource updates it") {
        const auto updated = must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009", "Jones")));
        CHECK(updated.version.version_id == 2);
        CHECK_FALSE(updated.created);
    }
    SUBCASE("after a deletion the create succeeds and continues the version count") {
        must_write(*db, remove_request("Patient", "9000000009"));
        const auto recreated = must_write(*db, duplicate);
        CHECK(recreated.created);
        CHECK(recreated.version.version_id == 3);
        CHECK(recreated.version.method == "POST");
    }
}

TEST_CASE("a delete leaves a marker: read is deleted, read_current the marker, history newest first") {
    store_fixture db;
    must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009", "Smith")));
    must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009", "Jones")));
    const auto removed = must_write(*db, remove_request("Patient", "9000000009"));
    CHECK_FALSE(removed.removed_nothing);
    CHECK(removed.version.version_id == 3);
    CHECK(removed.version.deleted);

    auto read = db->read("Patient", "9000000009");
    REQUIRE_FALSE(read.ok());
    CHECK(read.failure().kind == fhir::category::deleted);
    CHECK(read.failure().issues.at(0).code == "deleted");
    CHECK(read.failure().issues.at(0).diagnostics.find("Patient/9000000009") != std::string::npos);

    auto marker = db->read_current("Patient", "9000000009");
    REQUIRE(marker.ok());
    CHECK(marker->deleted);
    CHECK(marker->version_id == 3);
    CHECK(marker->json.empty());
    CHECK(marker->method == "DELETE");

    CHECK(db->vread("Patient", "9000000009", 3).failure().kind == fhir::category::deleted);
    CHECK(db->vread("Patient", "9000000009", 2).ok());

    auto history = db->history(history_of("Patient", "9000000009"));
    REQUIRE(history.ok());
    REQUIRE(history->entries.size() == 3);
    CHECK(history->entries[0].version_id == 3);
    CHECK(history->entries[0].method == "DELETE");
    CHECK(history->entries[0].deleted);
    CHECK(history->entries[1].version_id == 2);
    CHECK(history->entries[1].method == "PUT");
    CHECK(history->entries[2].version_id == 1);
    CHECK(history->entries[2].method == "POST");
    CHECK_FALSE(history->next);

    SUBCASE("deleting again, or deleting what never existed, removes nothing and writes nothing") {
        CHECK(must_write(*db, remove_request("Patient", "9000000009")).removed_nothing);
        CHECK(must_write(*db, remove_request("Patient", "9000000017")).removed_nothing);
        CHECK(db.count("SELECT count(*) FROM resource_versions") == 3);
        CHECK(db->read("Patient", "9000000017").failure().kind == fhir::category::not_found);
    }
}

TEST_CASE("reads answered later (read_current_async) give each read its own current version, asked from many threads at once") {
    // On PostgreSQL they go in batches (storage/src/relational/read_batches.hpp): many reads share one
    // statement, and a row that went to the wrong read would show another resource, or nothing, here.
    store_fixture db;
    must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009")));
    constexpr int items = 40;
    for (int i = 0; i < items; ++i)
        must_write(*db, observation_request("o" + std::to_string(i), "9000000009", std::to_string(100 + i)));
    write_request changed = observation_request("o0", "9000000009", "999");
    changed.kind = write_kind::update;
    must_write(*db, std::move(changed));
    must_write(*db, remove_request("Observation", "o1"));

    constexpr int threads = 8, reads_each = 60;
    std::vector<std::promise<fhir::result<stored_version>>> answers(threads * reads_each);
    std::vector<std::string> asked(answers.size());
    std::vector<std::thread> readers;
    for (int t = 0; t < threads; ++t)
        readers.emplace_back([&, t] {
            for (int k = 0; k < reads_each; ++k) {
                const std::size_t slot = static_cast<std::size_t>(t * reads_each + k);
                // Every sixth read asks for an item that was never made.
                asked[slot] = k % 6 == 5 ? "never" + std::to_string(t) : "o" + std::to_string((t * 7 + k) % items);
                db->read_current_async("Observation", asked[slot], [&answers, slot](fhir::result<stored_version> found) {
                    answers[slot].set_value(std::move(found));
                });
            }
        });
    for (auto& reader : readers)
        reader.join();
    for (std::size_t slot = 0; slot < answers.size(); ++slot) {
        CAPTURE(asked[slot]);
        auto found = answers[slot].get_future().get();
        if (asked[slot].starts_with("never")) {
            REQUIRE_FALSE(found.ok());
            CHECK(found.failure().kind == fhir::category::not_found);
            CHECK(found.failure().issues.at(0).diagnostics == "Observation/" + asked[slot] + " is not known");
            continue;
        }
        REQUIRE(found.ok());
        CHECK(found->type == "Observation");
        CHECK(found->id == asked[slot]);
        if (asked[slot] == "o1") {
            CHECK(found->deleted);
            CHECK(found->version_id == 2);
            continue;
        }
        CHECK_FALSE(found->deleted);
        const int item = std::stoi(asked[slot].substr(1));
        CHECK(found->version_id == (item == 0 ? 2 : 1));
        CHECK(found->json.find("\"id\":\"" + asked[slot] + "\"") != std::string::npos);
        CHECK(found->json.find("\"value\":" + std::to_string(item == 0 ? 999 : 100 + item)) != std::string::npos);
        CHECK(found->citizens == std::vector<std::string>{"9000000009"});
    }
}

TEST_CASE("a read answered later sees every write acknowledged before it was asked") {
    store_fixture db;
    must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009")));
    must_write(*db, observation_request("o", "9000000009", "1"));
    for (int version = 2; version <= 30; ++version) {
        must_write(*db, update_request("Observation", "o", observation_json("9000000009", std::to_string(version))));
        std::promise<fhir::result<stored_version>> answer;
        db->read_current_async("Observation", "o", [&](fhir::result<stored_version> found) { answer.set_value(std::move(found)); });
        auto found = answer.get_future().get();
        REQUIRE(found.ok());
        CHECK(found->version_id == version);
    }
}

TEST_CASE("closing the store answers every read it was still to answer") {
    store_fixture db;
    must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009")));
    std::vector<std::promise<fhir::result<stored_version>>> answers(200);
    for (auto& answer : answers)
        db->read_current_async("Patient", "9000000009", [&answer](fhir::result<stored_version> found) {
            answer.set_value(std::move(found));
        });
    db.close();
    for (auto& answer : answers) {
        auto future = answer.get_future();
        REQUIRE(future.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
        auto found = future.get();
        REQUIRE(found.ok());
        CHECK(found->id == "9000000009");
    }
}

TEST_CASE("data survives closing and reopening the store") {
    store_fixture db;
    const auto first = must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009", "Smith")));
    const auto second = must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009", "Jones")));
    db.reopen();
    auto read = db->read("Patient", "9000000009");
    REQUIRE(read.ok());
    CHECK(read->json == second.version.json);
    CHECK(db->vread("Patient", "9000000009", 1)->json == first.version.json);
    // Invariant 4 holds across a restart: lastUpdated keeps increasing.
    const auto third = must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009", "Brown")));
    CHECK(third.version.version_id == 3);
    CHECK(third.version.last_updated > second.version.last_updated);
}

TEST_CASE("a link to a citizen this server does not hold is invalid, naming the element") {
    store_fixture db;
    auto orphan = db->write(observation_request("obs-1", "9000000017"));
    REQUIRE_FALSE(orphan.ok());
    CHECK(orphan.failure().kind == fhir::category::invalid);
    REQUIRE(orphan.failure().issues.size() == 1);
    CHECK(orphan.failure().issues[0].code == "invalid");
    CHECK(orphan.failure().issues[0].diagnostics == "the reference does not name a citizen held by this server");
    CHECK(orphan.failure().issues[0].expression == "Observation.subject");
    CHECK(db.count("SELECT count(*) FROM resource_versions") == 0);

    SUBCASE("every missing citizen is reported, one issue each") {
        auto request = observation_request("obs-1", "9000000017");
        request.citizens.push_back({"9000000025", "Observation.performer[0]"});
        auto refused = db->write(request);
        REQUIRE_FALSE(refused.ok());
        REQUIRE(refused.failure().issues.size() == 2);
        CHECK(refused.failure().issues[1].expression == "Observation.performer[0]");
    }
    SUBCASE("once the Patient exists the same write succeeds and is linked") {
        must_write(*db, create_request("Patient", "9000000017", patient_json("9000000017")));
        CHECK(must_write(*db, observation_request("obs-1", "9000000017")).created);
        CHECK(db.count("SELECT count(*) FROM " + current_citizen_links + " WHERE type = 'Observation' AND nhs_number = '9000000017'") == 1);
    }
    SUBCASE("a deleted Patient is no longer a citizen to link to") {
        must_write(*db, create_request("Patient", "9000000017", patient_json("9000000017")));
        must_write(*db, remove_request("Patient", "9000000017"));
        CHECK(db->write(observation_request("obs-1", "9000000017")).failure().kind == fhir::category::invalid);
    }
}

TEST_CASE("citizen links belong to the current live version only") {
    store_fixture db;
    must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009")));
    must_write(*db, create_request("Patient", "9000000017", patient_json("9000000017")));
    must_write(*db, observation_request("obs-1", "9000000009"));
    auto moved = observation_request("obs-1", "9000000017");
    moved.kind = write_kind::update;
    must_write(*db, moved);
    CHECK(db.count("SELECT count(*) FROM " + current_citizen_links + " WHERE id = 'obs-1' AND nhs_number = '9000000009'") == 0);
    CHECK(db.count("SELECT count(*) FROM " + current_citizen_links + " WHERE id = 'obs-1' AND nhs_number = '9000000017'") == 1);
    // A citizen's record is its current items: the one the item moved to keeps its Patient, the
    // one it left has none and may go.
    CHECK(db->write(remove_request("Patient", "9000000017")).failure().kind == fhir::category::conflict);
    must_write(*db, remove_request("Patient", "9000000009"));
    must_write(*db, remove_request("Observation", "obs-1"));
    CHECK(db.count("SELECT count(*) FROM " + current_citizen_links + " WHERE type <> 'Patient'") == 0);
}

TEST_CASE("history _since keeps versions made at or after the instant") {
    store_fixture db;
    const auto v1 = must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009", "A")));
    const auto v2 = must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009", "B")));
    const auto other = must_write(*db, create_request("Patient", "9000000017", patient_json("9000000017")));
    const auto v3 = must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009", "C")));

    history_query query = history_of("Patient", "9000000009");
    query.since = v2.version.last_updated;
    auto page = db->history(query);
    REQUIRE(page.ok());
    REQUIRE(page->entries.size() == 2);
    CHECK(page->entries[0].version_id == 3);
    CHECK(page->entries[1].version_id == 2);

    query.id.clear();
    CHECK(history_size(*db, query) == 3); // type level: v2, the other Patient, v3
    query.since = v3.version.last_updated + 1;
    CHECK(history_size(*db, query) == 0);
    query.since = v1.version.last_updated - 1'000'000;
    CHECK(history_size(*db, query) == 4);
    (void)other;
}

TEST_CASE("history _at keeps the versions current at some point in the interval") {
    store_fixture db;
    const auto v1 = must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009", "A")));
    const auto v2 = must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009", "B")));
    const auto v3 = must_write(*db, update_request("Patient", "9000000009", patient_json("9000000009", "C")));
    auto versions_at = [&](timestamp begin, timestamp end) {
        history_query query = history_of("Patient", "9000000009");
        query.at = std::pair{begin, end};
        auto page = db->history(query);
        REQUIRE(page.ok());
        std::vector<std::int64_t> found;
        for (const auto& entry : page->entries)
            found.push_back(entry.version_id);
        return found;
    };
    const timestamp t1 = v1.version.last_updated, t2 = v2.version.last_updated, t3 = v3.version.last_updated;
    CHECK(versions_at(t2, t2 + 1) == std::vector<std::int64_t>{2});
    CHECK(versions_at(t1, t3) == std::vector<std::int64_t>{2, 1});
    CHECK(versions_at(t1 - 10, t1) == std::vector<std::int64_t>{});
    CHECK(versions_at(t3 + 5, t3 + 10) == std::vector<std::int64_t>{3});
    CHECK(versions_at(t1, t3 + 1) == std::vector<std::int64_t>{3, 2, 1});
}

TEST_CASE("a database with a newer schema than this build refuses to open, as a fault" * caregate::testing::sqlite_only()) {
    temp_directory directory;
    sqlite_options options;
    options.path = (directory.path() / "caregate.db").string();
    REQUIRE(sqlite_store::open(options).ok());
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(options.path.c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "PRAGMA user_version = 999", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close_v2(raw);

    auto refused = sqlite_store::open(options);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().kind == fhir::category::fault);
    CHECK(refused.failure().issues.at(0).diagnostics.find("newer") != std::string::npos);
}

TEST_CASE("a locked database makes a write fail as busy, and the write changes nothing") {
    sqlite_options options;
    options.busy_timeout = std::chrono::milliseconds(50);
    store_fixture db(options);
    {
        write_lock lock(db.database);
        auto refused = db->write(create_request("Patient", "9000000009", patient_json("9000000009")));
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.failure().kind == fhir::category::busy);
    }
    CHECK(db->read("Patient", "9000000009").failure().kind == fhir::category::not_found);
    CHECK(must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009"))).created);
}

TEST_CASE("version rows cannot be changed or deleted, even by SQL") {
    store_fixture db;
    must_write(*db, create_request("Patient", "9000000009", patient_json("9000000009")));
    db.close();
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.options.path.c_str(), &raw) == SQLITE_OK);
    CHECK(sqlite3_exec(raw, "UPDATE resource_versions SET json = 'x'", nullptr, nullptr, nullptr) != SQLITE_OK);
    CHECK(sqlite3_exec(raw, "DELETE FROM resource_versions", nullptr, nullptr, nullptr) != SQLITE_OK);
    sqlite3_close_v2(raw);
}

TEST_CASE("format_instant writes FHIR instants with microseconds in UTC") {
    CHECK(store::format_instant(0) == "1970-01-01T00:00:00.000000Z");
    CHECK(store::format_instant(1700000000123456) == "2023-11-14T22:13:20.123456Z");
    CHECK(store::format_instant(1795460523123456) == "2026-11-23T19:02:03.123456Z");
    CHECK(store::format_instant(951782400000001) == "2000-02-29T00:00:00.000001Z");
    CHECK(store::format_instant(253402300799999999) == "9999-12-31T23:59:59.999999Z");
    CHECK(store::format_instant(-1) == "1969-12-31T23:59:59.999999Z");
}
