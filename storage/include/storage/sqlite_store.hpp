// The embedded engine: the store (storage/store.hpp) on one SQLite file in WAL mode, with pooled
// readers, one writer thread committing in groups and a checkpointer thread. What only this engine
// has (its file and caches, the VFS, checkpoints, query plans) is here; the gateway never includes
// this header and opens it through open_store. The invariants it keeps are listed in
// storage/src/sqlite/engine.hpp.
#pragma once

#include "storage/store.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace caregate::storage {

/// Everything the SQLite engine is opened with: the settings every engine takes, and its own.
struct sqlite_options : store_settings {
    std::string path = "caregate.db"; ///< a file; SQLite WAL needs a real file, so no :memory:
    /// Read connections kept open for readers; a reader beyond this opens a fresh one.
    unsigned reader_connections = 8;
    /// `synchronous=FULL`: a commit is on disk before it is acknowledged. Off only for benchmarks
    /// that measure what durability costs, and for a bulk load that calls make_durable() before it
    /// reports anything stored (off is `synchronous=NORMAL`: in WAL mode a crash can lose the last
    /// commits, never corrupt the database).
    bool synchronous_full = true;
    /// SQLite's page cache of the writer's connection, KiB. Each write touches a few dozen index
    /// pages; with SQLite's default of 2 MiB they are read back through the kernel on every group,
    /// which was half of the writer's time in a bulk load. 64 MiB keeps the hot pages in memory.
    unsigned writer_cache_kib = 65536;
    /// SQLite's page cache of each pooled read connection, KiB (SQLite's default is 2 MiB): the
    /// index pages of a search's lookups stay in memory; 8 readers at 8 MiB bound it at 64 MiB.
    unsigned reader_cache_kib = 8192;
    /// WAL frames (pages) after which a commit asks the checkpointer thread to copy the log back
    /// into the database (a passive checkpoint: it never waits for, nor blocks, the writer or a
    /// reader); SQLite's own checkpoint ran inside the committing writer, which waited for it. Past
    /// sixteen times this the writer finishes the copy itself, so that the log starts over and stays
    /// bounded however busy the writer is. A bulk load raises it: each checkpoint copies every page
    /// the log holds into the database, and a hot index page written by many groups is copied once
    /// per checkpoint instead of once per group.
    unsigned checkpoint_frames = 1000;
    /// The SQLite VFS every connection opens through; empty: SQLite's default (unix). Tests name one
    /// that injects file system faults (tests/support/fault_vfs.hpp).
    std::string vfs;

    /// The options for `path` with `settings`, tuned as store_settings::bulk_load asks when it is
    /// set: commits not synced one by one (make_durable syncs them), a 256 MiB writer cache, and a
    /// checkpoint every 64 MiB of log, so that a hot index page goes to the database file once for
    /// many groups (the log stays under 256 MiB).
    static sqlite_options from(std::string path, const store_settings& settings);
};

class sqlite_store final : public store {
public:
    /// Opens (creating if absent) the database, checks the schema version and runs migrations,
    /// and starts the writer and checkpointer threads. Errors: fault (cannot open, newer schema
    /// than this build).
    static fhir::result<std::unique_ptr<sqlite_store>> open(const sqlite_options& options);
    ~sqlite_store() override;

    fhir::result<stored_version> read(std::string_view type, std::string_view id) const override;
    fhir::result<stored_version> read_current(std::string_view type, std::string_view id) const override;
    fhir::result<stored_version> vread(std::string_view type, std::string_view id,
                                       std::int64_t version_id) const override;
    fhir::result<history_page> history(const history_query& query) const override;
    fhir::result<search_page> search(const search_request& request) const override;
    fhir::result<std::vector<bool>> visible_resources(
        const search_visibility& visibility,
        const std::vector<std::pair<std::string, std::string>>& resources) const override;

    void submit(write_request request, write_callback done) override;
    void submit_all(std::vector<std::pair<write_request, write_callback>> writes) override;
    fhir::result<write_outcome> write(write_request request) override;
    void submit_transaction(std::vector<write_request> writes, transaction_callback done) override;
    /// checkpoint().
    fhir::status make_durable() override;
    void prepare_index(write_request& request) const override;

    fhir::result<citizen_standing> standing(std::string_view nhs_number, std::string_view organisation,
                                            std::string_view user, std::string_view role, timestamp recent_since,
                                            timestamp now) const override;

    void append_audit(std::vector<audit_record> records, std::function<void(fhir::status)> done = {}) override;
    std::size_t audit_backlog() const noexcept override;
    bool audit_backlog_full() const noexcept override;
    void grant_break_glass(break_glass_grant grant, audit_record audit,
                           std::function<void(fhir::status)> done = {}) override;
    fhir::result<audit_page> audit(const audit_query& query) const override;
    fhir::result<audit_record> audit_record_at(std::int64_t sequence) const override;
    fhir::result<audit_verification> verify_audit() const override;
    fhir::result<audit_chain_point> audit_tip() const override;
    fhir::result<audit_chain_lookup> audit_hashes_at(const std::vector<std::int64_t>& sequences) const override;
    store_statistics statistics() const override;

    /// Makes every write committed so far durable and moves the write-ahead log into the database
    /// file (`PRAGMA wal_checkpoint(TRUNCATE)`: the log is fsynced, copied, the database fsynced),
    /// after the writes queued before it. Errors: busy (another connection reads or writes the
    /// database), fault.
    fhir::status checkpoint();
    /// SQLite's plan for a search's page query (EXPLAIN QUERY PLAN, one step a line): for tests
    /// that the planner's queries use the indexes, and for diagnosing a slow search.
    fhir::result<std::string> explain_search(const search_request& request) const;

    struct impl; // storage/src/sqlite/engine.hpp

private:
    explicit sqlite_store(std::unique_ptr<impl> state);
    std::unique_ptr<impl> impl_;
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
