// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): metric families with their
// `# HELP` and `# TYPE` lines, samples with labels, histograms with cumulative `le` buckets, `_sum`
// and `_count`. Knows nothing of what is measured (admin/admin_endpoint.cpp says that).
//
// Invariants:
//  1. HELP text escapes `\` and newline; a label value escapes `\`, `"` and newline; names are
//     written as given, so they are fixed strings of the caller's, never request data.
//  2. A family's HELP and TYPE come once, before its samples, and its samples are contiguous.
//  3. A histogram's buckets are cumulative and end with `le="+Inf"` equal to `_count`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace caregate::admin {

/// The media type of the format.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Label pairs, e.g. {{"endpoint", "provider"}, {"status", "200"}}.
using labels = std::span<const std::pair<std::string_view, std::string_view>>;

class prometheus_text {
public:
    /// Starts a family (invariant 2). `type`: "counter", "gauge" or "histogram".
    void family(std::string_view name, std::string_view type, std::string_view help);
    /// One sample of the current family: `name` is the family's (or, for a histogram, its
    /// `_bucket`, `_sum` or `_count`).
    void sample(std::string_view name, labels with, double value);
    void sample(std::string_view name, labels with, std::uint64_t value);
    /// A whole histogram series of the current family (invariant 3): `within[i]` observations at
    /// most `bounds[i]` (beyond the bound before it; not cumulative), `beyond` more than the last,
    /// `sum` their total. Bounds and sum in the family's unit (seconds).
    void histogram(std::string_view name, labels with, std::span<const double> bounds,
                   std::span<const std::uint64_t> within, std::uint64_t beyond, double sum);

    const std::string& text() const noexcept { return text_; }

private:
    void write_name_and_labels(std::string_view name, labels with, std::string_view le = {});
    std::string text_;
};

/// A number as the format writes it: the shortest text that reads back as the same double
/// (std::to_chars, general notation: "0.0025", "30", "1e-09"), and `+Inf`, `-Inf`, `NaN`.
std::string format_value(double value);

} // namespace caregate::admin
