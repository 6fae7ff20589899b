// The keys and pseudonyms of pseudonymised exports (README, "Population health exports"): each
// recipient's key (caregate serve --export-keys), the keyed pseudonym of an item, and the shipped
// de-identification profile. What is removed or cut is fhir_model's (fhir_model/deidentify.hpp).
//
// Invariant (tests/gateway/export_test.cpp): a pseudonym is HMAC-SHA-256 of "Type/id" under the
// recipient's key, hex, 32 characters: the same citizen (or item) has the same pseudonym in every
// export to one recipient and an unrelated one for any other; without the key it can be neither
// reversed nor linked.
#pragma once

#include "fhir_model/deidentify.hpp"

#include <map>
#include <string>
#include <string_view>

namespace caregate::exports {

/// The recipients' keys: a JSON object from each recipient's ODS code to its key, hex, at least 32
/// bytes (64 hex digits).
class pseudonym_keys {
public:
    /// Throws std::invalid_argument naming the fault (never the key).
    static pseudonym_keys parse(std::string_view json);
    /// The recipient's key (raw bytes), or nullptr when it has none.
    const std::string* find(std::string_view recipient) const;

private:
    std::map<std::string, std::string, std::less<>> keys_;
};

/// The pseudonym of ("Type", "id") under `key`.
std::string pseudonym(const std::string& key, std::string_view type, std::string_view id);

/// The shipped profile (gateway/export/default-deidentification.json, compiled in).
const fhir::deidentification_profile& shipped_deidentification_profile();

} // namespace caregate::exports
