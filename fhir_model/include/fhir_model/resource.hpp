// Turning a request body into a resource the store can keep: parse (RapidJSON), validate against the
// official R4 definitions, find the citizen the resource belongs to, and produce canonical JSON.
// Also stamps the server-owned parts (id, meta.versionId, meta.lastUpdated) into stored content.
// Knows nothing of HTTP or SQL.
#pragma once

#include "fhir_model/error.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::fhir {

/// A reference from a resource to a citizen, at one of its type's Patient-compartment elements,
/// made either literally (`Patient/{nhs}`) or logically (identifier with the NHS number system).
struct citizen_link {
    std::string nhs_number;
    std::string expression; ///< where it was found, e.g. "Observation.subject"
};

/// A parsed, valid resource ready to be stored.
struct prepared_resource {
    std::string type;       ///< resourceType
    std::string id;         ///< the id in the body, empty if none
    std::string nhs_number; ///< for a Patient: the NHS number from Patient.identifier (always set)
    /// Canonical compact JSON: resourceType, id (if any), meta (without versionId and lastUpdated;
    /// omitted if empty), then the other elements in the order received; numbers exactly as written;
    /// logical references to citizens gain `"reference": "Patient/{nhs}"` beside their identifier.
    std::string content;
    /// Every citizen the resource links to at a Patient-compartment element (empty for Patient).
    std::vector<citizen_link> citizens;
};

/// The resource types this server stores (from the generator's list), sorted.
std::span<const std::string_view> supported_types() noexcept;
bool is_supported_type(std::string_view type) noexcept;
/// True for types in the Patient compartment that must name their citizen (see README).
bool requires_citizen(std::string_view type) noexcept;

/// Parses and validates `body` as a resource of `expected_type`.
/// Errors: malformed (not JSON, invalid UTF-8, duplicate keys, too deep), invalid (the resourceType is
/// not `expected_type`, or the resource breaks the R4 definitions or the NHS number rules), each issue
/// with a FHIRPath expression.
result<prepared_resource> prepare_resource(std::string_view body, std::string_view expected_type);

/// Sets the server-owned parts of canonical content: `id`, `meta.versionId`, `meta.lastUpdated`
/// (an instant, e.g. "2026-11-23T19:02:03.123456Z"). Keeps element order (resourceType, id, meta first).
std::string stamp_resource(std::string_view content, std::string_view id, std::int64_t version_id,
                           std::string_view last_updated);

} // namespace caregate::fhir
