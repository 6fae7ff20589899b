// Reading transaction and batch Bundles (fhir_model/bundle.hpp): entries, their requests, and their
// resources kept exactly as sent; every malformed shape refused naming the element.
#include "fhir_model/bundle.hpp"

#include <doctest/doctest.h>

using namespace caregate::fhir;

TEST_CASE("a transaction's entries are read with their requests and exact resources") {
    const std::string body = R"({"resourceType":"Bundle","type":"transaction","entry":[
        {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
         "resource":{"resourceType":"Observation","status":"final","valueQuantity":{"value":1.10}},
         "request":{"method":"POST","url":"Observation","ifNoneExist":"identifier=a|b"}},
        {"request":{"method":"DELETE","url":"Observation/x","ifMatch":"W/\"2\""}},
        {"request":{"method":"GET","url":"Patient?identifier=x"}}]})";
    auto read = read_bundle_request(body, 10);
    REQUIRE(read.ok());
    CHECK(read->type == "transaction");
    REQUIRE(read->entries.size() == 3);
    CHECK(read->entries[0].full_url == "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a");
    CHECK(read->entries[0].method == "POST");
    CHECK(read->entries[0].if_none_exist == "identifier=a|b");
    REQUIRE(read->entries[0].resource);
    CHECK(*read->entries[0].resource ==
          R"({"resourceType":"Observation","status":"final","valueQuantity":{"value":1.10}})");
    CHECK(read->entries[1].if_match == "W/\"2\"");
    CHECK_FALSE(read->entries[1].resource);
    CHECK(read->entries[2].url == "Patient?identifier=x");
}

TEST_CASE("malformed transaction and batch Bundles are refused naming the element") {
    auto fails = [](const std::string& body, category kind, const std::string& expression) {
        auto read = read_bundle_request(body, 2);
        REQUIRE_FALSE(read.ok());
        CHECK(read.failure().kind == kind);
        CHECK(read.failure().issues.at(0).expression == expression);
    };
    fails("[]", category::malformed, "Bundle");
    fails(R"({"resourceType":"Patient"})", category::malformed, "Bundle");
    fails(R"({"resourceType":"Bundle","type":"collection"})", category::malformed, "Bundle.type");
    fails(R"({"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}}]})",
          category::malformed, "Bundle.entry[0].request");
    fails(R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"TRACE","url":"x"}}]})",
          category::malformed, "Bundle.entry[0].request.method");
    fails(R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET"}}]})", category::malformed,
          "Bundle.entry[0].request.url");
    fails(R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"POST","url":"Patient"}}]})",
          category::malformed, "Bundle.entry[0].resource");
    fails(R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"a"}},)"
          R"({"request":{"method":"GET","url":"b"}},{"request":{"method":"GET","url":"c"}}]})",
          category::too_large, "Bundle.entry");
    fails(R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"a"}},)"
          R"({"request":{"method":"GET","url":"a","url":"b"}}]})",
          category::malformed, "");
}
