// The Prometheus text format writer; see prometheus_text.hpp for the invariants.
#include "admin/prometheus_text.hpp"

#include <charconv>
#include <cmath>

namespace caregate::admin {

namespace {

/// Invariant 1. `quote` is also escaped in label values, not in HELP text.
void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (const char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (quote && c == '"')
            out += "\\\"";
        else
            out += c;
    }
}

} // namespace

std::string format_value(double value) {
    if (std::isnan(value))
        return "NaN";
    if (std::isinf(value))
        return value > 0 ? "+Inf" : "-Inf";
    char buffer[32];
    const auto written = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::general);
    return std::string(buffer, written.ptr);
}

void prometheus_text::family(std::string_view name, std::string_view type, std::string_view help) {
    text_.append("# HELP ").append(name).push_back(' ');
    append_escaped(text_, help, false);
    text_.append("\n# TYPE ").append(name).push_back(' ');
    text_.append(type).push_back('\n');
}

void prometheus_text::write_name_and_labels(std::string_view name, labels with, std::string_view le) {
    text_.append(name);
    if (with.empty() && le.empty())
        return;
    text_.push_back('{');
    bool first = true;
    for (const auto& [label, value] : with) {
        if (!first)
            text_.push_back(',');
        first = false;
        text_.append(label).append("=\"");
        append_escaped(text_, value, true);
        text_.push_back('"');
    }
    if (!le.empty()) {
        if (!first)
            text_.push_back(',');
        text_.append("le=\"").append(le).push_back('"');
    }
    text_.push_back('}');
}

void prometheus_text::sample(std::string_view name, labels with, double value) {
    write_name_and_labels(name, with);
    text_.append(" ").append(format_value(value)).push_back('\n');
}

void prometheus_text::sample(std::string_view name, labels with, std::uint64_t value) {
    write_name_and_labels(name, with);
    text_.append(" ").append(std::to_string(value)).push_back('\n');
}

void prometheus_text::histogram(std::string_view name, labels with, std::span<const double> bounds,
                                std::span<const std::uint64_t> within, std::uint64_t beyond, double sum) {
    const std::string base(name);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds.size() && i < within.size(); ++i) {
        cumulative += within[i];
        write_name_and_labels(base + "_bucket", with, format_value(bounds[i]));
        text_.append(" ").append(std::to_string(cumulative)).push_back('\n');
    }
    cumulative += beyond;
    write_name_and_labels(base + "_bucket", with, "+Inf");
    text_.append(" ").append(std::to_string(cumulative)).push_back('\n');
    sample(base + "_sum", with, sum);
    sample(base + "_count", with, cumulative);
}

} // namespace caregate::admin
