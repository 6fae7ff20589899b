// Bulk Data export jobs as the store keeps them (store.hpp: create_export ... remove_expired_exports):
// a job's state, its output files and, for an identifiable export, the citizens it has logged. What
// a job exports, and how, is the gateway's (gateway/export): the store keeps the job's request as
// opaque text and its place as an opaque cursor, and guarantees what makes a job survive a restart.
//
// Invariants (tests/storage/export_jobs_test.cpp proves them on both engines):
//  1. A job's progress is stored first, the bytes of all its files (or parts of files) committed at
//     once apart from the writer's transactions (so that megabytes never hold the one writer); then
//     the files' rows (a row per part, each referencing its bytes), its cursor, its count of lines
//     and the access-log records of the citizens its files hold commit together or not at all
//     (save_export_progress). So a job resumed from its cursor after a crash writes every line
//     exactly once, and bytes whose rows never committed are reached by nothing: they are deleted
//     at the job's next claim, or once it ends. A file is served as its parts in the order
//     committed, and holds lines of one type.
//  2. Progress is saved only by the worker holding the job's lease, while the job is unfinished and
//     not cancelled: a cancelled job, or one whose lease another worker has taken over, refuses it
//     (conflict) and nothing of it is kept.
//  3. While a job is unfinished, the search index keeps every row its snapshot needs: the purge of
//     closed rows (engine invariant 18) never passes the oldest unfinished job's snapshot, so a job
//     reads exactly what was current at its transaction time however long it runs.
//  4. A job's snapshot is the newest version committed when it was created, taken by the writer
//     (no version can commit between the two), and its transaction time is that moment.
//  5. Cancelling or expiring a job removes it, its files' rows and its citizens' rows together, and
//     from then on none of its files is found (every way to a file goes through its job and its
//     rows); the files' bytes are then deleted on a thread of their own, a few at a time, each step
//     its own transaction, and whatever a crash left is deleted by the next removal of expired jobs.
//     Erasing a citizen withdraws every job that holds them: the job fails as withdrawn and its
//     files' rows are deleted in the erasure's own transaction, their bytes right after it commits.
#pragma once

#include "storage/records.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace caregate::storage {

enum class export_status { accepted, in_progress, completed, failed };

/// One export job.
struct export_job {
    std::string id;           ///< a UUID, the status URL's last segment
    export_status status = export_status::accepted;
    std::string request;      ///< what the gateway needs to run it (JSON), kept as given
    std::string organisation; ///< the requester's ODS code: the only organisation that may poll and download
    std::string client;       ///< the requester's client certificate (its ODS code), likewise
    std::int64_t snapshot = 0;      ///< the newest version seq it reads (invariant 4)
    timestamp transaction_time = 0; ///< when it was created (invariant 4)
    timestamp created = 0;
    std::string cursor;             ///< where the runner is (opaque to the store); empty: at the start
    std::int64_t written = 0;       ///< lines committed so far
    std::optional<timestamp> finished;
    std::optional<timestamp> expires; ///< when a finished job and its files are removed
    std::string error;                ///< why a failed job failed (no patient data)
};

/// An output file of a job, without its content.
struct export_file_summary {
    std::int64_t number = 0; ///< 1, 2, ... in the order written
    std::string type;        ///< the resource type of every line; "OperationOutcome" for an error file
    std::int64_t count = 0;  ///< lines
};

/// An output file, or a part of one, to commit with a job's progress.
struct export_file {
    std::string type;
    std::int64_t count = 0;
    std::string ndjson; ///< the lines, each ending in '\n'
    /// 0: a file of its own, numbered after the job's files so far. Otherwise the file these lines
    /// go in: a new one of that number, or the next part of that file (of the same type).
    std::int64_t number = 0;
};

/// What a worker commits at once (invariant 1).
struct export_progress {
    std::string job_id;
    std::string worker;             ///< the lease holder saving it (invariant 2)
    timestamp lease_until = 0;      ///< the lease, renewed
    std::vector<export_file> files; ///< may be empty: a renewal of the lease, or the end
    std::string cursor;             ///< the place after these files
    /// Citizens whose data these files hold, recorded once per job (an erasure of one withdraws the
    /// job's files: erasure.hpp). With `audit` given (an identifiable export), each one recorded
    /// for the first time gets it, with its NHS number, in the same transaction: their access-log entry.
    std::vector<std::string> citizens;
    std::optional<audit_record> audit;
    /// The job ends: completed (error empty) or failed (with error), expiring at `expires`.
    bool finish = false;
    std::string error;
    timestamp finished = 0;
    timestamp expires = 0;
};

} // namespace caregate::storage
