// The search planner's core (the class in search_planner.hpp): choosing the driver of each type's
// match by rank and probe count (design note 4), the match itself with its conditions on the
// driver's rows (notes 1, 2), the two plans that read a page in index order and stop at its LIMIT
// (notes 6, 8), and the matches of every type searched. The SQL of each clause is in
// search_conditions.cpp; the design notes are in search_plan.hpp.
#include "search_planner.hpp"

#include <algorithm>
#include <cassert>

namespace caregate::storage::detail {

namespace {

using fhir::search_modifier;
using fhir::search_param_type;
using fhir::search_prefix;

/// How many rows a probe counts at most (design note 4): enough to tell a selective condition from
/// an unselective one, cheap enough to run for every candidate of every search.
constexpr std::int64_t probe_limit = 100;

/// How many rows a lone condition must find before a page walks the type in write order instead
/// (design note 8): beyond it the matches are dense enough that the walk stops early.
constexpr std::int64_t dense_limit = 20000;

/// count(*) of `text` (a driver's rows), counting at most `limit` + 1, run with `sql`'s values.
fhir::result<std::int64_t> probe_count(connection& db, const sql_text& sql, const std::string& text,
                                       std::int64_t limit) {
    assert(limit >= 0); // so the probe's LIMIT is positive: match stops probing once one counts none
    std::int64_t count = 0;
    sql_text limited = sql; // the limit bound, so that every limit shares one statement
    const std::string limit_arg = limited.arg(limit + 1);
    auto read = each_row(db, limited, "SELECT count(*) FROM (" + text + " LIMIT " + limit_arg + ") counted",
                         [&](const prepared& row) { count = row.integer(0); });
    if (!read)
        return std::move(read).failure();
    return count;
}

} // namespace

fhir::error unsupported(std::string diagnostics) {
    return fhir::error::make(fhir::category::unsupported, "not-supported", std::move(diagnostics));
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

bool is_negative(const fhir::search_clause& clause) {
    if (clause.modifier == search_modifier::not_ || clause.modifier == search_modifier::not_in)
        return true;
    if (clause.modifier == search_modifier::missing)
        return std::any_of(clause.any_of.begin(), clause.any_of.end(),
                           [](const fhir::search_argument& a) { return a.missing; });
    return false;
}

fhir::result<std::string> planner::match(std::string_view type, const std::vector<clause_at>& clauses,
                                          std::string_view compartment) {
    if (!readable(type))
        return std::string("SELECT CAST(NULL AS BIGINT) AS seq WHERE 1 = 0");
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

    assert(!driver || !is_negative(*driver->clause)); // design note 4: what excludes never drives

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
        on_seq.empty() ? driver_sql : "SELECT d.seq FROM (" + driver_sql + ") d WHERE 1 = 1" + on_seq;
    return "SELECT v.seq AS seq FROM resource_versions v WHERE v.seq IN (" + seqs + ")" + on_version + " AND " +
           visible("v", type);
}

fhir::result<std::optional<std::string>> planner::ordered_rows(std::string_view type,
                                                               const std::vector<clause_at>& clauses,
                                                               std::string_view compartment,
                                                               const fhir::search_sort_key& key) {
    const fhir::search_parameter* p = fhir::find_search_parameter(type, key.parameter->code);
    if (!p || p->type != search_param_type::date || !p->has_own_values() || !compartment.empty() || !readable(type))
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

fhir::result<std::optional<std::string>> planner::streamed_rows(const std::vector<std::string>& types,
                                                                const std::vector<clause_at>& clauses,
                                                                std::string_view compartment,
                                                                std::optional<seq_start> start) {
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
            return std::optional<std::string>("SELECT CAST(NULL AS BIGINT) AS seq, CAST(NULL AS TEXT) AS type, CAST(NULL AS TEXT) AS id WHERE 1 = 0");
        text += "v.type = " + sql_.text_arg(types.front());
    } else {
        // Several types: through their index, every version of them would be gathered and sorted
        // by seq before the first page. Where they are few, that is cheap; where they are many (an
        // export of every type), the versions are walked in seq order instead, the type an
        // expression no index serves (`|| ''`, on both engines), so the walk reads the table once
        // from front to back, stopping at the LIMIT.
        bool many = !db_;
        if (db_) {
            sql_text probe_sql;
            const std::string rows = "SELECT v.seq FROM resource_versions v WHERE v.type IN (" + probe_sql.in_list(types) + ")";
            auto count = probe_count(*db_, probe_sql, rows, dense_limit);
            if (!count)
                return std::move(count).failure();
            many = *count > dense_limit;
        }
        if (!many)
            return std::optional<std::string>();
        text += "(v.type || '') IN (" + sql_.in_list(types) + ")";
    }
    text += " AND EXISTS (SELECT 1 FROM search_token t WHERE t.seq = v.seq AND t.param = '_id' AND " + live("t");
    if (start) // design note 8: bounded as the versions are
        text += std::string(" AND t.seq ") + (start->backwards ? "< " : "> ") + sql_.arg(start->seq);
    text += ")";
    for (const clause_at& c : clauses) {
        auto condition = clause_condition(types.front(), c, "v");
        if (!condition)
            return std::move(condition).failure();
        text += " AND " + condition.value();
    }
    text += " AND " + (types.size() == 1 ? visible("v", types.front()) : visible("v"));
    return std::optional<std::string>(std::move(text));
}

int planner::selectivity(const fhir::search_parameter& p, const fhir::search_clause& clause) {
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

fhir::result<std::string> planner::driver_rows(std::string_view type, const fhir::search_clause& clause) {
    const fhir::search_parameter* p = parameter_on(type, clause);
    const char* table = table_of(p->type);
    if (!table)
        return unsupported("the parameter " + clause.name + " cannot be searched here");
    auto values = alternatives(*p, clause, "x");
    if (!values)
        return std::move(values).failure();
    return std::string("SELECT x.seq FROM ") + table + " x WHERE x.type = " + sql_.text_arg(type) + " AND " +
           param_rows("x", *p, clause) + " AND " + values.value() + " AND " + live("x");
}

fhir::result<std::string> matches_sql(const search_request& request, planner& plan, sql_text& sql) {
    const fhir::search_query& query = *request.query;
    std::string matches;
    if (request.everything) {
        // Each version at most once (version_citizens' key is the seq and the citizen), with its type
        // and id, so that the page reads it in seq order and stops at its LIMIT (search_paging.cpp).
        matches = "SELECT vc.seq AS seq, v.type AS type, v.id AS id FROM version_citizens vc "
                  "JOIN resource_versions v ON v.seq = vc.seq "
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
        matches = "SELECT CAST(NULL AS BIGINT) AS seq WHERE 1 = 0";
    return matches;
}

} // namespace caregate::storage::detail
