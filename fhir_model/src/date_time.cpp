// FHIR date/dateTime/instant ranges and HTTP dates, on <chrono>'s civil calendar.
#include "fhir_model/date_time.hpp"

#include <array>
#include <cmath>
#include <chrono>
#include <cstdio>

namespace caregate::fhir {

namespace {

using namespace std::chrono;

/// Reads exactly `n` digits at `pos`; advances `pos`.
std::optional<int> digits(std::string_view text, std::size_t& pos, std::size_t n) noexcept {
    if (pos + n > text.size())
        return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < n; ++i) {
        char c = text[pos + i];
        if (c < '0' || c > '9')
            return std::nullopt;
        value = value * 10 + (c - '0');
    }
    pos += n;
    return value;
}

std::int64_t micros_of(sys_days day) noexcept {
    return duration_cast<microseconds>(day.time_since_epoch()).count();
}

constexpr std::array<const char*, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<const char*, 7> day_names{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

} // namespace

time_range approximately(const time_range& range, std::int64_t now) noexcept {
    const double distance = std::abs(static_cast<double>(now - range.begin));
    const auto margin = static_cast<std::int64_t>(distance * 0.1);
    return {range.begin - margin, range.end + margin};
}

std::optional<time_range> parse_date_time(std::string_view text) noexcept {
    std::size_t pos = 0;
    auto y = digits(text, pos, 4);
    if (!y)
        return std::nullopt;
    if (pos == text.size()) {
        const year_month_day start{year{*y}, January, day{1}};
        return time_range{micros_of(sys_days{start}), micros_of(sys_days{year{*y + 1} / January / 1})};
    }
    if (text[pos++] != '-')
        return std::nullopt;
    auto m = digits(text, pos, 2);
    if (!m || *m < 1 || *m > 12)
        return std::nullopt;
    const year_month ym{year{*y}, month{static_cast<unsigned>(*m)}};
    if (pos == text.size())
        return time_range{micros_of(sys_days{ym / 1}), micros_of(sys_days{(ym + months{1}) / 1})};
    if (text[pos++] != '-')
        return std::nullopt;
    auto d = digits(text, pos, 2);
    if (!d)
        return std::nullopt;
    const year_month_day ymd{ym / day{static_cast<unsigned>(*d)}};
    if (!ymd.ok())
        return std::nullopt;
    const std::int64_t day_start = micros_of(sys_days{ymd});
    if (pos == text.size())
        return time_range{day_start, day_start + 86'400'000'000LL};
    if (text[pos++] != 'T')
        return std::nullopt;
    auto hh = digits(text, pos, 2);
    if (!hh || *hh > 23 || pos >= text.size() || text[pos++] != ':')
        return std::nullopt;
    auto mm = digits(text, pos, 2);
    if (!mm || *mm > 59)
        return std::nullopt;
    std::int64_t begin = day_start + (*hh * 3600LL + *mm * 60LL) * 1'000'000LL;
    std::int64_t width = 60'000'000LL;
    if (pos < text.size() && text[pos] == ':') {
        ++pos;
        auto ss = digits(text, pos, 2);
        if (!ss || *ss > 60) // 60: a leap second, as FHIR's regex allows
            return std::nullopt;
        begin += *ss * 1'000'000LL;
        width = 1'000'000LL;
        if (pos < text.size() && text[pos] == '.') {
            ++pos;
            std::size_t fraction_digits = 0;
            std::int64_t scale = 100'000;
            while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
                if (scale > 0) {
                    begin += (text[pos] - '0') * scale;
                    width = scale;
                    scale /= 10;
                }
                ++pos;
                ++fraction_digits;
            }
            if (fraction_digits == 0)
                return std::nullopt;
            if (scale == 0 && fraction_digits > 6)
                width = 1;
        }
    }
    // Zone: Z, +hh:mm or -hh:mm; absent means UTC here (FHIR requires it once hours are given,
    // but search values may leave it out).
    if (pos < text.size()) {
        char sign = text[pos++];
        if (sign == 'Z') {
            if (pos != text.size())
                return std::nullopt;
        } else if (sign == '+' || sign == '-') {
            auto zh = digits(text, pos, 2);
            if (!zh || *zh > 14 || pos >= text.size() || text[pos++] != ':')
                return std::nullopt;
            auto zm = digits(text, pos, 2);
            if (!zm || *zm > 59 || pos != text.size())
                return std::nullopt;
            const std::int64_t offset = (*zh * 3600LL + *zm * 60LL) * 1'000'000LL;
            begin += sign == '+' ? -offset : offset;
        } else {
            return std::nullopt;
        }
    }
    return time_range{begin, begin + width};
}

std::string format_http_date(std::int64_t micros) {
    const sys_seconds t{duration_cast<seconds>(microseconds{micros})};
    const sys_days day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss<seconds> hms{t - day};
    char out[40];
    std::snprintf(out, sizeof out, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                  day_names[weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                  month_names[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return out;
}

std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept {
    // "Sun, 06 Nov 1994 08:49:37 GMT": fixed positions.
    if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT")
        return std::nullopt;
    std::size_t pos = 5;
    auto d = digits(text, pos, 2);
    if (!d || text[pos++] != ' ')
        return std::nullopt;
    unsigned m = 0;
    for (unsigned i = 0; i < 12; ++i)
        if (text.substr(pos, 3) == month_names[i])
            m = i + 1;
    pos += 3;
    if (m == 0 || text[pos++] != ' ')
        return std::nullopt;
    auto y = digits(text, pos, 4);
    if (!y || text[pos++] != ' ')
        return std::nullopt;
    auto hh = digits(text, pos, 2);
    if (!hh || text[pos++] != ':')
        return std::nullopt;
    auto mm = digits(text, pos, 2);
    if (!mm || text[pos++] != ':')
        return std::nullopt;
    auto ss = digits(text, pos, 2);
    if (!ss || *hh > 23 || *mm > 59 || *ss > 60)
        return std::nullopt;
    const year_month_day ymd{year{*y}, month{m}, day{static_cast<unsigned>(*d)}};
    if (!ymd.ok())
        return std::nullopt;
    return micros_of(sys_days{ymd}) + (*hh * 3600LL + *mm * 60LL + *ss) * 1'000'000LL;
}

} // namespace caregate::fhir
