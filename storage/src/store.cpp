// The versioned resource store on SQLite: one writer thread that commits queued writes in groups,
// readers on pooled read-only connections, history in stable pages. See store.hpp for the contract;
// the SQL text lives here and in schema.cpp, and never includes a client's string.
//
// Design notes: the invariants this file keeps (tests/storage/store_test.cpp proves them)
//
//  1. One current version per type/id: `resources` has one row per (type, id), pointing (seq) at
//     the version now current, live or a deletion marker.
//  2. Version rows are never changed or deleted: `resource_versions` is append-only (and triggers
//     in the schema refuse UPDATE and DELETE on it), so a vread or a history page always finds the
//     bytes it found before.
//  3. The versions of a resource are 1, 2, 3, ... without gaps: a new version is always the current
//     one + 1 (a deletion is a version too; a create after a deletion continues the count).
//  4. lastUpdated strictly increases per resource and never decreases across seq: every new version
//     gets max(now, the newest lastUpdated in the database + 1 µs), whatever the clock does. So a
//     `_since` or `_at` bound is also a bound on seq.
//  5. Every citizen_links row belongs to a current, live version: the links of a resource are
//     replaced with each new version and removed with a deletion.
//  6. A write acknowledged is on disk: callbacks run only after COMMIT has returned, with
//     synchronous=FULL (unless a benchmark turned it off).
//  7. A failed write changes nothing: each write runs inside its own SAVEPOINT and is rolled back
//     to it on error, so only that write fails; when the group's transaction cannot commit, no write
//     in the group is acknowledged as a success.
//  8. Every check that depends on the database's state (exists, If-Match, unchanged content, the
//     citizen is held) runs inside the write transaction, so a check and its write cannot race.
//  9. A storage failure is `busy` or `fault`, never a client-error category.
#include "storage/store.hpp"

#include "schema.hpp"
#include "sqlite.hpp"

#include "fhir_model/resource.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace caregate::storage {
namespace {

using detail::connection;
using detail::statement;

const std::string current_version_sql =
    "SELECT r.version_id, r.deleted, v.last_updated, v.json, v.method "
    "FROM resources r JOIN resource_versions v ON v.seq = r.seq WHERE r.type = ?1 AND r.id = ?2";
const std::string version_sql =
    "SELECT version_id, deleted, last_updated, json, method "
    "FROM resource_versions WHERE type = ?1 AND id = ?2 AND version_id = ?3";
const std::string newest_timestamp_sql = "SELECT coalesce(max(last_updated), 0) FROM resource_versions";
const std::string live_patient_sql =
    "SELECT 1 FROM resources WHERE type = 'Patient' AND id = ?1 AND deleted = 0";
const std::string insert_version_sql =
    "INSERT INTO resource_versions (type, id, version_id, last_updated, method, deleted, json) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const std::string point_current_sql =
    "INSERT INTO resources (type, id, version_id, seq, deleted) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (type, id) DO UPDATE SET version_id = excluded.version_id, seq = excluded.seq, "
    "deleted = excluded.deleted";
const std::string remove_links_sql = "DELETE FROM citizen_links WHERE type = ?1 AND id = ?2";
const std::string insert_link_sql =
    "INSERT OR IGNORE INTO citizen_links (type, id, nhs_number) VALUES (?1, ?2, ?3)";

const std::string begin_sql = "BEGIN IMMEDIATE";
const std::string commit_sql = "COMMIT";
const std::string rollback_sql = "ROLLBACK";
const std::string savepoint_sql = "SAVEPOINT write_request";
const std::string rollback_to_savepoint_sql = "ROLLBACK TO write_request";
const std::string release_savepoint_sql = "RELEASE write_request";

timestamp now_microseconds() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::string reference(std::string_view type, std::string_view id) {
    std::string text(type);
    text += '/';
    text += id;
    return text;
}

fhir::error store_fault(std::string diagnostics) {
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

/// Reads a version row selected as (version_id, deleted, last_updated, json, method).
stored_version version_from(const statement& row, std::string_view type, std::string_view id) {
    stored_version version;
    version.type = type;
    version.id = id;
    version.version_id = row.integer(0);
    version.deleted = row.integer(1) != 0;
    version.last_updated = row.integer(2);
    version.json = row.blob(3);
    version.method = row.text(4);
    return version;
}

/// The current version of type/id (live or a deletion marker), or nothing if it never existed.
fhir::result<std::optional<stored_version>> load_current(connection& db, std::string_view type,
                                                         std::string_view id) {
    auto prepared = db.prepare(current_version_sql, "reading a resource");
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    query.bind(1, type).bind(2, id);
    switch (const int rc = query.step()) {
    case SQLITE_ROW:
        return std::optional<stored_version>(version_from(query, type, id));
    case SQLITE_DONE:
        return std::optional<stored_version>();
    default:
        return detail::sqlite_failure(rc, "reading a resource");
    }
}

struct queued_write {
    write_request request;
    write_callback done;
};

} // namespace

struct store::impl {
    explicit impl(const store_options& chosen) : options(chosen) {}
    ~impl();

    const store_options options;

    // Readers: read-only connections, each used by one thread at a time.
    mutable std::mutex readers_mutex;
    mutable std::vector<std::unique_ptr<connection>> idle_readers;

    // The writer: its connection and `newest_timestamp` are touched only by the writer thread
    // (and by open() before the thread starts).
    std::unique_ptr<connection> writer_db;
    timestamp newest_timestamp = 0;
    std::mutex queue_mutex;
    std::condition_variable queue_filled;
    std::deque<queued_write> queue;
    bool stopping = false;
    std::thread writer;

    std::atomic<std::uint64_t> groups{0};
    std::atomic<std::uint64_t> writes{0};
    std::atomic<std::uint64_t> largest_group{0};

    fhir::result<std::unique_ptr<connection>> take_reader() const;
    void give_back_reader(std::unique_ptr<connection> db) const;
    /// Runs `use(connection&)` on a pooled reader and returns the connection to the pool.
    template <class T, class Use>
    fhir::result<T> with_reader(Use&& use) const;

    void run_writer();
    void commit_group(std::vector<queued_write>& group);
    fhir::result<write_outcome> apply_guarded(const write_request& request);
    fhir::result<write_outcome> apply(const write_request& request);
    fhir::status check_citizens(const write_request& request);
    fhir::result<write_outcome> write_version(const write_request& request,
                                              const std::optional<stored_version>& current);
};

store::impl::~impl() {
    {
        std::lock_guard lock(queue_mutex);
        stopping = true;
    }
    queue_filled.notify_all();
    if (writer.joinable())
        writer.join();
    writer_db.reset();
    std::lock_guard lock(readers_mutex);
    idle_readers.clear();
}

// ---- readers ------------------------------------------------------------------------------------

fhir::result<std::unique_ptr<connection>> store::impl::take_reader() const {
    {
        std::lock_guard lock(readers_mutex);
        if (!idle_readers.empty()) {
            auto db = std::move(idle_readers.back());
            idle_readers.pop_back();
            return db;
        }
    }
    // All busy (or none yet): open another outside the lock; opening touches the file system.
    return connection::open(options.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, options.busy_timeout);
}

void store::impl::give_back_reader(std::unique_ptr<connection> db) const {
    if (!db)
        return;
    std::unique_lock lock(readers_mutex);
    if (idle_readers.size() < std::max(1u, options.reader_connections)) {
        idle_readers.push_back(std::move(db));
        return;
    }
    lock.unlock();
    db.reset(); // one beyond the pool's size: close it rather than keep it
}

template <class T, class Use>
fhir::result<T> store::impl::with_reader(Use&& use) const {
    auto taken = take_reader();
    if (!taken)
        return std::move(taken).failure();
    struct give_back {
        const impl& owner;
        std::unique_ptr<connection> db;
        ~give_back() { owner.give_back_reader(std::move(db)); }
    } lease{*this, std::move(*taken)};
    return use(*lease.db);
}

// ---- open, close --------------------------------------------------------------------------------

store::store(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
store::~store() = default;

fhir::result<std::unique_ptr<store>> store::open(const store_options& options) {
    if (sqlite3_threadsafe() == 0)
        return store_fault("SQLite was built without thread support; the store needs it");

    auto state = std::make_unique<impl>(options);
    auto opened = connection::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   options.busy_timeout);
    if (!opened)
        return std::move(opened).failure();
    state->writer_db = std::move(*opened);
    connection& db = *state->writer_db;

    auto journal = db.pragma("PRAGMA journal_mode = WAL");
    if (!journal)
        return std::move(journal).failure();
    if (*journal != "wal")
        return store_fault("the database could not use write-ahead logging (journal mode is '" + *journal +
                           "'); the store needs a file on a local file system");
    if (auto set = db.exec_script(options.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                                  "setting up the connection");
        !set)
        return std::move(set).failure();
    if (auto set = db.exec_script("PRAGMA foreign_keys = ON", "setting up the connection"); !set)
        return std::move(set).failure();

    if (auto migrated = detail::migrate(db); !migrated)
        return std::move(migrated).failure();

    {
        auto prepared = db.prepare(newest_timestamp_sql, "opening the store");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        if (const int rc = query.step(); rc != SQLITE_ROW)
            return detail::sqlite_failure(rc, "opening the store");
        state->newest_timestamp = query.integer(0);
    }

    // Open the first reader now, so a database readers cannot open fails here and not on a request.
    auto reader = state->take_reader();
    if (!reader)
        return std::move(reader).failure();
    state->give_back_reader(std::move(*reader));

    state->writer = std::thread([raw = state.get()] { raw->run_writer(); });
    return std::unique_ptr<store>(new store(std::move(state)));
}

// ---- reads --------------------------------------------------------------------------------------

fhir::result<stored_version> store::read_current(std::string_view type, std::string_view id) const {
    auto found = impl_->with_reader<std::optional<stored_version>>(
        [&](connection& db) { return load_current(db, type, id); });
    if (!found)
        return std::move(found).failure();
    if (!*found)
        return fhir::error::make(fhir::category::not_found, "not-found", reference(type, id) + " is not known");
    return std::move(**found);
}

fhir::result<stored_version> store::read(std::string_view type, std::string_view id) const {
    auto current = read_current(type, id);
    if (current && current->deleted)
        return fhir::error::make(fhir::category::deleted, "deleted", reference(type, id) + " has been deleted");
    return current;
}

fhir::result<stored_version> store::vread(std::string_view type, std::string_view id,
                                          std::int64_t version_id) const {
    auto found = impl_->with_reader<std::optional<stored_version>>(
        [&](connection& db) -> fhir::result<std::optional<stored_version>> {
            auto prepared = db.prepare(version_sql, "reading a version");
            if (!prepared)
                return std::move(prepared).failure();
            statement query(*prepared);
            query.bind(1, type).bind(2, id).bind(3, version_id);
            switch (const int rc = query.step()) {
            case SQLITE_ROW:
                return std::optional<stored_version>(version_from(query, type, id));
            case SQLITE_DONE:
                return std::optional<stored_version>();
            default:
                return detail::sqlite_failure(rc, "reading a version");
            }
        });
    if (!found)
        return std::move(found).failure();
    if (!*found)
        return fhir::error::make(fhir::category::not_found, "not-found",
                                 reference(type, id) + " has no version " + std::to_string(version_id));
    if ((*found)->deleted)
        return fhir::error::make(fhir::category::deleted, "deleted",
                                 "version " + std::to_string(version_id) + " of " + reference(type, id) +
                                     " is a deletion");
    return std::move(**found);
}

fhir::result<history_page> store::history(const history_query& query) const {
    if (!query.id.empty() && query.type.empty())
        return store_fault("the history of one resource needs its type");
    history_page page;
    if (query.count == 0)
        return page;

    // The SQL is assembled from fixed fragments only (one cached statement per shape); values are bound.
    std::string sql = "SELECT v.seq, v.version_id, v.deleted, v.last_updated, v.json, v.method, v.type, v.id "
                      "FROM resource_versions v WHERE 1";
    if (!query.type.empty())
        sql += " AND v.type = :type";
    if (!query.id.empty())
        sql += " AND v.id = :id";
    if (query.before)
        sql += " AND v.seq < :before";
    if (query.since)
        // Invariant 4: the first version at or after `since` bounds seq from below.
        sql += " AND v.last_updated >= :since AND v.seq >= (SELECT s.seq FROM resource_versions s"
               " WHERE s.last_updated >= :since ORDER BY s.last_updated LIMIT 1)";
    if (query.at)
        // Current at some point in [at_begin, at_end): made before at_end, and not replaced by a
        // next version at or before at_begin.
        sql += " AND v.last_updated < :at_end AND v.seq < coalesce((SELECT e.seq FROM resource_versions e"
               " WHERE e.last_updated >= :at_end ORDER BY e.last_updated LIMIT 1), 9223372036854775807)"
               " AND NOT EXISTS (SELECT 1 FROM resource_versions n WHERE n.type = v.type AND n.id = v.id"
               " AND n.version_id = v.version_id + 1 AND n.last_updated <= :at_begin)";
    sql += " ORDER BY v.seq DESC LIMIT :limit";

    struct row {
        std::int64_t seq;
        stored_version version;
    };
    auto rows = impl_->with_reader<std::vector<row>>([&](connection& db) -> fhir::result<std::vector<row>> {
        auto prepared = db.prepare(sql, "reading history");
        if (!prepared)
            return std::move(prepared).failure();
        statement select(*prepared);
        if (!query.type.empty())
            select.bind(":type", query.type);
        if (!query.id.empty())
            select.bind(":id", query.id);
        if (query.before)
            select.bind(":before", *query.before);
        if (query.since)
            select.bind(":since", *query.since);
        if (query.at)
            select.bind(":at_begin", query.at->first).bind(":at_end", query.at->second);
        // One more than asked for: a probe that tells whether there is an older page.
        select.bind(":limit", static_cast<std::int64_t>(query.count) + 1);
        std::vector<row> found;
        int rc;
        while ((rc = select.step()) == SQLITE_ROW) {
            row entry;
            entry.seq = select.integer(0);
            entry.version.version_id = select.integer(1);
            entry.version.deleted = select.integer(2) != 0;
            entry.version.last_updated = select.integer(3);
            entry.version.json = select.blob(4);
            entry.version.method = select.text(5);
            entry.version.type = select.text(6);
            entry.version.id = select.text(7);
            found.push_back(std::move(entry));
        }
        if (rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "reading history");
        return found;
    });
    if (!rows)
        return std::move(rows).failure();

    const bool more = rows->size() > query.count;
    if (more)
        rows->resize(query.count);
    for (auto& entry : *rows)
        page.entries.push_back(std::move(entry.version));
    if (more)
        page.next = rows->back().seq;
    return page;
}

// ---- writes -------------------------------------------------------------------------------------

void store::submit(write_request request, write_callback done) {
    {
        std::lock_guard lock(impl_->queue_mutex);
        if (!impl_->stopping) {
            impl_->queue.push_back(queued_write{std::move(request), std::move(done)});
            impl_->queue_filled.notify_one();
            return;
        }
    }
    done(fhir::error::make(fhir::category::busy, "transient", "storage temporarily unavailable: the store is closing"));
}

fhir::result<write_outcome> store::write(write_request request) {
    if (std::this_thread::get_id() == impl_->writer.get_id())
        // From a write callback: the writer would wait for itself.
        return store_fault("store::write called on the writer thread; use submit from a write callback");
    std::promise<fhir::result<write_outcome>> finished;
    auto outcome = finished.get_future();
    submit(std::move(request), [&finished](fhir::result<write_outcome> result) { finished.set_value(std::move(result)); });
    return outcome.get();
}

store_statistics store::statistics() const {
    store_statistics counts;
    counts.groups = impl_->groups.load();
    counts.writes = impl_->writes.load();
    counts.largest_group = impl_->largest_group.load();
    return counts;
}

void store::impl::run_writer() {
    const std::size_t group_limit = std::max(1u, options.max_group_size);
    for (;;) {
        std::vector<queued_write> group;
        {
            std::unique_lock lock(queue_mutex);
            queue_filled.wait(lock, [this] { return stopping || !queue.empty(); });
            if (queue.empty())
                return; // stopping, and everything queued has been written
            const std::size_t taken = std::min(queue.size(), group_limit);
            group.reserve(taken);
            for (std::size_t i = 0; i < taken; ++i) {
                group.push_back(std::move(queue.front()));
                queue.pop_front();
            }
        }
        commit_group(group);
    }
}

void store::impl::commit_group(std::vector<queued_write>& group) {
    ++groups;
    writes += group.size();
    for (auto seen = largest_group.load(); group.size() > seen && !largest_group.compare_exchange_weak(seen, group.size());) {
    }

    connection& db = *writer_db;
    std::vector<std::optional<fhir::result<write_outcome>>> results(group.size());
    // Invariant 7: once the transaction as a whole is lost, no write in it is acknowledged.
    auto fail_all = [&](const fhir::error& failure) {
        if (!sqlite3_get_autocommit(db.handle()))
            db.run(rollback_sql, "rolling back a write transaction");
        for (auto& result : results)
            result.emplace(failure);
    };
    auto deliver = [&] {
        for (std::size_t i = 0; i < group.size(); ++i) {
            try {
                group[i].done(std::move(*results[i]));
            } catch (...) {
                // A callback's failure is its own; the writer must go on serving the others.
            }
        }
    };

    if (auto begun = db.run(begin_sql, "starting a write transaction"); !begun) {
        fail_all(begun.failure());
        return deliver();
    }
    for (std::size_t i = 0; i < group.size(); ++i) {
        if (auto saved = db.run(savepoint_sql, "starting a write"); !saved) {
            fail_all(saved.failure());
            return deliver();
        }
        auto outcome = apply_guarded(group[i].request);
        if (sqlite3_get_autocommit(db.handle())) {
            // SQLite rolled the whole transaction back (an I/O error, a full disk): the earlier
            // writes in the group are gone too.
            fail_all(!outcome.ok() && (outcome.failure().kind == fhir::category::busy ||
                                       outcome.failure().kind == fhir::category::fault)
                         ? outcome.failure()
                         : store_fault("storage failure: the write transaction was rolled back"));
            return deliver();
        }
        if (!outcome) {
            auto undone = db.run(rollback_to_savepoint_sql, "undoing a failed write");
            if (undone)
                undone = db.run(release_savepoint_sql, "undoing a failed write");
            if (!undone) {
                fail_all(undone.failure());
                return deliver();
            }
        } else if (auto released = db.run(release_savepoint_sql, "finishing a write"); !released) {
            fail_all(released.failure());
            return deliver();
        }
        results[i].emplace(std::move(outcome));
    }
    if (auto committed = db.run(commit_sql, "committing a write transaction"); !committed) {
        fail_all(committed.failure());
        return deliver();
    }
    deliver(); // invariant 6: only now, after COMMIT, is anything acknowledged
}

fhir::result<write_outcome> store::impl::apply_guarded(const write_request& request) {
    try {
        return apply(request);
    } catch (const std::exception&) {
        // A bug (e.g. content that is not canonical JSON). The message could quote content, so
        // it is not passed on; the savepoint rollback keeps the database as it was.
        return store_fault("a write failed inside the store (" + reference(request.type, request.id) + ")");
    }
}

fhir::result<write_outcome> store::impl::apply(const write_request& request) {
    if (request.type.empty() || request.id.empty())
        return store_fault("a write needs a type and an id");
    if (request.kind != write_kind::remove && request.content.empty())
        return store_fault("a create or update needs content");

    auto loaded = load_current(*writer_db, request.type, request.id);
    if (!loaded)
        return std::move(loaded).failure();
    const std::optional<stored_version>& current = *loaded;
    const bool live = current && !current->deleted;
    const std::string target = reference(request.type, request.id);

    if (request.kind == write_kind::remove) {
        if (!live) {
            write_outcome outcome;
            outcome.removed_nothing = true;
            if (current) {
                outcome.version = *current;
            } else {
                outcome.version.type = request.type;
                outcome.version.id = request.id;
            }
            return outcome;
        }
    } else if (request.kind == write_kind::create && live && request.fail_if_exists) {
        return fhir::error::make(fhir::category::conflict, "duplicate", target + " already exists");
    }

    if (request.if_match && (!live || current->version_id != *request.if_match))
        return fhir::error::make(
            fhir::category::precondition_failed, "conflict",
            live ? target + " is at version " + std::to_string(current->version_id) + ", not " +
                       std::to_string(*request.if_match)
                 : target + " has no current version to match version " + std::to_string(*request.if_match));

    if (request.kind != write_kind::remove) {
        if (auto held = check_citizens(request); !held)
            return std::move(held).failure();
        if (live) {
            // Unchanged content: stamped as the current version was, the bytes would be the same.
            // Comparing bytes, not hashes, so a collision cannot lose an update.
            const std::string restamped = fhir::stamp_resource(request.content, request.id, current->version_id,
                                                               store::format_instant(current->last_updated));
            if (restamped == current->json) {
                write_outcome outcome;
                outcome.unchanged = true;
                outcome.version = *current;
                return outcome;
            }
        }
    }
    return write_version(request, current);
}

fhir::status store::impl::check_citizens(const write_request& request) {
    std::vector<fhir::issue> missing;
    for (const auto& link : request.citizens) {
        if (request.type == "Patient" && link.nhs_number == request.id)
            continue; // a Patient naming itself is held once this very write is done
        auto prepared = writer_db->prepare(live_patient_sql, "checking a citizen");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, link.nhs_number);
        const int rc = query.step();
        if (rc == SQLITE_DONE)
            missing.push_back(fhir::issue{"error", "invalid", "the reference does not name a citizen held by this server",
                                          link.expression});
        else if (rc != SQLITE_ROW)
            return detail::sqlite_failure(rc, "checking a citizen");
    }
    if (!missing.empty())
        return fhir::error{fhir::category::invalid, std::move(missing)};
    return {};
}

fhir::result<write_outcome> store::impl::write_version(const write_request& request,
                                                       const std::optional<stored_version>& current) {
    const bool deletion = request.kind == write_kind::remove;
    stored_version version;
    version.type = request.type;
    version.id = request.id;
    version.version_id = current ? current->version_id + 1 : 1; // invariant 3
    // Invariant 4. Taken even if this write is later rolled back: a gap in time is harmless.
    newest_timestamp = version.last_updated = std::max(now_microseconds(), newest_timestamp + 1);
    version.deleted = deletion;
    version.method = deletion ? "DELETE" : request.kind == write_kind::create ? "POST" : "PUT";
    if (!deletion)
        version.json = fhir::stamp_resource(request.content, request.id, version.version_id,
                                            store::format_instant(version.last_updated));

    connection& db = *writer_db;
    {
        auto prepared = db.prepare(insert_version_sql, "writing a version");
        if (!prepared)
            return std::move(prepared).failure();
        statement insert(*prepared);
        insert.bind(1, version.type).bind(2, version.id).bind(3, version.version_id).bind(4, version.last_updated);
        insert.bind(5, version.method).bind(6, std::int64_t{deletion}).bind_blob(7, version.json);
        if (const int rc = insert.step(); rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "writing a version");
    }
    const std::int64_t seq = sqlite3_last_insert_rowid(db.handle());
    {
        auto prepared = db.prepare(point_current_sql, "writing a version");
        if (!prepared)
            return std::move(prepared).failure();
        statement point(*prepared);
        point.bind(1, version.type).bind(2, version.id).bind(3, version.version_id).bind(4, seq);
        point.bind(5, std::int64_t{deletion});
        if (const int rc = point.step(); rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "writing a version");
    }
    { // invariant 5: the links are the new version's, or none for a deletion
        auto prepared = db.prepare(remove_links_sql, "linking citizens");
        if (!prepared)
            return std::move(prepared).failure();
        statement remove(*prepared);
        remove.bind(1, version.type).bind(2, version.id);
        if (const int rc = remove.step(); rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "linking citizens");
    }
    if (!deletion) {
        for (const auto& link : request.citizens) {
            auto prepared = db.prepare(insert_link_sql, "linking citizens");
            if (!prepared)
                return std::move(prepared).failure();
            statement insert(*prepared);
            insert.bind(1, version.type).bind(2, version.id).bind(3, link.nhs_number);
            if (const int rc = insert.step(); rc != SQLITE_DONE)
                return detail::sqlite_failure(rc, "linking citizens");
        }
    }

    write_outcome outcome;
    outcome.created = !current || current->deleted;
    outcome.version = std::move(version);
    return outcome;
}

// ---- instants -----------------------------------------------------------------------------------

std::string store::format_instant(timestamp t) {
    using namespace std::chrono;
    const sys_time<microseconds> instant{microseconds{t}};
    const sys_days day = floor<days>(instant);
    const year_month_day date{day};
    const hh_mm_ss<microseconds> time{instant - day};
    char text[40];
    std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                  static_cast<int>(time.seconds().count()), static_cast<long long>(time.subseconds().count()));
    return text;
}

} // namespace caregate::storage
