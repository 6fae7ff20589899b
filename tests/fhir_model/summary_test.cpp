// Tests for fhir_model/src/summary.cpp: subset_resource, the `_summary` forms and `_elements` of
// https://hl7.org/fhir/R4/search.html#summary and #elements, on canonical JSON as the store keeps it.
#include "fhir_model/summary.hpp"

#include "../../fhir_model/src/canonical.hpp"
#include "../../fhir_model/src/definitions.hpp"
#include "../../fhir_model/src/json.hpp"
#include "fhir_model/resource.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fhir = caregate::fhir;
namespace detail = caregate::fhir::detail;
using fhir::summary_form;

namespace {

const std::string stamped_meta = R"("meta":{"versionId":"2","lastUpdated":"2024-05-01T10:00:00.000000Z")";
const std::string subsetted_tag =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"})";
const std::string meta_with_tag = stamped_meta + R"(,"tag":[)" + subsetted_tag + "]}";

const std::string patient_text =
    R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Jane Smith</div>"})";
const std::string patient_identifier =
    R"("identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}])";
const std::string patient_birth_date =
    R"("birthDate":"1970-01-01","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1970-01-01T08:30:00+00:00"}]})";
const std::string patient_rest_after_name =
    R"("maritalStatus":{"text":"married"},)"
    R"("photo":[{"contentType":"image/jpeg","data":"AAAA"}],)"
    R"("contact":[{"relationship":[{"text":"next of kin"}],"name":{"family":"Smith","given":["John"]},"telecom":[{"system":"phone","value":"0123 456789"}]}],)"
    R"("generalPractitioner":[{"reference":"Organization/A12345"}],)"
    R"("managingOrganization":{"reference":"Organization/A12345","display":"The Surgery"},)"
    R"("link":[{"other":{"reference":"Patient/9000000017"},"type":"seealso"}])";

/// A stored Patient: text, an extension, identifier, name (with an id), birthDate with birth time,
/// elements that are not isSummary (maritalStatus, photo, contact, generalPractitioner) and some that are.
const std::string patient = R"({"resourceType":"Patient","id":"9000000009",)" + stamped_meta + "}," + patient_text +
                            R"(,"extension":[{"url":"https://example.org/ethnicity","valueString":"A"}],)" +
                            patient_identifier + R"(,"active":true,)" +
                            R"("name":[{"id":"n1","use":"official","family":"Smith","given":["Jane"]}],)" +
                            R"("gender":"female",)" + patient_birth_date + "," + patient_rest_after_name + "}";

const std::string observation_code = R"("code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]})";
const std::string observation_value =
    R"("valueQuantity":{"value":1.10,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"})";

/// A stored Observation with a decimal that must keep its text, and a component.
const std::string observation =
    R"({"resourceType":"Observation","id":"weight-1",)" + stamped_meta +
    R"(},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">1.10 kg</div>"},)"
    R"("status":"final","category":[{"text":"vital-signs"}],)" + observation_code +
    R"(,"subject":{"reference":"Patient/9000000009"},"effectiveDateTime":"2024-05-01",)" + observation_value +
    R"(,"interpretation":[{"text":"normal"}],)"
    R"("component":[{"code":{"text":"left"},"valueQuantity":{"value":120.0,"unit":"mm"},"interpretation":[{"text":"high"}]}]})";

std::string subset(const std::string& json, summary_form form, const std::vector<std::string>& elements = {}) {
    auto out = fhir::subset_resource(json, form, elements);
    REQUIRE(out.ok());
    return *out;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

TEST_CASE("summary: _summary=true keeps isSummary elements, in data types by the data type's own flags") {
    // Kept: identifier, active, name (without its id: Element.id is not isSummary), gender, birthDate
    // with _birthDate, managingOrganization, link. Dropped: text, extension, maritalStatus, photo,
    // contact, generalPractitioner.
    CHECK(subset(patient, summary_form::summary) ==
          R"({"resourceType":"Patient","id":"9000000009",)" + meta_with_tag + "," + patient_identifier +
              R"(,"active":true,"name":[{"use":"official","family":"Smith","given":["Jane"]}],"gender":"female",)" +
              patient_birth_date +
              R"(,"managingOrganization":{"reference":"Organization/A12345","display":"The Surgery"},)"
              R"("link":[{"other":{"reference":"Patient/9000000017"},"type":"seealso"}]})");
}

TEST_CASE("summary: _summary=true recurses into backbone elements and keeps decimals as written") {
    // component is isSummary, and so are its code and value; its interpretation is not.
    CHECK(subset(observation, summary_form::summary) ==
          R"({"resourceType":"Observation","id":"weight-1",)" + meta_with_tag + R"(,"status":"final",)" +
              observation_code + R"(,"subject":{"reference":"Patient/9000000009"},"effectiveDateTime":"2024-05-01",)" +
              observation_value + R"(,"component":[{"code":{"text":"left"},"valueQuantity":{"value":120.0,"unit":"mm"}}]})");
}

TEST_CASE("summary: _summary=true drops Attachment.data, the one data type element that is not isSummary") {
    const std::string document =
        R"({"resourceType":"DocumentReference","id":"d1","status":"current",)"
        R"("content":[{"attachment":{"contentType":"text/plain","data":"aGVsbG8=","url":"https://example.org/d1"}}]})";
    CHECK(subset(document, summary_form::summary) ==
          R"({"resourceType":"DocumentReference","id":"d1","meta":{"tag":[)" + subsetted_tag +
              R"(]},"status":"current","content":[{"attachment":{"contentType":"text/plain","url":"https://example.org/d1"}}]})");
}

TEST_CASE("summary: _summary=text keeps text and the top-level mandatory elements") {
    CHECK(subset(patient, summary_form::text) ==
          R"({"resourceType":"Patient","id":"9000000009",)" + meta_with_tag + "," + patient_text + "}");
    // Observation.status and Observation.code are 1..1.
    CHECK(subset(observation, summary_form::text) ==
          R"({"resourceType":"Observation","id":"weight-1",)" + meta_with_tag +
              R"(,"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">1.10 kg</div>"},)"
              R"("status":"final",)" + observation_code + "}");
}

TEST_CASE("summary: _summary=data drops text and keeps everything else") {
    std::string expected = patient;
    expected.replace(expected.find(stamped_meta + "}," + patient_text), stamped_meta.size() + 2 + patient_text.size(),
                     meta_with_tag);
    CHECK(subset(patient, summary_form::data) == expected);
}

TEST_CASE("summary: _elements=birthDate keeps birthDate, its _birthDate, resourceType, id and meta") {
    CHECK(subset(patient, summary_form::full, {"birthDate"}) ==
          R"({"resourceType":"Patient","id":"9000000009",)" + meta_with_tag + "," + patient_birth_date + "}");
}

TEST_CASE("summary: _elements=value keeps valueQuantity with its exact decimal, and the mandatory elements") {
    const std::string expected = R"({"resourceType":"Observation","id":"weight-1",)" + meta_with_tag +
                                 R"(,"status":"final",)" + observation_code + "," + observation_value + "}";
    CHECK(subset(observation, summary_form::full, {"value"}) == expected);
    CHECK(subset(observation, summary_form::full, {"valueQuantity"}) == expected);
    CHECK(expected.find(R"("value":1.10,)") != std::string::npos);
}

TEST_CASE("summary: _elements ignores unknown names and combines with _summary by keeping what both keep") {
    CHECK(subset(patient, summary_form::full, {"nonsense", "Patient.gender", "gender"}) ==
          R"({"resourceType":"Patient","id":"9000000009",)" + meta_with_tag + R"(,"gender":"female"})");
    CHECK(subset(patient, summary_form::full, {"nonsense"}) ==
          R"({"resourceType":"Patient","id":"9000000009",)" + meta_with_tag + "}");
    // photo is not isSummary, so _summary=true takes it out again.
    CHECK(subset(patient, summary_form::summary, {"photo", "gender"}) ==
          R"({"resourceType":"Patient","id":"9000000009",)" + meta_with_tag + R"(,"gender":"female"})");
}

TEST_CASE("summary: the SUBSETTED tag is added once, after the tags already there, and meta made if absent") {
    const std::string other_tag = R"({"system":"https://example.org/tags","code":"x"})";
    const std::string tagged = R"({"resourceType":"Patient","id":"9000000009",)" + stamped_meta + R"(,"tag":[)" +
                               other_tag + "," + subsetted_tag + R"(]},"gender":"female"})";
    CHECK(subset(tagged, summary_form::summary) == tagged);
    CHECK(subset(subset(patient, summary_form::summary), summary_form::summary) == subset(patient, summary_form::summary));

    const std::string other_tagged = R"({"resourceType":"Patient","id":"9000000009",)" + stamped_meta +
                                     R"(,"tag":[)" + other_tag + R"(]},"gender":"female"})";
    CHECK(subset(other_tagged, summary_form::data) == tagged);

    CHECK(subset(R"({"resourceType":"Patient","id":"9000000009","gender":"female"})", summary_form::data) ==
          R"({"resourceType":"Patient","id":"9000000009","meta":{"tag":[)" + subsetted_tag + R"(]},"gender":"female"})");
}

TEST_CASE("summary: the full form without _elements returns the stored bytes unchanged") {
    CHECK(subset(patient, summary_form::full) == patient);
    CHECK(subset(observation, summary_form::full) == observation);
}

TEST_CASE("summary: JSON that is not stored canonical resource JSON is malformed") {
    for (const std::string& bad : {
             std::string(R"({"resourceType":"Patient",)"),                           // not JSON
             std::string(R"(["Patient"])"),                                          // not an object
             std::string(R"({"resourceType":"Nonsense","id":"1"})"),                 // no such type
             std::string(R"({"resourceType":"Patient","id":"1","meta":{"versionId":"1"}})"), // half-stamped
             std::string(R"({"resourceType":"Patient","id":"1","meta":{"versionId":"one","lastUpdated":"x"}})"),
         }) {
        auto out = fhir::subset_resource(bad, summary_form::summary, {});
        REQUIRE_FALSE(out.ok());
        CHECK(out.failure().kind == fhir::category::malformed);
    }
}

TEST_CASE("summary: every official example, stored, subsets in every form to canonical JSON with the tag") {
    const auto& definitions = detail::r4();
    int examples = 0;
    for (auto& entry : std::filesystem::directory_iterator(std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data/r4-examples")) {
        rapidjson::Document doc;
        REQUIRE(detail::parse_json(read_file(entry.path()), doc).ok());
        // As the store keeps it: canonical, then stamped.
        const std::string stored = fhir::stamp_resource(detail::write_canonical(doc, nullptr),
                                                        detail::string_member(doc, "id").value_or("x"), 3,
                                                        "2024-05-01T10:00:00.000000Z");
        const detail::type_def& type = *definitions.type(*detail::string_member(doc, "resourceType"));
        ++examples;
        for (auto form : {summary_form::summary, summary_form::text, summary_form::data, summary_form::full}) {
            const std::vector<std::string> elements =
                form == summary_form::full ? std::vector<std::string>{"status", "subject"} : std::vector<std::string>{};
            auto out = fhir::subset_resource(stored, form, elements);
            REQUIRE_MESSAGE(out.ok(), entry.path().filename().string());
            rapidjson::Document subsetted;
            REQUIRE(detail::parse_json(*out, subsetted).ok());
            // Canonical: writing it again changes nothing (the stamp kept in place).
            CHECK(fhir::stamp_resource(*out, *detail::string_member(subsetted, "id"), 3, "2024-05-01T10:00:00.000000Z") ==
                  *out);
            CHECK(out->find(subsetted_tag) != std::string::npos);
            CHECK(out->size() <= stored.size() + subsetted_tag.size() + std::string(R"(,"tag":[])").size());
            for (auto& member : subsetted.GetObject()) {
                const std::string_view name = detail::view(member.name);
                if (name == "resourceType" || name == "id" || name == "meta")
                    continue;
                const detail::member_def* def = type.member(name);
                REQUIRE(def != nullptr);
                if (form == summary_form::summary)
                    CHECK_MESSAGE(def->element->summary, entry.path().filename().string() << " " << name);
                if (form == summary_form::text)
                    CHECK((def->element->name == "text" || def->element->min >= 1));
                if (form == summary_form::data)
                    CHECK(name != "text");
                if (form == summary_form::full)
                    CHECK((def->element->min >= 1 || name == "status" || name == "subject" || name == "_status"));
            }
        }
    }
    CHECK(examples > 300);
}
