// The rule that keeps citizens out of the types outside their record (private to fhir_model).
//
// A resource of a type outside R4's Patient compartment (a directory entry, a definition, knowledge,
// terminology: HealthcareService, Slot, PlanDefinition, ValueSet, ...) links to no citizen, so the
// visibility rule shows it to everyone whose role may read its type. It therefore may not carry
// anything of a citizen:
//   1. no reference to a Patient, nor to an item of the Patient compartment (every type there but
//      Device, Group and Schedule, which may name no citizen and are then directory items
//      themselves), nor to a Task (which R4 leaves out of the compartment though it names its
//      citizen), wherever it is: relative, absolute (another server's citizen is a citizen too),
//      by `Reference.type`, or inside a contained resource;
//   2. no identifier, anywhere, in the NHS number's system (a logical reference to a citizen, or a
//      citizen's number written into a directory entry);
//   3. no contained resource of those types.
// A reference to a Device, Group or Schedule shows its id only; what it holds is decided by its own
// visibility. Free text is the writer's responsibility, as in every resource.
// Diagnostics name elements and types only, never values.
#pragma once

#include "fhir_model/error.hpp"

#include <rapidjson/document.h>

#include <string_view>
#include <vector>

namespace caregate::fhir::detail {

/// The issues of the rule above for `resource`, a root resource of `type`; nothing for a type of the
/// Patient compartment.
std::vector<issue> names_of_citizens_outside_record(const rapidjson::Value& resource, std::string_view type);

} // namespace caregate::fhir::detail
