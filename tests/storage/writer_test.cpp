// Tests for the store's writer (storage/src/relational/writer.cpp): group commit under concurrent submitters,
// isolation of a failing write inside a group, stable history pages while writes go on, draining at
// close. Each on a real SQLite file.
#include "store_fixture.hpp"

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

/// Collects the results of submitted writes, in submission order, and waits for all of them.
class results {
public:
    write_callback slot() {
        std::lock_guard lock(mutex_);
        const std::size_t index = outcomes_.size();
        outcomes_.emplace_back();
        return [this, index](fhir::result<write_outcome> outcome) {
            std::lock_guard lock(mutex_);
            outcomes_[index].emplace(std::move(outcome));
            ++finished_;
            done_.notify_all();
        };
    }
    /// Waits for every slot handed out; returns the outcomes.
    std::vector<fhir::result<write_outcome>> wait() {
        std::unique_lock lock(mutex_);
        done_.wait(lock, [this] { return finished_ == outcomes_.size(); });
        std::vector<fhir::result<write_outcome>> all;
        for (auto& outcome : outcomes_)
            all.push_back(std::move(*outcome));
        return all;
    }

private:
    std::mutex mutex_;
    std::condition_variable done_;
    std::vector<std::optional<fhir::result<write_outcome>>> outcomes_;
    std::size_t finished_ = 0;
};

std::string basic_json(const std::string& text) {
    return R"({"resourceType":"Basic","code":{"text":")" + text + R"("}})";
}

/// Submits `blocker` while the database is locked from outside, waits until the writer has taken
/// it (and is waiting for the lock), then submits `group`: all of `group` is queued together and so
/// committed in one transaction once the lock goes.
std::vector<fhir::result<write_outcome>> write_as_one_group(store_fixture& db, std::vector<write_request> group) {
    results collected;
    {
        write_lock lock(db.database);
        db->submit(create_request("Basic", "blocker", basic_json("blocker")), collected.slot());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        for (auto& request : group)
            db->submit(std::move(request), collected.slot());
    }
    auto all = collected.wait();
    REQUIRE(all.at(0).ok());
    all.erase(all.begin());
    return all;
}

} // namespace

TEST_CASE("group commit: 16 threads x 50 concurrent submits all succeed with gapless versions") {
    store_fixture db;
    constexpr int threads = 16;
    constexpr int writes_per_thread = 50;
    const auto before = db->statistics();
    results collected;
    std::vector<std::thread> submitters;
    for (int t = 0; t < threads; ++t)
        submitters.emplace_back([&, t] {
            for (int i = 0; i < writes_per_thread; ++i) {
                // Half to the thread's own resource, half to one that every thread updates.
                const std::string id = i % 2 == 0 ? "own-" + std::to_string(t) : "shared";
                auto request = update_request("Basic", id, basic_json(std::to_string(t) + "-" + std::to_string(i)));
                db->submit(std::move(request), collected.slot());
            }
        });
    for (auto& submitter : submitters)
        submitter.join();
    const auto all = collected.wait();
    REQUIRE(all.size() == threads * writes_per_thread);
    for (const auto& outcome : all)
        REQUIRE(outcome.ok());

    std::map<std::string, std::vector<stored_version>> by_resource;
    history_query query = history_of("Basic");
    query.count = 10000;
    auto page = db->history(query);
    REQUIRE(page.ok());
    for (auto& entry : page->entries)
        by_resource[entry.id].push_back(entry);
    CHECK(by_resource.size() == threads + 1);
    CHECK(by_resource["shared"].size() == threads * writes_per_thread / 2);
    for (const auto& [id, versions] : by_resource) {
        // Newest first: versions n, n-1, ..., 1 with lastUpdated strictly decreasing.
        for (std::size_t i = 0; i < versions.size(); ++i) {
            CHECK(versions[i].version_id == static_cast<std::int64_t>(versions.size() - i));
            if (i > 0)
                CHECK(versions[i].last_updated < versions[i - 1].last_updated);
        }
    }
    const auto after = db->statistics();
    CHECK(after.writes - before.writes == threads * writes_per_thread);
    CHECK(after.groups - before.groups < threads * writes_per_thread);
    CHECK(after.largest_group > 1);
}

TEST_CASE("statistics: jobs waiting for the writer are queued; each commit is counted once with its time, a failed one not") {
    sqlite_options options;
    options.busy_timeout = std::chrono::milliseconds(400);
    store_fixture db(options);
    const auto before = db->statistics();
    CHECK(before.queued_jobs == 0);

    results collected;
    const auto locked_at = std::chrono::steady_clock::now();
    {
        write_lock lock(db.database);
        // The writer takes the first write and waits for the lock; the other two wait in the queue.
        db->submit(create_request("Basic", "first", basic_json("first")), collected.slot());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        db->submit(create_request("Basic", "second", basic_json("second")), collected.slot());
        db->submit(create_request("Basic", "third", basic_json("third")), collected.slot());
        CHECK(db->statistics().queued_jobs == 2);
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
    } // the lock goes 250 ms after the first write was taken, within its busy timeout
    const auto all = collected.wait();
    const auto waited = std::chrono::steady_clock::now() - locked_at;
    REQUIRE(all.size() == 3);
    for (const auto& outcome : all)
        CHECK(outcome.ok());

    const auto after = db->statistics();
    CHECK(after.queued_jobs == 0);
    CHECK(after.commits - before.commits == after.groups - before.groups); // none failed
    CHECK(after.commits - before.commits >= 1);
    // The first group waited for the lock: its time holds the wait, and lands in the bucket for it.
    CHECK(after.commit_micros - before.commit_micros >= 150'000);
    CHECK(after.commit_micros - before.commit_micros <=
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(waited).count()));
    std::uint64_t within = 0, slow = 0;
    for (std::size_t i = 0; i < commit_bucket_bounds_us.size(); ++i) {
        within += after.commits_within[i] - before.commits_within[i];
        if (commit_bucket_bounds_us[i] >= 100'000)
            slow += after.commits_within[i] - before.commits_within[i];
    }
    CHECK(within == after.commits - before.commits); // none took longer than the last bound
    CHECK(slow >= 1);

    // A group that cannot commit (the lock held past the busy timeout) is a group, not a commit.
    {
        write_lock lock(db.database);
        CHECK_FALSE(db->write(create_request("Basic", "refused", basic_json("refused"))).ok());
    }
    const auto refused = db->statistics();
    CHECK(refused.groups == after.groups + 1);
    CHECK(refused.commits == after.commits);
}

TEST_CASE("a failing write inside a group fails alone; the others in the group commit") {
    store_fixture db;
    auto taken = create_request("Basic", "taken", basic_json("first"));
    REQUIRE(db->write(taken).ok());
    const auto before = db->statistics();

    auto duplicate = create_request("Basic", "taken", basic_json("second"));
    duplicate.fail_if_exists = true;
    std::vector<write_request> group;
    group.push_back(create_request("Basic", "a", basic_json("a")));
    group.push_back(duplicate);
    group.push_back(observation_request("obs-1", "9000000017")); // no such citizen
    group.push_back(create_request("Basic", "b", basic_json("b")));
    const auto outcomes = write_as_one_group(db, std::move(group));

    REQUIRE(outcomes.size() == 4);
    CHECK(outcomes[0].ok());
    REQUIRE_FALSE(outcomes[1].ok());
    CHECK(outcomes[1].failure().kind == fhir::category::conflict);
    REQUIRE_FALSE(outcomes[2].ok());
    CHECK(outcomes[2].failure().kind == fhir::category::invalid);
    CHECK(outcomes[3].ok());
    CHECK(db->read("Basic", "a").ok());
    CHECK(db->read("Basic", "b").ok());
    CHECK(db->read("Basic", "taken")->json.find("first") != std::string::npos);
    CHECK(db->read("Observation", "obs-1").failure().kind == fhir::category::not_found);

    const auto after = db->statistics();
    CHECK(after.groups - before.groups <= 2); // the blocker's group, then (at most) this one
    CHECK(after.largest_group >= 4);
}

TEST_CASE("a Patient created earlier in a group is a citizen for later writes in the same group") {
    store_fixture db;
    std::vector<write_request> group;
    group.push_back(create_request("Patient", "9000000017", patient_json("9000000017")));
    group.push_back(observation_request("obs-1", "9000000017"));
    const auto outcomes = write_as_one_group(db, std::move(group));
    REQUIRE(outcomes.size() == 2);
    CHECK(outcomes[0].ok());
    CHECK(outcomes[1].ok());
    CHECK(db->read("Observation", "obs-1").ok());
}

TEST_CASE("history pages (count 10) yield each of 95 versions exactly once while writes go on") {
    store_fixture db;
    for (int i = 0; i < 95; ++i)
        REQUIRE(db->write(update_request("Basic", "paged-" + std::to_string(i % 7), basic_json(std::to_string(i)))).ok());

    std::atomic<bool> write_failed{false};
    // Stopped and joined as the test ends, however it ends; no REQUIRE off the test's own thread.
    std::jthread writer([&](std::stop_token stop) {
        for (int i = 0; !stop.stop_requested(); ++i)
            if (!db->write(create_request("Basic", "new-" + std::to_string(i), basic_json("new"))).ok()) {
                write_failed = true;
                return;
            }
    });

    std::multiset<std::pair<std::string, std::int64_t>> seen;
    history_query query = history_of("Basic");
    query.count = 10;
    int pages = 0;
    for (;;) {
        auto page = db->history(query);
        REQUIRE(page.ok());
        CHECK(page->entries.size() <= 10);
        for (const auto& entry : page->entries)
            seen.insert({entry.id, entry.version_id});
        ++pages;
        std::this_thread::sleep_for(std::chrono::milliseconds(2)); // let the writer get ahead
        if (!page->next)
            break;
        query.before = page->next;
    }
    writer.request_stop();
    writer.join();
    CHECK_FALSE(write_failed);

    for (int resource = 0; resource < 7; ++resource) {
        const std::string id = "paged-" + std::to_string(resource);
        const std::int64_t versions = (95 - resource + 6) / 7;
        for (std::int64_t v = 1; v <= versions; ++v)
            CHECK(seen.count({id, v}) == 1);
    }
    for (const auto& entry : seen)
        CHECK(seen.count(entry) == 1);
    CHECK(pages >= 10);
}

TEST_CASE("closing the store finishes every queued write first") {
    store_fixture db;
    results collected;
    for (int i = 0; i < 200; ++i)
        db->submit(create_request("Basic", "queued-" + std::to_string(i), basic_json("q")), collected.slot());
    db.close();
    for (const auto& outcome : collected.wait())
        CHECK(outcome.ok());
    db.reopen();
    history_query query = history_of("Basic");
    query.count = 1000;
    CHECK(db->history(query)->entries.size() == 200);
}

TEST_CASE("store::write from a write callback fails as a fault instead of waiting for itself") {
    store_fixture db;
    results collected;
    std::optional<fhir::category> nested_failure;
    auto first = collected.slot();
    db->submit(create_request("Basic", "outer", basic_json("outer")), [&](fhir::result<write_outcome> outcome) {
        auto nested = db->write(create_request("Basic", "inner", basic_json("inner")));
        if (!nested.ok())
            nested_failure = nested.failure().kind;
        first(std::move(outcome));
    });
    CHECK(collected.wait().at(0).ok());
    CHECK(nested_failure == fhir::category::fault);
}

TEST_CASE("the checkpointer thread copies the log back while writes go on, and every write stays readable" * caregate::testing::sqlite_only()) {
    sqlite_options small_log;
    small_log.checkpoint_frames = 8; // a checkpoint every few commits, a restart of the log past 128 frames
    store_fixture db(small_log);
    auto write_some = [&](int from, int to) {
        for (int i = from; i < to; ++i)
            REQUIRE(db->write(create_request("Basic", "basic-" + std::to_string(i), basic_json("note " + std::to_string(i)))).ok());
    };
    const std::filesystem::path wal = db.options.path + "-wal";
    write_some(0, 100);
    const auto early = std::filesystem::file_size(wal);
    write_some(100, 400);
    CHECK(db->statistics().checkpoints > 0);
    // Copied back and started over, the log stays the size it had, instead of growing with every
    // commit (a log that is never started over holds every page of every commit since the last time).
    INFO("the log: " << early << " bytes after 100 writes, " << std::filesystem::file_size(wal) << " after 400");
    CHECK(std::filesystem::file_size(wal) <= early + 128 * 4120);
    db.reopen();
    for (int i = 0; i < 400; ++i)
        CHECK(db->read("Basic", "basic-" + std::to_string(i)).ok());
    CHECK(db.rows("PRAGMA integrity_check") == std::vector<std::vector<std::string>>{{"ok"}});
}

TEST_CASE("closing the store copies the log into the database and removes it, after reads too" * caregate::testing::sqlite_only()) {
    store_fixture db;
    REQUIRE(db->write(create_request("Basic", "basic-1", basic_json("a note"))).ok());
    REQUIRE(db->read("Basic", "basic-1").ok()); // a pooled reader, open until the store closes
    const std::filesystem::path wal = db.options.path + "-wal";
    REQUIRE(std::filesystem::exists(wal));
    db.close();
    CHECK_FALSE(std::filesystem::exists(wal));
    CHECK(db.rows("SELECT count(*) FROM resources") == std::vector<std::vector<std::string>>{{"1"}});
}

// write_request::id_is_new: the writer reads no current version for such a create (so that a
// Bundle's INSERTs can travel together on PostgreSQL); an id that is held after all is refused by the
// resources' key, and the transaction it is in leaves nothing behind.
TEST_CASE("a create whose id is said to be new but is held fails on the key, and its transaction leaves nothing") {
    store_fixture db;
    REQUIRE(db->write(create_request("Basic", "held", basic_json("before"))).ok());
    std::vector<write_request> writes;
    for (const char* id : {"new-1", "new-2", "held"}) {
        auto write = create_request("Basic", id, basic_json("in the transaction"));
        write.id_is_new = true;
        writes.push_back(std::move(write));
    }
    const auto result = run_transaction(*db, std::move(writes));
    REQUIRE(std::holds_alternative<transaction_failure>(result));
    // The server's own fault (an id it made clashed), which no entry of the request caused.
    CHECK(std::get<transaction_failure>(result).index == SIZE_MAX);
    CHECK(std::get<transaction_failure>(result).failure.kind == fhir::category::fault);
    CHECK(db.count("SELECT count(*) FROM resources WHERE type = 'Basic'") == 1);
    CHECK(db.count("SELECT count(*) FROM resource_versions WHERE type = 'Basic'") == 1);
    auto held = db->read("Basic", "held");
    REQUIRE(held.ok());
    CHECK(held->version_id == 1);
    CHECK(held->json.find("before") != std::string::npos);
    // The same creates, the held one left out, all stand.
    std::vector<write_request> again;
    for (const char* id : {"new-1", "new-2"}) {
        auto write = create_request("Basic", id, basic_json("in the transaction"));
        write.id_is_new = true;
        again.push_back(std::move(write));
    }
    CHECK(std::holds_alternative<std::vector<write_outcome>>(run_transaction(*db, std::move(again))));
    CHECK(db.count("SELECT count(*) FROM resources WHERE type = 'Basic'") == 3);
}

// PostgreSQL's migration 5: the writer's connection sends a job's INSERTs batched per table, so a
// link can reach the server before the resource row it names; every foreign key waits for COMMIT.
TEST_CASE("on PostgreSQL every foreign key is checked at commit" * caregate::testing::several_nodes()) {
    store_fixture db;
    CHECK(db.count("SELECT count(*) FROM pg_constraint WHERE contype = 'f'") >= 3); // resources, organisation_links, objections
    CHECK(db.count("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT (condeferrable AND condeferred)") == 0);
}
