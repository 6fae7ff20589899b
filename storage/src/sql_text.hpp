// SQL text assembled from the store's own fragments, with every value bound to a numbered
// placeholder (?N), never spliced into the text: the one way the search planner and the visibility
// rule build SQL whose shape follows a request. Knows nothing of what the SQL means.
#pragma once

#include "sqlite.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace caregate::storage::detail {

using sql_value = std::variant<std::monostate, std::int64_t, double, std::string>;

/// SQL text being built and the values bound to its ?N placeholders.
struct sql_text {
    std::vector<sql_value> args;

    std::string arg(sql_value value) {
        args.push_back(std::move(value));
        return "?" + std::to_string(args.size());
    }
    std::string text_arg(std::string_view text) { return arg(std::string(text)); }
    /// The placeholders of an IN list of `values` (at least one), padded to a power of two by
    /// repeating the last value, so that lists of similar length share one statement shape (and
    /// one compiled statement: connection::prepare_varying).
    template <class Range>
    std::string in_list(const Range& values) {
        std::string list;
        std::size_t count = 0;
        sql_value last;
        for (const auto& value : values) {
            last = sql_value(value);
            list += (list.empty() ? "" : ", ") + arg(last);
            ++count;
        }
        for (const std::size_t padded = std::bit_ceil(count); count < padded; ++count)
            list += ", " + arg(last);
        return list;
    }
};

/// Binds `sql`'s values to their placeholders. Text is bound without a copy, so `sql` must outlive
/// the statement's steps.
inline void bind_values(statement& use, const sql_text& sql) {
    for (std::size_t i = 0; i < sql.args.size(); ++i) {
        const int index = static_cast<int>(i + 1);
        if (const auto* n = std::get_if<std::int64_t>(&sql.args[i]))
            use.bind(index, *n);
        else if (const auto* d = std::get_if<double>(&sql.args[i]))
            use.bind_real(index, *d);
        else if (const auto* s = std::get_if<std::string>(&sql.args[i]))
            use.bind(index, std::string_view(*s));
    }
}

} // namespace caregate::storage::detail
