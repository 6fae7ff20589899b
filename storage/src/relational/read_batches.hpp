// Reads of current versions gathered into batches, answered on threads of their own, so that requests
// served at the same time share one statement and one round trip to the database, and no request's
// thread waits on the round trip (PostgreSQL: a round trip wakes a backend and a caregate thread,
// which cost more than the read's own work; an in-process SQLite read has no round trip to share and
// does not come here). Only the gathering and the threads are here; what a batch runs is the engine's
// (reads.cpp, relational_engine::read_current_batch).
//
// A read that arrives while a batch thread is idle goes at once, as a batch of one: on a quiet server
// nobody waits for anybody. Reads that arrive while every batch thread has a batch in the database
// wait, and the next thread free takes all of them (up to max_reads) as its next batch.
//
// Invariants:
//  1. A read joins only a batch that has not started: the statement that answers it begins after the
//     read arrived, so it sees every write acknowledged before the read arrived (no stale visibility,
//     engine.hpp invariant 27).
//  2. Every read queued is answered exactly once, with its own answer: when the batch fails or throws,
//     each of its reads gets the failure; stop() answers every read still queued before it returns.
//  3. A read's `then` runs on a batch thread, after its batch; one that throws loses only its own
//     answer (the caller's `then` is to answer its request however it ends, see gateway read.cpp).
#pragma once

#include "storage/records.hpp"

#include "fhir_model/error.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace caregate::storage::detail {

class current_version_batches {
public:
    /// The current version of a resource (live or a deletion marker); not_found when it never existed.
    using answer = fhir::result<stored_version>;

    /// One read: what it asks for, the answer its batch gives it, and what to do with the answer.
    struct wanted {
        std::string type;
        std::string id;
        std::optional<answer> found;
        std::function<void(answer)> then;
    };

    /// Runs one batch: sets `found` of every read given (one left unset gets a fault); may throw (each
    /// read of the batch then gets a fault).
    using run_batch = std::function<void(std::span<wanted* const>)>;

    /// The most reads one batch carries; the rest wait for the next.
    static constexpr std::size_t max_reads = 64;

    current_version_batches() = default;
    current_version_batches(const current_version_batches&) = delete;
    current_version_batches& operator=(const current_version_batches&) = delete;
    ~current_version_batches() { stop(); }

    /// Starts `threads` batch threads, each running its batches with `run`.
    void start(run_batch run, unsigned threads);
    /// Queues a read; its `then` runs on a batch thread with the answer. Only after start().
    void read(std::string type, std::string id, std::function<void(answer)> then);
    /// Answers every read queued, then stops the batch threads. Idempotent.
    void stop();

private:
    void run_batches();

    run_batch run_;
    std::mutex mutex_;
    std::condition_variable queued_;
    std::deque<wanted> queue_; ///< reads waiting for a batch, in arrival order
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

/// Runs `run` over `reads` as current_version_batches does a batch: every read has `found` set after,
/// a fault where `run` threw or left one unset.
void answer_batch(const current_version_batches::run_batch& run, std::span<current_version_batches::wanted* const> reads);

} // namespace caregate::storage::detail
