// The capability table, built from fhir_model's list of supported types.
#include "rest/capabilities.hpp"

#include "fhir_model/resource.hpp"

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
    case interaction::capabilities: return "capabilities";
    }
    return "";
}

bool type_capability::allows(interaction kind) const noexcept {
    return std::find(interactions.begin(), interactions.end(), kind) != interactions.end();
}

std::span<const type_capability> type_capabilities() {
    static const std::vector<type_capability> table = [] {
        std::vector<type_capability> rows;
        for (std::string_view type : fhir::supported_types()) {
            // AuditEvent is the server's audit log (DESIGN.md section 4): read and searched, never written.
            if (type == "AuditEvent")
                rows.push_back({type,
                                {interaction::read, interaction::search_type},
                                {{"patient", "reference", "The citizen whose record was accessed: Patient/{nhs}"},
                                 {"agent", "reference",
                                  "Who accessed: the user's SDS id or the organisation's ODS code, as a plain "
                                  "value or Practitioner/{id} or Organization/{ods}"},
                                 {"date", "date", "When: with the prefixes eq, ge, gt, le, lt"}}});
            else
                rows.push_back({type,
                                {interaction::read, interaction::vread, interaction::update, interaction::delete_,
                                 interaction::history_instance, interaction::history_type, interaction::create},
                                {}});
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
    static constexpr interaction served[] = {interaction::history_system, interaction::capabilities};
    return served;
}

} // namespace caregate::rest
