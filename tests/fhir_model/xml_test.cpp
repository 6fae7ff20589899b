// FHIR XML (fhir_model/xml.hpp): every official example round-trips JSON -> XML -> JSON to the same
// resource; XML written by hand the way the specification writes it reads as the JSON the
// specification gives; what a parser could be attacked with is refused before parsing.
#include "fhir_model/resource.hpp"
#include "fhir_model/xml.hpp"

#include "../../fhir_model/src/json.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace caregate;

namespace {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The first difference between two JSON values, member order aside; numbers by their text.
std::string difference(const rapidjson::Value& a, const rapidjson::Value& b, const std::string& path) {
    if (a.IsObject() && b.IsObject()) {
        if (a.MemberCount() != b.MemberCount())
            return path + ": " + std::to_string(a.MemberCount()) + " members, then " + std::to_string(b.MemberCount());
        for (const auto& member : a.GetObject()) {
            auto other = b.FindMember(member.name);
            if (other == b.MemberEnd())
                return path + "." + member.name.GetString() + " missing";
            if (auto d = difference(member.value, other->value, path + "." + member.name.GetString()); !d.empty())
                return d;
        }
        return {};
    }
    if (a.IsArray() && b.IsArray()) {
        if (a.Size() != b.Size())
            return path + ": " + std::to_string(a.Size()) + " items, then " + std::to_string(b.Size());
        for (rapidjson::SizeType i = 0; i < a.Size(); ++i)
            if (auto d = difference(a[i], b[i], path + "[" + std::to_string(i) + "]"); !d.empty())
                return d;
        return {};
    }
    if (a != b)
        return path + " differs";
    return {};
}

std::string json_difference(const std::string& first, const std::string& second) {
    rapidjson::Document a, b;
    REQUIRE(fhir::detail::parse_json(first, a).ok());
    REQUIRE(fhir::detail::parse_json(second, b).ok());
    return difference(a, b, "");
}

std::string to_json(const std::string& xml) {
    auto json = fhir::xml_to_json(xml);
    REQUIRE_MESSAGE(json.ok(), (json.ok() ? "" : json.failure().issues.front().diagnostics));
    return *json;
}

fhir::error refusal_of(const std::string& xml) {
    auto json = fhir::xml_to_json(xml);
    REQUIRE_FALSE(json.ok());
    return json.failure();
}

} // namespace

TEST_CASE("xml: every official example round-trips JSON -> XML -> JSON to the same resource") {
    std::size_t tried = 0;
    for (const auto& file : std::filesystem::directory_iterator(std::filesystem::path(CAREGATE_SOURCE_DIR) /
                                                                "tests/data/r4-examples")) {
        const std::string json = read_file(file.path());
        rapidjson::Document doc;
        if (!fhir::detail::parse_json(json, doc).ok() || !doc.IsObject())
            continue;
        CAPTURE(file.path().filename().string());
        auto xml = fhir::json_to_xml(json);
        REQUIRE_MESSAGE(xml.ok(), (xml.ok() ? "" : xml.failure().issues.front().diagnostics + " at " +
                                                    xml.failure().issues.front().expression));
        auto back = fhir::xml_to_json(*xml);
        REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.failure().issues.front().diagnostics + " at " +
                                                      back.failure().issues.front().expression));
        CHECK_MESSAGE(json_difference(json, *back).empty(), json_difference(json, *back));
        ++tried;
    }
    CHECK(tried > 600);
}

TEST_CASE("xml: the specification's way of writing a Patient reads as its JSON") {
    // After https://hl7.org/fhir/R4/patient-example.xml: ids and urls as attributes, a primitive's
    // extension beside its value, repeated elements, the narrative's XHTML, a decimal's exact text.
    const std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <id value="example"/>
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Peter <b>James</b> Chalmers &amp; family</p></div>
  </text>
  <extension url="http://example.org/weight">
    <valueDecimal value="70.10"/>
  </extension>
  <identifier>
    <system value="https://fhir.nhs.uk/Id/nhs-number"/>
    <value value="9000000009"/>
  </identifier>
  <active value="true"/>
  <name id="n1">
    <use value="official"/>
    <family value="Chalmers"/>
    <given value="Peter"/>
    <given value="James"/>
  </name>
  <birthDate value="1974-12-25">
    <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">
      <valueDateTime value="1974-12-25T14:35:45-05:00"/>
    </extension>
  </birthDate>
  <multipleBirthInteger value="2"/>
</Patient>)";
    const std::string expected =
        R"({"resourceType":"Patient","id":"example","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Peter <b>James</b> Chalmers &amp; family</p></div>"},)"
        R"("extension":[{"url":"http://example.org/weight","valueDecimal":70.10}],)"
        R"("identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"active":true,)"
        R"("name":[{"id":"n1","use":"official","family":"Chalmers","given":["Peter","James"]}],)"
        R"("birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]},)"
        R"("multipleBirthInteger":2})";
    const std::string json = to_json(xml);
    CHECK_MESSAGE(json_difference(expected, json).empty(), json);
    CHECK(json.find("70.10") != std::string::npos); // the decimal's text, not 70.1
    CHECK(fhir::prepare_resource(json, "Patient").ok());
    // And back: the same XML, but for the layout.
    auto again = fhir::json_to_xml(json);
    REQUIRE(again.ok());
    CHECK(again->find(R"(<name id="n1"><use value="official"/>)") != std::string::npos);
    CHECK(again->find(R"(<given value="Peter"/><given value="James"/>)") != std::string::npos);
    CHECK(again->find(R"(<birthDate value="1974-12-25"><extension url=)") != std::string::npos);
    CHECK(again->find(R"(<valueDecimal value="70.10"/>)") != std::string::npos);
}

TEST_CASE("xml: repeated primitives with extensions on some, values with line breaks, resources in resources") {
    const std::string json =
        R"({"resourceType":"Patient","name":[{"given":["A",null,"C"],"_given":[null,{"id":"g2","extension":[{"url":"http://x.example/e","valueString":"b"}]},null]}],)"
        R"("contained":[{"resourceType":"Organization","id":"o1","name":"line one\nline two\t\"quoted\" <tag> & more"}],)"
        R"("managingOrganization":{"reference":"#o1"}})";
    auto xml = fhir::json_to_xml(json);
    REQUIRE(xml.ok());
    CHECK(xml->find(R"(<contained><Organization><id value="o1"/>)") != std::string::npos);
    CHECK(xml->find("line one&#xA;line two&#x9;&quot;quoted&quot; &lt;tag&gt; &amp; more") != std::string::npos);
    CHECK(xml->find(R"(<given id="g2"><extension url="http://x.example/e">)") != std::string::npos);
    CHECK(json_difference(json, to_json(*xml)).empty());
}

TEST_CASE("xml: bombs and the unknown are refused before anything is expanded or guessed") {
    const std::string billion_laughs = R"(<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Patient xmlns="http://hl7.org/fhir"><id value="&lol2;"/></Patient>)";
    CHECK(refusal_of(billion_laughs).issues.front().diagnostics.find("DTD") != std::string::npos);
    const std::string external = R"(<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>)";
    CHECK(refusal_of(external).kind == fhir::category::malformed);
    CHECK(refusal_of(R"(<?xml-stylesheet href="x"?><Patient xmlns="http://hl7.org/fhir"/>)").kind ==
          fhir::category::malformed);
    std::string deep = R"(<Patient xmlns="http://hl7.org/fhir">)";
    for (int i = 0; i < 100; ++i)
        deep += "<extension url=\"x\">";
    for (int i = 0; i < 100; ++i)
        deep += "</extension>";
    deep += "</Patient>";
    CHECK(refusal_of(deep).issues.front().diagnostics.find("nested") != std::string::npos);
    std::string wide = R"(<Patient xmlns="http://hl7.org/fhir"><name>)";
    for (std::size_t i = 0; i < fhir::max_xml_elements; ++i)
        wide += "<given/>";
    wide += "</name></Patient>";
    CHECK(refusal_of(wide).issues.front().diagnostics.find("elements") != std::string::npos);
    CHECK(refusal_of(R"(<Patient><id value="x"/></Patient>)").issues.front().diagnostics.find("namespace") !=
          std::string::npos);
    CHECK(refusal_of(R"(<Patient xmlns="http://hl7.org/fhir"><nonsense value="x"/></Patient>)").issues.front().expression ==
          "Patient.nonsense");
    CHECK(refusal_of(R"(<Patient xmlns="http://hl7.org/fhir"><name><given value="a"/><family value="b"/><given value="c"/></name></Patient>)")
              .kind == fhir::category::malformed);
    CHECK(refusal_of(R"(<Patient xmlns="http://hl7.org/fhir"><active value="true"/><active value="false"/></Patient>)")
              .kind == fhir::category::malformed);
    CHECK(refusal_of(R"(<Patient xmlns="http://hl7.org/fhir"><id value="x"></Patient>)").kind == fhir::category::malformed);
    CHECK(refusal_of(R"(<Patient xmlns="http://hl7.org/fhir">text<id value="x"/></Patient>)").kind ==
          fhir::category::malformed);
    CHECK(refusal_of(R"(<Nonsense xmlns="http://hl7.org/fhir"/>)").kind == fhir::category::malformed);
}
