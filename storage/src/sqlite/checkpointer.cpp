// Checkpoints of the SQLite engine's write-ahead log: a thread of its own, woken by the writer's WAL
// hook, copies the log back into the database (passive: it never waits for nor blocks the writer or
// a reader); past sixteen times the mark the writer finishes the copy itself, so the log stays
// bounded; and sqlite_store::checkpoint, a full one between groups, for a bulk load's end.
#include "../relational/engine.hpp"

#include <future>

namespace caregate::storage {

fhir::status sqlite_store::checkpoint() {
    if (std::this_thread::get_id() == impl_->writer.get_id())
        return store_fault("sqlite_store::checkpoint called on the writer thread");
    std::promise<fhir::status> finished;
    auto outcome = finished.get_future();
    impl_->enqueue(queued_checkpoint{[&finished](fhir::status done) { finished.set_value(std::move(done)); }});
    return outcome.get();
}

fhir::status sqlite_store::make_durable() { return checkpoint(); }

int relational_engine::on_wal_commit(void* self, sqlite3* db, const char*, int frames) {
    auto& state = *static_cast<relational_engine*>(self);
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

void relational_engine::run_checkpointer() {
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

void relational_engine::run_checkpoint(queued_checkpoint& job) {
    fhir::status done;
    // TRUNCATE: waits (busy timeout) for readers, copies the whole log, fsyncs the log before and the
    // database after (synchronous NORMAL or FULL), and empties the log. SQLITE_BUSY: not all copied.
    std::unique_lock running(checkpoint_running);
    const int rc = sqlite3_wal_checkpoint_v2(detail::as_sqlite(*writer_db).handle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    running.unlock();
    if (rc != SQLITE_OK)
        done = detail::storage_failure(rc, "checkpointing the database");
    try {
        if (job.done)
            job.done(std::move(done));
    } catch (...) {
        // A callback's failure is its own; the writer must go on serving the others.
    }
}

} // namespace caregate::storage
