// Erasure: a citizen's record removed from the database for good (the right to erasure, or a record
// made in error), so that nothing of it can be read again, through any path, by anyone, and a later
// registration of the same NHS number starts an empty record. Called by the writer inside the
// savepoint of the erasing write (engine.hpp, invariant 25), after the Patient and every item of the
// record have been marked deleted there; the audit log is not touched (its records name resources
// and citizens, never content, and are the evidence of the erasure).
#pragma once

#include "database.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace caregate::storage::detail {

/// Removes, inside the open transaction on the writer's connection `db`:
///  - every version whose citizens name `nhs_number` (the Patient's, its items', and the earlier
///    versions of an item since moved to another citizen), with every row derived from it (search
///    index rows, version_citizens, version_targets);
///  - a resource whose current version goes so (a deletion marker of an item of the record), whole:
///    its remaining versions, its current-version row and its links;
///  - every resource that points at a removed one (a Provenance of an item of the record), whole;
///  - the citizen's break-glass grants, so that none opens the next registration;
///  - every export job's files that hold the citizen: the job fails as withdrawn (exports.hpp).
/// `record` lists the resources of the record (type, id), the Patient included; more are found by
/// the versions that name the citizen. Errors: fault or busy from SQLite (the caller's savepoint is
/// then rolled back, and nothing is removed).
fhir::status erase_citizen(connection& db, std::string_view nhs_number,
                           const std::vector<std::pair<std::string, std::string>>& record);

} // namespace caregate::storage::detail
