// The search planner's parts, shared among them and private to them (as SQLite's whereInt.h is to
// its where*.c): the planner class, whose members are defined in search_planner.cpp (the driver and
// each type's match) and search_conditions.cpp (the SQL of each clause), and what the paging
// (search_paging.cpp), include (search_includes.cpp) and execution (search_plan.cpp) parts call
// in one another. The rest of the engine includes search_plan.hpp, never this; the design notes
// cited here by number are in search_plan.hpp.
#pragma once

#include "sql_text.hpp"
#include "visibility_sql.hpp"

#include "fhir_model/search_query.hpp"
#include "storage/search.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::storage::detail {

/// An error for what the index cannot answer (category unsupported): never a widened search.
fhir::error unsupported(std::string diagnostics);

/// The index table holding parameters of `type`; nullptr for special parameters (none).
const char* table_of(fhir::search_param_type type);

/// Whether a clause excludes (:not, :not-in, :missing=true): such a clause never drives (note 4).
bool is_negative(const fhir::search_clause& clause);

/// A clause and how many steps of its path are already taken.
struct clause_at {
    const fhir::search_clause* clause;
    std::size_t step;
};

/// Plans the SQL of one request's statements into one sql_text, its values bound (note 5): the
/// matches of each type, the page's rows in index order where that is exact, the sort keys, and
/// the chains' WITH tables. Every index row it reads is taken at the snapshot it was made with.
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
                                     std::string_view compartment);

    /// The page's rows read in the order of the date index, when that is exact (design note 6):
    /// one type, one sort key on a date parameter, and a clause on that parameter bounding the key's
    /// side (descending: every value ge/gt; ascending: every value le/lt) that is the only condition
    /// to start from. Selects seq, type, id and k0
    /// (the resource's key, as sort_key computes it). nullopt when the general plan applies.
    fhir::result<std::optional<std::string>> ordered_rows(std::string_view type, const std::vector<clause_at>& clauses,
                                                          std::string_view compartment,
                                                          const fhir::search_sort_key& key);

    /// Where a page in seq order starts: after `seq` (going backwards, before it).
    struct seq_start {
        std::int64_t seq;
        bool backwards;
    };
    /// The page's rows read in the order of writes (design note 8), when the search has no sort and
    /// nothing selective to start from: every resource of the type (or types) in version order,
    /// each clause checked per version, stopping at the LIMIT; from `start`, when a cursor gives
    /// one. Selects seq, type, id. nullopt when a driver finds few rows, a chain is there to start
    /// from, or several types carry clauses.
    fhir::result<std::optional<std::string>> streamed_rows(const std::vector<std::string>& types,
                                                           const std::vector<clause_at>& clauses,
                                                           std::string_view compartment,
                                                           std::optional<seq_start> start);

    /// "WITH chain1(seq) AS (...), ... " for the statements of this plan, or "" (design note 7).
    std::string with_clause() const {
        std::string text;
        for (const std::string& cte : ctes_)
            text += (text.empty() ? "WITH " : ", ") + cte;
        return text.empty() ? text : text + " ";
    }

    /// A sort key's value for the version whose seq is `seq_expr` (search_paging.cpp).
    fhir::result<std::string> sort_key(std::string_view type, const fhir::search_sort_key& key,
                                       std::string_view seq_expr);

    /// The condition on the `param` column of `x` (an index table's alias) that picks the rows of
    /// `p`: its code, or for a union (fhir::search_parameter::union_of, which has no rows of its own)
    /// the rows of each of its parts, or for a narrowing (`narrows`) the rows of the parameter it
    /// narrows whose target is of its type. With a clause, for that clause (:of-type's own rows).
    std::string param_rows(const std::string& x, const fhir::search_parameter& p);

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
    static std::string indexed_param(const fhir::search_parameter& p, const fhir::search_clause& clause);

    std::string param_rows(const std::string& x, const fhir::search_parameter& p, const fhir::search_clause& clause);

    /// Lower is more selective (design note 4).
    static int selectivity(const fhir::search_parameter& p, const fhir::search_clause& clause);

    /// Rows of a clause's table that drive the match of `type` (design note 4).
    fhir::result<std::string> driver_rows(std::string_view type, const fhir::search_clause& clause);

    // The SQL of each clause, in search_conditions.cpp.

    /// The step's matches as a table of the WITH clause (design note 7); returns its name.
    fhir::result<std::string> step_table(const clause_at& at);

    /// Rows of `type` live at the snapshot that a chain clause's first step connects to what the
    /// rest of the chain matches: references from them (forward), or to them (reverse).
    fhir::result<std::string> chain_driver_rows(std::string_view type, const clause_at& at);

    /// The condition a clause puts on version `v` of `type`, from its step `at.step` on.
    fhir::result<std::string> clause_condition(std::string_view type, const clause_at& at, const std::string& v);

    /// The OR of a clause's alternatives over index row `x`.
    fhir::result<std::string> alternatives(const fhir::search_parameter& p, const fhir::search_clause& clause,
                                           const std::string& x);

    std::string prefix_range(const std::string& column, const std::string& prefix);
    /// `column` holds `part` anywhere (string :contains), as a LIKE with `part`'s wildcards escaped.
    std::string contains_text(const std::string& column, const std::string& part);

    std::string token_match(const std::string& system_col, const std::string& code_col,
                            const std::optional<std::string>& system, const std::string& code);

    /// Date comparisons of FHIR search (the target range [low, high) against the value's [b, e)).
    std::string date_match(fhir::search_prefix prefix, const fhir::time_range& range, const std::string& low,
                           const std::string& high);

    std::string number_match(fhir::search_prefix prefix, const fhir::search_argument& a, const std::string& value);

    std::string quantity_units(const fhir::search_argument& a, const std::string& system_col,
                               const std::string& code_col, const std::string& unit_col);

    fhir::result<std::string> value_condition(const fhir::search_parameter& p, const fhir::search_clause& clause,
                                              const fhir::search_argument& a, const std::string& x);

    unsigned alias_counter_ = 0;
    std::vector<std::string> ctes_; ///< the chain steps' tables, innermost first
};

// --- the planner's use by the other parts ------------------------------------------------------

/// The SQL selecting the seqs of every match (of every type searched), visible to the caller
/// (search_planner.cpp). For $everything, each seq once, with its type and id beside it.
fhir::result<std::string> matches_sql(const search_request& request, planner& plan, sql_text& sql);

// --- paging: search_paging.cpp -----------------------------------------------------------------

/// The sort keys a request orders by ($everything: none, so the order of writes).
std::vector<fhir::search_sort_key> sort_of(const search_request& request);

/// The page query (design note 3): seq, type, id and the keys k0.. of each row, after the cursor,
/// count + 1 rows to learn whether more follow.
fhir::result<std::string> page_sql(const search_request& request, planner& plan, sql_text& sql,
                                   const std::string& matches);

/// The keys of a row, written as text: per value 'n', 'i<int>;', 'r<double>;' or 's<len>:<bytes>'.
std::string write_keys(const std::vector<sql_value>& keys);

// --- includes: search_includes.cpp -------------------------------------------------------------

/// A row of a page or of its includes.
struct found_row {
    std::int64_t seq;
    std::string type;
    std::string id;
};

/// The versions that _include, _revinclude (:iterate) and $everything add to the page's `matches`,
/// live at `snapshot` and visible, none twice and none of `matches`.
fhir::result<std::vector<found_row>> includes(connection& db, const search_request& request, std::int64_t snapshot,
                                              const std::vector<found_row>& matches);

// --- execution: search_plan.cpp ----------------------------------------------------------------


} // namespace caregate::storage::detail
