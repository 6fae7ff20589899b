// Paging a search (design note 3): the sort keys of each row, the total order of a page (the keys,
// NULL-last, then the version seq), the keyset condition that starts a page after (or before) the
// row a cursor names, the page query itself with its two index-order plans (notes 6, 8), and the
// opaque text of a cursor in a link. A cursor carries the snapshot its first page ran at (note 1).
#include "search_planner.hpp"

#include <openssl/evp.h>

#include <cassert>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <variant>

namespace caregate::storage {
namespace detail {
namespace {

using fhir::search_param_type;

fhir::error malformed_cursor() {
    return fhir::error::make(fhir::category::malformed, "invalid",
                             "the paging cursor is not one this search gave out; run the search again");
}

} // namespace

fhir::result<std::string> planner::sort_key(std::string_view type, const fhir::search_sort_key& key,
                                            std::string_view seq_expr) {
    const fhir::search_parameter* p = fhir::find_search_parameter(type, key.parameter->code);
    if (!p)
        return unsupported("_sort: the parameter " + key.parameter->code + " is not defined for " + std::string(type));
    const char* table = table_of(p->type);
    std::string column;
    switch (p->type) {
    case search_param_type::string: column = "s.normalized"; break;
    case search_param_type::token: column = "s.code"; break;
    case search_param_type::date: column = key.descending ? "s.high" : "s.low"; break;
    case search_param_type::reference: column = "coalesce(s.target_type || '/' || s.target_id, s.url)"; break;
    case search_param_type::quantity:
    case search_param_type::number: column = "s.value"; break;
    case search_param_type::uri: column = "s.uri"; break;
    default: return unsupported("_sort on the " + std::string(fhir::to_string(p->type)) + " parameter " + p->code);
    }
    return std::string("(SELECT ") + (key.descending ? "max(" : "min(") + column + ") FROM " + table +
           " s WHERE s.seq = " + std::string(seq_expr) + " AND " + param_rows("s", *p) + ")";
}

std::string write_keys(const std::vector<sql_value>& keys) {
    std::string text;
    for (const sql_value& key : keys) {
        if (std::holds_alternative<std::monostate>(key)) {
            text += 'n';
        } else if (const auto* n = std::get_if<std::int64_t>(&key)) {
            text += 'i' + std::to_string(*n) + ';';
        } else if (const auto* d = std::get_if<double>(&key)) {
            char buffer[40];
            std::snprintf(buffer, sizeof buffer, "%.17g", *d);
            text += 'r' + std::string(buffer) + ';';
        } else {
            const auto& s = std::get<std::string>(key);
            text += 's' + std::to_string(s.size()) + ':' + s;
        }
    }
    return text;
}

namespace {

std::optional<std::vector<sql_value>> read_keys(std::string_view text) {
    std::vector<sql_value> keys;
    while (!text.empty()) {
        const char kind = text.front();
        text.remove_prefix(1);
        if (kind == 'n') {
            keys.emplace_back(std::monostate{});
            continue;
        }
        if (kind == 'i' || kind == 'r') {
            const auto end = text.find(';');
            if (end == std::string_view::npos)
                return std::nullopt;
            const std::string number(text.substr(0, end));
            text.remove_prefix(end + 1);
            if (kind == 'i') {
                std::int64_t n = 0;
                auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
                if (ec != std::errc() || ptr != number.data() + number.size())
                    return std::nullopt;
                keys.emplace_back(n);
            } else {
                char* end_ptr = nullptr;
                const double d = std::strtod(number.c_str(), &end_ptr);
                if (end_ptr != number.c_str() + number.size())
                    return std::nullopt;
                keys.emplace_back(d);
            }
            continue;
        }
        if (kind != 's')
            return std::nullopt;
        const auto colon = text.find(':');
        if (colon == std::string_view::npos)
            return std::nullopt;
        std::size_t length = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + colon, length);
        if (ec != std::errc() || ptr != text.data() + colon || text.size() - colon - 1 < length)
            return std::nullopt;
        keys.emplace_back(std::string(text.substr(colon + 1, length)));
        text.remove_prefix(colon + 1 + length);
    }
    return keys;
}

/// The keyset condition "comes after (or, backwards, before) the row with `keys`" over the columns
/// k0.. and seq of the page query (design note 3).
std::string keyset_condition(sql_text& sql, const std::vector<fhir::search_sort_key>& sort,
                             const std::vector<sql_value>& keys, bool backwards, bool seq_descending = false) {
    // page_sql refuses a cursor without a key per sort key and the seq (an integer) after them.
    assert(keys.size() == sort.size() + 1 && std::holds_alternative<std::int64_t>(keys.back()));
    struct component {
        std::string column;
        bool descending;
        sql_value value;
    };
    std::vector<component> components;
    for (std::size_t i = 0; i < sort.size(); ++i) {
        const std::string k = "m.k" + std::to_string(i);
        const bool null = std::holds_alternative<std::monostate>(keys[i]);
        components.push_back({"(CASE WHEN " + k + " IS NULL THEN 1 ELSE 0 END)", false, std::int64_t{null ? 1 : 0}});
        components.push_back({k, sort[i].descending, keys[i]});
    }
    components.push_back({"m.seq", seq_descending, keys.back()});
    std::string text;
    for (std::size_t j = 0; j < components.size(); ++j) {
        std::string term;
        for (std::size_t i = 0; i < j; ++i)
            term += components[i].column + " IS NOT DISTINCT FROM " + sql.arg(components[i].value) + " AND ";
        const bool greater = components[j].descending == backwards;
        term += components[j].column + (greater ? " > " : " < ") + sql.arg(components[j].value);
        text += (text.empty() ? "(" : " OR ") + ("(" + term + ")");
    }
    return text + ")";
}

std::string order_by(const std::vector<fhir::search_sort_key>& sort, bool backwards) {
    std::string text = " ORDER BY ";
    for (std::size_t i = 0; i < sort.size(); ++i) {
        const std::string k = "m.k" + std::to_string(i);
        const bool descending = sort[i].descending != backwards;
        text += "(CASE WHEN " + k + " IS NULL THEN 1 ELSE 0 END)" + (backwards ? " DESC, " : ", ") + k + (descending ? " DESC, " : ", ");
    }
    // Ties go by write order in the direction of the first key (newest first under `-date`), as
    // the date indexes give them (design note 3).
    const bool seq_descending = (!sort.empty() && sort.front().descending) != backwards;
    return text + (seq_descending ? "m.seq DESC" : "m.seq");
}

} // namespace

std::vector<fhir::search_sort_key> sort_of(const search_request& request) {
    return request.everything ? std::vector<fhir::search_sort_key>{} : request.query->sort;
}

fhir::result<std::string> page_sql(const search_request& request, planner& plan, sql_text& sql,
                                   const std::string& matches) {
    const fhir::search_query& query = *request.query;
    const std::vector<fhir::search_sort_key> sort = sort_of(request);
    const bool backwards = request.cursor && request.cursor->backwards;
    std::optional<std::vector<sql_value>> after;
    if (request.cursor) {
        after = read_keys(request.cursor->after);
        if (!after || after->size() != sort.size() + 1 || !std::holds_alternative<std::int64_t>(after->back()))
            return malformed_cursor();
    }
    if (query.types.size() == 1 && sort.size() == 1 && !request.everything) {
        std::vector<clause_at> clauses;
        for (const fhir::search_clause& clause : query.clauses)
            clauses.push_back({&clause, 0});
        auto ordered = plan.ordered_rows(query.types.front(), clauses, request.compartment, sort.front());
        if (!ordered)
            return std::move(ordered).failure();
        if (*ordered) {
            // Design note 6: SQLite reads the date index in key order and stops at the LIMIT.
            // Ties on the key come in version order the same way as the key (seq right after the
            // date in the index), so the whole order is the index's.
            const bool key_descending = sort.front().descending;
            std::string text = "SELECT m.seq, m.type, m.id, m.k0 FROM (" + **ordered + ") m";
            if (after) {
                const bool toward_lower = key_descending != backwards;
                text += " WHERE m.k0 " + std::string(toward_lower ? "<= " : ">= ") + sql.arg((*after)[0]) + " AND " +
                        keyset_condition(sql, sort, *after, backwards, key_descending);
            }
            const char* direction = key_descending != backwards ? " DESC" : "";
            return text + " ORDER BY m.k0" + direction + ", m.seq" + direction + " LIMIT " +
                   sql.arg(std::int64_t{query.count} + 1);
        }
    }
    if (request.everything) {
        // The matches are distinct versions with their type and id (matches_sql): read in seq order
        // from the citizen's index and stopped at the LIMIT, where a seq IN (...) made both engines
        // gather and sort every version of the record before the first page.
        std::string text = "SELECT m.seq, m.type, m.id FROM (" + matches + ") m";
        if (after)
            text += " WHERE " + keyset_condition(sql, sort, *after, backwards);
        return text + order_by(sort, backwards) + " LIMIT " + sql.arg(std::int64_t{query.count} + 1);
    }
    if (sort.empty()) {
        std::vector<clause_at> clauses;
        for (const fhir::search_clause& clause : query.clauses)
            clauses.push_back({&clause, 0});
        std::optional<planner::seq_start> start;
        if (after)
            start = planner::seq_start{std::get<std::int64_t>(after->back()), backwards};
        auto streamed = plan.streamed_rows(query.types, clauses, request.compartment, start);
        if (!streamed)
            return std::move(streamed).failure();
        if (*streamed) {
            // Design note 8: SQLite reads the versions in order and stops at the LIMIT.
            std::string text = "SELECT m.seq, m.type, m.id FROM (" + **streamed + ") m";
            if (after)
                text += " WHERE " + keyset_condition(sql, sort, *after, backwards);
            return text + order_by(sort, backwards) + " LIMIT " + sql.arg(std::int64_t{query.count} + 1);
        }
    }
    std::string keys;
    for (std::size_t i = 0; i < sort.size(); ++i) {
        // A key is per type (the parameter is re-resolved for each type searched): a CASE on v.type.
        std::string expression = "CASE v.type";
        for (const std::string& type : query.types) {
            auto key = plan.sort_key(type, sort[i], "v.seq");
            if (!key)
                return std::move(key).failure();
            expression += " WHEN " + sql.text_arg(type) + " THEN " + key.value();
        }
        keys += ", " + expression + " END AS k" + std::to_string(i);
    }
    std::string text = "SELECT m.seq, m.type, m.id";
    for (std::size_t i = 0; i < sort.size(); ++i)
        text += ", m.k" + std::to_string(i);
    text += " FROM (SELECT v.seq AS seq, v.type AS type, v.id AS id" + keys +
            " FROM resource_versions v WHERE v.seq IN (" + matches + ")) m";
    if (after)
        text += " WHERE " + keyset_condition(sql, sort, *after, backwards, !sort.empty() && sort.front().descending);
    text += order_by(sort, backwards) + " LIMIT " + sql.arg(std::int64_t{query.count} + 1);
    return text;
}

} // namespace detail

// --- opaque cursors for links --------------------------------------------------------------------

std::string encode_cursor(const search_cursor& cursor) {
    const std::string plain = std::to_string(cursor.snapshot) + (cursor.backwards ? "b" : "f") + cursor.after;
    std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
    const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                       reinterpret_cast<const unsigned char*>(plain.data()), static_cast<int>(plain.size()));
    encoded.resize(static_cast<std::size_t>(length));
    // URL-safe alphabet, no padding (RFC 4648 section 5).
    for (char& c : encoded)
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    while (!encoded.empty() && encoded.back() == '=')
        encoded.pop_back();
    return encoded;
}

fhir::result<search_cursor> decode_cursor(std::string_view text) {
    auto bad = [] { return detail::malformed_cursor(); };
    if (text.empty() || text.size() > 16384)
        return bad();
    std::string standard(text);
    for (char& c : standard) {
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!std::isalnum(static_cast<unsigned char>(c)))
            return bad();
    }
    while (standard.size() % 4 != 0)
        standard += '=';
    std::string plain(standard.size() / 4 * 3, '\0');
    const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(plain.data()),
                                       reinterpret_cast<const unsigned char*>(standard.data()),
                                       static_cast<int>(standard.size()));
    if (length < 0)
        return bad();
    // EVP_DecodeBlock counts the padding's bytes too.
    std::size_t size = static_cast<std::size_t>(length);
    for (std::size_t i = standard.size(); i > 0 && standard[i - 1] == '='; --i)
        --size;
    plain.resize(size);
    search_cursor cursor;
    std::size_t digits = 0;
    while (digits < plain.size() && std::isdigit(static_cast<unsigned char>(plain[digits])))
        ++digits;
    if (digits == 0 || digits > 18 || digits >= plain.size() || (plain[digits] != 'f' && plain[digits] != 'b'))
        return bad();
    std::from_chars(plain.data(), plain.data() + digits, cursor.snapshot);
    cursor.backwards = plain[digits] == 'b';
    cursor.after = plain.substr(digits + 1);
    if (!detail::read_keys(cursor.after))
        return bad();
    return cursor;
}

} // namespace caregate::storage
