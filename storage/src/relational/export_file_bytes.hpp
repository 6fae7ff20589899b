// The bytes of export jobs' files, kept apart from the rest of the store so that storing a file of
// megabytes never holds the one writer (a group holding a 4 MiB file took up to 365 ms to commit,
// and the reads' audit records queued behind it), and so that deleting an export of gigabytes is
// cheap. On SQLite they are plain files in a directory beside the store's file
// (`<path>-exports/<job id>/<id>.ndjson`, export_file_bytes_directory.cpp): deleting one is an
// unlink, where SQLite read every page of a deleted value (gigabytes, while reads waited). On
// PostgreSQL they are the table export_file_bytes, written on connections of its own
// (export_file_bytes_table.cpp), whose deletions only mark rows. Each put is durable when it
// returns; the store's export_files rows then reference what was put (exports.hpp, invariant 1),
// and the sweep (exports.cpp) deletes what nothing references.
//
// Invariants:
//  1. An id is never given twice for a job, and bytes are found only by their id together with the
//     job they were put for, so a reference can never reach another job's file, even one restored
//     from a backup beside newer bytes.
//  2. Deleting is cheap whatever the size: unlinking a file, or deleting a few rows to a transaction
//     (files_removed_at_once).
//  3. Every method may be called from any thread at once; the sweep runs on a thread of its own
//     (export_bytes_sweeper), asked for by sweep_later and never waited for, and stops before the
//     store closes.
#pragma once

#include "database.hpp"

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace caregate::storage::detail {

/// Where a piece of NDJSON was put: bytes [start, start + length) of what `id` holds (length -1: to
/// its end). A directory keeps the pieces of one put in one file; a table a row for each.
struct stored_piece {
    std::int64_t id = 0;
    std::int64_t start = 0;
    std::int64_t length = -1;
};

class export_file_bytes {
public:
    virtual ~export_file_bytes() = default;

    /// Stores the pieces for `job_id`, durably and at once (all, or none reached by anything);
    /// where each is, in the same order.
    virtual fhir::result<std::vector<stored_piece>> put(std::string_view job_id,
                                                        std::span<const std::string_view> pieces) = 0;
    /// The bytes of a piece put for this job; nothing when they are not there (invariant 1).
    virtual fhir::result<std::optional<std::string>> get(std::string_view job_id, const stored_piece& piece) = 0;
    /// The jobs that have bytes here.
    virtual fhir::result<std::vector<std::string>> jobs() = 0;
    /// The ids of a job's bytes, in increasing order.
    virtual fhir::result<std::vector<std::int64_t>> ids_of(std::string_view job_id) = 0;
    /// Deletes these ids of the job's (invariant 2); ids already gone are no failure.
    virtual fhir::status remove(std::string_view job_id, std::span<const std::int64_t> ids) = 0;
};

/// Opens a connection to the store's database, set up.
using connection_opener = std::function<fhir::result<std::unique_ptr<connection>>()>;

/// The bytes in the table export_file_bytes (PostgreSQL schema 10), through connections of their own.
std::unique_ptr<export_file_bytes> export_file_bytes_in_table(connection_opener open);
/// The bytes as files under `directory`, made (owner only) if it is not there.
fhir::result<std::unique_ptr<export_file_bytes>> export_file_bytes_in_directory(std::filesystem::path directory);

/// The thread that runs a sweep whenever one is asked for (invariant 3).
class export_bytes_sweeper {
public:
    explicit export_bytes_sweeper(std::function<void()> sweep);
    ~export_bytes_sweeper();
    export_bytes_sweeper(const export_bytes_sweeper&) = delete;
    export_bytes_sweeper& operator=(const export_bytes_sweeper&) = delete;

    /// Asks for the sweep to run once more; returns at once.
    void sweep_later();
    /// Stops the thread (a sweep under way finishes first); later sweep_later calls do nothing. The
    /// destructor stops it too; whoever owns it stops it before letting go of what the sweep reads.
    void stop();

private:
    void run();

    std::function<void()> sweep_;
    std::mutex mutex_;
    std::condition_variable wanted_;
    bool due_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace caregate::storage::detail
