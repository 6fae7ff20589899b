// Runs population health export jobs (Bulk Data $export) to their end: a few worker threads, each
// taking a job the store leases to it, reading it page by page at the job's snapshot with the
// export's visibility, and committing NDJSON files with the job's cursor as it goes. A job's passes
// (job_request.hpp) walk every type without a filter at once, in the order the versions were
// written, so that a database larger than memory is read once rather than once per type; the lines
// go into a file of each type, each committed a part at a time.
//
// Invariants (tests/gateway/export_test.cpp, tests/crash/export_crash_test.py):
//  1. Every line a job writes was visible to its requester's export (access::guard::export_visibility,
//     decided in each page's query with the configuration in use then) and was current at the job's
//     snapshot (its transaction time).
//  2. A file is committed together with the cursor that follows its last line (store invariant 1),
//     so a job resumed after a stop, a crash or a lost lease writes each line once: what was not
//     committed is read again from the committed cursor.
//  3. Memory stays bounded whatever the export's size: a page ends at `page_bytes` (and
//     `page_count` resources), and the lines in hand, of every type, at about `file_bytes`: they are
//     then committed, a part of each type's file. A file is closed once it holds `file_bytes`.
//  4. A job whose requester may no longer take its kind of export (the policy changed, the
//     organisation is gone) fails, with nothing more written.
//  5. A Group export writes a resource that links to several members once, under the first of them.
//  6. A pseudonymised export writes each line through fhir::deidentify_resource with the recipient's
//     key, or nothing at all: a recipient without a key fails the job before its first line.
//  7. Requests come first: a worker runs at a lower CPU priority (nice 10) than the request threads
//     and the writer, and in the idle I/O class, so that on busy cores and a busy disk an export
//     takes what they leave, rather than holding the writer back until the reads' audit records
//     pass their bound and reads are refused.
#pragma once

#include "access/guard.hpp"
#include "export/pseudonymise.hpp"
#include "storage/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace caregate::exports {

struct runner_settings {
    /// Jobs run at once on this node (caregate serve --export-jobs): each a thread that reads pages
    /// and stores files. 0: this node runs none (another node of the same database does).
    unsigned workers = 1;
    /// How long a finished job's files are kept (caregate serve --export-retention).
    std::chrono::seconds retention{24 * 3600};
    /// How long a job stays leased to a worker without word from it: a node that died gives its
    /// jobs up this long after its last save. A worker renews it at a third of it.
    std::chrono::seconds lease{10};
    /// The lines in hand are committed once they hold this much, and a file is closed once it does
    /// (so a file is at least this size but its type's last, and at most about twice it).
    std::size_t file_bytes = 4u << 20;
    /// A page read from the store ends once it holds this much, or page_count resources.
    std::size_t page_bytes = 1u << 20;
    unsigned page_count = 1000;
    /// How often an idle worker looks for a job (one started elsewhere, a lease run out).
    std::chrono::milliseconds idle_poll{500};
    /// Pseudonymised exports: each recipient's key (caregate serve --export-keys; a recipient
    /// without one gets no pseudonymised export), and what is removed or cut (--deidentification;
    /// null: the shipped profile).
    std::shared_ptr<const pseudonym_keys> keys;
    std::shared_ptr<const fhir::deidentification_profile> profile;
};

class runner {
public:
    /// `current_guard` gives the guard of the configuration in use (reloaded on SIGHUP), which each
    /// page reads with. Starts the workers.
    runner(storage::store& store, std::function<std::shared_ptr<const access::guard>()> current_guard,
           runner_settings settings);
    /// stop().
    ~runner();
    runner(const runner&) = delete;
    runner& operator=(const runner&) = delete;

    /// Lets each worker finish the page in hand, gives its job's lease back (what it had not
    /// committed is read again by the next worker: invariant 2) and joins it. Idempotent.
    void stop();
    /// Wakes an idle worker: a job has been created here.
    void wake();

    const runner_settings& settings() const noexcept { return settings_; }

private:
    struct job_run; // one job's run (runner.cpp)
    void work(std::string worker);
    /// Runs the job to its end, a stop, or a lost lease.
    void run(const storage::export_job& job, const std::string& worker);
    void remove_expired();

    storage::store& store_;
    std::function<std::shared_ptr<const access::guard>()> current_guard_;
    const runner_settings settings_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::condition_variable woken_;
    bool wake_pending_ = false;
    std::vector<std::thread> workers_;
};

} // namespace caregate::exports
