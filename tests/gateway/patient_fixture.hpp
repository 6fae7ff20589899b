// The patient-facing endpoint beside the provider one, for the patient endpoint's tests: a patient
// application (citizens' tokens, patient_endpoint) on the same store as application_fixture's, citizen
// tokens shaped like NHS login's, and Tom's and Bunmi's records written through the provider side.
#pragma once

#include "application_fixture.hpp"

#include <rapidjson/document.h>

#include <algorithm>

namespace caregate::testing {

inline constexpr const char* tom = "9000000009";   // registered with A81001
inline constexpr const char* bunmi = "9000000017"; // another citizen
inline constexpr const char* patient_base_url = "https://localhost:9443/fhir";

inline std::string citizen_token(const std::string& nhs, const std::string& proofing = "P9",
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

inline std::string labelled_observation(const std::string& nhs, const std::string& label_system, const std::string& code) {
    return R"({"resourceType":"Observation","meta":{"security":[{"system":")" + label_system + R"(","code":")" + code +
           R"("}]},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/)" +
           nhs + R"("}})";
}

/// Tom's and Bunmi's records written through the provider endpoint, and the patient endpoint beside it.
struct patient_fixture : application_fixture {
    /// The one origin the patient endpoint's API serves to browsers (--cors-origins).
    static constexpr const char* app_origin = "https://app.example.nhs.uk";
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
        interactions::rest_config config;
        config.base_url = patient_base_url;
        config.patient_endpoint = true;
        config.cors_origins = {app_origin};
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

    static std::string created_id(const http::response& r) {
        REQUIRE_MESSAGE(r.status == 201, r.body);
        return json_of(r)["id"].GetString();
    }

    /// A request to the patient endpoint with a citizen's token; `headers` are added (X-Act-For, ...).
    http::response as_citizen(const std::string& token, const std::string& method, const std::string& target,
                              std::string body = {}, std::vector<http::header_field> headers = {}) {
        http::request req;
        req.method = method;
        req.target = "/fhir" + target;
        req.body = std::move(body);
        req.headers = std::move(headers);
        req.headers.push_back({"Authorization", "Bearer " + token});
        if (!req.body.empty())
            req.headers.push_back({"Content-Type", "application/fhir+json"});
        req.secure = true; // TLS, no client certificate: the patient listener asks for none
        std::promise<http::response> answered;
        auto future = answered.get_future();
        patient_app->handle(std::move(req), [&answered](http::response out) { answered.set_value(std::move(out)); });
        return future.get();
    }

    std::vector<std::string> ids_of(const http::response& bundle) {
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

} // namespace caregate::testing
