// _include and _revinclude (with :iterate) and $everything's referenced resources: the versions a
// page's rows reference, or that reference them, live at the page's snapshot (design note 1) and
// visible to the caller through the same rule as the page (note 2); each version at most once.
#include "search_planner.hpp"

#include "fhir_model/search_parameters.hpp"

#include <map>
#include <set>
#include <vector>

namespace caregate::storage::detail {

namespace {

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
    return each_row(db, sql, text, [&](const prepared& row) {
        const std::int64_t seq = row.integer(0);
        if (seen.insert(seq).second)
            out.push_back({seq, row.text(1), row.text(2)});
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
    if (spec.parameter) {
        planner plan(request, sql, snapshot);
        text += " AND " + plan.param_rows("x", *spec.parameter);
    }
    if (!spec.target_type.empty())
        text += " AND x.target_type = " + sql.text_arg(spec.target_type);
    std::map<std::string, std::set<std::string>> targets;
    auto read = each_row(db, sql, text, [&](const prepared& row) {
        targets[row.text(0)].insert(row.text(1));
    });
    if (!read)
        return read;
    for (const auto& [type, ids] : targets)
        if (auto resolved = resolve_targets(db, request, snapshot, type, ids, seen, out); !resolved)
            return resolved;
    return {};
}

/// The reference parameters whose rows a _revinclude spec reads, by source type: the spec's own (for
/// a narrowing, the parameter it narrows: reverse_include keeps to its type), or for `*` every
/// reference parameter of the source type with rows of its own (of every type, for a source of `*`;
/// a narrowing's rows are among its parameter's). Named, never left open: search_reference is
/// indexed by (type, param, target), and no index starts with the target alone (it would cost every
/// write a randomly placed entry for this one use).
std::map<std::string, std::vector<std::string>> reverse_sources(const fhir::search_include& spec) {
    std::map<std::string, std::vector<std::string>> sources;
    if (spec.parameter) {
        const fhir::search_parameter& p = spec.parameter->narrows ? *spec.parameter->narrows : *spec.parameter;
        sources[spec.source_type].push_back(p.code);
        return sources;
    }
    for (const fhir::search_parameter& p : fhir::all_search_parameters())
        if (p.type == fhir::search_param_type::reference && p.has_own_values() &&
            (spec.source_type == "*" || p.base == spec.source_type))
            sources[p.base].push_back(p.code);
    return sources;
}

/// _revinclude: versions live at the snapshot whose spec parameter references a `base` row.
fhir::status reverse_include(connection& db, const search_request& request, std::int64_t snapshot,
                             const fhir::search_include& spec, const std::vector<found_row>& base,
                             std::set<std::int64_t>& seen, std::vector<found_row>& out) {
    std::map<std::string, std::set<std::string>> by_type;
    for (const found_row& row : base)
        by_type[row.type].insert(row.id);
    const auto sources = reverse_sources(spec);
    for (const auto& [type, ids] : by_type) {
        if (!spec.target_type.empty() && spec.target_type != type)
            continue;
        if (spec.parameter && spec.parameter->narrows && spec.parameter->narrowed_to != type)
            continue; // Observation:patient references Patients only
        for (const auto& [source_type, params] : sources) {
            sql_text sql;
            planner plan(request, sql, snapshot);
            if (!plan.readable(source_type))
                continue;
            const std::string list = sql.in_list(ids);
            const std::string text =
                "SELECT DISTINCT v.seq, v.type, v.id FROM search_reference x JOIN resource_versions v ON v.seq = x.seq "
                "WHERE x.type = " + sql.text_arg(source_type) + " AND x.param IN (" + sql.in_list(params) +
                ") AND x.target_id IN (" + list + ") AND x.target_type = " + sql.text_arg(type) + " AND " +
                plan.live("x") + " AND " + plan.visible("v", source_type);
            auto read = each_row(db, sql, text, [&](const prepared& row) {
                const std::int64_t seq = row.integer(0);
                if (seen.insert(seq).second)
                    out.push_back({seq, row.text(1), row.text(2)});
            });
            if (!read)
                return read;
        }
    }
    return {};
}

/// How many rounds `:iterate` follows at most.
constexpr int max_include_rounds = 4;

} // namespace

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

} // namespace caregate::storage::detail
