// Marking what a citizen writes through the patient-facing endpoint as their own contribution (issue
// 6, "Contribute"): a provenance tag, meta.source, and the citizen as the one who performed, authored
// or sent it, so that professionals see where an item came from. Pure functions over JSON text; who
// the caller is and whether they may write at all are the gateway's decisions.
#pragma once

#include "fhir_model/error.hpp"

#include <string>
#include <string_view>

namespace caregate::fhir {

/// The meta.tag that marks a patient contribution. The code system is this project's own: FHIR R4
/// has no code for "entered by the patient" among the meta tags, and a tag is what `_tag` searches.
inline constexpr std::string_view provenance_tag_system = "https://fhir.caregate.nhs.uk/CodeSystem/provenance";
inline constexpr std::string_view patient_contributed_code = "patient-contributed";
inline constexpr std::string_view patient_contributed_display = "Contributed by the patient";
/// meta.source of a patient contribution: the patient-facing endpoint, whatever the app sent.
inline constexpr std::string_view patient_endpoint_source = "https://fhir.caregate.nhs.uk/patient-endpoint";

/// Marks `resource` (JSON text) as contributed by the citizen with NHS number `nhs_number`:
/// - meta.tag gains {provenance_tag_system, patient_contributed_code, patient_contributed_display},
///   unless it holds a coding of that system and code already (an update keeps one, never two);
/// - meta.source becomes patient_endpoint_source;
/// - the elements that say who made the resource name the citizen, as {"reference":"Patient/{nhs}"}:
///   Observation.performer and Consent.performer gain it when it is not among them;
///   Communication.sender, QuestionnaireResponse.author and QuestionnaireResponse.source are set to it
///   when absent.
/// A Reference names the citizen when its `reference` is "Patient/{nhs}", or, without one, its
/// identifier carries the NHS number system and `nhs_number`. Everything else is kept as it was:
/// member order (added members last), numbers exactly as written. A value of the wrong JSON shape
/// (meta not an object, performer not an array) is left for validation to refuse.
/// Errors: malformed (not JSON, as prepare_resource says); invalid (business-rule) when one of those
/// elements names someone else (another performer, author, source or sender: a citizen speaks for
/// themselves only), with its FHIRPath, e.g. "Observation.performer[1]".
result<std::string> mark_contribution(std::string_view resource, std::string_view nhs_number);

/// Whether `resource` (JSON text) carries the patient-contributed tag in meta.tag. False for text
/// that is not a JSON object. Cheap when the text cannot hold the code (no parse).
bool carries_contribution_tag(std::string_view resource);

} // namespace caregate::fhir
