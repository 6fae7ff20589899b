// The list columns of resource_versions (owner's citizens, labels, facets: schema.cpp, migration 2):
// values joined by '\n'. None of the values (FHIR codes, ODS codes, NHS numbers) can hold a line
// break; the writer refuses one that does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace caregate::storage::detail {

inline std::string join_lines(const std::vector<std::string>& values) {
    std::string text;
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0)
            text += '\n';
        text += values[i];
    }
    return text;
}

inline std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> values;
    if (text.empty())
        return values;
    for (;;) {
        const auto end = text.find('\n');
        values.emplace_back(text.substr(0, end));
        if (end == std::string_view::npos)
            return values;
        text.remove_prefix(end + 1);
    }
}

} // namespace caregate::storage::detail
