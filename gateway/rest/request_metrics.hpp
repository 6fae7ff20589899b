// What the REST application counts of the requests it answers, for the admin listener's /metrics:
// requests by endpoint, interaction and status, and their latency, in arrays of atomics fixed at
// start. Not the exposition format (admin/admin_endpoint.cpp writes it).
//
// Invariants:
//  1. Labels are a closed set: the endpoint (provider, patient), an interaction the route table names
//     (its spec code) or "unrouted", and the status as a number. Never a path, an id, a token, an
//     NHS number or anything a request carries.
//  2. Counting takes no lock and allocates nothing: a few relaxed atomic increments.
//  3. A histogram's count is the sum of its buckets, read from the same counters, so the `+Inf`
//     bucket always equals `_count` however requests race a reading.
#pragma once

#include "interactions/served.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace caregate::rest {

/// Which listener's application answered: the provider endpoint or the patient-facing one.
enum class endpoint { provider, patient };

std::string_view endpoint_name(endpoint where) noexcept;

class request_metrics {
public:
    /// Upper bounds of the latency buckets, in microseconds: from 1 ms (a cached read) to 30 s (a
    /// large transaction Bundle, a long `$everything`).
    static constexpr std::array<std::uint64_t, 14> latency_bounds_us = {
        1'000,   2'500,   5'000,     10'000,    25'000,    50'000,    100'000,
        250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000, 30'000'000};

    request_metrics();
    ~request_metrics();
    request_metrics(const request_metrics&) = delete;
    request_metrics& operator=(const request_metrics&) = delete;

    /// Counts one answered request (invariant 2). `kind` is empty for a request answered before a
    /// row of the route table took it (an unknown path, a method the path does not allow, a bad
    /// X-Request-ID). A status outside 100 to 599 is counted as 500, which the network layer sends
    /// instead. Thread-safe.
    void count(endpoint where, std::optional<interactions::interaction> kind, unsigned status,
               std::chrono::steady_clock::duration took) noexcept;

    /// One (endpoint, interaction) pair as read now.
    struct series {
        endpoint where = endpoint::provider;
        std::string_view interaction; ///< the spec's code, or "unrouted"
        std::vector<std::pair<unsigned, std::uint64_t>> by_status; ///< statuses counted, ascending
        /// within[i]: requests that took at most latency_bounds_us[i], beyond the bound before it.
        std::array<std::uint64_t, latency_bounds_us.size()> within{};
        std::uint64_t beyond = 0; ///< requests slower than the last bound
        std::uint64_t micros = 0; ///< their latencies, summed
        std::uint64_t count() const noexcept; ///< the sum of the buckets (invariant 3)
    };
    /// Every pair, each endpoint in turn, its interactions in the route table's order and then
    /// "unrouted"; those with no request yet too, so that the set of series never changes.
    std::vector<series> read() const;

private:
    struct cell;
    std::size_t slot_of(std::optional<interactions::interaction> kind) const noexcept;

    std::vector<std::optional<interactions::interaction>> labels_; ///< the route table's, then unrouted
    std::vector<std::size_t> slot_by_kind_; ///< index into labels_ by the enum's value
    std::unique_ptr<cell[]> cells_;         ///< endpoints x labels_
};

} // namespace caregate::rest
