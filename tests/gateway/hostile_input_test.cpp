// Hostile bodies at the API (the reliability issue): each is refused with 400 and an
// OperationOutcome, and nothing of it is stored.
#include "application_fixture.hpp"

using namespace caregate;
using namespace caregate::testing;

TEST_CASE("hostile bodies: invalid UTF-8, a NUL byte, duplicate keys, an overlong number, deep nesting get 400 and store nothing") {
    application_fixture f;
    const std::string nhs = "9000000009";
    REQUIRE(f.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")")).status == 201);
    const std::string head = R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/9000000009"},)";
    const std::vector<std::pair<std::string, std::string>> bodies{
        {"invalid UTF-8", head + "\"valueString\":\"caf\xC3\x28\"}"},
        {"a raw NUL byte", head + std::string("\"valueString\":\"a\0b\"}", 20)},
        {"an escaped NUL", head + R"("valueString":"a\u0000b"})"},
        {"duplicate keys", head + R"("valueString":"a","valueString":"b"})"},
        {"an overlong number", head + R"("valueQuantity":{"value":)" + std::string(5000, '9') + "}}"},
        {"a number beyond any double", head + R"("valueQuantity":{"value":1e400}})"},
        {"deep nesting", head + R"("extension":)" + std::string(2000, '[') + std::string(2000, ']') + "}"},
    };
    for (const auto& [description, body] : bodies) {
        const std::string& what = description; // clang before 16 captures no structured binding (CAPTURE)
        CAPTURE(what);
        auto refused = f.call("POST", "/Observation", body);
        CHECK(refused.status == 400);
        auto outcome = json_of(refused);
        CHECK(std::string(outcome["resourceType"].GetString()) == "OperationOutcome");
    }
    auto found = f.call("GET", "/Observation?patient=" + nhs + "&_total=accurate");
    REQUIRE(found.status == 200);
    CHECK(json_of(found)["total"].GetInt() == 0);
}

TEST_CASE("search limits: too many parameters or includes, or a chain too long, get 400 with an OperationOutcome") {
    application_fixture f;
    std::string many = "/Observation?";
    for (int i = 0; i < 65; ++i)
        many += "code=c" + std::to_string(i) + "&";
    std::string includes = "/Observation?";
    for (int i = 0; i < 17; ++i)
        includes += "_include=Observation:subject&";
    for (const std::string& target : {many, includes, std::string("/Observation?subject:Patient.organization:Organization.partof:Organization.partof.name=x")}) {
        CAPTURE(target);
        auto refused = f.call("GET", target);
        CHECK(refused.status == 400);
        CHECK(std::string(json_of(refused)["resourceType"].GetString()) == "OperationOutcome");
    }
}

TEST_CASE("size limits inside a body: a string over FHIR's 1 MiB gets 422, an array over 100,000 items 400, each with an OperationOutcome, and nothing is stored") {
    application_fixture f;
    const std::string nhs = "9000000009";
    REQUIRE(f.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")")).status == 201);
    const std::string head = R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/9000000009"},)";

    auto long_string = f.call("POST", "/Observation", head + R"("valueString":")" + std::string(1'048'577, 'a') + "\"}");
    CHECK(long_string.status == 422);
    auto outcome = json_of(long_string);
    CHECK(text_at(outcome, "issue", 0, "code") == "too-long");
    CHECK(text_at(outcome, "issue", 0, "expression", 0) == "Observation.valueString");
    CHECK(long_string.body.size() < 4096); // the diagnostics do not echo the value

    std::string items;
    for (int i = 0; i <= 100'000; ++i)
        items += i ? R"(,{"text":"n"})" : R"({"text":"n"})";
    auto long_array = f.call("POST", "/Observation", head + R"("note":[)" + items + "]}");
    CHECK(long_array.status == 400);
    CHECK(text_at(json_of(long_array), "issue", 0, "code") == "too-costly");

    auto found = f.call("GET", "/Observation?patient=" + nhs + "&_total=accurate");
    REQUIRE(found.status == 200);
    CHECK(json_of(found)["total"].GetInt() == 0);
}
