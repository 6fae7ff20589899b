// Hand-written resources of the types outside the Patient compartment (definitions, knowledge,
// directories) for search_parameters_test.cpp, as search_fixture_resources.hpp does for the record's
// types: values for the parameters no accepted official example gives one to. The definitional
// types share most of their elements (url, version, status, useContext, jurisdiction, relatedArtifact,
// ...), so `definition` writes those a type has from a list, and each resource adds what its type
// requires. None names a citizen: these types may not (fhir_model/src/outside_record.hpp).
#pragma once

#include "search_fixture_resources.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace caregate::storage::testing::search_fixture {

/// The JSON members of the shared definitional elements named in `parts`, each with a value the
/// type's parameters can find, and a leading comma.
inline std::string definition_members(std::string_view type, const std::vector<std::string_view>& parts) {
    std::string out;
    auto add = [&](const std::string& member) { out += "," + member; };
    const std::string lower = [&] {
        std::string text(type);
        for (char& c : text)
            c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        return text;
    }();
    for (std::string_view part : parts) {
        if (part == "url")
            add(R"("url":"https://caregate.test/fhir/)" + std::string(type) + R"(/fixture")");
        else if (part == "identifiers")
            add(R"("identifier":[{"system":"https://caregate.test/definitions","value":")" + lower + R"(-1"}])");
        else if (part == "identifier")
            add(R"("identifier":{"system":"https://caregate.test/definitions","value":")" + lower + R"(-1"})");
        else if (part == "version")
            add(R"("version":"2026.1")");
        else if (part == "name")
            add(R"("name":"CaregateFixture")");
        else if (part == "title")
            add(R"("title":"Caregate fixture")");
        else if (part == "status")
            add(R"("status":"active")");
        else if (part == "experimental")
            add(R"("experimental":true)");
        else if (part == "date")
            add(R"("date":"2026-11-01")");
        else if (part == "publisher")
            add(R"("publisher":"Caregate test publisher")");
        else if (part == "description")
            add(R"("description":"A fixture for search")");
        else if (part == "useContext")
            add(R"("useContext":[)"
                R"({"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"age"},)"
                R"("valueQuantity":{"value":65,"unit":"a","system":"http://unitsofmeasure.org","code":"a"}},)"
                R"({"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"focus"},)"
                R"("valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"306206005"}]}}])");
        else if (part == "jurisdiction")
            add(R"("jurisdiction":[{"coding":[{"system":"urn:iso:std:iso:3166","code":"GB"}]}])");
        else if (part == "effectivePeriod")
            add(R"("effectivePeriod":{"start":"2026-01-01","end":"2026-12-31"})");
        else if (part == "topic")
            add(R"("topic":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/definition-topic","code":"treatment"}]}])");
        else if (part == "relatedArtifact")
            add(R"("relatedArtifact":[)"
                R"({"type":"composed-of","resource":"https://caregate.test/fhir/Library/composed"},)"
                R"({"type":"depends-on","resource":"https://caregate.test/fhir/Library/depended"},)"
                R"({"type":"derived-from","resource":"https://caregate.test/fhir/Library/origin"},)"
                R"({"type":"predecessor","resource":"https://caregate.test/fhir/Library/before"},)"
                R"({"type":"successor","resource":"https://caregate.test/fhir/Library/after"}])");
        else if (part == "meta")
            add(R"("meta":)" + meta_json(std::string(type)));
    }
    return out;
}

/// A resource of `type` with id caregate-fixture-{type in lower case}: the shared `parts`, then `own`
/// (members with a leading comma, or empty).
inline hand_written definition(std::string type, std::string for_parameters,
                               const std::vector<std::string_view>& parts, std::string own = {}) {
    std::string id = "caregate-fixture-";
    for (char c : type)
        id += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    std::string json = R"({"resourceType":")" + type + R"(","id":")" + id + R"(")" + definition_members(type, parts) + own + "}";
    return {std::move(type), std::move(id), std::move(for_parameters), std::move(json)};
}

/// The metadata every knowledge artifact (EventDefinition, Evidence, ResearchDefinition, ...) carries.
inline const std::vector<std::string_view> artifact_parts = {
    "url", "identifiers", "version", "name", "title", "status", "date", "publisher", "description",
    "useContext", "jurisdiction", "effectivePeriod", "topic", "relatedArtifact"};

inline std::vector<hand_written> outside_record_resources() {
    const std::string evidence_variable = R"({"reference":"EvidenceVariable/caregate-fixture-evidencevariable"})";
    return {
        // Knowledge artifacts: none accepted among the official examples sets these.
        definition("EvidenceVariable", "the knowledge artifact parameters", artifact_parts,
                   R"(,"characteristic":[{"definitionCodeableConcept":{"text":"aged 65 and over"}}])"),
        definition("EventDefinition", "the knowledge artifact parameters", artifact_parts,
                   R"(,"trigger":[{"type":"named-event","name":"discharge"}])"),
        definition("Evidence", "the knowledge artifact parameters", artifact_parts,
                   R"(,"exposureBackground":)" + evidence_variable),
        definition("ResearchElementDefinition", "the knowledge artifact parameters", artifact_parts,
                   R"(,"type":"population","characteristic":[{"definitionCodeableConcept":{"text":"aged 65 and over"}}])"),
        definition("ResearchDefinition", "the knowledge artifact parameters", artifact_parts,
                   R"(,"population":{"reference":"ResearchElementDefinition/caregate-fixture-researchelementdefinition"})"),
        definition("EffectEvidenceSynthesis", "the knowledge artifact parameters",
                   {"url", "identifiers", "version", "name", "title", "status", "date", "publisher", "description",
                    "useContext", "jurisdiction", "effectivePeriod"},
                   R"(,"population":)" + evidence_variable + R"(,"exposure":)" + evidence_variable +
                       R"(,"exposureAlternative":)" + evidence_variable + R"(,"outcome":)" + evidence_variable),
        definition("RiskEvidenceSynthesis", "the knowledge artifact parameters",
                   {"url", "identifiers", "version", "name", "title", "status", "date", "publisher", "description",
                    "useContext", "jurisdiction", "effectivePeriod"},
                   R"(,"population":)" + evidence_variable + R"(,"outcome":)" + evidence_variable),
        definition("ActivityDefinition", "composed-of, context-type-quantity", {"status", "useContext", "relatedArtifact"}),
        definition("Library", "context-type-quantity, predecessor, topic", {"status", "useContext", "topic", "relatedArtifact"},
                   R"(,"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/library-type","code":"logic-library"}]})"),
        definition("Measure", "context, context-type-quantity, context-type-value", {"status", "useContext"}),
        definition("PlanDefinition", "context-type-quantity, definition, topic", {"status", "useContext", "topic"},
                   R"(,"action":[{"title":"assess","definitionCanonical":"https://caregate.test/fhir/ActivityDefinition/assess"}])"),
        definition("ChargeItemDefinition", "context, date, identifier, jurisdiction, publisher, title",
                   {"url", "identifiers", "title", "status", "date", "publisher", "useContext", "jurisdiction"}),
        definition("ExampleScenario", "the conformance metadata parameters",
                   {"url", "identifiers", "version", "name", "status", "date", "publisher", "useContext", "jurisdiction"}),
        // Conformance and terminology resources: the official examples set few of their contexts.
        definition("CapabilityStatement", "context-quantity, context-type-quantity", {"status", "date", "useContext"},
                   R"(,"kind":"instance","fhirVersion":"4.0.1","format":["json"])"),
        definition("CodeSystem", "context, jurisdiction, language", {"status", "useContext", "jurisdiction"},
                   R"(,"content":"complete","concept":[{"code":"a","designation":[{"language":"en-GB","value":"A"}]}])"),
        definition("CompartmentDefinition", "context-quantity, context-type-quantity, version",
                   {"url", "version", "name", "status", "useContext"}, R"(,"code":"Device","search":true)"),
        definition("ConceptMap", "context, identifier, jurisdiction, product, source, target",
                   {"identifier", "status", "useContext", "jurisdiction"},
                   R"(,"sourceCanonical":"https://caregate.test/fhir/ValueSet/from",)"
                   R"("targetCanonical":"https://caregate.test/fhir/ValueSet/to",)"
                   R"("group":[{"element":[{"code":"a","target":[{"code":"b","equivalence":"equivalent",)"
                   R"("product":[{"property":"https://caregate.test/properties/route","value":"oral"}]}]}]}])"),
        definition("GraphDefinition", "context, jurisdiction, version",
                   {"version", "name", "status", "useContext", "jurisdiction"}, R"(,"start":"Organization")"),
        definition("ImplementationGuide", "the conformance parameters (the official example lists a Patient)",
                   {"meta", "url", "version", "name", "title", "status", "experimental", "date", "publisher",
                    "description", "useContext", "jurisdiction"},
                   R"(,"packageId":"caregate.fixture","fhirVersion":["4.0.1"],)"
                   R"("dependsOn":[{"uri":"https://caregate.test/fhir/ImplementationGuide/base"}],)"
                   R"("global":[{"type":"Organization","profile":"https://caregate.test/fhir/StructureDefinition/org"}],)"
                   R"("definition":{"resource":[{"reference":{"reference":"Organization/1"}}]})"),
        definition("MessageDefinition", "context-quantity, context-type-quantity, parent", {"status", "date", "useContext"},
                   R"(,"eventCoding":{"system":"https://caregate.test/events","code":"discharge"},)"
                   R"("parent":["https://caregate.test/fhir/PlanDefinition/discharge"])"),
        definition("NamingSystem", "context, context-type", {"name", "status", "date", "useContext"},
                   R"(,"kind":"identifier","uniqueId":[{"type":"uri","value":"https://caregate.test/ids"}])"),
        definition("OperationDefinition", "context-quantity, input-profile, output-profile, title",
                   {"name", "title", "status", "useContext"},
                   R"(,"kind":"operation","code":"assess","system":false,"type":true,"instance":false,)"
                   R"("inputProfile":"https://caregate.test/fhir/StructureDefinition/in",)"
                   R"("outputProfile":"https://caregate.test/fhir/StructureDefinition/out")"),
        definition("SearchParameter", "context-quantity, context-type-quantity", {"url", "name", "status", "description", "useContext"},
                   R"(,"code":"fixture","base":["Organization"],"type":"token","expression":"Organization.type")"),
        definition("StructureDefinition", "context, ext-context, identifier, jurisdiction, keyword",
                   {"url", "identifiers", "name", "status", "useContext", "jurisdiction"},
                   R"(,"keyword":[{"system":"https://caregate.test/keywords","code":"fixture"}],"kind":"complex-type",)"
                   R"("abstract":false,"context":[{"type":"element","expression":"Organization"}],"type":"Extension")"),
        definition("StructureMap", "context, context-type", {"url", "name", "status", "useContext"},
                   R"(,"group":[{"name":"main","typeMode":"none","input":[{"name":"source","mode":"source"}],)"
                   R"("rule":[{"name":"r","source":[{"context":"source"}]}]}])"),
        definition("TerminologyCapabilities", "context, jurisdiction", {"status", "date", "useContext", "jurisdiction"},
                   R"(,"kind":"instance")"),
        definition("TestScript", "context, context-type", {"url", "name", "status", "useContext"}),
        definition("ValueSet", "context, context-type-value", {"status", "useContext"}),
        // Directories, products and other resources about no one.
        definition("Contract", "authority, domain, instantiates, issued, signer, status, subject, url (the official "
                               "examples name Patients)",
                   {"url"},
                   R"(,"status":"executed","instantiatesUri":"https://caregate.test/contracts/framework","issued":"2026-11-01T09:00:00Z",)"
                   R"("subject":[{"reference":"Group/101"}],"authority":[{"reference":"Organization/1"}],)"
                   R"("domain":[{"reference":"Location/1"}],"signer":[{"type":{"code":"AUTHN"},)"
                   R"("party":{"reference":"Organization/1"},"signature":[{"type":[{"system":"urn:iso-astm:E1762-95:2013",)"
                   R"("code":"1.2.840.10065.1.12.1.1"}],"when":"2026-11-01T09:00:00Z","who":{"reference":"Organization/1"}}]}])"),
        definition("DeviceDefinition", "parent, type", {},
                   R"(,"parentDevice":{"reference":"DeviceDefinition/example"},)"
                   R"("type":{"coding":[{"system":"http://snomed.info/sct","code":"706172005"}]})"),
        definition("DeviceMetric", "category, identifier, parent, source, type and the meta parameters (the official "
                                   "example is refused)",
                   {"meta", "identifiers"},
                   R"(,"type":{"coding":[{"system":"urn:iso:std:iso:11073:10101","code":"150456"}]},)"
                   R"("source":{"reference":"Device/example"},"parent":{"reference":"Device/example"},"category":"measurement")"),
        definition("GuidanceResponse", "identifier, request, subject and the meta parameters (the official example "
                                       "names a Patient)",
                   {"meta"},
                   R"(,"requestIdentifier":{"system":"https://caregate.test/requests","value":"rq-1"},)"
                   R"("identifier":[{"system":"https://caregate.test/guidance","value":"gr-1"}],)"
                   R"("moduleUri":"https://caregate.test/fhir/PlanDefinition/falls","status":"success",)"
                   R"("subject":{"reference":"Group/101"})"),
        definition("HealthcareService", "characteristic, coverage-area, program", {},
                   R"(,"characteristic":[{"coding":[{"system":"https://caregate.test/characteristics","code":"wheelchair"}]}],)"
                   R"("coverageArea":[{"reference":"Location/1"}],)"
                   R"("program":[{"coding":[{"system":"https://caregate.test/programs","code":"reablement"}]}])"),
        definition("InsurancePlan", "the plan's contact, owner, administrator, endpoint, identifier, status, type",
                   {"identifiers", "status"},
                   R"(,"type":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/insurance-plan-type","code":"medical"}]}],)"
                   R"("ownedBy":{"reference":"Organization/1"},"administeredBy":{"reference":"Organization/1"},)"
                   R"("endpoint":[{"reference":"Endpoint/example"}],"contact":[{"address":{"use":"work",)"
                   R"("line":["1 Quay Street"],"city":"Leeds","state":"West Yorkshire","postalCode":"LS1 4AP","country":"GB"}}])"),
        definition("Linkage", "author, item, source and the meta parameters (the official example links a citizen's items)",
                   {"meta"},
                   R"(,"author":{"reference":"Organization/1"},"item":[{"type":"source","resource":{"reference":"Organization/1"}},)"
                   R"({"type":"alternate","resource":{"reference":"Organization/2.16.840.1.113883.19.5"}}])"),
        definition("MedicationKnowledge", "classification, ingredient, manufacturer, monitoring programme, monograph type, "
                                          "cost source",
                   {},
                   R"(,"manufacturer":{"reference":"Organization/1"},)"
                   R"("ingredient":[{"itemReference":{"reference":"Substance/example"}},)"
                   R"({"itemCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"387517004"}]}}],)"
                   R"("cost":[{"type":{"text":"tariff"},"source":"NHS Drug Tariff","cost":{"value":1.2,"currency":"GBP"}}],)"
                   R"("monitoringProgram":[{"type":{"coding":[{"system":"https://caregate.test/programs","code":"blood"}]},"name":"INR"}],)"
                   R"("monograph":[{"type":{"coding":[{"system":"https://caregate.test/monographs","code":"patient"}]}}],)"
                   R"("medicineClassification":[{"type":{"coding":[{"system":"https://caregate.test/classes","code":"bnf"}]},)"
                   R"("classification":[{"coding":[{"system":"https://caregate.test/bnf","code":"0402"}]}]}])"),
        definition("MedicinalProduct", "identifier, name, name-language and the meta parameters (the official example "
                                       "attaches a DocumentReference)",
                   {"meta", "identifiers"},
                   R"(,"name":[{"productName":"Paracetamol 500 mg tablets","countryLanguage":[{)"
                   R"("country":{"coding":[{"system":"urn:iso:std:iso:3166","code":"GB"}]},)"
                   R"("language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en-GB"}]}}]}])"),
        definition("MedicinalProductAuthorization", "subject", {},
                   R"(,"subject":{"reference":"MedicinalProduct/caregate-fixture-medicinalproduct"})"),
        definition("MedicinalProductContraindication", "subject", {},
                   R"(,"subject":[{"reference":"MedicinalProduct/caregate-fixture-medicinalproduct"}])"),
        definition("MedicinalProductIndication", "subject", {},
                   R"(,"subject":[{"reference":"MedicinalProduct/caregate-fixture-medicinalproduct"}])"),
        definition("MedicinalProductInteraction", "subject", {},
                   R"(,"subject":[{"reference":"MedicinalProduct/caregate-fixture-medicinalproduct"}])"),
        definition("MedicinalProductUndesirableEffect", "subject", {},
                   R"(,"subject":[{"reference":"MedicinalProduct/caregate-fixture-medicinalproduct"}])"),
        definition("MedicinalProductPackaged", "subject", {},
                   R"(,"subject":[{"reference":"MedicinalProduct/caregate-fixture-medicinalproduct"}],)"
                   R"("packageItem":[{"type":{"text":"blister"},"quantity":{"value":16}}])"),
        definition("MedicinalProductPharmaceutical", "target-species", {},
                   R"(,"administrableDoseForm":{"text":"tablet"},"routeOfAdministration":[{"code":{"text":"oral"},)"
                   R"("targetSpecies":[{"code":{"coding":[{"system":"https://caregate.test/species","code":"human"}]}}]}])"),
        definition("MessageHeader", "author, code, destination, destination-uri, enterer, event, focus, receiver, "
                                    "response-id, responsible, sender, source, source-uri, target and the meta "
                                    "parameters (the official example's focus is an Encounter)",
                   {"meta"},
                   R"(,"eventCoding":{"system":"https://caregate.test/events","code":"admit"},)"
                   R"("destination":[{"name":"Social care","target":{"reference":"Device/example"},)"
                   R"("endpoint":"https://social-care.example/fhir","receiver":{"reference":"Organization/1"}}],)"
                   R"("sender":{"reference":"Organization/1"},"enterer":{"reference":"Practitioner/example"},)"
                   R"("author":{"reference":"Practitioner/example"},"responsible":{"reference":"Organization/1"},)"
                   R"("source":{"name":"Ward system","endpoint":"https://ward.example/fhir"},)"
                   R"("response":{"identifier":"5015fe84-8e76-4526-89d8-44b322e8d4fb","code":"ok"},)"
                   R"("focus":[{"reference":"Organization/1"}])"),
        definition("ResearchStudy", "category, date, focus, identifier, keyword, location, partof, principalinvestigator, "
                                    "protocol, site, sponsor, title",
                   {"identifiers", "title"},
                   R"(,"protocol":[{"reference":"PlanDefinition/caregate-fixture-plandefinition"}],)"
                   R"("partOf":[{"reference":"ResearchStudy/example"}],"status":"active",)"
                   R"("category":[{"coding":[{"system":"https://caregate.test/study-categories","code":"trial"}]}],)"
                   R"("focus":[{"coding":[{"system":"http://snomed.info/sct","code":"84114007"}]}],)"
                   R"("keyword":[{"coding":[{"system":"https://caregate.test/keywords","code":"frailty"}]}],)"
                   R"("location":[{"coding":[{"system":"urn:iso:std:iso:3166","code":"GB"}]}],)"
                   R"("period":{"start":"2026-01-01","end":"2027-12-31"},"sponsor":{"reference":"Organization/1"},)"
                   R"("principalInvestigator":{"reference":"Practitioner/example"},"site":[{"reference":"Location/1"}])"),
        definition("SpecimenDefinition", "identifier", {"identifier"}),
        definition("Substance", "substance-reference", {},
                   R"(,"code":{"text":"compound"},"ingredient":[{"substanceReference":{"reference":"Substance/example"}}])"),
        definition("SubstanceSpecification", "code", {},
                   R"(,"code":[{"code":{"coding":[{"system":"https://caregate.test/substances","code":"s1"}]}}])"),
        definition("VerificationResult", "target", {}, R"(,"target":[{"reference":"Organization/1"}],"status":"validated")"),
        // Types of which the package has no example at all: the common parameters.
        definition("SubstanceNucleicAcid", "the meta parameters (no official example)", {"meta"}),
        definition("SubstancePolymer", "the meta parameters (no official example)", {"meta"}),
        definition("SubstanceProtein", "the meta parameters (no official example)", {"meta"}),
        definition("SubstanceReferenceInformation", "the meta parameters (no official example)", {"meta"}),
        definition("SubstanceSourceMaterial", "the meta parameters (no official example)", {"meta"}),
    };
}

} // namespace caregate::storage::testing::search_fixture
