// The search index rows of each version (schema migrations 4 and 5): turning a version's stamped JSON
// into rows of the search_* tables, closing the rows of a superseded version, purging rows closed long
// enough ago, and the citizens of each live version (version_citizens). Not query planning or
// matching; the writer (writer.cpp, write_transaction.cpp) and the migrations (schema.cpp) are the only callers, inside
// their transactions (the planner shares of_type_param only).
#pragma once

#include "database.hpp"

#include "fhir_model/search_values.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::storage {

/// A version's search index values, extracted from its content ahead of the writer, on any thread
/// (store::prepare_index, detail::prepare_search_values): the writer then only inserts them. Made
/// from the content stamped with a placeholder lastUpdated; only the _lastUpdated value depends on
/// the stamp, and the writer puts the version's own in its place.
struct prepared_index {
    std::string type;
    std::string id;
    std::string content; ///< what the values come from: they are used only for a write of this content
    std::vector<fhir::search_value> values;
    std::size_t last_updated_at = 0; ///< where _lastUpdated is in `values`; values.size() if nowhere
    /// `content` as fhir::stamp_resource stamps it with version 1 and the placeholder lastUpdated,
    /// and where in it the versionId's text begins and the lastUpdated's text ends (both 0 if not
    /// found): the writer puts the version's own in between (detail::stamp_prepared).
    std::string stamped;
    std::size_t stamp_begin = 0;
    std::size_t stamp_end = 0;
};

} // namespace caregate::storage

namespace caregate::storage::detail {

/// The `param` of the search_token rows that token parameter `code` has for :of-type
/// ("identifier" -> "identifier:of-type"): one per coding of an Identifier's type, with that
/// coding's system and code, and the Identifier's value as written in `text`.
std::string of_type_param(std::string_view code);

/// Inserts the index rows of the version at `seq` (of type/id), open (until_seq NULL): exactly those
/// that fhir::extract_search_values gives for `stamped_json`, the version's stored JSON, composite
/// parameters included, special ones left out, and the :of-type rows of its typed identifiers. A type
/// without search parameters (e.g. Basic) gets no rows; searching it is refused, not widened.
/// Errors: fault when extraction fails, gives another type's parameters, or gives a composite of a
/// shape search_composite cannot hold (the content was validated before it came here, so that is a
/// bug); SQLite failures (busy, fault).
fhir::status insert_search_rows(connection& db, std::int64_t seq, std::string_view type, std::string_view id,
                                std::string_view stamped_json);

/// The values insert_search_rows would insert for type/id with `content` stamped, but for
/// _lastUpdated's (placeholder_last_updated's, to be replaced). Thread-safe: no database. Errors as
/// insert_search_rows's extraction.
fhir::result<prepared_index> prepare_search_values(std::string_view type, std::string_view id, std::string content);

/// fhir::stamp_resource(prepared.content, prepared.id, version_id, last_updated), the same bytes,
/// without parsing the content again; nothing if the placeholder stamp was not found.
std::optional<std::string> stamp_prepared(const prepared_index& prepared, std::int64_t version_id,
                                          std::string_view last_updated);

/// Inserts the index rows of the version at `seq` from values made by prepare_search_values: the
/// same rows as insert_search_rows over the version's stamped JSON, given its `last_updated` instant
/// as stamped.
fhir::status insert_search_rows(connection& db, std::int64_t seq, const prepared_index& prepared,
                                std::string_view last_updated);

/// Closes the open index rows of the version at `superseded_seq`: sets their until_seq to
/// `closing_seq`, the version (an update or a deletion) that supersedes it. Rows already closed stay
/// as they are.
fhir::status close_search_rows(connection& db, std::int64_t superseded_seq, std::int64_t closing_seq);

/// How many of the oldest closed rows of each index table one purge takes, with the rest of the last
/// closing version's rows, so that a purge is bounded work inside a write transaction (the next
/// purge takes the rest).
inline constexpr std::int64_t purge_batch_rows = 5000;

struct purge_outcome {
    std::int64_t rows = 0;           ///< index rows deleted, all tables together
};

/// Deletes closed index rows with until_seq <= `horizon`, lowest until_seq first: from each table the
/// purge_batch_rows oldest and the other rows closed by the same version as the last of them (a
/// version's rows go together), and raises search_horizon.purged_through to the largest
/// until_seq deleted (never lowers it). Run inside a transaction, so rows and horizon change together.
fhir::result<purge_outcome> purge_closed_rows(connection& db, std::int64_t horizon);

/// Removes every row derived from the version at `seq`: its search index rows (open or closed),
/// version_citizens and version_targets. For an erasure only (engine.hpp, invariant 25), which
/// removes the version itself.
fhir::status erase_version_rows(connection& db, std::int64_t seq);

/// Records the citizens of the live version at `seq` in version_citizens (a citizen given twice is
/// recorded once). A deletion marker has none.
fhir::status insert_version_citizens(connection& db, std::int64_t seq, const std::vector<std::string>& citizens);

/// Records in version_targets the items the live version at `seq` points at (fhir::item_targets of
/// its stamped JSON: a Provenance's target and entity.what), for the visibility rule
/// (visibility_sql.hpp, design note 3). A deletion marker, and every type that points at nothing,
/// has none.
fhir::status insert_version_targets(connection& db, std::int64_t seq, std::string_view type, std::string_view json);

/// Migration 8's fill of version_targets: the targets of every live version of a type that points
/// at items.
fhir::status record_targets_of_live_versions(connection& db);

/// Migration 3's fill, frozen with that migration: indexes every current live version into the
/// tables as migration 3 made them (rows keyed by type and id, no seq, no composites). Runs only on
/// the way from schema 2 to a later schema.
fhir::status index_current_versions(connection& db);

/// Migration 4's fill, frozen with that migration, on empty search_* tables: indexes every current
/// live version (rows with its seq, open), without the :of-type rows (migration 5 brought those).
/// Rows of versions superseded before are not made. Errors as insert_search_rows.
fhir::status index_current_versions_with_seq(connection& db);

/// Migration 5's fill: the :of-type rows of every current live version (with its seq, open), and no
/// other rows. Those of versions superseded before are not made. Errors as insert_search_rows.
fhir::status index_of_type_rows_of_current_versions(connection& db);

/// The fill of SQLite's migration 10 and PostgreSQL's 7: removes the rows of every union parameter
/// (fhir::search_parameter::union_of) and narrowing (`narrows`), which the writer no longer makes
/// and the planner never reads (their values are other parameters' rows), first giving a narrowed
/// parameter's rows the target type resolve() gave where a narrowing's row shows it.
fhir::status remove_derived_rows(connection& db);

/// Migration 4's fill of version_citizens: the citizens of every live version, from the '\n'-joined
/// `citizens` column of resource_versions.
fhir::status record_citizens_of_live_versions(connection& db);

} // namespace caregate::storage::detail
