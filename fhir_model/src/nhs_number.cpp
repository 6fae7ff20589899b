// NHS number validation: exactly ten digits, the Modulus 11 check digit (weights 10..2; 11 -> 0;
// 10 never valid), and not ten equal digits.
#include "fhir_model/nhs_number.hpp"

namespace caregate::fhir {

bool is_valid_nhs_number(std::string_view text) noexcept {
    if (text.size() != 10)
        return false;
    bool all_equal = true;
    for (char c : text) {
        if (c < '0' || c > '9')
            return false;
        all_equal = all_equal && c == text[0];
    }
    if (all_equal)
        return false;
    int sum = 0;
    for (int i = 0; i < 9; ++i)
        sum += (text[i] - '0') * (10 - i);
    int check = 11 - sum % 11;
    if (check == 11)
        check = 0;
    if (check == 10)
        return false;
    return check == text[9] - '0';
}

} // namespace caregate::fhir
