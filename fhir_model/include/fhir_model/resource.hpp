// Turning a request body into a resource the store can keep: parse (RapidJSON), validate against the
// official R4 definitions, find the citizen the resource belongs to, and produce canonical JSON.
// Also stamps the server-owned parts (id, meta.versionId, meta.lastUpdated) into stored content.
// Knows nothing of HTTP or SQL.
#pragma once

#include "fhir_model/error.hpp"
#include "fhir_model/contribution.hpp"

#include <cstdint>
#include <optional>
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

/// A link between the citizen and an organisation that a resource records, from which a legitimate
/// relationship (README, "Who may see what") is decided. Organisations are named by ODS code, referenced as
/// `Organization/{ODS}` or by identifier with system https://fhir.nhs.uk/Id/ods-organization-code.
struct organisation_link {
    std::string ods;
    /// "registered-gp" (Patient.generalPractitioner), "encounter" (Encounter.serviceProvider),
    /// "episode-of-care" (EpisodeOfCare.managingOrganization), "care-team" (CareTeam.managingOrganization
    /// and organisations among CareTeam.participant.member / onBehalfOf).
    std::string kind;
    bool active = false;                ///< ongoing by its status (and no period.end in the past)
    std::optional<std::int64_t> ended;  ///< µs since epoch: when it ended (period.end), if it has
};

/// What access control needs to know about a resource, found when it is written.
struct access_facts {
    /// Every meta.security coding as "system|code", e.g.
    /// "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R".
    std::vector<std::string> labels;
    /// "element=system|code" for each coding of the root's Coding and CodeableConcept elements (and
    /// arrays of them), e.g. "category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";
    /// sorted, distinct. A value that names no code exactly (a coding without system or code, a
    /// CodeableConcept with text only, a value too long or holding a line break) is still a value of
    /// its element: "element=|" or "element=|code", which no policy rule names. Policy rules that
    /// grant part of a type match on these (facets_satisfy).
    std::vector<std::string> facets;
    /// Organisation links to the citizen (Patient, Encounter, EpisodeOfCare, CareTeam).
    std::vector<organisation_link> organisations;
    /// A Consent recording the citizen's objection to sharing: status active, scope patient-privacy,
    /// provision.type deny.
    bool objection = false;
    /// A Consent recording the citizen's opt-out from the use of their data for planning and
    /// research (the national data opt-out): status active, scope research, provision.type deny.
    bool research_opt_out = false;
};

/// Whether a version with these `facets` meets a policy rule's `where` (facets as above, each naming
/// a system and a code): for every element `where` names, the version has at least one value of it
/// and every value it has is among those `where` allows for it (an Observation that is both
/// social-history and laboratory is a laboratory result, and a code of another system is another
/// code). Empty `where`: true. The one definition of this rule, for reads and writes alike;
/// storage/src/relational/visibility_sql.cpp (facets_satisfy) decides it in SQL, and the tests keep the two in step.
bool facets_satisfy(const std::vector<std::string>& where, const std::vector<std::string>& facets);

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
    access_facts access;
    /// A Binary's bytes: its `data` decoded, which `content` leaves out (a Binary's JSON is stored
    /// without them and its bytes apart, binary.hpp). Empty for every other type and a Binary without data.
    std::string binary_bytes;
};

/// The resource types this server stores (from the generator's list), sorted.
std::span<const std::string_view> supported_types() noexcept;
bool is_supported_type(std::string_view type) noexcept;
/// True for types in the Patient compartment (the official CompartmentDefinition, for the supported types).
bool in_patient_compartment(std::string_view type) noexcept;
/// True for types in the Patient compartment that must name their citizen (see README).
bool requires_citizen(std::string_view type) noexcept;

/// Whether a resource of `type` is seen only by those who may see the items it points at
/// (access_facts::targets): a Provenance says who did what to its target, so it shows no more than
/// the target does; a Binary's securityContext names the item whose readers may read its bytes. No
/// other supported type outside the Patient compartment points at its items.
bool points_at_items(std::string_view type) noexcept;

/// Whether a resource of `type` that points at no stored item is seen by the organisation that wrote
/// it alone: a Binary without a securityContext (R4 leaves such a Binary to the server's own rules,
/// and a scanned letter uploaded before its DocumentReference must not be everyone's).
bool owner_only_when_pointing_at_nothing(std::string_view type) noexcept;

/// The stored items a resource's JSON (as prepared or as stored) points at, whose visibility its own
/// follows (a Provenance's target and entity.what, a Binary's securityContext): each relative literal reference "Type/id" to a
/// supported type, in the order found, without repeats. Empty, without parsing, for every type
/// that points_at_items does not name; empty for JSON that does not parse.
std::vector<std::string> item_targets(std::string_view type, std::string_view json);

/// Parses and validates `body` as a resource of `expected_type`.
/// Errors: malformed (not JSON, invalid UTF-8, duplicate keys, too deep), invalid (the resourceType is
/// not `expected_type`, or the resource breaks the R4 definitions or the NHS number rules), each issue
/// with a FHIRPath expression.
result<prepared_resource> prepare_resource(std::string_view body, std::string_view expected_type);

/// prepare_resource(mark_provenance(body, marks), expected_type) (contribution.hpp), from one
/// parse of `body`: what every write through the API makes of its body. Errors: as the two say, a
/// resourceType that does not match first.
result<prepared_resource> prepare_resource(std::string_view body, std::string_view expected_type,
                                           const provenance_marks& marks);

/// Sets the server-owned parts of canonical content: `id`, `meta.versionId`, `meta.lastUpdated`
/// (an instant, e.g. "2026-11-23T19:02:03.123456Z"). Keeps element order (resourceType, id, meta first).
std::string stamp_resource(std::string_view content, std::string_view id, std::int64_t version_id,
                           std::string_view last_updated);

} // namespace caregate::fhir
