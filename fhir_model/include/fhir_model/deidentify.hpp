// De-identification of a stored resource for a pseudonymised export (README, "Population health
// exports"): pseudonyms in place of NHS numbers, ids and references, then a declarative profile of
// what to remove or cut (gateway/export/default-deidentification.json is the shipped one). Works on
// the stored canonical JSON; the pseudonyms themselves (keyed per recipient) are the caller's.
//
// Invariants (tests/fhir_model/deidentify_test.cpp):
//  1. No NHS number leaves: a Patient's id, every literal reference to a Patient, and every
//     Identifier of the NHS-number system become the citizen's pseudonym, whatever the profile says.
//  2. Every resource id and every literal reference to an item (relative, versioned or absolute)
//     becomes the item's pseudonym, so references among one recipient's exports still resolve and
//     nothing an id spells (an NHS number in an id) leaks. Fragment references (#x) stay.
//  3. Contained resources follow the same rules as the resource that holds them.
//  4. Numbers keep their exact text; everything the profile does not touch is kept as stored.
#pragma once

#include "fhir_model/error.hpp"

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::fhir {

/// The system of the identifier that carries a citizen's pseudonym in place of their NHS number.
inline constexpr std::string_view pseudonym_system = "https://fhir.caregate.nhs.uk/Id/pseudonym";

/// What a profile says to do beyond the pseudonyms: keys to remove or cut, found anywhere, or by path
/// from a type's root.
class deidentification_profile {
public:
    /// Parses a profile (default-deidentification.json says how one reads). Every rule needs a
    /// comment saying why. Errors: invalid, naming the fault.
    static result<deidentification_profile> parse(std::string_view json);

    enum class action {
        remove,            ///< the key goes
        year_month,        ///< a date (or dateTime) cut to YYYY-MM
        postcode_district, ///< a UK postcode cut to its outward code ("LS1 4AP" -> "LS1")
        keep_systems,      ///< an array of Identifiers keeps only those of `systems`
    };
    struct rule {
        std::vector<std::string> path; ///< one key (everywhere) or the keys from a type's root
        std::string within;            ///< everywhere: only in an object held under this key
        action what = action::remove;
        std::vector<std::string> systems;
    };
    const std::vector<rule>& everywhere() const noexcept { return everywhere_; }
    /// The rules by path of `type`; empty when it has none.
    const std::vector<rule>& for_type(std::string_view type) const;

private:
    std::vector<rule> everywhere_;
    std::map<std::string, std::vector<rule>, std::less<>> types_;
};

/// The pseudonym of an item ("Patient" and an NHS number for a citizen), as the caller keys it.
using pseudonym_function = std::function<std::string(std::string_view type, std::string_view id)>;

/// `canonical_json` (a stored resource) with invariants 1 to 4 applied and then `profile`'s rules.
/// Errors: malformed (not a JSON object with a resourceType: a bug in the caller).
result<std::string> deidentify_resource(std::string_view canonical_json, const deidentification_profile& profile,
                                        const pseudonym_function& pseudonym);

} // namespace caregate::fhir
