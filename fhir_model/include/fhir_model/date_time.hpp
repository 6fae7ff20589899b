// FHIR date, dateTime and instant values as time ranges, and HTTP dates; on <chrono>.
// A FHIR dateTime of partial precision ("2026", "2026-11", "2026-11-23T19:02Z") stands for a range;
// search and history (_since, _at) compare ranges. Times are microseconds since the Unix epoch, UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace caregate::fhir {

/// [begin, end) in microseconds since the epoch, UTC.
struct time_range {
    std::int64_t begin = 0;
    std::int64_t end = 0;
};

/// The range a search value with the prefix `ap` (approximately) covers: its own range widened on
/// each side by 10% of its distance from `now`. (The search planner applies the same widening in SQL.)
time_range approximately(const time_range& range, std::int64_t now) noexcept;

/// The range a FHIR date/dateTime/instant covers, to the precision given: "2026" is the whole year,
/// "2026-11-23T19:02:03.5Z" is 100 ms. A time without a zone is taken as UTC. nullopt when the text is
/// not a valid FHIR date, dateTime or instant.
std::optional<time_range> parse_date_time(std::string_view text) noexcept;

/// RFC 9110 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (second precision, truncated).
std::string format_http_date(std::int64_t micros);
/// Parses an IMF-fixdate; nullopt if it is not one.
std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept;

} // namespace caregate::fhir
