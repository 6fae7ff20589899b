// An audit record written as a FHIR AuditEvent (audit_event_json.hpp).
#include "interactions/audit_event_json.hpp"

#include "storage/store.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string_view>

namespace caregate::interactions {

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void text(json_writer& out, const char* key, std::string_view value) {
    out.Key(key);
    out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void coding(json_writer& out, std::string_view system, std::string_view code) {
    out.StartObject();
    text(out, "system", system);
    text(out, "code", code);
    out.EndObject();
}

/// AuditEvent.action: C, R, U, D or E (execute: search, break-glass).
std::string_view action_code(std::string_view action) {
    if (action == "create")
        return "C";
    if (action == "read" || action == "vread" || action == "history")
        return "R";
    if (action == "update")
        return "U";
    if (action == "delete" || action == "erase")
        return "D";
    return "E";
}

/// A display for the HL7 PurposeOfUse codes the gateway records, so that an access log reads plainly.
std::string_view purpose_display(std::string_view purpose) {
    if (purpose == "TREAT")
        return "treatment";
    if (purpose == "ETREAT")
        return "emergency treatment (break-glass)";
    if (purpose == "PATRQT")
        return "patient requested";
    if (purpose == "FAMRQT")
        return "family requested";
    if (purpose == "PWATRNY")
        return "power of attorney";
    return {};
}

/// AuditEvent.outcome: 0 success, 4 minor failure (refused, not found), 8 serious failure.
/// A record without an outcome is the gateway's own note of what it did, not of a request answered:
/// the break-glass grant (access::guard::open_citizen), which was made.
std::string_view outcome_code(std::string_view outcome) {
    if (outcome == "success" || outcome.empty())
        return "0";
    if (outcome == "failed")
        return "8";
    return "4";
}


/// On the patient-facing endpoint citizens are recorded with the organisation
/// `patient:{nhs}`, carers with `patient:{nhs}/carer:{nhs}` (access::profile::citizen_org): no ODS
/// code and no Organization resource.
constexpr std::string_view patient_endpoint_prefix = "patient:";

/// The display name of the acting organisation: the organisations register's name for an ODS code,
/// the patient-facing endpoint for citizens and their carers; empty for an organisation no longer
/// listed.
std::string organisation_display(const storage::audit_record& r, const access::organisation_register& organisations) {
    if (r.organisation.starts_with(patient_endpoint_prefix))
        return r.role.starts_with("proxy:") ? "a carer acting for the citizen (patient-facing endpoint)"
                                            : "the citizen (patient-facing endpoint)";
    const access::organisation* org = organisations.find(r.organisation);
    return org ? org->name : std::string();
}

void write_audit_event(json_writer& out, const storage::audit_record& r, const trail_reader& reader) {
    out.StartObject();
    text(out, "resourceType", "AuditEvent");
    text(out, "id", std::to_string(r.sequence));
    out.Key("type");
    coding(out, "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest");
    out.Key("subtype");
    out.StartArray();
    coding(out, "https://caregate.dev/fhir/CodeSystem/audit-action", r.action);
    out.EndArray();
    text(out, "action", action_code(r.action));
    text(out, "recorded", storage::store::format_instant(r.time));
    text(out, "outcome", outcome_code(r.outcome));
    if (!r.outcome.empty())
        text(out, "outcomeDesc", r.outcome);
    out.Key("purposeOfEvent");
    out.StartArray();
    out.StartObject();
    out.Key("coding");
    out.StartArray();
    const std::string_view purpose = r.purpose.empty() ? std::string_view("TREAT") : std::string_view(r.purpose);
    out.StartObject();
    text(out, "system", "http://terminology.hl7.org/CodeSystem/v3-ActReason");
    text(out, "code", purpose);
    if (auto display = purpose_display(purpose); !display.empty())
        text(out, "display", display);
    out.EndObject();
    out.EndArray();
    if (!r.break_glass_reason.empty())
        text(out, "text", r.break_glass_reason);
    else if (r.action == "export" && !r.nhs_number.empty()) // what a citizen reads in their access log
        text(out, "text", "included in a population health export, for direct care");
    out.EndObject();
    out.EndArray();
    out.Key("agent");
    out.StartArray();
    out.StartObject(); // the person (or system) acting
    if (!r.role.empty()) {
        out.Key("type");
        out.StartObject();
        out.Key("coding");
        out.StartArray();
        coding(out, "https://fhir.nhs.uk/CodeSystem/NHSJobRoleCode", r.role);
        out.EndArray();
        out.EndObject();
    }
    out.Key("who");
    out.StartObject();
    out.Key("identifier");
    out.StartObject();
    text(out, "system", "https://fhir.nhs.uk/Id/sds-user-id");
    text(out, "value", r.user);
    out.EndObject();
    out.EndObject();
    out.Key("requestor");
    out.Bool(true);
    out.EndObject();
    out.StartObject(); // their organisation, by ODS code and name
    const std::string organisation_name = organisation_display(r, reader.organisations);
    const bool patient_endpoint = r.organisation.starts_with(patient_endpoint_prefix);
    out.Key("who");
    out.StartObject();
    if (!patient_endpoint)
        text(out, "reference", "Organization/" + r.organisation);
    out.Key("identifier");
    out.StartObject();
    text(out, "system", patient_endpoint ? "https://caregate.dev/fhir/Id/patient-endpoint"
                                         : "https://fhir.nhs.uk/Id/ods-organization-code");
    text(out, "value", r.organisation);
    out.EndObject();
    if (!organisation_name.empty())
        text(out, "display", organisation_name);
    out.EndObject();
    if (!organisation_name.empty())
        text(out, "name", organisation_name);
    out.Key("requestor");
    out.Bool(false);
    out.EndObject();
    out.EndArray();
    out.Key("source");
    out.StartObject();
    out.Key("observer");
    out.StartObject();
    text(out, "display", "caregate");
    out.EndObject();
    out.EndObject();
    // What was touched: the citizen, each resource by reference, or the type alone when no resource
    // was (a search that found nothing, a refused request).
    const bool has_entities = !r.nhs_number.empty() || !r.resource_ids.empty() || !r.resource_type.empty();
    if (has_entities) {
        out.Key("entity");
        out.StartArray();
        if (!r.nhs_number.empty()) {
            out.StartObject();
            out.Key("what");
            out.StartObject();
            text(out, "reference", "Patient/" + r.nhs_number);
            out.EndObject();
            out.EndObject();
        }
        for (const auto& [type, id] : named_resources(r)) {
            out.StartObject();
            out.Key("what");
            out.StartObject();
            text(out, "reference", type + "/" + id);
            out.EndObject();
            out.EndObject();
        }
        if (r.resource_ids.empty() && !r.resource_type.empty()) {
            out.StartObject();
            out.Key("type");
            coding(out, "http://hl7.org/fhir/resource-types", r.resource_type);
            out.EndObject();
        }
        out.EndArray();
    }
    out.Key("extension");
    out.StartArray();
    out.StartObject(); // the hash chain, so a reviewer can check a record against the chain
    text(out, "url", "https://caregate.dev/fhir/StructureDefinition/audit-chain-hash");
    text(out, "valueString", r.hash);
    out.EndObject();
    out.StartObject();
    text(out, "url", "https://caregate.dev/fhir/StructureDefinition/request-id");
    text(out, "valueString", r.request_id.empty() ? "none" : r.request_id);
    out.EndObject();
    if (reader.shows_detail && !r.detail.empty()) {
        out.StartObject();
        text(out, "url", "https://caregate.dev/fhir/StructureDefinition/audit-detail");
        text(out, "valueString", r.detail);
        out.EndObject();
    }
    out.EndArray();
    out.EndObject();
}

} // namespace

/// The resources a record names, as "Type/id" (system-level records already write them so).
std::vector<std::pair<std::string, std::string>> named_resources(const storage::audit_record& r) {
    std::vector<std::pair<std::string, std::string>> named;
    std::string_view ids = r.resource_ids;
    while (!ids.empty()) {
        const auto space = ids.find(' ');
        const std::string_view id = ids.substr(0, space);
        ids = space == std::string_view::npos ? std::string_view{} : ids.substr(space + 1);
        if (id.empty())
            continue;
        if (const auto slash = id.find('/'); slash != std::string_view::npos)
            named.emplace_back(std::string(id.substr(0, slash)), std::string(id.substr(slash + 1)));
        else
            named.emplace_back(r.resource_type, std::string(id));
    }
    return named;
}

/// One AuditEvent's JSON, to go into a Bundle.
std::string audit_event_json(const storage::audit_record& r, const trail_reader& reader) {
    rapidjson::StringBuffer buffer;
    json_writer out(buffer);
    write_audit_event(out, r, reader);
    return {buffer.GetString(), buffer.GetSize()};
}

} // namespace caregate::interactions
