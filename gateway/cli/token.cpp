// `caregate token`: mints a development bearer token, signed with the key certs/make-dev-certs.sh
// made, for curl, the conformance suite and tests. Not an identity provider: production trusts real
// issuers (`caregate serve --issuers FILE`).
#include "cli/commands.hpp"
#include "fhir_model/ods_code.hpp"
#include "cli/options.hpp"

#include "auth/issuers.hpp"
#include "auth/token.hpp"

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

Prints a development bearer token (a JWT signed RS256 or ES256 with DIR/token-signing.key) for
'Authorization: Bearer <token>'. 'caregate serve' trusts it when it runs with the same --certs DIR.

Options:
)";

struct token_settings {
    auth::token_claims claims;
    bool scopes_given = false;
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
        {"user", "ID", "SDS user id of the person acting, or a system's id (required)",
         [&](const std::string& v) { s.claims.user = v; }},
        {"scope", "SCOPES", "SMART scopes, space-separated; repeatable (default user/*.cruds)",
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
        {"aud", "URL", "the audience: the server's base URL (default https://localhost:8443/fhir)",
         [&](const std::string& v) { s.claims.audience = v; }},
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
    settings.claims.audience = "https://localhost:8443/fhir";
    settings.claims.scopes = {"user/*.cruds"};
    const auto table = token_options(settings);
    for (const auto& a : args)
        if (a == "--help" || a == "-h") {
            std::cout << token_usage << describe_options(table);
            return 0;
        }
    try {
        parse_options(table, args);
        for (const auto& [value, flag] : {std::pair{&settings.claims.role, "role"},
                                          std::pair{&settings.claims.organisation, "org"},
                                          std::pair{&settings.claims.user, "user"}})
            if (value->empty())
                throw std::invalid_argument(std::string("--") + flag + " is required");
        if (!fhir::is_ods_code(settings.claims.organisation))
            throw std::invalid_argument("--org needs an ODS code: 3 to 10 upper-case letters and digits");
        if (settings.claims.audience.empty() || settings.claims.issuer.empty())
            throw std::invalid_argument("--aud and --issuer cannot be empty");
    } catch (const std::invalid_argument& e) {
        std::cerr << "caregate token: " << e.what() << "\n(see caregate token --help)\n";
        return 2;
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
