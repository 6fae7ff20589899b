// The ODS code: how the NHS Organisation Data Service names an organisation (a GP practice "A81001",
// a trust "RX1"), and so how caregate names the organisation acting and the one a resource links to.
#pragma once

#include <string_view>

namespace caregate::fhir {

/// Identifier.system of an ODS organisation code.
inline constexpr std::string_view ods_code_system = "https://fhir.nhs.uk/Id/ods-organization-code";

/// True for 3 to 10 upper-case ASCII letters and digits: the shape of every ODS organisation code
/// (practices, trusts, sites, local authorities).
constexpr bool is_ods_code(std::string_view text) noexcept {
    if (text.size() < 3 || text.size() > 10)
        return false;
    for (char c : text)
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    return true;
}

} // namespace caregate::fhir
