// Structural validation of a parsed resource against the R4 definitions (private): elements,
// cardinality, JSON types, choice types, primitive formats, primitive extensions, required bindings,
// references, contained resources and extensions; and the citizen links found at the resource's
// Patient-compartment elements. Not the NHS-number rules on Patient (resource.cpp) and no FHIRPath
// invariants. Diagnostics name elements and types only, never values from the resource.
#pragma once

#include "definitions.hpp"
#include "fhir_model/error.hpp"
#include "fhir_model/resource.hpp"

#include <string>
#include <vector>

#include <rapidjson/document.h>

namespace caregate::fhir::detail {

/// A logical reference to a citizen (by NHS-number identifier) that canonical content completes with
/// `"reference": "Patient/{nhs}"`.
struct logical_citizen_reference {
    rapidjson::Value* reference = nullptr; ///< the Reference object in the document
    std::string nhs_number;
};

struct validation {
    std::vector<issue> issues;
    std::vector<citizen_link> citizens;
    std::vector<logical_citizen_reference> logical_references;
};

/// Most issues reported for one resource; past it the validator stops collecting.
inline constexpr std::size_t max_issues = 100;

/// Validates `resource` (any JSON value) as a root resource of `type` (a supported resource type),
/// whose resourceType the caller has already checked. Citizen links are collected for types in the
/// Patient compartment other than Patient.
void validate_resource(rapidjson::Value& resource, const type_def& type, validation& out);

} // namespace caregate::fhir::detail
