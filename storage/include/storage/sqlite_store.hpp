// The embedded engine: the relational store (storage/relational_store.hpp) on one SQLite file in
// WAL mode, with pooled readers, one writer thread committing in groups and a checkpointer thread. What only this engine
// has (its file and caches, the VFS, checkpoints, query plans) is here; the gateway never includes
// this header and opens it through open_store. The invariants it keeps are listed in
// storage/src/relational/engine.hpp.
#pragma once

#include "storage/relational_store.hpp"

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

class sqlite_store final : public relational_store {
public:
    /// Opens (creating if absent) the database, checks the schema version and runs migrations,
    /// and starts the writer and checkpointer threads. Errors: fault (cannot open, newer schema
    /// than this build).
    static fhir::result<std::unique_ptr<sqlite_store>> open(const sqlite_options& options);
    ~sqlite_store() override;

    /// checkpoint().
    fhir::status make_durable() override;

    /// Makes every write committed so far durable and moves the write-ahead log into the database
    /// file (`PRAGMA wal_checkpoint(TRUNCATE)`: the log is fsynced, copied, the database fsynced),
    /// after the writes queued before it. Errors: busy (another connection reads or writes the
    /// database), fault.
    fhir::status checkpoint();

private:
    explicit sqlite_store(std::unique_ptr<relational_engine> engine);
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
