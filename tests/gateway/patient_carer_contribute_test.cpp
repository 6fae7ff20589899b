// Carers contributing for the citizen on the patient-facing endpoint: under an active grant whose
// scope includes contributing (the default policy's full-record-and-contributions), a carer acting
// with X-Act-For writes what the citizen could write themselves, and nothing else; each item is
// marked as the carer's (tag carer-contributed, meta.source, their RelatedPerson as performer,
// author or sender), committed with a Provenance naming the RelatedPerson acting for the Patient,
// seen by professionals and the citizen, changed only by the carer, withdrawn by the citizen, and in
// the citizen's access log; a read-only grant writes nothing, and a revoked grant stops at once.
#include "patient_fixture.hpp"

using namespace caregate;
using namespace caregate::testing;

namespace {

const std::string carer = bunmi; // Bunmi looks after Tom
const std::string provenance_system = "https://fhir.caregate.nhs.uk/CodeSystem/provenance";

std::string reading(const std::string& extra = {}, const std::string& category = "vital-signs") {
    return R"({"resourceType":"Observation",)" + (extra.empty() ? "" : extra + ",") +
           R"("status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
           category +
           R"("}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/9000000009"},"effectiveDateTime":"2026-12-01T08:00:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}})";
}

std::string related_person(const std::string& carer_nhs) {
    return R"({"resourceType":"RelatedPerson","patient":{"reference":"Patient/9000000009"},"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
           carer_nhs + R"("}],"name":[{"family":"Adeyemi"}]})";
}

std::string grant_json(const std::string& related_id, const std::string& scope, const std::string& id = {},
                       const std::string& status = "active") {
    return R"({"resourceType":"Consent",)" + (id.empty() ? "" : R"("id":")" + id + R"(",)") + R"("status":")" + status +
           R"(","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
           R"("category":[{"coding":[{"system":"https://fhir.caregate.nhs.uk/CodeSystem/proxy-access","code":")" + scope +
           R"("}]}],"patient":{"reference":"Patient/9000000009"},)"
           R"("policyRule":{"coding":[{"system":"https://fhir.caregate.nhs.uk/CodeSystem/proxy-basis","code":"citizen-consent"}]},)"
           R"("provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-RoleCode","code":"DAU"}]},"reference":{"reference":"RelatedPerson/)" +
           related_id + R"("}}]}})";
}

bool has_tag(const rapidjson::Value& resource, const std::string& code) {
    if (!resource.HasMember("meta") || !resource["meta"].HasMember("tag"))
        return false;
    for (const auto& tag : resource["meta"]["tag"].GetArray())
        if (tag["system"].GetString() == provenance_system && tag["code"].GetString() == code)
            return true;
    return false;
}

struct carer_fixture : patient_fixture {
    const std::string citizen = citizen_token(tom, "P9", {"patient/*.cruds"});
    std::string related, consent;

    carer_fixture() {
        related = created_id(as_citizen(citizen, "POST", "/RelatedPerson", related_person(carer)));
    }

    void grant(const std::string& scope) {
        consent = created_id(as_citizen(citizen, "POST", "/Consent", grant_json(related, scope)));
    }

    http::response as_carer(const std::string& method, const std::string& target, std::string body = {},
                            const std::string& who = carer) {
        return as_citizen(citizen_token(who, "P9", {"patient/*.cruds"}), method, target, std::move(body), {{"X-Act-For", tom}});
    }

    /// The Provenances of `item` ("Type/id"), as a GP finds them through the provider API.
    std::vector<rapidjson::Document> provenances_of(const std::string& item) {
        auto found = call_as(gp_clinician(), "GET", "/Provenance?target=" + item);
        REQUIRE_MESSAGE(found.status == 200, found.body);
        std::vector<rapidjson::Document> out;
        auto bundle = json_of(found);
        if (bundle.HasMember("entry"))
            for (const auto& entry : bundle["entry"].GetArray()) {
                rapidjson::Document one;
                one.CopyFrom(entry["resource"], one.GetAllocator());
                out.push_back(std::move(one));
            }
        return out;
    }
};

} // namespace

TEST_CASE("carers contribute: a reading is the carer's for the citizen, with its Provenance, seen by the GP and the citizen") {
    carer_fixture f;
    f.grant("full-record-and-contributions");
    auto written = f.as_carer("POST", "/Observation", reading());
    REQUIRE_MESSAGE(written.status == 201, written.body);
    const auto stored = json_of(written);
    const std::string id = stored["id"].GetString();
    CHECK(has_tag(stored, "carer-contributed"));
    CHECK_FALSE(has_tag(stored, "patient-contributed"));
    CHECK(std::string(stored["meta"]["source"].GetString()) == "https://fhir.caregate.nhs.uk/patient-endpoint");
    REQUIRE(stored["performer"].Size() == 1);
    CHECK(std::string(stored["performer"][0]["reference"].GetString()) == "RelatedPerson/" + f.related);

    // The GP sees who wrote it: the tag, the performer, and the Provenance committed with it.
    auto by_gp = f.call_as(gp_clinician(), "GET", "/Observation/" + id);
    REQUIRE_MESSAGE(by_gp.status == 200, by_gp.body);
    CHECK(has_tag(json_of(by_gp), "carer-contributed"));
    auto provenances = f.provenances_of("Observation/" + id);
    REQUIRE(provenances.size() == 1);
    const auto& provenance = provenances.front();
    CHECK(std::string(provenance["agent"][0]["who"]["reference"].GetString()) == "RelatedPerson/" + f.related);
    CHECK(std::string(provenance["agent"][0]["onBehalfOf"]["reference"].GetString()) == std::string("Patient/") + tom);
    CHECK(std::string(provenance["activity"]["coding"][0]["code"].GetString()) == "CREATE");
    CHECK(has_tag(provenance, "carer-contributed"));

    // The citizen sees it, and the carer's contribution is in their access log, as the carer's.
    CHECK(f.as_citizen(f.citizen, "GET", "/Observation/" + id).status == 200);
    f.flush();
    auto trail = f.store->audit({tom, std::string("nhs:") + carer, {}, {}, 50, {}});
    REQUIRE(trail.ok());
    CHECK(std::any_of(trail->records.begin(), trail->records.end(), [&](const storage::audit_record& r) {
        return r.action == "create" && r.resource_ids == id && r.role == "proxy:citizen-consent";
    }));

    // Nobody else sees any of it: another citizen, as themselves, finds neither the item nor its
    // Provenance.
    const std::string other = citizen_token("9000000025", "P9");
    CHECK(f.as_citizen(other, "GET", "/Observation/" + id).status == 404);
    CHECK(f.as_citizen(other, "GET", "/Provenance/" + std::string(provenance["id"].GetString())).status == 404);
}

TEST_CASE("carers contribute: only what the citizen could write, in the carer's own name, under a grant that says so") {
    carer_fixture f;
    f.grant("full-record");
    // A read-only grant writes nothing.
    CHECK(f.as_carer("POST", "/Observation", reading()).status == 403);
    f.grant("full-record-and-contributions"); // the wider grant, listed first in the policy, applies
    CHECK(f.as_carer("POST", "/Observation", reading()).status == 201);
    // Never a professional's kind of item, never the citizen's sharing choices or carers.
    CHECK(f.as_carer("POST", "/Observation", reading({}, "laboratory")).status == 403);
    CHECK(f.as_carer("POST", "/Consent", grant_json(f.related, "full-record")).status == 403);
    CHECK(f.as_carer("POST", "/RelatedPerson", related_person("9000000025")).status == 403);
    // Never in the citizen's name, or anyone else's.
    auto as_tom = f.as_carer("POST", "/Observation", reading(R"("performer":[{"reference":"Patient/9000000009"}])"));
    CHECK(as_tom.status == 422);
    CHECK(f.as_carer("POST", "/Observation", reading(R"("performer":[{"reference":"Practitioner/gp-1"}])")).status == 422);
    // A conditional write is refused: its Provenance must name exactly what was written.
    http::response conditional = f.as_citizen(citizen_token(carer, "P9", {"patient/*.cruds"}), "POST", "/Observation", reading(),
                                              {{"X-Act-For", tom}, {"If-None-Exist", "code=8867-4"}});
    CHECK(conditional.status == 400);
    // Someone with no grant writes nothing, and leaves no Provenance.
    CHECK(f.as_carer("POST", "/Observation", reading(), "9000000025").status == 403);
}

TEST_CASE("carers contribute: the carer changes only their own items, the citizen withdraws them, a revocation stops at once") {
    carer_fixture f;
    f.grant("full-record-and-contributions");
    const std::string mine = json_of(f.as_carer("POST", "/Observation", reading()))["id"].GetString();
    const std::string toms = json_of(f.as_citizen(f.citizen, "POST", "/Observation", reading()))["id"].GetString();

    // The carer corrects their own reading: a new version, and a Provenance of the update.
    auto corrected = f.as_carer("PUT", "/Observation/" + mine, reading(R"("id":")" + mine + R"(")"));
    REQUIRE_MESSAGE(corrected.status == 200, corrected.body);
    CHECK(f.provenances_of("Observation/" + mine).size() == 2);
    // Not the citizen's own reading, nor a professional's item.
    CHECK(f.as_carer("PUT", "/Observation/" + toms, reading(R"("id":")" + toms + R"(")")).status == 403);
    CHECK(f.as_carer("DELETE", "/Observation/" + toms).status == 403);
    CHECK(f.as_carer("DELETE", "/Observation/" + f.tom_observation).status == 403);

    // The citizen withdraws the carer's reading.
    CHECK(f.as_citizen(f.citizen, "DELETE", "/Observation/" + mine).status == 204);
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/" + mine).status == 410);

    // Revoked: the next contribution, and any change, is refused.
    const std::string another = json_of(f.as_carer("POST", "/Observation", reading()))["id"].GetString();
    REQUIRE(f.as_citizen(f.citizen, "PUT", "/Consent/" + f.consent,
                         grant_json(f.related, "full-record-and-contributions", f.consent, "inactive"))
                .status == 200);
    CHECK(f.as_carer("POST", "/Observation", reading()).status == 403);
    CHECK(f.as_carer("PUT", "/Observation/" + another, reading(R"("id":")" + another + R"(")")).status == 403);
    CHECK(f.as_carer("DELETE", "/Observation/" + another).status == 403);
}

TEST_CASE("carers contribute: a transaction commits each of the carer's writes with its Provenance") {
    carer_fixture f;
    f.grant("full-record-and-contributions");
    const std::string bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[)"
                               R"({"resource":)" + reading() + R"(,"request":{"method":"POST","url":"Observation"}},)"
                               R"({"resource":)" + reading() + R"(,"request":{"method":"POST","url":"Observation"}}]})";
    auto answered = f.as_carer("POST", "", bundle);
    REQUIRE_MESSAGE(answered.status == 200, answered.body);
    auto doc = json_of(answered);
    REQUIRE(doc["entry"].Size() == 2); // one answer an entry; the Provenances answer none
    for (const auto& entry : doc["entry"].GetArray()) {
        const std::string location = entry["response"]["location"].GetString();
        const std::string relative = location.substr(location.find("Observation/"));
        const std::string item = relative.substr(0, relative.find("/_history"));
        CAPTURE(item);
        CHECK(f.provenances_of(item).size() == 1);
    }
}

TEST_CASE("carers contribute: a policy whose carer scope would write more than the citizen may is refused at start") {
    // The default's contributing scope, with one of its create grants replaced by `grant`.
    const std::string original = R"(            "QuestionnaireResponse",
            "Communication"
          ],
          "update": [)";
    auto with_create = [&](const std::string& grant) {
        std::string policy(access::default_policy_json);
        const auto at = policy.find(original);
        REQUIRE(at != std::string::npos);
        policy.replace(at, original.size(), R"(            "QuestionnaireResponse",
            )" + grant + R"(
          ],
          "update": [)");
        return policy;
    };
    CHECK_NOTHROW(access::policy::parse(with_create(R"("Communication")")));
    // A narrower part of what the citizen may write is fine.
    CHECK_NOTHROW(access::policy::parse(with_create(
        R"({"type": "Observation", "where": ["category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"]})")));
    for (const std::string& wider : {std::string(R"("Consent")"), std::string(R"("RelatedPerson")"), std::string(R"("*")"),
                                     std::string(R"("Observation")"), std::string(R"("Condition")"),
                                     std::string(R"({"type": "Observation", "where": ["category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"]})")}) {
        CAPTURE(wider);
        CHECK_THROWS_AS(access::policy::parse(with_create(wider)), std::invalid_argument);
    }
}
