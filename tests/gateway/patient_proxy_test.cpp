// Carers (proxies) on the patient-facing endpoint: a carer verified to P9, with an active
// grant in the citizen's record (a RelatedPerson with the carer's NHS number and a Consent permitting
// it, with a scope and a basis), acts for the citizen with `X-Act-For` and gets exactly the granted
// scope; without a grant, or after it is revoked, nothing; every action audited as the carer's.
#include "patient_fixture.hpp"

using namespace caregate;
using namespace caregate::testing;

namespace {

const std::string carer = bunmi; // Bunmi looks after Tom

std::string related_person(const std::string& citizen, const std::string& carer_nhs) {
    return R"({"resourceType":"RelatedPerson","patient":{"reference":"Patient/)" + citizen +
           R"("},"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + carer_nhs +
           R"("}],"relationship":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-RoleCode","code":"DAU"}]}],"name":[{"family":"Adeyemi"}]})";
}

std::string proxy_consent(const std::string& citizen, const std::string& related_id, const std::string& scope,
                          const std::string& basis, const std::string& status = "active", const std::string& period = {}) {
    return R"({"resourceType":"Consent","status":")" + status +
           R"(","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
           R"("category":[{"coding":[{"system":"https://fhir.caregate.nhs.uk/CodeSystem/proxy-access","code":")" + scope +
           R"("}]}],"patient":{"reference":"Patient/)" + citizen +
           R"("},"policyRule":{"coding":[{"system":"https://fhir.caregate.nhs.uk/CodeSystem/proxy-basis","code":")" + basis +
           R"("}]},"provision":{"type":"permit",)" + (period.empty() ? "" : R"("period":)" + period + ",") +
           R"("actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-RoleCode","code":"DAU"}]},"reference":{"reference":"RelatedPerson/)" +
           related_id + R"("}}]}})";
}

struct proxy_fixture : patient_fixture {
    std::string appointment, medication, related;

    proxy_fixture() {
        appointment = created_id(call("POST", "/Appointment",
                                      R"({"resourceType":"Appointment","status":"booked","participant":[{"actor":{"reference":"Patient/9000000009"},"status":"accepted"}]})"));
        medication = created_id(call_as(gp_clinician(), "POST", "/MedicationRequest",
                                        R"({"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"metformin"},"subject":{"reference":"Patient/9000000009"}})"));
        related = created_id(call("POST", "/RelatedPerson", related_person(tom, carer)));
    }

    std::string grant(const std::string& scope, const std::string& basis = "citizen-consent",
                      const std::string& period = {}) {
        return created_id(call("POST", "/Consent", proxy_consent(tom, related, scope, basis, "active", period)));
    }

    http::response as_carer(const std::string& target, const std::string& proofing = "P9") {
        return as_citizen(citizen_token(carer, proofing), "GET", target, {}, {{"X-Act-For", tom}});
    }
};

} // namespace

TEST_CASE("carers: with an appointments-and-medications grant, appointments and medicines and nothing else") {
    proxy_fixture f;
    f.grant("appointments-and-medications");
    CHECK(f.as_carer("/Appointment/" + f.appointment).status == 200);
    CHECK(f.as_carer("/MedicationRequest/" + f.medication).status == 200);
    CHECK(f.as_carer(std::string("/Patient/") + tom).status == 200);
    CHECK(f.ids_of(f.as_carer("/Appointment")) == std::vector<std::string>{"Appointment/" + f.appointment});
    CHECK(f.as_carer("/Observation/" + f.tom_observation).status == 403);
    CHECK(f.as_carer("/Observation").status == 403);
    auto everything = f.ids_of(f.as_carer(std::string("/Patient/") + tom + "/$everything"));
    for (const auto& id : everything)
        CHECK_MESSAGE((id.starts_with("Appointment/") || id.starts_with("MedicationRequest/") || id.starts_with("Patient/")), id);
    // Nobody else's record, whatever the header says.
    CHECK(f.as_citizen(citizen_token(carer), "GET", "/Appointment/" + f.appointment, {}, {{"X-Act-For", "9000000025"}}).status == 403);
}

TEST_CASE("carers: a full-record grant opens what the citizen sees, never what is hidden from the patient") {
    proxy_fixture f;
    f.grant("full-record", "lasting-power-of-attorney");
    CHECK(f.as_carer("/Observation/" + f.tom_observation).status == 200);
    CHECK(f.as_carer("/Observation/" + f.tom_hidden).status == 404);
    CHECK(f.as_carer("/Observation/" + f.tom_safeguarding).status == 404);
    CHECK(f.as_carer("/Observation/" + f.bunmi_observation).status == 404); // the carer's own record is not Tom's
}

TEST_CASE("carers: no grant, a grant not yet begun or ended, or a P5 carer: nothing") {
    proxy_fixture f;
    CHECK(f.as_carer("/Appointment/" + f.appointment).status == 403);
    f.grant("full-record", "citizen-consent", R"({"start":"2099-01-01"})");
    CHECK(f.as_carer("/Appointment/" + f.appointment).status == 403);
    f.grant("full-record", "citizen-consent", R"({"end":"2000-01-01"})");
    CHECK(f.as_carer("/Appointment/" + f.appointment).status == 403);
    f.grant("full-record");
    CHECK(f.as_carer("/Appointment/" + f.appointment).status == 200);
    CHECK(f.as_carer("/Appointment/" + f.appointment, "P5").status == 403);
    // Without the header the carer is themselves.
    CHECK(f.as_citizen(citizen_token(carer), "GET", "/Observation/" + f.bunmi_observation).status == 200);
}

TEST_CASE("carers: revoking the grant takes effect on the next request") {
    proxy_fixture f;
    const std::string consent = f.grant("appointments-and-medications");
    REQUIRE(f.as_carer("/Appointment/" + f.appointment).status == 200);
    auto revoked = f.call("PUT", "/Consent/" + consent,
                          R"({"resourceType":"Consent","id":")" + consent + R"(",)" +
                              proxy_consent(tom, f.related, "appointments-and-medications", "citizen-consent", "inactive").substr(26));
    REQUIRE_MESSAGE(revoked.status == 200, revoked.body);
    CHECK(f.as_carer("/Appointment/" + f.appointment).status == 403);
}

TEST_CASE("carers: every action is audited as the carer's, on the citizen's record") {
    proxy_fixture f;
    f.grant("appointments-and-medications", "lasting-power-of-attorney");
    REQUIRE(f.as_carer("/Appointment/" + f.appointment).status == 200);
    f.flush();
    auto trail = f.store->audit({tom, {}, {}, "PWATRNY", 10, {}});
    REQUIRE(trail.ok());
    REQUIRE_FALSE(trail->records.empty());
    CHECK(trail->records.front().user == std::string("nhs:") + carer);
    CHECK(trail->records.front().role == "proxy:lasting-power-of-attorney");
    CHECK(trail->records.front().resource_ids == f.appointment);
}

TEST_CASE("carers: a citizen names a carer and grants, then revokes, on the patient endpoint") {
    patient_fixture f;
    const std::string citizen = citizen_token(tom, "P9", {"patient/*.cruds"});
    auto named = f.as_citizen(citizen, "POST", "/RelatedPerson", related_person(tom, carer));
    REQUIRE_MESSAGE(named.status == 201, named.body);
    const std::string related = json_of(named)["id"].GetString();
    auto granted = f.as_citizen(citizen, "POST", "/Consent",
                                proxy_consent(tom, related, "full-record", "citizen-consent"));
    REQUIRE_MESSAGE(granted.status == 201, granted.body);
    const std::string consent = json_of(granted)["id"].GetString();

    auto as_carer = [&] {
        return f.as_citizen(citizen_token(carer), "GET", "/Observation/" + f.tom_observation, {}, {{"X-Act-For", tom}});
    };
    CHECK(as_carer().status == 200);
    // While the grant stands, the carer still cannot write for the citizen: a grant opens reading only.
    CHECK(f.as_citizen(citizen_token(carer, "P9", {"patient/*.cruds"}), "POST", "/Consent",
                       proxy_consent(tom, related, "full-record", "citizen-consent"), {{"X-Act-For", tom}})
              .status == 403);
    CHECK(f.as_citizen(citizen, "DELETE", "/Consent/" + consent).status == 204);
    CHECK(as_carer().status == 403);
}
