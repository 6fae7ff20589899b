// Bearer token verification and development token minting; see token.hpp. The order of checks is the
// point of this file: the shape and the algorithm first (cheap, and `none`/HMAC never reach a key),
// then the signature with the keys of the issuer the token names, and only then any claim.
//
// Design notes (the two kinds of token):
//   1. A verifier takes one kind. A provider's token names an organisation and a role and never an
//      NHS number; a citizen's (shaped like NHS login's) names an NHS number and a proofing level and
//      never an organisation or a role. Either kind at the other's verifier is refused by what it
//      carries, before any claim of its own kind is required, so the diagnostic says which endpoint
//      it is for.
//   2. A refusal names the claim, never its value: an NHS number is patient data.
//   3. A citizen's purpose_of_use and break_glass_reason are not read (break-glass is a professional's).
//
// Design notes (the cache):
//   1. Keyed by SHA-256 of the token's exact text (base64url decoding is strict, so one token has one
//      text), which bounds each entry's size whatever the token's length.
//   2. Holds only tokens that verified completely; a failed token is never cached, so a flood of bad
//      tokens cannot push good ones out, and a refusal that depends on the time (nbf) is not frozen.
//   3. An entry is served only while now lies in [nbf - skew, exp + skew], checked on every hit.
//   4. At most settings.cache_entries entries: a full cache drops the expired entries, then the
//      oldest (by insertion) down to 15/16 of capacity, so eviction is amortised over many inserts.
#include "auth/token.hpp"
#include "fhir_model/nhs_number.hpp"
#include "fhir_model/ods_code.hpp"

#include "auth/detail/jose.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <unordered_map>

namespace caregate::auth {

namespace {

using fhir::category;
using fhir::error;

/// Longest text of a claim (user ids, ODS codes, roles, purposes, each scope) and of the
/// break-glass reason, which is free text for the audit trail.
constexpr std::size_t max_claim_chars = 256;
constexpr std::size_t max_reason_chars = 1000;
constexpr std::size_t max_scopes = 100;
/// NumericDate bounds (RFC 7519 2): 1970 to the end of 9999, so exp + skew cannot overflow.
constexpr std::int64_t max_numeric_date = 253402300799;

error refused(std::string diagnostics) {
    return error::make(category::unauthorised, "login", std::move(diagnostics));
}

/// Parses a JSON object, refusing invalid UTF-8 and repeated member names (two `sub`s would leave
/// it to the parser which one counts).
bool parse_object(const std::string& text, rapidjson::Document& doc) {
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.c_str(), text.size());
    if (doc.HasParseError() || !doc.IsObject())
        return false;
    std::set<std::string_view> names;
    for (const auto& member : doc.GetObject())
        if (!names.emplace(member.name.GetString(), member.name.GetStringLength()).second)
            return false;
    return true;
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
    auto found = object.FindMember(name);
    return found == object.MemberEnd() ? nullptr : &found->value;
}

bool is_printable(std::string_view text) {
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f)
            return false;
    return true;
}

/// A string claim: printable, 1 to `max_chars` long. nullopt (with `problem` set) when it is absent
/// or not valid; `problem` stays empty for an absent optional claim.
std::optional<std::string> text_claim(const rapidjson::Value& payload, const char* name, std::size_t max_chars,
                                      bool required, std::string& problem) {
    const rapidjson::Value* value = member(payload, name);
    if (!value) {
        if (required)
            problem = std::string("the token has no ") + name + " claim";
        return std::nullopt;
    }
    std::string_view text = value->IsString() ? std::string_view(value->GetString(), value->GetStringLength())
                                              : std::string_view();
    if (text.empty() || text.size() > max_chars || !is_printable(text)) {
        problem = std::string("the token's ") + name + " claim is not valid";
        return std::nullopt;
    }
    return std::string(text);
}

/// A NumericDate claim (RFC 7519 2), whole seconds; fractions are dropped.
std::optional<std::int64_t> date_claim(const rapidjson::Value& payload, const char* name, bool required,
                                       std::string& problem) {
    const rapidjson::Value* value = member(payload, name);
    if (!value) {
        if (required)
            problem = std::string("the token has no ") + name + " claim";
        return std::nullopt;
    }
    std::optional<std::int64_t> seconds;
    if (value->IsInt64())
        seconds = value->GetInt64();
    else if (value->IsDouble() && std::isfinite(value->GetDouble()) && value->GetDouble() >= 0 &&
             value->GetDouble() <= static_cast<double>(max_numeric_date))
        seconds = static_cast<std::int64_t>(std::floor(value->GetDouble()));
    if (!seconds || *seconds < 0 || *seconds > max_numeric_date) {
        problem = std::string("the token's ") + name + " claim is not a NumericDate";
        return std::nullopt;
    }
    return seconds;
}

/// "R8000", or the last part of an NHS CIS2 triple "S8000:G8000:R8000", or a code such as "system".
std::optional<std::string> job_role(std::string_view role) {
    if (auto colon = role.rfind(':'); colon != std::string_view::npos)
        role = role.substr(colon + 1);
    if (role.empty())
        return std::nullopt;
    for (char c : role)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return std::nullopt;
    return std::string(role);
}

/// `scope`: a space-separated string (RFC 8693 4.2), or an array of strings as some issuers send.
/// `claimed` says whether the claim is there at all: present but empty is a token that grants nothing
/// (caller::scope_claimed), not one without scopes.
bool read_scopes(const rapidjson::Value& payload, std::vector<std::string>& scopes, bool& claimed) {
    const rapidjson::Value* value = member(payload, "scope");
    claimed = value != nullptr;
    if (!value)
        return true;
    auto add = [&scopes](std::string_view text) {
        for (std::size_t start = 0; start < text.size();) {
            const std::size_t end = std::min(text.find(' ', start), text.size());
            if (end > start) {
                std::string_view scope = text.substr(start, end - start);
                if (scope.size() > max_claim_chars || !is_printable(scope) || scopes.size() >= max_scopes)
                    return false;
                scopes.emplace_back(scope);
            }
            start = end + 1;
        }
        return true;
    };
    if (value->IsString())
        return add(std::string_view(value->GetString(), value->GetStringLength()));
    if (!value->IsArray())
        return false;
    for (const auto& item : value->GetArray())
        if (!item.IsString() || !add(std::string_view(item.GetString(), item.GetStringLength())))
            return false;
    return true;
}

bool audience_includes(const rapidjson::Value& aud, const std::string& audience) {
    auto equals = [&audience](const rapidjson::Value& v) {
        return v.IsString() && std::string_view(v.GetString(), v.GetStringLength()) == audience;
    };
    if (aud.IsString())
        return equals(aud);
    if (aud.IsArray())
        for (const auto& item : aud.GetArray())
            if (equals(item))
                return true;
    return false;
}

/// NHS login's identity proofing levels (https://nhsconnect.github.io/nhslogin/id-token/): P0 an
/// unverified account, P5 a verified identity with low confidence, P9 a verified identity.
bool is_proofing_level(std::string_view level) { return level == "P0" || level == "P5" || level == "P9"; }

/// The claims of a citizen's token after `sub` (design notes 1 to 3): the problem, or empty when
/// `who` is complete.
std::string read_citizen_claims(const rapidjson::Value& payload, caller& who) {
    if (member(payload, "ods_code") || member(payload, "role"))
        return "a provider's token is for the provider endpoint";
    std::string problem;
    auto nhs = text_claim(payload, "nhs_number", max_claim_chars, true, problem);
    if (!nhs)
        return problem;
    if (!fhir::is_valid_nhs_number(*nhs))
        return "the token's nhs_number claim is not a valid NHS number";
    auto level = text_claim(payload, "identity_proofing_level", max_claim_chars, true, problem);
    if (!level)
        return problem;
    if (!is_proofing_level(*level))
        return "the token's identity_proofing_level claim is not P0, P5 or P9";
    auto vot = text_claim(payload, "vot", max_claim_chars, false, problem);
    if (!problem.empty())
        return problem;
    if (!read_scopes(payload, who.scopes, who.scope_claimed))
        return "the token's scope claim is not valid";
    who.nhs_number = std::move(*nhs);
    who.proofing_level = std::move(*level);
    who.vot = vot.value_or("");
    return {};
}

struct cache_entry {
    std::shared_ptr<const caller> who;
    std::int64_t not_before = 0; ///< nbf, or 0 when the token had none
    std::list<std::string>::iterator position;
};

} // namespace

struct token_verifier::impl {
    struct issuer_keys {
        std::string issuer;
        std::vector<detail::public_key> keys;
    };

    std::vector<issuer_keys> issuers;
    verifier_settings settings;

    std::shared_mutex cache_mutex;
    std::unordered_map<std::string, cache_entry> cache; ///< by SHA-256 of the token
    std::list<std::string> insertion_order;            ///< cache keys, oldest first
    std::atomic<std::uint64_t> verifications{0};

    const issuer_keys* find_issuer(std::string_view iss) const {
        for (const auto& i : issuers)
            if (i.issuer == iss)
                return &i;
        return nullptr;
    }

    fhir::result<std::shared_ptr<const caller>> verify_uncached(std::string_view token, std::int64_t now,
                                                                std::int64_t& not_before);
    std::shared_ptr<const caller> remember(const std::string& key, std::shared_ptr<const caller> who,
                                           std::int64_t not_before, std::int64_t now);
};

fhir::result<std::shared_ptr<const caller>> token_verifier::impl::verify_uncached(std::string_view token,
                                                                                  std::int64_t now,
                                                                                  std::int64_t& not_before) {
    // RFC 7515 7.1: BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(signature).
    const std::size_t first_dot = token.find('.');
    const std::size_t second_dot = first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos)
        return refused("the token is not a signed JWT (header.payload.signature)");
    const std::string_view signing_input = token.substr(0, second_dot);

    std::string header_text, payload_text, signature;
    rapidjson::Document header, payload;
    if (!detail::base64url_decode(token.substr(0, first_dot), header_text) || !parse_object(header_text, header))
        return refused("the token's header is not base64url-encoded JSON");
    const rapidjson::Value* alg = member(header, "alg");
    const std::string_view alg_name =
        alg && alg->IsString() ? std::string_view(alg->GetString(), alg->GetStringLength()) : std::string_view();
    if (alg_name != "RS256" && alg_name != "ES256")
        return refused("the token's algorithm is not accepted (RS256 or ES256 only)");
    const detail::algorithm algorithm = alg_name == "RS256" ? detail::algorithm::rs256 : detail::algorithm::es256;
    // RFC 7515 4.1.11: extensions the recipient does not understand make the token invalid.
    if (member(header, "crit"))
        return refused("the token's header names critical extensions this server does not understand");
    const rapidjson::Value* kid = member(header, "kid");
    if (kid && !kid->IsString())
        return refused("the token's kid is not a string");

    if (!detail::base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1), payload_text) ||
        !parse_object(payload_text, payload))
        return refused("the token's payload is not base64url-encoded JSON");
    if (!detail::base64url_decode(token.substr(second_dot + 1), signature) || signature.empty())
        return refused("the token's signature is not base64url");

    // The issuer is read before the signature is checked only to choose the keys that check it.
    const rapidjson::Value* iss = member(payload, "iss");
    if (!iss || !iss->IsString())
        return refused("the token has no iss claim");
    const issuer_keys* trusted = find_issuer(std::string_view(iss->GetString(), iss->GetStringLength()));
    if (!trusted)
        return refused("the token's issuer is not trusted");

    // With a kid, only the keys published under it; keys without a kid (PEM) are tried too.
    const std::string_view wanted_kid =
        kid ? std::string_view(kid->GetString(), kid->GetStringLength()) : std::string_view();
    std::vector<EVP_PKEY*> candidates;
    for (const auto& key : trusted->keys)
        if (key.alg == algorithm && (!kid || key.kid.empty() || key.kid == wanted_kid))
            candidates.push_back(key.key.get());
    if (candidates.empty())
        return refused("the token's issuer has no key for its kid and algorithm");
    verifications.fetch_add(1, std::memory_order_relaxed);
    if (std::none_of(candidates.begin(), candidates.end(), [&](EVP_PKEY* key) {
            return detail::verify_signature(algorithm, key, signing_input, signature);
        }))
        return refused("the token's signature does not verify");

    // From here on the claims are the issuer's.
    const rapidjson::Value* aud = member(payload, "aud");
    if (!aud)
        return refused("the token has no aud claim");
    if (!audience_includes(*aud, settings.audience))
        return refused("the token is not for this audience");

    std::string problem;
    const std::int64_t skew = settings.clock_skew.count();
    const auto exp = date_claim(payload, "exp", true, problem);
    if (!exp)
        return refused(problem);
    if (now > *exp + skew)
        return refused("the token has expired");
    const auto nbf = date_claim(payload, "nbf", false, problem);
    if (!problem.empty())
        return refused(problem);
    if (nbf && now < *nbf - skew)
        return refused("the token is not valid yet (nbf)");
    if (!date_claim(payload, "iat", false, problem) && !problem.empty())
        return refused(problem);
    not_before = nbf.value_or(0);

    auto who = std::make_shared<caller>();
    who->issuer = trusted->issuer;
    who->expires = *exp;
    auto sub = text_claim(payload, "sub", max_claim_chars, true, problem);
    if (!sub)
        return refused(problem);
    who->user = std::move(*sub);
    if (settings.kind == token_kind::citizen) {
        problem = read_citizen_claims(payload, *who);
        if (!problem.empty())
            return refused(problem);
        return std::shared_ptr<const caller>(std::move(who));
    }
    if (member(payload, "nhs_number"))
        return refused("a citizen's token is for the patient-facing endpoint");
    auto ods = text_claim(payload, "ods_code", max_claim_chars, true, problem);
    if (!ods)
        return refused(problem);
    if (!fhir::is_ods_code(*ods))
        return refused("the token's ods_code claim is not an ODS code");
    who->organisation = std::move(*ods);
    auto role_text = text_claim(payload, "role", max_claim_chars, true, problem);
    if (!role_text)
        return refused(problem);
    auto role = job_role(*role_text);
    if (!role)
        return refused("the token's role claim is not a job role code");
    who->role = std::move(*role);
    if (!read_scopes(payload, who->scopes, who->scope_claimed))
        return refused("the token's scope claim is not valid");
    auto purpose = text_claim(payload, "purpose_of_use", max_claim_chars, false, problem);
    if (!problem.empty())
        return refused(problem);
    who->purpose = purpose.value_or("TREAT");
    auto reason = text_claim(payload, "break_glass_reason", max_reason_chars, false, problem);
    if (!problem.empty())
        return refused(problem);
    who->reason = reason.value_or("");
    return std::shared_ptr<const caller>(std::move(who));
}

std::shared_ptr<const caller> token_verifier::impl::remember(const std::string& key, std::shared_ptr<const caller> who,
                                                             std::int64_t not_before, std::int64_t now) {
    const std::size_t capacity = settings.cache_entries;
    if (capacity == 0)
        return who;
    std::unique_lock lock(cache_mutex);
    // Another thread may have verified the same token meanwhile: everyone gets the one caller.
    if (auto found = cache.find(key); found != cache.end())
        return found->second.who;
    if (cache.size() >= capacity) {
        for (auto it = insertion_order.begin(); it != insertion_order.end();) {
            if (now <= cache.at(*it).who->expires + settings.clock_skew.count()) {
                ++it;
                continue;
            }
            cache.erase(*it);
            it = insertion_order.erase(it);
        }
        const std::size_t keep = capacity - std::max<std::size_t>(1, capacity / 16);
        while (cache.size() > keep) {
            cache.erase(insertion_order.front());
            insertion_order.pop_front();
        }
    }
    insertion_order.push_back(key);
    cache.emplace(key, cache_entry{who, not_before, std::prev(insertion_order.end())});
    return who;
}

token_verifier::token_verifier(std::vector<trusted_issuer> issuers, verifier_settings settings)
    : impl_(std::make_unique<impl>()) {
    impl_->settings = std::move(settings);
    if (impl_->settings.audience.empty())
        throw std::invalid_argument("the token verifier needs the audience tokens must name");
    for (auto& trusted : issuers) {
        if (trusted.issuer.empty())
            throw std::invalid_argument("a trusted issuer has no name (iss)");
        if (impl_->find_issuer(trusted.issuer))
            throw std::invalid_argument("the issuer " + trusted.issuer + " is configured twice");
        if (trusted.pem_public_keys.empty() == trusted.jwks_json.empty())
            throw std::invalid_argument("the issuer " + trusted.issuer +
                                        " needs PEM public keys or a JWKS document, exactly one of the two");
        impl::issuer_keys entry{trusted.issuer, {}};
        try {
            if (!trusted.jwks_json.empty())
                entry.keys = detail::keys_from_jwks(trusted.jwks_json);
            for (const auto& pem : trusted.pem_public_keys)
                entry.keys.push_back(detail::key_from_pem(pem));
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("the issuer " + trusted.issuer + ": " + e.what());
        }
        impl_->issuers.push_back(std::move(entry));
    }
}

token_verifier::~token_verifier() = default;

fhir::result<std::shared_ptr<const caller>> token_verifier::verify(std::string_view token,
                                                                   std::int64_t now_seconds) const {
    if (token.empty())
        return refused("the bearer token is empty");
    if (token.size() > impl_->settings.max_token_bytes)
        return refused("the token is longer than this server accepts");
    const std::string key = detail::sha256(token);
    {
        std::shared_lock lock(impl_->cache_mutex);
        if (auto found = impl_->cache.find(key); found != impl_->cache.end()) {
            const cache_entry& entry = found->second;
            if (now_seconds > entry.who->expires + impl_->settings.clock_skew.count())
                return refused("the token has expired");
            if (now_seconds < entry.not_before - impl_->settings.clock_skew.count())
                return refused("the token is not valid yet (nbf)");
            return entry.who;
        }
    }
    std::int64_t not_before = 0;
    auto verified = impl_->verify_uncached(token, now_seconds, not_before);
    if (!verified)
        return verified;
    return impl_->remember(key, std::move(verified.value()), not_before, now_seconds);
}

std::uint64_t token_verifier::verifications() const noexcept {
    return impl_->verifications.load(std::memory_order_relaxed);
}

std::string development_citizen_subject(const std::string& nhs_number) {
    const std::string input = "caregate-dev citizen sub:" + nhs_number;
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 || size < 16)
        throw std::runtime_error("SHA-256 failed");
    digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x80); // version 8
    digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80); // variant 10
    constexpr const char* hex = "0123456789abcdef";
    std::string uuid;
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            uuid += '-';
        uuid += hex[digest[i] >> 4];
        uuid += hex[digest[i] & 0x0f];
    }
    return uuid;
}

std::string mint_token(const token_claims& claims, const std::string& private_key_pem) {
    const detail::pkey_ptr key = detail::private_key_from_pem(private_key_pem);
    const detail::algorithm alg = detail::algorithm_of(key.get());
    const std::string header =
        alg == detail::algorithm::rs256 ? R"({"alg":"RS256","typ":"JWT"})" : R"({"alg":"ES256","typ":"JWT"})";

    rapidjson::StringBuffer payload;
    rapidjson::Writer<rapidjson::StringBuffer> out(payload);
    auto text = [&out](const char* name, const std::string& value) {
        if (value.empty())
            return;
        out.Key(name);
        out.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
    };
    out.StartObject();
    text("iss", claims.issuer);
    text("aud", claims.audience);
    text("sub", claims.user);
    text("ods_code", claims.organisation);
    text("role", claims.role);
    text("nhs_number", claims.nhs_number);
    text("identity_proofing_level", claims.proofing_level);
    text("vot", claims.vot);
    text("fhirUser", claims.fhir_user);
    text("jti", claims.token_id);
    std::string scope;
    for (const auto& s : claims.scopes)
        scope += (scope.empty() ? "" : " ") + s;
    text("scope", scope);
    text("purpose_of_use", claims.purpose);
    text("break_glass_reason", claims.reason);
    out.Key("iat");
    out.Int64(claims.issued_at);
    out.Key("nbf");
    out.Int64(claims.not_before);
    out.Key("exp");
    out.Int64(claims.expires);
    out.EndObject();

    const std::string signing_input = detail::base64url_encode(header) + "." +
                                      detail::base64url_encode(std::string_view(payload.GetString(), payload.GetSize()));
    return signing_input + "." + detail::base64url_encode(detail::sign(alg, key.get(), signing_input));
}

} // namespace caregate::auth
