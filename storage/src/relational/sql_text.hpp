// SQL text assembled from the store's own fragments, with every value bound to a numbered
// placeholder (?N), never spliced into the text, and run once: the one way the search planner,
// history and the visibility rule build and run SQL whose shape follows a request. Knows nothing of
// what the SQL means.
#pragma once

#include "database.hpp"

#include <bit>
#include <utility>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace caregate::storage::detail {

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

/// A statement whose text follows a request's shape, for one run: from the connection's cache of
/// varying SQL (search SQL follows the request's shape, its values bound), reset and its values
/// cleared after the run.
class one_off {
public:
    static fhir::result<one_off> prepare(connection& db, const sql_text& sql, const std::string& text,
                                         std::string_view doing) {
        auto prepared = db.prepare_varying(text, doing);
        if (!prepared)
            return std::move(prepared).failure();
        one_off use(std::move(*prepared));
        for (std::size_t i = 0; i < sql.args.size(); ++i) {
            const int index = static_cast<int>(i + 1);
            int code = step_ok;
            if (const auto* n = std::get_if<std::int64_t>(&sql.args[i]))
                code = use.get().bind_integer(index, *n);
            else if (const auto* d = std::get_if<double>(&sql.args[i]))
                code = use.get().bind_real(index, *d);
            else if (const auto* s = std::get_if<std::string>(&sql.args[i]))
                code = use.get().bind_text(index, *s);
            else
                code = use.get().bind_null(index);
            if (code != step_ok)
                return storage_failure(code, doing);
        }
        return use;
    }
    one_off(one_off&& other) noexcept : held_(std::exchange(other.held_, {})) {}
    ~one_off() {
        if (held_.stmt && !held_.owned)
            held_.stmt->reset();
    }
    prepared& get() const { return *held_.stmt; }

private:
    explicit one_off(connection::varying_statement held) : held_(std::move(held)) {}
    connection::varying_statement held_;
};

/// Runs `text` with `sql`'s values; `row` is called with each row (a const prepared&). `doing`
/// names the work in an error.
template <class Row>
fhir::status each_row(connection& db, const sql_text& sql, const std::string& text, Row&& row,
                      std::string_view doing = "searching") {
    auto prepared = one_off::prepare(db, sql, text, doing);
    if (!prepared)
        return std::move(prepared).failure();
    for (;;) {
        const int code = prepared->get().step();
        if (code == step_done)
            return {};
        if (code != step_row)
            return storage_failure(code, doing);
        row(static_cast<const detail::prepared&>(prepared->get()));
    }
}


} // namespace caregate::storage::detail
