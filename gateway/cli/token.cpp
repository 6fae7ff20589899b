// `caregate token`: mints a development bearer token, signed with the key certs/make-dev-certs.sh
// made, for curl, the conformance suite and tests: a provider's (organisation and role), or with
// --citizen a citizen's shaped like NHS login's (NHS number and proofing level) for the
// patient-facing endpoint. Not an identity provider: production trusts real issuers
// (`caregate serve --issuers FILE`).
#include "cli/commands.hpp"
#include "fhir_model/nhs_number.hpp"
#include "fhir_model/ods_code.hpp"
#include "cli/options.hpp"

#include "auth/issuers.hpp"
#include "auth/token.hpp"

#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace caregate::cli {

namespace {

constexpr const char* token_usage = R"(Usage: caregate token --role R8000 --org A81001 --user 123456789012 [options]
       caregate token --citizen 9000000009 [--proofing P9] [--vot P9.Cp.Cd] [options]

Prints a development bearer token (a JWT signed RS256 or ES256 with DIR/token-signing.key) for
'Authorization: Bearer <token>'. 'caregate serve' trusts it when it runs with the same --certs DIR.

The first form is a provider's token, for the provider endpoint. The second, with --citizen, is a
citizen's token shaped like NHS login's, for the patient-facing endpoint: no --org or --role; --user
defaults to a pseudonymous id derived from the NHS number (as NHS login's sub is not the NHS number),
the scopes to patient/*.rs and the audience to https://localhost:9443/fhir.

Options:
)";

/// Defaults of a provider's token, and of a citizen's (the patient-facing endpoint's base URL).
const std::vector<std::string> provider_default_scopes = {"user/*.cruds"};
const std::vector<std::string> citizen_default_scopes = {"patient/*.rs"};
constexpr const char* provider_default_audience = "https://localhost:8443/fhir";
constexpr const char* citizen_default_audience = "https://localhost:9443/fhir";
constexpr const char* citizen_default_proofing = "P9";

struct token_settings {
    auth::token_claims claims;
    bool citizen = false; ///< --citizen was given (even empty, which is then refused)
    bool scopes_given = false;
    bool audience_given = false;
    std::int64_t ttl = 3600;
    std::int64_t not_before_offset = 0;
    std::string certs = "certs/dev";
};

std::int64_t to_seconds(const std::string& text, const char* flag) {
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        throw std::invalid_argument(std::string("--") + flag + " needs a whole number of seconds, not '" + text + "'");
    return value;
}

std::vector<option> token_options(token_settings& s) {
    return {
        {"config", "FILE", "read options from a JSON object whose keys are these option names; flags win", {}},
        {"role", "CODE", "national RBAC job role (R8000 clinical practitioner, R8001 nurse, R8008 admin, "
                         "R8014 social worker, or 'system'); S8000:G8000:R8000 is accepted too (required)",
         [&](const std::string& v) { s.claims.role = v; }},
        {"org", "ODS", "ODS code of the organisation acting, e.g. A81001 (required)",
         [&](const std::string& v) { s.claims.organisation = v; }},
        {"user", "ID", "SDS user id of the person acting, or a system's id (required; with --citizen "
                       "the default is a pseudonymous id derived from the NHS number)",
         [&](const std::string& v) { s.claims.user = v; }},
        {"citizen", "NHS", "make a citizen's token (NHS login's shape) for this NHS number, for the "
                           "patient-facing endpoint; --org and --role are then not given",
         [&](const std::string& v) {
             s.claims.nhs_number = v;
             s.citizen = true;
         }},
        {"proofing", "LEVEL", "with --citizen: identity_proofing_level, P0, P5 or P9 (default P9)",
         [&](const std::string& v) { s.claims.proofing_level = v; }},
        {"vot", "VOT", "with --citizen: vector of trust, e.g. P9.Cp.Cd (default: none in the token)",
         [&](const std::string& v) { s.claims.vot = v; }},
        {"scope", "SCOPES", "SMART scopes, space-separated; repeatable (default user/*.cruds; "
                            "patient/*.rs with --citizen)",
         [&](const std::string& v) {
             if (!s.scopes_given)
                 s.claims.scopes.clear();
             s.scopes_given = true;
             std::istringstream words(v);
             for (std::string word; words >> word;)
                 s.claims.scopes.push_back(word);
         }},
        {"ttl", "SECONDS", "lifetime from now (default 3600; negative makes an expired token, for tests)",
         [&](const std::string& v) { s.ttl = to_seconds(v, "ttl"); }},
        {"aud", "URL", "the audience: the server's base URL (default https://localhost:8443/fhir; "
                       "https://localhost:9443/fhir with --citizen)",
         [&](const std::string& v) {
             s.claims.audience = v;
             s.audience_given = true;
         }},
        {"certs", "DIR", "where the signing key is: DIR/token-signing.key (default ./certs/dev)",
         [&](const std::string& v) { s.certs = v; }},
        {"issuer", "ISS", "the iss claim (default caregate-dev, the issuer 'caregate serve' trusts from --certs)",
         [&](const std::string& v) { s.claims.issuer = v; }},
        {"purpose", "CODE", "HL7 PurposeOfUse (default: none in the token, which means TREAT; ETREAT for break-glass)",
         [&](const std::string& v) { s.claims.purpose = v; }},
        {"reason", "TEXT", "break-glass reason, with --purpose ETREAT",
         [&](const std::string& v) { s.claims.reason = v; }},
        {"not-before", "SECONDS", "nbf as an offset from now, may be negative (default 0), for tests",
         [&](const std::string& v) { s.not_before_offset = to_seconds(v, "not-before"); }},
    };
}


/// Checks the flags of a citizen's token and fills in its defaults. Throws std::invalid_argument.
void complete_citizen_claims(token_settings& s) {
    auth::token_claims& c = s.claims;
    if (!c.organisation.empty() || !c.role.empty())
        throw std::invalid_argument("--citizen makes a citizen's token, which names no organisation or role: "
                                    "leave out --org and --role (they are for a provider's token)");
    if (!c.purpose.empty() || !c.reason.empty())
        throw std::invalid_argument("--purpose and --reason are for a provider's token, not with --citizen");
    if (!fhir::is_valid_nhs_number(c.nhs_number))
        throw std::invalid_argument("--citizen needs a valid NHS number: 10 digits with a Modulus 11 check digit");
    if (c.proofing_level.empty())
        c.proofing_level = citizen_default_proofing;
    if (c.proofing_level != "P0" && c.proofing_level != "P5" && c.proofing_level != "P9")
        throw std::invalid_argument("--proofing needs P0, P5 or P9");
    if (c.user.empty())
        c.user = auth::development_citizen_subject(c.nhs_number);
    if (!s.scopes_given)
        c.scopes = citizen_default_scopes;
    if (!s.audience_given)
        c.audience = citizen_default_audience;
}

/// Checks the flags of a provider's token and fills in its defaults. Throws std::invalid_argument.
void complete_provider_claims(token_settings& s) {
    auth::token_claims& c = s.claims;
    if (!c.proofing_level.empty() || !c.vot.empty())
        throw std::invalid_argument("--proofing and --vot are for a citizen's token: give --citizen NHS");
    for (const auto& [value, flag] :
         {std::pair{&c.role, "role"}, std::pair{&c.organisation, "org"}, std::pair{&c.user, "user"}})
        if (value->empty())
            throw std::invalid_argument(std::string("--") + flag + " is required");
    if (!fhir::is_ods_code(c.organisation))
        throw std::invalid_argument("--org needs an ODS code: 3 to 10 upper-case letters and digits");
    if (!s.scopes_given)
        c.scopes = provider_default_scopes;
    if (!s.audience_given)
        c.audience = provider_default_audience;
}

std::string read_signing_key(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path.string() + ": run certs/make-dev-certs.sh or give --certs DIR");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

int token(const std::vector<std::string>& args) {
    token_settings settings;
    settings.claims.issuer = auth::dev_issuer_name;
    const auto table = token_options(settings);
    for (const auto& a : args)
        if (a == "--help" || a == "-h") {
            std::cout << token_usage << describe_options(table);
            return 0;
        }
    try {
        parse_options(table, args);
        if (settings.citizen)
            complete_citizen_claims(settings);
        else
            complete_provider_claims(settings);
        if (settings.claims.audience.empty() || settings.claims.issuer.empty())
            throw std::invalid_argument("--aud and --issuer cannot be empty");
    } catch (const std::invalid_argument& e) {
        std::cerr << "caregate token: " << e.what() << "\n(see caregate token --help)\n";
        return 2;
    } catch (const std::exception& e) { // OpenSSL failing to hash the NHS number for the default --user
        std::cerr << "caregate token: " << e.what() << "\n";
        return 1;
    }
    try {
        const std::int64_t now =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        settings.claims.issued_at = now;
        settings.claims.not_before = now + settings.not_before_offset;
        settings.claims.expires = now + settings.ttl;
        const std::string key = read_signing_key(std::filesystem::path(settings.certs) / "token-signing.key");
        std::cout << auth::mint_token(settings.claims, key) << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "caregate token: " << e.what() << "\n";
        return 1;
    }
}

} // namespace caregate::cli
