// What the server serves, as the interactions see it: the kinds of interaction, where a request was
// routed, and what each resource type serves. The route table (rest/routes.hpp) is the one source of
// all of it: it routes requests and describes itself as a `service_description`, from which /metadata
// is written and a system search learns its types, so that none of them can disagree with the router.
// The interactions sit below the router and cannot include it; this header is what they share.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::interactions {

/// FHIR RESTful interactions (https://hl7.org/fhir/R4/http.html), in the order a CapabilityStatement
/// lists them: a type's interactions, then the system's.
enum class interaction {
    read,
    vread,
    update,
    /// PATCH [type]/[id] and PATCH [type]?criteria (https://hl7.org/fhir/R4/http.html#patch).
    patch,
    delete_,
    history_instance,
    history_type,
    create,
    search_type,
    /// POST [base] with a transaction or batch Bundle (https://hl7.org/fhir/R4/http.html#transaction).
    transaction,
    history_system,
    search_system,
    capabilities,
    /// Patient compartment search, GET /Patient/{nhs}/{type} (https://hl7.org/fhir/R4/compartmentdefinition-patient.html):
    /// routed with `type` the type searched and `id` the citizen.
    search_compartment,
    /// Patient/{nhs}/$everything (https://hl7.org/fhir/R4/patient-operation-everything.html).
    everything,
    /// Composition/{id}/$document (https://hl7.org/fhir/R4/composition-operation-document.html).
    document,
    /// GET [base]/.well-known/smart-configuration on the patient-facing endpoint only
    /// (https://hl7.org/fhir/smart-app-launch/conformance.html). Not a FHIR interaction: like
    /// capabilities, it is answered without a token and is never in a CapabilityStatement.
    smart_configuration,
    /// Bulk Data kick-off (https://hl7.org/fhir/uv/bulkdata/STU2/export.html): [base]/$export,
    /// Patient/$export, Group/[id]/$export. An operation, listed as one in the CapabilityStatement.
    export_,
    /// The status URL of an export job ([base]/$export-status/[id]): polling, and DELETE to cancel.
    export_status,
    /// An export job's output file ([base]/$export-file/[id]/[n]).
    export_file,
};

/// The spec's code for an interaction, e.g. "history-instance".
std::string_view spec_code(interaction kind) noexcept;

/// Where a request was routed.
struct route {
    interaction kind = interaction::capabilities;
    std::string type;
    std::string id;
    std::int64_t version_id = 0;
};

/// A search parameter a type serves (https://hl7.org/fhir/R4/capabilitystatement-definitions.html).
struct served_parameter {
    std::string_view name;
    std::string_view type; ///< number | date | string | token | reference | ...
    std::string_view documentation;
};

/// What one resource type serves.
struct served_type {
    std::string_view type;
    std::vector<interaction> interactions; ///< type- and instance-level interactions, in spec order
    std::vector<served_parameter> search_parameters;
    std::vector<std::string> search_includes;    ///< `Type:param` values _include accepts
    std::vector<std::string> search_revincludes; ///< `Source:param` values _revinclude accepts
    bool everything = false;       ///< Patient/{id}/$everything is served on it
    bool document = false;         ///< Composition/{id}/$document is served on it
    bool bulk_export = false;      ///< Patient/$export or Group/{id}/$export is served on it
    /// Served by the record's own rows (the route table's `{type}`): searched by a system search and
    /// in a compartment. False for a type with rows of its own (the audit log).
    bool in_record = false;
    bool allows(interaction kind) const noexcept;
};

/// Everything the route table serves, for /metadata and for the interactions that span types.
struct service_description {
    std::vector<served_type> types;        ///< in the order of fhir::supported_types()
    std::vector<interaction> system;       ///< whole-system interactions, in spec order
    bool compartment = false;              ///< Patient compartment searches are served
    bool bulk_export = false;              ///< [base]/$export is served
    /// The entry for a type, or nullptr if it is not served.
    const served_type* find(std::string_view type) const noexcept;
};

} // namespace caregate::interactions
