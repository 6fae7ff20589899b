// The visibility rule as SQL: which stored versions a caller (storage::search_visibility) may see,
// written as predicates over resource_versions rows, for every query that returns versions or
// their traces (search pages, totals, includes, chains, _has, history, the access log's names,
// conditional matching). The rule itself is storage/src/visibility_rule.hpp, written once; this file
// renders it as SQL (each fact as a condition on the database: version_citizens, organisation_links,
// break_glass_grants, objections, opt_outs, version_targets), as visibility_rule.cpp decides it in memory for
// one version. tests/gateway/visibility_matrix_test.cpp shows both for every caller, item and path.
//
// Design notes: what every predicate keeps
//
//  1. A version is visible by visibility_rule.hpp, 1 to 3, the citizens it links to being its
//     version_citizens rows.
//  2. What a version says is shown only while the resource as it is now may be seen as well: a
//     search's page, by the current version (live, same access facts); history and the access log,
//     by the resource's last live version (its current one, or the one its deletion removed). So a
//     label added, a subject moved or a citizen's record closed later hides every earlier version.
//  3. A version of a type that points at other items (Provenance: its target and entity.what,
//     version_targets) is visible only when every item it points at is visible by note 1 at that
//     item's last live version (visibility_rule.hpp, 4); an item that is not stored is not visible.
//  4. No value is spliced into the SQL: every value is bound through sql_text.
//  5. Where the type is not known, the type grant compares `type || ''`, not the column itself: the
//     readable types are most of the store, and SQLite would otherwise take the grant's equalities
//     for a way in through the index of versions by type, gather every version of those types and
//     sort them, where the query's own driver (a walk in seq order, a citizen's rows, ...) is far
//     cheaper. (An export of every type read 24,000 resources a second so, about 100,000 without, on 1 million.)
//     On PostgreSQL, extended statistics of `type || ''` (schema 12) let its planner estimate these
//     conditions from the table.
//  6. "Lacks a label" is `(labels = '' OR instr(...) < 1)`, not `instr(...) = 0` (and a facet not
//     allowed `instr(...) < 1`): the same rows on both engines, but PostgreSQL has no statistics for
//     an expression and guesses an equality to hold for half a percent of rows (an inequality for a
//     third), while `labels = ''` it estimates from the column, where most versions carry no label.
//     With two hidden labels it took a walk in seq order to find one row in forty thousand, and
//     chose to read and sort the whole table for each page rather than walk the primary key to the
//     LIMIT (14 of an export's 110 pages, 150 ms each, on 109,000 resources; tests/storage/
//     search_test.cpp checks the plan).
#pragma once

#include "sql_text.hpp"

#include "storage/search.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::storage::detail {

class visibility_sql {
public:
    visibility_sql(const search_visibility& visibility, sql_text& sql) : visibility_(visibility), sql_(sql) {}

    /// Whether the caller may read `type` at all (wholly or in part).
    bool readable(std::string_view type) const;

    /// A search's rule over a resource_versions row `v` live at the search's snapshot (note 2): the
    /// version is visible and the resource is live now with the same access facts. With `type`
    /// given, the type grant is decided here; otherwise it is a condition on v.type.
    std::string visible(std::string_view v, std::optional<std::string_view> type = std::nullopt);

    /// History's rule over a resource_versions row `v`, live or a deletion (note 2): the version
    /// (for a deletion, the version it removed) is visible, and so is the resource's last live
    /// version.
    std::string visible_in_history(std::string_view v, std::optional<std::string_view> type = std::nullopt);

    /// The access log's rule for a resource named by `type_column` and `id_column` (SQL
    /// expressions): its last live version is visible (note 2). An id never stored, or erased, is not.
    std::string resource_visible(std::string_view type_column, std::string_view id_column);

private:
    class evaluator; // the rule's facts as SQL (visibility_sql.cpp)

    /// Note 1 (and 3) for one resource_versions row `a`.
    std::string visible_version(const std::string& a, std::optional<std::string_view> type, bool with_targets = true);
    /// The row of the last live version of the resource (`type_column`, `id_column`), as alias `last`,
    /// satisfies `condition(last)`; false when it has none.
    template <class Condition>
    std::string last_live(std::string_view type_column, std::string_view id_column, Condition&& condition);
    /// The last live version's row of the resource (`type_column`, `id_column`) is visible.
    std::string last_live_visible(std::string_view type_column, std::string_view id_column,
                                  std::optional<std::string_view> type, bool with_targets = true);
    /// fhir::facets_satisfy(`where`, the facets of version `v`) in SQL, deciding exactly as it does:
    /// for each element `where` names, a line of `v.facets` (one facet a line) starts with
    /// "element=", and none does once every line `where` allows for it is taken out.
    std::string facets_satisfy(const std::string& v, const std::vector<std::string>& where);
    std::string type_grant(const std::string& v, std::optional<std::string_view> type);
    std::string relationship(const std::string& c);
    std::string break_glass(const std::string& c);
    std::string fresh_alias(std::string_view stem) { return std::string(stem) + std::to_string(++alias_counter_); }

    const search_visibility& visibility_;
    sql_text& sql_;
    unsigned alias_counter_ = 0;
};

} // namespace caregate::storage::detail
