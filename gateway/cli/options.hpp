// Command-line options as a table: each option has its name, help text and how it sets the
// configuration, so parsing, --help and the config file (`--config FILE`, a JSON object whose keys
// are the option names without "--") cannot disagree.
#pragma once

#include <charconv>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::cli {

struct option {
    std::string name;        ///< without the leading "--"
    std::string value_name;  ///< e.g. "PATH"; empty for a switch
    std::string help;
    std::function<void(const std::string& value)> apply; ///< a switch gets "true" or "false"
};

/// Applies `--config FILE` first (if given), then the flags, so flags win. Throws std::invalid_argument
/// with a message for the user on an unknown option, a missing value or an unreadable config file.
void parse_options(const std::vector<option>& table, const std::vector<std::string>& args);

/// An option's value as a whole number. Throws std::invalid_argument naming the option otherwise.
template <class Number>
Number to_number(const std::string& text, const char* flag) {
    Number value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        throw std::invalid_argument(std::string("--") + flag + " needs a whole number, not '" + text + "'");
    return value;
}

/// The options part of a --help text.
std::string describe_options(const std::vector<option>& table);

} // namespace caregate::cli
