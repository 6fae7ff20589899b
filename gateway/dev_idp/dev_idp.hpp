// A development authorization server (`caregate serve --dev-idp`), so that a SMART app can run the
// whole standalone launch here: `authorize` (a page to pick a test citizen and a proofing level),
// the authorization code with PKCE, `token` (an access token shaped like NHS login's, an id_token,
// refresh tokens) and `jwks.json`, under `/dev-idp/` on the patient-facing listener. Production keeps
// NHS login; this exists for apps in development and for the browser tests.
//
// Invariants (tests/gateway/dev_idp_test.cpp):
//  1. Served only when every listener is on loopback (serve refuses --dev-idp otherwise), and only
//     for NHS numbers of the test range (starting with 9, valid check digit).
//  2. PKCE is required with S256; `plain`, or none, is refused. A code is used once, within a minute,
//     by the client and redirect URI it was issued to, with the verifier of its challenge.
//  3. A code is only ever sent to a redirect URI on loopback, on the patient-facing listener's own
//     origin, or on an origin the endpoint names (--cors-origins): never to an arbitrary site.
//  4. Access tokens are signed with the development key caregate trusts (--certs), with the patient
//     endpoint as audience and at most the scopes asked for, patient scopes only.
//  5. Nothing a request sends is written into the page or a redirect unescaped.
#pragma once

#include "http/message.hpp"
#include "rest/cors.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace caregate::dev_idp {

struct settings {
    std::string issuer = "caregate-dev"; ///< as tokens carry it; must be a trusted issuer (--issuers)
    std::string signing_key_pem;         ///< the private key of `caregate token` (certs/dev/token-signing.key)
    std::string audience;                ///< the patient-facing endpoint's base URL
    rest::cors_origins origins;          ///< app origins that may receive codes and call `token`
    std::chrono::seconds access_lifetime{3600};
    std::chrono::seconds refresh_lifetime{24 * 3600};
};

/// The path every endpoint of the development authorization server is under.
inline constexpr std::string_view path_prefix = "/dev-idp/";

class provider {
public:
    /// Throws std::invalid_argument when the key cannot sign.
    explicit provider(settings chosen);

    /// Whether the request is for this server (its target is under path_prefix).
    static bool owns(std::string_view target) noexcept;
    /// Answers a request for this server.
    http::response answer(const http::request& req);

private:
    struct grant {
        std::string client_id;
        std::string redirect_uri;
        std::string code_challenge; ///< authorization codes only
        std::string nhs_number;
        std::string proofing;
        std::string scope;          ///< as granted, space-separated
        std::chrono::steady_clock::time_point expires;
    };

    http::response authorize_page(const http::request& req);
    http::response authorize_decision(const http::request& req);
    http::response token(const http::request& req);
    http::response jwks() const;
    /// The token response for a grant (its access token, id_token and refresh token as its scope asks).
    http::response tokens_for(const grant& g);
    bool may_receive_codes(std::string_view redirect_uri) const;

    settings settings_;
    std::string jwks_json_;
    std::mutex mutex_;
    std::map<std::string, grant> codes_;   ///< authorization codes, one use each
    std::map<std::string, grant> refresh_; ///< refresh tokens
};

} // namespace caregate::dev_idp
