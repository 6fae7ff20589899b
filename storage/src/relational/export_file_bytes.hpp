// The bytes of export jobs' files, kept apart from the rest of the store so that storing a file of
// megabytes never holds the one writer (a group holding a 4 MiB file took up to 365 ms to commit,
// and the reads' audit records queued behind it): on SQLite a database file of its own beside the
// store's (`<path>-export-files`, so its commits take no lock of the store's file), on PostgreSQL
// the table export_file_bytes, written on connections of its own. Each put is its own transaction,
// durable when put returns; the store's export_files rows then reference what was put
// (exports.hpp, invariant 1), and the sweep (exports.cpp) deletes what nothing references.
//
// Invariants:
//  1. An id is never given twice (SQLite AUTOINCREMENT, a PostgreSQL identity), and bytes are found
//     only by their id together with the job they were put for, so a reference can never reach
//     another job's file, even one restored from a backup beside a newer bytes file.
//  2. Deletions go a few files to a transaction (files_removed_at_once), so deleting a large export
//     holds a bounded number of pages (SQLite zeroes what it deletes, as Debian builds it).
//  3. Connections are pooled and each used by one thread at a time; the sweep runs on a thread of
//     its own, asked for by sweep_later and never waited for, and stops before the store closes.
#pragma once

#include "database.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace caregate::storage::detail {

class export_file_bytes {
public:
    /// Opens a connection to where the bytes are, set up and with the table made.
    using opener = std::function<fhir::result<std::unique_ptr<connection>>()>;

    /// `sweep` is what the sweeper thread runs each time a sweep is asked for.
    export_file_bytes(opener open, std::function<void()> sweep);
    ~export_file_bytes();
    export_file_bytes(const export_file_bytes&) = delete;
    export_file_bytes& operator=(const export_file_bytes&) = delete;

    /// The table in SQLite's database of its own (PostgreSQL's is a migration of the store's schema).
    static const std::string sqlite_schema;
    static constexpr std::int64_t files_removed_at_once = 8;

    /// Stores `ndjson` for `job_id` and commits it; its id.
    fhir::result<std::int64_t> put(std::string_view job_id, std::string_view ndjson);
    /// The bytes with this id put for this job; nothing when there are none (invariant 1).
    fhir::result<std::optional<std::string>> get(std::string_view job_id, std::int64_t id);
    /// The jobs that have bytes here.
    fhir::result<std::vector<std::string>> jobs();
    /// The ids of a job's bytes.
    fhir::result<std::vector<std::int64_t>> ids_of(std::string_view job_id);
    /// Deletes these ids, a few to a transaction (invariant 2).
    fhir::status remove(std::span<const std::int64_t> ids);

    /// Asks the sweeper thread to run the sweep once more; returns at once.
    void sweep_later();
    /// Stops the sweeper thread (a sweep under way finishes first); later sweep_later calls do
    /// nothing. The destructor stops it too; whoever owns this stops it before letting go of it, as
    /// the sweep may read through the owner.
    void stop();

private:
    template <class T, class Use>
    fhir::result<T> with_connection(Use&& use);
    void run_sweeper();

    opener open_;
    std::function<void()> sweep_;
    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<connection>> idle_;
    std::mutex sweep_mutex_;
    std::condition_variable sweep_wanted_;
    bool sweep_due_ = false;
    bool stopping_ = false;
    std::thread sweeper_;
};

} // namespace caregate::storage::detail
