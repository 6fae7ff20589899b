// Composition/{id}/$document (gateway/interactions/document.cpp) through the handle() seam with the
// shipped policy: the document Bundle's shape and contents, a version-specific entry, and the refusals:
// a section the caller may not see (or that is not held) makes a 422 naming the Composition's element,
// never a partial document, and tells nothing more of the hidden item; a Composition the caller may
// not see is 404; persist and graph are refused.
#include "application_fixture.hpp"

#include <rapidjson/document.h>

#include <set>

using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009"; // registered with the GP practice A81001
const std::string base = test_base_url;

struct document_fixture : application_fixture {
    std::string author;

    document_fixture() {
        REQUIRE(call("PUT", std::string("/Patient/") + tom,
                     patient_json(tom, R"("id":"9000000009","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
        author = create_as(system_identity(), "Practitioner",
                           R"({"resourceType":"Practitioner","name":[{"family":"Okafor","prefix":["Dr"]}]})");
    }

    std::string create_as(const identity& who, const std::string& type, const std::string& body) {
        auto r = call_as(who, "POST", "/" + type, body);
        REQUIRE_MESSAGE(r.status == 201, r.body);
        return id_of(r);
    }

    std::string condition(const identity& who, const std::string& text, const std::string& meta = {}) {
        return create_as(who, "Condition",
                         R"({"resourceType":"Condition",)" + (meta.empty() ? "" : meta + ",") +
                             R"("code":{"text":")" + text + R"("},"subject":{"reference":"Patient/9000000009"}})");
    }

    /// A discharge summary by the GP's practitioner: each section's entries as given.
    std::string composition(const std::vector<std::vector<std::string>>& sections) {
        std::string json =
            R"({"resourceType":"Composition","status":"final",)"
            R"("type":{"coding":[{"system":"http://loinc.org","code":"18842-5","display":"Discharge summary"}]},)"
            R"("subject":{"reference":"Patient/9000000009"},"date":"2026-11-30T10:00:00Z",)"
            R"("author":[{"reference":"Practitioner/)" + author + R"("}],"title":"Discharge summary")";
        if (sections.empty())
            return create_as(gp_clinician(), "Composition", json + "}");
        json += R"(,"section":[)";
        for (std::size_t i = 0; i < sections.size(); ++i) {
            json += (i ? "," : "") + std::string(R"({"title":"section )") + std::to_string(i) + R"(","entry":[)";
            for (std::size_t j = 0; j < sections[i].size(); ++j)
                json += (j ? "," : "") + std::string(R"({"reference":")") + sections[i][j] + R"("})";
            json += "]}";
        }
        return create_as(gp_clinician(), "Composition", json + "]}");
    }
};

std::string labelled_v() {
    return R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"V"}]})";
}

} // namespace

TEST_CASE("$document: the Composition first, then each item it references once, as a document Bundle") {
    document_fixture f;
    const auto problem = f.condition(gp_clinician(), "heart failure");
    const auto other = f.condition(gp_clinician(), "diabetes");
    const auto id = f.composition({{"Condition/" + problem, "Condition/" + other}, {"Condition/" + problem}});

    auto answer = f.call_as(gp_clinician(), "GET", "/Composition/" + id + "/$document");
    REQUIRE_MESSAGE(answer.status == 200, answer.body);
    CHECK(answer.header("Content-Type").starts_with("application/fhir+json"));
    auto bundle = json_of(answer);
    CHECK(std::string(bundle["type"].GetString()) == "document");
    CHECK(std::string(bundle["identifier"]["system"].GetString()) == "urn:ietf:rfc:3986");
    CHECK(std::string(bundle["identifier"]["value"].GetString()).starts_with("urn:uuid:"));
    CHECK(bundle.HasMember("timestamp"));
    const auto& entries = bundle["entry"];
    REQUIRE(entries.Size() == 5); // Composition, Patient, Practitioner, two Conditions
    CHECK(std::string(entries[0]["resource"]["resourceType"].GetString()) == "Composition");
    CHECK(std::string(entries[0]["fullUrl"].GetString()) == base + "/Composition/" + id);
    std::set<std::string> full_urls;
    for (const auto& entry : entries.GetArray())
        full_urls.insert(entry["fullUrl"].GetString());
    CHECK(full_urls == std::set<std::string>{base + "/Composition/" + id, base + "/Patient/9000000009",
                                             base + "/Practitioner/" + f.author,
                                             base + "/Condition/" + problem, base + "/Condition/" + other});
    // Each assembly is a new document.
    auto again = json_of(f.call_as(gp_clinician(), "GET", "/Composition/" + id + "/$document"));
    CHECK(std::string(again["identifier"]["value"].GetString()) != bundle["identifier"]["value"].GetString());
}

TEST_CASE("$document: a version-specific reference brings that version") {
    document_fixture f;
    const auto problem = f.condition(gp_clinician(), "suspected fracture");
    REQUIRE(f.call_as(gp_clinician(), "PUT", "/Condition/" + problem,
                      R"({"resourceType":"Condition","id":")" + problem +
                          R"(","code":{"text":"fracture of the neck of femur"},"subject":{"reference":"Patient/9000000009"}})")
                .status == 200);
    const auto id = f.composition({{"Condition/" + problem + "/_history/1"}});
    auto answer = f.call_as(gp_clinician(), "GET", "/Composition/" + id + "/$document");
    REQUIRE_MESSAGE(answer.status == 200, answer.body);
    CHECK(answer.body.find("suspected fracture") != std::string::npos);
    CHECK(answer.body.find("neck of femur") == std::string::npos);
}

TEST_CASE("$document: a section the caller may not see, or that is not held, refuses the whole document alike") {
    document_fixture f;
    // The acute trust is treating Tom, so it sees the GP's summary, but not the GP's very restricted item.
    REQUIRE(f.call_as(acute_clinician(), "POST", "/Encounter",
                      R"({"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},)"
                      R"("subject":{"reference":"Patient/9000000009"},"serviceProvider":{"reference":"Organization/RX1"}})")
                .status == 201);
    const auto shared = f.condition(gp_clinician(), "asthma");
    const auto safeguarding = f.condition(gp_clinician(), "safeguarding concern", labelled_v());
    const auto hidden_doc = f.composition({{"Condition/" + shared}, {"Condition/" + safeguarding}});
    const auto absent_doc = f.composition({{"Condition/" + shared}, {"Condition/no-such-condition"}});

    CHECK(f.call_as(gp_clinician(), "GET", "/Composition/" + hidden_doc + "/$document").status == 200);
    REQUIRE(f.call_as(acute_clinician(), "GET", "/Composition/" + hidden_doc).status == 200);

    auto hidden = f.call_as(acute_clinician(), "GET", "/Composition/" + hidden_doc + "/$document");
    auto absent = f.call_as(acute_clinician(), "GET", "/Composition/" + absent_doc + "/$document");
    for (const auto* answer : {&hidden, &absent}) {
        CHECK(answer->status == 422);
        auto outcome = json_of(*answer);
        REQUIRE(std::string(outcome["resourceType"].GetString()) == "OperationOutcome");
        REQUIRE(outcome["issue"].Size() == 1);
        CHECK(std::string(outcome["issue"][0]["code"].GetString()) == "incomplete");
        CHECK(std::string(outcome["issue"][0]["expression"][0].GetString()) == "Composition.section[1].entry[0]");
        CHECK(answer->body.find("asthma") == std::string::npos); // nothing of the document ships
    }
    // The same words for a hidden item and an absent one; nothing of the hidden one.
    CHECK(json_of(hidden)["issue"][0]["diagnostics"] == json_of(absent)["issue"][0]["diagnostics"]);
    CHECK(hidden.body.find(safeguarding) == std::string::npos);
    CHECK(hidden.body.find("safeguarding") == std::string::npos);
}

TEST_CASE("$document: a Composition the caller may not see is 404, as one that does not exist; persist and graph are refused") {
    document_fixture f;
    const auto id = f.composition({});
    // The acute trust has no relationship with Tom.
    auto hidden = f.call_as(acute_clinician(), "GET", "/Composition/" + id + "/$document");
    auto missing = f.call_as(acute_clinician(), "GET", "/Composition/no-such-composition/$document");
    CHECK(hidden.status == 404);
    CHECK(missing.status == 404);
    CHECK(hidden.body.find(id) == std::string::npos);
    // Roles that may not read Compositions at all.
    CHECK(f.call_as(gp_admin(), "GET", "/Composition/" + id + "/$document").status == 403);
    CHECK(f.call_as(gp_clinician(), "GET", "/Composition/" + id + "/$document?persist=true").status == 400);
    CHECK(f.call_as(gp_clinician(), "GET", "/Composition/" + id + "/$document?graph=https://example.org/g").status == 400);
    CHECK(f.call_as(gp_clinician(), "GET", "/Composition/" + id + "/$document?_count=1").status == 400);
    CHECK(f.call_as(gp_clinician(), "GET", "/Composition/" + id + "/$document?persist=false").status == 200);
    CHECK(f.call_as(gp_clinician(), "POST", "/Composition/" + id + "/$document").status == 405);
}

TEST_CASE("$document: the CapabilityStatement lists it on Composition") {
    document_fixture f;
    auto statement = f.call("GET", "/metadata");
    REQUIRE(statement.status == 200);
    const std::string composition = R"({"type":"Composition")";
    const auto at = statement.body.find(composition);
    REQUIRE(at != std::string::npos);
    const auto next = statement.body.find(R"({"type":")", at + composition.size());
    const std::string row = statement.body.substr(at, next - at);
    CHECK(row.find("http://hl7.org/fhir/OperationDefinition/Composition-document") != std::string::npos);
}
