// The capability table, built from fhir_model's supported types and the search parameters generated
// from the official R4 definitions (every parameter the planner can answer is listed; none other).
#include "rest/capabilities.hpp"

#include "fhir_model/resource.hpp"
#include "fhir_model/search_parameters.hpp"

#include <algorithm>

namespace caregate::rest {

std::string_view spec_code(interaction kind) noexcept {
    switch (kind) {
    case interaction::read: return "read";
    case interaction::vread: return "vread";
    case interaction::update: return "update";
    case interaction::delete_: return "delete";
    case interaction::history_instance: return "history-instance";
    case interaction::history_type: return "history-type";
    case interaction::create: return "create";
    case interaction::search_type: return "search-type";
    case interaction::history_system: return "history-system";
    case interaction::search_system: return "search-system";
    case interaction::capabilities: return "capabilities";
    case interaction::search_compartment: return "search-compartment";
    case interaction::everything: return "everything";
    case interaction::patch: return "patch";
    case interaction::transaction: return "transaction";
    case interaction::smart_configuration: return "smart-configuration";
    }
    return "";
}

bool type_capability::allows(interaction kind) const noexcept {
    return std::find(interactions.begin(), interactions.end(), kind) != interactions.end();
}

namespace {

/// What the official definition says a parameter is for, kept short: its expression.
std::string_view documentation_of(const fhir::search_parameter& p) {
    if (p.code == "_id")
        return "The logical id of the resource";
    if (p.code == "_lastUpdated")
        return "When the resource version last changed";
    return p.code;
}

void add_search(type_capability& row) {
    for (const fhir::search_parameter* p : fhir::search_parameters_for(row.type)) {
        row.search_parameters.push_back({p->code, fhir::to_string(p->type), documentation_of(*p)});
        if (p->type == fhir::search_param_type::reference && p->base != "Resource")
            row.search_includes.push_back(std::string(row.type) + ":" + p->code);
    }
    for (std::string_view source : fhir::supported_types()) {
        if (source == "AuditEvent")
            continue;
        for (const fhir::search_parameter* p : fhir::search_parameters_for(source)) {
            if (p->type != fhir::search_param_type::reference || p->base == "Resource")
                continue;
            const bool targets = p->targets.empty() ||
                                 std::find(p->targets.begin(), p->targets.end(), row.type) != p->targets.end();
            if (targets)
                row.search_revincludes.push_back(std::string(source) + ":" + p->code);
        }
    }
}

} // namespace

std::span<const type_capability> type_capabilities() {
    static const std::vector<type_capability> table = [] {
        std::vector<type_capability> rows;
        for (std::string_view type : fhir::supported_types()) {
            // AuditEvent is the server's audit log: read and searched, never written.
            if (type == "AuditEvent") {
                rows.push_back({type,
                                {interaction::read, interaction::search_type},
                                {{"patient", "reference", "The citizen whose record was accessed: Patient/{nhs}"},
                                 {"agent", "reference",
                                  "Who accessed: the user's SDS id or the organisation's ODS code, as a plain "
                                  "value or Practitioner/{id} or Organization/{ods}"},
                                 {"date", "date", "When: with the prefixes eq, ge, gt, le, lt"}},
                                {},
                                {}});
                continue;
            }
            type_capability row{type,
                                {interaction::read, interaction::vread, interaction::update, interaction::patch,
                                 interaction::delete_, interaction::history_instance, interaction::history_type,
                                 interaction::create, interaction::search_type},
                                {},
                                {},
                                {}};
            add_search(row);
            rows.push_back(std::move(row));
        }
        return rows;
    }();
    return table;
}

const type_capability* find_type(std::string_view type) noexcept {
    for (const auto& row : type_capabilities())
        if (row.type == type)
            return &row;
    return nullptr;
}

std::span<const interaction> system_interactions() noexcept {
    static constexpr interaction served[] = {interaction::transaction, interaction::history_system,
                                             interaction::search_system, interaction::capabilities};
    return served;
}

} // namespace caregate::rest
