// A Binary's bytes and base64 (fhir_model/binary.hpp), and what prepare_resource makes of a Binary:
// its JSON without `data`, the bytes decoded beside it.
#include "fhir_model/binary.hpp"
#include "fhir_model/resource.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace caregate;

namespace {

std::string encoded(std::string_view bytes) {
    std::string out;
    fhir::base64_appender encode(out);
    encode.append(bytes);
    encode.finish();
    return out;
}

} // namespace

TEST_CASE("base64: RFC 4648's test vectors both ways, and whitespace in the text skipped") {
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"}};
    for (const auto& [bytes, text] : vectors) {
        CHECK(encoded(bytes) == text);
        CHECK(fhir::decode_base64(text) == bytes);
        CHECK(fhir::base64_size(bytes.size()) == text.size());
    }
    CHECK(fhir::decode_base64("Zm9v\nYmFy") == "foobar");
    CHECK(fhir::decode_base64(" Zm9v YmE= ") == "fooba");
    const std::string every_byte = [] {
        std::string all;
        for (int b = 0; b < 256; ++b)
            all.push_back(static_cast<char>(b));
        return all;
    }();
    CHECK(fhir::decode_base64(encoded(every_byte)) == every_byte);
}

TEST_CASE("base64_appender: the same text however the bytes are split into pieces") {
    std::string bytes;
    for (int i = 0; i < 1000; ++i)
        bytes.push_back(static_cast<char>(i * 37));
    const std::string whole = encoded(bytes);
    for (std::size_t piece : {1u, 2u, 4u, 5u, 7u, 64u, 333u, 999u}) {
        CAPTURE(piece);
        std::string out;
        fhir::base64_appender encode(out);
        for (std::size_t at = 0; at < bytes.size(); at += piece)
            encode.append(std::string_view(bytes).substr(at, piece));
        encode.finish();
        CHECK(out == whole);
    }
}

namespace {

/// The stored JSON with its bytes put back, given in pieces of `piece` bytes.
std::string with_data(std::string_view json, std::string_view bytes, std::size_t piece) {
    std::string out;
    fhir::binary_with_data resource(out, json, bytes.size());
    for (std::size_t at = 0; at < bytes.size(); at += piece)
        resource.append(bytes.substr(at, piece));
    resource.finish();
    return out;
}

} // namespace

TEST_CASE("prepare_resource: a Binary's data leaves its JSON for binary_bytes; binary_with_data puts it back") {
    const std::string bytes("\x00\x01%PDF\xff", 7);
    auto prepared = fhir::prepare_resource(R"({"resourceType":"Binary","contentType":"application/pdf","data":")" +
                                               encoded(bytes) + R"("})",
                                           "Binary");
    REQUIRE(prepared.ok());
    CHECK(prepared->content == R"({"resourceType":"Binary","contentType":"application/pdf"})");
    CHECK(prepared->binary_bytes == bytes);
    for (std::size_t piece : {1u, 2u, 7u})
        CHECK(with_data(prepared->content, prepared->binary_bytes, piece) ==
              R"({"resourceType":"Binary","contentType":"application/pdf","data":")" + encoded(bytes) + R"("})");
    CHECK(with_data(prepared->content, "", 1) == prepared->content);
    // Other types keep their base64 (an Attachment's data is the resource's own content).
    auto media = fhir::prepare_resource(R"({"resourceType":"Media","status":"completed","subject":{"reference":)"
                                        R"("Patient/9000000009"},"content":{"contentType":"text/plain","data":"Zm9v"}})",
                                        "Media");
    REQUIRE(media.ok());
    CHECK(media->binary_bytes.empty());
    CHECK(media->content.find("Zm9v") != std::string::npos);
}

TEST_CASE("raw_binary_json: a raw upload's headers as a Binary that validates; a bad one is refused as any") {
    auto raw = fhir::prepare_resource(fhir::raw_binary_json("", "application/pdf", "DocumentReference/d1"), "Binary");
    REQUIRE(raw.ok());
    CHECK(raw->content ==
          R"({"resourceType":"Binary","contentType":"application/pdf","securityContext":{"reference":"DocumentReference/d1"}})");
    auto with_id = fhir::prepare_resource(fhir::raw_binary_json("b1", "text/plain; charset=utf-8", ""), "Binary");
    REQUIRE(with_id.ok());
    CHECK(with_id->id == "b1");
    CHECK(fhir::describe_binary(raw->content).content_type == "application/pdf");
    CHECK(fhir::describe_binary(raw->content).security_context == "DocumentReference/d1");
    // A content type that is not a code (two spaces) is refused, naming the element.
    auto bad = fhir::prepare_resource(fhir::raw_binary_json("", "text/plain;  x", ""), "Binary");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.failure().issues.front().expression == "Binary.contentType");
}

TEST_CASE("listed_form: a Binary listed without its bytes, marked SUBSETTED; any other type as stored") {
    const std::string stored =
        R"({"resourceType":"Binary","id":"b1","meta":{"versionId":"1","lastUpdated":"2026-12-08T00:00:00Z"},"contentType":"text/plain"})";
    auto listed = fhir::listed_form("Binary", stored);
    REQUIRE(listed.ok());
    CHECK(listed->find("SUBSETTED") != std::string::npos);
    CHECK(listed->find("\"contentType\":\"text/plain\"") != std::string::npos);
    CHECK(fhir::stored_in_parts("Binary"));
    CHECK_FALSE(fhir::stored_in_parts("DocumentReference"));
    const std::string observation = R"({"resourceType":"Observation","id":"o1"})";
    CHECK(*fhir::listed_form("Observation", observation) == observation);
}
