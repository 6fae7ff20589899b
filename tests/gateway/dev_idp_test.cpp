// The development authorization server (dev_idp/dev_idp.hpp, its invariants 1 to 5): the SMART
// standalone launch's code flow with PKCE through provider::answer, its tokens used at the patient
// endpoint, and what it refuses; and `caregate serve --dev-idp` refused off loopback.
#include "patient_fixture.hpp"

#include "auth/detail/jose.hpp"
#include "dev_idp/dev_idp.hpp"

#include <boost/url.hpp>

#include <cstdio>

using namespace caregate::testing;
namespace http = caregate::http;
namespace dev_idp = caregate::dev_idp;
namespace jose = caregate::auth::detail;

namespace {

const std::string app_redirect = std::string(patient_fixture::app_origin) + "/callback";
const std::string verifier = "dBjftJeZ4CVP-mJ92K9xvEaaT3RDUO4ejhyU0h3MZwj7a1Jrr7";

std::string encoded(const std::vector<std::pair<std::string, std::string>>& fields) {
    boost::urls::url u("x:");
    for (const auto& [k, v] : fields)
        u.params().append({k, v});
    return std::string(u.encoded_query());
}

struct login {
    patient_fixture f;
    dev_idp::provider idp{[] {
        dev_idp::settings s;
        s.issuer = test_issuer;
        s.signing_key_pem = test_keys::get().private_pem;
        s.audience = patient_base_url;
        s.origins.allowed = {patient_fixture::app_origin};
        return s;
    }()};

    http::response send(std::string method, std::string target, std::string body = {},
                        std::vector<http::header_field> headers = {}) {
        http::request req;
        req.method = std::move(method);
        req.target = std::move(target);
        req.body = std::move(body);
        req.headers = std::move(headers);
        if (!req.body.empty())
            req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
        REQUIRE(dev_idp::provider::owns(req.target));
        return idp.answer(req);
    }

    std::vector<std::pair<std::string, std::string>> authorize_fields(std::string scope = "openid fhirUser launch/patient patient/*.rs offline_access") {
        return {{"response_type", "code"},
                {"client_id", "my-app"},
                {"redirect_uri", app_redirect},
                {"scope", std::move(scope)},
                {"state", "s-1"},
                {"aud", patient_base_url},
                {"code_challenge", jose::base64url_encode(jose::sha256(verifier))},
                {"code_challenge_method", "S256"}};
    }

    /// The login page's POST for a citizen; the redirect it answers.
    http::response log_in(const std::string& nhs, const std::string& proofing = "P9",
                          std::vector<std::pair<std::string, std::string>> fields = {}) {
        if (fields.empty())
            fields = authorize_fields();
        fields.push_back({"nhs_number", nhs});
        fields.push_back({"proofing", proofing});
        fields.push_back({"decision", "allow"});
        return send("POST", "/dev-idp/authorize", encoded(fields));
    }

    static std::string query_value(std::string_view location, const std::string& name) {
        boost::urls::url_view u(location);
        auto found = u.params().find(name);
        return found == u.params().end() ? std::string() : std::string((*found).value);
    }

    http::response exchange(const std::string& code, const std::string& with_verifier = verifier,
                            const std::string& redirect = app_redirect) {
        return send("POST", "/dev-idp/token",
                    encoded({{"grant_type", "authorization_code"}, {"code", code}, {"client_id", "my-app"},
                             {"redirect_uri", redirect}, {"code_verifier", with_verifier}}));
    }
};

} // namespace

TEST_CASE("dev login: the standalone launch's code flow with PKCE gives a token the patient endpoint accepts") {
    login l;
    auto page = l.send("GET", "/dev-idp/authorize?" + encoded(l.authorize_fields("openid fhirUser launch/patient patient/*.rs offline_access user/*.cruds")));
    REQUIRE(page.status == 200);
    CHECK(page.header("Content-Type").find("text/html") == 0);
    CHECK(page.header("X-Frame-Options") == "DENY");
    CHECK(page.body.find("name=\"nhs_number\"") != std::string::npos);
    CHECK(page.body.find("<code>openid fhirUser launch/patient patient/*.rs offline_access</code>") !=
          std::string::npos); // what will be granted: not user/*.cruds

    auto asked_for_more = l.authorize_fields("openid fhirUser launch/patient patient/*.rs offline_access user/*.cruds");
    auto redirected = l.log_in(tom, "P9", asked_for_more);
    REQUIRE(redirected.status == 302);
    const std::string location(redirected.header("Location"));
    CHECK(location.rfind(app_redirect + "?", 0) == 0);
    CHECK(login::query_value(location, "state") == "s-1");
    const std::string code = login::query_value(location, "code");
    REQUIRE(code.size() >= 40);

    auto tokens = l.exchange(code);
    REQUIRE_MESSAGE(tokens.status == 200, tokens.body);
    CHECK(tokens.header("Cache-Control") == "no-store");
    auto doc = json_of(tokens);
    CHECK(std::string(doc["token_type"].GetString()) == "Bearer");
    CHECK(std::string(doc["patient"].GetString()) == tom);
    CHECK(doc.HasMember("id_token"));
    CHECK(doc.HasMember("refresh_token"));
    CHECK(std::string(doc["scope"].GetString()) == "openid fhirUser launch/patient patient/*.rs offline_access");
    // The id_token is for the app (its aud), names the citizen's Patient as fhirUser.
    const std::string id_token = doc["id_token"].GetString();
    std::string id_claims;
    REQUIRE(jose::base64url_decode(id_token.substr(id_token.find('.') + 1, id_token.rfind('.') - id_token.find('.') - 1),
                                   id_claims));
    CHECK(id_claims.find(R"("aud":"my-app")") != std::string::npos);
    CHECK(id_claims.find(std::string(R"("fhirUser":")") + patient_base_url + "/Patient/" + tom + "\"") != std::string::npos);
    const std::string access = doc["access_token"].GetString();

    // The token reads Tom's record at the patient endpoint, and nobody else's.
    CHECK(l.f.as_citizen(access, "GET", std::string("/Patient/") + tom).status == 200);
    CHECK(l.f.as_citizen(access, "GET", std::string("/Patient/") + bunmi).status == 404);

    // Invariant 2: a code once.
    auto again = l.exchange(code);
    CHECK(again.status == 400);
    CHECK(json_of(again)["error"].GetString() == std::string("invalid_grant"));

    // A refresh gives another access token; never a scope the refresh token lacks.
    const std::string refresh = doc["refresh_token"].GetString();
    auto refreshed = l.send("POST", "/dev-idp/token", encoded({{"grant_type", "refresh_token"}, {"refresh_token", refresh}}));
    REQUIRE_MESSAGE(refreshed.status == 200, refreshed.body);
    CHECK(l.f.as_citizen(json_of(refreshed)["access_token"].GetString(), "GET", std::string("/Patient/") + tom).status == 200);
    auto wider = l.send("POST", "/dev-idp/token",
                        encoded({{"grant_type", "refresh_token"}, {"refresh_token", refresh}, {"scope", "patient/*.cruds"}}));
    CHECK(wider.status == 400);
    CHECK(json_of(wider)["error"].GetString() == std::string("invalid_scope"));

    // The key set publishes the key the tokens are signed with.
    auto jwks = l.send("GET", "/dev-idp/jwks.json");
    REQUIRE(jwks.status == 200);
    CHECK(jose::keys_from_jwks(jwks.body).size() == 1);
}

TEST_CASE("dev login: PKCE is S256 or nothing, and the verifier must match") {
    login l;
    auto fields = l.authorize_fields();
    fields.back().second = "plain";
    fields[6].second = verifier; // a plain challenge is the verifier itself
    auto plain = l.send("GET", "/dev-idp/authorize?" + encoded(fields));
    REQUIRE(plain.status == 302);
    CHECK(login::query_value(plain.header("Location"), "error") == "invalid_request");
    CHECK(login::query_value(plain.header("Location"), "code").empty());
    CHECK(l.log_in(tom, "P9", fields).header("Location").find("code=") == std::string_view::npos);

    auto none = l.authorize_fields();
    none.pop_back();
    none.pop_back();
    CHECK(login::query_value(l.send("GET", "/dev-idp/authorize?" + encoded(none)).header("Location"), "error") ==
          "invalid_request");

    auto code = login::query_value(l.log_in(tom).header("Location"), "code");
    CHECK(l.exchange(code, std::string(43, 'a')).status == 400);
    CHECK(l.exchange(code).status == 400); // the failed exchange used the code up
    auto other_redirect = login::query_value(l.log_in(tom).header("Location"), "code");
    CHECK(l.exchange(other_redirect, verifier, std::string(patient_fixture::app_origin) + "/elsewhere").status == 400);
}

TEST_CASE("dev login: codes go only to this machine, this endpoint or a named origin; test citizens only") {
    login l;
    for (const std::string redirect : {"https://evil.example.com/callback", "https://app.example.nhs.uk.evil.example.com/cb",
                                       "javascript:alert(1)", "https://user@app.example.nhs.uk/cb"}) {
        CAPTURE(redirect);
        auto fields = l.authorize_fields();
        fields[2].second = redirect;
        auto page = l.send("GET", "/dev-idp/authorize?" + encoded(fields));
        CHECK(page.status == 400);
        CHECK(page.header("Location").empty());
        auto posted = l.log_in(tom, "P9", fields);
        CHECK(posted.status == 400);
        CHECK(posted.header("Location").empty());
    }
    auto local = l.authorize_fields();
    local[2].second = "http://127.0.0.1:5173/callback";
    CHECK(l.log_in(tom, "P9", local).status == 302);

    // Invariant 1: a number outside the test range (valid by its check digit) or not a number is refused.
    for (const std::string nhs : {"0000000000", "9000000001", "123", ""}) {
        CAPTURE(nhs);
        auto refused = l.log_in(nhs);
        CHECK(refused.status == 400);
        CHECK(refused.header("Location").empty());
    }
    // The citizen's choice to cancel goes back to the app as access_denied.
    auto fields = l.authorize_fields();
    fields.push_back({"nhs_number", tom});
    fields.push_back({"proofing", "P9"});
    fields.push_back({"decision", "deny"});
    CHECK(login::query_value(l.send("POST", "/dev-idp/authorize", encoded(fields)).header("Location"), "error") ==
          "access_denied");
}

TEST_CASE("dev login: what a request sends is never written into the page unescaped") {
    login l;
    auto fields = l.authorize_fields();
    fields[4].second = "\"><script>alert(1)</script>";
    fields[1].second = "<img src=x onerror=alert(1)>";
    auto page = l.send("GET", "/dev-idp/authorize?" + encoded(fields));
    REQUIRE(page.status == 200);
    CHECK(page.body.find("<script>") == std::string::npos);
    CHECK(page.body.find("<img") == std::string::npos);
    CHECK(page.body.find("&lt;script&gt;") != std::string::npos);
    CHECK(page.header("Content-Security-Policy").find("default-src 'none'") != std::string_view::npos);
}

TEST_CASE("dev login: the token endpoint answers an app's origin the endpoint names, and no other") {
    login l;
    auto code = login::query_value(l.log_in(tom).header("Location"), "code");
    auto from_app = l.send("POST", "/dev-idp/token",
                           encoded({{"grant_type", "authorization_code"}, {"code", code}, {"client_id", "my-app"},
                                    {"redirect_uri", app_redirect}, {"code_verifier", verifier}}),
                           {{"Origin", patient_fixture::app_origin}});
    CHECK(from_app.status == 200);
    CHECK(from_app.header("Access-Control-Allow-Origin") == patient_fixture::app_origin);
    auto elsewhere = l.send("POST", "/dev-idp/token", encoded({{"grant_type", "refresh_token"}, {"refresh_token", "x"}}),
                            {{"Origin", "https://evil.example.com"}});
    CHECK(elsewhere.header("Access-Control-Allow-Origin").empty());
}

TEST_CASE("dev login: caregate serve refuses --dev-idp unless every listener is on loopback") {
    const std::string binary = std::string(CAREGATE_BINARY_DIR) + "/caregate";
    const std::string dir = fresh_directory("caregate-dev-idp").string();
    auto run = [&](const std::string& listen) {
        const std::string command = binary + " serve --dev-idp --listen " + listen +
                                    " --patient-listen 127.0.0.1:0 --admin-listen none --db " + dir +
                                    "/x.db --certs " + std::string(CAREGATE_SOURCE_DIR) + "/certs/dev 2>&1";
        FILE* pipe = ::popen(command.c_str(), "r");
        REQUIRE(pipe != nullptr);
        std::string output;
        char buffer[512];
        while (std::fgets(buffer, sizeof buffer, pipe))
            output += buffer;
        const int status = ::pclose(pipe);
        return std::pair{status, output};
    };
    auto [status, output] = run("0.0.0.0:0");
    CHECK(status != 0);
    CHECK(output.find("loopback") != std::string::npos);
    std::filesystem::remove_all(dir);
}
