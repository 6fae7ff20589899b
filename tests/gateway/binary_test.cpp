// Binary through the handle() seam with the shipped policy (gateway/interactions/binary.hpp): written
// raw or as JSON, read raw or as JSON by Accept, its bytes exactly as sent; its visibility by its
// securityContext (the item's readers, and only while they may see it) or, with none, its writer's
// organisation alone, in reads, searches and history; bytes never in a Bundle; the references a
// DocumentReference's attachment makes to it checked in a transaction.
#include "application_fixture.hpp"

#include "fhir_model/binary.hpp"

#include <rapidjson/document.h>

using namespace caregate::testing;
namespace http = caregate::http;

namespace {

constexpr const char* tom = "9000000009"; // registered with the GP practice A81001

/// Bytes no text format would keep: every byte value, NULs and invalid UTF-8 among them, and more
/// than one stored part (store::binary_part_bytes) so that the parts' joins are read back too.
std::string awkward_bytes() {
    std::string bytes;
    const std::size_t size = caregate::storage::store::binary_part_bytes * 2 + 12345;
    bytes.reserve(size);
    for (std::size_t i = 0; i < size; ++i)
        bytes.push_back(static_cast<char>((i * 7 + i / 256) & 0xff));
    return bytes;
}

/// The id in a Location ("[base/]Type/id/_history/n") after `type_slash`.
std::string id_in(const std::string& location, const std::string& type_slash) {
    const auto start = location.find(type_slash) + type_slash.size();
    return location.substr(start, location.find("/_history") - start);
}

std::string base64_of(std::string_view bytes) {
    std::string out;
    caregate::fhir::base64_appender encode(out);
    encode.append(bytes);
    encode.finish();
    return out;
}

struct binary_fixture : application_fixture {
    std::string letter; ///< a DocumentReference in Tom's record, by the GP practice

    binary_fixture() {
        REQUIRE(call("PUT", std::string("/Patient/") + tom,
                     patient_json(tom, R"("id":"9000000009","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
        letter = document_reference(gp_clinician());
    }

    std::string document_reference(const identity& who, const std::string& meta = {}) {
        auto r = call_as(who, "POST", "/DocumentReference",
                         R"({"resourceType":"DocumentReference",)" + (meta.empty() ? "" : meta + ",") +
                             R"("status":"current","subject":{"reference":"Patient/9000000009"},)"
                             R"("content":[{"attachment":{"contentType":"application/pdf","title":"Clinic letter"}}]})");
        REQUIRE_MESSAGE(r.status == 201, r.body);
        return id_of(r);
    }

    /// POST Binary with the bytes as the body, in `content_type`, for `context` (none when empty).
    http::response upload(const identity& who, const std::string& bytes, const std::string& context,
                          const std::string& content_type = "application/pdf") {
        std::vector<http::header_field> headers{{"Content-Type", content_type}};
        if (!context.empty())
            headers.push_back({"X-Security-Context", context});
        return call_as(who, "POST", "/Binary", bytes, std::move(headers));
    }
};

} // namespace

TEST_CASE("Binary: raw bytes in, raw bytes out by default, the Binary resource in base64 when FHIR is asked for") {
    binary_fixture f;
    const std::string bytes = awkward_bytes();
    auto created = f.upload(gp_clinician(), bytes, "DocumentReference/" + f.letter);
    REQUIRE_MESSAGE(created.status == 201, created.body);
    // The answer is the Binary without its bytes (the client has them), marked as a subset.
    auto answered = json_of(created);
    const std::string id = answered["id"].GetString();
    CHECK_FALSE(answered.HasMember("data"));
    CHECK(std::string(answered["contentType"].GetString()) == "application/pdf");
    CHECK(std::string(answered["securityContext"]["reference"].GetString()) == "DocumentReference/" + f.letter);
    CHECK(created.body.find("SUBSETTED") != std::string::npos);

    // No Accept, any Accept that is not FHIR's: the document itself, in its own type, inert in a browser.
    for (const std::string accept : {"", "*/*", "application/pdf"}) {
        CAPTURE(accept);
        std::vector<http::header_field> headers;
        if (!accept.empty())
            headers.push_back({"Accept", accept});
        auto raw = f.call_as(gp_clinician(), "GET", "/Binary/" + id, {}, headers);
        REQUIRE(raw.status == 200);
        CHECK(raw.body == bytes);
        CHECK(raw.header("Content-Type") == "application/pdf");
        CHECK(raw.header("X-Security-Context") == "DocumentReference/" + f.letter);
        CHECK(raw.header("X-Content-Type-Options") == "nosniff");
        CHECK(raw.header("Content-Security-Policy").find("sandbox") != std::string_view::npos);
        CHECK(raw.header("ETag") == "W/\"1\"");
    }
    // FHIR asked for, by Accept or by _format: the Binary with its bytes in base64.
    for (const auto& [target, accept] : std::vector<std::pair<std::string, std::string>>{
             {"/Binary/" + id, "application/fhir+json"},
             {"/Binary/" + id, "application/json"},
             {"/Binary/" + id + "?_format=json", ""},
             {"/Binary/" + id + "/_history/1", "application/fhir+json"}}) {
        const std::string wanted = target + " " + accept; // clang 14: no structured binding in CAPTURE
        CAPTURE(wanted);
        std::vector<http::header_field> headers;
        if (!accept.empty())
            headers.push_back({"Accept", accept});
        auto fhir_form = f.call_as(gp_clinician(), "GET", target, {}, headers);
        REQUIRE(fhir_form.status == 200);
        CHECK(fhir_form.header("Content-Type").starts_with("application/fhir+json"));
        auto binary = json_of(fhir_form);
        CHECK(std::string(binary["resourceType"].GetString()) == "Binary");
        CHECK(std::string(binary["data"].GetString()) == base64_of(bytes));
        CHECK(caregate::fhir::decode_base64(binary["data"].GetString()) == bytes);
        CHECK(fhir_form.body.find("SUBSETTED") == std::string::npos);
    }
    // FHIR XML asked for: the Binary in XML, its data in base64 as in JSON. (Accept: application/xml
    // is not FHIR's: a document's own type, the bytes as they are.)
    auto in_xml = f.call_as(gp_clinician(), "GET", "/Binary/" + id, {}, {{"Accept", "application/fhir+xml"}});
    REQUIRE(in_xml.status == 200);
    CHECK(in_xml.header("Content-Type").starts_with("application/fhir+xml"));
    CHECK(in_xml.body.find("<data value=\"" + base64_of(bytes) + "\"/>") != std::string::npos);
    CHECK(f.call_as(gp_clinician(), "GET", "/Binary/" + id, {}, {{"Accept", "application/xml"}}).body == bytes);
}

TEST_CASE("Binary: written as JSON, its data comes back as the same bytes, raw or in base64") {
    binary_fixture f;
    static constexpr char letter[] = "%PDF-1.5\n\x00\x01\xff\xfe letter";
    const std::string bytes(letter, sizeof letter - 1); // NUL and invalid UTF-8 included
    // base64 with line breaks, as R4's own examples carry it
    std::string data = base64_of(bytes);
    data.insert(8, " \\n ");
    auto created = f.call_as(gp_clinician(), "POST", "/Binary",
                             R"({"resourceType":"Binary","contentType":"application/pdf","securityContext":)"
                             R"({"reference":"DocumentReference/)" + f.letter + R"("},"data":")" + data + R"("})");
    REQUIRE_MESSAGE(created.status == 201, created.body);
    const std::string id = id_of(created);
    CHECK(f.call_as(gp_clinician(), "GET", "/Binary/" + id).body == bytes);
    auto fhir_form = f.call_as(gp_clinician(), "GET", "/Binary/" + id, {}, {{"Accept", "application/fhir+json"}});
    CHECK(std::string(json_of(fhir_form)["data"].GetString()) == base64_of(bytes));

    // Invalid base64 is refused as any invalid value, and nothing is stored.
    auto bad = f.call_as(gp_clinician(), "POST", "/Binary",
                         R"({"resourceType":"Binary","contentType":"application/pdf","data":"not base64!"})");
    CHECK(bad.status == 422);
}

TEST_CASE("Binary: an update replaces the bytes in a new version; the old version keeps its own; PATCH is not allowed") {
    binary_fixture f;
    auto created = f.upload(gp_clinician(), "first draft", "DocumentReference/" + f.letter, "text/plain");
    REQUIRE(created.status == 201);
    const std::string id = id_of(created);
    auto updated = f.call_as(gp_clinician(), "PUT", "/Binary/" + id, "final letter",
                             {{"Content-Type", "text/plain"}, {"X-Security-Context", "DocumentReference/" + f.letter}});
    REQUIRE_MESSAGE(updated.status == 200, updated.body);
    CHECK(updated.header("ETag") == "W/\"2\"");
    // The same bytes again still make a version: bytes are not compared.
    CHECK(f.call_as(gp_clinician(), "PUT", "/Binary/" + id, "final letter",
                    {{"Content-Type", "text/plain"}, {"X-Security-Context", "DocumentReference/" + f.letter}})
              .header("ETag") == "W/\"3\"");
    CHECK(f.call_as(gp_clinician(), "GET", "/Binary/" + id).body == "final letter");
    CHECK(f.call_as(gp_clinician(), "GET", "/Binary/" + id + "/_history/1").body == "first draft");
    auto patched = f.call_as(gp_clinician(), "PATCH", "/Binary/" + id,
                             R"([{"op":"replace","path":"/contentType","value":"text/html"}])",
                             {{"Content-Type", "application/json-patch+json"}});
    CHECK(patched.status == 405);
    CHECK(patched.header("Allow").find("PATCH") == std::string_view::npos);
    CHECK(patched.header("Allow").find("PUT") != std::string_view::npos);
    // ...and the CapabilityStatement does not claim it.
    auto capabilities = f.call("GET", "/metadata");
    auto statement = json_of(capabilities);
    for (const auto& resource : statement["rest"][0]["resource"].GetArray())
        if (std::string(resource["type"].GetString()) == "Binary")
            for (const auto& interaction : resource["interaction"].GetArray())
                CHECK(std::string(interaction["code"].GetString()) != "patch");
    CHECK(f.call_as(gp_clinician(), "GET", "/Binary/" + id).header("ETag") == "W/\"3\"");
}

TEST_CASE("Binary: seen exactly by those who see its securityContext; nothing of it reaches anyone else") {
    binary_fixture f;
    auto created = f.upload(gp_clinician(), "a letter about Tom", "DocumentReference/" + f.letter);
    REQUIRE(created.status == 201);
    const std::string id = id_of(created);

    // The GP practice sees the letter's DocumentReference, so its clinicians see the bytes; the read is
    // in Tom's access log, as reading his letter is reading his record.
    CHECK(f.call_as(gp_nurse(), "GET", "/Binary/" + id).status == 200);
    f.flush();
    caregate::storage::store::audit_query toms;
    toms.nhs_number = tom;
    auto logged = f.store->audit(toms);
    REQUIRE(logged.ok());
    bool read_logged = false;
    for (const auto& record : logged->records)
        read_logged = read_logged || (record.action == "read" && record.resource_type == "Binary" &&
                                      record.resource_ids == id && record.user == "gp-nurse-1");
    CHECK(read_logged);
    // A trust with no relationship with Tom sees neither: 404 as for nothing at all, empty searches,
    // no history entry, no version.
    REQUIRE(f.call_as(acute_clinician(), "GET", "/DocumentReference/" + f.letter).status == 404);
    for (const std::string& target : {"/Binary/" + id, "/Binary/" + id + "/_history/1"}) {
        auto hidden = f.call_as(acute_clinician(), "GET", target);
        CHECK(hidden.status == 404);
        CHECK(hidden.body.find("a letter") == std::string::npos);
    }
    auto search = json_of(f.call_as(acute_clinician(), "GET", "/Binary?_total=accurate"));
    CHECK(search["total"].GetInt() == 0);
    auto by_id = json_of(f.call_as(acute_clinician(), "GET", "/Binary?_id=" + id + "&_total=accurate"));
    CHECK(by_id["total"].GetInt() == 0);
    auto history = f.call_as(acute_clinician(), "GET", "/Binary/_history");
    CHECK(history.body.find(id) == std::string::npos);
    // Social care reads no documents: no Binary either.
    CHECK(f.call_as(social_worker(), "GET", "/Binary/" + id).status != 200);

    // When the letter is restricted to its writer (very restricted), the same follows for its bytes:
    // the GP's own organisation still sees both; nobody else would.
    const std::string restricted = f.document_reference(
        gp_clinician(), R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"V"}]})");
    auto secret = f.upload(gp_clinician(), "safeguarding letter", "DocumentReference/" + restricted);
    REQUIRE(secret.status == 201);
    CHECK(f.call_as(gp_clinician(), "GET", "/Binary/" + id_of(secret)).status == 200);
    CHECK(f.call_as(acute_clinician(), "GET", "/Binary/" + id_of(secret)).status == 404);
}

TEST_CASE("Binary: one without a securityContext is its writer's organisation's alone") {
    binary_fixture f;
    auto created = f.upload(acute_clinician(), "a scan, its DocumentReference not written yet", {});
    REQUIRE_MESSAGE(created.status == 201, created.body);
    const std::string id = id_of(created);
    CHECK(f.call_as(acute_clinician(), "GET", "/Binary/" + id).status == 200);
    // The GP practice's clinicians read every Binary they may (their grant is "*"), but not this one.
    CHECK(f.call_as(gp_clinician(), "GET", "/Binary/" + id).status == 404);
    auto search = json_of(f.call_as(gp_clinician(), "GET", "/Binary?_total=accurate"));
    CHECK(search["total"].GetInt() == 0);
    // The writer finds it in a search, listed without its bytes and marked as a subset.
    auto own = f.call_as(acute_clinician(), "GET", "/Binary?_id=" + id);
    auto bundle = json_of(own);
    REQUIRE(bundle["entry"].Size() == 1);
    CHECK_FALSE(bundle["entry"][0]["resource"].HasMember("data"));
    CHECK(own.body.find("SUBSETTED") != std::string::npos);
    auto history = f.call_as(acute_clinician(), "GET", "/Binary/" + id + "/_history");
    CHECK(history.body.find("\"data\"") == std::string::npos);
}

TEST_CASE("Binary: a securityContext the writer cannot see is refused as one that does not exist") {
    binary_fixture f;
    // The acute trust has no relationship with Tom: the GP's letter is hidden from it.
    auto hidden = f.upload(acute_clinician(), "probe", "DocumentReference/" + f.letter);
    auto absent = f.upload(acute_clinician(), "probe", "DocumentReference/no-such-letter");
    CHECK(hidden.status == 422);
    CHECK(absent.status == 422);
    CHECK(std::string(outcome_of(hidden)["issue"][0]["diagnostics"].GetString()) ==
          std::string(outcome_of(absent)["issue"][0]["diagnostics"].GetString()));
    CHECK(std::string(outcome_of(hidden)["issue"][0]["expression"][0].GetString()) == "Binary.securityContext");
}

TEST_CASE("Binary: a DocumentReference's attachment.url to a Binary is a reference a transaction resolves and checks") {
    binary_fixture f;
    const std::string bytes = "scanned discharge letter";
    const std::string bundle =
        R"({"resourceType":"Bundle","type":"transaction","entry":[)"
        R"({"fullUrl":"urn:uuid:0c8f1b2e-1111-4a8e-9a51-000000000001","resource":{"resourceType":"DocumentReference",)"
        R"("status":"current","subject":{"reference":"Patient/9000000009"},"content":[{"attachment":)"
        R"({"contentType":"text/plain","url":"urn:uuid:0c8f1b2e-1111-4a8e-9a51-000000000002"}}]},)"
        R"("request":{"method":"POST","url":"DocumentReference"}},)"
        R"({"fullUrl":"urn:uuid:0c8f1b2e-1111-4a8e-9a51-000000000002","resource":{"resourceType":"Binary",)"
        R"("contentType":"text/plain","securityContext":{"reference":"urn:uuid:0c8f1b2e-1111-4a8e-9a51-000000000001"},)"
        R"("data":")" + base64_of(bytes) + R"("},"request":{"method":"POST","url":"Binary"}}]})";
    auto answer = f.call_as(gp_clinician(), "POST", "", bundle);
    REQUIRE_MESSAGE(answer.status == 200, answer.body);
    auto result = json_of(answer);
    const std::string document_location = result["entry"][0]["response"]["location"].GetString();
    const std::string binary_location = result["entry"][1]["response"]["location"].GetString();
    const std::string document_id = id_in(document_location, "DocumentReference/");
    const std::string binary_id = id_in(binary_location, "Binary/");
    auto document = json_of(f.call_as(gp_clinician(), "GET", "/DocumentReference/" + document_id));
    CHECK(std::string(document["content"][0]["attachment"]["url"].GetString()) == "Binary/" + binary_id);
    CHECK(f.call_as(gp_clinician(), "GET", "/Binary/" + binary_id).body == bytes);
    // The Binary follows the DocumentReference the transaction made.
    CHECK(f.call_as(acute_clinician(), "GET", "/Binary/" + binary_id).status == 404);

    // A url naming a Binary that is not held is a dangling reference: 422, nothing written.
    const std::string dangling =
        R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"DocumentReference",)"
        R"("status":"current","subject":{"reference":"Patient/9000000009"},"content":[{"attachment":)"
        R"({"contentType":"text/plain","url":"Binary/not-held"}}]},"request":{"method":"POST","url":"DocumentReference"}}]})";
    auto refused = f.call_as(gp_clinician(), "POST", "", dangling);
    CHECK(refused.status == 422);
    CHECK(refused.body.find("attachment.url") != std::string::npos);
    // A document kept elsewhere is not ours to check.
    const std::string elsewhere =
        R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"DocumentReference",)"
        R"("status":"current","subject":{"reference":"Patient/9000000009"},"content":[{"attachment":)"
        R"({"contentType":"application/pdf","url":"https://documents.example.nhs.uk/letters/1.pdf"}}]},)"
        R"("request":{"method":"POST","url":"DocumentReference"}}]})";
    CHECK(f.call_as(gp_clinician(), "POST", "", elsewhere).status == 200);
}
