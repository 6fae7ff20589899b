// Demo data: test-range NHS numbers only (9000000009, 9000000017, 9000000025), invented people.
// Tom is registered with the GP practice A81001, Bunmi has an episode of care with the adult social
// care provider 8JK23, Ada is an inpatient of the acute trust RX1.
#include "cli/demo_data.hpp"

#include "fhir_model/resource.hpp"

#include <stdexcept>

namespace caregate::cli {

namespace {

struct demo_resource {
    const char* type;
    const char* id;
    const char* json;
};

const demo_resource demo_resources[] = {
    {"Patient", "9000000009", R"({"resourceType":"Patient","id":"9000000009","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"use":"official","family":"Demo","given":["Tom"]}],"gender":"male","birthDate":"1941-03-07","generalPractitioner":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"}}]})"},
    {"Patient", "9000000017", R"({"resourceType":"Patient","id":"9000000017","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000017"}],"name":[{"use":"official","family":"Example","given":["Bunmi"]}],"gender":"female","birthDate":"1958-11-02"})"},
    {"Patient", "9000000025", R"({"resourceType":"Patient","id":"9000000025","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000025"}],"name":[{"use":"official","family":"Sample","given":["Ada"]}],"gender":"female","birthDate":"1990-06-15"})"},
    {"Condition", "demo-condition-1", R"({"resourceType":"Condition","id":"demo-condition-1","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"38341003","display":"Hypertensive disorder"}]},"subject":{"reference":"Patient/9000000009"},"onsetDateTime":"2015-04-01"})"},
    {"Observation", "demo-observation-1", R"({"resourceType":"Observation","id":"demo-observation-1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/9000000009"},"effectiveDateTime":"2026-11-01T09:30:00Z","valueQuantity":{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}})"},
    {"Observation", "demo-observation-2", R"({"resourceType":"Observation","id":"demo-observation-2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}]},"subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000017"}},"effectiveDateTime":"2026-11-02","valueQuantity":{"value":68.40,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}})"},
    {"EpisodeOfCare", "demo-episode-1", R"({"resourceType":"EpisodeOfCare","id":"demo-episode-1","status":"active","patient":{"reference":"Patient/9000000017"},"managingOrganization":{"reference":"Organization/8JK23"}})"},
    {"Encounter", "demo-encounter-1", R"({"resourceType":"Encounter","id":"demo-encounter-1","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/9000000025"},"serviceProvider":{"reference":"Organization/RX1"}})"},
    {"AllergyIntolerance", "demo-allergy-1", R"({"resourceType":"AllergyIntolerance","id":"demo-allergy-1","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"764146007","display":"Penicillin"}]},"patient":{"reference":"Patient/9000000009"}})"},
};

} // namespace

int load_demo_data(storage::store& store) {
    int changed = 0;
    for (const demo_resource& item : demo_resources) {
        auto prepared = fhir::prepare_resource(item.json, item.type);
        if (!prepared)
            throw std::runtime_error(std::string("demo resource ") + item.type + "/" + item.id + " is invalid: " +
                                     fhir::operation_outcome_json(prepared.failure()));
        storage::write_request write;
        write.kind = storage::write_kind::update;
        write.type = item.type;
        write.id = item.id;
        write.content = std::move(prepared->content);
        write.citizens = std::move(prepared->citizens);
        write.access = std::move(prepared->access); // relationships, labels: what access control reads
        auto outcome = store.write(std::move(write));
        if (!outcome)
            throw std::runtime_error(std::string("demo resource ") + item.type + "/" + item.id + " was refused: " +
                                     fhir::operation_outcome_json(outcome.failure()));
        changed += outcome->unchanged ? 0 : 1;
    }
    return changed;
}

} // namespace caregate::cli
