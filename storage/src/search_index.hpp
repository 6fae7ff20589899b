// The search index rows of the current live versions (schema migration 3): turning a version's
// stamped JSON into rows of the search_* tables, and removing them. Not query planning or matching;
// the writer (store.cpp) and migration 3 (schema.cpp) are the only callers, inside their transactions.
#pragma once

#include "sqlite.hpp"

#include <string_view>

namespace caregate::storage::detail {

/// Removes every index row of type/id (for a deletion, or before a new version's rows).
fhir::status remove_search_rows(connection& db, std::string_view type, std::string_view id);

/// Makes the index rows of type/id exactly those that fhir::extract_search_values gives for
/// `stamped_json`, the JSON of its new current, live version: removes the old rows, inserts the new.
/// A type without search parameters (e.g. Basic) gets no rows; searching it is refused, not widened.
/// Errors: fault when extraction fails or gives another type's parameters (the content was validated
/// before it came here, so that is a bug), and SQLite failures (busy, fault).
fhir::status replace_search_rows(connection& db, std::string_view type, std::string_view id,
                                 std::string_view stamped_json);

/// Indexes every current live version from its stored JSON (migration 3, on a database with empty
/// search_* tables). Errors as replace_search_rows.
fhir::status index_current_versions(connection& db);

} // namespace caregate::storage::detail
