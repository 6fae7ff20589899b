// Tests for fhir_model/src/primitives.cpp: the hand-written R4 primitive rules, edge by edge.
#include "../../fhir_model/src/primitives.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace caregate::fhir::detail;

TEST_CASE("primitives: date is YYYY, YYYY-MM or YYYY-MM-DD with a real day (leap years included)") {
    for (const char* ok : {"0001", "1980", "1980-01", "1980-12-31", "2000-02-29", "2024-02-29"})
        CHECK_MESSAGE(is_valid_date(ok), ok);
    for (const char* bad : {"", "0000", "198", "19800", "1980-1", "1980-00", "1980-13", "1980-01-00", "1980-01-32",
                            "1900-02-29", "2023-02-29", "1980-04-31", "1980-01-01T00:00:00Z", "1980/01/01"})
        CHECK_MESSAGE(!is_valid_date(bad), bad);
}

TEST_CASE("primitives: dateTime needs a zone when it has a time; instant needs everything") {
    for (const char* ok : {"2020", "2020-03", "2020-03-04", "2020-03-04T10:11:12Z", "2020-03-04T10:11:12.123456+14:00",
                           "2020-03-04T23:59:60-13:59"})
        CHECK_MESSAGE(is_valid_date_time(ok), ok);
    for (const char* bad : {"2020-03-04T10:11:12", "2020-03-04T10:11Z", "2020-03-04T10:11:12.Z", "2020-03-04T10:11:12+14:30",
                            "2020-03-04 10:11:12Z", "2020-03-04T10:11:12z", "2020-03-04T10:11:12+0100"})
        CHECK_MESSAGE(!is_valid_date_time(bad), bad);
    CHECK(is_valid_instant("2020-03-04T10:11:12.5Z"));
    CHECK_FALSE(is_valid_instant("2020-03-04"));
    CHECK_FALSE(is_valid_instant("2020-03-04T10:11:12"));
    CHECK(is_valid_time("00:00:00"));
    CHECK(is_valid_time("23:59:59.999"));
    CHECK_FALSE(is_valid_time("23:59"));
    CHECK_FALSE(is_valid_time("23:60:00"));
    CHECK_FALSE(is_valid_time("10:00:00Z"));
}

TEST_CASE("primitives: numbers") {
    for (const char* ok : {"0", "-0", "1.10", "0.0000000000000000000001", "-12.5e-3", "6E+2"})
        CHECK_MESSAGE(is_valid_decimal(ok), ok);
    for (const char* bad : {"", "01", "1.", ".5", "+1", "1e", "--1", "1.5x", "NaN"})
        CHECK_MESSAGE(!is_valid_decimal(bad), bad);
    CHECK(is_valid_integer("2147483647"));
    CHECK(is_valid_integer("-2147483648"));
    CHECK_FALSE(is_valid_integer("2147483648"));
    CHECK_FALSE(is_valid_integer("-2147483649"));
    CHECK_FALSE(is_valid_integer("01"));
    CHECK_FALSE(is_valid_integer("1.0"));
    CHECK(is_valid_positive_int("1"));
    CHECK_FALSE(is_valid_positive_int("0"));
    CHECK(is_valid_unsigned_int("0"));
    CHECK_FALSE(is_valid_unsigned_int("-1"));
}

TEST_CASE("primitives: strings, ids, codes, uris, oids, uuids, base64") {
    CHECK(is_valid_string("tab\tcr\rlf\n"));
    CHECK_FALSE(is_valid_string(std::string("a\x01", 2)));
    CHECK_FALSE(is_valid_string(std::string("a\0b", 3)));
    CHECK_FALSE(is_valid_string(""));
    CHECK(is_valid_id("A-z.0"));
    CHECK(is_valid_id(std::string(64, 'a')));
    CHECK_FALSE(is_valid_id(std::string(65, 'a')));
    CHECK_FALSE(is_valid_id("a/b"));
    CHECK(is_valid_code("a b"));
    CHECK_FALSE(is_valid_code("a  b"));
    CHECK_FALSE(is_valid_code("a "));
    CHECK(is_valid_uri("urn:x:y"));
    CHECK_FALSE(is_valid_uri("http://a b"));
    CHECK(is_valid_oid("urn:oid:1.2.840.10008"));
    CHECK_FALSE(is_valid_oid("urn:oid:1"));
    CHECK_FALSE(is_valid_oid("urn:oid:1.02"));
    CHECK_FALSE(is_valid_oid("urn:oid:3.1"));
    CHECK(is_valid_uuid("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"));
    CHECK_FALSE(is_valid_uuid("c757873d-ec9a-4326-a141-556f43239520"));
    CHECK(is_valid_base64("aGVsbG8="));
    CHECK(is_valid_base64("aGVs\nbG8="));
    CHECK_FALSE(is_valid_base64("aGVsbG8"));
    CHECK_FALSE(is_valid_base64("aG=sbG8="));
    CHECK(is_valid_xhtml("<div xmlns=\"http://www.w3.org/1999/xhtml\"/>"));
    CHECK_FALSE(is_valid_xhtml("<p>x</p>"));
}
