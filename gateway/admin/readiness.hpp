// The readiness check behind the admin listener's /ready (and the database state /metrics shows):
// whether the database answers, and takes a commit. It asks the store for the audit chain's tip
// (store::audit_tip), which goes through the writer (it commits what is queued) and then reads on
// a reader, so one check proves both; and it is not ready while the audit backlog is full, when
// every FHIR request is refused anyway. Not the HTTP side (admin_endpoint.cpp).
//
// Invariants:
//  1. No caller waits: check() answers through its callback, at once from a fresh result, or later
//     from the prober thread when the check ends or from the timekeeper thread at the deadline,
//     whichever comes first. A slow store never holds a thread of the listener.
//  2. One probe at a time. A probe still running past its deadline is not started again until it
//     returns: a stuck store costs one stuck thread, not one per request; meanwhile every check
//     answers not ready at once.
//  3. A result is served again for `fresh_for` without a new probe, so that many load balancers
//     probing often cost one commit per `fresh_for`.
//  4. A deadline passed is a result like any other (not ready), and so is the probe's own when it
//     comes back later: the state /metrics shows is the last result, however it came.
#pragma once

#include "storage/store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace caregate::admin {

struct readiness_settings {
    /// How long a check may take before it answers not ready. HAProxy's `timeout check` is often
    /// 2 to 5 s and Kubernetes' probe timeout 1 s by default: 2 s answers inside the former, and a
    /// commit that takes longer (a lock another process holds) means the node should not take writes.
    std::chrono::milliseconds deadline{2000};
    /// How long a result is served again without a new check (invariant 3): every load balancer
    /// probing every 250 ms or more slowly then gets a result of its own, at one commit per 250 ms.
    std::chrono::milliseconds fresh_for{250};
};

struct readiness_result {
    bool ready = false;
    std::string reason; ///< why not, in words for the operator; never patient data
};

class readiness {
public:
    /// Starts the prober and timekeeper threads, and a first check. `store` must outlive this.
    explicit readiness(storage::store& store, readiness_settings settings = {});
    /// Answers what still waits (not ready: stopping), then joins both threads, after the probe
    /// running, if any (the store's own lock timeout bounds it).
    ~readiness();
    readiness(const readiness&) = delete;
    readiness& operator=(const readiness&) = delete;

    /// Calls `done` with the readiness, at once or later on another thread (invariant 1).
    void check(std::function<void(const readiness_result&)> done);

    /// What /metrics shows of the database (invariant 4).
    struct state {
        bool checked = false; ///< a result has come (no: the first check is still running)
        bool ready = false;   ///< the last result
        /// Times a result was ready after one that was not, when one before that had been ready: the
        /// database came back after it had been lost (a lock or a full disk that cleared; with a
        /// replicated database, the promotion of a standby).
        std::uint64_t failovers = 0;
    };
    state last() const;

private:
    using clock = std::chrono::steady_clock;
    using callback = std::function<void(const readiness_result&)>;
    struct waiter {
        clock::time_point deadline;
        callback done;
    };

    readiness_result probe() const;
    /// Records a result and takes the waiters it answers (all, or those past their deadline).
    void record(const readiness_result& result, clock::time_point at); // holds mutex_
    void run_prober();
    void run_timekeeper();

    storage::store& store_;
    const readiness_settings settings_;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool stopping_ = false;
    bool probe_wanted_ = false;                  ///< a probe is due and the prober has not taken it
    std::optional<clock::time_point> probing_since_; ///< a probe is running (taken by the prober)
    std::vector<waiter> waiters_;
    std::optional<readiness_result> last_;
    clock::time_point last_at_;
    bool ever_ready_ = false;
    std::uint64_t failovers_ = 0;

    std::thread prober_;     // last: start once the rest is ready
    std::thread timekeeper_;
};

} // namespace caregate::admin
