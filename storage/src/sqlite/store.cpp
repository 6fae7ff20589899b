// The versioned resource store on SQLite: one writer thread that commits queued writes (and audit
// records and break-glass grants) in groups, readers on pooled read-only connections, history and the
// audit log in stable pages, what access control needs per citizen. See store.hpp for the contract;
// the SQL text lives here and in schema.cpp, and never includes a client's string.
//
// Design notes: the invariants this file keeps (tests/storage/store_test.cpp, writer_test.cpp,
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
// 10. Every version carries the owner (the writer's ODS code) set when its resource was created,
//     i.e. written while there was no live version; later versions keep it. A version of a live
//     resource is made only by its owner, or by a writer with `any_owner`, or by a writer with no
//     ODS code at all (tools and tests); checked inside the write transaction (see 8).
// 11. Every organisation_links and objections row belongs to a current, live version, like
//     citizen_links (5): replaced with each new version, removed with a deletion. Objections come
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
//     that fails fails no write), and deletes at most detail::purge_batch_rows rows a table, lowest
//     until_seq first.
// 19. A write's condition (conditional create, update, delete) is decided by a search on the writer's
//     connection inside the write transaction (detail::find_matches), after every write before it
//     in the group: no write can come between the check and the write, so two conditional creates
//     of the same criteria make one resource whatever their timing (conditional_test.cpp). Only
//     matches the caller may see count (the condition carries the caller's visibility).
// 20. A transaction (submit_transaction) runs in one savepoint: all its writes stand or none; its
//     outcome names the write that failed. An id a condition chose replaces the gateway-assigned
//     UUID in the other writes' content before any of them is written; nothing else is rewritten.
// 21. A live Patient with live items (citizen_links) is removed only by a full erasure
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
#include "storage/sqlite_store.hpp"

#include "storage/search.hpp"

#include "erasure.hpp"
#include "list_column.hpp"
#include "schema.hpp"
#include "search_index.hpp"
#include "search_plan.hpp"
#include "sql_text.hpp"
#include "visibility_sql.hpp"
#include "sqlite.hpp"

#include "fhir_model/resource.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <variant>

namespace caregate::storage {
namespace {

using detail::connection;
using detail::execute;
using detail::join_lines;
using detail::split_lines;
using detail::statement;

const std::string current_version_sql =
    "SELECT r.version_id, r.deleted, v.last_updated, v.json, v.method, v.owner, v.citizens, v.labels, v.facets "
    "FROM resources r JOIN resource_versions v ON v.seq = r.seq WHERE r.type = ?1 AND r.id = ?2";
const std::string version_sql =
    "SELECT version_id, deleted, last_updated, json, method, owner, citizens, labels, facets "
    "FROM resource_versions WHERE type = ?1 AND id = ?2 AND version_id = ?3";
const std::string newest_timestamp_sql = "SELECT coalesce(max(last_updated), 0) FROM resource_versions";
// The live items of a citizen's record (invariant 5: citizen_links holds only current live versions).
const std::string record_items_sql =
    "SELECT type, id FROM citizen_links WHERE nhs_number = ?1 AND NOT (type = 'Patient' AND id = ?1) ORDER BY type, id";
const std::string live_patient_sql =
    "SELECT 1 FROM resources WHERE type = 'Patient' AND id = ?1 AND deleted = 0";
// OR FAIL on one-row inserts: see search_index.cpp (no statement journal inside the savepoints).
const std::string insert_version_sql =
    "INSERT OR FAIL INTO resource_versions (type, id, version_id, last_updated, method, deleted, json, owner, citizens, "
    "labels, facets) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const std::string current_seq_sql = "SELECT seq FROM resources WHERE type = ?1 AND id = ?2";
// Two statements, not an upsert: an upsert (and any statement that may abort after changing rows)
// opens a statement journal, and inside the writer's savepoints releasing one truncates SQLite's
// in-memory sub-journal by walking it from its start, so a large transaction's writes grew slower
// the more it had written (a fifth of the writer's time in bench/ingest.sh). OR FAIL on one-row
// statements needs no statement journal and fails the write (its savepoint) just the same.
const std::string insert_current_sql =
    "INSERT OR FAIL INTO resources (type, id, version_id, seq, deleted) VALUES (?1, ?2, ?3, ?4, ?5)";
const std::string point_current_sql =
    "UPDATE OR FAIL resources SET version_id = ?3, seq = ?4, deleted = ?5 WHERE type = ?1 AND id = ?2";
const std::string remove_links_sql = "DELETE FROM citizen_links WHERE type = ?1 AND id = ?2";
const std::string insert_link_sql =
    "INSERT OR IGNORE INTO citizen_links (type, id, nhs_number) VALUES (?1, ?2, ?3)";
const std::string organisation_links_sql =
    "SELECT nhs_number, ods, kind, active, ended FROM organisation_links WHERE type = ?1 AND id = ?2 ORDER BY rowid";
const std::string remove_organisation_links_sql = "DELETE FROM organisation_links WHERE type = ?1 AND id = ?2";
const std::string insert_organisation_link_sql =
    "INSERT INTO organisation_links (type, id, nhs_number, ods, kind, active, ended) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const std::string has_objection_sql = "SELECT 1 FROM objections WHERE type = ?1 AND id = ?2";
const std::string remove_objections_sql = "DELETE FROM objections WHERE type = ?1 AND id = ?2";
const std::string insert_objection_sql =
    "INSERT OR IGNORE INTO objections (type, id, nhs_number) VALUES (?1, ?2, ?3)";
const std::string insert_grant_sql =
    "INSERT INTO break_glass_grants (nhs_number, organisation, user, reason, from_time, until_time, request_id, role) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const std::string audit_columns =
    "sequence, time, request_id, user, role, organisation, purpose, break_glass_reason, nhs_number, "
    "resource_type, resource_ids, action, outcome, detail, previous_hash, hash";
const std::string insert_audit_sql =
    "INSERT OR FAIL INTO audit_log (" + audit_columns + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
    "?14, ?15, ?16)";
const std::string audit_tip_sql = "SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1";
const std::string audit_at_sql = "SELECT " + audit_columns + " FROM audit_log WHERE sequence = ?1";
const std::string audit_walk_sql = "SELECT " + audit_columns + " FROM audit_log ORDER BY sequence";
const std::string audit_hash_at_sql = "SELECT hash FROM audit_log WHERE sequence = ?1";

// A citizen's standing in one statement (one read of one snapshot, where four statements took four):
// held; a relationship (an active link while it has no end, an ended one while the end is recent);
// an objection; the latest break-glass grant still open for this user in this role (invariant 15).
// ?1 NHS number, ?2 ODS code, ?3 recent_since, ?4 user, ?5 now, ?6 role.
const std::string standing_sql =
    "SELECT EXISTS (SELECT 1 FROM resources WHERE type = 'Patient' AND id = ?1 AND deleted = 0), "
    "EXISTS (SELECT 1 FROM organisation_links WHERE nhs_number = ?1 AND ods = ?2 "
    "AND ((active = 1 AND ended IS NULL) OR ended >= ?3)), "
    "EXISTS (SELECT 1 FROM objections WHERE nhs_number = ?1), "
    "(SELECT max(until_time) FROM break_glass_grants WHERE nhs_number = ?1 AND organisation = ?2 AND user = ?4 "
    "AND role = ?6 AND until_time > ?5 AND from_time <= ?5)";

/// The previous_hash of the first audit record.
const std::string genesis_hash(64, '0');

const std::string begin_sql = "BEGIN IMMEDIATE";
const std::string commit_sql = "COMMIT";
const std::string rollback_sql = "ROLLBACK";
const std::string savepoint_sql = "SAVEPOINT write_request";
const std::string rollback_to_savepoint_sql = "ROLLBACK TO write_request";
const std::string release_savepoint_sql = "RELEASE write_request";
// Invariant 4: the newest version at or before a time is one seek down resource_versions_by_last_updated.
const std::string newest_seq_at_sql =
    "SELECT seq FROM resource_versions WHERE last_updated <= ?1 ORDER BY last_updated DESC, seq DESC LIMIT 1";

/// How often the writer purges closed search index rows (invariant 18): often enough that the
/// tables hold little more than a snapshot lifetime of closed rows, seldom enough that the purge's
/// queries are no cost to a busy writer's groups.
constexpr std::chrono::seconds purge_interval{1};

// A bulk load's writer (sqlite_options::from): a page cache large enough for the index pages a whole
// group touches (the default is for a server's writer, which has readers beside it), so a group does
// not read back pages it wrote a group ago; and 64 MiB of log between checkpoints.
constexpr unsigned bulk_load_writer_cache_kib = 256 * 1024;
constexpr unsigned bulk_load_checkpoint_frames = 16'384;


bool holds_line_break(const std::vector<std::string>& values) {
    return std::any_of(values.begin(), values.end(),
                       [](const std::string& value) { return value.find('\n') != std::string::npos; });
}

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
    version.owner = row.text(5);
    version.citizens = split_lines(row.text(6));
    version.labels = split_lines(row.text(7));
    version.facets = split_lines(row.text(8));
    return version;
}

/// Runs a query that yields at most one row: `bind` binds its parameters, `read` turns the row into
/// a value. Nothing when there is no row.
template <class Row, class Bind, class Read>
fhir::result<std::optional<Row>> query_one(connection& db, const std::string& sql, std::string_view doing,
                                           Bind&& bind, Read&& read) {
    auto prepared = db.prepare(sql, doing);
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    bind(query);
    switch (const int rc = query.step()) {
    case SQLITE_ROW:
        return std::optional<Row>(read(query));
    case SQLITE_DONE:
        return std::optional<Row>();
    default:
        return detail::sqlite_failure(rc, doing);
    }
}

/// The current version of type/id (live or a deletion marker), or nothing if it never existed.
fhir::result<std::optional<stored_version>> load_current(connection& db, std::string_view type,
                                                         std::string_view id) {
    return query_one<stored_version>(
        db, current_version_sql, "reading a resource", [&](statement& q) { q.bind(1, type).bind(2, id); },
        [&](const statement& row) { return version_from(row, type, id); });
}

/// Reads an audit_log row selected as audit_columns.
audit_record audit_from(const statement& row) {
    audit_record record;
    record.sequence = row.integer(0);
    record.time = row.integer(1);
    record.request_id = row.text(2);
    record.user = row.text(3);
    record.role = row.text(4);
    record.organisation = row.text(5);
    record.purpose = row.text(6);
    record.break_glass_reason = row.text(7);
    record.nhs_number = row.text(8);
    record.resource_type = row.text(9);
    record.resource_ids = row.text(10);
    record.action = row.text(11);
    record.outcome = row.text(12);
    record.detail = row.text(13);
    record.previous_hash = row.text(14);
    record.hash = row.text(15);
    return record;
}


/// True if a statement returns a row; `bind` binds its parameters.
template <class Bind>
fhir::result<bool> exists(connection& db, const std::string& sql, std::string_view doing, Bind&& bind) {
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
};

access_rows access_rows_for(const write_request& request) {
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

using queued_job = std::variant<queued_write, queued_audit, queued_grant, queued_transaction, queued_checkpoint>;

/// A job someone waits for: the writer commits it at once. Only a read's audit records, appended
/// with no callback, may wait for others to join them (sqlite_options::audit_linger).
bool is_urgent(const queued_job& job) {
    const auto* audit = std::get_if<queued_audit>(&job);
    return !audit || audit->done;
}

/// A job that can change what sqlite_store::standing reads (any write or grant; not an audit append).
bool changes_standing(const queued_job& job) {
    return !std::holds_alternative<queued_audit>(job) && !std::holds_alternative<queued_checkpoint>(job);
}

/// A standing read from the database, kept for sqlite_options::standing_cache_ttl.
struct cached_standing {
    citizen_standing standing;
    std::uint64_t generation = 0; ///< sqlite_store::impl::access_generation when it was read
    timestamp read_at = 0;        ///< the `now` it was read for
};
using transaction_result = std::variant<std::vector<write_outcome>, transaction_failure>;

/// A write's condition resolved (write_request::condition): the unconditional writes to make, or
/// the match a conditional create found (nothing to write).
struct resolution {
    std::vector<write_request> writes;
    std::optional<stored_version> matched;
};

/// Ids the gateway assigns: 8-4-4-4-12 hex digits. Only such an id is replaced as text when a
/// condition chose another (store.hpp, submit_transaction).
bool is_uuid(std::string_view text) {
    if (text.size() != 36)
        return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (text[i] == '-') || (!dash && !std::isxdigit(static_cast<unsigned char>(text[i]))))
            return false;
    }
    return true;
}

/// A write's audit record once it has succeeded: the ids it wrote (a condition can choose another
/// than the request's, a conditional delete or an erasure several), and a conditional create that
/// wrote nothing says so.
audit_record success_record(audit_record record, const write_outcome& outcome) {
    record.outcome = "success";
    if (!outcome.version.id.empty()) {
        record.resource_ids = outcome.version.id;
        for (const stored_version& removed : outcome.also_removed)
            record.resource_ids += " " + (removed.type == outcome.version.type ? removed.id : removed.type + "/" + removed.id);
    }
    if (record.nhs_number.empty() && !outcome.version.citizens.empty())
        record.nhs_number = outcome.version.citizens.front(); // a conditional write's match
    if (outcome.matched)
        record.detail += std::string(record.detail.empty() ? "" : "; ") + "matched an existing resource: nothing written";
    return record;
}

/// A write's audit record once it has been undone (invariant 14). `cause` is the write's own
/// failure, or null when it was undone only because another write of its transaction failed. A
/// refusal by the access rules (the owner rule, a role that may not delete what a condition matched)
/// is a denial; anything else (a conflict, a stale If-Match, a storage fault) a failure.
audit_record undone_record(audit_record record, const fhir::error* cause) {
    record.outcome = cause && cause->kind == fhir::category::forbidden ? "denied" : "failed";
    return record;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
}

template <class... Ts>
struct overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>; // clang before 17 deduces no aggregate's template arguments

/// Where the audit chain ends: the last record's sequence and hash.
struct chain_tip {
    std::int64_t sequence = 0;
    std::string hash = genesis_hash;
};

} // namespace

struct sqlite_store::impl {
    explicit impl(const sqlite_options& chosen) : options(chosen) {}
    ~impl();

    const sqlite_options options;

    // Readers: read-only connections, each used by one thread at a time.
    mutable std::mutex readers_mutex;
    mutable std::vector<std::unique_ptr<connection>> idle_readers;

    // The writer: its connection and `newest_timestamp` are touched only by the writer thread
    // (and by open() before the thread starts).
    std::unique_ptr<connection> writer_db;
    timestamp newest_timestamp = 0;
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
    std::unique_ptr<connection> checkpoint_db;
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

    fhir::result<std::unique_ptr<connection>> take_reader() const;
    void give_back_reader(std::unique_ptr<connection> db) const;
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
    fhir::result<citizen_standing> read_standing(std::string_view nhs_number, std::string_view organisation,
                                                 std::string_view user, std::string_view role, timestamp recent_since,
                                                 timestamp now) const;
    /// Commits every audit record queued so far and waits for it, so that a read of the audit log
    /// sees the records of the requests answered before it (sqlite_options::audit_linger).
    fhir::status flush_audit();
    /// Runs one job inside its own savepoint. Returns false when the whole transaction is lost
    /// (then `fail_all` has already been called).
    template <class Run, class Fail>
    bool in_savepoint(Run&& run, Fail&& fail_all);
    fhir::result<write_outcome> apply_guarded(const write_request& request);
    fhir::result<write_outcome> apply(const write_request& request);
    /// A write with its condition, if any: resolved by a search inside the open transaction, then applied.
    fhir::result<write_outcome> apply_request(const write_request& request);
    fhir::result<resolution> resolve(const write_request& request);
    /// The writes of a transaction, all or none (store.hpp, submit_transaction); `failed` is set to
    /// the index of the write being applied, so that on error it names the one that failed.
    fhir::result<std::vector<write_outcome>> apply_transaction(const std::vector<write_request>& writes,
                                                               std::size_t& failed);
    /// The live resources other than the Patient that link to a citizen (citizen_links).
    fhir::result<std::vector<std::pair<std::string, std::string>>> record_items(std::string_view nhs_number);
    fhir::status check_citizens(const write_request& request);
    fhir::status check_owner(const write_request& request, const stored_version& current);
    fhir::result<bool> same_access(const write_request& request, const stored_version& current);
    fhir::result<write_outcome> write_version(const write_request& request,
                                              const std::optional<stored_version>& current);
    fhir::status write_access_rows(const write_request& request, bool deletion, bool live);
    /// Chains `record` at the tip and inserts it (inside the open transaction).
    fhir::status append_one(audit_record record);
    fhir::status insert_grant(const break_glass_grant& grant);
    /// Purges the search index rows closed before the snapshot lifetime (invariant 18), inside the
    /// open transaction.
    fhir::status purge_closed_search_rows();
};

sqlite_store::impl::~impl() {
    {
        std::lock_guard lock(queue_mutex);
        stopping = true;
    }
    queue_filled.notify_all();
    if (writer.joinable())
        writer.join();
    {
        std::lock_guard lock(checkpoint_mutex);
        checkpointer_stopping = true;
    }
    checkpoint_wanted.notify_all();
    if (checkpointer.joinable())
        checkpointer.join();
    {
        std::lock_guard lock(readers_mutex);
        idle_readers.clear();
    }
    checkpoint_db.reset();
    // Last: the last connection to close copies the log into the database and removes it, which a
    // read-only one cannot (a reader closed last left a log of gigabytes behind, for the next start).
    writer_db.reset();
}

// ---- readers ------------------------------------------------------------------------------------

fhir::result<std::unique_ptr<connection>> sqlite_store::impl::take_reader() const {
    {
        std::lock_guard lock(readers_mutex);
        if (!idle_readers.empty()) {
            auto db = std::move(idle_readers.back());
            idle_readers.pop_back();
            return db;
        }
    }
    // All busy (or none yet): open another outside the lock; opening touches the file system.
    auto opened = connection::open(options.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, options.busy_timeout,
                                   options.vfs);
    if (!opened)
        return opened;
    if (auto set = (*opened)->exec_script("PRAGMA cache_size = -" + std::to_string(options.reader_cache_kib),
                                          "opening a reader");
        !set)
        return std::move(set).failure();
    return opened;
}

void sqlite_store::impl::give_back_reader(std::unique_ptr<connection> db) const {
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
fhir::result<T> sqlite_store::impl::with_reader(Use&& use) const {
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

sqlite_store::sqlite_store(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
sqlite_store::~sqlite_store() = default;

sqlite_options sqlite_options::from(std::string path, const store_settings& settings) {
    sqlite_options options;
    static_cast<store_settings&>(options) = settings;
    options.path = std::move(path);
    if (settings.bulk_load) {
        options.synchronous_full = false;
        options.writer_cache_kib = bulk_load_writer_cache_kib;
        options.checkpoint_frames = bulk_load_checkpoint_frames;
    }
    return options;
}

fhir::result<std::unique_ptr<sqlite_store>> sqlite_store::open(const sqlite_options& options) {
    if (sqlite3_threadsafe() == 0)
        return store_fault("SQLite was built without thread support; the store needs it");

    auto state = std::make_unique<impl>(options);
    auto opened = connection::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   options.busy_timeout, options.vfs);
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
    if (auto set = db.exec_script("PRAGMA cache_size = -" + std::to_string(options.writer_cache_kib),
                                  "setting up the connection");
        !set)
        return std::move(set).failure();
    // Each write runs in its own savepoint, and SQLite keeps the original of every page a savepoint
    // changes in a sub-journal: a temporary file by default, which a bulk load wrote 50 times the
    // database's size to. In memory it is a few hundred KiB a write, freed at RELEASE.
    if (auto set = db.exec_script("PRAGMA temp_store = MEMORY", "setting up the connection"); !set)
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
    {
        auto prepared = db.prepare(audit_tip_sql, "opening the store");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        const int rc = query.step();
        if (rc == SQLITE_ROW)
            state->committed_tip = chain_tip{query.integer(0), query.text(1)};
        else if (rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "opening the store");
        state->tip = state->committed_tip;
    }

    // Open the first reader now, so a database readers cannot open fails here and not on a request.
    auto reader = state->take_reader();
    if (!reader)
        return std::move(reader).failure();
    state->give_back_reader(std::move(*reader));

    // Checkpoints on a thread of their own (sqlite_options::checkpoint_frames), so that the writer
    // never waits for one; the hook replaces SQLite's automatic checkpoint on the writer.
    auto checkpointing = connection::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, options.busy_timeout,
                                          options.vfs);
    if (!checkpointing)
        return std::move(checkpointing).failure();
    state->checkpoint_db = std::move(*checkpointing);
    // A connection takes up the log only once it has read the database; until then a checkpoint
    // through it does nothing.
    if (auto mode = state->checkpoint_db->pragma("PRAGMA journal_mode"); !mode)
        return std::move(mode).failure();
    sqlite3_wal_hook(db.handle(), &impl::on_wal_commit, state.get());
    state->checkpointer = std::thread([raw = state.get()] { raw->run_checkpointer(); });

    state->writer = std::thread([raw = state.get()] { raw->run_writer(); });
    return std::unique_ptr<sqlite_store>(new sqlite_store(std::move(state)));
}

// ---- reads --------------------------------------------------------------------------------------

fhir::result<stored_version> sqlite_store::read_current(std::string_view type, std::string_view id) const {
    auto found = impl_->with_reader<std::optional<stored_version>>(
        [&](connection& db) { return load_current(db, type, id); });
    if (!found)
        return std::move(found).failure();
    if (!*found)
        return fhir::error::make(fhir::category::not_found, "not-found", reference(type, id) + " is not known");
    return std::move(**found);
}

fhir::result<stored_version> sqlite_store::read(std::string_view type, std::string_view id) const {
    auto current = read_current(type, id);
    if (current && current->deleted)
        return fhir::error::make(fhir::category::deleted, "deleted", reference(type, id) + " has been deleted");
    return current;
}

fhir::result<stored_version> sqlite_store::vread(std::string_view type, std::string_view id,
                                          std::int64_t version_id) const {
    auto found = impl_->with_reader<std::optional<stored_version>>(
        [&](connection& db) -> fhir::result<std::optional<stored_version>> {
            return query_one<stored_version>(
                db, version_sql, "reading a version",
                [&](statement& q) { q.bind(1, type).bind(2, id).bind(3, version_id); },
                [&](const statement& row) { return version_from(row, type, id); });
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

fhir::result<history_page> sqlite_store::history(const history_query& query) const {
    if (!query.id.empty() && query.type.empty())
        return store_fault("the history of one resource needs its type");
    if (query.visibility == nullptr)
        return store_fault("a history query needs the caller's visibility");
    history_page page;
    if (query.count == 0)
        return page;

    // The SQL is assembled from fixed fragments only; values are bound (detail::sql_text).
    detail::sql_text sql;
    std::string text = "SELECT v.seq, v.version_id, v.deleted, v.last_updated, v.json, v.method, v.type, v.id, "
                       "v.owner, v.citizens, v.labels, v.facets FROM resource_versions v WHERE 1";
    if (!query.type.empty())
        text += " AND v.type = " + sql.text_arg(query.type);
    if (!query.id.empty())
        text += " AND v.id = " + sql.text_arg(query.id);
    if (query.before)
        text += " AND v.seq < " + sql.arg(*query.before);
    if (query.since) {
        // Invariant 4: the first version at or after `since` bounds seq from below.
        const std::string since = sql.arg(*query.since);
        text += " AND v.last_updated >= " + since + " AND v.seq >= (SELECT s.seq FROM resource_versions s"
                " WHERE s.last_updated >= " + since + " ORDER BY s.last_updated LIMIT 1)";
    }
    if (query.at) {
        // Current at some point in [at_begin, at_end): made before at_end, and not replaced by a
        // next version at or before at_begin.
        const std::string at_begin = sql.arg(query.at->first);
        const std::string at_end = sql.arg(query.at->second);
        text += " AND v.last_updated < " + at_end + " AND v.seq < coalesce((SELECT e.seq FROM resource_versions e"
                " WHERE e.last_updated >= " + at_end + " ORDER BY e.last_updated LIMIT 1), 9223372036854775807)"
                " AND NOT EXISTS (SELECT 1 FROM resource_versions n WHERE n.type = v.type AND n.id = v.id"
                " AND n.version_id = v.version_id + 1 AND n.last_updated <= " + at_begin + ")";
    }
    // The visibility rule inside the query: LIMIT counts visible entries only, so pages are full.
    detail::visibility_sql rule(*query.visibility, sql);
    if (!query.type.empty() && !rule.readable(query.type))
        return page;
    text += " AND " + (query.type.empty() ? rule.visible_in_history("v")
                                          : rule.visible_in_history("v", std::string_view(query.type)));
    // One more than asked for: a probe that tells whether there is an older page.
    text += " ORDER BY v.seq DESC LIMIT " + sql.arg(static_cast<std::int64_t>(query.count) + 1);

    struct row {
        std::int64_t seq;
        stored_version version;
    };
    auto rows = impl_->with_reader<std::vector<row>>([&](connection& db) -> fhir::result<std::vector<row>> {
        std::vector<row> found;
        auto read = detail::each_row(
            db, sql, text,
            [&](sqlite3_stmt* select) {
                auto text_at = [&](int column) {
                    const auto* bytes = static_cast<const char*>(sqlite3_column_blob(select, column));
                    return std::string(bytes ? bytes : "", static_cast<std::size_t>(sqlite3_column_bytes(select, column)));
                };
                row entry;
                entry.seq = sqlite3_column_int64(select, 0);
                entry.version.version_id = sqlite3_column_int64(select, 1);
                entry.version.deleted = sqlite3_column_int64(select, 2) != 0;
                entry.version.last_updated = sqlite3_column_int64(select, 3);
                entry.version.json = text_at(4);
                entry.version.method = text_at(5);
                entry.version.type = text_at(6);
                entry.version.id = text_at(7);
                entry.version.owner = text_at(8);
                entry.version.citizens = split_lines(text_at(9));
                entry.version.labels = split_lines(text_at(10));
                entry.version.facets = split_lines(text_at(11));
                found.push_back(std::move(entry));
            },
            "reading history");
        if (!read)
            return std::move(read).failure();
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

fhir::result<std::vector<bool>> sqlite_store::visible_resources(
    const search_visibility& visibility, const std::vector<std::pair<std::string, std::string>>& resources) const {
    std::vector<bool> visible(resources.size(), false);
    // In batches, so that one statement's placeholders stay few (SQLite allows 32,766).
    constexpr std::size_t batch = 64;
    for (std::size_t from = 0; from < resources.size(); from += batch) {
        const std::size_t to = std::min(resources.size(), from + batch);
        detail::sql_text sql;
        std::string items;
        for (std::size_t i = from; i < to; ++i)
            items += (i == from ? "(" : ", (") + sql.arg(static_cast<std::int64_t>(i)) + ", " +
                     sql.text_arg(resources[i].first) + ", " + sql.text_arg(resources[i].second) + ")";
        detail::visibility_sql rule(visibility, sql);
        const std::string text = "WITH items (n, type, id) AS (VALUES " + items + ") SELECT n FROM items WHERE " +
                                 rule.resource_visible("items.type", "items.id");
        auto found = impl_->with_reader<std::vector<std::int64_t>>(
            [&](connection& db) -> fhir::result<std::vector<std::int64_t>> {
                std::vector<std::int64_t> shown;
                auto read = detail::each_row(
                    db, sql, text, [&](sqlite3_stmt* select) { shown.push_back(sqlite3_column_int64(select, 0)); },
                    "naming resources");
                if (!read)
                    return std::move(read).failure();
                return shown;
            });
        if (!found)
            return std::move(found).failure();
        for (const std::int64_t n : *found)
            visible[static_cast<std::size_t>(n)] = true;
    }
    return visible;
}

fhir::result<search_page> sqlite_store::search(const search_request& request) const {
    return impl_->with_reader<search_page>([&](connection& db) { return detail::run_search(db, request); });
}

fhir::result<std::string> sqlite_store::explain_search(const search_request& request) const {
    return impl_->with_reader<std::string>([&](connection& db) { return detail::explain_search(db, request); });
}

// ---- writes -------------------------------------------------------------------------------------

void sqlite_store::impl::enqueue(queued_job job) {
    std::vector<queued_job> one;
    one.push_back(std::move(job));
    enqueue_all(std::move(one));
}

void sqlite_store::impl::enqueue_all(std::vector<queued_job> jobs) {
    {
        std::lock_guard lock(queue_mutex);
        if (!stopping) {
            // Wake the writer only for what it would act on: a job someone waits for, a queue that
            // was empty (it is asleep), or a full group; it lingers over reads' audit records only.
            bool wake = queue.empty();
            for (queued_job& job : jobs) {
                if (is_urgent(job)) {
                    ++urgent_jobs;
                    wake = true;
                }
                queue.push_back(std::move(job));
            }
            if (wake || queue.size() >= std::max(1u, options.max_group_size))
                queue_filled.notify_one();
            return;
        }
    }
    const auto closing =
        fhir::error::make(fhir::category::busy, "transient", "storage temporarily unavailable: the store is closing");
    for (queued_job& job : jobs)
        std::visit(overloaded{
                       [&](queued_transaction& refused) {
                           if (refused.done)
                               refused.done(transaction_failure{SIZE_MAX, closing});
                       },
                       [&](auto& refused) {
                           if (refused.done)
                               refused.done(closing);
                       },
                   },
                   job);
}

void sqlite_store::submit(write_request request, write_callback done) {
    // The search index values are extracted here, on the caller's thread, not on the one writer.
    if (!request.index)
        prepare_index(request);
    impl_->enqueue(queued_write{std::move(request), std::move(done)});
}

void sqlite_store::submit_all(std::vector<std::pair<write_request, write_callback>> writes) {
    std::vector<queued_job> jobs;
    jobs.reserve(writes.size());
    for (auto& [request, done] : writes)
        jobs.emplace_back(queued_write{std::move(request), std::move(done)});
    impl_->enqueue_all(std::move(jobs));
}

void sqlite_store::append_audit(std::vector<audit_record> records, std::function<void(fhir::status)> done) {
    if (!done)
        impl_->audit_backlog += records.size();
    impl_->enqueue(queued_audit{std::move(records), std::move(done)});
}

std::size_t sqlite_store::audit_backlog() const noexcept { return impl_->audit_backlog.load(); }

bool sqlite_store::audit_backlog_full() const noexcept {
    return impl_->audit_backlog.load() >= std::max<std::size_t>(1, impl_->options.max_audit_backlog);
}

void sqlite_store::grant_break_glass(break_glass_grant grant, audit_record audit, std::function<void(fhir::status)> done) {
    impl_->enqueue(queued_grant{std::move(grant), std::move(audit), std::move(done)});
}

void sqlite_store::submit_transaction(std::vector<write_request> writes, transaction_callback done) {
    for (write_request& write : writes)
        if (!write.index)
            prepare_index(write);
    impl_->enqueue(queued_transaction{std::move(writes), std::move(done)});
}

void sqlite_store::prepare_index(write_request& request) const {
    request.index.reset();
    if (request.kind == write_kind::remove || request.content.empty())
        return;
    try {
        auto prepared = detail::prepare_search_values(request.type, request.id, request.content);
        if (prepared)
            request.index = std::make_shared<const prepared_index>(std::move(*prepared));
    } catch (const std::exception&) {
        // Content the writer will refuse as it would have (apply_guarded): no values made here.
    }
}

fhir::status sqlite_store::checkpoint() {
    if (std::this_thread::get_id() == impl_->writer.get_id())
        return store_fault("sqlite_store::checkpoint called on the writer thread");
    std::promise<fhir::status> finished;
    auto outcome = finished.get_future();
    impl_->enqueue(queued_checkpoint{[&finished](fhir::status done) { finished.set_value(std::move(done)); }});
    return outcome.get();
}

fhir::status sqlite_store::make_durable() { return checkpoint(); }

fhir::result<write_outcome> sqlite_store::write(write_request request) {
    if (std::this_thread::get_id() == impl_->writer.get_id())
        // From a write callback: the writer would wait for itself.
        return store_fault("sqlite_store::write called on the writer thread; use submit from a write callback");
    std::promise<fhir::result<write_outcome>> finished;
    auto outcome = finished.get_future();
    submit(std::move(request), [&finished](fhir::result<write_outcome> result) { finished.set_value(std::move(result)); });
    return outcome.get();
}

store_statistics sqlite_store::statistics() const {
    store_statistics counts;
    counts.groups = impl_->groups.load();
    counts.writes = impl_->writes.load();
    counts.largest_group = impl_->largest_group.load();
    counts.checkpoints = impl_->checkpoints.load();
    return counts;
}

int sqlite_store::impl::on_wal_commit(void* self, sqlite3* db, const char*, int frames) {
    auto& state = *static_cast<impl*>(self);
    const int mark = static_cast<int>(std::max(1u, state.options.checkpoint_frames));
    if (frames >= restart_factor * mark) {
        // The log starts again from its beginning only when a write transaction begins after a
        // checkpoint has copied all of it, and a busy writer rarely begins in the moment after the
        // checkpointer's end: so past restart_factor times the mark the writer finishes the copy
        // itself, as SQLite's own checkpoint would (little is left: the checkpointer has copied the
        // rest), and its next transaction starts the log over.
        std::lock_guard running(state.checkpoint_running);
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (frames >= mark) {
        {
            std::lock_guard lock(state.checkpoint_mutex);
            state.checkpoint_due = true;
        }
        state.checkpoint_wanted.notify_one();
    }
    return SQLITE_OK;
}

void sqlite_store::impl::run_checkpointer() {
    for (;;) {
        {
            std::unique_lock lock(checkpoint_mutex);
            checkpoint_wanted.wait(lock, [this] { return checkpointer_stopping || checkpoint_due; });
            if (checkpointer_stopping)
                return;
            checkpoint_due = false;
        }
        // Passive: copies what no reader still needs and returns, never waiting for the writer or a
        // reader; a busy or failed checkpoint loses nothing (the log keeps every commit) and the next
        // commit past the mark asks again.
        std::lock_guard running(checkpoint_running);
        sqlite3_wal_checkpoint_v2(checkpoint_db->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        ++checkpoints;
    }
}

void sqlite_store::impl::run_writer() {
    const std::size_t group_limit = std::max(1u, options.max_group_size);
    for (;;) {
        std::vector<queued_job> group;
        {
            std::unique_lock lock(queue_mutex);
            queue_filled.wait(lock, [this] { return stopping || !queue.empty(); });
            if (queue.empty())
                return; // stopping, and everything queued has been written
            // A checkpoint runs alone, after the groups queued before it.
            if (auto* checkpoint = std::get_if<queued_checkpoint>(&queue.front())) {
                queued_checkpoint job = std::move(*checkpoint);
                queue.pop_front();
                --urgent_jobs;
                lock.unlock();
                run_checkpoint(job);
                continue;
            }
            if (urgent_jobs == 0 && options.audit_linger.count() > 0) {
                // Only reads' audit records wait: let more join them, so that one commit (and one
                // emptying of every reader's page cache) serves many reads.
                const auto deadline = std::chrono::steady_clock::now() + options.audit_linger;
                queue_filled.wait_until(lock, deadline, [&] {
                    return stopping || urgent_jobs > 0 || queue.size() >= group_limit;
                });
            }
            const std::size_t taken = std::min(queue.size(), group_limit);
            group.reserve(taken);
            for (std::size_t i = 0; i < taken && !std::holds_alternative<queued_checkpoint>(queue.front()); ++i) {
                if (is_urgent(queue.front()))
                    --urgent_jobs;
                group.push_back(std::move(queue.front()));
                queue.pop_front();
            }
        }
        commit_group(group);
    }
}

namespace {

/// How a job run inside its own savepoint ended.
enum class savepoint_end {
    kept,   ///< the job's changes stand (until the group commits)
    undone, ///< the job failed and its changes were rolled back; the transaction goes on
    lost,   ///< the whole transaction is gone or unusable
};

/// Runs `run` (returning fhir::status) inside a savepoint of the open transaction: kept on
/// success, rolled back to the savepoint (with the audit chain's tip) on failure.
template <class Run>
savepoint_end run_in_savepoint(connection& db, chain_tip& tip, const chain_tip& committed_tip, Run&& run,
                                      std::optional<fhir::error>& failure) {
    const chain_tip before = tip;
    if (auto saved = db.run(savepoint_sql, "starting a write"); !saved) {
        failure = saved.failure();
        return savepoint_end::lost;
    }
    fhir::status done = run();
    if (sqlite3_get_autocommit(db.handle())) {
        // SQLite rolled the whole transaction back (an I/O error, a full disk): the earlier
        // jobs in the group are gone too.
        failure = !done.ok() && (done.failure().kind == fhir::category::busy || done.failure().kind == fhir::category::fault)
                      ? done.failure()
                      : store_fault("storage failure: the write transaction was rolled back");
        tip = committed_tip;
        return savepoint_end::lost;
    }
    if (!done) {
        auto undone = db.run(rollback_to_savepoint_sql, "undoing a failed write");
        if (undone)
            undone = db.run(release_savepoint_sql, "undoing a failed write");
        if (!undone) {
            failure = undone.failure();
            return savepoint_end::lost;
        }
        tip = before; // invariant 13: the records appended inside the savepoint are gone
        failure = done.failure();
        return savepoint_end::undone;
    }
    if (auto released = db.run(release_savepoint_sql, "finishing a write"); !released) {
        failure = released.failure();
        return savepoint_end::lost;
    }
    return savepoint_end::kept;
}

} // namespace

void sqlite_store::impl::commit_group(std::vector<queued_job>& group) {
    std::uint64_t write_count = 0;
    for (const queued_job& job : group) {
        if (std::holds_alternative<queued_write>(job))
            ++write_count;
        else if (const auto* transaction = std::get_if<queued_transaction>(&job))
            write_count += transaction->writes.size();
    }
    ++groups;
    writes += write_count;
    for (auto seen = largest_group.load(); write_count > seen && !largest_group.compare_exchange_weak(seen, write_count);) {
    }

    connection& db = *writer_db;
    // Per job: a write's outcome, or the status of an audit append or a grant.
    std::vector<std::optional<fhir::result<write_outcome>>> outcomes(group.size());
    std::vector<std::optional<fhir::status>> statuses(group.size());
    std::vector<std::optional<transaction_result>> transactions(group.size());
    // Invariant 7: once the transaction as a whole is lost, no job in it is acknowledged.
    auto fail_all = [&](const fhir::error& failure) {
        if (!sqlite3_get_autocommit(db.handle()))
            db.run(rollback_sql, "rolling back a write transaction");
        tip = committed_tip;
        for (std::size_t i = 0; i < group.size(); ++i) {
            if (std::holds_alternative<queued_write>(group[i]))
                outcomes[i].emplace(failure);
            else if (std::holds_alternative<queued_transaction>(group[i]))
                transactions[i].emplace(transaction_failure{SIZE_MAX, failure});
            else
                statuses[i].emplace(failure);
        }
    };
    auto deliver = [&] {
        // Invariant 24: reads' audit records (no one waits for them) that a failure kept out of the
        // database go back to the front of the queue, in order, for the next group.
        std::vector<queued_job> retry;
        for (std::size_t i = 0; i < group.size(); ++i) {
            if (auto* audit = std::get_if<queued_audit>(&group[i]); audit && !audit->done) {
                if (statuses[i] && !statuses[i]->ok()) {
                    retry.push_back(std::move(group[i]));
                    continue;
                }
                audit_backlog -= audit->records.size(); // committed
            }
            try {
                std::visit(overloaded{
                               [&](queued_write& job) { job.done(std::move(*outcomes[i])); },
                               [&](queued_transaction& job) { job.done(std::move(*transactions[i])); },
                               [&](auto& job) {
                                   if (job.done)
                                       job.done(std::move(*statuses[i]));
                               },
                           },
                           group[i]);
            } catch (...) {
                // A callback's failure is its own; the writer must go on serving the others.
            }
        }
        if (!retry.empty()) {
            std::lock_guard lock(queue_mutex);
            if (!stopping) // closing gives up on them rather than wait on the fault forever
                for (auto it = retry.rbegin(); it != retry.rend(); ++it)
                    queue.push_front(std::move(*it));
        }
    };
    auto in_savepoint = [&](auto&& run, std::optional<fhir::error>& failure) {
        return run_in_savepoint(db, tip, committed_tip, run, failure);
    };

    if (auto begun = db.run(begin_sql, "starting a write transaction"); !begun) {
        fail_all(begun.failure());
        return deliver();
    }
    for (std::size_t i = 0; i < group.size(); ++i) {
        std::optional<fhir::error> failure;
        bool lost = false;
        if (auto* job = std::get_if<queued_write>(&group[i])) {
            std::optional<write_outcome> written;
            const auto end = in_savepoint(
                [&]() -> fhir::status {
                    auto applied = apply_request(job->request);
                    if (!applied)
                        return std::move(applied).failure();
                    if (job->request.audit) { // invariant 14
                        if (auto appended = append_one(success_record(*job->request.audit, *applied)); !appended)
                            return appended;
                    }
                    written = std::move(*applied);
                    return {};
                },
                failure);
            if (end == savepoint_end::kept) {
                outcomes[i].emplace(std::move(*written));
            } else if (end == savepoint_end::undone) {
                outcomes[i].emplace(*failure);
                if (job->request.audit) {
                    // The write is undone; its audit record still goes in, saying so.
                    std::optional<fhir::error> audit_failure;
                    if (in_savepoint([&] { return append_one(undone_record(*job->request.audit, &*failure)); },
                                     audit_failure) != savepoint_end::kept) {
                        failure = audit_failure;
                        lost = true; // an audit record that cannot be kept fails the group
                    }
                }
            } else {
                lost = true;
            }
        } else if (auto* job = std::get_if<queued_transaction>(&group[i])) {
            std::optional<std::vector<write_outcome>> written;
            std::size_t failed_at = 0;
            const auto end = in_savepoint(
                [&]() -> fhir::status {
                    auto applied = apply_transaction(job->writes, failed_at);
                    if (!applied)
                        return std::move(applied).failure();
                    failed_at = SIZE_MAX; // from here on, no write's fault
                    for (std::size_t w = 0; w < job->writes.size(); ++w) // invariant 14
                        if (job->writes[w].audit)
                            if (auto appended = append_one(success_record(*job->writes[w].audit, (*applied)[w]));
                                !appended)
                                return appended;
                    written = std::move(*applied);
                    return {};
                },
                failure);
            if (end == savepoint_end::kept) {
                transactions[i].emplace(std::move(*written));
            } else if (end == savepoint_end::undone) {
                const bool storage_failure =
                    failure->kind == fhir::category::busy || failure->kind == fhir::category::fault;
                const std::size_t culprit = storage_failure ? SIZE_MAX : failed_at;
                transactions[i].emplace(transaction_failure{culprit, *failure});
                // Nothing of the transaction stands; each write's audit record still goes in, saying so.
                std::optional<fhir::error> audit_failure;
                if (in_savepoint(
                        [&]() -> fhir::status {
                            for (std::size_t w = 0; w < job->writes.size(); ++w) {
                                if (!job->writes[w].audit)
                                    continue;
                                auto record = undone_record(*job->writes[w].audit, w == culprit ? &*failure : nullptr);
                                if (auto appended = append_one(std::move(record)); !appended)
                                    return appended;
                            }
                            return {};
                        },
                        audit_failure) != savepoint_end::kept) {
                    failure = audit_failure;
                    lost = true;
                }
            } else {
                lost = true;
            }
        } else if (auto* job = std::get_if<queued_audit>(&group[i])) {
            const auto end = in_savepoint(
                [&]() -> fhir::status {
                    for (const auto& record : job->records)
                        if (auto appended = append_one(record); !appended)
                            return appended;
                    return {};
                },
                failure);
            lost = end == savepoint_end::lost;
            if (!lost)
                statuses[i].emplace(end == savepoint_end::kept ? fhir::status{} : fhir::status{*failure});
        } else {
            auto& grant = std::get<queued_grant>(group[i]);
            const auto end = in_savepoint(
                [&]() -> fhir::status { // invariant 15
                    if (auto inserted = insert_grant(grant.grant); !inserted)
                        return inserted;
                    return append_one(grant.audit);
                },
                failure);
            lost = end == savepoint_end::lost;
            if (!lost)
                statuses[i].emplace(end == savepoint_end::kept ? fhir::status{} : fhir::status{*failure});
        }
        if (lost) {
            fail_all(*failure);
            return deliver();
        }
    }
    // Invariant 18: after the group's jobs, in a savepoint of its own, so a purge that fails is
    // undone and fails no job (the next purge tries again).
    if (const auto now = std::chrono::steady_clock::now(); !last_purge || now - *last_purge >= purge_interval) {
        last_purge = now;
        std::optional<fhir::error> failure;
        if (in_savepoint([&] { return purge_closed_search_rows(); }, failure) == savepoint_end::lost) {
            fail_all(*failure);
            return deliver();
        }
    }
    if (auto committed = db.run(commit_sql, "committing a write transaction"); !committed) {
        fail_all(committed.failure());
        return deliver();
    }
    committed_tip = tip;
    // Cached standings are stale from here on; bumped before any acknowledgement, so a caller who
    // has seen their write acknowledged never gets a standing read before it.
    if (std::any_of(group.begin(), group.end(), changes_standing))
        access_generation.fetch_add(1, std::memory_order_acq_rel);
    deliver(); // invariant 6: only now, after COMMIT, is anything acknowledged
}

void sqlite_store::impl::run_checkpoint(queued_checkpoint& job) {
    fhir::status done;
    // TRUNCATE: waits (busy timeout) for readers, copies the whole log, fsyncs the log before and the
    // database after (synchronous NORMAL or FULL), and empties the log. SQLITE_BUSY: not all copied.
    std::unique_lock running(checkpoint_running);
    const int rc = sqlite3_wal_checkpoint_v2(writer_db->handle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    running.unlock();
    if (rc != SQLITE_OK)
        done = detail::sqlite_failure(rc, "checkpointing the database");
    try {
        if (job.done)
            job.done(std::move(done));
    } catch (...) {
        // A callback's failure is its own; the writer must go on serving the others.
    }
}

fhir::status sqlite_store::impl::purge_closed_search_rows() {
    // H: the newest version older than the snapshot lifetime. A row closed at or before H was closed
    // before every snapshot still readable was taken, so none of them needs it.
    const timestamp cutoff =
        now_microseconds() - std::chrono::duration_cast<std::chrono::microseconds>(options.snapshot_lifetime).count();
    auto horizon = query_one<std::int64_t>(
        *writer_db, newest_seq_at_sql, "purging closed search index rows", [&](statement& q) { q.bind(1, cutoff); },
        [](const statement& row) { return row.integer(0); });
    if (!horizon)
        return std::move(horizon).failure();
    if (!*horizon)
        return {}; // no version is that old yet
    auto purged = detail::purge_closed_rows(*writer_db, **horizon);
    if (!purged)
        return std::move(purged).failure();
    return {};
}

fhir::result<write_outcome> sqlite_store::impl::apply_guarded(const write_request& request) {
    try {
        return apply(request);
    } catch (const std::exception&) {
        // A bug (e.g. content that is not canonical JSON). The message could quote content, so
        // it is not passed on; the savepoint rollback keeps the database as it was.
        return store_fault("a write failed inside the store (" + reference(request.type, request.id) + ")");
    }
}

fhir::result<write_outcome> sqlite_store::impl::apply(const write_request& request) {
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
            // An erasure of a citizen whose Patient was deleted before still removes what remains
            // of the record (invariant 25); with nothing left it changes nothing.
            if (current && request.erase_record && request.type == "Patient")
                if (auto gone = detail::erase_citizen(*writer_db, request.id, {{"Patient", request.id}}); !gone)
                    return std::move(gone).failure();
            return outcome;
        }
    } else if (request.kind == write_kind::create && live && request.fail_if_exists) {
        return fhir::error::make(fhir::category::conflict, "duplicate", target + " already exists");
    }

    // Before If-Match, so that another organisation learns nothing of the version.
    if (live)
        if (auto owned = check_owner(request, *current); !owned)
            return std::move(owned).failure();
    if (request.kind != write_kind::remove &&
        (holds_line_break(request.access.labels) || holds_line_break(request.access.facets) ||
         std::any_of(request.citizens.begin(), request.citizens.end(),
                     [](const fhir::citizen_link& link) { return link.nhs_number.find('\n') != std::string::npos; })))
        return store_fault("a write's access facts hold a line break (" + target + ")");

    // A citizen's Patient goes only with the whole record, and only by a full erasure.
    std::vector<std::pair<std::string, std::string>> record;
    if (request.kind == write_kind::remove && request.type == "Patient" && live) {
        auto items = record_items(request.id);
        if (!items)
            return std::move(items).failure();
        record = std::move(*items);
        if (!record.empty() && !request.erase_record)
            // No count: the record may hold items the caller may not see.
            return fhir::error::make(fhir::category::conflict, "conflict",
                                     "the citizen's record holds items; a Patient is deleted only with its whole "
                                     "record, by a full erasure that the access policy must allow");
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
            // Unchanged: stamped as the current version was, the bytes would be the same (comparing
            // bytes, not hashes, so a collision cannot lose an update), and so would the access facts
            // (the same content can give another link: an end date that has passed since).
            const std::string restamped = fhir::stamp_resource(request.content, request.id, current->version_id,
                                                               store::format_instant(current->last_updated));
            auto same = restamped == current->json ? same_access(request, *current) : fhir::result<bool>(false);
            if (!same)
                return std::move(same).failure();
            if (*same) {
                write_outcome outcome;
                outcome.unchanged = true;
                outcome.version = *current;
                return outcome;
            }
        }
    }
    // A full erasure: every item of the record goes, whoever wrote it, then the Patient.
    std::vector<stored_version> erased;
    for (const auto& [type, id] : record) {
        write_request item;
        item.kind = write_kind::remove;
        item.type = type;
        item.id = id;
        item.writer = request.writer;
        item.any_owner = true;
        auto removed = apply(item);
        if (!removed)
            return std::move(removed).failure();
        if (!removed->removed_nothing)
            erased.push_back(std::move(removed->version));
    }
    auto written = write_version(request, current);
    if (!written)
        return written;
    written->also_removed = std::move(erased);
    // Invariant 25: an erasure is final.
    if (request.erase_record && request.kind == write_kind::remove && request.type == "Patient") {
        record.emplace_back("Patient", request.id);
        if (auto gone = detail::erase_citizen(*writer_db, request.id, record); !gone)
            return std::move(gone).failure();
    }
    return written;
}

fhir::result<resolution> sqlite_store::impl::resolve(const write_request& request) {
    const write_condition& condition = *request.condition;
    const std::string& type = request.type;
    auto found = detail::find_matches(*writer_db, condition, std::max(1u, condition.max_matches) + 1);
    if (!found)
        return std::move(found).failure();
    std::vector<stored_version>& matches = *found;
    resolution decided;
    write_request plain = request;
    plain.condition.reset();
    auto too_many = [&] {
        return fhir::error::make(fhir::category::precondition_failed, "multiple-matches",
                                 "the criteria match " + std::string(matches.size() > condition.max_matches ? "more than " : "") +
                                     std::to_string(std::min<std::size_t>(matches.size(), condition.max_matches)) + " " + type +
                                     " resources; make them more selective");
    };
    switch (request.kind) {
    case write_kind::create:
        if (matches.size() > 1)
            return too_many();
        if (matches.size() == 1)
            decided.matched = std::move(matches.front());
        else
            decided.writes.push_back(std::move(plain));
        return decided;
    case write_kind::update:
        if (matches.size() > 1)
            return too_many();
        if (matches.size() == 1) {
            if (!condition.client_id.empty() && condition.client_id != matches.front().id)
                return fhir::error::make(fhir::category::malformed, "invalid",
                                         "the resource's id differs from the id of the " + type + " the criteria match",
                                         type + ".id");
            plain.id = matches.front().id;
        }
        decided.writes.push_back(std::move(plain));
        return decided;
    case write_kind::remove:
        if (matches.size() > 1 && (!condition.multiple || matches.size() > condition.max_matches))
            return too_many();
        for (const stored_version& match : matches) {
            const bool allowed = std::any_of(condition.removable.begin(), condition.removable.end(),
                                             [&](const search_visibility::type_grant& grant) {
                                                 return grant.type == type &&
                                                        (grant.whole || fhir::facets_satisfy(grant.facets, match.facets));
                                             });
            if (!allowed)
                return fhir::error::make(fhir::category::forbidden, "forbidden",
                                         "your role may not delete a " + type + " the criteria match");
            write_request one = plain;
            one.id = match.id;
            decided.writes.push_back(std::move(one));
        }
        return decided;
    }
    return store_fault("a conditional write of an unknown kind");
}

fhir::result<write_outcome> sqlite_store::impl::apply_request(const write_request& request) {
    if (!request.condition)
        return apply_guarded(request);
    auto decided = resolve(request);
    if (!decided)
        return std::move(decided).failure();
    write_outcome outcome;
    if (decided->matched) {
        outcome.matched = true;
        outcome.version = std::move(*decided->matched);
        return outcome;
    }
    if (decided->writes.empty()) { // a conditional remove that matched nothing
        outcome.removed_nothing = true;
        outcome.version.type = request.type;
        return outcome;
    }
    for (std::size_t i = 0; i < decided->writes.size(); ++i) {
        auto applied = apply_guarded(decided->writes[i]);
        if (!applied)
            return std::move(applied).failure();
        if (i == 0) {
            outcome = std::move(*applied);
        } else {
            outcome.also_removed.push_back(std::move(applied->version));
            for (auto& more : applied->also_removed)
                outcome.also_removed.push_back(std::move(more));
        }
    }
    return outcome;
}

fhir::result<std::vector<write_outcome>> sqlite_store::impl::apply_transaction(const std::vector<write_request>& writes,
                                                                        std::size_t& failed) {
    std::vector<write_request> plan = writes;
    std::vector<std::optional<write_outcome>> outcomes(writes.size());
    std::vector<std::pair<std::string, std::string>> renamed; // assigned id -> the id a condition chose
    // First the removes (applied at once, so later conditions see them) and every condition.
    for (std::size_t i = 0; i < plan.size(); ++i) {
        failed = i;
        if (plan[i].kind == write_kind::remove) {
            auto removed = apply_request(plan[i]);
            if (!removed)
                return std::move(removed).failure();
            outcomes[i] = std::move(*removed);
            continue;
        }
        if (!plan[i].condition)
            continue;
        auto decided = resolve(plan[i]);
        if (!decided)
            return std::move(decided).failure();
        std::string chosen;
        if (decided->matched) {
            chosen = decided->matched->id;
            write_outcome matched;
            matched.matched = true;
            matched.version = std::move(*decided->matched);
            outcomes[i] = std::move(matched);
        } else {
            plan[i] = std::move(decided->writes.front());
            chosen = plan[i].id;
        }
        if (chosen != writes[i].id) {
            if (!is_uuid(writes[i].id))
                return fhir::error::make(fhir::category::precondition_failed, "conflict",
                                         "the criteria match " + reference(writes[i].type, chosen) +
                                             ", but the resource's content fixes its id as " + writes[i].id);
            renamed.emplace_back(writes[i].id, chosen);
        }
    }
    for (const auto& [from, to] : renamed)
        for (write_request& write : plan)
            if (write.kind != write_kind::remove)
                replace_all(write.content, from, to);
    // Then the creates and updates, Patients first: an item may be listed before its citizen.
    for (const bool patients : {true, false})
        for (std::size_t i = 0; i < plan.size(); ++i) {
            if (outcomes[i] || (plan[i].type == "Patient") != patients)
                continue;
            failed = i;
            auto applied = apply_guarded(plan[i]);
            if (!applied)
                return std::move(applied).failure();
            outcomes[i] = std::move(*applied);
        }
    std::vector<write_outcome> done;
    done.reserve(outcomes.size());
    for (auto& outcome : outcomes)
        done.push_back(std::move(*outcome));
    return done;
}

fhir::result<std::vector<std::pair<std::string, std::string>>> sqlite_store::impl::record_items(std::string_view nhs_number) {
    std::vector<std::pair<std::string, std::string>> items;
    auto prepared = writer_db->prepare(record_items_sql, "reading a citizen's record");
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    query.bind(1, nhs_number);
    int rc;
    while ((rc = query.step()) == SQLITE_ROW)
        items.emplace_back(query.text(0), query.text(1));
    if (rc != SQLITE_DONE)
        return detail::sqlite_failure(rc, "reading a citizen's record");
    return items;
}

fhir::status sqlite_store::impl::check_citizens(const write_request& request) {
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

fhir::status sqlite_store::impl::check_owner(const write_request& request, const stored_version& current) {
    // Invariant 10. No writer at all is a tool or a test, which owns nothing and checks nothing.
    if (request.writer.empty() || request.any_owner || request.writer == current.owner)
        return {};
    // Names no organisation: the owner's ODS code is not the caller's to learn.
    return fhir::error::make(fhir::category::forbidden, "forbidden",
                             "only the organisation that contributed this resource may change it");
}

fhir::result<bool> sqlite_store::impl::same_access(const write_request& request, const stored_version& current) {
    const access_rows wanted = access_rows_for(request);
    if (current.citizens != wanted.citizens || current.labels != request.access.labels ||
        current.facets != request.access.facets)
        return false;
    connection& db = *writer_db;
    std::vector<organisation_link_row> links;
    {
        auto prepared = db.prepare(organisation_links_sql, "comparing organisation links");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, request.type).bind(2, request.id);
        int rc;
        while ((rc = query.step()) == SQLITE_ROW) {
            organisation_link_row row{query.text(0), query.text(1), query.text(2), query.integer(3) != 0, {}};
            if (sqlite3_column_type(*prepared, 4) != SQLITE_NULL)
                row.ended = query.integer(4);
            links.push_back(std::move(row));
        }
        if (rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "comparing organisation links");
    }
    if (links != wanted.links)
        return false;
    auto objection = exists(db, has_objection_sql, "comparing objections",
                            [&](statement& query) { query.bind(1, request.type).bind(2, request.id); });
    if (!objection)
        return std::move(objection).failure();
    return *objection == wanted.objection;
}

fhir::status sqlite_store::impl::write_access_rows(const write_request& request, bool deletion, bool live) {
    // Invariant 11: the rows are the new version's, or none for a deletion; only a live resource has
    // rows to remove.
    connection& db = *writer_db;
    auto by_resource = [&](statement& use) -> statement& { return use.bind(1, request.type).bind(2, request.id); };
    if (live) {
        if (auto removed = execute(db, remove_organisation_links_sql, "linking organisations", by_resource); !removed)
            return removed;
        if (auto removed = execute(db, remove_objections_sql, "recording an objection", by_resource); !removed)
            return removed;
    }
    if (deletion)
        return {};
    const access_rows rows = access_rows_for(request);
    for (const auto& link : rows.links) {
        auto inserted = execute(db, insert_organisation_link_sql, "linking organisations", [&](statement& insert) {
            insert.bind(1, request.type).bind(2, request.id).bind(3, link.nhs_number).bind(4, link.ods);
            insert.bind(5, link.kind).bind(6, std::int64_t{link.active});
            if (link.ended)
                insert.bind(7, *link.ended); // left unbound: NULL
        });
        if (!inserted)
            return inserted;
    }
    if (rows.objection)
        for (const auto& citizen : rows.citizens)
            if (auto inserted = execute(db, insert_objection_sql, "recording an objection",
                                        [&](statement& insert) { by_resource(insert).bind(3, citizen); });
                !inserted)
                return inserted;
    return {};
}

fhir::status sqlite_store::impl::insert_grant(const break_glass_grant& grant) {
    return execute(*writer_db, insert_grant_sql, "recording a break-glass grant", [&](statement& insert) {
        insert.bind(1, grant.nhs_number).bind(2, grant.organisation).bind(3, grant.user).bind(4, grant.reason);
        insert.bind(5, grant.from).bind(6, grant.until).bind(7, grant.request_id).bind(8, grant.role);
    });
}

fhir::status sqlite_store::impl::append_one(audit_record record) {
    // Invariant 13: the writer thread is the only appender.
    record.sequence = tip.sequence + 1;
    record.previous_hash = tip.hash;
    record.hash = store::audit_hash(record);
    auto inserted = execute(*writer_db, insert_audit_sql, "appending to the audit log", [&](statement& insert) {
        insert.bind(1, record.sequence).bind(2, record.time).bind(3, record.request_id).bind(4, record.user);
        insert.bind(5, record.role).bind(6, record.organisation).bind(7, record.purpose);
        insert.bind(8, record.break_glass_reason).bind(9, record.nhs_number).bind(10, record.resource_type);
        insert.bind(11, record.resource_ids).bind(12, record.action).bind(13, record.outcome);
        insert.bind(14, record.detail).bind(15, record.previous_hash).bind(16, record.hash);
    });
    if (!inserted)
        return inserted;
    tip = chain_tip{record.sequence, record.hash};
    return {};
}

fhir::result<write_outcome> sqlite_store::impl::write_version(const write_request& request,
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
    const bool live = current && !current->deleted;
    version.owner = live ? current->owner : request.writer; // invariant 10
    if (deletion) { // invariant 12
        version.citizens = current->citizens;
        version.labels = current->labels;
        version.facets = current->facets;
    } else {
        version.citizens = access_rows_for(request).citizens;
        version.labels = request.access.labels;
        version.facets = request.access.facets;
    }
    const std::string last_updated = store::format_instant(version.last_updated);
    // Stamp and index values made ahead of the writer, if they are this content's (write_request::index).
    const prepared_index* ahead = request.index.get();
    if (deletion || !ahead || ahead->type != version.type || ahead->id != version.id || ahead->content != request.content)
        ahead = nullptr;
    if (!deletion) {
        auto stamped = ahead ? detail::stamp_prepared(*ahead, version.version_id, last_updated) : std::nullopt;
        version.json = stamped ? std::move(*stamped)
                               : fhir::stamp_resource(request.content, request.id, version.version_id, last_updated);
    }

    connection& db = *writer_db;
    {
        // Bound text must outlive the step.
        const std::string citizens = join_lines(version.citizens);
        const std::string labels = join_lines(version.labels);
        const std::string facets = join_lines(version.facets);
        auto prepared = db.prepare(insert_version_sql, "writing a version");
        if (!prepared)
            return std::move(prepared).failure();
        statement insert(*prepared);
        insert.bind(1, version.type).bind(2, version.id).bind(3, version.version_id).bind(4, version.last_updated);
        insert.bind(5, version.method).bind(6, std::int64_t{deletion}).bind_blob(7, version.json);
        insert.bind(8, version.owner).bind(9, citizens).bind(10, labels).bind(11, facets);
        if (const int rc = insert.step(); rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "writing a version");
    }
    const std::int64_t seq = sqlite3_last_insert_rowid(db.handle());
    // The version this one supersedes, whose search index rows it closes (invariant 16); a deletion
    // marker's were closed when it was written.
    std::optional<std::int64_t> superseded_seq;
    if (live) {
        auto found = query_one<std::int64_t>(
            db, current_seq_sql, "writing a version", [&](statement& q) { q.bind(1, version.type).bind(2, version.id); },
            [](const statement& row) { return row.integer(0); });
        if (!found)
            return std::move(found).failure();
        superseded_seq = *found;
    }
    {
        auto prepared = db.prepare(current ? point_current_sql : insert_current_sql, "writing a version");
        if (!prepared)
            return std::move(prepared).failure();
        statement point(*prepared);
        point.bind(1, version.type).bind(2, version.id).bind(3, version.version_id).bind(4, seq);
        point.bind(5, std::int64_t{deletion});
        if (const int rc = point.step(); rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "writing a version");
    }
    // Invariants 5 and 11: a resource that is not live has no citizen links, organisation links or
    // objections to remove.
    if (live) { // invariant 5: the links are the new version's, or none for a deletion
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
    if (auto linked = write_access_rows(request, deletion, live); !linked)
        return std::move(linked).failure();
    // Invariant 16: the superseded version's rows are closed at this version; a live version's own
    // come from the stamped JSON, exactly as stored and as migration 4 reads it.
    if (superseded_seq)
        if (auto closed = detail::close_search_rows(db, *superseded_seq, seq); !closed)
            return std::move(closed).failure();
    if (!deletion) {
        auto indexed = ahead ? detail::insert_search_rows(db, seq, *ahead, last_updated)
                           : detail::insert_search_rows(db, seq, version.type, version.id, version.json);
        if (!indexed)
            return std::move(indexed).failure();
        if (auto recorded = detail::insert_version_citizens(db, seq, version.citizens); !recorded) // invariant 17
            return std::move(recorded).failure();
        if (auto recorded = detail::insert_version_targets(db, seq, version.type, version.json); !recorded)
            return std::move(recorded).failure();
    }

    write_outcome outcome;
    outcome.created = !current || current->deleted;
    outcome.version = std::move(version);
    return outcome;
}

// ---- access and audit reads -------------------------------------------------------------------

fhir::result<citizen_standing> sqlite_store::standing(std::string_view nhs_number, std::string_view organisation,
                                               std::string_view user, std::string_view role, timestamp recent_since,
                                               timestamp now) const {
    const timestamp ttl =
        std::chrono::duration_cast<std::chrono::microseconds>(impl_->options.standing_cache_ttl).count();
    if (ttl <= 0)
        return impl_->read_standing(nhs_number, organisation, user, role, recent_since, now);
    std::string key;
    key.reserve(nhs_number.size() + organisation.size() + user.size() + role.size() + 25);
    key.append(nhs_number).append(1, '\0').append(organisation).append(1, '\0').append(user).append(1, '\0');
    key.append(role).append(1, '\0');
    key += std::to_string(now - recent_since);
    // Read before the query: a commit after this load makes the entry stale at the next look, whether
    // or not the query saw it.
    const std::uint64_t generation = impl_->access_generation.load(std::memory_order_acquire);
    {
        std::lock_guard lock(impl_->standings_mutex);
        if (auto found = impl_->standings.find(key); found != impl_->standings.end()) {
            const cached_standing& cached = found->second;
            if (cached.generation == generation && now >= cached.read_at && now - cached.read_at < ttl) {
                citizen_standing standing = cached.standing;
                if (standing.break_glass_until && *standing.break_glass_until <= now)
                    standing.break_glass_until.reset(); // the grant ended since
                return standing;
            }
        }
    }
    auto read = impl_->read_standing(nhs_number, organisation, user, role, recent_since, now);
    if (read) {
        std::lock_guard lock(impl_->standings_mutex);
        // Bounded: at a few hundred bytes an entry, 65,536 of them are well within the memory budget;
        // emptied at once rather than evicted one by one (they are all gone within a second anyway).
        if (impl_->standings.size() >= 65536)
            impl_->standings.clear();
        impl_->standings.insert_or_assign(std::move(key), cached_standing{*read, generation, now});
    }
    return read;
}

fhir::result<citizen_standing> sqlite_store::impl::read_standing(std::string_view nhs_number, std::string_view organisation,
                                                          std::string_view user, std::string_view role,
                                                          timestamp recent_since, timestamp now) const {
    return with_reader<citizen_standing>([&](connection& db) -> fhir::result<citizen_standing> {
        citizen_standing found;
        auto prepared = db.prepare(standing_sql, "reading a citizen's standing");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, nhs_number).bind(2, organisation).bind(3, recent_since).bind(4, user).bind(5, now).bind(6, role);
        if (const int rc = query.step(); rc != SQLITE_ROW)
            return detail::sqlite_failure(rc, "reading a citizen's standing");
        found.held = query.integer(0) != 0;
        found.relationship = query.integer(1) != 0;
        found.objection = query.integer(2) != 0;
        if (sqlite3_column_type(*prepared, 3) != SQLITE_NULL) // max() over no rows is NULL
            found.break_glass_until = query.integer(3);
        return found;
    });
}

fhir::status sqlite_store::impl::flush_audit() {
    if (writer.get_id() == std::this_thread::get_id())
        return {}; // the writer's own reads see its open transaction
    std::promise<fhir::status> committed;
    auto done = committed.get_future();
    enqueue(queued_audit{{}, [&committed](fhir::status status) { committed.set_value(std::move(status)); }});
    return done.get();
}

fhir::result<store::audit_page> sqlite_store::audit(const audit_query& query) const {
    audit_page page;
    if (query.count == 0)
        return page;
    if (auto flushed = impl_->flush_audit(); !flushed)
        return std::move(flushed).failure();
    // Assembled from fixed fragments only (one cached statement per shape); values are bound.
    std::string sql = "SELECT " + audit_columns + " FROM audit_log WHERE 1";
    if (!query.nhs_number.empty())
        sql += " AND nhs_number = :nhs_number";
    if (!query.agent.empty())
        sql += " AND (user = :agent OR organisation = :agent)";
    if (query.time)
        sql += " AND time >= :begin AND time < :end";
    if (!query.purpose.empty())
        sql += " AND purpose = :purpose";
    if (query.before)
        sql += " AND sequence < :before";
    sql += " ORDER BY sequence DESC LIMIT :limit";

    auto records = impl_->with_reader<std::vector<audit_record>>(
        [&](connection& db) -> fhir::result<std::vector<audit_record>> {
            auto prepared = db.prepare(sql, "reading the audit log");
            if (!prepared)
                return std::move(prepared).failure();
            statement select(*prepared);
            if (!query.nhs_number.empty())
                select.bind(":nhs_number", query.nhs_number);
            if (!query.agent.empty())
                select.bind(":agent", query.agent);
            if (query.time)
                select.bind(":begin", query.time->first).bind(":end", query.time->second);
            if (!query.purpose.empty())
                select.bind(":purpose", query.purpose);
            if (query.before)
                select.bind(":before", *query.before);
            // One more than asked for: a probe that tells whether there is an older page.
            select.bind(":limit", static_cast<std::int64_t>(query.count) + 1);
            std::vector<audit_record> found;
            int rc;
            while ((rc = select.step()) == SQLITE_ROW)
                found.push_back(audit_from(select));
            if (rc != SQLITE_DONE)
                return detail::sqlite_failure(rc, "reading the audit log");
            return found;
        });
    if (!records)
        return std::move(records).failure();
    const bool more = records->size() > query.count;
    if (more)
        records->resize(query.count);
    page.records = std::move(*records);
    if (more)
        page.next = page.records.back().sequence;
    return page;
}

fhir::result<audit_record> sqlite_store::audit_record_at(std::int64_t sequence) const {
    if (auto flushed = impl_->flush_audit(); !flushed)
        return std::move(flushed).failure();
    auto found = impl_->with_reader<std::optional<audit_record>>(
        [&](connection& db) -> fhir::result<std::optional<audit_record>> {
            return query_one<audit_record>(
                db, audit_at_sql, "reading the audit log", [&](statement& q) { q.bind(1, sequence); },
                [](const statement& row) { return audit_from(row); });
        });
    if (!found)
        return std::move(found).failure();
    if (!*found)
        return fhir::error::make(fhir::category::not_found, "not-found",
                                 "there is no audit record " + std::to_string(sequence));
    return std::move(**found);
}

fhir::result<store::audit_verification> sqlite_store::verify_audit() const {
    if (auto flushed = impl_->flush_audit(); !flushed)
        return std::move(flushed).failure();
    return impl_->with_reader<audit_verification>([&](connection& db) -> fhir::result<audit_verification> {
        // One statement: one read snapshot of the whole log, however long the walk.
        auto prepared = db.prepare(audit_walk_sql, "verifying the audit log");
        if (!prepared)
            return std::move(prepared).failure();
        statement walk(*prepared);
        audit_verification verdict;
        std::string previous_hash = genesis_hash;
        int rc;
        while ((rc = walk.step()) == SQLITE_ROW) {
            const audit_record record = audit_from(walk);
            ++verdict.records;
            if (record.sequence != verdict.records)
                verdict.problem = "a record is missing before it";
            else if (audit_hash(record) != record.hash)
                verdict.problem = "its hash does not match its contents";
            else if (record.previous_hash != previous_hash)
                verdict.problem = "it does not follow the record before it";
            if (!verdict.problem.empty()) {
                verdict.first_broken = record.sequence;
                return verdict;
            }
            previous_hash = record.hash;
        }
        if (rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "verifying the audit log");
        return verdict;
    });
}

fhir::result<store::audit_chain_point> sqlite_store::audit_tip() const {
    auto found = audit_hashes_at({});
    if (!found)
        return std::move(found).failure();
    return std::move(found->tip);
}

fhir::result<store::audit_chain_lookup> sqlite_store::audit_hashes_at(const std::vector<std::int64_t>& sequences) const {
    if (auto flushed = impl_->flush_audit(); !flushed)
        return std::move(flushed).failure();
    return impl_->with_reader<audit_chain_lookup>([&](connection& db) -> fhir::result<audit_chain_lookup> {
        static const std::string doing = "reading the audit chain";
        // One read transaction: the tip and every hash come from the same snapshot.
        if (auto begun = db.run("BEGIN", doing); !begun)
            return std::move(begun).failure();
        struct end_read {
            connection& db;
            ~end_read() { db.run("COMMIT", doing); }
        } ends{db};
        audit_chain_lookup found;
        auto tip = query_one<audit_chain_point>(
            db, audit_tip_sql, doing, [](statement&) {},
            [](const statement& row) { return audit_chain_point{row.integer(0), row.text(1)}; });
        if (!tip)
            return std::move(tip).failure();
        found.tip = tip->value_or(audit_chain_point{0, genesis_hash});
        found.hashes.reserve(sequences.size());
        for (const std::int64_t sequence : sequences) {
            auto hash = query_one<std::string>(
                db, audit_hash_at_sql, doing, [&](statement& q) { q.bind(1, sequence); },
                [](const statement& row) { return row.text(0); });
            if (!hash)
                return std::move(hash).failure();
            found.hashes.push_back(std::move(*hash));
        }
        return found;
    });
}

} // namespace caregate::storage
