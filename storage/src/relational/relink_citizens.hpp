// A migration's fill, for either engine: the citizens of every stored version of one type again, when
// the Patient compartment comes to place a type it did not before (a Device by Device.patient).
// Without it, versions written earlier would keep linking to no citizen, and so be seen by every role
// that reads the type: the fill closes that, in the migration's transaction.
#pragma once

#include "database.hpp"

#include "fhir_model/error.hpp"

#include <string_view>

namespace caregate::storage::detail {

/// For every version of `type`: a live version's citizens from its stored JSON as
/// fhir::prepare_resource finds them now (a version that no longer validates, from the `patient`
/// reference it carries, so that it is never left open to all); a deletion marker's, the citizens of
/// the version it deletes (engine.hpp, invariant 12). Writes resource_versions.citizens (the caller's
/// migration lifts the trigger that keeps versions immutable, and puts it back) and version_citizens
/// (invariant 17).
fhir::status relink_citizens_of_type(connection& db, std::string_view type);

} // namespace caregate::storage::detail
