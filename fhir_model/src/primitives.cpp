// The lexical rules of the R4 primitive types; see primitives.hpp.
#include "primitives.hpp"

namespace caregate::fhir::detail {

namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// Reads exactly `count` digits at `pos` as a number.
bool digits(std::string_view text, std::size_t pos, std::size_t count, int& value) noexcept {
    if (pos + count > text.size())
        return false;
    value = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
        if (!is_digit(text[i]))
            return false;
        value = value * 10 + (text[i] - '0');
    }
    return true;
}

int days_in_month(int year, int month) noexcept {
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/// The date part at the start of `text`; `length` is how much it used, `full` whether it has a day.
bool date_prefix(std::string_view text, std::size_t& length, bool& full) noexcept {
    int year = 0, month = 0, day = 0;
    if (!digits(text, 0, 4, year) || year == 0)
        return false;
    length = 4;
    full = false;
    if (text.size() == 4 || text[4] != '-')
        return true;
    if (!digits(text, 5, 2, month) || month < 1 || month > 12)
        return false;
    length = 7;
    if (text.size() == 7 || text[7] != '-')
        return true;
    if (!digits(text, 8, 2, day) || day < 1 || day > days_in_month(year, month))
        return false;
    length = 10;
    full = true;
    return true;
}

/// hh:mm:ss(.fraction) at `pos`; advances `pos`.
bool time_part(std::string_view text, std::size_t& pos) noexcept {
    int hour = 0, minute = 0, second = 0;
    if (!digits(text, pos, 2, hour) || hour > 23 || pos + 2 >= text.size() || text[pos + 2] != ':' ||
        !digits(text, pos + 3, 2, minute) || minute > 59 || pos + 5 >= text.size() || text[pos + 5] != ':' ||
        !digits(text, pos + 6, 2, second) || second > 60)
        return false;
    pos += 8;
    if (pos < text.size() && text[pos] == '.') {
        const std::size_t start = ++pos;
        while (pos < text.size() && is_digit(text[pos]))
            ++pos;
        if (pos == start)
            return false;
    }
    return true;
}

/// Z or +hh:mm / -hh:mm (hours 00-13, or 14:00) ending the text at `pos`.
bool zone_part(std::string_view text, std::size_t pos) noexcept {
    if (pos >= text.size())
        return false;
    if (text[pos] == 'Z')
        return pos + 1 == text.size();
    if (text[pos] != '+' && text[pos] != '-')
        return false;
    int hour = 0, minute = 0;
    if (text.size() != pos + 6 || !digits(text, pos + 1, 2, hour) || text[pos + 3] != ':' ||
        !digits(text, pos + 4, 2, minute))
        return false;
    return (hour <= 13 && minute <= 59) || (hour == 14 && minute == 0);
}

/// Unsigned digits without a leading zero (except "0"), no more than 2^31-1.
bool small_natural(std::string_view text) noexcept {
    if (text.empty() || text.size() > 10 || (text.size() > 1 && text[0] == '0'))
        return false;
    long long value = 0;
    for (char c : text) {
        if (!is_digit(c))
            return false;
        value = value * 10 + (c - '0');
    }
    return value <= 2147483647LL;
}

} // namespace

bool is_valid_string(std::string_view text) noexcept {
    if (text.empty())
        return false;
    for (unsigned char c : text)
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
            return false;
    return true;
}

bool is_valid_id(std::string_view text) noexcept {
    if (text.empty() || text.size() > 64)
        return false;
    for (char c : text)
        if (!(is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '.'))
            return false;
    return true;
}

bool is_valid_code(std::string_view text) noexcept {
    if (!is_valid_string(text) || is_space(text.front()) || is_space(text.back()))
        return false;
    for (std::size_t i = 1; i < text.size(); ++i)
        if (is_space(text[i]) && is_space(text[i - 1]))
            return false;
    return true;
}

bool is_valid_uri(std::string_view text) noexcept {
    if (!is_valid_string(text))
        return false;
    for (char c : text)
        if (is_space(c))
            return false;
    return true;
}

bool is_valid_oid(std::string_view text) noexcept {
    constexpr std::string_view prefix = "urn:oid:";
    if (!text.starts_with(prefix) || text.size() < prefix.size() + 3)
        return false;
    text.remove_prefix(prefix.size());
    if (text[0] < '0' || text[0] > '2')
        return false;
    std::size_t pos = 1;
    bool any_arc = false;
    while (pos < text.size()) {
        if (text[pos] != '.')
            return false;
        const std::size_t start = ++pos;
        while (pos < text.size() && is_digit(text[pos]))
            ++pos;
        if (pos == start || (text[start] == '0' && pos - start > 1))
            return false;
        any_arc = true;
    }
    return any_arc;
}

bool is_valid_uuid(std::string_view text) noexcept {
    constexpr std::string_view prefix = "urn:uuid:";
    if (!text.starts_with(prefix) || text.size() != prefix.size() + 36)
        return false;
    text.remove_prefix(prefix.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!(is_digit(c) || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool is_valid_date(std::string_view text) noexcept {
    std::size_t length = 0;
    bool full = false;
    return date_prefix(text, length, full) && length == text.size();
}

bool is_valid_date_time(std::string_view text) noexcept {
    std::size_t length = 0;
    bool full = false;
    if (!date_prefix(text, length, full))
        return false;
    if (length == text.size())
        return true;
    if (!full || text[length] != 'T')
        return false;
    std::size_t pos = length + 1;
    return time_part(text, pos) && zone_part(text, pos);
}

bool is_valid_instant(std::string_view text) noexcept {
    std::size_t length = 0;
    bool full = false;
    if (!date_prefix(text, length, full) || !full || length == text.size() || text[length] != 'T')
        return false;
    std::size_t pos = length + 1;
    return time_part(text, pos) && zone_part(text, pos);
}

bool is_valid_time(std::string_view text) noexcept {
    std::size_t pos = 0;
    return time_part(text, pos) && pos == text.size();
}

bool is_valid_decimal(std::string_view text) noexcept {
    std::size_t pos = 0;
    if (pos < text.size() && text[pos] == '-')
        ++pos;
    if (pos >= text.size() || !is_digit(text[pos]))
        return false;
    if (text[pos] == '0')
        ++pos;
    else
        while (pos < text.size() && is_digit(text[pos]))
            ++pos;
    if (pos < text.size() && text[pos] == '.') {
        const std::size_t start = ++pos;
        while (pos < text.size() && is_digit(text[pos]))
            ++pos;
        if (pos == start)
            return false;
    }
    if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
        ++pos;
        if (pos < text.size() && (text[pos] == '+' || text[pos] == '-'))
            ++pos;
        const std::size_t start = pos;
        while (pos < text.size() && is_digit(text[pos]))
            ++pos;
        if (pos == start)
            return false;
    }
    return pos == text.size();
}

bool is_valid_integer(std::string_view text) noexcept {
    if (text.starts_with('-')) {
        text.remove_prefix(1);
        return text == "2147483648" || small_natural(text);
    }
    return small_natural(text);
}

bool is_valid_positive_int(std::string_view text) noexcept { return small_natural(text) && text != "0"; }

bool is_valid_unsigned_int(std::string_view text) noexcept { return small_natural(text); }

bool is_valid_base64(std::string_view text) noexcept {
    std::size_t count = 0, padding = 0;
    for (char c : text) {
        if (is_space(c))
            continue;
        if (c == '=') {
            ++padding;
        } else if (padding > 0 || !(is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '+' ||
                                    c == '/')) {
            return false;
        }
        ++count;
    }
    return count > 0 && count % 4 == 0 && padding <= 2;
}

bool is_valid_xhtml(std::string_view text) noexcept {
    if (!is_valid_string(text))
        return false;
    std::size_t start = 0;
    while (start < text.size() && is_space(text[start]))
        ++start;
    return text.substr(start).starts_with("<div");
}

bool is_valid_primitive(primitive_kind kind, std::string_view text) noexcept {
    switch (kind) {
    case primitive_kind::string:
    case primitive_kind::markdown: return is_valid_string(text);
    case primitive_kind::id: return is_valid_id(text);
    case primitive_kind::code: return is_valid_code(text);
    case primitive_kind::uri:
    case primitive_kind::url:
    case primitive_kind::canonical: return is_valid_uri(text);
    case primitive_kind::oid: return is_valid_oid(text);
    case primitive_kind::uuid: return is_valid_uuid(text);
    case primitive_kind::date: return is_valid_date(text);
    case primitive_kind::dateTime: return is_valid_date_time(text);
    case primitive_kind::instant: return is_valid_instant(text);
    case primitive_kind::time: return is_valid_time(text);
    case primitive_kind::decimal: return is_valid_decimal(text);
    case primitive_kind::integer: return is_valid_integer(text);
    case primitive_kind::positiveInt: return is_valid_positive_int(text);
    case primitive_kind::unsignedInt: return is_valid_unsigned_int(text);
    case primitive_kind::base64Binary: return is_valid_base64(text);
    case primitive_kind::xhtml: return is_valid_xhtml(text);
    case primitive_kind::boolean: return text == "true" || text == "false";
    case primitive_kind::none: return false;
    }
    return false;
}

} // namespace caregate::fhir::detail
