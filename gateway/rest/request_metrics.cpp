// The request counters of request_metrics.hpp; see there for the invariants.
#include "rest/request_metrics.hpp"

#include "rest/routes.hpp"

#include <algorithm>

namespace caregate::rest {

namespace {

constexpr std::size_t endpoints = 2;
constexpr unsigned lowest_status = 100;
constexpr unsigned highest_status = 599;

} // namespace

std::string_view endpoint_name(endpoint where) noexcept {
    switch (where) {
    case endpoint::provider: return "provider";
    case endpoint::patient: return "patient";
    }
    return "";
}

struct request_metrics::cell {
    std::array<std::atomic<std::uint64_t>, highest_status - lowest_status + 1> by_status{};
    std::array<std::atomic<std::uint64_t>, latency_bounds_us.size()> within{};
    std::atomic<std::uint64_t> beyond{0};
    std::atomic<std::uint64_t> micros{0};
};

request_metrics::request_metrics() {
    // Invariant 1: the interactions the route table names, once each, in its order.
    for (const route_row& row : route_table())
        if (std::find(labels_.begin(), labels_.end(), row.kind) == labels_.end())
            labels_.emplace_back(row.kind);
    std::size_t largest = 0;
    for (const auto& kind : labels_)
        largest = std::max(largest, static_cast<std::size_t>(*kind));
    labels_.emplace_back(std::nullopt);
    slot_by_kind_.assign(largest + 1, labels_.size() - 1);
    for (std::size_t i = 0; i + 1 < labels_.size(); ++i)
        slot_by_kind_[static_cast<std::size_t>(*labels_[i])] = i;
    cells_ = std::make_unique<cell[]>(endpoints * labels_.size());
}

request_metrics::~request_metrics() = default;

std::size_t request_metrics::slot_of(std::optional<interactions::interaction> kind) const noexcept {
    if (!kind || static_cast<std::size_t>(*kind) >= slot_by_kind_.size())
        return labels_.size() - 1;
    return slot_by_kind_[static_cast<std::size_t>(*kind)];
}

void request_metrics::count(endpoint where, std::optional<interactions::interaction> kind, unsigned status,
                            std::chrono::steady_clock::duration took) noexcept {
    cell& c = cells_[static_cast<std::size_t>(where) * labels_.size() + slot_of(kind)];
    if (status < lowest_status || status > highest_status)
        status = 500;
    c.by_status[status - lowest_status].fetch_add(1, std::memory_order_relaxed);
    const auto micros = static_cast<std::uint64_t>(
        std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
    const auto bucket = std::lower_bound(latency_bounds_us.begin(), latency_bounds_us.end(), micros);
    if (bucket == latency_bounds_us.end())
        c.beyond.fetch_add(1, std::memory_order_relaxed);
    else
        c.within[static_cast<std::size_t>(bucket - latency_bounds_us.begin())].fetch_add(1, std::memory_order_relaxed);
    c.micros.fetch_add(micros, std::memory_order_relaxed);
}

std::uint64_t request_metrics::series::count() const noexcept {
    std::uint64_t total = beyond;
    for (const std::uint64_t n : within)
        total += n;
    return total;
}

std::vector<request_metrics::series> request_metrics::read() const {
    std::vector<series> out;
    out.reserve(endpoints * labels_.size());
    for (std::size_t e = 0; e < endpoints; ++e)
        for (std::size_t slot = 0; slot < labels_.size(); ++slot) {
            const cell& c = cells_[e * labels_.size() + slot];
            series s;
            s.where = static_cast<endpoint>(e);
            s.interaction = labels_[slot] ? interactions::spec_code(*labels_[slot]) : "unrouted";
            for (unsigned status = lowest_status; status <= highest_status; ++status)
                if (const auto n = c.by_status[status - lowest_status].load(std::memory_order_relaxed))
                    s.by_status.emplace_back(status, n);
            for (std::size_t i = 0; i < s.within.size(); ++i)
                s.within[i] = c.within[i].load(std::memory_order_relaxed);
            s.beyond = c.beyond.load(std::memory_order_relaxed);
            s.micros = c.micros.load(std::memory_order_relaxed);
            out.push_back(std::move(s));
        }
    return out;
}

} // namespace caregate::rest
