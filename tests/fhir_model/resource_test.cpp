// Tests for fhir_model/src/resource.cpp: prepare_resource (NHS-number rules, citizen links, canonical
// content), the supported types, and every official R4 example of the supported types.
#include "fhir_model/resource.hpp"

#include "../../fhir_model/src/json.hpp"
#include "fhir_model/nhs_number.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace fhir = caregate::fhir;
namespace detail = caregate::fhir::detail;

namespace {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Every `"reference": "Patient/..."` becomes Patient/9000000009, so the example names a valid citizen.
void point_patient_references_at_test_citizen(rapidjson::Value& value, rapidjson::Document::AllocatorType& allocator) {
    if (value.IsObject()) {
        for (auto& member : value.GetObject()) {
            const std::string_view name(member.name.GetString(), member.name.GetStringLength());
            if (name == "reference" && detail::is_string(member.value) &&
                detail::text_of(member.value).starts_with("Patient/"))
                member.value.SetString("Patient/9000000009", allocator);
            else
                point_patient_references_at_test_citizen(member.value, allocator);
        }
    } else if (value.IsArray()) {
        for (auto& item : value.GetArray())
            point_patient_references_at_test_citizen(item, allocator);
    }
}

/// The example as this server expects it: Patient references by NHS number, a Patient with its NHS number.
std::string as_caregate_body(const std::string& text) {
    rapidjson::Document doc;
    REQUIRE(detail::parse_json(text, doc).ok());
    auto& allocator = doc.GetAllocator();
    point_patient_references_at_test_citizen(doc, allocator);
    if (std::string_view(doc["resourceType"].GetString()) == "Patient") {
        rapidjson::Value identifier(rapidjson::kObjectType);
        identifier.AddMember("system", rapidjson::StringRef(fhir::nhs_number_system.data(), fhir::nhs_number_system.size()),
                             allocator);
        identifier.AddMember("value", "9000000009", allocator);
        if (!doc.HasMember("identifier"))
            doc.AddMember("identifier", rapidjson::Value(rapidjson::kArrayType), allocator);
        doc["identifier"].PushBack(identifier, allocator);
    }
    return detail::write_json(doc);
}

std::string describe(const fhir::error& failure) {
    std::string out;
    for (const auto& issue : failure.issues)
        out += "  [" + issue.code + "] " + issue.expression + ": " + issue.diagnostics + "\n";
    return out;
}

/// Official examples this server refuses, each with the reason. Nothing else may fail.
const std::map<std::string, std::string> refused_examples = {
    // Errors in the official examples themselves, found by the R4 definitions.
    {"MedicationRequest-medrx0301.json",
     "dispenseRequest.performer references a Practitioner; R4 allows Reference(Organization) only"},
    {"DeviceMetric-example.json", "parent references a DeviceDefinition; R4 allows Reference(Device) only"},
    {"DeviceUseStatement-example.json",
     "reasonReference references a Procedure; R4 allows Condition, Observation, DiagnosticReport, DocumentReference, Media"},
    {"Observation-clinical-gender.json",
     "performer references an Encounter; R4 allows Practitioner, PractitionerRole, Organization, CareTeam, Patient, RelatedPerson"},
    {"Questionnaire-qs1.json", "nested items have no linkId, which R4 requires (1..1)"},
    // No citizen named by NHS number: this server's rule that a Patient-compartment resource names its citizen.
    {"DiagnosticReport-gingival-mass.json", "subject is a display name only"},
    {"Observation-10minute-apgar-score.json", "subject is a contained Patient (#newborn)"},
    {"Observation-1minute-apgar-score.json", "subject is a contained Patient (#newborn)"},
    {"Observation-20minute-apgar-score.json", "subject is a contained Patient (#newborn)"},
    {"Observation-2minute-apgar-score.json", "subject is a contained Patient (#newborn)"},
    {"Observation-5minute-apgar-score.json", "subject is a contained Patient (#newborn)"},
    {"Observation-decimal.json", "has no subject"},
    {"Observation-herd1.json", "subject is a Group (a herd)"},
    {"Observation-vp-oyster.json", "subject is a display name only (an oyster farm)"},
    {"Procedure-education.json", "subject and performer are display names only"},
    {"Procedure-ob.json", "subject and performer are display names only"},
    {"QuestionnaireResponse-3141.json", "subject is a contained Patient (#patsub)"},
    {"QuestionnaireResponse-bb.json", "subject is an absolute URL on another server, not an NHS number"},
    {"QuestionnaireResponse-ussg-fht-answers.json", "subject is an absolute URL on another server, not an NHS number"},
    {"ServiceRequest-appendectomy-narrative.json", "subject is a display name only"},
    {"ServiceRequest-education.json", "subject and performer are display names only"},
    {"ServiceRequest-myringotomy.json", "subject is an absolute URL on another server, not an NHS number"},
    {"ServiceRequest-ob.json", "subject and performer are display names only"},
    {"List-example-simple-empty.json", "has no subject: a ward's admission list, not one citizen's"},
    {"List-long.json", "has no subject or source: not one citizen's"},
    {"RiskAssessment-population.json", "subject is a contained Group (a population)"},
    {"Specimen-pooled-serum.json", "subject is a Group (a herd)"},
    {"AppointmentResponse-exampleresp.json", "a practitioner's response: names no citizen (its Appointment does)"},
    {"Basic-basic-example-narrative.json", "has no subject"},
    {"Basic-classModel.json", "has no subject: a class model, not one citizen's"},
    {"Claim-100152.json", "patient is a contained Patient (#patient-1)"},
    {"Claim-100154.json", "patient is an identifier of another jurisdiction, not an NHS number"},
    {"Claim-100155.json", "patient is a contained Patient (#patient-1)"},
    {"Claim-MED-00050.json", "patient is a contained Patient (#patient-1)"},
    {"CommunicationRequest-fm-solicit.json", "names only contained parties (#provider), no citizen"},
    {"DetectedIssue-allergy.json", "has no patient"},
    {"DetectedIssue-ddi.json", "has no patient: a drug interaction in general"},
    {"DetectedIssue-lab.json", "has no patient"},
    {"DocumentManifest-654789.json", "names only contained parties (#org-1), no citizen"},
    {"MeasureReport-hiv-indicators.json", "a population report: names no citizen"},
    {"MeasureReport-measurereport-cms146-cat2-example.json", "a population report: names no citizen"},
    {"MeasureReport-measurereport-cms146-cat3-example.json", "a population report: names no citizen"},
    {"MolecularSequence-coord-0-base.json", "has no patient"},
    {"MolecularSequence-coord-1-base.json", "has no patient"},
    {"MolecularSequence-graphic-example-1.json", "has no patient"},
    {"MolecularSequence-graphic-example-2.json", "has no patient"},
    {"MolecularSequence-graphic-example-3.json", "has no patient"},
    {"MolecularSequence-graphic-example-4.json", "has no patient"},
    {"MolecularSequence-graphic-example-5.json", "has no patient"},
    {"MolecularSequence-sequence-complex-variant.json", "has no patient"},
    {"Person-f002.json", "links a RelatedPerson, not a citizen's Patient"},
    {"Person-grahame.json", "links no Patient"},
    {"Person-pd.json", "links Practitioners only: not a citizen"},
    {"Person-pp.json", "links Patients only as absolute URLs on other servers, not by NHS number"},
    {"SupplyDelivery-pumpdelivery.json", "patient is a display name only"},
    {"SupplyDelivery-simpledelivery.json", "has no patient"},
    {"SupplyRequest-simpleorder.json", "deliverTo is a display name only"},
    // Types outside the Patient compartment name no citizen nor a citizen's item (outside_record.hpp).
    {"Contract-C-2121.json", "subject is a Patient: a Contract is outside the record here"},
    {"Contract-INS-101.json", "subject is a Patient: a Contract is outside the record here"},
    {"Contract-pcd-example-notAuthor.json", "subject is a Patient: a privacy Contract is a Consent here"},
    {"Contract-pcd-example-notLabs.json", "subject is a Patient: a privacy Contract is a Consent here"},
    {"Contract-pcd-example-notOrg.json", "subject is a Patient: a privacy Contract is a Consent here"},
    {"Contract-pcd-example-notThem.json", "subject is a Patient: a privacy Contract is a Consent here"},
    {"Contract-pcd-example-notThis.json", "subject is a Patient: a privacy Contract is a Consent here"},
    {"ImplementationGuide-example.json", "lists a Patient among its example resources"},
    {"Linkage-example.json", "links Conditions, a citizen's items"},
    {"MedicinalProduct-example.json", "attachedDocument is a DocumentReference, a citizen's item"},
    {"MessageHeader-1cbdfb97-5859-48a4-8301-d54eab818d68.json", "focus is an Encounter, a citizen's item"},
    {"TestScript-testscript-example-history.json", "its fixture is a Patient"},
    {"TestScript-testscript-example-search.json", "its fixture is a Patient"},
    {"TestScript-testscript-example-update.json", "its fixture is a Patient"},
    {"TestScript-testscript-example.json", "its fixture is a Patient"},
    {"GuidanceResponse-example.json", "names a Patient, and contains a Parameters, which no stored type may contain"},
    // Types this server does not hold.
};

} // namespace

TEST_CASE("r4 examples: every official example of a supported type validates (citizen references rewritten)") {
    const std::filesystem::path folder = std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data/r4-examples";
    REQUIRE(std::filesystem::is_directory(folder));
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(folder))
        if (entry.path().extension() == ".json")
            files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() > 300);

    std::size_t accepted = 0;
    for (const auto& file : files) {
        const std::string name = file.filename().string();
        const std::string body = as_caregate_body(read_file(file));
        rapidjson::Document doc;
        REQUIRE(detail::parse_json(body, doc).ok());
        const std::string type = doc["resourceType"].GetString();
        auto prepared = fhir::prepare_resource(body, type);
        auto refused = refused_examples.find(name);
        if (refused == refused_examples.end()) {
            CHECK_MESSAGE(prepared.ok(), name << " was refused:\n" << (prepared.ok() ? "" : describe(prepared.failure())));
            accepted += prepared.ok();
        } else {
            CHECK_MESSAGE(!prepared.ok(), name << " is listed as refused (" << refused->second << ") but was accepted");
        }
    }
    MESSAGE(accepted << " of " << files.size() << " official examples accepted; " << refused_examples.size()
                     << " listed as refused");
}

TEST_CASE("supported types: the generator's list, sorted, and nothing else") {
    const auto types = fhir::supported_types();
    CHECK(types.size() == 141);
    CHECK(std::is_sorted(types.begin(), types.end()));
    CHECK(fhir::is_supported_type("Patient"));
    CHECK(fhir::is_supported_type("AuditEvent"));
    CHECK(fhir::is_supported_type("Composition"));
    CHECK_FALSE(fhir::is_supported_type("Task"));
    CHECK_FALSE(fhir::is_supported_type("patient"));
}

TEST_CASE("requires_citizen: Patient-compartment types except Patient, Device, Provenance, AuditEvent, Group, Schedule") {
    for (const char* type : {"Observation", "Condition", "Encounter", "EpisodeOfCare", "RelatedPerson", "Consent",
                             "Communication", "CareTeam", "Appointment", "QuestionnaireResponse", "Flag", "List",
                             "Specimen", "FamilyMemberHistory", "RiskAssessment", "ImagingStudy", "NutritionOrder", "Media",
                             "Composition", "Basic", "Person", "AppointmentResponse", "MeasureReport", "Claim"})
        CHECK_MESSAGE(fhir::requires_citizen(type), type);
    for (const char* type : {"Patient", "Device", "Provenance", "AuditEvent", "Group", "Schedule", "Practitioner",
                             "Organization", "Location", "Medication", "Questionnaire", "PractitionerRole", "Task"})
        CHECK_MESSAGE(!fhir::requires_citizen(type), type);
}

namespace {
const std::string nhs_identifier = R"({"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"})";

fhir::error failure_of(const std::string& body, const std::string& type) {
    auto result = fhir::prepare_resource(body, type);
    REQUIRE_FALSE(result.ok());
    return result.failure();
}
} // namespace

TEST_CASE("Patient: the NHS number comes from the one nhs-number identifier; the body's id is reported") {
    auto result = fhir::prepare_resource(
        R"({"resourceType":"Patient","id":"9000000009","identifier":[{"system":"urn:oid:1.2.3","value":"x"},)" +
            nhs_identifier + "]}",
        "Patient");
    REQUIRE(result.ok());
    CHECK(result->nhs_number == "9000000009");
    CHECK(result->id == "9000000009");
    CHECK(result->type == "Patient");
    CHECK(result->citizens.empty());
}

TEST_CASE("Patient: without exactly one valid NHS-number identifier the Patient is invalid at Patient.identifier") {
    for (const std::string& body : {
             std::string(R"({"resourceType":"Patient","gender":"female"})"),
             std::string(R"({"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"9000000009"}]})"),
             std::string(R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000000"}]})"),
             std::string(R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number"}]})"),
             R"({"resourceType":"Patient","identifier":[)" + nhs_identifier + "," +
                 R"({"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000017"}]})",
         }) {
        auto failure = failure_of(body, "Patient");
        CHECK(failure.kind == fhir::category::invalid);
        REQUIRE(failure.issues.size() == 1);
        CHECK(failure.issues[0].expression == "Patient.identifier");
        CHECK(failure.issues[0].diagnostics.find("9000000") == std::string::npos);
    }
}

TEST_CASE("citizen links: Patient/{nhs} at a compartment element links the citizen, with its path") {
    auto result = fhir::prepare_resource(
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"},)"
        R"("performer":[{"reference":"Practitioner/1"},{"reference":"Patient/9000000017/_history/3"}]})",
        "Observation");
    REQUIRE(result.ok());
    REQUIRE(result->citizens.size() == 2);
    CHECK(result->citizens[0].nhs_number == "9000000009");
    CHECK(result->citizens[0].expression == "Observation.subject");
    CHECK(result->citizens[1].nhs_number == "9000000017");
    CHECK(result->citizens[1].expression == "Observation.performer[1]");
}

TEST_CASE("citizen links: a Patient reference whose id is not an NHS number is invalid at that path") {
    auto failure = failure_of(
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/example"}})",
        "Observation");
    CHECK(failure.kind == fhir::category::invalid);
    REQUIRE(failure.issues.size() == 1);
    CHECK(failure.issues[0].expression == "Observation.subject");
    CHECK(failure.issues[0].diagnostics == "a reference to a citizen must use the NHS number as the Patient id");
}

TEST_CASE("citizen links: nested compartment paths (AuditEvent.agent.who, CarePlan.activity.detail.performer)") {
    auto audit = fhir::prepare_resource(
        R"({"resourceType":"AuditEvent","type":{"code":"rest"},"recorded":"2020-01-01T00:00:00Z",)"
        R"("agent":[{"requestor":true,"who":{"reference":"Patient/9000000009"}}],"source":{"observer":{"display":"x"}}})",
        "AuditEvent");
    REQUIRE_MESSAGE(audit.ok(), (audit.ok() ? "" : audit.failure().issues[0].expression));
    REQUIRE(audit->citizens.size() == 1);
    CHECK(audit->citizens[0].expression == "AuditEvent.agent[0].who");
}

TEST_CASE("citizen links: a logical reference by NHS number links the citizen and gains a literal reference") {
    auto result = fhir::prepare_resource(
        R"({"resourceType":"Condition","subject":{"identifier":)" + nhs_identifier + R"(,"display":"A"}})", "Condition");
    REQUIRE(result.ok());
    REQUIRE(result->citizens.size() == 1);
    CHECK(result->citizens[0].nhs_number == "9000000009");
    CHECK(result->citizens[0].expression == "Condition.subject");
    CHECK(result->content == R"({"resourceType":"Condition","subject":{"reference":"Patient/9000000009","identifier":)" +
                                 nhs_identifier + R"(,"display":"A"}})");

    auto typed = fhir::prepare_resource(
        R"({"resourceType":"Condition","subject":{"type":"Patient","identifier":)" + nhs_identifier + "}}", "Condition");
    REQUIRE(typed.ok());
    CHECK(typed->content.find(R"("subject":{"reference":"Patient/9000000009","type":"Patient")") != std::string::npos);
}

TEST_CASE("citizen links: a logical reference with an invalid NHS number is invalid at that path") {
    auto failure = failure_of(
        R"({"resourceType":"Condition","subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000000"}}})",
        "Condition");
    REQUIRE(failure.issues.size() == 1);
    CHECK(failure.issues[0].expression == "Condition.subject");
}

TEST_CASE("citizen links: a reference and an NHS-number identifier naming different citizens are invalid") {
    auto failure = failure_of(
        R"({"resourceType":"Condition","subject":{"reference":"Patient/9000000017","identifier":)" + nhs_identifier + "}}",
        "Condition");
    CHECK(failure.issues.at(0).expression == "Condition.subject");
}

TEST_CASE("citizen links: a type that requires its citizen is invalid without one (code required)") {
    auto failure = failure_of(
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Group/1"}})",
        "Observation");
    CHECK(failure.kind == fhir::category::invalid);
    REQUIRE(failure.issues.size() == 1);
    CHECK(failure.issues[0].code == "required");
    CHECK(failure.issues[0].expression == "Observation.subject");
    // A citizen named at a non-compartment element does not count.
    auto elsewhere = failure_of(
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"focus":[{"reference":"Patient/9000000009"}]})",
        "Observation");
    CHECK(elsewhere.issues.at(0).code == "required");
}

TEST_CASE("citizen links: Provenance, AuditEvent and Device may name no citizen; a Device names its patient; contained resources add none") {
    auto provenance = fhir::prepare_resource(
        R"({"resourceType":"Provenance","target":[{"reference":"Organization/1"}],"recorded":"2020-01-01T00:00:00Z","agent":[{"who":{"reference":"Practitioner/1"}}]})",
        "Provenance");
    REQUIRE(provenance.ok());
    CHECK(provenance->citizens.empty());
    auto device = fhir::prepare_resource(R"({"resourceType":"Device","patient":{"reference":"Patient/9000000009"}})", "Device");
    REQUIRE(device.ok());
    REQUIRE(device->citizens.size() == 1); // R4 lists Device without a parameter; caregate links Device.patient
    CHECK(device->citizens[0].nhs_number == "9000000009");
    auto directory_device = fhir::prepare_resource(R"({"resourceType":"Device","manufacturer":"Acme"})", "Device");
    REQUIRE(directory_device.ok());
    CHECK(directory_device->citizens.empty());
    auto contained = fhir::prepare_resource(
        R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"},)"
        R"("contained":[{"resourceType":"Observation","id":"o","status":"final","code":{"text":"y"},"subject":{"reference":"Patient/9000000017"}}]})",
        "Observation");
    REQUIRE(contained.ok());
    CHECK(contained->citizens.size() == 1);
}

TEST_CASE("canonical content: resourceType, id, meta without versionId and lastUpdated, then the rest in order") {
    auto result = fhir::prepare_resource(
        R"({"status":"final","meta":{"versionId":"7","lastUpdated":"2020-01-01T00:00:00Z","profile":["http://x/p"]},)"
        R"( "code":{"text":"x"}, "valueQuantity":{"value":1.10,"unit":"kg"},"id":"abc","resourceType":"Observation",)"
        R"("subject":{"reference":"Patient/9000000009"}})",
        "Observation");
    REQUIRE(result.ok());
    CHECK(result->id == "abc");
    CHECK(result->content ==
          R"({"resourceType":"Observation","id":"abc","meta":{"profile":["http://x/p"]},"status":"final","code":{"text":"x"},)"
          R"("valueQuantity":{"value":1.10,"unit":"kg"},"subject":{"reference":"Patient/9000000009"}})");
}

TEST_CASE("canonical content: a meta left empty by removing versionId and lastUpdated is omitted") {
    auto result = fhir::prepare_resource(
        R"({"resourceType":"Observation","meta":{"versionId":"7","lastUpdated":"2020-01-01T00:00:00Z"},"status":"final",)"
        R"("code":{"text":"x"},"subject":{"reference":"Patient/9000000009"}})",
        "Observation");
    REQUIRE(result.ok());
    CHECK(result->content ==
          R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/9000000009"}})");
    CHECK(result->id.empty());
}

TEST_CASE("item_targets: a Provenance points at its target and entity.what, in every spelling of a reference") {
    const std::string provenance =
        R"({"resourceType":"Provenance","target":[{"reference":"Condition/c1"},{"reference":"Observation/o1/_history/2"},)"
        R"({"reference":"https://elsewhere.example/fhir/Encounter/e1"},{"reference":"Condition/c1"},{"reference":"#local"},)"
        R"({"reference":"urn:uuid:0a3c1d2e-0000-4000-8000-000000000001"},{"reference":"Task/t9"},)"
        R"({"identifier":{"system":"x","value":"y"}}],"entity":[{"role":"source","what":{"reference":"DocumentReference/d1"}}],)"
        R"("recorded":"2026-01-01T00:00:00Z","agent":[{"who":{"reference":"Practitioner/p1"}}]})";
    CHECK(fhir::item_targets("Provenance", provenance) ==
          std::vector<std::string>{"Condition/c1", "Observation/o1", "Encounter/e1", "DocumentReference/d1"});
    CHECK(fhir::points_at_items("Provenance"));
    CHECK_FALSE(fhir::points_at_items("Observation"));
    // Other types point at nothing, whatever they reference.
    CHECK(fhir::item_targets("Observation", R"({"resourceType":"Observation","hasMember":[{"reference":"Observation/x"}]})").empty());
    CHECK(fhir::item_targets("Provenance", "not json").empty());
}

TEST_CASE("item_targets: a Binary points at its securityContext; with none it is its writer's alone") {
    CHECK(fhir::points_at_items("Binary"));
    CHECK(fhir::item_targets("Binary", R"({"resourceType":"Binary","contentType":"text/plain","securityContext":)"
                                       R"({"reference":"DocumentReference/d1"}})") ==
          std::vector<std::string>{"DocumentReference/d1"});
    CHECK(fhir::item_targets("Binary", R"({"resourceType":"Binary","contentType":"text/plain"})").empty());
    CHECK(fhir::owner_only_when_pointing_at_nothing("Binary"));
    CHECK_FALSE(fhir::owner_only_when_pointing_at_nothing("Provenance"));
}
