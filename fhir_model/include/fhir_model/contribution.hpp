// The server's provenance marks: what citizens write through the patient-facing endpoint is marked as
// their contribution (a provenance tag, meta.source, and the citizen as the one who performed,
// authored or sent it), and what a carer writes for them as the carer's (their own tag, and the
// carer's RelatedPerson in those elements), so that professionals see where an item came from; and
// no other writer can set or imitate those marks. Pure functions over JSON text; who the caller is
// and whether they may write at all are the gateway's decisions.
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
/// The meta.tag that marks what a carer contributed for the citizen (patients.proxies in the policy).
inline constexpr std::string_view carer_contributed_code = "carer-contributed";
inline constexpr std::string_view carer_contributed_display = "Contributed by a carer on the patient's behalf";
/// meta.source of a patient's or a carer's contribution: the patient-facing endpoint, whatever the app sent.
inline constexpr std::string_view patient_endpoint_source = "https://fhir.caregate.nhs.uk/patient-endpoint";
/// The host of the server's own URIs: a meta.source naming it is the server's to give.
inline constexpr std::string_view server_host = "fhir.caregate.nhs.uk";

/// Whose contribution a resource is, by the mark it carries.
enum class contributed_by { nobody, patient, carer };

/// Who is writing, for the server's provenance marks.
struct provenance_marks {
    /// The citizen writing, or the citizen a carer writes for; empty for everyone else.
    std::string_view citizen;
    /// The mark the resource carries: a citizen's or a carer's contribution (written by them, or
    /// the ICS's services correcting one), or none.
    contributed_by contribution = contributed_by::nobody;
    /// The id of the RelatedPerson in the citizen's record that names the carer writing for them;
    /// empty when no carer writes.
    std::string_view carer;
};

/// Sets the server's provenance marks on `resource` (JSON text), for every writer:
/// - every client-supplied coding that looks like a mark is taken out of meta.tag and meta.security:
///   a coding of provenance_tag_system, or whose code or display reads as one of the marks' codes or
///   displays in any case or spelling ("Patient_Contributed"), in any system or none; and a
///   meta.source naming server_host or the patient endpoint. An array, or meta, left empty goes;
/// - when `marks.contribution` is not nobody, the marks mark_contribution describes are set (the
///   carer's tag for a carer's contribution), the server's tag kept in its place if it was there;
/// - when `marks.citizen` is given, the elements that say who made the resource name the citizen as
///   mark_contribution says, or, when `marks.carer` is given, the carer as
///   {"reference":"RelatedPerson/{carer}"}; naming anyone else there is refused.
/// Everything else is kept as it was: member order, numbers exactly as written. Text that cannot hold
/// a mark and needs none comes back unchanged without being parsed.
/// Errors: malformed (not JSON); invalid (business-rule), as mark_contribution.
result<std::string> mark_provenance(std::string_view resource, const provenance_marks& marks);

/// Marks `resource` (JSON text) as contributed by the citizen with NHS number `nhs_number`:
/// - meta.tag gains {provenance_tag_system, patient_contributed_code, patient_contributed_display},
///   or, when it holds a coding of that system and code already, that coding becomes it in its place
///   (an update keeps one, never two);
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
/// The same as mark_provenance(resource, {nhs_number, contributed_by::patient}): look-alike marks go too.
result<std::string> mark_contribution(std::string_view resource, std::string_view nhs_number);

} // namespace caregate::fhir
