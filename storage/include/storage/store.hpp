// The versioned resource store on SQLite: immutable versions, current-version reads served as stored
// bytes, history, and one writer thread that commits queued writes in groups. Knows nothing of HTTP,
// TLS or tokens; errors are fhir::error values (never HTTP statuses).
#pragma once

#include "fhir_model/error.hpp"
#include "fhir_model/resource.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace caregate::storage {

/// Microseconds since the Unix epoch, UTC: the resolution of meta.lastUpdated.
using timestamp = std::int64_t;

struct search_request; // storage/search.hpp
struct search_page;
struct search_visibility;
struct write_condition;
struct prepared_index; // store::prepare_index

struct store_options {
    std::string path = "caregate.db"; ///< a file; SQLite WAL needs a real file, so no :memory:
    /// Read connections kept open for readers; a reader beyond this opens a fresh one.
    unsigned reader_connections = 8;
    /// Most writes committed in one transaction; more wait for the next group.
    unsigned max_group_size = 512;
    /// `synchronous=FULL`: a commit is on disk before it is acknowledged. Off only for benchmarks
    /// that measure what durability costs, and for a bulk load that calls store::checkpoint() before
    /// it reports anything stored (off is `synchronous=NORMAL`: in WAL mode a crash can lose the last
    /// commits, never corrupt the database).
    bool synchronous_full = true;
    /// How long a connection waits for a lock held by another connection (a backup, a second
    /// process) before the write or read fails with `busy`.
    std::chrono::milliseconds busy_timeout{5000};
    /// How long a search's snapshot stays readable for its next/previous pages: index rows of a
    /// version superseded longer ago than this are purged by the writer, and a page cursor older than
    /// the purge is refused (`deleted`, 410: run the search again).
    std::chrono::seconds snapshot_lifetime{3600};
    /// SQLite's page cache of the writer's connection, KiB. Each write touches a few dozen index
    /// pages; with SQLite's default of 2 MiB they are read back through the kernel on every group,
    /// which was half of the writer's time in a bulk load. 64 MiB keeps the hot pages in memory.
    unsigned writer_cache_kib = 65536;
    /// SQLite's page cache of each pooled read connection, KiB (SQLite's default is 2 MiB): the
    /// index pages of a search's lookups stay in memory; 8 readers at 8 MiB bound it at 64 MiB.
    unsigned reader_cache_kib = 8192;
    /// How long the writer lets the audit records of reads (appended without a callback) gather
    /// before it commits them, when nothing else waits: one commit for many reads instead of one
    /// each. Every commit also empties every reader's page cache (SQLite's WAL readers start afresh
    /// after any change), so at thousands of reads a second this is most of what reads cost. The
    /// price: a power cut can lose the audit records of the reads answered in the last this-long.
    /// A write, a grant, an audit append with a callback, or a read of the audit log commits at once.
    std::chrono::milliseconds audit_linger{10};
    /// How long a citizen's standing (store::standing) may be served from memory while no write
    /// has committed since it was read: every commit that writes anything (not an audit-only one)
    /// invalidates all of it at once, before the write is acknowledged. What time alone changes (an
    /// ended relationship leaving the recent window) is seen up to this late; an expired
    /// break-glass grant never is (its end is checked against each request's time). 0: no cache.
    std::chrono::milliseconds standing_cache_ttl{1000};
    /// WAL frames (pages) after which a commit asks the checkpointer thread to copy the log back
    /// into the database (a passive checkpoint: it never waits for, nor blocks, the writer or a
    /// reader); SQLite's own checkpoint ran inside the committing writer, which waited for it. Past
    /// sixteen times this the writer finishes the copy itself, so that the log starts over and stays
    /// bounded however busy the writer is. A bulk load raises it: each checkpoint copies every page
    /// the log holds into the database, and a hot index page written by many groups is copied once
    /// per checkpoint instead of once per group.
    unsigned checkpoint_frames = 1000;
    /// Most audit records of reads (appended without a callback) that may wait uncommitted, however
    /// long the database refuses them (locked, the disk full, the file system read-only): past it
    /// store::audit_backlog_full() is true and the gateway refuses every request with 503 until the
    /// writer has caught up, so that nothing is shown that the audit log might not keep. Bounds the
    /// memory they take (a few hundred bytes each).
    std::size_t max_audit_backlog = 10000;
    /// The SQLite VFS every connection opens through; empty: SQLite's default (unix). Tests name one
    /// that injects file system faults (tests/support/fault_vfs.hpp).
    std::string vfs;
};

/// One stored version of a resource.
struct stored_version {
    std::string type;
    std::string id;
    std::int64_t version_id = 0;
    timestamp last_updated = 0;
    bool deleted = false;   ///< a deletion marker: no content
    std::string json;       ///< the canonical JSON with id and meta stamped; empty when deleted
    std::string method;     ///< "POST", "PUT" or "DELETE": how this version came about (for history)
    /// ODS code of the organisation that created the resource (its owner; every version keeps it).
    std::string owner;
    /// The citizens (NHS numbers) the version links to; for a Patient, its own NHS number.
    std::vector<std::string> citizens;
    std::vector<std::string> labels; ///< fhir::access_facts::labels of this version
    std::vector<std::string> facets; ///< fhir::access_facts::facets of this version
};

/// One audit record: who did what to whose record, when, why, and how it ended.
/// Never holds resource content.
struct audit_record {
    std::int64_t sequence = 0;  ///< assigned by the store: the record's place in the chain (1, 2, ...)
    timestamp time = 0;         ///< when the access happened (set by the caller)
    std::string request_id;
    std::string user;           ///< SDS user id (or system id) from the token
    std::string role;           ///< national RBAC job role code, e.g. R8000
    std::string organisation;   ///< ODS code
    std::string purpose;        ///< purpose of use, e.g. TREAT, ETREAT
    std::string break_glass_reason; ///< the stated reason when purpose is ETREAT
    std::string nhs_number;     ///< the citizen, empty when none
    std::string resource_type;
    std::string resource_ids;   ///< space-separated ids (a search lists what it returned)
    std::string action;         ///< read, vread, history, create, update, delete, search, export, ...
    std::string outcome;        ///< "success", "denied", "not-found", "failed"
    std::string detail;         ///< e.g. the applied search parameters; never values of hidden items
    std::string previous_hash;  ///< set by the store: hex SHA-256 of the record before (64 zeros for the first)
    std::string hash;           ///< set by the store: hex SHA-256 over previous_hash and this record's fields
};

/// A break-glass grant: the organisation's user, acting in the role that opened it, may open the
/// citizen's record until `until`. The same user in another role (another token) is not covered.
struct break_glass_grant {
    std::string nhs_number;
    std::string organisation;
    std::string user;
    std::string role; ///< the national RBAC job role of the token that opened it
    std::string reason;
    timestamp from = 0;
    timestamp until = 0;
    std::string request_id;
};

/// What the store knows about one organisation's (and user's) standing with one citizen.
struct citizen_standing {
    bool held = false;          ///< the citizen is a live Patient here
    bool relationship = false;  ///< an organisation link for the ODS code, active or ended at or after `recent_since`
    bool objection = false;     ///< a live Consent of the citizen records an objection (access_facts::objection)
    std::optional<timestamp> break_glass_until; ///< the latest grant for (citizen, organisation, user, role) still open at `now`
};

enum class write_kind { create, update, remove };

/// A write to queue. The gateway has validated the content; the writer checks everything that
/// depends on the database's state inside the write transaction, so checks and write cannot race.
struct write_request {
    write_kind kind = write_kind::create;
    std::string type;
    std::string id;      ///< always set: the gateway assigns ids for creates
    std::string content; ///< canonical JSON (fhir::prepared_resource::content); empty for remove
    /// create: fail with `conflict` if a live (not deleted) resource with this id exists.
    bool fail_if_exists = false;
    /// If set, the current version must be this one (If-Match), else `precondition_failed`.
    std::optional<std::int64_t> if_match;
    /// Citizens the content links to: each must be a live Patient, else `invalid` naming the element.
    std::vector<fhir::citizen_link> citizens;
    /// The organisation writing. On create it becomes the owner; update and remove fail with
    /// `forbidden` unless it is the owner (or `any_owner`). Checked inside the write transaction.
    std::string writer;
    bool any_owner = false;
    /// Labels, facets, organisation links and objection of the content, kept with the version and
    /// (organisation links, objection) for the citizen while this version is current.
    fhir::access_facts access;
    /// Appended in the same transaction as the write, with `outcome` set by the store: "success", or
    /// "failed" when the write fails (then the audit record alone is committed). Its resource_ids is
    /// set by the store to the id written (a condition can choose another than `id`).
    std::optional<audit_record> audit;
    /// Conditional create, update and delete (storage/search.hpp): the writer runs the condition's
    /// search inside the write transaction, so no other write comes between the check and the write.
    ///  - create: no match: create `id`; one match: nothing is written and the outcome is that match
    ///    (`matched`); several: precondition_failed.
    ///  - update: no match: create `id` (the client's, or a new one); one match: update it (its id
    ///    must equal write_condition::client_id when that is set, else malformed); several:
    ///    precondition_failed.
    ///  - remove: no match: nothing (removed_nothing); one: remove it; several: remove each when
    ///    write_condition::multiple, else precondition_failed.
    std::shared_ptr<const write_condition> condition;
    /// remove of a Patient: refused with `conflict` while other live resources link to the citizen,
    /// unless this is set (the policy allows a full erasure): then each of them is removed too, in
    /// the same transaction, before the Patient (outcome.also_removed lists them).
    bool erase_record = false;
    /// The search index values of `content`, extracted ahead of the writer by store::prepare_index,
    /// so that the writer thread only inserts them. Used only for a version of this very type, id and
    /// content (a transaction or a condition can change them): otherwise the writer extracts them.
    std::shared_ptr<const prepared_index> index;
};

struct write_outcome {
    stored_version version; ///< the version now current (the existing one when unchanged)
    bool created = false;   ///< there was no live resource before this write
    bool unchanged = false; ///< an update with the same content: no new version was made
    bool removed_nothing = false; ///< a remove of a resource that did not exist or was already deleted
    bool matched = false;   ///< a conditional create found one match: nothing was written
    /// A conditional remove of several matches, or an erasure: the deletion markers made besides
    /// `version` (in the order made).
    std::vector<stored_version> also_removed;
};

/// Where a transaction failed: the write at `index` (in the order given) and why.
struct transaction_failure {
    std::size_t index = 0;
    fhir::error failure;
};
/// A transaction's outcomes in the order of its writes, or its failure. A failure that is no one
/// write's fault (busy, fault) has index SIZE_MAX.
using transaction_callback =
    std::function<void(std::variant<std::vector<write_outcome>, transaction_failure>)>;

/// What the writer has done since open: for tests and metrics.
struct store_statistics {
    std::uint64_t groups = 0;        ///< transactions the writer ran (committed or not)
    std::uint64_t writes = 0;        ///< write requests those transactions held
    std::uint64_t largest_group = 0; ///< most write requests in one transaction
    std::uint64_t checkpoints = 0;   ///< checkpoints the checkpointer thread ran
};

using write_callback = std::function<void(fhir::result<write_outcome>)>;

/// Which history: all resources (type empty), one type (id empty), or one resource.
struct history_query {
    std::string type;
    std::string id;
    std::optional<timestamp> since; ///< only versions with last_updated >= since
    /// `_at`: only versions current at some point in [at_begin, at_end).
    std::optional<std::pair<timestamp, timestamp>> at;
    unsigned count = 50;
    std::optional<std::int64_t> before; ///< page cursor: only entries older than this position
    /// Whose history: only the entries this caller may see, decided in the query (a page holds
    /// `count` of them whenever there are as many). A version is an entry only when the caller may
    /// see it (a deletion: the version it removed) and the resource as it is now (its last live
    /// version): visibility_sql.hpp. Required: a query without it fails (`fault`); tools and tests
    /// that mean every version say so with search_visibility::everything.
    const search_visibility* visibility = nullptr;
};

struct history_page {
    std::vector<stored_version> entries; ///< newest first
    /// Cursor for the next (older) page, if there is one. Stable: later writes never shift pages.
    std::optional<std::int64_t> next;
};

class store {
public:
    /// Opens (creating if absent) the database, checks the schema version and runs migrations,
    /// and starts the writer thread. Errors: fault (cannot open, newer schema than this build).
    static fhir::result<std::unique_ptr<store>> open(const store_options& options);

    /// Stops accepting writes, finishes the queued ones, stops the writer, closes every connection.
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    /// The current version. Errors: not_found; deleted (the error's diagnostics carry no content).
    fhir::result<stored_version> read(std::string_view type, std::string_view id) const;
    /// Like read, but also returns a deletion marker instead of a `deleted` error.
    fhir::result<stored_version> read_current(std::string_view type, std::string_view id) const;
    /// A given version. Errors: not_found (no such resource or version); deleted (that version is one).
    fhir::result<stored_version> vread(std::string_view type, std::string_view id,
                                       std::int64_t version_id) const;
    /// History, newest first, in pages.
    fhir::result<history_page> history(const history_query& query) const;
    /// A search (storage/search.hpp): one read transaction, so a page, its total and its includes
    /// see the same data.
    fhir::result<search_page> search(const search_request& request) const;
    /// Which of `resources` (type, id) the caller may see as they are now (their last live version:
    /// the rule history applies, visibility_sql.hpp), in the order given: for naming resources in what
    /// the caller is shown of the audit trail. A resource never stored, or erased, is not visible.
    fhir::result<std::vector<bool>> visible_resources(const search_visibility& visibility,
                                                      const std::vector<std::pair<std::string, std::string>>& resources) const;
    /// SQLite's plan for a search's page query (EXPLAIN QUERY PLAN, one step a line): for tests
    /// that the planner's queries use the indexes, and for diagnosing a slow search.
    fhir::result<std::string> explain_search(const search_request& request) const;

    /// Queues a write. `done` runs on the writer thread once the group holding the write has
    /// committed durably (or with the write's error; a failed write changes nothing). Must not block.
    void submit(write_request request, write_callback done);
    /// Queues several writes at once, so that the writer takes them into one group (up to
    /// max_group_size): for bulk loads, where many small groups would write the same index pages
    /// to the log once per commit. Each callback runs as for submit().
    void submit_all(std::vector<std::pair<write_request, write_callback>> writes);
    /// Extracts the search index values of a create's or update's content into `request.index`, on
    /// the calling thread (any thread; no database), so that the writer thread does not: for bulk
    /// loads, whose writer is the bottleneck. Leaves `index` empty when extraction fails (the writer
    /// then fails the write as it would have).
    static void prepare_index(write_request& request);
    /// Makes every write committed so far durable and moves the write-ahead log into the database
    /// file (`PRAGMA wal_checkpoint(TRUNCATE)`: the log is fsynced, copied, the database fsynced),
    /// after the writes queued before it. For a bulk load opened with synchronous_full off, before it
    /// reports. Errors: busy (another connection reads or writes the database), fault.
    fhir::status checkpoint();
    /// submit() and wait: for tools and tests.
    fhir::result<write_outcome> write(write_request request);
    /// Queues writes that commit together or not at all (a FHIR transaction bundle). The writer first
    /// resolves every condition in order (a remove is applied at once, so later conditions see it),
    /// then, where a condition chose another id than the write's `id` (a create that matched, an
    /// update of a match), replaces that `id` by the chosen one in the content of every other write
    /// of the transaction (ids assigned by the gateway are UUIDs, so the text is unambiguous), then
    /// applies the creates and updates in order. The first failure undoes all of them and `done`
    /// gets its index; each write's audit record is committed either way ("success" or "failed").
    void submit_transaction(std::vector<write_request> writes, transaction_callback done);

    /// The standing of (organisation, user in `role`) with a citizen at `now`. Reads only.
    fhir::result<citizen_standing> standing(std::string_view nhs_number, std::string_view organisation,
                                            std::string_view user, std::string_view role, timestamp recent_since,
                                            timestamp now) const;

    /// Queues audit records to be appended (chained) by the writer with its next group: committed
    /// within the writer's next commit, never dropped while the store is open. `done` (optional) runs
    /// after that commit.
    void append_audit(std::vector<audit_record> records, std::function<void(fhir::status)> done = {});
    /// Reads' audit records (appended without a callback) queued and not yet committed.
    std::size_t audit_backlog() const noexcept;
    /// True while audit_backlog() is at or past store_options::max_audit_backlog: the writer cannot
    /// commit the audit log, and whoever would show a record must refuse instead (fail closed).
    bool audit_backlog_full() const noexcept;
    /// Queues a break-glass grant (with its audit record in the same transaction).
    void grant_break_glass(break_glass_grant grant, audit_record audit, std::function<void(fhir::status)> done = {});

    /// Audit records, newest first, filtered; `before` is a page cursor (a sequence number).
    struct audit_query {
        std::string nhs_number;      ///< empty: any
        std::string agent;           ///< a user id or an ODS code; empty: any
        std::optional<std::pair<timestamp, timestamp>> time; ///< [begin, end)
        std::string purpose;         ///< e.g. ETREAT for the break-glass review list; empty: any
        unsigned count = 50;
        std::optional<std::int64_t> before;
    };
    struct audit_page {
        std::vector<audit_record> records;
        std::optional<std::int64_t> next;
    };
    fhir::result<audit_page> audit(const audit_query& query) const;
    /// One audit record by sequence. Errors: not_found.
    fhir::result<audit_record> audit_record_at(std::int64_t sequence) const;

    /// Walks the whole chain: each record's previous_hash is the hash of the one before and its hash
    /// is recomputed from its fields. Reports the first broken record.
    struct audit_verification {
        std::int64_t records = 0;
        std::optional<std::int64_t> first_broken; ///< sequence of the first record that does not verify
        std::string problem;                      ///< what is wrong with it, in words
    };
    fhir::result<audit_verification> verify_audit() const;
    /// The hash the chain gives a record (hex SHA-256 of previous_hash and the fields, length-prefixed).
    static std::string audit_hash(const audit_record& record);

    /// A place in the audit chain: a record's sequence and hash. What an anchor outside the
    /// database (storage/audit_anchor.hpp) pins down.
    struct audit_chain_point {
        std::int64_t sequence = 0; ///< 0: the chain is empty
        std::string hash;          ///< the record's hash; 64 zeros for the empty chain
    };
    /// The newest committed record, after committing the records queued before the call (as
    /// audit() does), so that the tip covers every request answered before it.
    fhir::result<audit_chain_point> audit_tip() const;
    /// The hashes of the records at `sequences` (in that order; nullopt where the log has no such
    /// record) and the tip, all read in one snapshot, after committing what is queued: one
    /// verification of many anchors without a writer round trip each.
    struct audit_chain_lookup {
        audit_chain_point tip;
        std::vector<std::optional<std::string>> hashes;
    };
    fhir::result<audit_chain_lookup> audit_hashes_at(const std::vector<std::int64_t>& sequences) const;

    /// Counters of the writer's groups since open.
    store_statistics statistics() const;

    /// The instant text for a timestamp, e.g. "2026-11-23T19:02:03.123456Z".
    static std::string format_instant(timestamp t);

private:
    struct impl;
    explicit store(std::unique_ptr<impl> state);
    std::unique_ptr<impl> impl_;
};

/// What backup_database copied.
struct backup_report {
    std::int64_t pages = 0;
    std::int64_t bytes = 0;
    std::int64_t schema_version = 0;
    std::int64_t audit_records = 0; ///< in the copy (its newest record is the copy's moment)
};

/// Copies the database at `from` to a new file `to`, online: one read snapshot of `from` (SQLite's
/// backup API, in one step, beside a server writing to it), so the copy is consistent as of a single
/// moment, every transaction committed by then whole and none after. The copy is one self-contained
/// file (rollback journal, not WAL), checked with PRAGMA integrity_check, fsynced, and only then
/// renamed to `to` (with its directory fsynced): a failed or interrupted backup leaves no `to`. Reads
/// `from` only: it neither migrates nor appends to its audit log. Errors: conflict if `to` exists;
/// busy or fault from SQLite or the file system.
fhir::result<backup_report> backup_database(const std::string& from, const std::string& to,
                                            std::chrono::milliseconds busy_timeout = std::chrono::seconds(30));

} // namespace caregate::storage
