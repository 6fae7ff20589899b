// The relational engine's shared parts (storage/relational_store.hpp is its public face, opened on
// SQLite as storage/sqlite_store.hpp and on PostgreSQL as storage/postgresql_store.hpp): the engine's
// state (relational_engine: the reader pool, the writer's queue and connection, the checkpointer, the
// standing cache, the audit chain's tip), the jobs the writer takes, and the helpers more than one
// of its files uses. Its SQL is SQLite's dialect, run over a driver (relational/database.hpp); the
// PostgreSQL driver translates it (postgresql/libpq.hpp). What only SQLite has lives under sqlite/
// (its driver, its schema, checkpointer.cpp and backup.cpp) and what only PostgreSQL has under
// postgresql/ (its driver, its schema, caregate migrate); open.cpp opens the engine on either. The engine's files, one concern each: open.cpp (opening, closing, the reader
// pool), reads.cpp (versions and history; on PostgreSQL, current versions read in batches on threads of
// their own, read_batches.hpp), writer.cpp (the queue and group commit), checkpointer.cpp,
// write_transaction.cpp (the write rules' operations, storage/src/write_rules.hpp, and the version a
// write makes), access_rows.cpp (what a version
// records for access control, and a citizen's standing), audit_log.cpp (the chain), and beside them
// schema.cpp, search_index.cpp, search_plan.cpp, visibility_sql.cpp, erasure.cpp and backup.cpp. SQL
// text lives in these files only and never includes a client's string.
//
// The invariants the engine keeps (tests/storage/store_test.cpp, writer_test.cpp,
// access_test.cpp, audit_test.cpp, search_index_test.cpp and search_snapshot_test.cpp prove them)
//
//  1. One current version per type/id: `resources` has one row per (type, id), pointing (seq) at
//     the version now current, live or a deletion marker.
//  2. Version rows are never changed or deleted: `resource_versions` is append-only (and triggers
//     in the schema refuse UPDATE and DELETE on it), so a vread or a history page always finds the
//     bytes it found before. (Migration 9 rewrote the facets column once, in the form facets now
//     take; never the content.)
//  3. The versions of a resource are 1, 2, 3, ... without gaps: a new version is always the current
//     one + 1 (a deletion is a version too; a create after a deletion continues the count).
//  4. lastUpdated strictly increases per resource and never decreases across seq: every new version
//     gets max(now, the newest lastUpdated in the database + 1 µs), whatever the clock does. So a
//     `_since` or `_at` bound is also a bound on seq.
//  5. A citizen's record (its live items) is the current versions (resources.seq) that are live and
//     name the citizen in version_citizens (17): nothing else records it, so nothing can disagree
//     with the versions. (Until SQLite schema 10 and PostgreSQL schema 7, citizen_links repeated it.)
//  6. A write acknowledged is on disk: callbacks run only after COMMIT has returned, with
//     synchronous=FULL (unless a benchmark turned it off).
//  7. A failed write changes nothing: each write runs inside its own SAVEPOINT and is rolled back
//     to it on error, so only that write fails; when the group's transaction cannot commit, no write
//     in the group is acknowledged as a success.
//  8. Every check that depends on the database's state (exists, If-Match, unchanged content, the
//     citizen is held) runs inside the write transaction, so a check and its write cannot race.
//  9. A storage failure is `busy` or `fault`, never a client-error category.
// 10. Every version carries the owner (the writer's ODS code) set when its resource was created,
//     i.e. written while there was no live version; later versions keep it. A version of a live
//     resource is made only by its owner, or by the writer O of an owner `O/...` (a carer's item,
//     `patient:{nhs}/carer:{nhs}`, which the citizen `patient:{nhs}` may withdraw), or by a writer
//     with `any_owner`, or by a writer with no ODS code at all (tools and tests); checked inside the
//     write transaction (see 8).
// 11. Every organisation_links, objections and opt_outs row belongs to a current, live version:
//     replaced with each new version, removed with a deletion. Objections and opt-outs come
//     from Consents only. An organisation_links row names the organisation that wrote the version
//     (its `writer`), unless the writer has `any_owner` (the ICS's integration services) or no ODS
//     code (tools): a relationship comes from what the related organisation recorded, so a link a
//     version records to anyone else is not kept (a GP's Encounter naming an acute trust as its
//     serviceProvider gives that trust nothing).
// 12. A deletion marker keeps the owner, citizens, labels and facets of the version it deletes, so
//     the history of a deleted resource is guarded as the resource was.
// 13. The audit log only grows: sequences 1, 2, 3, ... without gaps, each record's previous_hash
//     the hash of the record before (64 zeros for the first) and its hash = audit_hash(record). The
//     writer thread is the only appender, so the chain is linear; its in-memory tip goes back with
//     a rolled-back savepoint or transaction, so it always matches the last committed record.
//     Triggers refuse UPDATE and DELETE on audit_log (and on break_glass_grants). audit_tip and
//     audit_hashes_at read committed records only, on a reader, so an anchor taken of the tip
//     (audit_anchor.cpp) never names a record a rollback could take back.
// 14. A write's audit record commits in the same transaction as the write; a failed write still
//     commits its audit record with the group, and nothing of the write. Its outcome is "denied"
//     when the access rules refused it (category forbidden: the owner rule of 10, a role that may
//     not delete what a condition matched), else "failed", as for every other write of a
//     transaction that one of its writes failed (undone_record decides, and nothing else).
// 15. A break-glass grant and its audit record commit together or not at all. A grant opens the
//     record for the (organisation, user, role) that opened it only: sqlite_store::standing and search's
//     visibility match all three (grants made before migration 9 have role '' and match no caller).
// 16. Every search index row (search_string, _token, _date, _reference, _quantity, _number, _uri,
//     _composite) belongs to one version: its `seq` is that version's resource_versions.seq, and the
//     rows of a version are exactly those its content gives: fhir::extract_search_values over its
//     stamped JSON (so _id and _lastUpdated are indexed as stored), composites by their two
//     components, special parameters left out, none at all for a type without search parameters, and
//     in search_token one '<code>:of-type' row per coding of each typed Identifier a token value comes
//     from (search_index.cpp). A live version's rows are inserted with it; a deletion marker has none.
//     A row is never changed but for `until_seq`, set once: NULL while its version is current and
//     live, then the seq of the version that superseded it (an update or a deletion), never deleted
//     but by the purge (18). So the rows with until_seq NULL are exactly those of the current live
//     versions, and the rows with seq <= S AND (until_seq IS NULL OR until_seq > S) are exactly those
//     of the versions current and live at seq S, for every S >= purged_through. Closing and inserting
//     happen in the version's savepoint (a failed write leaves the rows as they were, see 7); an
//     unchanged update touches nothing. Extraction failing is a fault that fails the write: no version
//     is stored without its rows. Migration 4 indexes the current live versions stored before it
//     (search_index.cpp); rows of versions superseded before it were never made. Migration 5 likewise
//     makes the :of-type rows of the current live versions only; those of versions superseded before
//     it were never made.
// 17. version_citizens has one row per (seq, citizen) of every live version: the citizens its
//     `citizens` column holds (for a Patient, its own NHS number), inserted with the version in its
//     savepoint and, like the version, never changed or removed; a deletion marker has none.
//     Migration 4 fills it for the live versions stored before it.
// 18. search_horizon has one row, and its purged_through never decreases. The writer deletes search
//     index rows only in a purge, and a purge deletes only closed rows (until_seq NOT NULL) with
//     until_seq <= H, H being the newest seq whose version is older than the snapshot lifetime
//     (sqlite_options::snapshot_lifetime), and in the same transaction raises purged_through to the
//     largest until_seq it deleted. So every index row ever deleted has until_seq <= purged_through,
//     and a snapshot S >= purged_through reads complete (migrations 4 and 5 raise purged_through to
//     the newest seq, see 16, so no snapshot older than either is read). A purge runs at most once a
//     second, after a group's jobs inside the group's transaction, in a savepoint of its own (a purge
//     that fails fails no write), and deletes from each table the detail::purge_batch_rows rows of
//     lowest until_seq and the other rows closed by the same version as the last of them.
// 19. A write's condition (conditional create, update, delete) is decided by a search on the writer's
//     connection inside the write transaction (detail::find_matches), after every write before it
//     in the group: no write can come between the check and the write, so two conditional creates
//     of the same criteria make one resource whatever their timing (conditional_test.cpp). Only
//     matches the caller may see count (the condition carries the caller's visibility).
// 20. A transaction (submit_transaction) runs in one savepoint: all its writes stand or none; its
//     outcome names the write that failed. An id a condition chose replaces the gateway-assigned
//     UUID in the other writes' content before any of them is written; nothing else is rewritten.
// 21. A live Patient with live items (5) is removed only by a full erasure
//     (write_request::erase_record), which removes every item first, in the same savepoint.
// 22. A standing served from memory (sqlite_store::standing, sqlite_options::standing_cache_ttl) was read
//     under the access_generation that is current, and every commit of a group with anything but
//     audit appends raises access_generation after COMMIT and before its first acknowledgement; the
//     generation is loaded before the standing's query. So a standing served is never older than
//     the last acknowledged write (access_test.cpp, "a cached standing never outlives a write").
// 23. The writer waits up to sqlite_options::audit_linger before committing a queue that holds only
//     audit appends with no callback (a read's records), and never when anything else waits: a
//     write, a grant, an append with a callback (sqlite_store::audit, audit_record_at and verify_audit
//     queue an empty one and wait for it), or closing. Nothing queued is dropped (audit_test.cpp).
// 24. A read's audit record is never dropped for a failure (the database locked by another process,
//     a full disk, a read-only or failing file system): a group that fails so puts those records
//     back at the front of the queue, in order, and a later group commits them; the reads went on
//     meanwhile (WAL readers need no lock the failure took). audit_backlog counts them from
//     append_audit until their commit, and past sqlite_options::max_audit_backlog the gateway refuses
//     every request (sqlite_store::audit_backlog_full): the backlog, and what was shown unlogged, are
//     bounded. Only closing the store with the fault still there loses them.
// 25. An erasure (write_request::erase_record on a Patient) is final (erasure.hpp): in the erasing
//     write's savepoint, after every item and the Patient are marked deleted, every version naming
//     the citizen, every row derived from one, whatever points at them, and the citizen's
//     break-glass grants are removed; resources left with no version lose their current-version row,
//     so a later create of the same id starts at version 1. The one exception to invariants 2, 3,
//     12 and 17 (and to the grants' immutability): the schema's triggers let versions and grants be
//     deleted only while an erasure's `erasing` row exists, which is never committed. The erasure's
//     audit record (ids, never content) stays, as every audit record does.
//
// On PostgreSQL (relational_engine::on_postgresql), where several nodes' engines share one database:
// 26. Every group's transaction first takes the writers' advisory lock (postgresql/schema.hpp,
//     writer_lock_key) and then reads the audit chain's tip and the newest lastUpdated from the
//     database's writer_state row (take_writers_turn), and writes them back there before its COMMIT
//     when they moved: one writer at a time across the nodes, so invariants 4, 13 and 19 hold across
//     them as on SQLite's one writer. Only the writer appends to the log or writes versions on
//     PostgreSQL (caregate migrate sets the row from what it copied). The writer's connection is READ COMMITTED, so each
//     statement after the lock sees every group committed before it.
// 27. A reader's transaction is REPEATABLE READ (one snapshot for a search's page, total and
//     includes, as a SQLite read transaction is). Invariant 22's generation is one process's, which
//     another node's write could not raise, so the database keeps one: the access_generation row,
//     raised in the transaction of every group with anything but audit appends (before its COMMIT,
//     so before any acknowledgement). A standing is cached with the generation read in the same
//     statement as it, and served from memory only to a request that read that same generation in
//     a statement of its own (stored_version::access_generation, read with the version the
//     standing decides): no write that changes standings committed between the two snapshots, so
//     the cached standing is the one the request's own snapshot holds. A request that read no
//     generation (a search, a vread) reads the standing from the database.
// 28. A connection found lost (connection::usable false) is never used again: a reader's is dropped
//     when given back, the writer's replaced before the next group; the group that met the loss
//     fails as busy and acknowledges nothing (invariant 7).
// 29. The group in progress remembers whether a citizen is held (held_in_group) from its own writes
//     of Patients and its own reads, and forgets it when a savepoint rolls back and when the group
//     ends: under the writers' lock no other writer changes it meanwhile. On PostgreSQL a version's
//     seq is reserved from the column's sequence (reserve_seq: an unbroken run per round trip,
//     dropped when the group ends), so seqs still rise in commit order across nodes (each group's
//     run is taken under the writers' lock, after every earlier group's), and a gap is harmless.
#pragma once

#include "storage/postgresql_store.hpp"
#include "storage/sqlite_store.hpp"

#include "storage/search.hpp"

#include "../write_rules.hpp"

#include "export_file_bytes.hpp"
#include "list_column.hpp"
#include "read_batches.hpp"
#include "../sqlite/sqlite.hpp"

#include "fhir_model/resource.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

namespace caregate::storage {

struct relational_engine;

/// The helpers more than one of the engine's files uses.
namespace sqlite_engine {

using detail::connection;
using detail::execute;
using detail::split_lines;
using detail::statement;
using detail::prepared;
using detail::step_done;
using detail::step_row;
using detail::storage_failure;

inline const std::string current_version_sql =
    "SELECT r.version_id, r.deleted, v.last_updated, v.json, v.method, v.owner, v.citizens, v.labels, v.facets "
    "FROM resources r JOIN resource_versions v ON v.seq = r.seq WHERE r.type = ?1 AND r.id = ?2";

/// A version-reading `sql` (columns as version_from reads them, then its FROM) that also reads the
/// database's access generation, as column 9, in the same statement (one snapshot): on PostgreSQL
/// (invariant 27).
inline std::string with_access_generation(const std::string& sql) {
    const auto from = sql.find(" FROM ");
    return sql.substr(0, from) + ", (SELECT generation FROM access_generation)" + sql.substr(from);
}

/// Raised by every group that commits anything but audit records, on PostgreSQL (invariant 27).
inline const std::string raise_access_generation_sql = "UPDATE access_generation SET generation = generation + 1";

inline const std::string audit_tip_sql = "SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1";

/// The previous_hash of the first audit record.
inline const std::string genesis_hash(64, '0');

inline timestamp now_microseconds() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

inline std::string reference(std::string_view type, std::string_view id) {
    std::string text(type);
    text += '/';
    text += id;
    return text;
}

inline fhir::error store_fault(std::string diagnostics) {
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

/// Reads a version row selected as (version_id, deleted, last_updated, json, method).
inline stored_version version_from(const statement& row, std::string_view type, std::string_view id) {
    stored_version version;
    version.type = type;
    version.id = id;
    version.version_id = row.integer(0);
    version.deleted = row.integer(1) != 0;
    version.last_updated = row.integer(2);
    version.json = row.blob(3);
    version.method = row.text(4);
    version.owner = row.text(5);
    version.citizens = split_lines(row.text(6));
    version.labels = split_lines(row.text(7));
    version.facets = split_lines(row.text(8));
    return version;
}

/// version_from, and the access generation a with_access_generation statement read after it.
inline stored_version version_and_generation_from(const statement& row, std::string_view type, std::string_view id) {
    stored_version version = version_from(row, type, id);
    version.access_generation = static_cast<std::uint64_t>(row.integer(9));
    return version;
}

/// Runs a query that yields at most one row: `bind` binds its parameters, `read` turns the row into
/// a value. Nothing when there is no row.
template <class Row, class Bind, class Read>
inline fhir::result<std::optional<Row>> query_one(connection& db, const std::string& sql, std::string_view doing,
                                           Bind&& bind, Read&& read) {
    auto prepared = db.prepare(sql, doing);
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    bind(query);
    switch (const int rc = query.step()) {
    case step_row:
        return std::optional<Row>(read(query));
    case step_done:
        return std::optional<Row>();
    default:
        return detail::storage_failure(rc, doing);
    }
}

/// The current version of type/id (live or a deletion marker), or nothing if it never existed.
inline fhir::result<std::optional<stored_version>> load_current(connection& db, std::string_view type,
                                                         std::string_view id) {
    return query_one<stored_version>(
        db, current_version_sql, "reading a resource", [&](statement& q) { q.bind(1, type).bind(2, id); },
        [&](const statement& row) { return version_from(row, type, id); });
}

/// True if a statement returns a row; `bind` binds its parameters.
template <class Bind>
inline fhir::result<bool> exists(connection& db, const std::string& sql, std::string_view doing, Bind&& bind) {
    auto found = query_one<bool>(db, sql, doing, std::forward<Bind>(bind), [](const statement&) { return true; });
    if (!found)
        return std::move(found).failure();
    return found->has_value();
}

/// One organisation_links row, as written for the current version.
struct organisation_link_row {
    std::string nhs_number;
    std::string ods;
    std::string kind;
    bool active = false;
    std::optional<timestamp> ended;
    bool operator==(const organisation_link_row&) const = default;
};

/// What a version records for access control, as its rows and columns will hold it.
struct access_rows {
    std::vector<std::string> citizens; ///< distinct, in order of first mention
    std::vector<organisation_link_row> links;
    bool objection = false;
    bool opt_out = false;
};

inline access_rows access_rows_for(const write_request& request) {
    access_rows rows;
    if (request.type == "Patient") {
        rows.citizens.push_back(request.id); // a Patient's id is its NHS number
    } else {
        for (const auto& link : request.citizens)
            if (std::find(rows.citizens.begin(), rows.citizens.end(), link.nhs_number) == rows.citizens.end())
                rows.citizens.push_back(link.nhs_number);
    }
    // Invariant 11: only the writer's own links, unless the writer is the ICS's (any_owner) or a tool.
    const bool keeps_every_link = request.any_owner || request.writer.empty();
    for (const auto& citizen : rows.citizens)
        for (const auto& link : request.access.organisations)
            if (keeps_every_link || link.ods == request.writer)
                rows.links.push_back({citizen, link.ods, link.kind, link.active, link.ended});
    rows.objection = request.type == "Consent" && request.access.objection && !rows.citizens.empty();
    rows.opt_out = request.type == "Consent" && request.access.research_opt_out && !rows.citizens.empty();
    return rows;
}

struct queued_write {
    write_request request;
    write_callback done;
};

struct queued_audit {
    std::vector<audit_record> records;
    std::function<void(fhir::status)> done;
};

struct queued_grant {
    break_glass_grant grant;
    audit_record audit;
    std::function<void(fhir::status)> done;
};

struct queued_transaction {
    std::vector<write_request> writes;
    transaction_callback done;
};

/// sqlite_store::checkpoint(): run by the writer between groups, outside any transaction.
struct queued_checkpoint {
    std::function<void(fhir::status)> done;
};

/// A change to export jobs (storage/exports.hpp, exports.cpp): run by the writer on its connection in
/// a savepoint of its own; `work` may append audit records (relational_engine::append_one), which
/// then commit with it.
struct queued_export {
    std::function<fhir::status(relational_engine&, connection&)> work;
    std::function<void(fhir::status)> done;
};

using queued_job =
    std::variant<queued_write, queued_audit, queued_grant, queued_transaction, queued_checkpoint, queued_export>;

/// A job someone waits for: the writer commits it at once. Only a read's audit records, appended
/// with no callback, may wait for others to join them (sqlite_options::audit_linger).
inline bool is_urgent(const queued_job& job) {
    const auto* audit = std::get_if<queued_audit>(&job);
    return !audit || audit->done;
}

/// A job that can change what sqlite_store::standing reads (any write or grant; not an audit append).
inline bool changes_standing(const queued_job& job) {
    return !std::holds_alternative<queued_audit>(job) && !std::holds_alternative<queued_checkpoint>(job) &&
           !std::holds_alternative<queued_export>(job);
}

/// The snapshot of the oldest export job not yet finished, which the purge must not pass
/// (exports.hpp, invariant 3); nothing when every job has finished.
fhir::result<std::optional<std::int64_t>> oldest_unfinished_export_snapshot(connection& db);

/// A standing read from the database, kept for sqlite_options::standing_cache_ttl.
struct cached_standing {
    citizen_standing standing;
    /// relational_engine::access_generation when it was read; on PostgreSQL, the database's
    /// access_generation read in the same statement (invariant 27)
    std::uint64_t generation = 0;
    timestamp read_at = 0;        ///< the `now` it was read for
};

/// Where the audit chain ends: the last record's sequence and hash.
struct chain_tip {
    std::int64_t sequence = 0;
    std::string hash = genesis_hash;
};

} // namespace sqlite_engine

using namespace sqlite_engine;

struct relational_engine final : write_transaction {
    /// An engine on the SQLite file `chosen.path`, or, when `postgresql` is a connection string, on
    /// that PostgreSQL database (then `chosen` gives the store_settings and reader_connections only).
    explicit relational_engine(const sqlite_options& chosen, std::string postgresql = {})
        : options(chosen), postgresql(std::move(postgresql)) {}
    ~relational_engine();

    const sqlite_options options;
    const std::string postgresql;
    bool on_postgresql() const noexcept { return !postgresql.empty(); }

    // Readers: read-only connections, each used by one thread at a time.
    mutable std::mutex readers_mutex;
    mutable std::vector<std::unique_ptr<connection>> idle_readers;

    // The writer: its connection and `newest_timestamp` are touched only by the writer thread
    // (and by open() before the thread starts).
    std::unique_ptr<connection> writer_db;
    timestamp newest_timestamp = 0;
    // PostgreSQL: the newest lastUpdated as the group in progress read it from writer_state (invariant
    // 26; the chain's tip it read is committed_tip until the group commits).
    timestamp loaded_newest_timestamp = 0;
    // What the group in progress knows without asking (invariant 29): whether a citizen is held, as
    // its writes and reads found it; forgotten when a savepoint is rolled back and when the group ends.
    std::unordered_map<std::string, bool> held_in_group;
    // PostgreSQL: version seqs reserved for the group in progress, [next_seq, seq_reserved_until).
    std::int64_t next_seq = 0;
    std::int64_t seq_reserved_until = 0;
    std::int64_t seqs_wanted = 0; ///< the group's writes: how many to reserve at once
    std::mutex queue_mutex;
    std::condition_variable queue_filled;
    std::deque<queued_job> queue;
    std::size_t urgent_jobs = 0; ///< jobs in `queue` that is_urgent
    /// Records of reads' audit appends (no callback) queued or in a group and not yet committed
    /// (sqlite_store::audit_backlog, invariant 24).
    std::atomic<std::size_t> audit_backlog{0};
    bool stopping = false;
    std::thread writer;
    // The audit chain's end as committed, and as the open transaction has it (writer thread only).
    chain_tip committed_tip;
    chain_tip tip;
    // When the writer last purged closed search index rows (writer thread only); none yet: due.
    std::optional<std::chrono::steady_clock::time_point> last_purge;

    // Bumped after every commit of a group with a job that changes_standing, before any of its jobs
    // is acknowledged; a cached standing read under another generation is stale.
    std::atomic<std::uint64_t> access_generation{0};
    // Standings by (NHS number, organisation, user, recent window), see sqlite_options::standing_cache_ttl.
    mutable std::mutex standings_mutex;
    mutable std::unordered_map<std::string, cached_standing> standings;

    // The checkpointer: its own connection and thread, woken by the writer's WAL hook.
    std::unique_ptr<detail::sqlite_connection> checkpoint_db;
    std::thread checkpointer;
    std::mutex checkpoint_mutex;
    std::condition_variable checkpoint_wanted;
    bool checkpoint_due = false;
    bool checkpointer_stopping = false;
    /// Frames in the log, in marks (sqlite_options::checkpoint_frames), past which the writer
    /// checkpoints itself (on_wal_commit).
    static constexpr int restart_factor = 16;
    std::atomic<std::uint64_t> checkpoints{0};
    // Held while a checkpoint runs, by the checkpointer or by the writer (sqlite_store::checkpoint and past
    // the restart mark): SQLite lets one checkpoint run at a time and answers another with
    // SQLITE_BUSY at once, without waiting.
    std::mutex checkpoint_running;

    std::atomic<std::uint64_t> groups{0};
    std::atomic<std::uint64_t> writes{0};
    std::atomic<std::uint64_t> largest_group{0};
    std::atomic<std::uint64_t> commits{0};
    std::atomic<std::uint64_t> commit_micros{0};
    std::array<std::atomic<std::uint64_t>, commit_bucket_bounds_us.size()> commits_within{};
    /// Counts a group that committed, `took` after its transaction began (store_statistics).
    void count_commit(std::chrono::steady_clock::duration took);

    fhir::result<std::unique_ptr<connection>> take_reader() const;
    /// A new connection of the engine's database for a reader.
    fhir::result<std::unique_ptr<connection>> open_reader() const;
    /// A new connection for the writer, set up (PostgreSQL only; SQLite's is opened once, by open).
    fhir::result<std::unique_ptr<connection>> open_postgresql_writer() const;
    /// Reads what the writer keeps of the database in memory (the newest lastUpdated, the audit
    /// chain's tip) from the database: at open, and on PostgreSQL at the start of each group, once
    /// the group holds the writers' lock (another node may have written since).
    fhir::status load_writer_state(connection& db);
    /// The last steps of opening, on either database: the writer's state loaded from `db` (the
    /// writer's connection, migrated) and a first reader opened and given back.
    fhir::status ready_to_serve(connection& db);
    /// What a group's transaction does right after BEGIN: on PostgreSQL, wait for the writers' lock
    /// and load_writer_state; nothing on SQLite, whose BEGIN IMMEDIATE is that lock.
    fhir::status take_writers_turn(connection& db);
    void give_back_reader(std::unique_ptr<connection> db) const;
    /// PostgreSQL: reads of current versions, gathered into batches on threads of their own
    /// (read_batches.hpp); stopped first when the engine closes, while the writer still takes the
    /// audit records their answers append.
    mutable detail::current_version_batches current_versions;
    /// Runs one batch of reads of current versions on a pooled reader: one statement for them all.
    void read_current_batch(std::span<detail::current_version_batches::wanted* const> reads) const;
    /// Runs `use(connection&)` on a pooled reader and returns the connection to the pool.
    template <class T, class Use>
    fhir::result<T> with_reader(Use&& use) const;

    /// Queues a job, or fails it at once (busy) when the store is closing.
    void enqueue(queued_job job);
    /// Queues jobs together: the writer sees all of them when it next looks.
    void enqueue_all(std::vector<queued_job> jobs);
    void run_writer();
    void commit_group(std::vector<queued_job>& group);
    void run_checkpoint(queued_checkpoint& job);
    void run_checkpointer();
    /// sqlite3_wal_hook on the writer's connection: after each commit, with the frames in the log.
    static int on_wal_commit(void* self, sqlite3* db, const char* schema, int frames);
    /// sqlite_store::standing from the database.
    /// On PostgreSQL, `generation` (if given) is set to the database's access generation read in the
    /// same statement.
    fhir::result<citizen_standing> read_standing(std::string_view nhs_number, std::string_view organisation,
                                                 std::string_view user, std::string_view role, timestamp recent_since,
                                                 timestamp now, std::uint64_t* generation = nullptr) const;
    /// Commits every audit record queued so far and waits for it, so that a read of the audit log
    /// sees the records of the requests answered before it (sqlite_options::audit_linger).
    fhir::status flush_audit();
    /// Runs one job inside its own savepoint. Returns false when the whole transaction is lost
    /// (then `fail_all` has already been called).
    template <class Run, class Fail>
    bool in_savepoint(Run&& run, Fail&& fail_all);
    // The write rules' operations (write_rules.hpp), on the writer's connection inside the open
    // transaction (write_transaction.cpp, access_rows.cpp).
    fhir::result<std::optional<stored_version>> current(std::string_view type, std::string_view id) override;
    fhir::result<std::vector<stored_version>> matches(const write_condition& condition, unsigned limit) override;
    /// The live resources other than the Patient that link to a citizen (invariant 5).
    fhir::result<std::vector<resource_name>> record_items(std::string_view nhs_number) override;
    fhir::result<bool> citizen_held(std::string_view nhs_number) override;
    fhir::result<bool> same_access(const write_request& request, const stored_version& current) override;
    fhir::result<write_outcome> write_version(const write_request& request,
                                              const std::optional<stored_version>& current) override;
    fhir::status erase_citizen(std::string_view nhs_number, const std::vector<resource_name>& record) override;
    fhir::status write_access_rows(const write_request& request, bool deletion, bool live);
    /// Chains `record` at the tip and inserts it (inside the open transaction).
    fhir::status append_one(audit_record record);
    /// The next version seq of the group in progress, on PostgreSQL (invariant 29).
    fhir::result<std::int64_t> reserve_seq();
    /// Chains `records` at the tip, in order, and inserts them many to a statement (inside the open
    /// transaction): reads' records, which come many to a group.
    fhir::status append_run(const std::vector<const audit_record*>& records);
    fhir::status insert_grant(const break_glass_grant& grant);
    /// Purges the search index rows closed before the snapshot lifetime (invariant 18), inside the
    /// open transaction.
    fhir::status purge_closed_search_rows();
    /// Queues `work(engine, connection)` as a queued_export and waits for its group to commit: the
    /// export jobs' changes whose callers wait (exports.cpp). Errors: work's, or the group's.
    template <class T, class Work>
    fhir::result<T> export_change(Work&& work);

    // Export files' bytes, apart from the writer's transactions (export_file_bytes.hpp), and the
    // thread that sweeps them; opened with the store before the writer starts, closed after it has
    // stopped (the sweeper first).
    std::unique_ptr<detail::export_file_bytes> export_bytes;
    std::unique_ptr<detail::export_bytes_sweeper> export_bytes_sweeper;
    // An erasure in the group in progress may have withdrawn exports (writer thread only): once the
    // group commits, their files' bytes are swept.
    bool export_bytes_orphaned = false;
    /// Makes export_bytes and its sweeper: on SQLite a directory beside the store's file, on
    /// PostgreSQL a table of its database.
    fhir::status open_export_bytes();
    /// Deletes the bytes no file of an export job references, for every job that is gone or has
    /// finished (a job that is still running is left to its next claim). The sweeper's thread runs it.
    void sweep_export_bytes();
    /// Deletes the bytes of `job_id` that no file of it references, whatever the job's state: for a
    /// job just claimed, whose earlier holder may have stored bytes and never committed their file.
    fhir::status sweep_unreferenced_export_bytes(std::string_view job_id);
};

template <class T, class Use>
fhir::result<T> relational_engine::with_reader(Use&& use) const {
    auto taken = take_reader();
    if (!taken)
        return std::move(taken).failure();
    struct give_back {
        const relational_engine& owner;
        std::unique_ptr<connection> db;
        ~give_back() { owner.give_back_reader(std::move(db)); }
    } lease{*this, std::move(*taken)};
    return use(*lease.db);
}

} // namespace caregate::storage
