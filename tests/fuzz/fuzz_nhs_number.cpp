// Fuzzes fhir::is_valid_nhs_number against a second, independent reading of the rule
// (ten digits, Modulus 11 check digit with weights 10..2, not ten equal digits): any
// disagreement aborts, so the fuzzer checks the answer, not only that it does not crash.
#include "fhir_model/nhs_number.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

bool reference_rule(std::string_view text) {
    if (text.size() != 10 || text.find_first_not_of("0123456789") != std::string_view::npos)
        return false;
    if (text.find_first_not_of(text[0]) == std::string_view::npos)
        return false;
    int sum = 0;
    for (int i = 0; i < 9; ++i)
        sum += (text[i] - '0') * (10 - i);
    int remainder = sum % 11;
    int check = remainder == 0 ? 0 : 11 - remainder;
    return check != 10 && check == text[9] - '0';
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    bool answer = caregate::fhir::is_valid_nhs_number(input);
    if (answer != reference_rule(input)) {
        std::fprintf(stderr, "is_valid_nhs_number(\"%s\") is %d, the rule says %d\n", std::string(input).c_str(),
                     answer, !answer);
        std::abort();
    }
    return 0;
}
