// The patient-facing endpoint's discovery documents through the handle() seam: SMART App
// Launch 2.0's `.well-known/smart-configuration` (https://hl7.org/fhir/smart-app-launch/conformance.html)
// and its own CapabilityStatement. Who may read what there is tested with the citizen access model.
#include "application_fixture.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <string>
#include <vector>

using caregate::testing::application_fixture;
using caregate::testing::json_of;
using caregate::testing::at;
using caregate::testing::text_at;

namespace rest = caregate::rest;
namespace http = caregate::http;
namespace interactions = caregate::interactions;
namespace auth = caregate::auth;

namespace {

constexpr const char* patient_base_url = "https://localhost:9443/fhir";

/// The test fixture's store and policy, with a second application as `caregate serve` makes for the
/// patient-facing endpoint: its own verifier (citizens' tokens, its own audience), guard and lists.
/// The lists are the test's own; `caregate serve` takes them from access::policy::patient_types.
struct patient_endpoint {
    application_fixture f;
    std::unique_ptr<auth::token_verifier> tokens;
    std::unique_ptr<caregate::access::guard> guard;
    std::unique_ptr<rest::application> app;

    explicit patient_endpoint(std::vector<std::string> readable = {"AuditEvent", "Condition", "Observation", "Patient"},
                              std::vector<std::string> creatable = {"Observation", "QuestionnaireResponse"}) {
        auth::verifier_settings settings;
        settings.audience = patient_base_url;
        settings.kind = auth::token_kind::citizen;
        tokens = std::make_unique<auth::token_verifier>(
            std::vector<auth::trusted_issuer>{
                {caregate::testing::test_issuer, {caregate::testing::test_keys::get().public_pem}, {}}},
            settings);
        guard = std::make_unique<caregate::access::guard>(f.policy, f.organisations, *tokens, *f.store);
        interactions::rest_config config;
        config.base_url = patient_base_url;
        config.patient_endpoint = true;
        config.smart.issuer = "https://auth.login.nhs.uk";
        config.smart.authorization_endpoint = "https://auth.login.nhs.uk/authorize";
        config.smart.token_endpoint = "https://auth.login.nhs.uk/token";
        config.smart.jwks_uri = "https://auth.login.nhs.uk/.well-known/jwks.json";
        config.patient_readable_types = std::move(readable);
        config.patient_creatable_types = std::move(creatable);
        app = std::make_unique<rest::application>(*f.store, *guard, config);
    }
    ~patient_endpoint() {
        app.reset(); // before the fixture's store
        guard.reset();
    }

    /// A request with no token and no client certificate, as an app's first call is.
    http::response call(std::string method, std::string target, std::vector<http::header_field> headers = {}) {
        http::request req;
        req.method = std::move(method);
        req.target = "/fhir" + target;
        req.headers = std::move(headers);
        req.secure = true;
        std::promise<http::response> answered;
        auto future = answered.get_future();
        app->handle(std::move(req), [&answered](http::response out) { answered.set_value(std::move(out)); });
        return future.get();
    }
};

std::vector<std::string> strings(const rapidjson::Value& array) {
    std::vector<std::string> out;
    for (const auto& value : array.GetArray())
        out.push_back(value.GetString());
    return out;
}

bool has(const std::vector<std::string>& values, const std::string& value) {
    return std::find(values.begin(), values.end(), value) != values.end();
}

std::string issue_code(const http::response& r) {
    auto doc = json_of(r);
    REQUIRE(std::string(doc["resourceType"].GetString()) == "OperationOutcome");
    return text_at(doc, "issue", 0, "code");
}

/// rest[0].resource by type.
const rapidjson::Value* resource_of(const rapidjson::Document& statement, const std::string& type) {
    for (const auto& resource : at(statement, "rest", 0, "resource").GetArray())
        if (type == resource["type"].GetString())
            return &resource;
    return nullptr;
}

std::vector<std::string> interaction_codes(const rapidjson::Value& resource) {
    std::vector<std::string> codes;
    for (const auto& i : resource["interaction"].GetArray())
        codes.push_back(i["code"].GetString());
    return codes;
}

std::vector<std::string> search_param_names(const rapidjson::Value& resource) {
    std::vector<std::string> names;
    if (resource.HasMember("searchParam"))
        for (const auto& p : resource["searchParam"].GetArray())
            names.push_back(p["name"].GetString());
    return names;
}

} // namespace

TEST_CASE("smart-configuration: SMART App Launch 2.0 discovery, the required fields and what this endpoint honours") {
    patient_endpoint p;
    auto r = p.call("GET", "/.well-known/smart-configuration", {{"Accept", "application/json"}});
    REQUIRE(r.status == 200); // no token: apps read it before anyone has logged in
    CHECK(r.header("Content-Type").starts_with("application/json"));
    auto doc = json_of(r);

    // The configured identity provider's endpoints.
    CHECK(std::string(doc["issuer"].GetString()) == "https://auth.login.nhs.uk");
    CHECK(std::string(doc["authorization_endpoint"].GetString()) == "https://auth.login.nhs.uk/authorize");
    CHECK(std::string(doc["token_endpoint"].GetString()) == "https://auth.login.nhs.uk/token");
    CHECK(std::string(doc["jwks_uri"].GetString()) == "https://auth.login.nhs.uk/.well-known/jwks.json");

    CHECK(strings(doc["grant_types_supported"]) == std::vector<std::string>{"authorization_code"});
    // S256 required; "plain" must not be offered.
    CHECK(strings(doc["code_challenge_methods_supported"]) == std::vector<std::string>{"S256"});
    CHECK(strings(doc["response_types_supported"]) == std::vector<std::string>{"code"});
    const auto auth_methods = strings(doc["token_endpoint_auth_methods_supported"]);
    CHECK(has(auth_methods, "none"));            // client-public
    CHECK(has(auth_methods, "private_key_jwt")); // client-confidential-asymmetric
    CHECK_FALSE(has(auth_methods, "client_secret_basic"));

    // The endpoint's SMART capabilities, and nothing this endpoint cannot honour.
    const auto capabilities = strings(doc["capabilities"]);
    for (const char* wanted : {"launch-standalone", "client-public", "context-standalone-patient", "permission-patient",
                               "permission-v1", "permission-v2"})
        CHECK_MESSAGE(has(capabilities, wanted), wanted);
    for (const char* untrue : {"launch-ehr", "sso-openid-connect", "permission-offline", "permission-user",
                               "context-ehr-patient", "client-confidential-symmetric"})
        CHECK_FALSE_MESSAGE(has(capabilities, untrue), untrue);

    // Scopes from the endpoint's lists: the whole record in v1 and v2 syntax, .rs per readable type,
    // .cruds per type a citizen contributes.
    const auto scopes = strings(doc["scopes_supported"]);
    for (const char* wanted : {"openid", "launch/patient", "patient/*.rs", "patient/*.read", "patient/*.write",
                               "patient/*.cruds", "patient/Condition.rs", "patient/Patient.rs",
                               "patient/Observation.rs", "patient/Observation.cruds",
                               "patient/QuestionnaireResponse.cruds"})
        CHECK_MESSAGE(has(scopes, wanted), wanted);
    CHECK_FALSE(has(scopes, "patient/Condition.cruds")); // read only
    CHECK_FALSE(has(scopes, "fhirUser"));
    CHECK_FALSE(has(scopes, "offline_access"));
    CHECK(std::set<std::string>(scopes.begin(), scopes.end()).size() == scopes.size());
}

TEST_CASE("smart-configuration: no write scopes while citizens may contribute nothing") {
    patient_endpoint p({"Patient", "Condition"}, {});
    auto doc = json_of(p.call("GET", "/.well-known/smart-configuration"));
    const auto scopes = strings(doc["scopes_supported"]);
    CHECK(scopes == std::vector<std::string>{"openid", "launch/patient", "patient/*.rs", "patient/*.read",
                                             "patient/Patient.rs", "patient/Condition.rs"});
}

TEST_CASE("smart-configuration: reachable with any token or none, GET only, no parameters") {
    patient_endpoint p;
    CHECK(p.call("GET", "/.well-known/smart-configuration", {{"Authorization", "Bearer nonsense"}}).status == 200);
    auto post = p.call("POST", "/.well-known/smart-configuration");
    CHECK(post.status == 405);
    CHECK(post.header("Allow") == "GET");
    auto unknown = p.call("GET", "/.well-known/smart-configuration?launch=x");
    CHECK(unknown.status == 400);
    CHECK(issue_code(unknown) == "not-supported");
    // Only below the FHIR base: /.well-known at the server's root is not served.
    http::request root;
    root.method = "GET";
    root.target = "/.well-known/smart-configuration";
    std::promise<http::response> answered;
    p.app->handle(std::move(root), [&answered](http::response out) { answered.set_value(std::move(out)); });
    CHECK(answered.get_future().get().status == 404);
}

TEST_CASE("smart-configuration: the provider endpoint does not serve it (404), with or without a token") {
    application_fixture f;
    auto with_token = f.call("GET", "/.well-known/smart-configuration");
    CHECK(with_token.status == 404);
    CHECK(issue_code(with_token) == "not-found");
    auto without = f.call("GET", "/.well-known/smart-configuration", {}, {{"Authorization", "Bearer nonsense"}});
    CHECK(without.status == 404);
    CHECK(f.call("GET", "/.well-known/other").status == 404);
}

TEST_CASE("metadata, patient endpoint: SMART-on-FHIR security with the identity provider's endpoints") {
    patient_endpoint p;
    auto r = p.call("GET", "/metadata");
    REQUIRE(r.status == 200); // no token, as on the provider endpoint
    auto doc = json_of(r);
    CHECK(std::string(doc["resourceType"].GetString()) == "CapabilityStatement");
    CHECK(std::string(doc["implementation"]["url"].GetString()) == patient_base_url);
    const auto& rest0 = at(doc, "rest", 0);
    CHECK(std::string(rest0["mode"].GetString()) == "server");
    const auto& coding = at(rest0, "security", "service", 0, "coding", 0);
    CHECK(std::string(coding["system"].GetString()) ==
          "http://terminology.hl7.org/CodeSystem/restful-security-service");
    CHECK(std::string(coding["code"].GetString()) == "SMART-on-FHIR");
    const auto& oauth = at(rest0, "security", "extension", 0);
    CHECK(std::string(oauth["url"].GetString()) ==
          "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
    std::map<std::string, std::string> uris;
    for (const auto& e : oauth["extension"].GetArray())
        uris[e["url"].GetString()] = e["valueUri"].GetString();
    CHECK(uris == std::map<std::string, std::string>{{"authorize", "https://auth.login.nhs.uk/authorize"},
                                                     {"token", "https://auth.login.nhs.uk/token"}});
    // Nothing system-wide: no transaction or batch, no system history or search.
    CHECK_FALSE(rest0.HasMember("interaction"));
}

TEST_CASE("metadata, patient endpoint: a resource per type citizens read or contribute, with its search parameters") {
    patient_endpoint p({"AuditEvent", "Condition", "Observation", "Patient", "NoSuchType"},
                       {"Observation", "QuestionnaireResponse", "AuditEvent"});
    auto doc = json_of(p.call("GET", "/metadata"));
    std::set<std::string> types;
    for (const auto& resource : at(doc, "rest", 0, "resource").GetArray())
        types.insert(resource["type"].GetString());
    // A type the server does not serve is never claimed.
    CHECK(types == std::set<std::string>{"AuditEvent", "Condition", "Observation", "Patient", "QuestionnaireResponse"});

    using codes = std::vector<std::string>;
    CHECK(interaction_codes(*resource_of(doc, "Observation")) == codes{"read", "search-type", "create"});
    CHECK(interaction_codes(*resource_of(doc, "Condition")) == codes{"read", "search-type"});
    CHECK(interaction_codes(*resource_of(doc, "QuestionnaireResponse")) == codes{"create"});
    // The audit trail is never written through the API, whatever a list says.
    CHECK(interaction_codes(*resource_of(doc, "AuditEvent")) == codes{"read", "search-type"});
    CHECK(search_param_names(*resource_of(doc, "QuestionnaireResponse")).empty()); // not searchable here

    // The search parameters are the provider statement's for the same type.
    application_fixture provider;
    auto provider_doc = json_of(provider.call("GET", "/metadata"));
    for (const char* type : {"Observation", "Condition", "Patient", "AuditEvent"}) {
        const auto names = search_param_names(*resource_of(doc, type));
        CHECK_MESSAGE(!names.empty(), type);
        CHECK_MESSAGE(names == search_param_names(*resource_of(provider_doc, type)), type);
    }

    const auto& patient = *resource_of(doc, "Patient");
    REQUIRE(patient.HasMember("operation"));
    CHECK(text_at(patient, "operation", 0, "name") == "everything");
    CHECK(text_at(patient, "operation", 0, "definition") ==
          "http://hl7.org/fhir/OperationDefinition/Patient-everything");
    CHECK_FALSE(resource_of(doc, "Observation")->HasMember("operation"));
}

TEST_CASE("metadata, provider endpoint: unchanged by the patient variant") {
    application_fixture f;
    auto doc = json_of(f.call("GET", "/metadata"));
    const auto& rest0 = at(doc, "rest", 0);
    CHECK_FALSE(rest0.HasMember("security")); // providers: client certificates and tokens, not SMART login
    std::vector<std::string> system;
    for (const auto& i : rest0["interaction"].GetArray())
        system.push_back(i["code"].GetString());
    CHECK(system == std::vector<std::string>{"transaction", "batch", "history-system", "search-system"});
    CHECK(interaction_codes(*resource_of(doc, "Observation")).size() == 9);
}
