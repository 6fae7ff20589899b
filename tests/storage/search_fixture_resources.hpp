// Hand-written resources for search_parameters_test.cpp: values for the parameters the CapabilityStatement
// lists that no accepted official R4 example gives a value for, and the known data of the hand-checked
// cases (partial dates, :missing, :exact, chains, _has). Each resource says which parameters it is
// there for. Not a loader: the test reads the official examples itself.
#pragma once

#include <string>
#include <vector>

namespace caregate::storage::testing::search_fixture {

/// The hand-written citizens. Valid test NHS numbers (Modulus 11), outside the 90000000xx range
/// the test gives the official example Patients.
inline const std::string quill_nhs = "9693632109";       ///< born "1974" (year precision), gender unknown, has meta
inline const std::string quillfeather_nhs = "9912003888"; ///< born 1974-12-24, no gender

/// The meta every type's meta copy carries (search_parameters_test.cpp adds it to a copy of the first
/// accepted example of each type), for _profile, _security, _source and _tag, which few examples set.
inline const std::string meta_profile_base = "https://caregate.test/fhir/StructureDefinition/";
inline const std::string meta_tag_system = "https://caregate.test/CodeSystem/tags";
inline const std::string meta_tag_code = "fixture";
inline const std::string meta_security_system = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
inline const std::string meta_security_code = "HTEST"; // test health data
inline const std::string meta_source = "https://caregate.test/source#fixture";

/// The `meta` object for a copy of a resource of `type`: a profile per type (fixture-{type}), so
/// _profile and _profile:below have a set to find.
inline std::string meta_json(const std::string& type) {
    return R"({"profile":[")" + meta_profile_base + "fixture-" + type + R"("],"security":[{"system":")" +
           meta_security_system + R"(","code":")" + meta_security_code + R"("}],"source":")" + meta_source +
           R"(","tag":[{"system":")" + meta_tag_system + R"(","code":")" + meta_tag_code + R"("}]})";
}

struct hand_written {
    std::string type;
    std::string id;
    std::string for_parameters; ///< why it is here
    std::string json;
};

/// In write order: Patients first (citizens must be live before what links to them).
inline std::vector<hand_written> hand_written_resources() {
    return {
        {"Patient", quill_nhs, "hand-checked: partial birthDate, gender:not, family:exact/:contains, chains, _has",
         R"({"resourceType":"Patient","id":"9693632109","meta":)" + meta_json("Patient") + R"(,
             "identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9693632109"}],"active":true,
             "name":[{"family":"Ångström-Quill","given":["Zebedee"]}],"gender":"unknown","birthDate":"1974",
             "managingOrganization":{"reference":"Organization/caregate-fixture-org"}})"},
        {"Patient", quillfeather_nhs, "hand-checked: gender:missing, birthdate prefixes, family prefixes",
         R"({"resourceType":"Patient","id":"9912003888",
             "identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9912003888"}],
             "name":[{"family":"Quillfeather","given":["Ada"]}],"birthDate":"1974-12-24"})"},
        {"Organization", "caregate-fixture-org", "hand-checked: the end of a 2-level chain",
         R"({"resourceType":"Organization","id":"caregate-fixture-org",
             "identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"X26"}],
             "name":"Quillfeather Health Centre"})"},
        {"Group", "caregate-fixture-group",
         "characteristic-value, value, managing-entity (the examples' characteristics are booleans and quantities)",
         R"({"resourceType":"Group","id":"caregate-fixture-group","type":"person","actual":true,
             "managingEntity":{"reference":"Organization/caregate-fixture-org"},
             "characteristic":[{"code":{"coding":[{"system":"http://snomed.info/sct","code":"365508006"}]},
               "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]},"exclude":false}],
             "member":[{"entity":{"reference":"Patient/9693632109"}}]})"},
        {"CarePlan", "caregate-fixture-careplan",
         "activity-reference, based-on, instantiates-canonical, part-of, replaces; category with a code (the "
         "examples' category is text only)",
         R"({"resourceType":"CarePlan","id":"caregate-fixture-careplan",
             "instantiatesCanonical":["http://example.org/fhir/PlanDefinition/falls-prevention"],
             "basedOn":[{"reference":"CarePlan/example"}],"replaces":[{"reference":"CarePlan/preg"}],
             "partOf":[{"reference":"CarePlan/integrate"}],"status":"active","intent":"plan",
             "category":[{"coding":[{"system":"http://snomed.info/sct","code":"734163000","display":"Care plan"}]}],
             "subject":{"reference":"Patient/9693632109"},
             "activity":[{"reference":{"reference":"ServiceRequest/caregate-fixture-servicerequest"}}]})"},
        {"Communication", "caregate-fixture-communication",
         "instantiates-canonical, part-of; based-on (the examples' is a contained #reference)",
         R"({"resourceType":"Communication","id":"caregate-fixture-communication",
             "instantiatesCanonical":["http://example.org/fhir/PlanDefinition/falls-prevention"],
             "basedOn":[{"reference":"ServiceRequest/caregate-fixture-servicerequest"}],
             "partOf":[{"reference":"Communication/example"}],"status":"completed",
             "subject":{"reference":"Patient/9693632109"}})"},
        {"Consent", "caregate-fixture-consent", "source-reference",
         R"({"resourceType":"Consent","id":"caregate-fixture-consent","status":"active",
             "scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"treatment"}]},
             "category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
             "patient":{"reference":"Patient/9693632109"},
             "sourceReference":{"reference":"QuestionnaireResponse/3141"},
             "policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]}})"},
        {"Device", "caregate-fixture-device",
         "device-name, location, manufacturer, model, organization, patient, type, udi-carrier, udi-di, url",
         R"({"resourceType":"Device","id":"caregate-fixture-device",
             "udiCarrier":[{"deviceIdentifier":"09504000059118","carrierHRF":"(01)09504000059118(17)141120(10)7654321D"}],
             "status":"active","manufacturer":"Acme Devices","deviceName":[{"name":"Infusion pump","type":"user-friendly-name"}],
             "modelNumber":"AP-2000",
             "type":{"coding":[{"system":"http://snomed.info/sct","code":"469829008","display":"Infusion pump"}]},
             "patient":{"reference":"Patient/9693632109"},"owner":{"reference":"Organization/caregate-fixture-org"},
             "location":{"reference":"Location/1"},"url":"https://caregate.test/devices/infusion-pump-1"})"},
        {"DiagnosticReport", "caregate-fixture-report",
         "encounter, results-interpreter, specimen; identifier (only in a refused example)",
         R"({"resourceType":"DiagnosticReport","id":"caregate-fixture-report",
             "identifier":[{"system":"https://caregate.test/reports","value":"fixture-report-1"}],"status":"final",
             "code":{"coding":[{"system":"http://loinc.org","code":"58410-2"}]},
             "subject":{"reference":"Patient/9693632109"},"encounter":{"reference":"Encounter/caregate-fixture-encounter"},
             "resultsInterpreter":[{"reference":"Practitioner/example"}],"specimen":[{"reference":"Specimen/101"}]})"},
        {"DocumentReference", "caregate-fixture-document", "relationship (relatesTo)",
         R"({"resourceType":"DocumentReference","id":"caregate-fixture-document","status":"current",
             "subject":{"reference":"Patient/9693632109"},
             "relatesTo":[{"code":"appends","target":{"reference":"DocumentReference/example"}}],
             "content":[{"attachment":{"contentType":"text/plain","url":"https://caregate.test/documents/1"}}]})"},
        {"Encounter", "caregate-fixture-encounter", "reason-reference; location (the examples' is a contained #reference)",
         R"({"resourceType":"Encounter","id":"caregate-fixture-encounter","status":"finished",
             "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
             "subject":{"reference":"Patient/9693632109"},"reasonReference":[{"reference":"Condition/example"}],
             "location":[{"location":{"reference":"Location/1"}}]})"},
        {"EpisodeOfCare", "caregate-fixture-episode", "incoming-referral",
         R"({"resourceType":"EpisodeOfCare","id":"caregate-fixture-episode","status":"active",
             "patient":{"reference":"Patient/9693632109"},
             "referralRequest":[{"reference":"ServiceRequest/caregate-fixture-servicerequest"}]})"},
        {"Immunization", "caregate-fixture-immunization", "reaction, reaction-date, reason-reference",
         R"({"resourceType":"Immunization","id":"caregate-fixture-immunization","status":"completed",
             "vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]},
             "patient":{"reference":"Patient/9693632109"},"occurrenceDateTime":"2021-10-01",
             "reasonReference":[{"reference":"Observation/caregate-fixture-obs"}],
             "reaction":[{"date":"2021-10-02","detail":{"reference":"Observation/caregate-fixture-obs"}}]})"},
        {"Medication", "caregate-fixture-medication",
         "identifier; ingredient and manufacturer (the examples' are contained #references)",
         R"({"resourceType":"Medication","id":"caregate-fixture-medication",
             "identifier":[{"system":"https://caregate.test/medications","value":"fixture-med-1"}],
             "code":{"coding":[{"system":"http://snomed.info/sct","code":"322236009"}]},
             "manufacturer":{"reference":"Organization/caregate-fixture-org"},
             "ingredient":[{"itemReference":{"reference":"Medication/med0310"}}]})"},
        {"MedicationRequest", "caregate-fixture-medicationrequest",
         "intended-performer, intended-performertype (only in a refused example)",
         R"({"resourceType":"MedicationRequest","id":"caregate-fixture-medicationrequest","status":"active",
             "intent":"order","medicationReference":{"reference":"Medication/caregate-fixture-medication"},
             "subject":{"reference":"Patient/9693632109"},"performer":{"reference":"Practitioner/f204"},
             "performerType":{"coding":[{"system":"http://snomed.info/sct","code":"26369006",
                                         "display":"Public Health Nurse"}]}})"},
        {"MedicationStatement", "caregate-fixture-medicationstatement",
         "medication (the examples' are contained #references)",
         R"({"resourceType":"MedicationStatement","id":"caregate-fixture-medicationstatement","status":"active",
             "medicationReference":{"reference":"Medication/caregate-fixture-medication"},
             "subject":{"reference":"Patient/9693632109"}})"},
        {"Observation", "caregate-fixture-obs",
         "code-value-date; hand-checked: logical references (:identifier), chains, _has",
         R"({"resourceType":"Observation","id":"caregate-fixture-obs","status":"final",
             "code":{"coding":[{"system":"https://caregate.test/CodeSystem/fixture","code":"fixture-observation",
                                "display":"Fixture observation"}],"text":"Fixture observation"},
             "subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9693632109"}},
             "performer":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"X26"}}],
             "effectiveDateTime":"2021-06-15T10:00:00Z","valueDateTime":"2021-06-14"})"},
        {"Procedure", "caregate-fixture-procedure",
         "instantiates-canonical (the example's is a relative canonical), reason-code with a code (the "
         "examples' are text only)",
         R"({"resourceType":"Procedure","id":"caregate-fixture-procedure",
             "instantiatesCanonical":["http://example.org/fhir/PlanDefinition/KDN5"],"status":"completed",
             "subject":{"reference":"Patient/9693632109"},
             "reasonCode":[{"coding":[{"system":"http://snomed.info/sct","code":"48867003","display":"Bradycardia"}]}]})"},
        {"Provenance", "caregate-fixture-provenance", "patient, when",
         R"({"resourceType":"Provenance","id":"caregate-fixture-provenance","target":[{"reference":"Patient/9693632109"}],
             "occurredDateTime":"2021-06-15T10:00:00Z","recorded":"2021-06-15T10:05:00Z",
             "agent":[{"who":{"reference":"Practitioner/example"}}]})"},
        {"Questionnaire", "caregate-fixture-questionnaire",
         "context, context-quantity, context-type, context-type-quantity, context-type-value, definition",
         R"({"resourceType":"Questionnaire","id":"caregate-fixture-questionnaire","status":"active",
             "useContext":[{"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"age"},
                            "valueQuantity":{"value":18,"unit":"years","system":"http://unitsofmeasure.org","code":"a"}},
                           {"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"focus"},
                            "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"363346000"}]}}],
             "item":[{"linkId":"1","definition":"https://caregate.test/StructureDefinition/fixture#Observation.value",
                      "text":"Value","type":"string"}]})"},
        {"QuestionnaireResponse", "caregate-fixture-questionnaireresponse",
         "based-on, encounter, identifier, part-of (only in refused examples), questionnaire (the accepted "
         "example's is a relative canonical)",
         R"({"resourceType":"QuestionnaireResponse","id":"caregate-fixture-questionnaireresponse",
             "identifier":{"system":"https://caregate.test/questionnaire-responses","value":"fixture-qr-1"},
             "basedOn":[{"reference":"ServiceRequest/caregate-fixture-servicerequest"}],
             "partOf":[{"reference":"Procedure/caregate-fixture-procedure"}],
             "questionnaire":"https://caregate.test/fhir/Questionnaire/fixture","status":"completed",
             "subject":{"reference":"Patient/9693632109"},"encounter":{"reference":"Encounter/caregate-fixture-encounter"}})"},
        {"ServiceRequest", "caregate-fixture-servicerequest",
         "instantiates-canonical, instantiates-uri, replaces; performer-type and specimen (only in refused examples "
         "or as contained #references)",
         R"({"resourceType":"ServiceRequest","id":"caregate-fixture-servicerequest",
             "instantiatesCanonical":["http://example.org/fhir/PlanDefinition/falls-prevention"],
             "instantiatesUri":["https://caregate.test/protocols/falls"],
             "replaces":[{"reference":"ServiceRequest/example"}],"status":"active","intent":"order",
             "subject":{"reference":"Patient/9693632109"},
             "performerType":{"coding":[{"system":"http://snomed.info/sct","code":"224535009","display":"Registered nurse"}]},
             "specimen":[{"reference":"Specimen/101"}]})"},
        {"FamilyMemberHistory", "caregate-fixture-familymemberhistory", "instantiates-canonical",
         R"({"resourceType":"FamilyMemberHistory","id":"caregate-fixture-familymemberhistory",
             "instantiatesCanonical":["http://example.org/fhir/Questionnaire/family-history"],"status":"completed",
             "patient":{"reference":"Patient/9693632109"},
             "relationship":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-RoleCode","code":"MTH"}]}})"},
        {"Media", "caregate-fixture-media", "device (no example names one)",
         R"({"resourceType":"Media","id":"caregate-fixture-media","status":"completed",
             "subject":{"reference":"Patient/9693632109"},"device":{"reference":"Device/example"},
             "content":{"contentType":"image/png","url":"https://caregate.test/media/1.png"}})"},
        {"NutritionOrder", "caregate-fixture-nutritionorder", "instantiates-canonical, instantiates-uri",
         R"({"resourceType":"NutritionOrder","id":"caregate-fixture-nutritionorder",
             "instantiatesCanonical":["http://example.org/fhir/PlanDefinition/diabetic-diet"],
             "instantiatesUri":["https://caregate.test/protocols/diet"],"status":"active","intent":"order",
             "patient":{"reference":"Patient/9693632109"},"dateTime":"2026-11-01T09:00:00Z"})"},
        {"Specimen", "caregate-fixture-specimen", "parent (no accepted example names one)",
         R"({"resourceType":"Specimen","id":"caregate-fixture-specimen","subject":{"reference":"Patient/9693632109"},
             "parent":[{"reference":"Specimen/101"}]})"},
    };
}

} // namespace caregate::storage::testing::search_fixture
