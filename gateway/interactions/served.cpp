// The spec's codes for interactions, and lookups in a service description.
#include "interactions/served.hpp"

#include <algorithm>

namespace caregate::interactions {

std::string_view spec_code(interaction kind) noexcept {
    switch (kind) {
    case interaction::read: return "read";
    case interaction::vread: return "vread";
    case interaction::update: return "update";
    case interaction::patch: return "patch";
    case interaction::delete_: return "delete";
    case interaction::history_instance: return "history-instance";
    case interaction::history_type: return "history-type";
    case interaction::create: return "create";
    case interaction::search_type: return "search-type";
    case interaction::transaction: return "transaction";
    case interaction::history_system: return "history-system";
    case interaction::search_system: return "search-system";
    case interaction::capabilities: return "capabilities";
    case interaction::search_compartment: return "search-compartment";
    case interaction::everything: return "everything";
    case interaction::document: return "document";
    case interaction::export_: return "export";
    case interaction::export_status: return "export-status";
    case interaction::export_file: return "export-file";
    case interaction::smart_configuration: return "smart-configuration";
    }
    return "";
}

bool served_type::allows(interaction kind) const noexcept {
    return std::find(interactions.begin(), interactions.end(), kind) != interactions.end();
}

const served_type* service_description::find(std::string_view type) const noexcept {
    for (const served_type& row : types)
        if (row.type == type)
            return &row;
    return nullptr;
}

} // namespace caregate::interactions
