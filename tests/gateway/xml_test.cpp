// FHIR XML through the handle() seam (gateway/rest/xml_format.hpp): a resource written in XML is read
// back in JSON as the same resource and in XML again; searches, history, transactions and errors in
// XML; what the XML parser could be attacked with gets 400 and writes nothing.
#include "application_fixture.hpp"

#include <rapidjson/document.h>

using namespace caregate::testing;
namespace http = caregate::http;

namespace {

constexpr const char* xml_body = "application/fhir+xml";

std::size_t history_size(application_fixture& f, const std::string& path) {
    auto r = f.call("GET", path + "/_history");
    REQUIRE(r.status == 200);
    auto doc = json_of(r);
    return doc.HasMember("entry") ? doc["entry"].Size() : 0;
}

const std::string patient_xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Tom &amp; &quot;family&quot;</p></div></text>
  <identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9000000009"/></identifier>
  <name><family value="Jones"/><given value="Tom"/><given value="Albert"/></name>
  <birthDate value="1950-02-01"/>
</Patient>)";

} // namespace

TEST_CASE("XML: a Patient created in XML reads back in JSON and in XML as the same resource") {
    application_fixture f;
    auto created = f.call("POST", "/Patient", patient_xml, {{"Content-Type", xml_body}, {"Accept", xml_body}});
    REQUIRE_MESSAGE(created.status == 201, created.body);
    CHECK(created.header("Content-Type").starts_with("application/fhir+xml"));
    CHECK(created.body.find("<id value=\"9000000009\"/>") != std::string::npos);

    auto as_json = json_of(f.call("GET", "/Patient/9000000009"));
    CHECK(std::string(as_json["name"][0]["given"][1].GetString()) == "Albert");
    CHECK(std::string(as_json["birthDate"].GetString()) == "1950-02-01");
    // The narrative exactly as it was sent, entities and all.
    CHECK(std::string(as_json["text"]["div"].GetString()) ==
          R"(<div xmlns="http://www.w3.org/1999/xhtml"><p>Tom &amp; &quot;family&quot;</p></div>)");

    auto as_xml = f.call("GET", "/Patient/9000000009?_format=xml");
    REQUIRE(as_xml.status == 200);
    CHECK(as_xml.body.find(R"(<name><family value="Jones"/><given value="Tom"/><given value="Albert"/></name>)") !=
          std::string::npos);
    CHECK(as_xml.header("ETag") == "W/\"1\"");

    // Updated in XML with a decimal whose text matters: kept exactly.
    auto observed = f.call("POST", "/Observation",
                           R"(<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="weight"/></code>)"
                           R"(<subject><reference value="Patient/9000000009"/></subject>)"
                           R"(<valueQuantity><value value="70.10"/><unit value="kg"/></valueQuantity></Observation>)",
                           {{"Content-Type", "application/xml"}});
    REQUIRE_MESSAGE(observed.status == 201, observed.body);
    CHECK(observed.body.find("\"value\":70.10") != std::string::npos); // answered in JSON: no XML asked for
}

TEST_CASE("XML: searches, history, a transaction and errors come in XML when XML is asked for") {
    application_fixture f;
    REQUIRE(f.call("POST", "/Patient", patient_xml, {{"Content-Type", xml_body}}).status == 201);
    auto search = f.call("GET", "/Patient?family=Jones", {}, {{"Accept", xml_body}});
    REQUIRE(search.status == 200);
    CHECK(search.body.find("<Bundle xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
    CHECK(search.body.find("<type value=\"searchset\"/>") != std::string::npos);
    CHECK(search.body.find("<resource><Patient><id value=\"9000000009\"/>") != std::string::npos);
    auto history = f.call("GET", "/Patient/9000000009/_history?_format=xml");
    CHECK(history.body.find("<type value=\"history\"/>") != std::string::npos);

    const std::string transaction =
        R"(<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/><entry><fullUrl value="urn:uuid:0c8f1b2e-1111-4a8e-9a51-000000000001"/>)"
        R"(<resource><Condition><code><text value="asthma"/></code><subject><reference value="Patient/9000000009"/></subject></Condition></resource>)"
        R"(<request><method value="POST"/><url value="Condition"/></request></entry></Bundle>)";
    auto done = f.call("POST", "", transaction, {{"Content-Type", xml_body}, {"Accept", xml_body}});
    REQUIRE_MESSAGE(done.status == 200, done.body);
    CHECK(done.body.find("<type value=\"transaction-response\"/>") != std::string::npos);
    CHECK(done.body.find("<status value=\"201 Created\"/>") != std::string::npos);

    auto missing = f.call("GET", "/Patient/9999999999", {}, {{"Accept", xml_body}});
    CHECK(missing.status == 404);
    CHECK(missing.header("Content-Type").starts_with("application/fhir+xml"));
    CHECK(missing.body.find("<OperationOutcome xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
    auto invalid = f.call("POST", "/Observation",
                          R"(<Observation xmlns="http://hl7.org/fhir"><status value="unknown-status"/></Observation>)",
                          {{"Content-Type", xml_body}, {"Accept", xml_body}});
    CHECK(invalid.status == 422);
    CHECK(invalid.body.find("<expression value=\"Observation.status\"/>") != std::string::npos);
}

TEST_CASE("XML: a DTD, an entity, a deep nest or an unknown element gets 400 and writes nothing") {
    application_fixture f;
    const std::vector<std::string> attacks = {
        R"(<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Patient xmlns="http://hl7.org/fhir"><gender value="&b;"/></Patient>)",
        R"(<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><gender value="&x;"/></Patient>)",
        std::string(R"(<Patient xmlns="http://hl7.org/fhir">)") + [] {
            std::string nest;
            for (int i = 0; i < 70; ++i)
                nest += "<extension url=\"x\">";
            for (int i = 0; i < 70; ++i)
                nest += "</extension>";
            return nest;
        }() + "</Patient>",
        R"(<Patient xmlns="http://hl7.org/fhir"><secret value="x"/></Patient>)",
    };
    for (const std::string& attack : attacks) {
        auto refused = f.call("POST", "/Patient", attack, {{"Content-Type", xml_body}});
        CHECK(refused.status == 400);
        CHECK(refused.body.find("passwd") == std::string::npos);
    }
    CHECK(history_size(f, "/Patient") == 0);
}
