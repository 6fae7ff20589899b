// The storage interface: what the gateway asks of a store, whatever engine keeps it. Immutable
// versions, current-version reads served as stored bytes, history and search decided with the
// caller's visibility, writes queued to one writer that commits them in groups, the audit chain.
// Knows nothing of HTTP, TLS or tokens, nor of the engine: an engine implements `store`
// (storage/sqlite_store.hpp is the embedded one) and open_store picks it from the database's name.
//
// Every engine keeps the same contract, stated here once per operation:
//  - a write is acknowledged only once it is durable, and a failed write changes nothing (its audit
//    record is kept, with outcome "failed" or "denied");
//  - whatever is answered to a caller (history, search, conditional matches, visible_resources) is
//    decided by the one visibility rule (storage/search.hpp, search_visibility);
//  - the audit log only grows, one chain, and nothing is shown that it might not keep
//    (audit_backlog_full).
#pragma once

#include "storage/exports.hpp"
#include "storage/records.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::storage {

struct search_request; // storage/search.hpp
struct search_page;

/// What every engine is told when it is opened. An engine's own settings (file, caches, pool
/// sizes) are its own (storage/sqlite_store.hpp, sqlite_options).
struct store_settings {
    /// Most writes committed in one transaction; more wait for the next group.
    unsigned max_group_size = 512;
    /// How long a connection waits for a lock held by another connection (a backup, a second
    /// process) before the write or read fails with `busy`.
    std::chrono::milliseconds busy_timeout{5000};
    /// How long a search's snapshot stays readable for its next/previous pages: index rows of a
    /// version superseded longer ago than this are purged by the writer, and a page cursor older than
    /// the purge is refused (`deleted`, 410: run the search again).
    std::chrono::seconds snapshot_lifetime{3600};
    /// How long the writer lets the audit records of reads (appended without a callback) gather
    /// before it commits them, when nothing else waits: one commit for many reads instead of one
    /// each (with SQLite every commit also empties every reader's page cache, so at thousands of
    /// reads a second this is most of what reads cost). The price: a power cut can lose the audit
    /// records of the reads answered in the last this-long. A write, a grant, an audit append with a
    /// callback, or a read of the audit log commits at once.
    std::chrono::milliseconds audit_linger{10};
    /// How long a citizen's standing (store::standing) may be served from memory while no write
    /// has committed since it was read: every commit that writes anything (not an audit-only one)
    /// invalidates all of it at once, before the write is acknowledged. What time alone changes (an
    /// ended relationship leaving the recent window) is seen up to this late; an expired
    /// break-glass grant never is (its end is checked against each request's time). 0: no cache.
    std::chrono::milliseconds standing_cache_ttl{1000};
    /// Most audit records of reads (appended without a callback) that may wait uncommitted, however
    /// long the database refuses them (locked, the disk full, the file system read-only): past it
    /// store::audit_backlog_full() is true and the gateway refuses every request with 503 until the
    /// writer has caught up, so that nothing is shown that the audit log might not keep. Bounds the
    /// memory they take (a few hundred bytes each).
    std::size_t max_audit_backlog = 10000;
    /// A bulk load (caregate import): the engine may trade the durability of each commit for speed
    /// (and size its caches for one writer) on the promise that make_durable() is called before
    /// anything is reported stored. A crash before then can lose the last commits, never corrupt
    /// what was committed before them.
    bool bulk_load = false;
};

/// Standings read for one caller (by NHS number) during one request, so that a request that checks
/// several versions reads each citizen's standing once (store::version_visible, store::citizen_open).
using standing_memo = std::map<std::string, citizen_standing, std::less<>>;

class store {
public:
    /// Stops accepting writes, finishes the queued ones, stops the writer, closes every connection.
    virtual ~store() = default;
    store() = default;
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    /// The current version. Errors: not_found; deleted (the error's diagnostics carry no content).
    virtual fhir::result<stored_version> read(std::string_view type, std::string_view id) const = 0;
    /// Like read, but also returns a deletion marker instead of a `deleted` error.
    virtual fhir::result<stored_version> read_current(std::string_view type, std::string_view id) const = 0;
    /// read_current, answered through `then` rather than returned. On an engine whose reads are round
    /// trips to a server (PostgreSQL), `then` runs on a thread of the store's own once the read's
    /// batch is back, so the caller's thread serves others meanwhile, and reads at the same time share
    /// a round trip; elsewhere it runs at once, on the caller's thread. `then` runs exactly once.
    virtual void read_current_async(std::string_view type, std::string_view id,
                                    std::function<void(fhir::result<stored_version>)> then) const {
        then(read_current(type, id));
    }
    /// A given version. Errors: not_found (no such resource or version); deleted (that version is one).
    virtual fhir::result<stored_version> vread(std::string_view type, std::string_view id,
                                               std::int64_t version_id) const = 0;
    /// The bytes of version `version_id` of Binary `id` (write_request::binary_bytes), given to
    /// `each` in order, a part of at most binary_part_bytes at a time, with the size of the whole (the
    /// same at every call, so that the first can reserve room for all), so that a reader holds one
    /// part beyond what it makes of them (a response). Not called for a Binary stored without bytes.
    /// No visibility is decided here: the caller has read the version and decided it first. Errors:
    /// not_found (no such version); a failure `each` returns, as it is.
    virtual fhir::status binary_bytes(
        std::string_view id, std::int64_t version_id,
        const std::function<fhir::status(std::string_view part, std::size_t whole)>& each) const = 0;
    /// The most bytes a part of a Binary's bytes holds: 1 MiB less one byte, a multiple of 3, so that
    /// the base64 of the parts, each on its own, is the base64 of the whole.
    static constexpr std::size_t binary_part_bytes = 3 * 349525;
    /// History, newest first, in pages; only what history_query::visibility lets the caller see,
    /// decided in the query (so a page is full whenever there are that many entries).
    virtual fhir::result<history_page> history(const history_query& query) const = 0;
    /// A search (storage/search.hpp): one snapshot, so a page, its total and its includes see the
    /// same data.
    virtual fhir::result<search_page> search(const search_request& request) const = 0;
    /// Whether the caller may see `version`, a version this store holds, by the one visibility rule
    /// (storage/src/visibility_rule.hpp: the rule a search applies to each version it finds, here
    /// decided in memory over the version and store::standing, whatever the engine): the caller's type grant covers it, none
    /// of its labels is hidden from the caller, every citizen it links to is open to the caller with
    /// no objection against it, and, for a version that points at items (a Provenance), every item
    /// it points at is visible at its last live version. A deletion marker, or a version not held,
    /// is not visible.
    fhir::result<bool> version_visible(const search_visibility& visibility, const stored_version& version,
                                       standing_memo* memo = nullptr) const;
    /// Whether the caller may open the citizen's record, by the citizen part of the same rule: for a
    /// citizen's own view (search_visibility::only_citizen), that citizen's, if held (a live
    /// Patient); otherwise by a rule for all citizens, or the citizen held and a relationship (active,
    /// or ended since recent_since) or a break-glass grant open for this user in this role (or one
    /// this request has just made, break_glass_citizens).
    fhir::result<bool> citizen_open(const search_visibility& visibility, std::string_view nhs_number,
                                    standing_memo* memo = nullptr) const;
    /// Which of `resources` (type, id) the caller may see as they are now (their last live version:
    /// the rule history applies), in the order given: for naming resources in what the caller is
    /// shown of the audit trail. A resource never stored, or erased, is not visible.
    virtual fhir::result<std::vector<bool>> visible_resources(
        const search_visibility& visibility, const std::vector<std::pair<std::string, std::string>>& resources) const = 0;

    /// Queues a write. `done` runs on a thread of the store once the group holding the write has
    /// committed durably (or with the write's error; a failed write changes nothing). It must not
    /// block, nor call write() (the writer would wait for itself).
    virtual void submit(write_request request, write_callback done) = 0;
    /// Queues several writes at once, so that the writer takes them into one group (up to
    /// max_group_size): for bulk loads, where many small groups would write the same index pages
    /// once per commit. Each callback runs as for submit().
    virtual void submit_all(std::vector<std::pair<write_request, write_callback>> writes) = 0;
    /// submit() and wait: for tools and tests. Errors: fault when called from a write callback.
    virtual fhir::result<write_outcome> write(write_request request) = 0;
    /// Queues writes that commit together or not at all (a FHIR transaction bundle). The writer first
    /// resolves every condition in order (a remove is applied at once, so later conditions see it),
    /// then, where a condition chose another id than the write's `id` (a create that matched, an
    /// update of a match), replaces that `id` by the chosen one in the content of every other write
    /// of the transaction (ids assigned by the gateway are UUIDs, so the text is unambiguous), then
    /// applies the creates and updates in order. The first failure undoes all of them and `done`
    /// gets its index; each write's audit record is committed either way ("success" or "failed").
    virtual void submit_transaction(std::vector<write_request> writes, transaction_callback done) = 0;
    /// Makes every write committed so far durable, after the writes queued before it: what a bulk
    /// load (store_settings::bulk_load) calls before it reports anything stored. Errors: busy
    /// (another connection holds the database), fault.
    virtual fhir::status make_durable() = 0;
    /// Does on the calling thread (any thread; no database) what the writer would do for a create's
    /// or update's content before writing it (extracting its search index values into
    /// `request.index`), so that the writer thread does not: for bulk loads, whose writer is the
    /// bottleneck. Leaves `index` empty when that fails (the writer then fails the write as it would
    /// have), or for an engine that has nothing to do ahead.
    virtual void prepare_index(write_request& request) const = 0;

    /// The standing of (organisation, user in `role`) with a citizen at `now`. Reads only.
    /// `seen_generation`: a stored_version::access_generation the request read (0: none), which lets
    /// an engine shared by several nodes serve the standing from memory (relational_store).
    virtual fhir::result<citizen_standing> standing(std::string_view nhs_number, std::string_view organisation,
                                                    std::string_view user, std::string_view role,
                                                    timestamp recent_since, timestamp now,
                                                    std::uint64_t seen_generation = 0) const = 0;

    /// Queues audit records to be appended (chained) by the writer with its next group: committed
    /// within the writer's next commit, never dropped while the store is open. `done` (optional) runs
    /// after that commit.
    virtual void append_audit(std::vector<audit_record> records, std::function<void(fhir::status)> done = {}) = 0;
    /// Reads' audit records (appended without a callback) queued and not yet committed.
    virtual std::size_t audit_backlog() const noexcept = 0;
    /// True while audit_backlog() is at or past store_settings::max_audit_backlog: the writer cannot
    /// commit the audit log, and whoever would show a record must refuse instead (fail closed).
    virtual bool audit_backlog_full() const noexcept = 0;
    /// Queues a break-glass grant (with its audit record in the same transaction).
    virtual void grant_break_glass(break_glass_grant grant, audit_record audit,
                                   std::function<void(fhir::status)> done = {}) = 0;

    // Bulk Data export jobs (storage/exports.hpp, where the invariants they keep are). The writer
    // commits every change to them; the calls that return a result wait for it.
    /// Queues a new job (status accepted); the writer sets its snapshot and transaction time
    /// (invariant 4). `done` gets the job as stored, on the writer's thread.
    virtual void create_export(export_job job, std::function<void(fhir::result<export_job>)> done) = 0;
    /// A job by id; nullopt when there is none (never was, cancelled, expired).
    virtual fhir::result<std::optional<export_job>> find_export(std::string_view id) const = 0;
    /// A job's files, in the order written.
    virtual fhir::result<std::vector<export_file_summary>> export_files(std::string_view id) const = 0;
    /// One file's lines; nullopt when the job or the file is not there (a removed job's files are not).
    virtual fhir::result<std::optional<std::string>> export_file_content(std::string_view id,
                                                                         std::int64_t number) const = 0;
    /// Takes the oldest unfinished job whose lease is free or ran out at `now`, for `worker` until
    /// `lease_until`; nullopt when there is none.
    virtual fhir::result<std::optional<export_job>> claim_export(std::string worker, timestamp now,
                                                                 timestamp lease_until) = 0;
    /// Commits a worker's progress (invariants 1 and 2). Errors: conflict (the job is gone,
    /// finished, or leased to another worker; nothing is kept), busy, fault.
    virtual fhir::status save_export_progress(export_progress progress) = 0;
    /// Gives a job's lease back (a worker stopping), so that the next claim takes it at once.
    virtual fhir::status release_export(std::string job_id, std::string worker) = 0;
    /// Removes a job and its citizens' rows, and then its files (invariant 5). `done` gets whether
    /// there was one.
    virtual void cancel_export(std::string id, std::function<void(fhir::result<bool>)> done) = 0;
    /// Removes every finished job whose expiry is at or before `now`; how many it removed.
    virtual fhir::result<std::int64_t> remove_expired_exports(timestamp now) = 0;

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
    /// After committing the records queued before the call, so that the page covers every request
    /// answered before it.
    virtual fhir::result<audit_page> audit(const audit_query& query) const = 0;
    /// One audit record by sequence. Errors: not_found.
    virtual fhir::result<audit_record> audit_record_at(std::int64_t sequence) const = 0;

    /// Walks the whole chain: each record's previous_hash is the hash of the one before and its hash
    /// is recomputed from its fields. Reports the first broken record.
    struct audit_verification {
        std::int64_t records = 0;
        std::optional<std::int64_t> first_broken; ///< sequence of the first record that does not verify
        std::string problem;                      ///< what is wrong with it, in words
    };
    virtual fhir::result<audit_verification> verify_audit() const = 0;
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
    virtual fhir::result<audit_chain_point> audit_tip() const = 0;
    /// The hashes of the records at `sequences` (in that order; nullopt where the log has no such
    /// record) and the tip, all read in one snapshot, after committing what is queued: one
    /// verification of many anchors without a writer round trip each.
    struct audit_chain_lookup {
        audit_chain_point tip;
        std::vector<std::optional<std::string>> hashes;
    };
    virtual fhir::result<audit_chain_lookup> audit_hashes_at(const std::vector<std::int64_t>& sequences) const = 0;

    /// Counters of the writer's groups since open.
    virtual store_statistics statistics() const = 0;

    /// The instant text for a timestamp, e.g. "2026-11-23T19:02:03.123456Z".
    static std::string format_instant(timestamp t);
};

/// Opens the store `database` names, with the engine it names, creating it if absent, checking
/// its schema version and running migrations: `sqlite:PATH`, or a bare file path (SQLite, the
/// embedded default). Errors: invalid (a name no engine here takes, e.g. `postgresql://` before
/// that engine exists), fault (cannot open, a newer schema than this build).
fhir::result<std::unique_ptr<store>> open_store(std::string_view database, const store_settings& settings);

/// An online backup of the store `database` names into a new file `to`: a consistent copy as of a
/// single moment, or nothing. Reads `database` only. Errors: conflict if `to` exists; invalid for
/// an engine whose backups are made by its own tools; busy or fault.
fhir::result<backup_report> backup_store(std::string_view database, const std::string& to);

/// How many threads should serve requests on the store `database` names, when the operator does not
/// say: one per core for an embedded database (a read never waits), two per core for one over the
/// network (a request's thread waits on each statement's round trip, and another thread uses the
/// core meanwhile; more than two per core measured no faster, bench/run.sh --engine postgresql).
unsigned default_request_threads(std::string_view database);

/// The database's name as it may be printed or logged: a URI's password, if it holds one
/// (`postgresql://user:secret@host/db`), replaced by `***`; anything else as given.
std::string printable_database_name(std::string_view database);

/// Moves the store `from` names into the store `to` names, of another engine: today a SQLite file
/// into a PostgreSQL database. Brings `from` to the current schema first (opening it, as serve does),
/// then copies, in one read snapshot of it and one transaction of `to`, every version, the current
/// versions, every access fact (citizen and organisation links, objections, break-glass grants), the
/// search index rows (with their snapshot bounds and the purge horizon) and the whole audit chain,
/// each value as stored; then verifies the copy's chain and counts. `to` must hold no resource and
/// no audit record (refused as conflict otherwise: a move never merges). No server may write `from`
/// meanwhile. Errors: invalid (engines this does not move between), conflict, busy, fault; on any
/// error `to` is left as it was.
fhir::result<migration_report> migrate_store(std::string_view from, std::string_view to);

} // namespace caregate::storage
