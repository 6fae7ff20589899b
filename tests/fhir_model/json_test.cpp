// Tests for fhir_model/src/json.cpp: exact numbers, and the JSON that FHIR forbids.
#include "../../fhir_model/src/json.hpp"

#include <doctest/doctest.h>

#include <string>

namespace detail = caregate::fhir::detail;
using caregate::fhir::category;

namespace {
std::string round_trip(const std::string& text) {
    rapidjson::Document doc;
    auto parsed = detail::parse_json(text, doc);
    REQUIRE(parsed.ok());
    return detail::write_json(doc);
}
caregate::fhir::error parse_failure(const std::string& text) {
    rapidjson::Document doc;
    auto parsed = detail::parse_json(text, doc);
    REQUIRE_FALSE(parsed.ok());
    return parsed.failure();
}
} // namespace

TEST_CASE("json: decimals round-trip exactly as written (1.10 stays 1.10)") {
    CHECK(round_trip(R"({"value":1.10})") == R"({"value":1.10})");
    CHECK(round_trip(R"({"value":0.0000000000000000000001})") == R"({"value":0.0000000000000000000001})");
    CHECK(round_trip(R"([-0,12345678901234567890123,6.02e23])") == R"([-0,12345678901234567890123,6.02e23])");
}

TEST_CASE("json: numbers are readable as their text, strings are not numbers") {
    rapidjson::Document doc;
    REQUIRE(detail::parse_json(R"({"n":1.50,"s":"1.50"})", doc).ok());
    REQUIRE(detail::number_text(doc["n"]));
    CHECK(*detail::number_text(doc["n"]) == "1.50");
    CHECK_FALSE(detail::number_text(doc["s"]));
    CHECK(detail::is_string(doc["s"]));
    CHECK_FALSE(detail::is_string(doc["n"]));
    CHECK(detail::text_of(doc["n"]) == "1.50");
}

TEST_CASE("json: duplicate keys are malformed") {
    auto failure = parse_failure(R"({"a":1,"b":{"c":1,"c":2}})");
    CHECK(failure.kind == category::malformed);
    CHECK(failure.issues.at(0).code == "structure");
}

TEST_CASE("json: invalid UTF-8 is malformed") {
    CHECK(parse_failure("{\"a\":\"\xC3\x28\"}").kind == category::malformed);
    CHECK(parse_failure("{\"a\":\"\xFF\"}").kind == category::malformed);
    // Every kind of ill-formed sequence (RFC 3629), in a value, in a key, after eight ASCII bytes (the
    // checker's word at a time) and cut off at the end of the text.
    for (const std::string bad : {"\x80", "\xBF", "\xC0\xAF", "\xC1\xBF", "\xC2", "\xC2\x41", "\xE0\x80\xAF",
                                  "\xE0\x9F\xBF", "\xED\xA0\x80", "\xED\xBF\xBF", "\xEF\xBF", "\xF0\x8F\xBF\xBF",
                                  "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", "\xFE", "\xE1\x80\x41"}) {
        CAPTURE(bad);
        CHECK(parse_failure("{\"a\":\"" + bad + "\"}").kind == category::malformed);
        CHECK(parse_failure("{\"" + bad + "\":1}").kind == category::malformed);
        CHECK(parse_failure("{\"a\":\"abcdefghijklmnop" + bad + "\"}").kind == category::malformed);
        CHECK(parse_failure("{\"a\":\"x\"}" + bad).kind == category::malformed);
    }
    CHECK(parse_failure("{\"a\":\"\xED\xA0\x80\"}").issues.at(0).diagnostics ==
          "the body is not valid JSON: it is not valid UTF-8 (at byte 6)");
    // The edges of what is well formed.
    rapidjson::Document doc;
    for (const std::string good : {"\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
                                   "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "caf\xC3\xA9 na\xC3\xAFve 12345678"}) {
        CAPTURE(good);
        REQUIRE(detail::parse_json("{\"a\":\"" + good + "\"}", doc).ok());
        CHECK(std::string(doc["a"].GetString()) == good);
    }
}

TEST_CASE("json: nesting deeper than the limit is malformed") {
    const std::string deep = std::string(detail::max_json_depth + 1, '[') + std::string(detail::max_json_depth + 1, ']');
    CHECK(parse_failure(deep).kind == category::malformed);
    const std::string fine = std::string(detail::max_json_depth, '[') + std::string(detail::max_json_depth, ']');
    rapidjson::Document doc;
    CHECK(detail::parse_json(fine, doc).ok());
}

TEST_CASE("json: an array of more items than the limit is malformed (too-costly), one of the limit is not") {
    auto array_of = [](std::size_t n) {
        std::string text = "[";
        for (std::size_t i = 0; i < n; ++i)
            text += i ? ",0" : "0";
        return text + "]";
    };
    auto refused = parse_failure(R"({"a":[)" + array_of(detail::max_json_array_items + 1) + "]}");
    CHECK(refused.kind == category::malformed);
    CHECK(refused.issues.at(0).code == "too-costly");
    CHECK(refused.issues.at(0).diagnostics.find("array") != std::string::npos);
    rapidjson::Document doc;
    CHECK(detail::parse_json(array_of(detail::max_json_array_items), doc).ok());
}

TEST_CASE("json: a document of more values than the limit is malformed, however they are spread over arrays") {
    // Arrays of 1,000 items each, none over the array limit: only the total passes the bound.
    std::string inner = "[";
    for (int i = 0; i < 1000; ++i)
        inner += i ? ",0" : "0";
    inner += "]";
    std::string text = "[";
    for (std::size_t i = 0; i < detail::max_json_values / 1000; ++i)
        text += (i ? "," : "") + inner;
    text += "]";
    auto refused = parse_failure(text);
    CHECK(refused.kind == category::malformed);
    CHECK(refused.issues.at(0).diagnostics.find("values") != std::string::npos);
}

TEST_CASE("json: trailing garbage after the value is malformed, trailing white space is not") {
    CHECK(parse_failure(R"({"a":1} x)").kind == category::malformed);
    CHECK(parse_failure(R"({"a":1}{"b":2})").kind == category::malformed);
    CHECK(round_trip("{\"a\":1} \n\t") == R"({"a":1})");
}

TEST_CASE("json: not JSON at all is malformed with code structure") {
    auto failure = parse_failure("{resourceType: Patient}");
    CHECK(failure.kind == category::malformed);
    CHECK(failure.issues.at(0).code == "structure");
}

TEST_CASE("json: U+0001, the number marker, is refused in strings and keys so no string can pose as a number") {
    rapidjson::Document doc;
    CHECK_FALSE(caregate::fhir::detail::parse_json(R"({"value":"\u00011.5"})", doc).ok());
    CHECK_FALSE(caregate::fhir::detail::parse_json(R"({"\u0001":1})", doc).ok());
    CHECK(caregate::fhir::detail::parse_json(R"({"value":"\u0002"})", doc).ok()); // left to the validator
}

TEST_CASE("json: an unpaired surrogate escape is refused in strings and keys, a pair is one character") {
    // Found by tests/fuzz/fuzz_json: RapidJSON 1.1.0 decoded a lone \uDC00-\uDFFF to bytes that are not
    // UTF-8, so a resource was stored that could not be parsed again.
    rapidjson::Document doc;
    for (const char* text : {R"({"value":"a\udc00b"})", R"({"value":"\uDFFF"})", R"({"a\ude4a":1})",
                             R"({"value":"\ud800"})", R"({"value":"\ud800x"})", R"({"value":"\ude00\ud83d"})"}) {
        CAPTURE(text);
        auto parsed = caregate::fhir::detail::parse_json(text, doc);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.failure().kind == category::malformed);
    }
    CHECK(caregate::fhir::detail::parse_json(R"({"a":"\udc00"})", doc).failure().issues.at(0).diagnostics ==
          "the JSON has an unpaired surrogate (an escape \\uDC00 to \\uDFFF) in a string");
    REQUIRE(caregate::fhir::detail::parse_json(R"({"value":"\ud83d\ude00 \ud7ff\ue000"})", doc).ok());
    CHECK(std::string(doc["value"].GetString()) == "\xF0\x9F\x98\x80 \xED\x9F\xBF\xEE\x80\x80");
}

TEST_CASE("json: a NUL, raw or written \\u0000, is refused in strings and keys") {
    rapidjson::Document doc;
    CHECK_FALSE(caregate::fhir::detail::parse_json(R"({"value":"a\u0000b"})", doc).ok());
    CHECK_FALSE(caregate::fhir::detail::parse_json(R"({"a\u0000":1})", doc).ok());
    CHECK_FALSE(caregate::fhir::detail::parse_json(std::string("{\"value\":\"a\0b\"}", 15), doc).ok());
}
