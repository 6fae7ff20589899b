// The NHS number: the key of a citizen's record (Patient.id is the NHS number, as in PDS FHIR).
// Validation only; no I/O.
#pragma once

#include <string_view>

namespace caregate::fhir {

/// Identifier.system of an NHS number.
inline constexpr std::string_view nhs_number_system = "https://fhir.nhs.uk/Id/nhs-number";

/// True for exactly 10 ASCII digits whose Modulus 11 check digit is right (weights 10..2 on digits
/// 1..9; check = 11 - sum mod 11; 11 means 0; 10 is never valid) and that are not ten equal digits.
bool is_valid_nhs_number(std::string_view text) noexcept;

} // namespace caregate::fhir
