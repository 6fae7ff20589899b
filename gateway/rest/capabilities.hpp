// The one table of resource types x interactions. The router refuses what it does not list and
// /metadata is written from it, so the CapabilityStatement cannot claim what is not served.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::rest {

/// FHIR RESTful interactions (https://hl7.org/fhir/R4/http.html).
enum class interaction {
    read,
    vread,
    update,
    delete_,
    history_instance,
    history_type,
    create,
    search_type,
    history_system,
    search_system,
    capabilities,
    /// Patient compartment search, GET /Patient/{nhs}/{type} (https://hl7.org/fhir/R4/compartmentdefinition-patient.html):
    /// routed with `type` the type searched and `id` the citizen.
    search_compartment,
    /// Patient/{nhs}/$everything (https://hl7.org/fhir/R4/patient-operation-everything.html).
    everything,
    /// PATCH [type]/[id] and PATCH [type]?criteria (https://hl7.org/fhir/R4/http.html#patch).
    patch,
    /// POST [base] with a transaction Bundle (https://hl7.org/fhir/R4/http.html#transaction).
    transaction,
    /// GET [base]/.well-known/smart-configuration on the patient-facing endpoint only
    /// (https://hl7.org/fhir/smart-app-launch/conformance.html). Not a FHIR interaction: like
    /// capabilities, it is answered without a token and is never in a CapabilityStatement.
    smart_configuration,
};

/// The spec's code for an interaction, e.g. "history-instance".
std::string_view spec_code(interaction kind) noexcept;

/// A search parameter a type serves (https://hl7.org/fhir/R4/capabilitystatement-definitions.html).
struct search_parameter {
    std::string_view name;
    std::string_view type; ///< number | date | string | token | reference | ...
    std::string_view documentation;
};

struct type_capability {
    std::string_view type;
    std::vector<interaction> interactions; ///< type- and instance-level interactions served
    std::vector<search_parameter> search_parameters;
    std::vector<std::string> search_includes;    ///< `Type:param` values _include accepts
    std::vector<std::string> search_revincludes; ///< `Source:param` values _revinclude accepts
    bool allows(interaction kind) const noexcept;
};

/// Every supported type with its interactions, in the order of fhir::supported_types().
std::span<const type_capability> type_capabilities();
/// The entry for a type, or nullptr if it is not served.
const type_capability* find_type(std::string_view type) noexcept;
/// Whole-system interactions served.
std::span<const interaction> system_interactions() noexcept;

} // namespace caregate::rest
