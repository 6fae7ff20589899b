// Moving a SQLite database into PostgreSQL (storage::migrate_store, caregate migrate): every table's
// rows copied as stored, so that the PostgreSQL engine answers exactly what the SQLite one did.
//
// Invariants:
//  - the source is read in one read transaction (one moment), the target written in one
//    transaction: a failed move leaves the target as it was;
//  - a target that holds any resource version or audit record is refused (a move never merges);
//  - every column of every table the engine reads is copied with its stored value (seq, rowid order,
//    until_seq, hashes), so ids, versions, lastUpdated, history order, page cursors' seq and the audit
//    chain are the same; identity sequences then continue after the largest value copied;
//  - the copy's audit chain is verified before the move reports success, and its tables analysed
//    (planner statistics) before it is served.
#pragma once

#include "storage/records.hpp"

#include <string>

namespace caregate::storage::detail {

/// Copies the SQLite file at `path` (already at the current schema) into the PostgreSQL database
/// `conninfo` (already migrated, empty).
fhir::result<migration_report> copy_sqlite_to_postgresql(const std::string& path, const std::string& conninfo);

} // namespace caregate::storage::detail
