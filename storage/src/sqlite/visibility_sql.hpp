// The visibility rule as SQL: which stored versions a caller (storage::search_visibility) may see,
// written as predicates over resource_versions rows, for every query that returns versions or
// their traces (search pages, totals, includes, chains, _has, history, the access log's names).
// The one definition of who may see what: the gateway's single-item check (guard::can_read) asks the
// store, which decides it with version_visible below, so a read, a vread, a write's check of what it
// changes, a search, an include, history and the access log all apply this rule;
// tests/gateway/visibility_matrix_test.cpp shows it for every caller, item and path.
//
// Design notes: what every predicate keeps
//
//  1. A version is visible when the caller's type grant (whole, or the facets it names) covers it,
//     none of its labels is hidden from the caller (owner-only labels unless the caller's
//     organisation owns it), and each citizen it links to (version_citizens) is open to the caller
//     (held, and a relationship, a break-glass grant or a rule for all citizens; for a citizen's own
//     view, that citizen only) with no objection binding the caller against it.
//  2. What a version says is shown only while the resource as it is now may be seen as well: a
//     search's page, by the current version (live, same access facts); history and the access log,
//     by the resource's last live version (its current one, or the one its deletion removed). So a
//     label added, a subject moved or a citizen's record closed later hides every earlier version.
//  3. A version of a type that points at other items (Provenance: its target and entity.what,
//     version_targets) is visible only when every item it points at is visible by note 1 at that
//     item's last live version; an item that is not stored is not visible.
//  4. No value is spliced into the SQL: every value is bound through sql_text.
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

    /// One stored version's own rule (notes 1 and 3) over a resource_versions row `v` that is not a
    /// deletion marker: what a read, a vread or a write's check decides for the version it holds.
    std::string version_visible(std::string_view v, std::optional<std::string_view> type = std::nullopt);

    /// Note 1's citizen part for a row `c` with an nhs_number column: the caller may open that
    /// citizen's record.
    std::string record_open(std::string_view c) { return citizen_open(std::string(c)); }

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
    /// Note 1 (and 3) for one resource_versions row `a`.
    std::string visible_version(const std::string& a, std::optional<std::string_view> type, bool with_targets = true);
    /// The last live version's row of the resource (`type_column`, `id_column`) is visible.
    std::string last_live_visible(std::string_view type_column, std::string_view id_column,
                                  std::optional<std::string_view> type, bool with_targets = true);
    std::string targets_visible(const std::string& a);
    /// fhir::facets_satisfy(`where`, the facets of version `v`) in SQL, deciding exactly as it does:
    /// for each element `where` names, a line of `v.facets` (one facet a line) starts with
    /// "element=", and none does once every line `where` allows for it is taken out.
    std::string facets_satisfy(const std::string& v, const std::vector<std::string>& where);
    std::string type_grant(const std::string& v, std::optional<std::string_view> type);
    std::string relationship(const std::string& c);
    std::string break_glass(const std::string& c);
    std::string citizen_open(const std::string& c);
    std::string objection_allows(const std::string& c, const std::string& v);
    std::string fresh_alias(std::string_view stem) { return std::string(stem) + std::to_string(++alias_counter_); }

    const search_visibility& visibility_;
    sql_text& sql_;
    unsigned alias_counter_ = 0;
};

} // namespace caregate::storage::detail
