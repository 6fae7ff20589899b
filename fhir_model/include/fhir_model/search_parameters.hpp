// The R4 search parameters of the supported types, as data generated from the official
// SearchParameter definitions (fhir_model/generated/search_parameters.cpp), each with its FHIRPath
// expression parsed once. Not the matching of search values (search_values.hpp) nor query planning.
#pragma once

#include "fhir_model/fhirpath.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace caregate::fhir {

enum class search_param_type : std::uint8_t { number, date, string, token, reference, composite, quantity, uri, special };

std::string_view to_string(search_param_type type) noexcept;

struct search_component {
    std::string definition; ///< the component parameter's canonical URL
    std::string code;       ///< that parameter's code ("code", "value-quantity")
    search_param_type type = search_param_type::token;
    fhirpath_expression expression; ///< relative to the composite's value
};

struct search_parameter {
    std::string base;       ///< "Patient", or "Resource" for the common parameters
    std::string code;       ///< "family", "_id"
    search_param_type type = search_param_type::token;
    fhirpath_expression expression; ///< only the alternatives of the base type
    std::vector<std::string> targets; ///< reference target types
    std::vector<search_component> components;
    /// The parameters of the same type whose values together are exactly this one's: R4 defines
    /// Observation's combo-code as `Observation.code | Observation.component.code`, the union of
    /// code and component-code, and Patient's phonetic with name's own expression. Such a parameter
    /// is stored as them and searched through them (storage keeps no index rows of its own). Empty
    /// for every other parameter, and for every reference (chains and includes read a reference
    /// parameter's own rows).
    std::vector<const search_parameter*> union_of;
    /// For a reference parameter that is another's references to one type (R4's Observation patient
    /// is `Observation.subject.where(resolve() is Patient)`): that parameter, and the type in
    /// `narrowed_to`. Stored as that parameter's rows whose target is of the type, as the index
    /// records what resolve() gives (search_values.hpp); null for every other parameter.
    const search_parameter* narrows = nullptr;
    std::string narrowed_to;

    /// False for a union or a narrowing: its values are other parameters' rows.
    bool has_own_values() const noexcept { return union_of.empty() && narrows == nullptr; }
};

/// A parameter the R4 definitions name for a supported type but this server cannot evaluate.
struct unsupported_search_parameter {
    std::string base, code, type, expression, reason;
};

/// The supported parameters of `resource_type`, its own then the common ones; empty for an unknown type.
const std::vector<const search_parameter*>& search_parameters_for(std::string_view resource_type);
/// One parameter of a type (own or common) by code, or nullptr.
const search_parameter* find_search_parameter(std::string_view resource_type, std::string_view code);
/// Every supported parameter (own parameters of each type and the common ones, base "Resource").
const std::vector<search_parameter>& all_search_parameters();
const std::vector<unsupported_search_parameter>& unsupported_search_parameters();

} // namespace caregate::fhir
