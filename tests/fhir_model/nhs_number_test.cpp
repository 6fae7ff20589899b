// Tests for fhir_model/src/nhs_number.cpp: the NHS number rules (README, "Identity").
#include "fhir_model/nhs_number.hpp"

#include <doctest/doctest.h>

#include <string>

using caregate::fhir::is_valid_nhs_number;

TEST_CASE("nhs_number: the documented test numbers pass the Modulus 11 check") {
    for (const char* number : {"9000000009", "9000000017", "9000000025", "9000000033", "9693632109", "9912003888"})
        CHECK_MESSAGE(is_valid_nhs_number(number), number);
}

TEST_CASE("nhs_number: a wrong check digit is invalid (9000000000)") {
    CHECK_FALSE(is_valid_nhs_number("9000000000"));
    CHECK_FALSE(is_valid_nhs_number("9000000018"));
}

TEST_CASE("nhs_number: ten equal digits are invalid even where the check digit fits") {
    for (char d = '0'; d <= '9'; ++d)
        CHECK_FALSE(is_valid_nhs_number(std::string(10, d)));
}

TEST_CASE("nhs_number: a check digit of 10 is never valid") {
    // Digits 1..9 "000000006" weigh 6 * 2 = 12; 12 mod 11 = 1, so the check would be 10: no tenth digit fits.
    for (char d = '0'; d <= '9'; ++d)
        CHECK_FALSE(is_valid_nhs_number(std::string("000000006") + d));
}

TEST_CASE("nhs_number: exactly ten ASCII digits") {
    CHECK_FALSE(is_valid_nhs_number(""));
    CHECK_FALSE(is_valid_nhs_number("900000000"));
    CHECK_FALSE(is_valid_nhs_number("90000000099"));
    CHECK_FALSE(is_valid_nhs_number("900000000A"));
    CHECK_FALSE(is_valid_nhs_number("900 000 0009"));
    CHECK_FALSE(is_valid_nhs_number("900-000-00"));
}
