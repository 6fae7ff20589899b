// Finding the access facts of a resource (private; fhir::access_facts in resource.hpp is the contract):
// security labels, coded facets, organisation links and a Consent's objection, read from the root
// resource's validated DOM. Not the decisions made from them: those belong to the store and the policy.
#pragma once

#include "definitions.hpp"
#include "fhir_model/error.hpp"
#include "fhir_model/resource.hpp"

#include <cstddef>
#include <string_view>

#include <rapidjson/document.h>

namespace caregate::fhir::detail {

/// The system of NHS Organisation Data Service codes, by which an organisation is referenced logically.

/// Longest code and code system a facet names exactly; policy rules name short codes of well-known
/// systems, and a facet is stored per version. A longer one is kept as a value no rule names.
inline constexpr std::size_t max_facet_code_length = 64;
inline constexpr std::size_t max_facet_system_length = 256;

/// The access facts of `resource`, a root resource of `type` that validate_resource accepted.
/// Contained resources never count. Errors: invalid, for a meta.security code that holds a line break
/// (labels are kept one a line, and a label cannot be dropped without widening access).
result<access_facts> find_access_facts(const rapidjson::Value& resource, const type_def& type);

} // namespace caregate::fhir::detail
