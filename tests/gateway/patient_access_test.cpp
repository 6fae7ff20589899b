// The patient-facing endpoint's access model (issue 6) through the handle() seam: a citizen with an
// NHS login-shaped token sees their own record and nothing else (another NHS number is 404, exactly
// as for a record that does not exist), P5 sees demographics only, P0 nothing, an item marked not for
// patient view never appears (read, search, total, $everything), and the app's scopes narrow it.
#include "application_fixture.hpp"

#include <rapidjson/document.h>

using namespace caregate;
using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009";   // registered with A81001
constexpr const char* bunmi = "9000000017"; // another citizen
constexpr const char* patient_base_url = "https://localhost:9443/fhir";

std::string citizen_token(const std::string& nhs, const std::string& proofing = "P9",
                          std::vector<std::string> scopes = {"patient/*.rs"}) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    auth::token_claims claims;
    claims.issuer = test_issuer;
    claims.audience = patient_base_url;
    claims.user = "nhs-login-" + nhs.substr(6); // a pseudonymous sub, as NHS login's
    claims.nhs_number = nhs;
    claims.proofing_level = proofing;
    claims.vot = proofing + ".Cp.Cd";
    claims.scopes = std::move(scopes);
    claims.issued_at = now;
    claims.not_before = now;
    claims.expires = now + 3600;
    return auth::mint_token(claims, test_keys::get().private_pem);
}

rapidjson::Document json_of(const rest::response& r) {
    rapidjson::Document doc;
    doc.Parse(r.body.c_str());
    REQUIRE_MESSAGE(!doc.HasParseError(), r.body);
    return doc;
}

std::string labelled_observation(const std::string& nhs, const std::string& label_system, const std::string& code) {
    return R"({"resourceType":"Observation","meta":{"security":[{"system":")" + label_system + R"(","code":")" + code +
           R"("}]},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/)" +
           nhs + R"("}})";
}

/// Tom's and Bunmi's records written through the provider endpoint, and the patient endpoint beside it.
struct patient_fixture : application_fixture {
    std::unique_ptr<auth::token_verifier> citizen_tokens;
    std::unique_ptr<access::guard> citizen_guard;
    std::unique_ptr<rest::application> patient_app;
    std::string tom_observation, tom_hidden, tom_safeguarding, bunmi_observation;

    patient_fixture() {
        auth::verifier_settings settings;
        settings.audience = patient_base_url;
        settings.kind = auth::token_kind::citizen;
        citizen_tokens = std::make_unique<auth::token_verifier>(
            std::vector<auth::trusted_issuer>{{test_issuer, {test_keys::get().public_pem}, {}}}, settings);
        citizen_guard = std::make_unique<access::guard>(policy, organisations, *citizen_tokens, *store);
        rest::rest_config config;
        config.base_url = patient_base_url;
        config.patient_endpoint = true;
        patient_app = std::make_unique<rest::application>(*store, *citizen_guard, config);

        REQUIRE(call("PUT", std::string("/Patient/") + tom,
                     patient_json(tom, R"("id":"9000000009","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
        REQUIRE(call("PUT", std::string("/Patient/") + bunmi, patient_json(bunmi, R"("id":"9000000017")")).status == 201);
        tom_observation = created_id(call_as(gp_clinician(), "POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})")));
        tom_hidden = created_id(call_as(gp_clinician(), "POST", "/Observation",
                                        labelled_observation(tom, "http://terminology.hl7.org/CodeSystem/v3-ActCode", "NOPAT")));
        tom_safeguarding = created_id(call_as(gp_clinician(), "POST", "/Observation",
                                              labelled_observation(tom, "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "V")));
        bunmi_observation = created_id(call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000017"})")));
    }
    ~patient_fixture() {
        patient_app.reset();
        citizen_guard.reset();
    }

    static std::string created_id(const rest::response& r) {
        REQUIRE_MESSAGE(r.status == 201, r.body);
        return json_of(r)["id"].GetString();
    }

    rest::response as_citizen(const std::string& token, const std::string& method, const std::string& target) {
        rest::request req;
        req.method = method;
        req.target = "/fhir" + target;
        req.headers.push_back({"Authorization", "Bearer " + token});
        req.secure = true; // TLS, no client certificate: the patient listener asks for none
        std::promise<rest::response> answered;
        auto future = answered.get_future();
        patient_app->handle(std::move(req), [&answered](rest::response out) { answered.set_value(std::move(out)); });
        return future.get();
    }

    std::vector<std::string> ids_of(const rest::response& bundle) {
        REQUIRE_MESSAGE(bundle.status == 200, bundle.body);
        std::vector<std::string> ids;
        auto doc = json_of(bundle);
        if (doc.HasMember("entry"))
            for (const auto& e : doc["entry"].GetArray())
                ids.push_back(std::string(e["resource"]["resourceType"].GetString()) + "/" + e["resource"]["id"].GetString());
        std::sort(ids.begin(), ids.end());
        return ids;
    }
};

} // namespace

TEST_CASE("patient endpoint: a citizen reads their own record; another NHS number is 404, as if absent") {
    patient_fixture f;
    const std::string token = citizen_token(tom);
    CHECK(f.as_citizen(token, "GET", std::string("/Patient/") + tom).status == 200);
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.tom_observation).status == 200);

    auto other = f.as_citizen(token, "GET", std::string("/Patient/") + bunmi);
    auto absent = f.as_citizen(token, "GET", "/Patient/9000000025");
    CHECK(other.status == 404);
    CHECK(absent.status == 404);
    CHECK(json_of(other)["issue"][0]["diagnostics"] == json_of(absent)["issue"][0]["diagnostics"]);
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.bunmi_observation).status == 404);
    CHECK(f.as_citizen(token, "GET", std::string("/Patient/") + bunmi + "/$everything").status == 404);

    // Searches find their own only, whatever they ask for, and count only those.
    CHECK(f.ids_of(f.as_citizen(token, "GET", "/Observation")) == std::vector<std::string>{"Observation/" + f.tom_observation});
    CHECK(f.ids_of(f.as_citizen(token, "GET", std::string("/Observation?subject=Patient/") + bunmi)).empty());
    auto counted = f.as_citizen(token, "GET", "/Patient?_total=accurate");
    CHECK(json_of(counted)["total"].GetInt() == 1);
    CHECK(f.ids_of(counted) == std::vector<std::string>{std::string("Patient/") + tom});
    auto everything = f.ids_of(f.as_citizen(token, "GET", std::string("/Patient/") + tom + "/$everything"));
    CHECK(std::find(everything.begin(), everything.end(), "Observation/" + f.tom_observation) != everything.end());
    CHECK(std::find(everything.begin(), everything.end(), "Observation/" + f.bunmi_observation) == everything.end());
}

TEST_CASE("patient endpoint: items not for patient view (NOPAT) and very restricted items (V) never appear") {
    patient_fixture f;
    const std::string token = citizen_token(tom);
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.tom_hidden).status == 404);
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.tom_safeguarding).status == 404);
    auto found = f.as_citizen(token, "GET", "/Observation?_total=accurate");
    CHECK(json_of(found)["total"].GetInt() == 1);
    auto everything = f.ids_of(f.as_citizen(token, "GET", std::string("/Patient/") + tom + "/$everything"));
    for (const auto& hidden : {f.tom_hidden, f.tom_safeguarding})
        CHECK(std::find(everything.begin(), everything.end(), "Observation/" + hidden) == everything.end());
    // The GP still sees them.
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/" + f.tom_hidden).status == 200);
}

TEST_CASE("patient endpoint: P5 sees demographics only, P0 nothing; scopes narrow what the app may read") {
    patient_fixture f;
    const std::string p5 = citizen_token(tom, "P5");
    CHECK(f.as_citizen(p5, "GET", std::string("/Patient/") + tom).status == 200);
    CHECK(f.as_citizen(p5, "GET", "/Observation/" + f.tom_observation).status == 403);
    CHECK(f.as_citizen(p5, "GET", "/Observation").status == 403);
    auto everything = f.as_citizen(p5, "GET", std::string("/Patient/") + tom + "/$everything");
    if (everything.status == 200) // their Patient, and no clinical item
        CHECK(f.ids_of(everything) == std::vector<std::string>{std::string("Patient/") + tom});

    const std::string p0 = citizen_token(tom, "P0");
    CHECK(f.as_citizen(p0, "GET", std::string("/Patient/") + tom).status == 403);

    const std::string observations_only = citizen_token(tom, "P9", {"patient/Observation.rs"});
    CHECK(f.as_citizen(observations_only, "GET", "/Observation/" + f.tom_observation).status == 200);
    CHECK(f.as_citizen(observations_only, "GET", std::string("/Patient/") + tom).status == 403);
    const std::string no_scopes = citizen_token(tom, "P9", {});
    CHECK(f.as_citizen(no_scopes, "GET", "/Observation/" + f.tom_observation).status == 403);
    const std::string v1 = citizen_token(tom, "P9", {"patient/*.read"});
    CHECK(f.as_citizen(v1, "GET", "/Observation/" + f.tom_observation).status == 200);
}

TEST_CASE("patient endpoint: a provider's token is refused there, and a citizen's at the provider endpoint") {
    patient_fixture f;
    CHECK(f.as_citizen(token_for(gp_clinician()), "GET", std::string("/Patient/") + tom).status == 401);
    auto at_provider = f.call("GET", std::string("/Patient/") + tom, {}, {{"Authorization", "Bearer " + citizen_token(tom)}});
    CHECK(at_provider.status == 401);
}

TEST_CASE("patient endpoint: a citizen's reads are audited as patient-requested, naming them") {
    patient_fixture f;
    REQUIRE(f.as_citizen(citizen_token(tom), "GET", "/Observation/" + f.tom_observation).status == 200);
    f.flush();
    auto trail = f.store->audit({tom, {}, {}, "PATRQT", 10, {}});
    REQUIRE(trail.ok());
    REQUIRE_FALSE(trail->records.empty());
    CHECK(trail->records.front().role == "citizen");
    CHECK(trail->records.front().organisation == std::string("patient:") + tom);
    CHECK(trail->records.front().resource_ids == f.tom_observation);
}
