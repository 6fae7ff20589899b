// The readiness check: a prober thread that asks the store, a timekeeper thread that answers at the
// deadline whoever the prober has not. See readiness.hpp for the invariants.
#include "admin/readiness.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace caregate::admin {

namespace {

std::string milliseconds(std::chrono::steady_clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

} // namespace

readiness::readiness(storage::store& store, readiness_settings settings) : store_(store), settings_(settings) {
    probe_wanted_ = true; // a first check, so that /metrics has the database's state from the start
    prober_ = std::thread([this] { run_prober(); });
    timekeeper_ = std::thread([this] { run_timekeeper(); });
}

readiness::~readiness() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    timekeeper_.join();
    prober_.join();
    for (waiter& w : waiters_)
        w.done({false, "the server is stopping"});
}

void readiness::check(callback done) {
    std::unique_lock lock(mutex_);
    const auto now = clock::now();
    if (last_ && now - last_at_ < settings_.fresh_for) { // invariant 3
        const readiness_result fresh = *last_;
        lock.unlock();
        return done(fresh);
    }
    if (probing_since_ && now - *probing_since_ >= settings_.deadline) { // invariant 2
        const readiness_result stuck{false, "the database has not answered the check started " +
                                                milliseconds(now - *probing_since_) + " ago"};
        lock.unlock();
        return done(stuck);
    }
    waiters_.push_back({now + settings_.deadline, std::move(done)});
    if (!probing_since_)
        probe_wanted_ = true;
    changed_.notify_all();
}

readiness::state readiness::last() const {
    const std::lock_guard lock(mutex_);
    return {last_.has_value(), last_ && last_->ready, failovers_};
}

readiness_result readiness::probe() const {
    std::string reason;
    // Through the writer (it commits what is queued, the audit backlog too), then a read on a reader.
    if (auto tip = store_.audit_tip(); !tip) {
        const fhir::error& failure = tip.failure();
        reason = failure.kind == fhir::category::busy ? "the database did not take a commit (busy)"
                                                      : "the database failed a commit or a read";
        if (!failure.issues.empty() && !failure.issues.front().diagnostics.empty())
            reason += ": " + failure.issues.front().diagnostics;
    }
    if (store_.audit_backlog_full())
        reason += std::string(reason.empty() ? "" : "; ") +
                  "the audit log cannot be written: reads' audit records have piled up to the bound, and every "
                  "FHIR request is refused until they are committed";
    return {reason.empty(), std::move(reason)};
}

void readiness::record(const readiness_result& result, clock::time_point at) {
    if (result.ready && last_ && !last_->ready && ever_ready_)
        ++failovers_;
    ever_ready_ = ever_ready_ || result.ready;
    last_ = result;
    last_at_ = at;
}

void readiness::run_prober() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [this] { return stopping_ || probe_wanted_; });
        if (stopping_)
            return;
        probe_wanted_ = false;
        probing_since_ = clock::now();
        lock.unlock();
        const readiness_result result = probe();
        lock.lock();
        probing_since_.reset();
        record(result, clock::now()); // invariant 4: also when the deadline has passed meanwhile
        std::vector<waiter> answered = std::exchange(waiters_, {});
        lock.unlock();
        for (waiter& w : answered)
            w.done(result);
        lock.lock();
    }
}

void readiness::run_timekeeper() {
    std::unique_lock lock(mutex_);
    for (;;) {
        if (stopping_)
            return;
        if (waiters_.empty()) {
            changed_.wait(lock);
            continue;
        }
        const auto earliest = std::min_element(waiters_.begin(), waiters_.end(), [](const waiter& a, const waiter& b) {
                                  return a.deadline < b.deadline;
                              })->deadline;
        const auto now = clock::now();
        if (now < earliest) {
            changed_.wait_until(lock, earliest);
            continue;
        }
        const readiness_result late{false, "the database did not answer within " + milliseconds(settings_.deadline)};
        record(late, now);
        std::vector<waiter> answered;
        const auto due = std::stable_partition(waiters_.begin(), waiters_.end(),
                                               [now](const waiter& w) { return w.deadline > now; });
        std::move(due, waiters_.end(), std::back_inserter(answered));
        waiters_.erase(due, waiters_.end());
        lock.unlock();
        for (waiter& w : answered)
            w.done(late);
        lock.lock();
    }
}

} // namespace caregate::admin
