// smart-configuration: https://hl7.org/fhir/smart-app-launch/conformance.html (SMART App Launch 2.0).
// What the patient-facing endpoint tells citizens' apps about logging in: the identity provider's
// endpoints (caregate is not one; production names NHS login's), and the scopes and capabilities this
// endpoint honours. Not a FHIR resource, so plain application/json; not served on the provider endpoint.
#include "interactions/interactions.hpp"

#include "http/error_response.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>
#include <vector>

namespace caregate::interactions {

namespace {

/// The SMART capabilities (http://terminology.hl7.org/CodeSystem/smart-capabilities) this endpoint
/// and the identity provider it names support together:
/// - launch-standalone, context-standalone-patient: a citizen opens the app, logs in, and the token
///   names them (`nhs_number`, which is Patient.id); there is no EHR to launch from.
/// - client-public: apps on phones and in browsers can keep no secret; they use PKCE (S256) instead.
/// - client-confidential-asymmetric: an app with a back end authenticates with a signed JWT
///   (private_key_jwt), the one method NHS login offers its relying parties.
/// - permission-patient, permission-v1, permission-v2: patient/ scopes, in both syntaxes
///   (patient/*.read as well as patient/*.rs).
/// Left out because they are not true: launch-ehr (no EHR context), sso-openid-connect (the identity
/// provider's id_token carries no fhirUser), permission-offline (no refresh tokens are promised),
/// permission-user (citizens act in their own record, never as users of the organisation's system),
/// client-confidential-symmetric (shared secrets are not accepted).
constexpr std::string_view capabilities[] = {
    "launch-standalone",  "client-public",  "client-confidential-asymmetric", "context-standalone-patient",
    "permission-patient", "permission-v1", "permission-v2",
};

/// The token endpoint's client authentication methods (RFC 8414 section 2, values from the RFC 7591
/// registry), consistent with the client capabilities above: "private_key_jwt" for
/// client-confidential-asymmetric, and "none" for client-public. SMART's own list of values names only
/// the three ways a client authenticates; "none" is the registered word for a public client, which
/// does not authenticate at the token endpoint, and a generic OAuth library that reads only this
/// field would otherwise conclude that public clients are refused.
constexpr std::string_view token_endpoint_auth_methods[] = {"private_key_jwt", "none"};

/// scopes_supported: what an app may ask for. "openid" because NHS login requires it on every
/// authorisation request (the token's `nhs_number` comes from that identity); "launch/patient" asks
/// for the patient context of a standalone launch. Then the patient/ scopes: the whole record to read
/// (v2 `.rs`, v1 `.read`); the v1 and v2 write forms when citizens may contribute anything (the policy
/// narrows them to the types they may contribute); and per type, `.rs` for every type a citizen may
/// read and `.cruds` for every type they may contribute, so that an app can ask for no more than it
/// needs. Neither fhirUser (no sso-openid-connect) nor offline_access (no permission-offline).
std::vector<std::string> scopes(const rest_config& config) {
    std::vector<std::string> out = {"openid", "launch/patient", "patient/*.rs", "patient/*.read"};
    if (!config.patient_creatable_types.empty()) {
        out.push_back("patient/*.write");
        out.push_back("patient/*.cruds");
    }
    for (const std::string& type : config.patient_readable_types)
        out.push_back("patient/" + type + ".rs");
    for (const std::string& type : config.patient_creatable_types)
        out.push_back("patient/" + type + ".cruds");
    return out;
}

std::string smart_document(const rest_config& config) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    auto string = [&](std::string_view value) {
        out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    };
    auto text = [&](const char* key, std::string_view value) {
        out.Key(key);
        string(value);
    };
    auto list = [&](const char* key, const auto& values) {
        out.Key(key);
        out.StartArray();
        for (const auto& value : values)
            string(value);
        out.EndArray();
    };
    const smart_settings& smart = config.smart;
    out.StartObject();
    text("issuer", smart.issuer);
    text("jwks_uri", smart.jwks_uri);
    text("authorization_endpoint", smart.authorization_endpoint);
    text("token_endpoint", smart.token_endpoint);
    list("grant_types_supported", std::vector<std::string_view>{"authorization_code"});
    list("token_endpoint_auth_methods_supported", token_endpoint_auth_methods);
    list("scopes_supported", scopes(config));
    list("response_types_supported", std::vector<std::string_view>{"code"});
    list("capabilities", capabilities);
    // The spec requires S256 and forbids "plain", which would let an intercepted code be redeemed.
    list("code_challenge_methods_supported", std::vector<std::string_view>{"S256"});
    out.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

} // namespace

void smart_configuration(context& ctx, http::responder& done) {
    if (!ctx.config.patient_endpoint) // providers authenticate by certificate and token, not by SMART login
        return done(http::error_response(fhir::error::make(fhir::category::not_found, "not-found", "no such path")));
    if (auto ok = ctx.only_params({}); !ok)
        return done(http::error_response(ok.failure()));
    http::response out = json_response(smart_document(ctx.config));
    out.set("Content-Type", "application/json; charset=utf-8");
    done(std::move(out));
}

} // namespace caregate::interactions
