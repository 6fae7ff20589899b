// Opening and closing the relational engine, on SQLite (sqlite_store) or PostgreSQL
// (postgresql_store), and its pool of read connections: the writer's connection set up (on SQLite WAL,
// synchronous, caches; on PostgreSQL the lock timeout and the pipeline) and migrated before the
// threads start; a database readers cannot open fails here, not on a request. Keeps invariant 13's
// starting point (the chain's tip is loaded from the committed log, or on PostgreSQL the writer's
// state row) and 6 (synchronous=FULL unless a bulk load asked otherwise); the rest are listed in
// engine.hpp.
#include "engine.hpp"

#include <filesystem>

#include "../postgresql/libpq.hpp"
#include "../postgresql/schema.hpp"

#include "../sqlite/schema.hpp"

namespace caregate::storage {
namespace {

const std::string newest_timestamp_sql = "SELECT coalesce(max(last_updated), 0) FROM resource_versions";

// A bulk load's writer (sqlite_options::from): a page cache large enough for the index pages a whole
// group touches (the default is for a server's writer, which has readers beside it), so a group does
// not read back pages it wrote a group ago; and 64 MiB of log between checkpoints.
constexpr unsigned bulk_load_writer_cache_kib = 256 * 1024;

constexpr unsigned bulk_load_checkpoint_frames = 16'384;

} // namespace

relational_engine::~relational_engine() {
    current_versions.stop();
    {
        std::lock_guard lock(queue_mutex);
        stopping = true;
    }
    queue_filled.notify_all();
    if (writer.joinable())
        writer.join();
    // After the writer, which asks it for sweeps, and before the readers its sweeps read through;
    // its sweeper stopped before the pointer the sweep reads it through is cleared.
    if (export_bytes_sweeper)
        export_bytes_sweeper->stop();
    export_bytes_sweeper.reset();
    export_bytes.reset();
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

fhir::result<std::unique_ptr<connection>> relational_engine::take_reader() const {
    {
        std::lock_guard lock(readers_mutex);
        if (!idle_readers.empty()) {
            auto db = std::move(idle_readers.back());
            idle_readers.pop_back();
            return db;
        }
    }
    // All busy (or none yet): open another outside the lock; opening touches the file system.
    return open_reader();
}

fhir::result<std::unique_ptr<connection>> relational_engine::open_reader() const {
    if (on_postgresql()) {
        auto opened = detail::postgresql_connection::open(postgresql);
        if (!opened)
            return std::move(opened).failure();
        // A search reads its page, total and includes in one snapshot (design note 1 of the planner):
        // every transaction a reader begins is one.
        if (auto set = (*opened)->exec_script("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE "
                                              "READ, READ ONLY",
                                              "opening a reader");
            !set)
            return std::move(set).failure();
        return std::unique_ptr<connection>(std::move(*opened));
    }
    auto opened = detail::sqlite_connection::open(options.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                                                  options.busy_timeout, options.vfs);
    if (!opened)
        return std::move(opened).failure();
    if (auto set = (*opened)->exec_script("PRAGMA cache_size = -" + std::to_string(options.reader_cache_kib),
                                          "opening a reader");
        !set)
        return std::move(set).failure();
    return std::unique_ptr<connection>(std::move(*opened));
}

void relational_engine::give_back_reader(std::unique_ptr<connection> db) const {
    if (!db || !db->usable())
        return; // a lost connection is dropped; the next reader opens a fresh one
    std::unique_lock lock(readers_mutex);
    if (idle_readers.size() < std::max(1u, options.reader_connections)) {
        idle_readers.push_back(std::move(db));
        return;
    }
    lock.unlock();
    db.reset(); // one beyond the pool's size: close it rather than keep it
}

fhir::status relational_engine::open_export_bytes() {
    if (on_postgresql()) {
        // The table is the store's (PostgreSQL schema 10); a connection of its own commits each file.
        export_bytes = detail::export_file_bytes_in_table([conninfo = postgresql]() -> fhir::result<std::unique_ptr<connection>> {
            auto opened = detail::postgresql_connection::open(conninfo);
            if (!opened)
                return std::move(opened).failure();
            return std::unique_ptr<connection>(std::move(*opened));
        });
    } else {
        // Files beside the store's (SQLite schema 14). What schema 13 kept in a database of its own
        // belonged to jobs the upgrade failed: it goes.
        for (const char* left : {"-export-files", "-export-files-wal", "-export-files-shm"}) {
            std::error_code ignored; // what cannot be removed now stays, unread
            std::filesystem::remove(options.path + left, ignored);
        }
        auto opened = detail::export_file_bytes_in_directory(options.path + "-exports");
        if (!opened)
            return std::move(opened).failure();
        export_bytes = std::move(*opened);
    }
    export_bytes_sweeper = std::make_unique<detail::export_bytes_sweeper>([this] { sweep_export_bytes(); });
    return {};
}

relational_store::relational_store(std::unique_ptr<relational_engine> engine) : impl_(std::move(engine)) {}

relational_store::~relational_store() = default;

sqlite_store::sqlite_store(std::unique_ptr<relational_engine> engine) : relational_store(std::move(engine)) {}

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

    auto state = std::make_unique<relational_engine>(options);
    auto opened = detail::sqlite_connection::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   options.busy_timeout, options.vfs);
    if (!opened)
        return std::move(opened).failure();
    detail::sqlite_connection& db = **opened;
    state->writer_db = std::move(*opened);

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

    if (auto ready = state->ready_to_serve(db); !ready)
        return std::move(ready).failure();

    // Checkpoints on a thread of their own (sqlite_options::checkpoint_frames), so that the writer
    // never waits for one; the hook replaces SQLite's automatic checkpoint on the writer.
    auto checkpointing = detail::sqlite_connection::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, options.busy_timeout,
                                          options.vfs);
    if (!checkpointing)
        return std::move(checkpointing).failure();
    state->checkpoint_db = std::move(*checkpointing);
    // A connection takes up the log only once it has read the database; until then a checkpoint
    // through it does nothing.
    if (auto mode = state->checkpoint_db->pragma("PRAGMA journal_mode"); !mode)
        return std::move(mode).failure();
    sqlite3_wal_hook(db.handle(), &relational_engine::on_wal_commit, state.get());
    state->checkpointer = std::thread([raw = state.get()] { raw->run_checkpointer(); });

    if (auto bytes = state->open_export_bytes(); !bytes)
        return std::move(bytes).failure();
    state->writer = std::thread([raw = state.get()] { raw->run_writer(); });
    return std::unique_ptr<sqlite_store>(new sqlite_store(std::move(state)));
}

} // namespace caregate::storage

namespace caregate::storage {

fhir::status relational_engine::load_writer_state(connection& db) {
    if (on_postgresql()) {
        // Invariant 26: the row each group writes, read in one statement.
        static const std::string state_sql =
            "SELECT newest_last_updated, audit_sequence, audit_hash FROM writer_state";
        auto prepared = db.prepare(state_sql, "reading the writer's state");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        if (const int rc = query.step(); rc != step_row)
            return detail::storage_failure(rc, "reading the writer's state");
        newest_timestamp = query.integer(0);
        committed_tip = chain_tip{query.integer(1), query.text(2)};
        tip = committed_tip;
        loaded_newest_timestamp = newest_timestamp;
        return {};
    }
    {
        auto prepared = db.prepare(newest_timestamp_sql, "opening the store");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        if (const int rc = query.step(); rc != step_row)
            return detail::storage_failure(rc, "opening the store");
        newest_timestamp = query.integer(0);
    }
    auto prepared = db.prepare(audit_tip_sql, "opening the store");
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    const int rc = query.step();
    if (rc == step_row)
        committed_tip = chain_tip{query.integer(0), query.text(1)};
    else if (rc == step_done)
        committed_tip = chain_tip{};
    else
        return detail::storage_failure(rc, "opening the store");
    tip = committed_tip;
    return {};
}

fhir::status relational_engine::ready_to_serve(connection& db) {
    if (auto loaded = load_writer_state(db); !loaded)
        return loaded;
    // Open the first reader now, so a database readers cannot open fails here and not on a request.
    auto reader = take_reader();
    if (!reader)
        return std::move(reader).failure();
    give_back_reader(std::move(*reader));
    return {};
}

fhir::status relational_engine::take_writers_turn(connection& db) {
    if (!on_postgresql())
        return {};
    static const std::string lock_sql =
        "SELECT pg_advisory_xact_lock(" + std::to_string(detail::writer_lock_key) + ")";
    if (auto locked = db.run(lock_sql, "waiting for the writers' turn"); !locked)
        return locked;
    return load_writer_state(db);
}

fhir::result<std::unique_ptr<connection>> relational_engine::open_postgresql_writer() const {
    auto opened = detail::postgresql_connection::open(postgresql);
    if (!opened)
        return std::move(opened).failure();
    // store_settings::busy_timeout: a lock held by another connection (a second node's group, a
    // tool) is waited for this long, then the write fails as busy (SQLSTATE 55P03).
    if (auto set = (*opened)->exec_script("SET lock_timeout = " + std::to_string(options.busy_timeout.count()),
                                          "opening the writer");
        !set)
        return std::move(set).failure();
    // A group's writes go in a pipeline, a round trip per read they need rather than per statement
    // (libpq.hpp); the writer settles before it releases each job's savepoint.
    (*opened)->defer_writes(true);
    // READ COMMITTED: each statement of a group sees what other nodes committed before the group took
    // the writers' lock. synchronous_commit stays the server's (on: a commit returns once it is on
    // the synchronous standbys the server names).
    return std::unique_ptr<connection>(std::move(*opened));
}

postgresql_store::postgresql_store(std::unique_ptr<relational_engine> engine) : relational_store(std::move(engine)) {}

postgresql_store::~postgresql_store() = default;

fhir::status postgresql_store::make_durable() { return impl_->flush_audit(); }

fhir::result<std::unique_ptr<postgresql_store>> postgresql_store::open(const postgresql_options& options) {
    sqlite_options settings;
    static_cast<store_settings&>(settings) = options;
    settings.path.clear();
    settings.reader_connections = options.reader_connections;
    auto state = std::make_unique<relational_engine>(settings, options.conninfo);
    auto opened = state->open_postgresql_writer();
    if (!opened)
        return std::move(opened).failure();
    state->writer_db = std::move(*opened);
    connection& db = *state->writer_db;
    if (auto migrated = detail::migrate_postgresql(db); !migrated)
        return std::move(migrated).failure();
    if (auto ready = state->ready_to_serve(db); !ready)
        return std::move(ready).failure();
    if (auto bytes = state->open_export_bytes(); !bytes)
        return std::move(bytes).failure();
    state->writer = std::thread([raw = state.get()] { raw->run_writer(); });
    state->current_versions.start([raw = state.get()](auto reads) { raw->read_current_batch(reads); },
                                  options.read_batch_threads ? options.read_batch_threads
                                                             : std::max(1u, std::thread::hardware_concurrency()));
    return std::unique_ptr<postgresql_store>(new postgresql_store(std::move(state)));
}

} // namespace caregate::storage
