// Search planning and execution (private): turns a storage::search_request into SQL over the index
// tables of migration 4, with the caller's visibility in the query, and runs it on one reader
// connection inside one read transaction. store::search (store.cpp) is the only caller.
#pragma once

#include "sqlite.hpp"

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
