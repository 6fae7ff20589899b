// Search planning and execution (private): turns a storage::search_request into SQL over the index
// tables of migration 4, with the caller's visibility in the query, and runs it on one reader
// connection inside one read transaction. store::search (reads.cpp) is the only caller.
//
// The planner is split by concern, each part citing the notes below that it keeps:
//   search_planner.hpp     the planner class and what the parts share (private to them)
//   search_planner.cpp     the driver of each type's match and the match itself (notes 1, 2, 4, 6, 8)
//   search_conditions.cpp  the SQL of each clause: parameter types, modifiers, chains, _has (1, 5, 7)
//   search_paging.cpp      sort keys, order, keyset cursors, the page query, link cursors (1, 3, 6, 8)
//   search_includes.cpp    _include, _revinclude and $everything's references (1, 2)
//   search_plan.cpp        running it: one read transaction, rows mapped to versions (1)
//   visibility_sql.hpp     the visibility rule as SQL (2)
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
//     its _id row's (note 1). Several types without a condition (an export of every type) are
//     walked so too, in seq order through the table itself rather than their index, when they
//     have more than dense_limit versions: the table is then read once from front to back, not
//     once per type, nor gathered and sorted; fewer are found through their index. The _id rows
//     are bounded by the page's cursor as the versions are: PostgreSQL may merge the two in seq
//     order, and would otherwise read every _id row from the first to the cursor for each page.
#pragma once

#include "database.hpp"

#include "storage/search.hpp"

namespace caregate::storage::detail {

/// Runs a search on `db` (a read-only connection). Errors: deleted (an expired cursor snapshot),
/// malformed (a cursor that does not decode for this query), unsupported (a parameter the index
/// cannot answer), busy/fault from SQLite.
fhir::result<search_page> run_search(connection& db, const search_request& request);

/// The current live versions of the condition's type that meet its criteria and that its caller may
/// see, at most `limit`, in write order: for conditional writes, on the writer's connection inside its
/// open transaction (so the transaction's own earlier writes count). Errors as run_search.
fhir::result<std::vector<stored_version>> find_matches(connection& db, const write_condition& condition,
                                                       unsigned limit);

/// SQLite's EXPLAIN QUERY PLAN of the page query `run_search` would run (one line per plan step),
/// for tests and diagnostics.
fhir::result<std::string> explain_search(connection& db, const search_request& request);

} // namespace caregate::storage::detail
