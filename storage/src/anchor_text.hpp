// The text of anchor lines, shared by the anchor writer (audit_anchor.cpp) and its verification
// (audit_anchor_verify.cpp): the format's name, hex digits, instants, reading the file's lines.
// Private to storage.
#pragma once

#include "storage/store.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace caregate::storage::detail {

/// The first field of every anchor line: the format and its version, signed with the rest, so that
/// a later format cannot be passed off as this one.
inline constexpr const char* anchor_format = "caregate-audit-anchor/1";

/// Lower-case hex digits only (as caregate writes hashes and signatures), and at least one.
inline bool is_lower_hex(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
}

/// An instant exactly as store::format_instant writes it ("2026-12-06T06:00:00.000000Z"), else nothing.
inline std::optional<timestamp> parse_instant(std::string_view text) {
    if (text.size() != 27)
        return std::nullopt;
    auto number = [&](std::size_t at, std::size_t digits) -> std::optional<int> {
        int value = 0;
        const auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + digits, value);
        if (ec != std::errc{} || end != text.data() + at + digits)
            return std::nullopt;
        return value;
    };
    const auto year = number(0, 4), month = number(5, 2), day = number(8, 2);
    const auto hours = number(11, 2), minutes = number(14, 2), seconds = number(17, 2), micros = number(20, 6);
    if (!year || !month || !day || !hours || !minutes || !seconds || !micros)
        return std::nullopt;
    using namespace std::chrono;
    const year_month_day date{std::chrono::year(*year), std::chrono::month(static_cast<unsigned>(*month)),
                              std::chrono::day(static_cast<unsigned>(*day))};
    if (!date.ok())
        return std::nullopt;
    const auto instant = sys_days(date) + std::chrono::hours(*hours) + std::chrono::minutes(*minutes) +
                         std::chrono::seconds(*seconds) + microseconds(*micros);
    const timestamp t = duration_cast<microseconds>(instant.time_since_epoch()).count();
    // Written back, it must be the same text: no hour 25, no sign, no other separators.
    if (store::format_instant(t) != text)
        return std::nullopt;
    return t;
}

/// The last line of a file that ends in a newline, with its 1-based number; nothing for an empty
/// file (a last line without its newline is one a crash cut short: not complete, so not it).
/// Errors: fault when the file cannot be read.
inline fhir::result<std::optional<std::pair<std::size_t, std::string>>> last_complete_line(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fhir::error::make(fhir::category::fault, "exception", "cannot read the anchors file " + path);
    std::optional<std::pair<std::size_t, std::string>> last;
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (!in.eof()) // ended by a newline
            last = std::pair{number, line};
    }
    if (in.bad())
        return fhir::error::make(fhir::category::fault, "exception", "cannot read the anchors file " + path);
    return last;
}

} // namespace caregate::storage::detail
