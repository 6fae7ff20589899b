// Tests of gateway/auth: bearer token verification (RFC 7515 compact JWS, RFC 7519 claims), the
// verified-token cache, development token minting and the issuers file. Keys are made at test time
// with OpenSSL; the `openssl` command line signs independently of our code in one test.
#include "auth/detail/jose.hpp"
#include "auth/issuers.hpp"
#include "auth/token.hpp"

#include <doctest/doctest.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace auth = caregate::auth;
namespace detail = caregate::auth::detail;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t now = 1'700'000'000;
constexpr const char* audience = "https://localhost:8443/fhir";
constexpr const char* issuer = "caregate-test";

struct key_pair {
    std::string private_pem;
    std::string public_pem;
    std::shared_ptr<EVP_PKEY> key;
};

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<std::size_t>(size));
    BIO_free(bio);
    return text;
}

key_pair from_key(EVP_PKEY* key) {
    REQUIRE(key != nullptr);
    key_pair out;
    BIO* priv = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
    out.private_pem = bio_text(priv);
    BIO* pub = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(pub, key);
    out.public_pem = bio_text(pub);
    out.key.reset(key, EVP_PKEY_free);
    return out;
}

key_pair rsa_key(std::size_t bits = 2048) {
    return from_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
}
key_pair ec_key(const char* curve = "P-256") { return from_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)); }

/// Keys made once per run: RSA keygen is slow enough to matter.
const key_pair& rsa_a() { static const key_pair k = rsa_key(); return k; }
const key_pair& rsa_b() { static const key_pair k = rsa_key(); return k; }
const key_pair& ec_a() { static const key_pair k = ec_key(); return k; }
const key_pair& ec_b() { static const key_pair k = ec_key(); return k; }

std::string bn_bytes(EVP_PKEY* key, const char* name, int pad = 0) {
    BIGNUM* bn = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(key, name, &bn) == 1);
    std::string out(pad ? static_cast<std::size_t>(pad) : static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
    BN_free(bn);
    return detail::base64url_encode(out);
}

/// A JWK (RFC 7517) of a key's public half.
std::string jwk(const key_pair& k, const std::string& kid) {
    EVP_PKEY* key = k.key.get();
    if (EVP_PKEY_is_a(key, "RSA"))
        return R"({"kty":"RSA","use":"sig","kid":")" + kid + R"(","n":")" + bn_bytes(key, OSSL_PKEY_PARAM_RSA_N) +
               R"(","e":")" + bn_bytes(key, OSSL_PKEY_PARAM_RSA_E) + R"("})";
    return R"({"kty":"EC","crv":"P-256","kid":")" + kid + R"(","x":")" + bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_X, 32) +
           R"(","y":")" + bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + R"("})";
}

/// A compact JWS of any header and payload, signed by `signer`'s key type (RS256 or ES256).
std::string compact(const std::string& header, const std::string& payload, const key_pair& signer) {
    const auto key = detail::private_key_from_pem(signer.private_pem);
    const std::string input = detail::base64url_encode(header) + "." + detail::base64url_encode(payload);
    return input + "." + detail::base64url_encode(detail::sign(detail::algorithm_of(key.get()), key.get(), input));
}

/// Claims as raw JSON values by name; the defaults make a valid token for `now`.
using claim_set = std::map<std::string, std::string>;
claim_set valid_claims() {
    return {{"iss", "\"caregate-test\""},
            {"aud", "\"https://localhost:8443/fhir\""},
            {"sub", "\"123456789012\""},
            {"ods_code", "\"A81001\""},
            {"role", "\"R8000\""},
            {"scope", "\"user/*.rs user/Observation.c\""},
            {"iat", std::to_string(now)},
            {"nbf", std::to_string(now)},
            {"exp", std::to_string(now + 3600)}};
}
std::string json(const claim_set& claims) {
    std::string out = "{";
    for (const auto& [name, value] : claims)
        out += (out.size() > 1 ? "," : "") + ("\"" + name + "\":") + value;
    return out + "}";
}

std::string rs256(const claim_set& claims, const key_pair& k = rsa_a()) {
    return compact(R"({"alg":"RS256","typ":"JWT"})", json(claims), k);
}
std::string es256(const claim_set& claims, const key_pair& k = ec_a()) {
    return compact(R"({"alg":"ES256","typ":"JWT"})", json(claims), k);
}

auth::verifier_settings settings(std::size_t cache_entries = 1000) {
    auth::verifier_settings s;
    s.audience = audience;
    s.cache_entries = cache_entries;
    return s;
}

auth::token_verifier verifier_for(std::vector<std::string> pems, std::size_t cache_entries = 1000) {
    return auth::token_verifier({{issuer, std::move(pems), {}}}, settings(cache_entries));
}

/// The diagnostics of a refusal; fails the test when the token was accepted or refused otherwise.
std::string refusal(const auth::token_verifier& v, std::string_view token, std::int64_t at = now) {
    auto result = v.verify(token, at);
    REQUIRE_FALSE(result.ok());
    const auto& failure = result.failure();
    CHECK(failure.kind == caregate::fhir::category::unauthorised);
    REQUIRE(failure.issues.size() == 1);
    CHECK(failure.issues[0].code == "login");
    // A refusal never repeats the token (or, below, any claim's value).
    if (token.size() > 8)
        CHECK(failure.issues[0].diagnostics.find(token) == std::string::npos);
    return failure.issues[0].diagnostics;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A citizen's token, shaped like NHS login's, for the patient-facing endpoint's audience.
constexpr const char* patient_audience = "https://localhost:9443/fhir";
constexpr const char* citizen_nhs_number = "9000000009";
claim_set citizen_claims() {
    return {{"iss", "\"caregate-test\""},
            {"aud", "\"https://localhost:9443/fhir\""},
            {"sub", "\"49f470a1-cc52-49b7-beba-0f9cec937c46\""},
            {"nhs_number", "\"9000000009\""},
            {"identity_proofing_level", "\"P9\""},
            {"vot", "\"P9.Cp.Cd\""},
            {"scope", "\"openid launch/patient patient/*.rs\""},
            {"iat", std::to_string(now)},
            {"nbf", std::to_string(now)},
            {"exp", std::to_string(now + 3600)}};
}

auth::token_verifier citizen_verifier(std::size_t cache_entries = 1000) {
    auto s = settings(cache_entries);
    s.audience = patient_audience;
    s.kind = auth::token_kind::citizen;
    return auth::token_verifier({{issuer, {rsa_a().public_pem, ec_a().public_pem}, {}}}, s);
}

/// A refusal of a token that carries an NHS number: the diagnostic names neither the token nor it.
std::string citizen_refusal(const auth::token_verifier& v, std::string_view token,
                            std::string_view nhs_number = citizen_nhs_number) {
    const std::string said = refusal(v, token);
    CHECK_FALSE(contains(said, std::string(nhs_number)));
    return said;
}

fs::path fresh_directory(const std::string& name) {
    std::random_device random;
    auto dir = fs::temp_directory_path() / (name + "-" + std::to_string(random()) + "-" + std::to_string(random()));
    fs::create_directories(dir);
    return dir;
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

TEST_CASE("auth jose: base64url is RFC 7515's, without padding, one spelling per value") {
    std::string out;
    CHECK(detail::base64url_encode("") == "");
    CHECK(detail::base64url_encode("f") == "Zg");
    CHECK(detail::base64url_encode("fo") == "Zm8");
    CHECK(detail::base64url_encode("foo") == "Zm9v");
    CHECK(detail::base64url_encode("\xfb\xff") == "-_8");
    CHECK((detail::base64url_decode("-_8", out) && out == "\xfb\xff"));
    CHECK((detail::base64url_decode("Zm9vYg", out) && out == "foob"));
    CHECK((detail::base64url_decode("", out) && out.empty()));
    CHECK_FALSE(detail::base64url_decode("Zg==", out)); // padding
    CHECK_FALSE(detail::base64url_decode("+/8", out));  // the standard alphabet
    CHECK_FALSE(detail::base64url_decode("Zm9 v", out));
    CHECK_FALSE(detail::base64url_decode("Z", out));    // no length leaves one character over
    CHECK_FALSE(detail::base64url_decode("Zh", out));   // non-zero unused bits: a second spelling of "f"
    CHECK_FALSE(detail::base64url_decode(std::string_view("Zm\0v", 4), out));
}

TEST_CASE("auth token: a valid RS256 token gives the caller its claims") {
    const auto v = verifier_for({rsa_a().public_pem});
    auth::token_claims claims;
    claims.issuer = issuer;
    claims.audience = audience;
    claims.user = "123456789012";
    claims.organisation = "A81001";
    claims.role = "R8000";
    claims.scopes = {"user/*.rs", "user/Observation.c"};
    claims.issued_at = now;
    claims.not_before = now;
    claims.expires = now + 600;
    const std::string token = auth::mint_token(claims, rsa_a().private_pem);
    CHECK(token.rfind("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 0) == 0); // {"alg":"RS256","typ":"JWT"}

    auto who = v.verify(token, now);
    REQUIRE(who.ok());
    CHECK((*who)->issuer == issuer);
    CHECK((*who)->user == "123456789012");
    CHECK((*who)->organisation == "A81001");
    CHECK((*who)->role == "R8000");
    CHECK((*who)->scopes == std::vector<std::string>{"user/*.rs", "user/Observation.c"});
    CHECK((*who)->purpose == "TREAT");
    CHECK((*who)->reason.empty());
    CHECK((*who)->expires == now + 600);
    CHECK(v.verifications() == 1);
}

TEST_CASE("auth token: a valid ES256 token (raw r||s signature) gives the caller its claims") {
    const auto v = verifier_for({ec_a().public_pem});
    auth::token_claims claims;
    claims.issuer = issuer;
    claims.audience = audience;
    claims.user = "gp-doctor-1";
    claims.organisation = "RX1";
    claims.role = "R8001";
    claims.purpose = "ETREAT";
    claims.reason = "unconscious patient in A&E";
    claims.issued_at = now;
    claims.not_before = now;
    claims.expires = now + 600;
    const std::string token = auth::mint_token(claims, ec_a().private_pem);
    std::string signature;
    REQUIRE(detail::base64url_decode(token.substr(token.rfind('.') + 1), signature));
    CHECK(signature.size() == 64); // RFC 7518 3.4: not DER

    auto who = v.verify(token, now);
    REQUIRE(who.ok());
    CHECK((*who)->user == "gp-doctor-1");
    CHECK((*who)->organisation == "RX1");
    CHECK((*who)->role == "R8001");
    CHECK((*who)->scopes.empty());
    CHECK((*who)->purpose == "ETREAT");
    CHECK((*who)->reason == "unconscious patient in A&E");
}

TEST_CASE("auth token: an NHS CIS2 role triple gives its job role; aud may be an array") {
    const auto v = verifier_for({rsa_a().public_pem});
    auto claims = valid_claims();
    claims["role"] = "\"S8000:G8000:R8003\"";
    claims["aud"] = R"(["https://other.example/fhir","https://localhost:8443/fhir"])";
    claims["scope"] = R"(["user/Patient.rs","user/Encounter.rs"])";
    auto who = v.verify(rs256(claims), now);
    REQUIRE(who.ok());
    CHECK((*who)->role == "R8003");
    CHECK((*who)->scopes == std::vector<std::string>{"user/Patient.rs", "user/Encounter.rs"});

    claims["role"] = "\"system\"";
    REQUIRE(v.verify(rs256(claims), now).ok());
    claims["role"] = "\"S8000:G8000:\"";
    CHECK(contains(refusal(v, rs256(claims)), "role"));
    claims["role"] = "\"R8000; DROP\"";
    CHECK(contains(refusal(v, rs256(claims)), "role"));
}

TEST_CASE("auth token: exp and nbf, with the clock skew allowed (60 s by default)") {
    const auto v = verifier_for({rsa_a().public_pem}, 0); // no cache: each check sees the claims
    auto claims = valid_claims();
    claims["exp"] = std::to_string(now - 60);
    CHECK(v.verify(rs256(claims), now).ok());
    claims["exp"] = std::to_string(now - 61);
    CHECK(refusal(v, rs256(claims)) == "the token has expired");

    claims = valid_claims();
    claims["nbf"] = std::to_string(now + 60);
    CHECK(v.verify(rs256(claims), now).ok());
    claims["nbf"] = std::to_string(now + 61);
    CHECK(contains(refusal(v, rs256(claims)), "not valid yet"));

    claims = valid_claims();
    claims.erase("nbf");
    claims.erase("iat");
    CHECK(v.verify(rs256(claims), now).ok());
    claims.erase("exp");
    CHECK(refusal(v, rs256(claims)) == "the token has no exp claim");
    claims["exp"] = "\"tomorrow\"";
    CHECK(contains(refusal(v, rs256(claims)), "exp claim is not a NumericDate"));
    claims["exp"] = "1e300";
    CHECK(contains(refusal(v, rs256(claims)), "exp claim is not a NumericDate"));
    claims["exp"] = std::to_string(now + 10) + ".5"; // NumericDate may have a fraction
    CHECK(v.verify(rs256(claims), now).ok());
}

TEST_CASE("auth token: a changed payload or signature does not verify") {
    const auto v = verifier_for({rsa_a().public_pem, ec_a().public_pem});
    for (const std::string& token : {rs256(valid_claims()), es256(valid_claims())}) {
        CAPTURE(token);
        const auto first_dot = token.find('.');
        const auto second_dot = token.find('.', first_dot + 1);

        // The payload re-encoded with the role raised, the signature kept.
        auto claims = valid_claims();
        claims["role"] = "\"R8008\"";
        const std::string forged = token.substr(0, first_dot + 1) + detail::base64url_encode(json(claims)) +
                                   token.substr(second_dot);
        CHECK(refusal(v, forged) == "the token's signature does not verify");

        // One character of the payload changed.
        std::string changed = token;
        char& c = changed[first_dot + 10];
        c = c == 'A' ? 'B' : 'A';
        refusal(v, changed);

        // One character of the signature changed (the middle one: no padding bits involved).
        std::string bad_signature = token;
        char& s = bad_signature[second_dot + (token.size() - second_dot) / 2];
        s = s == 'A' ? 'B' : 'A';
        CHECK(refusal(v, bad_signature) == "the token's signature does not verify");

        // The signature dropped or cut short.
        CHECK(contains(refusal(v, token.substr(0, second_dot + 1)), "signature"));
        CHECK(contains(refusal(v, token.substr(0, token.size() - 4)), "signature"));
    }
    CHECK(v.verify(rs256(valid_claims()), now).ok());
}

TEST_CASE("auth token: only configured issuers, with their own keys") {
    const auto v = verifier_for({rsa_a().public_pem});
    auto claims = valid_claims();
    claims["iss"] = "\"https://someone-else.example\"";
    CHECK(refusal(v, rs256(claims)) == "the token's issuer is not trusted");
    claims.erase("iss");
    CHECK(refusal(v, rs256(claims)) == "the token has no iss claim");

    // The right iss, signed by another RSA key; or by an EC key the issuer does not have.
    CHECK(refusal(v, rs256(valid_claims(), rsa_b())) == "the token's signature does not verify");
    CHECK(contains(refusal(v, es256(valid_claims())), "no key for its kid and algorithm"));
}

TEST_CASE("auth token: the token must be for this audience") {
    const auto v = verifier_for({rsa_a().public_pem});
    auto claims = valid_claims();
    claims["aud"] = "\"https://localhost:8443/fhir/\"";
    CHECK(refusal(v, rs256(claims)) == "the token is not for this audience");
    claims["aud"] = R"(["https://a.example","https://b.example"])";
    CHECK(refusal(v, rs256(claims)) == "the token is not for this audience");
    claims["aud"] = "[]";
    CHECK(refusal(v, rs256(claims)) == "the token is not for this audience");
    claims.erase("aud");
    CHECK(refusal(v, rs256(claims)) == "the token has no aud claim");
}

TEST_CASE("auth token: alg none, HS256 with the public key as secret, and other algorithms are refused") {
    const auto v = verifier_for({rsa_a().public_pem});
    const std::string payload = detail::base64url_encode(json(valid_claims()));
    const std::string not_accepted = "the token's algorithm is not accepted (RS256 or ES256 only)";

    // RFC 7519 6.1: an unsecured JWT, with an empty signature.
    for (const char* header : {R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})", R"({"typ":"JWT"})"})
        CHECK(refusal(v, detail::base64url_encode(header) + "." + payload + ".") == not_accepted);

    // The classic confusion: HMAC keyed with the RSA public key's PEM text.
    const std::string input = detail::base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + payload;
    unsigned char mac[EVP_MAX_MD_SIZE];
    std::size_t mac_length = 0;
    REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, rsa_a().public_pem.data(),
                      rsa_a().public_pem.size(), reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                      mac, sizeof mac, &mac_length) != nullptr);
    const std::string hs256 =
        input + "." + detail::base64url_encode(std::string(reinterpret_cast<char*>(mac), mac_length));
    CHECK(refusal(v, hs256) == not_accepted);

    for (const char* header : {R"({"alg":"RS512"})", R"({"alg":"PS256"})", R"({"alg":"rs256"})", R"({"alg":["RS256"]})"})
        CHECK(refusal(v, compact(header, json(valid_claims()), rsa_a())) == not_accepted);

    // A valid signature, but a header with critical extensions we do not understand.
    CHECK(contains(refusal(v, compact(R"({"alg":"RS256","crit":["exp"]})", json(valid_claims()), rsa_a())),
                   "critical"));
}

TEST_CASE("auth token: sub, ods_code and role are required and checked") {
    const auto v = verifier_for({rsa_a().public_pem});
    for (const char* name : {"sub", "ods_code", "role"}) {
        CAPTURE(name);
        auto claims = valid_claims();
        claims.erase(name);
        CHECK(refusal(v, rs256(claims)) == std::string("the token has no ") + name + " claim");
        claims[name] = "\"\"";
        CHECK(refusal(v, rs256(claims)) == std::string("the token's ") + name + " claim is not valid");
        claims[name] = "42";
        CHECK(refusal(v, rs256(claims)) == std::string("the token's ") + name + " claim is not valid");
    }
    auto claims = valid_claims();
    claims["ods_code"] = "\"a81001\"";
    CHECK(refusal(v, rs256(claims)) == "the token's ods_code claim is not an ODS code");

    claims = valid_claims();
    claims["sub"] = "\"" + std::string(257, 'x') + "\"";
    CHECK(refusal(v, rs256(claims)) == "the token's sub claim is not valid");
    claims["sub"] = "\"line\\nbreak\"";
    CHECK(refusal(v, rs256(claims)) == "the token's sub claim is not valid");

    claims = valid_claims();
    claims["purpose_of_use"] = "\"ETREAT\"";
    claims["break_glass_reason"] = "\"" + std::string(1000, 'r') + "\"";
    CHECK(v.verify(rs256(claims), now).ok());
    claims["break_glass_reason"] = "\"" + std::string(1001, 'r') + "\"";
    CHECK(refusal(v, rs256(claims)) == "the token's break_glass_reason claim is not valid");

    // A refusal names the claim, never its value.
    claims = valid_claims();
    claims["sub"] = "\"SECRET-USER-9000000009\"";
    claims["ods_code"] = "\"not an ods code\"";
    const std::string said = refusal(v, rs256(claims));
    CHECK_FALSE(contains(said, "SECRET"));
    CHECK_FALSE(contains(said, "not an ods code"));

    // Two of the same claim: which one counts would be up to the parser.
    const std::string twice = R"({"iss":"caregate-test","aud":"https://localhost:8443/fhir","sub":"a","sub":"b",)"
                              R"("ods_code":"A81001","role":"R8000","exp":)" + std::to_string(now + 60) + "}";
    CHECK(contains(refusal(v, compact(R"({"alg":"RS256"})", twice, rsa_a())), "payload"));
}

TEST_CASE("auth token: a citizen's token (NHS login's claims) at a citizen verifier gives the caller its claims") {
    const auto v = citizen_verifier();
    auth::token_claims claims;
    claims.issuer = issuer;
    claims.audience = patient_audience;
    claims.user = "49f470a1-cc52-49b7-beba-0f9cec937c46";
    claims.nhs_number = citizen_nhs_number;
    claims.proofing_level = "P9";
    claims.vot = "P9.Cp.Cd";
    // Every kind of scope is kept as given: the access layer interprets them.
    claims.scopes = {"openid", "launch/patient", "patient/*.rs", "patient/Observation.cruds", "patient/*.read",
                     "patient/*.write"};
    claims.issued_at = now;
    claims.not_before = now;
    claims.expires = now + 600;
    const std::string token = auth::mint_token(claims, rsa_a().private_pem);
    std::string payload;
    REQUIRE(detail::base64url_decode(token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1), payload));
    CHECK(contains(payload, R"("nhs_number":"9000000009")"));
    CHECK(contains(payload, R"("identity_proofing_level":"P9")"));
    CHECK(contains(payload, R"("vot":"P9.Cp.Cd")"));
    CHECK_FALSE(contains(payload, "ods_code"));
    CHECK_FALSE(contains(payload, "role"));

    auto who = v.verify(token, now);
    REQUIRE(who.ok());
    CHECK((*who)->is_citizen());
    CHECK((*who)->issuer == issuer);
    CHECK((*who)->user == "49f470a1-cc52-49b7-beba-0f9cec937c46");
    CHECK((*who)->nhs_number == "9000000009");
    CHECK((*who)->proofing_level == "P9");
    CHECK((*who)->vot == "P9.Cp.Cd");
    CHECK((*who)->scopes == claims.scopes);
    CHECK((*who)->organisation.empty());
    CHECK((*who)->role.empty());
    CHECK((*who)->purpose.empty());
    CHECK((*who)->reason.empty());
    CHECK((*who)->expires == now + 600);

    // Cached as a provider's token is: the same caller, one signature check.
    auto again = v.verify(token, now + 5);
    REQUIRE(again.ok());
    CHECK(again.value() == who.value());
    CHECK(v.verifications() == 1);

    // A provider's token has no citizen's claims.
    auto provider = verifier_for({rsa_a().public_pem}).verify(rs256(valid_claims()), now);
    REQUIRE(provider.ok());
    CHECK_FALSE((*provider)->is_citizen());
    CHECK((*provider)->proofing_level.empty());
    CHECK((*provider)->vot.empty());
}

TEST_CASE("auth token: a citizen's vot is optional; purpose_of_use and break_glass_reason are not read") {
    const auto v = citizen_verifier();
    auto claims = citizen_claims();
    claims.erase("vot");
    auto who = v.verify(es256(claims), now);
    REQUIRE(who.ok());
    CHECK((*who)->vot.empty());
    CHECK((*who)->proofing_level == "P9");

    claims["vot"] = "42";
    CHECK(citizen_refusal(v, rs256(claims)) == "the token's vot claim is not valid");
    claims["vot"] = "\"\"";
    CHECK(citizen_refusal(v, rs256(claims)) == "the token's vot claim is not valid");

    claims = citizen_claims();
    claims["purpose_of_use"] = "\"ETREAT\"";
    claims["break_glass_reason"] = "\"I want to\"";
    who = v.verify(rs256(claims), now);
    REQUIRE(who.ok());
    CHECK((*who)->purpose.empty());
    CHECK((*who)->reason.empty());

    // No scope at all is a valid token with no scopes (the access layer then allows nothing).
    claims = citizen_claims();
    claims.erase("scope");
    who = v.verify(rs256(claims), now);
    REQUIRE(who.ok());
    CHECK((*who)->scopes.empty());
    claims["scope"] = "7";
    CHECK(citizen_refusal(v, rs256(claims)) == "the token's scope claim is not valid");
}

TEST_CASE("auth token: a citizen's sub, nhs_number and identity_proofing_level are required and checked") {
    const auto v = citizen_verifier();
    for (const char* name : {"sub", "nhs_number", "identity_proofing_level"}) {
        CAPTURE(name);
        auto claims = citizen_claims();
        claims.erase(name);
        CHECK(citizen_refusal(v, rs256(claims)) == std::string("the token has no ") + name + " claim");
        claims[name] = "\"\"";
        CHECK(citizen_refusal(v, rs256(claims)) == std::string("the token's ") + name + " claim is not valid");
    }
    // An NHS number is a string of 10 digits with a Modulus 11 check digit, not ten equal digits.
    for (const char* nhs : {"9000000000", "9000000008", "9000000019", "900000000", "90000000090", "0000000000",
                            "900000000X", "900 000 0009", "9000000017 "}) {
        CAPTURE(nhs);
        auto claims = citizen_claims();
        claims["nhs_number"] = std::string("\"") + nhs + "\"";
        CHECK(citizen_refusal(v, rs256(claims), nhs) == "the token's nhs_number claim is not a valid NHS number");
    }
    auto claims = citizen_claims();
    claims["nhs_number"] = "9000000009";
    CHECK(citizen_refusal(v, rs256(claims)) == "the token's nhs_number claim is not valid");

    for (const char* level : {"P7", "p9", "P9 ", "P1", "P10", "9", "P9.Cp.Cd"}) {
        CAPTURE(level);
        claims = citizen_claims();
        claims["identity_proofing_level"] = std::string("\"") + level + "\"";
        CHECK(citizen_refusal(v, rs256(claims)) == "the token's identity_proofing_level claim is not P0, P5 or P9");
    }
    claims = citizen_claims();
    claims["identity_proofing_level"] = "9";
    CHECK(citizen_refusal(v, rs256(claims)) == "the token's identity_proofing_level claim is not valid");
    for (const char* level : {"P0", "P5", "P9"}) {
        CAPTURE(level);
        claims = citizen_claims();
        claims["identity_proofing_level"] = std::string("\"") + level + "\"";
        claims["nhs_number"] = "\"9693632109\"";
        auto who = v.verify(rs256(claims), now);
        REQUIRE(who.ok());
        CHECK((*who)->proofing_level == level);
        CHECK((*who)->nhs_number == "9693632109");
    }
}

TEST_CASE("auth token: a verifier takes one kind of token; the other kind is refused (401)") {
    const auto citizens = citizen_verifier();
    // Both audiences, so that what refuses each token is its kind, not its audience.
    auto provider = valid_claims();
    provider["aud"] = R"(["https://localhost:8443/fhir","https://localhost:9443/fhir"])";
    CHECK(refusal(citizens, rs256(provider)) == "a provider's token is for the provider endpoint");
    auto only_ods = provider;
    only_ods.erase("role");
    CHECK(refusal(citizens, rs256(only_ods)) == "a provider's token is for the provider endpoint");
    auto only_role = provider;
    only_role.erase("ods_code");
    CHECK(refusal(citizens, rs256(only_role)) == "a provider's token is for the provider endpoint");
    // A citizen's claims do not make a provider's token acceptable to the patient-facing endpoint.
    auto both = citizen_claims();
    both["ods_code"] = "\"A81001\"";
    both["role"] = "\"R8000\"";
    CHECK(citizen_refusal(citizens, rs256(both)) == "a provider's token is for the provider endpoint");

    auto v_settings = settings();
    v_settings.audience = patient_audience; // the provider kind, at the citizen's audience
    const auth::token_verifier providers({{issuer, {rsa_a().public_pem}, {}}}, v_settings);
    CHECK(citizen_refusal(providers, rs256(citizen_claims())) == "a citizen's token is for the patient-facing endpoint");
    CHECK(citizen_refusal(providers, rs256(both)) == "a citizen's token is for the patient-facing endpoint");
    auto invalid_number = valid_claims();
    invalid_number["aud"] = "\"https://localhost:9443/fhir\"";
    invalid_number["nhs_number"] = "\"\"";
    CHECK(refusal(providers, rs256(invalid_number)) == "a citizen's token is for the patient-facing endpoint");

    // Refusals are not cached: the citizen's token still verifies at its own endpoint.
    CHECK(citizens.verify(rs256(citizen_claims()), now).ok());
    CHECK(providers.verify(rs256(provider), now).ok());
}

TEST_CASE("auth token: garbage, oversized and badly encoded tokens are refused") {
    const auto v = verifier_for({rsa_a().public_pem});
    const std::string good = rs256(valid_claims());
    const auto first_dot = good.find('.');
    const auto second_dot = good.find('.', first_dot + 1);

    CHECK(refusal(v, "") == "the bearer token is empty");
    for (const char* garbage : {"x", "abc.def", "a.b.c.d", "..", "...", "Bearer abc.def.ghi", "null", "{}.{}.{}",
                                "eyJhbGciOiJSUzI1NiJ9.e30.", "\xff\xfe.\xff.\xff"})
        refusal(v, garbage);
    CHECK(refusal(v, std::string(8193, 'a')) == "the token is longer than this server accepts");
    CHECK(refusal(v, good + "." + good) == "the token is not a signed JWT (header.payload.signature)");

    // Padding, the standard alphabet, white space: not base64url.
    CHECK(contains(refusal(v, good.substr(0, second_dot) + "==" + good.substr(second_dot)), "payload"));
    CHECK(contains(refusal(v, good + "="), "signature"));
    std::string standard_alphabet = good;
    standard_alphabet[second_dot + 5] = '+';
    CHECK(contains(refusal(v, standard_alphabet), "signature"));
    CHECK(contains(refusal(v, " " + good), "header"));
    CHECK(contains(refusal(v, good + "\n"), "signature"));

    // A header or payload that is valid base64url but not a JSON object.
    CHECK(contains(refusal(v, detail::base64url_encode("[1]") + good.substr(first_dot)), "header"));
    CHECK(contains(refusal(v, compact(R"({"alg":"RS256"})", "[]", rsa_a())), "payload"));
    CHECK(contains(refusal(v, compact(R"({"alg":"RS256"})", "{\"sub\":\"\xff\"}", rsa_a())), "payload"));
    CHECK(v.verifications() == 0); // none of them reached a signature check
}

TEST_CASE("auth token: a JWKS issuer's kid chooses the key") {
    const std::string jwks = R"({"keys":[)" + jwk(rsa_a(), "k1") + "," + jwk(rsa_b(), "k2") + "," +
                             jwk(ec_a(), "k3") + R"(,{"kty":"oct","k":"c2VjcmV0"},)" +
                             R"({"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]})";
    const auth::token_verifier v({{issuer, {}, jwks}}, settings(0));

    auto with_kid = [](const char* alg, const char* kid, const key_pair& k) {
        return compact(std::string(R"({"alg":")") + alg + R"(","kid":")" + kid + "\"}", json(valid_claims()), k);
    };
    CHECK(v.verify(with_kid("RS256", "k2", rsa_b()), now).ok());
    CHECK(v.verify(with_kid("RS256", "k1", rsa_a()), now).ok());
    CHECK(v.verify(with_kid("ES256", "k3", ec_a()), now).ok());
    const auto before = v.verifications();
    CHECK(refusal(v, with_kid("RS256", "k1", rsa_b())) == "the token's signature does not verify");
    CHECK(v.verifications() == before + 1);
    CHECK(contains(refusal(v, with_kid("RS256", "k9", rsa_a())), "no key for its kid"));
    CHECK(contains(refusal(v, with_kid("RS256", "k3", rsa_a())), "no key for its kid and algorithm"));
    CHECK(contains(refusal(v, compact(R"({"alg":"RS256","kid":7})", json(valid_claims()), rsa_a())), "kid"));
    // Without a kid, each of the issuer's keys for the algorithm is tried.
    CHECK(v.verify(rs256(valid_claims(), rsa_b()), now).ok());
    CHECK(refusal(v, es256(valid_claims(), ec_b())) == "the token's signature does not verify");
}

TEST_CASE("auth token: a verified token is cached until it expires") {
    const auto v = verifier_for({rsa_a().public_pem});
    auto claims = valid_claims();
    claims["exp"] = std::to_string(now + 100);
    claims["nbf"] = std::to_string(now - 10);
    const std::string token = rs256(claims);

    auto first = v.verify(token, now);
    REQUIRE(first.ok());
    auto second = v.verify(token, now + 5);
    REQUIRE(second.ok());
    CHECK(first.value() == second.value()); // the same caller, not a copy
    CHECK(v.verifications() == 1);          // and the signature was checked once

    CHECK(v.verify(token, now + 160).ok()); // exp + skew
    CHECK(refusal(v, token, now + 161) == "the token has expired");
    CHECK(contains(refusal(v, token, now - 71), "not valid yet"));
    CHECK(v.verifications() == 1);

    // Failures are not cached: each bad token costs its own check.
    const std::string forged = rs256(valid_claims(), rsa_b());
    refusal(v, forged);
    refusal(v, forged);
    CHECK(v.verifications() == 3);
}

TEST_CASE("auth token: the cache is bounded, dropping expired entries first") {
    const auto v = verifier_for({rsa_a().public_pem}, 4);
    std::vector<std::string> tokens;
    for (int i = 0; i < 12; ++i) {
        auto claims = valid_claims();
        claims["sub"] = "\"user-" + std::to_string(i) + "\"";
        claims["exp"] = std::to_string(now + (i < 3 ? 10 : 3600));
        tokens.push_back(rs256(claims));
    }
    for (int i = 0; i < 3; ++i)
        REQUIRE(v.verify(tokens[i], now).ok());
    REQUIRE(v.verify(tokens[3], now).ok());
    CHECK(v.verifications() == 4);
    // The cache is full; at now + 100 the first three have expired and make room.
    REQUIRE(v.verify(tokens[4], now + 100).ok());
    REQUIRE(v.verify(tokens[3], now + 100).ok());
    CHECK(v.verifications() == 5); // token 3 was kept
    for (int i = 5; i < 12; ++i)
        REQUIRE(v.verify(tokens[i], now + 100).ok());
    CHECK(v.verifications() == 12);
    REQUIRE(v.verify(tokens[11], now + 100).ok());
    CHECK(v.verifications() == 12); // the newest is cached
    REQUIRE(v.verify(tokens[4], now + 100).ok());
    CHECK(v.verifications() == 13); // an old one was dropped, and verifies again
}

TEST_CASE("auth token: concurrent verification from 8 threads") {
    const auto v = verifier_for({rsa_a().public_pem, ec_a().public_pem}, 16);
    std::vector<std::string> tokens;
    for (int i = 0; i < 24; ++i) {
        auto claims = valid_claims();
        claims["sub"] = "\"user-" + std::to_string(i) + "\"";
        tokens.push_back(i % 2 ? rs256(claims) : es256(claims));
    }
    std::atomic<int> failures{0};
    std::atomic<int> wrong_user{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int round = 0; round < 50; ++round)
                for (std::size_t i = 0; i < tokens.size(); ++i) {
                    const std::size_t which = (i + static_cast<std::size_t>(t) * 3) % tokens.size();
                    auto who = v.verify(tokens[which], now);
                    if (!who)
                        ++failures;
                    else if ((*who)->user != "user-" + std::to_string(which))
                        ++wrong_user;
                }
        });
    for (auto& thread : threads)
        thread.join();
    CHECK(failures == 0);
    CHECK(wrong_user == 0);
    CHECK(v.verifications() >= tokens.size());
    CHECK(refusal(v, rs256(valid_claims(), rsa_b())) == "the token's signature does not verify");
}

TEST_CASE("auth token: issuers' keys are checked when the verifier is made") {
    auto make = [](auth::trusted_issuer i) { auth::token_verifier v({std::move(i)}, settings()); };
    CHECK_THROWS_AS(make({issuer, {rsa_key(1024).public_pem}, {}}), std::invalid_argument);
    CHECK_THROWS_AS(make({issuer, {ec_key("P-384").public_pem}, {}}), std::invalid_argument);
    CHECK_THROWS_AS(make({issuer, {"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"}, {}}),
                    std::invalid_argument);
    CHECK_THROWS_AS(make({issuer, {rsa_a().private_pem}, {}}), std::invalid_argument);
    CHECK_THROWS_AS(make({issuer, {}, {}}), std::invalid_argument);
    CHECK_THROWS_AS(make({issuer, {rsa_a().public_pem}, R"({"keys":[)" + jwk(rsa_a(), "k") + "]}"}),
                    std::invalid_argument);
    CHECK_THROWS_AS(make({issuer, {}, R"({"keys":[]})"}), std::invalid_argument);
    CHECK_THROWS_AS(make({issuer, {}, R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]})"}),
                    std::invalid_argument);
    // A point that is not on the curve.
    const std::string zeros = detail::base64url_encode(std::string(32, '\0'));
    CHECK_THROWS_AS(make({issuer, {}, R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + zeros + R"(","y":")" + zeros + "\"}]}"}),
                    std::invalid_argument);
    CHECK_THROWS_AS(auth::token_verifier({{issuer, {rsa_a().public_pem}, {}}, {issuer, {ec_a().public_pem}, {}}},
                                         settings()),
                    std::invalid_argument);
    CHECK_NOTHROW(make({issuer, {rsa_a().public_pem, ec_a().public_pem}, {}}));
}

TEST_CASE("auth token: mint_token refuses keys it cannot sign RS256 or ES256 with") {
    auth::token_claims claims;
    claims.audience = audience;
    CHECK_THROWS_AS(auth::mint_token(claims, rsa_a().public_pem), std::runtime_error);
    CHECK_THROWS_AS(auth::mint_token(claims, rsa_key(1024).private_pem), std::runtime_error);
    CHECK_THROWS_AS(auth::mint_token(claims, ec_key("P-384").private_pem), std::runtime_error);
    CHECK_THROWS_AS(auth::mint_token(claims, "not a key"), std::runtime_error);
}

TEST_CASE("auth token: signatures made by the openssl command line verify (RS256 and ES256)") {
    const fs::path dir = fresh_directory("caregate-auth-openssl");
    const auto v = verifier_for({rsa_a().public_pem, ec_a().public_pem});
    for (const key_pair* k : {&rsa_a(), &ec_a()}) {
        const bool rsa = k == &rsa_a();
        const std::string input = detail::base64url_encode(rsa ? R"({"alg":"RS256"})" : R"({"alg":"ES256"})") + "." +
                                  detail::base64url_encode(json(valid_claims()));
        write_file(dir / "key.pem", k->private_pem);
        write_file(dir / "input", input);
        const std::string command = "openssl dgst -sha256 -sign '" + (dir / "key.pem").string() + "' -out '" +
                                    (dir / "signature").string() + "' '" + (dir / "input").string() + "'";
        REQUIRE(std::system(command.c_str()) == 0);
        std::string signature = read_file(dir / "signature");
        if (!rsa) {
            // DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs) to JOSE's fixed-width r || s.
            REQUIRE(signature.size() > 8);
            std::size_t at = 2;
            std::string raw;
            for (int part = 0; part < 2; ++part) {
                REQUIRE(signature[at] == 0x02);
                std::size_t length = static_cast<unsigned char>(signature[at + 1]);
                std::string number = signature.substr(at + 2, length);
                at += 2 + length;
                while (number.size() > 32 && number.front() == '\0')
                    number.erase(0, 1);
                raw += std::string(32 - number.size(), '\0') + number;
            }
            signature = raw;
        }
        auto who = v.verify(input + "." + detail::base64url_encode(signature), now);
        CHECK(who.ok());
    }
    fs::remove_all(dir);
}

TEST_CASE("auth issuers: the issuers file, with paths relative to it") {
    const fs::path dir = fresh_directory("caregate-auth-issuers");
    fs::create_directories(dir / "keys");
    write_file(dir / "keys" / "dev.pub", rsa_a().public_pem);
    write_file(dir / "keys" / "old.pub", rsa_b().public_pem);
    write_file(dir / "login.jwks", R"({"keys":[)" + jwk(ec_a(), "2024-01") + "]}");
    write_file(dir / "issuers.json", R"([
        {"issuer": "caregate-test", "public_key_pem_file": ["keys/dev.pub", "keys/old.pub"]},
        {"issuer": "https://login.example", "jwks_file": "login.jwks", "comment": "citizen logins"}])");
    auto issuers = auth::load_issuers((dir / "issuers.json").string());
    REQUIRE(issuers.size() == 2);
    CHECK(issuers[0].pem_public_keys.size() == 2);
    CHECK(issuers[1].issuer == "https://login.example");
    const auth::token_verifier v(issuers, settings());
    CHECK(v.verify(rs256(valid_claims(), rsa_b()), now).ok());
    auto claims = valid_claims();
    claims["iss"] = "\"https://login.example\"";
    CHECK(v.verify(compact(R"({"alg":"ES256","kid":"2024-01"})", json(claims), ec_a()), now).ok());

    auto refused_with = [&dir](const std::string& config) {
        write_file(dir / "bad.json", config);
        try {
            auth::load_issuers((dir / "bad.json").string());
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        FAIL("the issuers file was accepted");
        return std::string();
    };
    CHECK(contains(refused_with("{}"), "JSON array"));
    CHECK(contains(refused_with("[]"), "names no issuer"));
    CHECK(contains(refused_with(R"([{"public_key_pem_file":"keys/dev.pub"}])"), "no 'issuer'"));
    CHECK(contains(refused_with(R"([{"issuer":"a","public_key_pem_file":"keys/missing.pub"}])"), "keys/missing.pub"));
    CHECK(contains(refused_with(R"([{"issuer":"a"}])"), "exactly one"));
    CHECK(contains(refused_with(R"([{"issuer":"a","public_key_pem_file":"keys/dev.pub","jwks_file":"login.jwks"}])"),
                   "exactly one"));
    CHECK(contains(refused_with(R"([{"issuer":"a","public_key_file":"keys/dev.pub"}])"), "unknown key 'public_key_file'"));
    CHECK(contains(refused_with(R"([{"issuer":"a","jwks_file":"keys/dev.pub"}])"), "JWKS"));
    CHECK(contains(refused_with(R"([{"issuer":"a","public_key_pem_file":"login.jwks"}])"), "PEM"));
    CHECK(contains(refused_with(R"([{"issuer":"a","jwks_file":"login.jwks"},{"issuer":"a","jwks_file":"login.jwks"}])"),
                   "listed twice"));
    CHECK_THROWS_AS(auth::load_issuers((dir / "absent.json").string()), std::invalid_argument);

    CHECK_THROWS_AS(auth::dev_issuer((dir / "nowhere").string()), std::invalid_argument);
    write_file(dir / "token-signing.pub", rsa_a().public_pem);
    const auth::trusted_issuer dev = auth::dev_issuer(dir.string());
    CHECK(dev.issuer == "caregate-dev");
    CHECK(dev.pem_public_keys == std::vector<std::string>{rsa_a().public_pem});
    fs::remove_all(dir);
}
