// The store's schema: the ordered list of migrations and the one function that brings a database up
// to date at open. Not for queries; those live with the store.
#pragma once

#include "sqlite.hpp"

namespace caregate::storage::detail {

/// The schema version this build writes (PRAGMA user_version after migrating).
int current_schema_version() noexcept;

/// Applies, in one transaction, every migration the database has not had yet. Errors: fault when the
/// database's schema is newer than this build knows (an older caregate must not write to it), or
/// when a migration fails (then nothing changes).
fhir::status migrate(connection& db);

} // namespace caregate::storage::detail
