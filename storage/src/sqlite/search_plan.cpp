// Search planning and execution (search_plan.hpp): a fhir::search_query becomes one SQL query over the
// index tables of migration 4, with the caller's visibility inside it, read at a snapshot.
//
// Design notes: what every plan keeps (tests/storage/search_test.cpp proves them)
//
//  1. Snapshot: a search reads the index as it was at snapshot S (the newest version seq when its
//     first page ran): an index row counts iff seq <= S and (until_seq IS NULL or until_seq > S).
//     Rows belong to one version, so once a driver has found a version live at S, every other
//     condition on that version is a lookup by its seq. Every page, total and include of one
//     request runs inside one read transaction.
//  2. Visibility is a predicate of the query (visibility_sql.hpp), evaluated per version against the
//     database now: the type grant and facets, labels, and for each citizen the version links to
//     (version_citizens) the relationship or break-glass grant and the objection. Totals, pages,
//     includes, chains and _has all go through it, so none of them counts or shows a hidden item,
//     and LIMIT applies after it, so a page is never short because of it.
//  3. Order: the sort keys, each NULL-last, then the version seq (ascending, or descending when the
//     first key is); seq is unique within a snapshot (one live version per resource), so the order
//     is total and a keyset cursor (the last row's keys) gives each result exactly once across pages.
//  4. The driver of each type's match is the most selective positive condition: of several, the
//     one with the fewest rows when counted through the index up to probe_limit, ties (and a lone
//     candidate) by rank (a citizen, an identifier or id, a code, then the rest); negative
//     conditions (:not, :not-in, :missing=true) never drive. Without one, the driver is every live
//     version of the type (its _id rows).
//  5. No client string is ever SQL text: values are bound (?N); parameter codes and types come from
//     the generated definitions, and are bound too.
//  6. A page sorted by one date parameter can be read in the order of the date index and stop at its
//     LIMIT, instead of sorting every match: each resource is taken at the one index row that
//     carries its key (its highest end when descending, its lowest start when ascending; the
//     lowest rowid among equals), so the order and keys are exactly those of design note 3 (seq
//     follows the date in the index, so ties come in the key's direction without sorting). A
//     clause on that parameter bounding the key's side (descending: ge/gt; ascending: le/lt)
//     bounds the scan too: a resource matches it only if its key row is within the bound. Every
//     clause is still checked per version. Used only with such a clause (without one, resources
//     lacking the date match and sort last, and no date row would bring them) and no other
//     condition to start from.
//  7. A chain's steps are named tables of the statement's WITH clause, not subqueries nested in
//     it: SQLite's parser has a fixed depth, which three steps with their visibility would pass.
//  8. A search without a sort that has no condition to start from, or a single one finding more than
//     dense_limit rows, is read in the order of writes from resource_versions and stops at its
//     LIMIT: the default order is the version seq (design note 3), so a page costs what it takes to
//     find its rows, not the whole type. With two or more conditions a driver is used, however many
//     rows it has: their intersection may be small. The liveness of a version at the snapshot is
//     its _id row's (note 1).
#include "search_plan.hpp"

#include "list_column.hpp"
#include "search_index.hpp"
#include "sql_text.hpp"
#include "visibility_sql.hpp"

#include "fhir_model/search_values.hpp"
#include "fhir_model/ucum.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <variant>

namespace caregate::storage {
namespace detail {
namespace {

using fhir::search_modifier;
using fhir::search_param_type;
using fhir::search_prefix;

constexpr std::string_view searching = "searching";

fhir::error unsupported(std::string diagnostics) {
    return fhir::error::make(fhir::category::unsupported, "not-supported", std::move(diagnostics));
}

fhir::error malformed_cursor() {
    return fhir::error::make(fhir::category::malformed, "invalid",
                             "the paging cursor is not one this search gave out; run the search again");
}

const char* table_of(search_param_type type) {
    switch (type) {
    case search_param_type::string: return "search_string";
    case search_param_type::token: return "search_token";
    case search_param_type::date: return "search_date";
    case search_param_type::reference: return "search_reference";
    case search_param_type::quantity: return "search_quantity";
    case search_param_type::number: return "search_number";
    case search_param_type::uri: return "search_uri";
    case search_param_type::composite: return "search_composite";
    case search_param_type::special: return nullptr;
    }
    return nullptr;
}

/// The smallest string greater than every string starting with `prefix` (byte order), for a prefix
/// match as an index range; empty when there is none (a prefix of 0xFF bytes only).
std::string prefix_end(std::string prefix) {
    while (!prefix.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(prefix.back());
        if (last < 0xFF) {
            ++last;
            return prefix;
        }
        prefix.pop_back();
    }
    return prefix;
}

bool is_negative(const fhir::search_clause& clause) {
    if (clause.modifier == search_modifier::not_ || clause.modifier == search_modifier::not_in)
        return true;
    if (clause.modifier == search_modifier::missing)
        return std::any_of(clause.any_of.begin(), clause.any_of.end(),
                           [](const fhir::search_argument& a) { return a.missing; });
    return false;
}

/// A clause and how many steps of its path are already taken.
struct clause_at {
    const fhir::search_clause* clause;
    std::size_t step;
};

/// How many rows a probe counts at most (design note 4): enough to tell a selective condition from
/// an unselective one, cheap enough to run for every candidate of every search.
constexpr std::int64_t probe_limit = 100;

/// How many rows a lone condition must find before a page walks the type in write order instead
/// (design note 8): beyond it the matches are dense enough that the walk stops early.
constexpr std::int64_t dense_limit = 20000;

/// count(*) of `text` (a driver's rows), counting at most `limit` + 1, run with `sql`'s values.
fhir::result<std::int64_t> probe_count(connection& db, const sql_text& sql, const std::string& text,
                                       std::int64_t limit = probe_limit);

class planner {
public:
    planner(const search_request& request, sql_text& sql, std::int64_t snapshot)
        : request_(request), visibility_(request.visibility), sql_(sql), rule_(request.visibility, sql),
          snapshot_value_(snapshot) {
        snapshot_ = sql_.arg(snapshot);
    }

    /// With a connection, the planner chooses among several candidate drivers by counting their rows
    /// (up to probe_limit): the statistics SQLite does not keep for us.
    void probe_with(connection& db) { db_ = &db; }

    /// `alias` is an index-table row live at the snapshot.
    std::string live(std::string_view alias) const {
        std::string a(alias);
        return "(" + a + ".seq <= " + snapshot_ + " AND (" + a + ".until_seq IS NULL OR " + a + ".until_seq > " +
               snapshot_ + "))";
    }

    /// Whether the caller may read `type` at all (wholly or in part).
    bool readable(std::string_view type) const { return rule_.readable(type); }

    /// The visibility predicate over a resource_versions row `v` (design note 2, visibility_sql.hpp).
    /// With `type` given, the type grant is decided here; otherwise it is a condition on v.type.
    std::string visible(std::string_view v, std::optional<std::string_view> type = std::nullopt) {
        return rule_.visible(v, type);
    }

    /// The SQL selecting the seqs of the versions of `type` live at the snapshot that meet every
    /// clause (each from its step on) and are visible; `compartment` limits them to a citizen's.
    fhir::result<std::string> match(std::string_view type, const std::vector<clause_at>& clauses,
                                     std::string_view compartment) {
        if (!readable(type))
            return std::string("SELECT NULL AS seq WHERE 0");
        // The driver: the best positive clause at its last step, else the compartment, else all.
        // "Best" is the fewest rows when the planner may probe, else the lowest rank.
        const clause_at* driver = nullptr;
        int best = 100;
        std::vector<std::pair<const clause_at*, int>> candidates;
        for (const clause_at& c : clauses) {
            // A :missing=false clause is positive but names no value to start from.
            if (c.step != c.clause->path.size() || is_negative(*c.clause) || c.clause->modifier == search_modifier::missing)
                continue;
            const fhir::search_parameter* p = parameter_on(type, *c.clause);
            if (!p)
                return unsupported("the parameter " + c.clause->name + " is not defined for " + std::string(type));
            const int rank = selectivity(*p, *c.clause);
            candidates.emplace_back(&c, rank);
            if (rank < best) {
                best = rank;
                driver = &c;
            }
        }
        if (db_ && candidates.size() > 1) {
            // In rank order, each counted only as far as it could still win: after a citizen's
            // reference found 8 rows, a code is counted to 8, not to probe_limit.
            std::stable_sort(candidates.begin(), candidates.end(),
                             [](const auto& a, const auto& b) { return a.second < b.second; });
            std::int64_t fewest = probe_limit + 1;
            for (const auto& [candidate, rank] : candidates) {
                if (fewest == 0)
                    break; // nothing counts fewer than none
                sql_text probe_sql;
                planner probe(request_, probe_sql, snapshot_value_);
                auto rows = probe.driver_rows(type, *candidate->clause);
                if (!rows)
                    return std::move(rows).failure();
                auto count = probe_count(*db_, probe_sql, rows.value(), fewest - 1);
                if (!count)
                    return std::move(count).failure();
                if (*count < fewest || (*count == fewest && rank < best)) {
                    fewest = *count;
                    best = rank;
                    driver = candidate;
                }
            }
            // A citizen's clause found few rows: it drives even beside a compartment.
            if (best > 1 && fewest <= 50 && !compartment.empty())
                best = 1;
        }
        std::string driver_sql;
        const bool compartment_drives = !compartment.empty() && best > 1;
        if (compartment_drives)
            driver = nullptr; // every clause is then a condition
        if (compartment_drives) {
            driver_sql = "SELECT vc.seq FROM version_citizens vc WHERE vc.nhs_number = " + sql_.text_arg(compartment) +
                         " AND EXISTS (SELECT 1 FROM search_token t WHERE t.seq = vc.seq AND t.param = '_id' AND "
                         "t.type = " +
                         sql_.text_arg(type) + " AND " + live("t") + ")";
        } else if (driver) {
            auto drive = driver_rows(type, *driver->clause);
            if (!drive)
                return std::move(drive).failure();
            driver_sql = std::move(drive.value());
        } else {
            // Nothing else to start from: a chain starts from the references to (or from) what
            // its steps match, rather than testing every resource of the type.
            for (const clause_at& c : clauses)
                if (c.step < c.clause->path.size() && !is_negative(*c.clause)) {
                    driver = &c;
                    break;
                }
            if (driver) {
                auto drive = chain_driver_rows(type, *driver);
                if (!drive)
                    return std::move(drive).failure();
                driver_sql = std::move(drive.value());
            } else {
                driver_sql = "SELECT x.seq FROM search_token x WHERE x.type = " + sql_.text_arg(type) +
                             " AND x.param = '_id' AND " + live("x");
            }
        }

        // Conditions on the version's seq alone are tested on the driver's rows, in the index tables,
        // before a version row is read: a citizen's 200 observations are 200 index probes for the
        // code, not 200 reads of versions (each a page of its own, JSON inline) to keep 3 of them.
        // Only a reverse chain (_has) needs the version's type and id; it and the visibility test
        // run on the versions that are left.
        std::string on_seq;
        std::string on_version;
        if (!compartment.empty() && !compartment_drives)
            on_seq += " AND EXISTS (SELECT 1 FROM version_citizens vc WHERE vc.seq = d.seq AND vc.nhs_number = " +
                      sql_.text_arg(compartment) + ")";
        for (const clause_at& c : clauses) {
            if (&c == driver)
                continue;
            const bool needs_version = c.step < c.clause->path.size() && c.clause->path[c.step].reverse;
            auto condition = clause_condition(type, c, needs_version ? "v" : "d");
            if (!condition)
                return std::move(condition).failure();
            (needs_version ? on_version : on_seq) += " AND " + condition.value();
        }
        const std::string seqs =
            on_seq.empty() ? driver_sql : "SELECT d.seq FROM (" + driver_sql + ") d WHERE 1" + on_seq;
        return "SELECT v.seq AS seq FROM resource_versions v WHERE v.seq IN (" + seqs + ")" + on_version + " AND " +
               visible("v", type);
    }

    /// The page's rows read in the order of the date index, when that is exact (design note 6):
    /// one type, one sort key on a date parameter, and a clause on that parameter bounding the key's
    /// side (descending: every value ge/gt; ascending: every value le/lt) that is the only condition
    /// to start from. Selects seq, type, id and k0
    /// (the resource's key, as sort_key computes it). nullopt when the general plan applies.
    fhir::result<std::optional<std::string>> ordered_rows(std::string_view type, const std::vector<clause_at>& clauses,
                                                          std::string_view compartment,
                                                          const fhir::search_sort_key& key) {
        const fhir::search_parameter* p = fhir::find_search_parameter(type, key.parameter->code);
        if (!p || p->type != search_param_type::date || !compartment.empty() || !readable(type))
            return std::optional<std::string>();
        std::optional<std::int64_t> bound;
        bool other_candidates = false;
        for (const clause_at& c : clauses) {
            const fhir::search_clause& clause = *c.clause;
            if (!clause.path.empty() || is_negative(clause))
                continue;
            const bool on_key = clause.parameter && clause.parameter->code == p->code &&
                                clause.modifier == search_modifier::none && !clause.any_of.empty();
            bool bounds = on_key;
            std::optional<std::int64_t> clause_bound;
            for (const fhir::search_argument& a : on_key ? clause.any_of : std::vector<fhir::search_argument>{}) {
                std::int64_t b = 0;
                if (key.descending && a.prefix == search_prefix::ge)
                    b = a.range.begin;
                else if (key.descending && a.prefix == search_prefix::gt)
                    b = a.range.end;
                else if (!key.descending && a.prefix == search_prefix::lt)
                    b = a.range.begin;
                else if (!key.descending && a.prefix == search_prefix::le)
                    b = a.range.end;
                else
                    bounds = false;
                clause_bound = !clause_bound ? b : key.descending ? std::min(*clause_bound, b) : std::max(*clause_bound, b);
            }
            if (bounds && clause_bound)
                bound = !bound ? clause_bound : key.descending ? std::max(*bound, *clause_bound) : std::min(*bound, *clause_bound);
            else
                other_candidates = true;
        }
        // Without a bounding clause, resources with no value of the key match too (they sort last)
        // and no index row would bring them. Another condition to start from makes the general plan
        // the safer one: it sorts only the rows both find, where the walk could pass many to find them.
        if (!bound || other_candidates)
            return std::optional<std::string>();
        // The row carrying the resource's key: its highest end (descending) or lowest start,
        // the first such row by rowid when several tie; bounded by the clause, if any.
        const std::string column = key.descending ? "x.high" : "x.low";
        const std::string better = key.descending ? "y.high > x.high OR (y.high = x.high AND y.rowid < x.rowid)"
                                                  : "y.low < x.low OR (y.low = x.low AND y.rowid < x.rowid)";
        std::string text = "SELECT x.seq AS seq, v.type AS type, v.id AS id, " + column +
                           " AS k0 FROM search_date x JOIN resource_versions v ON v.seq = x.seq WHERE x.type = " +
                           sql_.text_arg(type) + " AND x.param = " + sql_.text_arg(p->code) + " AND " + live("x");
        if (bound)
            text += " AND " + column + (key.descending ? " > " : " < ") + sql_.arg(*bound);
        text += " AND NOT EXISTS (SELECT 1 FROM search_date y WHERE y.seq = x.seq AND y.param = x.param AND (" +
                better + "))";
        for (const clause_at& c : clauses) {
            auto condition = clause_condition(type, c, "v");
            if (!condition)
                return std::move(condition).failure();
            text += " AND " + condition.value();
        }
        text += " AND " + visible("v", type);
        return std::optional<std::string>(std::move(text));
    }

    /// The page's rows read in the order of writes (design note 8), when the search has no sort and
    /// nothing selective to start from: every resource of the type (or types) in version order,
    /// each clause checked per version, stopping at the LIMIT. Selects seq, type, id. nullopt when
    /// a driver finds few rows, a chain is there to start from, or several types carry clauses.
    fhir::result<std::optional<std::string>> streamed_rows(const std::vector<std::string>& types,
                                                           const std::vector<clause_at>& clauses,
                                                           std::string_view compartment) {
        if (!compartment.empty() || types.empty())
            return std::optional<std::string>();
        for (const clause_at& c : clauses)
            if (!c.clause->path.empty())
                return std::optional<std::string>(); // a chain starts from its own matches
        if (types.size() > 1 && !clauses.empty())
            return std::optional<std::string>();
        // Streaming pays when the matches are dense: no condition to start from, or a single one
        // that finds very many rows. With two or more, their intersection may be small, and a
        // driver's rows (however many) cost less than walking the whole type to find it.
        std::vector<const fhir::search_clause*> positive;
        for (const clause_at& c : clauses)
            if (!is_negative(*c.clause) && c.clause->modifier != search_modifier::missing)
                positive.push_back(c.clause);
        if (positive.size() > 1 || (positive.size() == 1 && (types.size() > 1 || !db_)))
            return std::optional<std::string>();
        if (positive.size() == 1) {
            sql_text probe_sql;
            planner probe(request_, probe_sql, snapshot_value_);
            auto rows = probe.driver_rows(types.front(), *positive.front());
            if (!rows)
                return std::move(rows).failure();
            auto count = probe_count(*db_, probe_sql, rows.value(), dense_limit);
            if (!count)
                return std::move(count).failure();
            if (*count <= dense_limit)
                return std::optional<std::string>();
        }
        std::string text = "SELECT v.seq AS seq, v.type AS type, v.id AS id FROM resource_versions v WHERE ";
        if (types.size() == 1) {
            if (!readable(types.front()))
                return std::optional<std::string>("SELECT NULL AS seq, NULL AS type, NULL AS id WHERE 0");
            text += "v.type = " + sql_.text_arg(types.front());
        } else {
            text += "v.type IN (" + sql_.in_list(types) + ")";
        }
        text += " AND EXISTS (SELECT 1 FROM search_token t WHERE t.seq = v.seq AND t.param = '_id' AND " + live("t") + ")";
        for (const clause_at& c : clauses) {
            auto condition = clause_condition(types.front(), c, "v");
            if (!condition)
                return std::move(condition).failure();
            text += " AND " + condition.value();
        }
        text += " AND " + (types.size() == 1 ? visible("v", types.front()) : visible("v"));
        return std::optional<std::string>(std::move(text));
    }

    /// "WITH chain1(seq) AS (...), ... " for the statements of this plan, or "" (design note 7).
    std::string with_clause() const {
        std::string text;
        for (const std::string& cte : ctes_)
            text += (text.empty() ? "WITH " : ", ") + cte;
        return text.empty() ? text : text + " ";
    }

    /// A sort key's value for the version whose seq is `seq_expr`.
    fhir::result<std::string> sort_key(std::string_view type, const fhir::search_sort_key& key,
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
               " s WHERE s.seq = " + std::string(seq_expr) + " AND s.param = " + sql_.text_arg(p->code) + ")";
    }

private:
    const search_request& request_;
    const search_visibility& visibility_;
    sql_text& sql_;
    visibility_sql rule_;
    std::int64_t snapshot_value_;
    std::string snapshot_;
    connection* db_ = nullptr;

    const fhir::search_parameter* parameter_on(std::string_view type, const fhir::search_clause& clause) const {
        if (!clause.path.empty() || clause.type == type)
            return clause.parameter;
        return fhir::find_search_parameter(type, clause.parameter->code);
    }

    /// The `param` of a clause's index rows: the parameter's code, but for :of-type that of the rows
    /// search_index.cpp makes for it ("identifier:of-type").
    static std::string indexed_param(const fhir::search_parameter& p, const fhir::search_clause& clause) {
        return clause.modifier == search_modifier::of_type ? of_type_param(p.code) : p.code;
    }

    /// Lower is more selective (design note 4).
    static int selectivity(const fhir::search_parameter& p, const fhir::search_clause& clause) {
        if (clause.modifier == search_modifier::missing)
            return 9;
        switch (p.type) {
        case search_param_type::reference: {
            const bool citizen = p.code == "patient" || p.code == "subject" ||
                                 std::any_of(clause.any_of.begin(), clause.any_of.end(),
                                             [](const fhir::search_argument& a) { return a.target_type == "Patient"; });
            return citizen ? 1 : 3;
        }
        case search_param_type::token:
            if (p.code == "_id" || p.code == "identifier")
                return 2;
            if (clause.modifier == search_modifier::text)
                return 6;
            return 3;
        case search_param_type::composite: return 3;
        case search_param_type::string: return clause.modifier == search_modifier::contains ? 7 : 4;
        case search_param_type::uri: return 4;
        default: return 5;
        }
    }

    /// Rows of a clause's table that drive the match of `type` (design note 4).
    fhir::result<std::string> driver_rows(std::string_view type, const fhir::search_clause& clause) {
        const fhir::search_parameter* p = parameter_on(type, clause);
        const char* table = table_of(p->type);
        if (!table)
            return unsupported("the parameter " + clause.name + " cannot be searched here");
        auto values = alternatives(*p, clause, "x");
        if (!values)
            return std::move(values).failure();
        return std::string("SELECT x.seq FROM ") + table + " x WHERE x.type = " + sql_.text_arg(type) +
               " AND x.param = " + sql_.text_arg(indexed_param(*p, clause)) + " AND " + values.value() + " AND " +
               live("x");
    }

    /// The step's matches as a table of the WITH clause (design note 7); returns its name.
    fhir::result<std::string> step_table(const clause_at& at) {
        const fhir::search_step& step = at.clause->path[at.step];
        auto inner = match(step.type, {clause_at{at.clause, at.step + 1}}, {});
        if (!inner)
            return std::move(inner).failure();
        const std::string name = "chain" + std::to_string(ctes_.size() + 1);
        ctes_.push_back(name + "(seq) AS (" + inner.value() + ")");
        return name;
    }

    /// Rows of `type` live at the snapshot that a chain clause's first step connects to what the
    /// rest of the chain matches: references from them (forward), or to them (reverse).
    fhir::result<std::string> chain_driver_rows(std::string_view type, const clause_at& at) {
        const fhir::search_step& step = at.clause->path[at.step];
        auto table = step_table(at);
        if (!table)
            return std::move(table).failure();
        if (!step.reverse)
            return "SELECT x.seq FROM search_reference x WHERE x.type = " + sql_.text_arg(type) + " AND x.param = " +
                   sql_.text_arg(step.reference->code) + " AND x.target_type = " + sql_.text_arg(step.type) +
                   " AND x.target_id IN (SELECT w.id FROM resource_versions w WHERE w.seq IN (SELECT seq FROM " +
                   table.value() + ")) AND " + live("x");
        return "SELECT x.seq FROM search_token x WHERE x.type = " + sql_.text_arg(type) +
               " AND x.param = '_id' AND " + live("x") +
               " AND x.code IN (SELECT r.target_id FROM search_reference r WHERE r.type = " + sql_.text_arg(step.type) +
               " AND r.param = " + sql_.text_arg(step.reference->code) + " AND r.target_type = " +
               sql_.text_arg(type) + " AND " + live("r") + " AND r.seq IN (SELECT seq FROM " + table.value() + "))";
    }

    /// The condition a clause puts on version `v` of `type`, from its step `at.step` on.
    fhir::result<std::string> clause_condition(std::string_view type, const clause_at& at, const std::string& v) {
        const fhir::search_clause& clause = *at.clause;
        if (at.step < clause.path.size()) {
            const fhir::search_step& step = clause.path[at.step];
            auto table = step_table(at);
            if (!table)
                return std::move(table).failure();
            const std::string& step_table = table.value();
            const std::string x = "r" + std::to_string(++alias_counter_);
            if (!step.reverse)
                return "EXISTS (SELECT 1 FROM search_reference " + x + " WHERE " + x + ".seq = " + v + ".seq AND " + x +
                       ".param = " + sql_.text_arg(step.reference->code) + " AND " + x +
                       ".target_type = " + sql_.text_arg(step.type) + " AND " + x +
                       ".target_id IN (SELECT w.id FROM resource_versions w WHERE w.seq IN (SELECT seq FROM " +
                       step_table + ")))";
            return "EXISTS (SELECT 1 FROM search_reference " + x + " WHERE " + x + ".target_id = " + v + ".id AND " + x +
                   ".target_type = " + v + ".type AND " + x + ".type = " + sql_.text_arg(step.type) + " AND " + x +
                   ".param = " + sql_.text_arg(step.reference->code) + " AND " + live(x) + " AND " + x +
                   ".seq IN (SELECT seq FROM " + step_table + "))";
        }
        const fhir::search_parameter* p = parameter_on(type, clause);
        if (!p)
            return unsupported("the parameter " + clause.name + " is not defined for " + std::string(type));
        const char* table = table_of(p->type);
        if (!table)
            return unsupported("the parameter " + clause.name + " cannot be searched here");
        const std::string x = "x" + std::to_string(++alias_counter_);
        std::string rows = std::string("SELECT 1 FROM ") + table + " " + x + " WHERE " + x + ".seq = " + v +
                           ".seq AND " + x + ".param = " + sql_.text_arg(indexed_param(*p, clause));
        if (clause.modifier == search_modifier::missing) {
            // missing=true: no value; missing=false: some value (any_of holds one value).
            const bool missing = !clause.any_of.empty() && clause.any_of.front().missing;
            return std::string(missing ? "NOT EXISTS (" : "EXISTS (") + rows + ")";
        }
        auto values = alternatives(*p, clause, x);
        if (!values)
            return std::move(values).failure();
        return std::string(is_negative(clause) ? "NOT EXISTS (" : "EXISTS (") + rows + " AND " + values.value() + ")";
    }

    /// The OR of a clause's alternatives over index row `x`.
    fhir::result<std::string> alternatives(const fhir::search_parameter& p, const fhir::search_clause& clause,
                                           const std::string& x) {
        if (clause.any_of.empty())
            return unsupported("the parameter " + clause.name + " has no value");
        std::string text;
        for (const fhir::search_argument& argument : clause.any_of) {
            auto one = value_condition(p, clause, argument, x);
            if (!one)
                return std::move(one).failure();
            text += (text.empty() ? "(" : " OR ") + ("(" + one.value() + ")");
        }
        return text + ")";
    }

    std::string prefix_range(const std::string& column, const std::string& prefix) {
        const std::string end = prefix_end(prefix);
        std::string text = column + " >= " + sql_.text_arg(prefix);
        if (!end.empty())
            text += " AND " + column + " < " + sql_.text_arg(end);
        return text;
    }

    std::string token_match(const std::string& system_col, const std::string& code_col,
                            const std::optional<std::string>& system, const std::string& code) {
        std::string text;
        if (!code.empty())
            text = code_col + " = " + sql_.text_arg(code);
        if (system) {
            if (!text.empty())
                text += " AND ";
            text += system->empty() ? system_col + " IS NULL" : system_col + " = " + sql_.text_arg(*system);
        }
        return text.empty() ? "1" : text;
    }

    /// Date comparisons of FHIR search (the target range [low, high) against the value's [b, e)).
    std::string date_match(search_prefix prefix, const fhir::time_range& range, const std::string& low,
                           const std::string& high) {
        const std::string b = sql_.arg(range.begin);
        const std::string e = sql_.arg(range.end);
        const std::string within = "(" + low + " >= " + b + " AND " + high + " <= " + e + ")";
        // Each comparison leads with a bound on one column that it implies (within: low in [b, e);
        // ge: high > b; le: low < e), so an index on (type, param, low) or (type, param, high)
        // reads only the range that can match.
        switch (prefix) {
        case search_prefix::eq: return "(" + low + " >= " + b + " AND " + low + " < " + e + " AND " + high + " <= " + e + ")";
        case search_prefix::ne: return "NOT " + within;
        case search_prefix::gt: return high + " > " + e;
        case search_prefix::lt: return low + " < " + b;
        case search_prefix::ge: return "(" + high + " > " + b + " AND (" + high + " > " + e + " OR " + within + "))";
        case search_prefix::le: return "(" + low + " < " + e + " AND (" + low + " < " + b + " OR " + within + "))";
        case search_prefix::sa: return low + " >= " + e;
        case search_prefix::eb: return high + " <= " + b;
        case search_prefix::ap: {
            // Approximately: the value's range widened by 10% of its distance from now.
            const double distance = std::abs(static_cast<double>(visibility_.now - range.begin));
            const auto margin = static_cast<std::int64_t>(distance * 0.1);
            return "(" + low + " < " + sql_.arg(range.end + margin) + " AND " + high + " > " +
                   sql_.arg(range.begin - margin) + ")";
        }
        }
        return "0";
    }

    std::string number_match(search_prefix prefix, const fhir::search_argument& a, const std::string& value) {
        switch (prefix) {
        case search_prefix::eq:
            return "(" + value + " >= " + sql_.arg(a.number_low) + " AND " + value + " < " + sql_.arg(a.number_high) + ")";
        case search_prefix::ne:
            return "NOT (" + value + " >= " + sql_.arg(a.number_low) + " AND " + value + " < " +
                   sql_.arg(a.number_high) + ")";
        case search_prefix::gt:
        case search_prefix::sa: return value + " > " + sql_.arg(a.number);
        case search_prefix::lt:
        case search_prefix::eb: return value + " < " + sql_.arg(a.number);
        case search_prefix::ge: return value + " >= " + sql_.arg(a.number);
        case search_prefix::le: return value + " <= " + sql_.arg(a.number);
        case search_prefix::ap: {
            const double margin = std::abs(a.number) * 0.1;
            return "(" + value + " >= " + sql_.arg(a.number - margin) + " AND " + value + " <= " +
                   sql_.arg(a.number + margin) + ")";
        }
        }
        return "0";
    }

    std::string quantity_units(const fhir::search_argument& a, const std::string& system_col,
                               const std::string& code_col, const std::string& unit_col) {
        std::string text;
        if (!a.quantity_code.empty()) {
            const std::string code = sql_.text_arg(a.quantity_code);
            text = a.quantity_system ? code_col + " = " + code
                                     : "(" + code_col + " = " + code + " OR " + unit_col + " = " + code + ")";
        }
        if (a.quantity_system && !a.quantity_system->empty())
            text += (text.empty() ? "" : " AND ") + system_col + " = " + sql_.text_arg(*a.quantity_system);
        return text;
    }

    fhir::result<std::string> value_condition(const fhir::search_parameter& p, const fhir::search_clause& clause,
                                              const fhir::search_argument& a, const std::string& x) {
        switch (p.type) {
        case search_param_type::string:
            if (clause.modifier == search_modifier::exact)
                return x + ".exact = " + sql_.text_arg(a.text);
            if (clause.modifier == search_modifier::contains)
                return "instr(" + x + ".normalized, " + sql_.text_arg(fhir::normalize_search_string(a.text)) + ") > 0";
            return prefix_range(x + ".normalized", fhir::normalize_search_string(a.text));
        case search_param_type::token:
            switch (clause.modifier) {
            case search_modifier::text: {
                const std::string folded = fhir::normalize_search_string(a.text);
                return "(" + prefix_range(x + ".text", folded) + " OR instr(" + x + ".text, " +
                       sql_.text_arg(" " + folded) + ") > 0)";
            }
            case search_modifier::in:
            case search_modifier::not_in: {
                const auto* members = fhir::value_set_members(a.text);
                if (!members)
                    return unsupported("the value set " + a.text + " is not one this server holds");
                std::string text;
                for (const auto& [system, code] : *members)
                    text += (text.empty() ? "(" : " OR ") +
                            ("(" + x + ".code = " + sql_.text_arg(code) + " AND " + x +
                             ".system = " + sql_.text_arg(system) + ")");
                return text.empty() ? std::string("0") : text + ")";
            }
            case search_modifier::of_type: // the type's coding and the Identifier's value as written
                return x + ".system = " + sql_.text_arg(a.system.value_or("")) + " AND " + x +
                       ".code = " + sql_.text_arg(a.code) + " AND " + x + ".text = " + sql_.text_arg(a.of_type_value);
            default: return token_match(x + ".system", x + ".code", a.system, a.code);
            }
        case search_param_type::date: return date_match(a.prefix, a.range, x + ".low", x + ".high");
        case search_param_type::number: return number_match(a.prefix, a, x + ".value");
        case search_param_type::quantity: {
            // A UCUM unit that converts by a factor also finds values written in the units of its
            // kind (fhir/ucum.hpp): 5.4|http://unitsofmeasure.org|g finds 5400 mg.
            const auto commensurable = a.quantity_system == fhir::ucum_system
                                           ? fhir::ucum_commensurable(a.quantity_code)
                                           : std::vector<std::pair<std::string, double>>{};
            if (commensurable.size() > 1) {
                std::string text;
                for (const auto& [code, factor] : commensurable) {
                    fhir::search_argument scaled = a; // the value in `code`: divide by its factor
                    scaled.number /= factor;
                    scaled.number_low /= factor;
                    scaled.number_high /= factor;
                    text += (text.empty() ? "(" : " OR ") + ("(" + x + ".code = " + sql_.text_arg(code) + " AND " +
                                                             number_match(a.prefix, scaled, x + ".value") + ")");
                }
                return text + ") AND " + x + ".system = " + sql_.text_arg(fhir::ucum_system);
            }
            std::string text = number_match(a.prefix, a, x + ".value");
            if (auto units = quantity_units(a, x + ".system", x + ".code", x + ".unit"); !units.empty())
                text += " AND " + units;
            return text;
        }
        case search_param_type::reference:
            if (clause.modifier == search_modifier::identifier)
                return token_match(x + ".identifier_system", x + ".identifier_value", a.system, a.code);
            if (!a.url.empty())
                return x + ".url = " + sql_.text_arg(a.url);
            {
                std::string text = x + ".target_id = " + sql_.text_arg(a.id);
                const std::string& target = !a.target_type.empty() ? a.target_type : clause.type_modifier;
                if (!target.empty())
                    text += " AND " + x + ".target_type = " + sql_.text_arg(target);
                return text;
            }
        case search_param_type::uri:
            if (clause.modifier == search_modifier::below)
                return prefix_range(x + ".uri", a.text);
            if (clause.modifier == search_modifier::above) {
                const std::string value = sql_.text_arg(a.text);
                return "substr(" + value + ", 1, length(" + x + ".uri)) = " + x + ".uri";
            }
            return x + ".uri = " + sql_.text_arg(a.text);
        case search_param_type::composite: {
            if (a.components.size() != 2 || p.components.size() != 2)
                return unsupported("the composite parameter " + clause.name + " needs two components");
            const fhir::search_argument& first = a.components[0];
            const fhir::search_argument& second = a.components[1];
            std::string text;
            if (p.components[0].type == search_param_type::reference) {
                const std::string target =
                    first.target_type.empty() ? first.id : first.target_type + "/" + first.id;
                text = x + ".c1_code = " + sql_.text_arg(first.url.empty() ? target : first.url);
            } else {
                text = token_match(x + ".c1_system", x + ".c1_code", first.system, first.code);
            }
            switch (p.components[1].type) {
            case search_param_type::token:
                text += " AND " + token_match(x + ".c2_system", x + ".c2_code", second.system, second.code);
                break;
            case search_param_type::quantity:
                text += " AND " + number_match(second.prefix, second, x + ".c2_value");
                if (auto units = quantity_units(second, x + ".c2_system", x + ".c2_code", x + ".c2_code"); !units.empty())
                    text += " AND " + units;
                break;
            case search_param_type::date:
                text += " AND " + date_match(second.prefix, second.range, x + ".c2_low", x + ".c2_high");
                break;
            case search_param_type::string:
                text += " AND " + prefix_range(x + ".c2_text", fhir::normalize_search_string(second.text));
                break;
            default: return unsupported("the composite parameter " + clause.name + " is not supported");
            }
            return text;
        }
        case search_param_type::special: break;
        }
        return unsupported("the parameter " + clause.name + " cannot be searched here");
    }

    unsigned alias_counter_ = 0;
    std::vector<std::string> ctes_; ///< the chain steps' tables, innermost first
};

// --- running SQL -------------------------------------------------------------------------------

fhir::result<std::int64_t> probe_count(connection& db, const sql_text& sql, const std::string& text,
                                       std::int64_t limit) {
    std::int64_t count = 0;
    sql_text limited = sql; // the limit bound, so that every limit shares one statement
    const std::string limit_arg = limited.arg(limit + 1);
    auto read = each_row(db, limited, "SELECT count(*) FROM (" + text + " LIMIT " + limit_arg + ")",
                         [&](sqlite3_stmt* row) { count = sqlite3_column_int64(row, 0); });
    if (!read)
        return std::move(read).failure();
    return count;
}

sql_value column_value(sqlite3_stmt* stmt, int column) {
    switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_INTEGER: return std::int64_t{sqlite3_column_int64(stmt, column)};
    case SQLITE_FLOAT: return sqlite3_column_double(stmt, column);
    case SQLITE_NULL: return std::monostate{};
    default: {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
        return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
    }
    }
}

std::string column_text(sqlite3_stmt* stmt, int column) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
    return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column))) : std::string();
}


/// Loads the versions with these seqs, in the order given.
fhir::result<std::vector<stored_version>> load_versions(connection& db, const std::vector<std::int64_t>& seqs) {
    std::vector<stored_version> versions;
    if (seqs.empty())
        return versions;
    sql_text sql;
    const std::string list = sql.in_list(seqs);
    std::map<std::int64_t, stored_version> found;
    auto read = each_row(db, sql,
                         "SELECT seq, type, id, version_id, deleted, last_updated, json, method, owner, citizens, "
                         "labels, facets FROM resource_versions WHERE seq IN (" + list + ")",
                         [&](sqlite3_stmt* row) {
                             stored_version v;
                             v.type = column_text(row, 1);
                             v.id = column_text(row, 2);
                             v.version_id = sqlite3_column_int64(row, 3);
                             v.deleted = sqlite3_column_int64(row, 4) != 0;
                             v.last_updated = sqlite3_column_int64(row, 5);
                             const auto* blob = static_cast<const char*>(sqlite3_column_blob(row, 6));
                             v.json.assign(blob ? blob : "", static_cast<std::size_t>(sqlite3_column_bytes(row, 6)));
                             v.method = column_text(row, 7);
                             v.owner = column_text(row, 8);
                             v.citizens = split_lines(column_text(row, 9));
                             v.labels = split_lines(column_text(row, 10));
                             v.facets = split_lines(column_text(row, 11));
                             found.emplace(sqlite3_column_int64(row, 0), std::move(v));
                         });
    if (!read)
        return std::move(read).failure();
    for (std::int64_t seq : seqs)
        if (auto it = found.find(seq); it != found.end())
            versions.push_back(std::move(it->second));
    return versions;
}

/// A read transaction for the length of a search (design note 1); ends when it goes out of scope.
/// On a connection already inside a transaction (the writer's, for a conditional write) it is that
/// transaction, which is already one snapshot.
class read_transaction {
public:
    explicit read_transaction(connection& db) : db_(db) {}
    fhir::status begin() {
        if (!sqlite3_get_autocommit(db_.handle()))
            return {};
        auto begun = db_.run("BEGIN", searching);
        open_ = begun.ok();
        return begun;
    }
    ~read_transaction() {
        if (open_)
            db_.run("COMMIT", searching);
    }

private:
    connection& db_;
    bool open_ = false;
};

fhir::result<std::int64_t> single_integer(connection& db, const std::string& text) {
    std::int64_t value = 0;
    sql_text none;
    auto read = each_row(db, none, text, [&](sqlite3_stmt* row) { value = sqlite3_column_int64(row, 0); });
    if (!read)
        return std::move(read).failure();
    return value;
}

// --- cursors -----------------------------------------------------------------------------------

/// The keys of a row, written as text: per value 'n', 'i<int>;', 'r<double>;' or 's<len>:<bytes>'.
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
    struct component {
        std::string column;
        bool descending;
        sql_value value;
    };
    std::vector<component> components;
    for (std::size_t i = 0; i < sort.size(); ++i) {
        const std::string k = "m.k" + std::to_string(i);
        const bool null = std::holds_alternative<std::monostate>(keys[i]);
        components.push_back({"(" + k + " IS NULL)", false, std::int64_t{null ? 1 : 0}});
        components.push_back({k, sort[i].descending, keys[i]});
    }
    components.push_back({"m.seq", seq_descending, keys.back()});
    std::string text;
    for (std::size_t j = 0; j < components.size(); ++j) {
        std::string term;
        for (std::size_t i = 0; i < j; ++i)
            term += components[i].column + " IS " + sql.arg(components[i].value) + " AND ";
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
        text += "(" + k + " IS NULL)" + (backwards ? " DESC, " : ", ") + k + (descending ? " DESC, " : ", ");
    }
    // Ties go by write order in the direction of the first key (newest first under `-date`), as
    // the date indexes give them (design note 3).
    const bool seq_descending = (!sort.empty() && sort.front().descending) != backwards;
    return text + (seq_descending ? "m.seq DESC" : "m.seq");
}

// --- includes ----------------------------------------------------------------------------------

struct found_row {
    std::int64_t seq;
    std::string type;
    std::string id;
};

/// The versions of `type` live at the snapshot with these ids that the caller may see.
fhir::status resolve_targets(connection& db, const search_request& request, std::int64_t snapshot,
                             const std::string& type, const std::set<std::string>& ids, std::set<std::int64_t>& seen,
                             std::vector<found_row>& out) {
    sql_text sql;
    planner plan(request, sql, snapshot);
    if (!plan.readable(type) || ids.empty())
        return {};
    const std::string list = sql.in_list(ids);
    const std::string text = "SELECT v.seq, v.type, v.id FROM search_token t JOIN resource_versions v ON v.seq = t.seq "
                             "WHERE t.type = " + sql.text_arg(type) + " AND t.param = '_id' AND t.code IN (" + list +
                             ") AND " + plan.live("t") + " AND " + plan.visible("v", type);
    return each_row(db, sql, text, [&](sqlite3_stmt* row) {
        const std::int64_t seq = sqlite3_column_int64(row, 0);
        if (seen.insert(seq).second)
            out.push_back({seq, column_text(row, 1), column_text(row, 2)});
    });
}

/// _include (forward): what `base` rows reference through the spec's parameter.
fhir::status forward_include(connection& db, const search_request& request, std::int64_t snapshot,
                             const fhir::search_include& spec, const std::vector<found_row>& base,
                             std::set<std::int64_t>& seen, std::vector<found_row>& out) {
    sql_text sql;
    std::vector<std::int64_t> seqs;
    for (const found_row& row : base)
        if (spec.source_type == "*" || row.type == spec.source_type)
            seqs.push_back(row.seq);
    if (seqs.empty())
        return {};
    const std::string list = sql.in_list(seqs);
    std::string text = "SELECT DISTINCT x.target_type, x.target_id FROM search_reference x WHERE x.seq IN (" + list +
                       ") AND x.target_id IS NOT NULL AND x.target_type IS NOT NULL";
    if (spec.parameter)
        text += " AND x.param = " + sql.text_arg(spec.parameter->code);
    if (!spec.target_type.empty())
        text += " AND x.target_type = " + sql.text_arg(spec.target_type);
    std::map<std::string, std::set<std::string>> targets;
    auto read = each_row(db, sql, text, [&](sqlite3_stmt* row) {
        targets[column_text(row, 0)].insert(column_text(row, 1));
    });
    if (!read)
        return read;
    for (const auto& [type, ids] : targets)
        if (auto resolved = resolve_targets(db, request, snapshot, type, ids, seen, out); !resolved)
            return resolved;
    return {};
}

/// _revinclude: versions live at the snapshot whose spec parameter references a `base` row.
fhir::status reverse_include(connection& db, const search_request& request, std::int64_t snapshot,
                             const fhir::search_include& spec, const std::vector<found_row>& base,
                             std::set<std::int64_t>& seen, std::vector<found_row>& out) {
    std::map<std::string, std::set<std::string>> by_type;
    for (const found_row& row : base)
        by_type[row.type].insert(row.id);
    for (const auto& [type, ids] : by_type) {
        if (!spec.target_type.empty() && spec.target_type != type)
            continue;
        sql_text sql;
        planner plan(request, sql, snapshot);
        const std::string list = sql.in_list(ids);
        std::string text = "SELECT DISTINCT v.seq, v.type, v.id FROM search_reference x JOIN resource_versions v ON "
                           "v.seq = x.seq WHERE x.target_id IN (" + list + ") AND x.target_type = " +
                           sql.text_arg(type) + " AND " + plan.live("x");
        if (spec.source_type != "*") {
            if (!plan.readable(spec.source_type))
                continue;
            text += " AND x.type = " + sql.text_arg(spec.source_type);
        }
        if (spec.parameter)
            text += " AND x.param = " + sql.text_arg(spec.parameter->code);
        text += " AND " + (spec.source_type != "*" ? plan.visible("v", spec.source_type) : plan.visible("v"));
        auto read = each_row(db, sql, text, [&](sqlite3_stmt* row) {
            const std::int64_t seq = sqlite3_column_int64(row, 0);
            if (seen.insert(seq).second)
                out.push_back({seq, column_text(row, 1), column_text(row, 2)});
        });
        if (!read)
            return read;
    }
    return {};
}

/// How many rounds `:iterate` follows at most.
constexpr int max_include_rounds = 4;

fhir::result<std::vector<found_row>> includes(connection& db, const search_request& request, std::int64_t snapshot,
                                              const std::vector<found_row>& matches) {
    const fhir::search_query& query = *request.query;
    std::vector<fhir::search_include> specs = query.includes;
    if (request.everything) {
        fhir::search_include everything_referenced;
        everything_referenced.source_type = "*";
        specs.push_back(everything_referenced);
    }
    std::set<std::int64_t> seen;
    for (const found_row& row : matches)
        seen.insert(row.seq);
    std::vector<found_row> all;
    std::vector<found_row> base = matches;
    for (int round = 0; round < max_include_rounds && !base.empty(); ++round) {
        std::vector<found_row> added;
        for (const fhir::search_include& spec : specs) {
            if (round > 0 && !spec.iterate)
                continue;
            auto done = spec.reverse ? reverse_include(db, request, snapshot, spec, base, seen, added)
                                     : forward_include(db, request, snapshot, spec, base, seen, added);
            if (!done)
                return std::move(done).failure();
        }
        all.insert(all.end(), added.begin(), added.end());
        base = std::move(added);
    }
    return all;
}

/// The SQL selecting the seqs of every match (of every type searched), visible to the caller.
fhir::result<std::string> matches_sql(const search_request& request, planner& plan, sql_text& sql) {
    const fhir::search_query& query = *request.query;
    std::string matches;
    if (request.everything) {
        matches = "SELECT v.seq AS seq FROM version_citizens vc JOIN resource_versions v ON v.seq = vc.seq "
                  "WHERE vc.nhs_number = " + sql.text_arg(request.compartment) +
                  " AND EXISTS (SELECT 1 FROM search_token t WHERE t.seq = vc.seq AND t.param = '_id' AND " +
                  plan.live("t") + ")";
        if (!query.types.empty()) {
            matches += " AND v.type IN (" + sql.in_list(query.types) + ")";
        }
        if (request.since)
            matches += " AND v.last_updated >= " + sql.arg(*request.since);
        matches += " AND " + plan.visible("v");
        return matches;
    }
    for (const std::string& type : query.types) {
        std::vector<clause_at> clauses;
        for (const fhir::search_clause& clause : query.clauses)
            clauses.push_back({&clause, 0});
        auto one = plan.match(type, clauses, request.compartment);
        if (!one)
            return std::move(one).failure();
        matches += (matches.empty() ? "" : " UNION ALL ") + one.value();
    }
    if (matches.empty())
        matches = "SELECT NULL AS seq WHERE 0";
    return matches;
}

/// The sort keys a request orders by ($everything: none, so the order of writes).
std::vector<fhir::search_sort_key> sort_of(const search_request& request) {
    return request.everything ? std::vector<fhir::search_sort_key>{} : request.query->sort;
}

/// The page query (design note 3): seq, type, id and the keys k0.. of each row, after the cursor,
/// count + 1 rows to learn whether more follow.
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
    if (sort.empty() && !request.everything) {
        std::vector<clause_at> clauses;
        for (const fhir::search_clause& clause : query.clauses)
            clauses.push_back({&clause, 0});
        auto streamed = plan.streamed_rows(query.types, clauses, request.compartment);
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

} // namespace

fhir::result<search_page> run_search(connection& db, const search_request& request) {
    const fhir::search_query& query = *request.query;
    read_transaction transaction(db);
    if (auto begun = transaction.begin(); !begun)
        return std::move(begun).failure();

    search_page page;
    if (request.cursor) {
        auto horizon = single_integer(db, "SELECT purged_through FROM search_horizon");
        if (!horizon)
            return std::move(horizon).failure();
        if (request.cursor->snapshot < horizon.value())
            return fhir::error::make(fhir::category::deleted, "not-found",
                                     "this page belongs to a search whose snapshot has expired; run the search again");
        page.snapshot = request.cursor->snapshot;
    } else {
        auto newest = single_integer(db, "SELECT coalesce(max(seq), 0) FROM resource_versions");
        if (!newest)
            return std::move(newest).failure();
        page.snapshot = newest.value();
    }

    sql_text sql;
    planner plan(request, sql, page.snapshot);
    plan.probe_with(db);

    auto matches = matches_sql(request, plan, sql);
    if (!matches)
        return std::move(matches).failure();
    if (query.total != fhir::search_total::none) {
        std::int64_t total = 0;
        auto counted = each_row(db, sql, plan.with_clause() + "SELECT count(*) FROM (" + matches.value() + ")",
                                [&](sqlite3_stmt* row) { total = sqlite3_column_int64(row, 0); });
        if (!counted)
            return std::move(counted).failure();
        page.total = total;
    }
    if (query.count == 0)
        return page;

    const std::vector<fhir::search_sort_key> sort = sort_of(request);
    const bool backwards = request.cursor && request.cursor->backwards;
    auto text = page_sql(request, plan, sql, matches.value());
    if (!text)
        return std::move(text).failure();

    std::vector<found_row> rows;
    std::vector<std::vector<sql_value>> row_keys;
    auto read = each_row(db, sql, plan.with_clause() + text.value(), [&](sqlite3_stmt* row) {
        rows.push_back({sqlite3_column_int64(row, 0), column_text(row, 1), column_text(row, 2)});
        std::vector<sql_value> k;
        for (std::size_t i = 0; i < sort.size(); ++i)
            k.push_back(column_value(row, static_cast<int>(3 + i)));
        k.emplace_back(std::int64_t{rows.back().seq});
        row_keys.push_back(std::move(k));
    });
    if (!read)
        return std::move(read).failure();
    const bool more = rows.size() > query.count;
    if (more) {
        rows.pop_back();
        row_keys.pop_back();
    }
    if (backwards) {
        std::reverse(rows.begin(), rows.end());
        std::reverse(row_keys.begin(), row_keys.end());
    }
    if (!rows.empty()) {
        // Forward: more after the last row if `more`; a page before if we came by a cursor.
        // Backwards: more before the first row if `more`; the page we came from after the last.
        const bool has_next = backwards ? true : more;
        const bool has_previous = backwards ? more : request.cursor.has_value();
        if (has_next)
            page.next = search_cursor{page.snapshot, false, write_keys(row_keys.back())};
        if (has_previous)
            page.previous = search_cursor{page.snapshot, true, write_keys(row_keys.front())};
    }

    auto included = includes(db, request, page.snapshot, rows);
    if (!included)
        return std::move(included).failure();

    std::vector<std::int64_t> seqs;
    for (const found_row& row : rows)
        seqs.push_back(row.seq);
    for (const found_row& row : included.value())
        seqs.push_back(row.seq);
    auto versions = load_versions(db, seqs);
    if (!versions)
        return std::move(versions).failure();
    for (std::size_t i = 0; i < versions->size(); ++i)
        page.entries.push_back({std::move((*versions)[i]), i >= rows.size()});
    return page;
}

fhir::result<std::vector<stored_version>> find_matches(connection& db, const write_condition& condition,
                                                       unsigned limit) {
    fhir::search_query query = condition.query;
    query.sort.clear();
    query.includes.clear();
    query.total = fhir::search_total::none;
    query.summary = fhir::search_summary::none;
    query.elements.clear();
    query.count = std::max(1u, limit);
    search_request request;
    request.query = &query;
    request.visibility = condition.visibility;
    auto page = run_search(db, request);
    if (!page)
        return std::move(page).failure();
    std::vector<stored_version> found;
    for (search_entry& entry : page->entries)
        if (!entry.include)
            found.push_back(std::move(entry.version));
    return found;
}

fhir::result<std::string> explain_search(connection& db, const search_request& request) {
    auto newest = single_integer(db, "SELECT coalesce(max(seq), 0) FROM resource_versions");
    if (!newest)
        return std::move(newest).failure();
    sql_text sql;
    planner plan(request, sql, newest.value());
    plan.probe_with(db);
    auto matches = matches_sql(request, plan, sql);
    if (!matches)
        return std::move(matches).failure();
    auto text = page_sql(request, plan, sql, matches.value());
    if (!text)
        return std::move(text).failure();
    std::string explained;
    auto read = each_row(db, sql, "EXPLAIN QUERY PLAN " + plan.with_clause() + text.value(), [&](sqlite3_stmt* row) {
        explained += column_text(row, 3) + "\n";
    });
    if (!read)
        return std::move(read).failure();
    return explained;
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
