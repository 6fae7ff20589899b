// Tests for the audit log in storage/src/relational/audit_log.cpp (every access appends an audit
// record; the log is append-only and hash-chained, so that a removed or altered record is detectable):
// appending with writes and alone, the chain under concurrency, verification, tampering, queries.
#include "store_fixture.hpp"

#include "fhir_model/search_query.hpp"
#include "storage/search.hpp"

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <thread>
#include <variant>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

const std::string nhs = "9000000009";

audit_record record_of(std::string user, std::string action, timestamp time = 1'000, std::string nhs_number = nhs) {
    audit_record record;
    record.time = time;
    record.request_id = "request-" + std::to_string(time);
    record.user = std::move(user);
    record.role = "R8000";
    record.organisation = "A81001";
    record.purpose = "TREAT";
    record.nhs_number = std::move(nhs_number);
    record.resource_type = "Patient";
    record.resource_ids = nhs;
    record.action = std::move(action);
    record.outcome = "success";
    return record;
}

fhir::status append(store& db, std::vector<audit_record> records) {
    std::promise<fhir::status> appended;
    db.append_audit(std::move(records), [&](fhir::status done) { appended.set_value(std::move(done)); });
    return appended.get_future().get();
}

std::vector<audit_record> whole_log(store& db) {
    store::audit_query query;
    query.count = 100000;
    auto page = db.audit(query);
    REQUIRE(page.ok());
    return page->records;
}

store::audit_verification verified(store& db) {
    auto verdict = db.verify_audit();
    REQUIRE(verdict.ok());
    return *verdict;
}

/// A log of `n` records, sequences 1..n.
void fill(store& db, int n) {
    std::vector<audit_record> records;
    for (int i = 1; i <= n; ++i)
        records.push_back(record_of("user-" + std::to_string(i), "read", 1'000 * i));
    REQUIRE(append(db, std::move(records)).ok());
}

} // namespace

TEST_CASE("a write's audit record commits with it, outcome success, and the chain starts at 64 zeros") {
    store_fixture db;
    auto request = create_request("Patient", nhs, patient_json(nhs));
    request.writer = "A81001";
    request.audit = record_of("user-1", "create");
    request.audit->outcome.clear(); // the store decides the outcome
    REQUIRE(db->write(request).ok());

    const auto log = whole_log(*db);
    REQUIRE(log.size() == 1);
    CHECK(log[0].sequence == 1);
    CHECK(log[0].outcome == "success");
    CHECK(log[0].action == "create");
    CHECK(log[0].previous_hash == std::string(64, '0'));
    CHECK(log[0].hash.size() == 64);
    CHECK(log[0].hash == store::audit_hash(log[0]));
    CHECK(verified(*db).records == 1);
}

TEST_CASE("a failed write leaves no data and exactly one audit record, outcome failed, or denied when the owner rule refused it") {
    store_fixture db;
    std::string expected_outcome = "failed";
    SUBCASE("the citizen is not held") {
        auto request = observation_request("obs-1", nhs);
        request.audit = record_of("user-1", "create");
        auto outcome = db->write(request);
        REQUIRE_FALSE(outcome.ok());
        CHECK(outcome.failure().kind == fhir::category::invalid);
        CHECK(db.count("SELECT count(*) FROM resource_versions") == 0);
    }
    SUBCASE("another organisation's resource") {
        auto created = create_request("Patient", nhs, patient_json(nhs));
        created.writer = "A81001";
        REQUIRE(db->write(created).ok());
        auto request = update_request("Patient", nhs, patient_json(nhs, "Jones"));
        request.writer = "RX1";
        request.audit = record_of("user-1", "update");
        auto outcome = db->write(request);
        REQUIRE_FALSE(outcome.ok());
        CHECK(outcome.failure().kind == fhir::category::forbidden);
        CHECK(db.count("SELECT count(*) FROM resource_versions") == 1);
        expected_outcome = "denied"; // a refusal by the access rules, not a failure
    }
    const auto log = whole_log(*db);
    REQUIRE(log.size() == 1);
    CHECK(log[0].outcome == expected_outcome);
    CHECK(verified(*db).records == 1);
}

TEST_CASE("an undone write's audit outcome: denied when the access rules refused it, failed for anything else; in a transaction, denied for the refused write only") {
    store_fixture db;
    auto created = create_request("Patient", nhs, patient_json(nhs));
    created.writer = "A81001";
    REQUIRE(db->write(created).ok());
    auto theirs = [](std::string id) { // another organisation's write, audited
        auto request = observation_request(std::move(id), nhs);
        request.writer = "RX1";
        request.audit = record_of("user-rx1", "create");
        return request;
    };
    auto update_of_patient = [] {
        auto request = update_request("Patient", nhs, patient_json(nhs, "Jones"));
        request.writer = "RX1";
        request.audit = record_of("user-rx1", "update");
        return request;
    };
    auto run = [&](std::vector<write_request> writes) { return run_transaction(*db, std::move(writes)); };
    auto newest = [&](std::size_t n) {
        auto log = whole_log(*db);
        REQUIRE(log.size() >= n);
        log.resize(n);
        return log; // newest first
    };

    SUBCASE("a stale If-Match is a failure") {
        auto request = update_of_patient();
        request.writer = "A81001";
        request.if_match = 7;
        REQUIRE_FALSE(db->write(request).ok());
        CHECK(newest(1)[0].outcome == "failed");
    }
    SUBCASE("a conditional delete matching what the role may not delete is a denial") {
        REQUIRE(db->write(observation_request("obs-1", nhs)).ok());
        auto request = remove_request("Observation", "unused");
        auto parsed = fhir::parse_search_query({"Observation"}, {{"_id", "obs-1"}}, {});
        REQUIRE(parsed.ok());
        auto condition = std::make_shared<write_condition>();
        condition->query = std::move(parsed.value());
        condition->visibility.everything = true;
        condition->removable = {{"Observation", false, {"category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}}};
        request.condition = std::move(condition);
        request.audit = record_of("user-1", "delete");
        auto refused = db->write(request);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.failure().kind == fhir::category::forbidden);
        CHECK(newest(1)[0].outcome == "denied");
    }
    SUBCASE("a transaction with another organisation's update: that write denied, its own create failed") {
        auto result = run({theirs("obs-rx1"), update_of_patient()});
        REQUIRE(std::holds_alternative<transaction_failure>(result));
        CHECK(std::get<transaction_failure>(result).index == 1);
        const auto log = newest(2);
        CHECK(log[0].action == "update");
        CHECK(log[0].outcome == "denied");
        CHECK(log[1].action == "create");
        CHECK(log[1].outcome == "failed");
        CHECK_FALSE(db->read("Observation", "obs-rx1").ok());
    }
    SUBCASE("a transaction failing for another reason: every write failed") {
        auto stale = update_of_patient();
        stale.writer = "A81001";
        stale.if_match = 7;
        auto result = run({theirs("obs-rx1"), stale});
        REQUIRE(std::holds_alternative<transaction_failure>(result));
        for (const auto& record : newest(2))
            CHECK(record.outcome == "failed");
    }
    CHECK(db.count("SELECT count(*) FROM resource_versions WHERE type = 'Patient'") == 1);
    CHECK_FALSE(verified(*db).first_broken);
}

TEST_CASE("queued writes: a failed write's audit record and the others' are chained in queue order") {
    store_fixture db;
    REQUIRE(db->write(create_request("Patient", nhs, patient_json(nhs))).ok());
    std::vector<std::future<fhir::result<write_outcome>>> outcomes;
    {
        write_lock lock(db.database); // the next writes queue up and go into one group
        for (int i = 0; i < 6; ++i) {
            // Odd ones name a citizen the server does not hold, and fail alone.
            auto request = observation_request("obs-" + std::to_string(i), i % 2 ? "9000000017" : nhs);
            request.audit = record_of("user-" + std::to_string(i), "create");
            auto finished = std::make_shared<std::promise<fhir::result<write_outcome>>>();
            outcomes.push_back(finished->get_future());
            db->submit(request, [finished](fhir::result<write_outcome> outcome) { finished->set_value(std::move(outcome)); });
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (std::size_t i = 0; i < outcomes.size(); ++i)
        CHECK(outcomes[i].get().ok() == (i % 2 == 0));
    const auto log = whole_log(*db);
    REQUIRE(log.size() == 6);
    for (std::size_t i = 0; i < 6; ++i) { // newest first
        const auto& record = log[5 - i];
        CHECK(record.sequence == static_cast<std::int64_t>(i + 1));
        CHECK(record.user == "user-" + std::to_string(i));
        CHECK(record.outcome == (i % 2 ? "failed" : "success"));
    }
    CHECK_FALSE(verified(*db).first_broken);
}

TEST_CASE("append_audit from 8 threads at once gives one gapless, verifiable chain keeping each caller's order") {
    store_fixture db;
    constexpr int threads = 8;
    constexpr int batches = 40;
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t)
        callers.emplace_back([&db, t] {
            std::vector<std::future<fhir::status>> done;
            for (int b = 0; b < batches; ++b) {
                auto finished = std::make_shared<std::promise<fhir::status>>();
                done.push_back(finished->get_future());
                std::vector<audit_record> records;
                for (int r = 0; r < 2; ++r)
                    records.push_back(record_of("thread-" + std::to_string(t), std::to_string(2 * b + r)));
                db->append_audit(std::move(records), [finished](fhir::status status) { finished->set_value(status); });
            }
            for (auto& each : done)
                CHECK(each.get().ok());
        });
    for (auto& caller : callers)
        caller.join();

    const auto verdict = verified(*db);
    CHECK(verdict.records == threads * batches * 2);
    CHECK_FALSE(verdict.first_broken);

    auto log = whole_log(*db);
    REQUIRE(log.size() == threads * batches * 2);
    std::map<std::string, int> next_action;
    for (auto it = log.rbegin(); it != log.rend(); ++it) { // oldest first
        CHECK(std::stoi(it->action) == next_action[it->user]);
        ++next_action[it->user];
    }
    CHECK(next_action.size() == threads);
}

TEST_CASE("several nodes appending at once through two stores on one database keep one gapless chain that verifies" *
          caregate::testing::several_nodes()) {
    store_fixture db;
    const auto second = db.another_node();
    store* nodes[] = {db.db.get(), second.get()};
    constexpr int threads = 8;
    constexpr int batches = 25;
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t)
        callers.emplace_back([&nodes, t] {
            store& node = *nodes[t % 2];
            std::vector<std::future<fhir::status>> done;
            for (int b = 0; b < batches; ++b) {
                auto finished = std::make_shared<std::promise<fhir::status>>();
                done.push_back(finished->get_future());
                node.append_audit({record_of("thread-" + std::to_string(t), std::to_string(b))},
                                  [finished](fhir::status status) { finished->set_value(status); });
            }
            for (auto& each : done)
                CHECK(each.get().ok());
        });
    for (auto& caller : callers)
        caller.join();

    for (store* node : nodes) { // either node verifies the one chain both wrote
        const auto verdict = verified(*node);
        CHECK(verdict.records == threads * batches);
        CHECK_FALSE(verdict.first_broken);
    }
    CHECK(db.count("SELECT count(DISTINCT sequence) FROM audit_log") == threads * batches);
    CHECK(db.count("SELECT max(sequence) FROM audit_log") == threads * batches); // gapless from 1
}

// PostgreSQL's migration 3 (the writer's state row): a database written before it (its row dropped,
// its schema set back to version 2) takes the chain's tip and the newest lastUpdated from what it
// holds, and the chain goes on from there, gapless and verifying.
TEST_CASE("a PostgreSQL database of schema 2 gets the writer's state from its log, and its chain goes on" *
          caregate::testing::several_nodes()) {
    store_fixture db;
    fill(*db, 3);
    db.close();
    caregate::testing::postgresql_rows(
        db.database, "DROP TABLE writer_state; DROP INDEX IF EXISTS search_string_by_trigram; UPDATE caregate_schema SET version = 2");
    db.reopen();
    fill(*db, 2);
    const auto verdict = verified(*db);
    CHECK(verdict.records == 5);
    CHECK_FALSE(verdict.first_broken);
    CHECK(db.count("SELECT audit_sequence FROM writer_state") == 5);
}

TEST_CASE("the chain goes on across closing and reopening the store") {
    store_fixture db;
    fill(*db, 3);
    db.reopen();
    fill(*db, 2);
    const auto verdict = verified(*db);
    CHECK(verdict.records == 5);
    CHECK_FALSE(verdict.first_broken);
    auto fourth = db->audit_record_at(4);
    REQUIRE(fourth.ok());
    auto third = db->audit_record_at(3);
    REQUIRE(third.ok());
    CHECK(fourth->previous_hash == third->hash);
}

TEST_CASE("verify_audit passes on an empty log and on a fresh one") {
    store_fixture db;
    auto empty = verified(*db);
    CHECK(empty.records == 0);
    CHECK_FALSE(empty.first_broken);
    fill(*db, 10);
    auto full = verified(*db);
    CHECK(full.records == 10);
    CHECK_FALSE(full.first_broken);
    CHECK(full.problem.empty());
}

TEST_CASE("audit records cannot be changed or deleted through SQL while the triggers stand") {
    store_fixture db;
    fill(*db, 2);
    CHECK(db.execute("UPDATE audit_log SET outcome = 'denied' WHERE sequence = 1") != SQLITE_OK);
    CHECK(db.execute("DELETE FROM audit_log WHERE sequence = 2") != SQLITE_OK);
    CHECK(db.count("SELECT count(*) FROM audit_log") == 2);
}

TEST_CASE("tampering is detected and the first broken record named") {
    store_fixture db;
    fill(*db, 6);
    db.close(); // tamper with the file as someone with access to it could

    SUBCASE("a field altered by hand") {
        REQUIRE(db.execute(db.drop_trigger("audit_log_never_changes", "audit_log") + "UPDATE audit_log SET \"user\" = 'someone-else' WHERE sequence = 3") == SQLITE_OK);
        db.reopen();
        const auto verdict = verified(*db);
        CHECK(verdict.first_broken == 3);
        CHECK(verdict.problem == "its hash does not match its contents");
    }
    SUBCASE("a field altered and the record's hash recomputed: the next record no longer follows it") {
        db.reopen();
        auto third = db->audit_record_at(3);
        REQUIRE(third.ok());
        third->outcome = "denied";
        const std::string forged = store::audit_hash(*third);
        db.close();
        REQUIRE(db.execute(db.drop_trigger("audit_log_never_changes", "audit_log") + "UPDATE audit_log SET outcome = 'denied', hash = '" +
                           forged + "' WHERE sequence = 3") == SQLITE_OK);
        db.reopen();
        const auto verdict = verified(*db);
        CHECK(verdict.first_broken == 4);
        CHECK(verdict.problem == "it does not follow the record before it");
    }
    SUBCASE("a record deleted from the middle") {
        REQUIRE(db.execute(db.drop_trigger("audit_log_never_goes", "audit_log") + "DELETE FROM audit_log WHERE sequence = 3") == SQLITE_OK);
        db.reopen();
        const auto verdict = verified(*db);
        CHECK(verdict.first_broken == 4);
        CHECK(verdict.problem == "a record is missing before it");
    }
    SUBCASE("the first record deleted") {
        REQUIRE(db.execute(db.drop_trigger("audit_log_never_goes", "audit_log") + "DELETE FROM audit_log WHERE sequence = 1") == SQLITE_OK);
        db.reopen();
        const auto verdict = verified(*db);
        CHECK(verdict.first_broken == 2);
        CHECK(verdict.problem == "a record is missing before it");
    }
}

TEST_CASE("audit_hash: every field counts, and moving bytes between fields changes the hash") {
    const audit_record base = record_of("user-1", "read");
    const std::string hash = store::audit_hash(base);
    CHECK(hash.size() == 64);
    CHECK(hash.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(store::audit_hash(base) == hash);

    auto changed = base;
    changed.detail = "_count=10";
    CHECK(store::audit_hash(changed) != hash);
    changed = base;
    changed.sequence = 2;
    CHECK(store::audit_hash(changed) != hash);
    changed = base;
    changed.previous_hash = std::string(64, '1');
    CHECK(store::audit_hash(changed) != hash);

    // "user-1" + "R8000" and "user-1R" + "8000" concatenate to the same bytes.
    changed = base;
    changed.user = "user-1R";
    changed.role = "8000";
    CHECK(store::audit_hash(changed) != hash);
}

TEST_CASE("audit queries: newest first, filtered by citizen, agent, time and purpose, in stable pages") {
    store_fixture db;
    std::vector<audit_record> records;
    for (int i = 1; i <= 12; ++i) {
        auto record = record_of("user-" + std::to_string(i % 3), "read", 1'000 * i, i % 2 ? nhs : "9000000017");
        record.organisation = i <= 6 ? "A81001" : "RX1";
        if (i == 5 || i == 11)
            record.purpose = "ETREAT";
        records.push_back(record);
    }
    REQUIRE(append(*db, records).ok());

    auto sequences = [&](store::audit_query query) {
        std::vector<std::int64_t> found;
        auto page = db->audit(query);
        REQUIRE(page.ok());
        for (const auto& record : page->records)
            found.push_back(record.sequence);
        return found;
    };
    store::audit_query query;
    query.nhs_number = nhs;
    CHECK(sequences(query) == std::vector<std::int64_t>{11, 9, 7, 5, 3, 1});

    query = {};
    query.agent = "RX1";
    CHECK(sequences(query) == std::vector<std::int64_t>{12, 11, 10, 9, 8, 7});
    query.agent = "user-0"; // an agent is a user or an organisation
    CHECK(sequences(query) == std::vector<std::int64_t>{12, 9, 6, 3});

    query = {};
    query.time = std::pair<timestamp, timestamp>{3'000, 6'000}; // [begin, end)
    CHECK(sequences(query) == std::vector<std::int64_t>{5, 4, 3});

    query = {};
    query.purpose = "ETREAT";
    CHECK(sequences(query) == std::vector<std::int64_t>{11, 5});

    // Pages of 5, while more records are appended: each record exactly once, none new.
    query = {};
    query.count = 5;
    std::vector<std::int64_t> seen;
    for (;;) {
        auto page = db->audit(query);
        REQUIRE(page.ok());
        for (const auto& record : page->records)
            seen.push_back(record.sequence);
        REQUIRE(append(*db, {record_of("late", "read")}).ok());
        if (!page->next)
            break;
        query.before = page->next;
    }
    CHECK(seen == std::vector<std::int64_t>{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1});

    auto missing = db->audit_record_at(1000);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.failure().kind == fhir::category::not_found);
}

// sqlite_options::audit_linger: reads' audit records (appended without a callback) gather before the
// writer commits them; here the linger is an hour, so each check below would hang or miss the
// record if anything waited it out.
TEST_CASE("reads' audit records linger, but a read of the log, a write, and closing the store commit them") {
    sqlite_options lingering;
    lingering.audit_linger = std::chrono::hours(1);
    store_fixture db(lingering);

    SUBCASE("a read of the log sees the records of the reads answered before it") {
        db->append_audit({record_of("user-1", "read", 1'000)});
        db->append_audit({record_of("user-2", "read", 2'000)});
        const auto log = whole_log(*db);
        REQUIRE(log.size() == 2);
        CHECK(log[0].user == "user-2");
        auto first = db->audit_record_at(1);
        REQUIRE(first.ok());
        CHECK(first->user == "user-1");
        CHECK(verified(*db).records == 2);
    }
    SUBCASE("a write commits at once, with the lingering records before its own") {
        db->append_audit({record_of("user-1", "read", 1'000)});
        const auto begun = std::chrono::steady_clock::now();
        auto request = create_request("Patient", nhs, patient_json(nhs));
        request.audit = record_of("user-2", "create", 2'000);
        REQUIRE(db->write(std::move(request)).ok());
        CHECK(std::chrono::steady_clock::now() - begun < std::chrono::seconds(30));
        CHECK(db.rows("SELECT \"user\" FROM audit_log ORDER BY sequence") ==
              std::vector<std::vector<std::string>>{{"user-1"}, {"user-2"}});
    }
    SUBCASE("closing the store commits what still lingers") {
        db->append_audit({record_of("user-1", "read", 1'000)});
        db.close();
        CHECK(db.rows("SELECT \"user\", action FROM audit_log") == std::vector<std::vector<std::string>>{{"user-1", "read"}});
    }
}

TEST_CASE("reads' audit records kept out by a locked database are committed once it is free, in order") {
    sqlite_options options;
    options.busy_timeout = std::chrono::milliseconds(50);
    store_fixture db(options);
    {
        write_lock lock(db.database);
        db->append_audit({record_of("user-1", "read", 1'000)});
        db->append_audit({record_of("user-2", "read", 2'000)});
        // The writer tries, fails (busy) and puts them back, more than once while the lock stands.
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    const auto log = whole_log(*db); // commits what waits, now that the database is free
    REQUIRE(log.size() == 2);
    CHECK(log[1].user == "user-1");
    CHECK(log[0].user == "user-2");
    CHECK(verified(*db).records == 2);
}
