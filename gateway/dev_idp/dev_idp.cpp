// The development authorization server (dev_idp.hpp, where the invariants are): the SMART standalone
// launch's authorization code flow with PKCE (RFC 6749 4.1, RFC 7636), its token endpoint and the
// key set, answering what SMART App Launch 2.2 asks of an authorization server.
#include "dev_idp/dev_idp.hpp"

#include "auth/detail/jose.hpp"
#include "auth/token.hpp"
#include "fhir_model/nhs_number.hpp"

#include <boost/url.hpp>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>
#include <vector>

namespace caregate::dev_idp {

namespace {

using clock = std::chrono::steady_clock;

constexpr auto code_lifetime = std::chrono::seconds(60);
/// Codes and refresh tokens kept at once: past it, new ones are refused (503) until some expire.
constexpr std::size_t max_kept = 10'000;

using fields = std::map<std::string, std::string>;

/// The fields of a query or an x-www-form-urlencoded body (`+` is a space there); the first of a
/// repeated name wins. Nothing when the text is not form encoding.
std::optional<fields> form_fields(std::string_view encoded) {
    std::string spaced; // `+` as the space it stands for, percent-encoded for the URL grammar
    for (char c : encoded)
        spaced += c == '+' ? std::string("%20") : std::string(1, c);
    auto parsed = boost::urls::parse_query(spaced);
    if (!parsed)
        return std::nullopt;
    fields out;
    for (auto p : boost::urls::params_view(*parsed))
        out.emplace(std::string(p.key), std::string(p.has_value ? p.value : std::string_view{}));
    return out;
}

std::string field(const fields& f, const char* name) {
    auto found = f.find(name);
    return found == f.end() ? std::string() : found->second;
}

std::string html_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

/// A JSON object of string members, written by RapidJSON (the token answers' shape).
class json_object {
public:
    json_object() { out_.StartObject(); }
    json_object& text(const char* name, std::string_view value) {
        out_.Key(name);
        out_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
        return *this;
    }
    json_object& number(const char* name, std::int64_t value) {
        out_.Key(name);
        out_.Int64(value);
        return *this;
    }
    json_object& flag(const char* name, bool value) {
        out_.Key(name);
        out_.Bool(value);
        return *this;
    }
    std::string done() {
        out_.EndObject();
        return std::string(buffer_.GetString(), buffer_.GetSize());
    }

private:
    rapidjson::StringBuffer buffer_;
    rapidjson::Writer<rapidjson::StringBuffer> out_{buffer_};
};

std::string random_token() {
    std::array<unsigned char, 32> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
        throw std::runtime_error("no random bytes for a token");
    return auth::detail::base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

/// RFC 7636 4.1: 43 to 128 characters of [A-Za-z0-9-._~].
bool is_code_verifier(std::string_view verifier) {
    return verifier.size() >= 43 && verifier.size() <= 128 && std::all_of(verifier.begin(), verifier.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~';
           });
}

/// An S256 challenge: base64url of 32 bytes, 43 characters.
bool is_s256_challenge(std::string_view challenge) {
    std::string decoded;
    return challenge.size() == 43 && auth::detail::base64url_decode(challenge, decoded) && decoded.size() == 32;
}

/// Invariant 1: only numbers of the test range.
bool is_test_nhs_number(std::string_view nhs) { return nhs.size() == 10 && nhs.front() == '9' && fhir::is_valid_nhs_number(nhs); }

/// Invariant 4: what of a requested scope is granted: the SMART launch scopes, and patient scopes.
std::vector<std::string> granted_scopes(std::string_view requested) {
    std::vector<std::string> granted;
    while (!requested.empty()) {
        const auto space = requested.find(' ');
        const std::string_view scope = requested.substr(0, space);
        requested = space == std::string_view::npos ? std::string_view{} : requested.substr(space + 1);
        if (scope == "openid" || scope == "fhirUser" || scope == "launch/patient" || scope == "offline_access" ||
            scope == "online_access" || scope.substr(0, 8) == "patient/")
            if (std::find(granted.begin(), granted.end(), scope) == granted.end())
                granted.emplace_back(scope);
    }
    return granted;
}

std::string joined(const std::vector<std::string>& scopes) {
    std::string out;
    for (const auto& s : scopes)
        out += (out.empty() ? "" : " ") + s;
    return out;
}

bool has_scope(std::string_view scope_list, std::string_view wanted) {
    const auto scopes = granted_scopes(scope_list);
    return std::find(scopes.begin(), scopes.end(), wanted) != scopes.end();
}

http::response html_page(unsigned status, const std::string& title, const std::string& body) {
    http::response out;
    out.status = status;
    out.set("Content-Type", "text/html; charset=utf-8");
    out.set("Cache-Control", "no-store");
    // A login page: never framed (clickjacking), no script, no resource from elsewhere.
    out.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
    out.set("X-Frame-Options", "DENY");
    out.body = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>" +
               html_escape(title) +
               "</title><style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:1rem auto;padding:0 1rem;"
               "line-height:1.5;color:#212b32}input[type=text]{font-size:1.1rem;padding:.4rem;width:100%;box-sizing:"
               "border-box}button{font-size:1.1rem;padding:.5rem 1rem;margin:.5rem .5rem 0 0}fieldset{margin:1rem 0}"
               ".error{color:#a00;font-weight:bold}</style></head><body><main>" +
               body + "</main></body></html>\n";
    return out;
}

http::response json_answer(unsigned status, std::string body) {
    http::response out;
    out.status = status;
    out.set("Content-Type", "application/json");
    // RFC 6749 5.1: token responses are never cached.
    out.set("Cache-Control", "no-store");
    out.set("Pragma", "no-cache");
    out.body = std::move(body);
    return out;
}

/// RFC 6749 5.2.
http::response token_error(std::string_view error, std::string_view description) {
    return json_answer(400, json_object().text("error", error).text("error_description", description).done());
}

http::response redirect_to(const std::string& uri, const std::vector<std::pair<std::string, std::string>>& params) {
    boost::urls::url target(uri);
    for (const auto& [name, value] : params)
        if (!value.empty())
            target.params().append({name, value});
    http::response out;
    out.status = 302;
    out.set("Location", std::string(target.buffer()));
    out.set("Cache-Control", "no-store");
    return out;
}

std::string origin_of(const boost::urls::url_view& url) {
    std::string origin = std::string(url.scheme()) + "://" + std::string(url.encoded_host());
    if (url.has_port())
        origin += ":" + std::string(url.port());
    return origin;
}

bool is_loopback_host(std::string_view host) { return host == "localhost" || host == "127.0.0.1" || host == "[::1]"; }

template <class Map>
void forget_expired(Map& kept, clock::time_point now) {
    for (auto it = kept.begin(); it != kept.end();)
        it = it->second.expires <= now ? kept.erase(it) : std::next(it);
}

} // namespace

provider::provider(settings chosen) : settings_(std::move(chosen)) {
    try {
        const auth::detail::pkey_ptr key = auth::detail::private_key_from_pem(settings_.signing_key_pem);
        jwks_json_ = auth::detail::public_jwks_of(key.get());
    } catch (const std::exception& e) {
        throw std::invalid_argument(std::string("--dev-idp: the token signing key cannot sign: ") + e.what());
    }
}

bool provider::owns(std::string_view target) noexcept { return target.substr(0, path_prefix.size()) == path_prefix; }

http::response provider::answer(const http::request& req) {
    std::string_view path = req.target;
    path = path.substr(0, path.find('?'));
    const std::string_view name = path.substr(path_prefix.size());
    http::response out;
    if (name == "authorize" && req.method == "GET")
        out = authorize_page(req);
    else if (name == "authorize" && req.method == "POST")
        out = authorize_decision(req);
    else if (name == "token" && (req.method == "POST" || req.method == "OPTIONS"))
        out = req.method == "POST" ? token(req) : http::response{204, {}, {}};
    else if (name == "jwks.json" && req.method == "GET")
        out = jwks();
    else if (name == "authorize" || name == "token" || name == "jwks.json")
        out = html_page(405, "Not allowed", "<h1>Method not allowed</h1>");
    else
        out = html_page(404, "Not found", "<h1>Not found</h1><p>The development login serves authorize, token and jwks.json.</p>");
    // An app calls `token` with fetch from its own origin: one the endpoint names gets the answer.
    const std::string origin(req.header("Origin"));
    if (name == "token" && !origin.empty() && settings_.origins.allows(origin)) {
        out.set("Access-Control-Allow-Origin", origin);
        out.set("Vary", "Origin");
        if (req.method == "OPTIONS") {
            out.set("Access-Control-Allow-Methods", "POST");
            out.set("Access-Control-Allow-Headers", "Content-Type, Accept");
            out.set("Access-Control-Max-Age", "600");
        }
    }
    return out;
}

bool provider::may_receive_codes(std::string_view redirect_uri) const {
    auto url = boost::urls::parse_absolute_uri(redirect_uri);
    if (!url || (url->scheme() != "https" && url->scheme() != "http") || url->encoded_host().empty() ||
        url->has_userinfo() || url->has_fragment())
        return false;
    if (is_loopback_host(url->encoded_host()))
        return true;
    const std::string origin = origin_of(*url);
    auto own = boost::urls::parse_absolute_uri(settings_.audience);
    return (own && origin == origin_of(*own)) || settings_.origins.allows(origin);
}

namespace {

/// The authorize request's parameters, carried by the login page's form to its POST.
const std::array<const char*, 8> carried_fields = {"response_type", "client_id",      "redirect_uri",          "scope",
                                                   "state",         "aud",            "code_challenge", "code_challenge_method"};

} // namespace

http::response provider::authorize_page(const http::request& req) {
    const auto query = req.target.find('?');
    auto f = form_fields(query == std::string::npos ? std::string_view{} : std::string_view(req.target).substr(query + 1));
    if (!f)
        return html_page(400, "Bad request", "<h1>Bad request</h1><p>The query is not form encoding.</p>");
    const std::string client = field(*f, "client_id");
    const std::string redirect = field(*f, "redirect_uri");
    if (client.empty() || !may_receive_codes(redirect))
        return html_page(400, "Bad request",
                         "<h1>This app cannot log in here</h1><p>It gave no <code>client_id</code>, or a "
                         "<code>redirect_uri</code> that is not on this machine, this endpoint or an origin it "
                         "names (<code>--cors-origins</code>).</p>");
    const std::string state = field(*f, "state");
    if (field(*f, "response_type") != "code")
        return redirect_to(redirect, {{"error", "unsupported_response_type"}, {"state", state}});
    if (field(*f, "code_challenge_method") != "S256" || !is_s256_challenge(field(*f, "code_challenge")))
        return redirect_to(redirect, {{"error", "invalid_request"},
                                      {"error_description", "PKCE with code_challenge_method S256 is required"},
                                      {"state", state}});
    if (field(*f, "aud") != settings_.audience)
        return redirect_to(redirect, {{"error", "invalid_request"},
                                      {"error_description", "aud must be this endpoint's FHIR base URL"},
                                      {"state", state}});
    std::string hidden;
    for (const char* name : carried_fields)
        hidden += "<input type=\"hidden\" name=\"" + std::string(name) + "\" value=\"" + html_escape(field(*f, name)) + "\">";
    const std::string scope = joined(granted_scopes(field(*f, "scope")));
    return html_page(
        200, "Log in (development)",
        "<h1>Development login</h1><p>This stands in for NHS login while an app is built: choose a test "
        "citizen. Only NHS numbers of the test range (starting with 9) are accepted.</p>"
        "<form method=\"post\" action=\"/dev-idp/authorize\">" +
            hidden +
            "<p><label for=\"nhs_number\">NHS number</label><br><input type=\"text\" id=\"nhs_number\" "
            "name=\"nhs_number\" inputmode=\"numeric\" autocomplete=\"off\" required pattern=\"9[0-9]{9}\" "
            "value=\"9000000009\"></p><fieldset><legend>How well their identity is proved</legend>"
            "<p><input type=\"radio\" id=\"p9\" name=\"proofing\" value=\"P9\" checked> <label for=\"p9\">P9: "
            "verified (sees their record)</label></p><p><input type=\"radio\" id=\"p5\" name=\"proofing\" "
            "value=\"P5\"> <label for=\"p5\">P5: low confidence (their details only)</label></p><p><input "
            "type=\"radio\" id=\"p0\" name=\"proofing\" value=\"P0\"> <label for=\"p0\">P0: not verified "
            "(nothing)</label></p></fieldset><p>The app <strong>" +
            html_escape(field(*f, "client_id")) + "</strong> asks for: <code>" + html_escape(scope) +
            "</code></p><button type=\"submit\" name=\"decision\" value=\"allow\">Log in</button><button "
            "type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button></form>");
}

http::response provider::authorize_decision(const http::request& req) {
    auto f = form_fields(req.body);
    if (!f)
        return html_page(400, "Bad request", "<h1>Bad request</h1><p>The form is not form encoding.</p>");
    // Everything the page carried is checked again: the form is the browser's to change.
    const std::string client = field(*f, "client_id");
    const std::string redirect = field(*f, "redirect_uri");
    if (client.empty() || !may_receive_codes(redirect))
        return html_page(400, "Bad request", "<h1>This app cannot log in here</h1>");
    const std::string state = field(*f, "state");
    if (field(*f, "response_type") != "code" || field(*f, "code_challenge_method") != "S256" ||
        !is_s256_challenge(field(*f, "code_challenge")) || field(*f, "aud") != settings_.audience)
        return redirect_to(redirect, {{"error", "invalid_request"}, {"state", state}});
    if (field(*f, "decision") != "allow")
        return redirect_to(redirect, {{"error", "access_denied"}, {"state", state}});
    const std::string nhs = field(*f, "nhs_number");
    const std::string proofing = field(*f, "proofing");
    if (!is_test_nhs_number(nhs) || (proofing != "P0" && proofing != "P5" && proofing != "P9"))
        return html_page(400, "Log in (development)",
                         "<h1>Development login</h1><p class=\"error\" role=\"alert\">That is not an NHS number of the "
                         "test range (ten digits starting with 9, with a valid check digit), or no proofing "
                         "level was chosen. Go back and try again.</p>");
    // An app that asks for no patient scope gets the least there is: reading the citizen's own record.
    std::vector<std::string> scopes = granted_scopes(field(*f, "scope"));
    if (std::none_of(scopes.begin(), scopes.end(), [](const std::string& s) { return s.substr(0, 8) == "patient/"; }))
        scopes.emplace_back("patient/*.rs");
    grant g{client, redirect, field(*f, "code_challenge"), nhs, proofing, joined(scopes), clock::now() + code_lifetime};
    std::string code = random_token();
    {
        std::lock_guard lock(mutex_);
        forget_expired(codes_, clock::now());
        if (codes_.size() >= max_kept)
            return html_page(503, "Busy", "<h1>Too many logins at once</h1><p>Try again in a minute.</p>");
        codes_.emplace(code, std::move(g));
    }
    return redirect_to(redirect, {{"code", code}, {"state", state}});
}

http::response provider::token(const http::request& req) {
    if (req.header("Content-Type").find("application/x-www-form-urlencoded") == std::string_view::npos)
        return token_error("invalid_request", "the token request is a form (application/x-www-form-urlencoded)");
    auto f = form_fields(req.body);
    if (!f)
        return token_error("invalid_request", "the body is not form encoding");
    const std::string grant_type = field(*f, "grant_type");
    const auto now = clock::now();
    if (grant_type == "authorization_code") {
        std::optional<grant> found;
        {
            std::lock_guard lock(mutex_);
            auto it = codes_.find(field(*f, "code"));
            if (it != codes_.end()) {
                found = std::move(it->second);
                codes_.erase(it); // invariant 2: once, whatever follows
            }
        }
        if (!found || found->expires <= now)
            return token_error("invalid_grant", "the code is unknown, used or expired");
        if (found->client_id != field(*f, "client_id") || found->redirect_uri != field(*f, "redirect_uri"))
            return token_error("invalid_grant", "the code was issued to another client or redirect_uri");
        const std::string verifier = field(*f, "code_verifier");
        if (!is_code_verifier(verifier) ||
            auth::detail::base64url_encode(auth::detail::sha256(verifier)) != found->code_challenge)
            return token_error("invalid_grant", "code_verifier does not match the code_challenge (PKCE, S256)");
        return tokens_for(*found);
    }
    if (grant_type == "refresh_token") {
        std::optional<grant> held;
        {
            std::lock_guard lock(mutex_);
            auto it = refresh_.find(field(*f, "refresh_token"));
            if (it != refresh_.end())
                held = it->second;
        }
        if (!held || held->expires <= now)
            return token_error("invalid_grant", "the refresh token is unknown or expired");
        if (!field(*f, "client_id").empty() && field(*f, "client_id") != held->client_id)
            return token_error("invalid_grant", "the refresh token was issued to another client");
        // An access token of the scopes the refresh token carries, or of fewer when asked; no new
        // refresh token (the one given goes on until it expires).
        const std::string asked = field(*f, "scope");
        std::vector<std::string> scopes;
        for (const auto& s : granted_scopes(asked.empty() ? held->scope : asked))
            if (has_scope(held->scope, s) && s != "offline_access" && s != "online_access")
                scopes.push_back(s);
        if (std::none_of(scopes.begin(), scopes.end(), [](const std::string& s) { return s.substr(0, 8) == "patient/"; }))
            return token_error("invalid_scope", "none of the scopes asked for is one the refresh token carries");
        grant fresh = *held;
        fresh.scope = joined(scopes);
        return tokens_for(fresh);
    }
    return token_error("unsupported_grant_type", "grant_type is authorization_code or refresh_token");
}

http::response provider::tokens_for(const grant& g) {
    const auto issued = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::vector<std::string> patient_scopes; // never empty: authorize and refresh see to it
    for (const auto& s : granted_scopes(g.scope))
        if (s.substr(0, 8) == "patient/")
            patient_scopes.push_back(s);

    auth::token_claims access;
    access.issuer = settings_.issuer;
    access.audience = settings_.audience;
    access.user = auth::development_citizen_subject(g.nhs_number);
    access.nhs_number = g.nhs_number;
    access.proofing_level = g.proofing;
    access.vot = g.proofing + ".Cp.Cd";
    access.scopes = patient_scopes;
    access.issued_at = issued;
    access.not_before = issued;
    access.expires = issued + settings_.access_lifetime.count();
    access.token_id = random_token();

    json_object body;
    body.text("access_token", auth::mint_token(access, settings_.signing_key_pem))
        .text("token_type", "Bearer")
        .number("expires_in", settings_.access_lifetime.count())
        .text("scope", g.scope)
        .text("patient", g.nhs_number)
        .flag("need_patient_banner", true);
    if (has_scope(g.scope, "openid")) {
        auth::token_claims id = access;
        id.audience = g.client_id;
        id.scopes.clear();
        id.token_id = random_token();
        id.fhir_user = has_scope(g.scope, "fhirUser") ? settings_.audience + "/Patient/" + g.nhs_number : std::string();
        body.text("id_token", auth::mint_token(id, settings_.signing_key_pem));
    }
    if (has_scope(g.scope, "offline_access") || has_scope(g.scope, "online_access")) {
        grant kept = g;
        kept.code_challenge.clear();
        kept.expires = clock::now() + settings_.refresh_lifetime;
        const std::string refresh = random_token();
        {
            std::lock_guard lock(mutex_);
            forget_expired(refresh_, clock::now());
            if (refresh_.size() >= max_kept)
                return json_answer(503, json_object().text("error", "temporarily_unavailable").done());
            refresh_.emplace(refresh, std::move(kept));
        }
        body.text("refresh_token", refresh);
    }
    return json_answer(200, body.done());
}

http::response provider::jwks() const {
    http::response out;
    out.set("Content-Type", "application/json");
    out.set("Access-Control-Allow-Origin", "*");
    out.body = jwks_json_;
    return out;
}

} // namespace caregate::dev_idp
