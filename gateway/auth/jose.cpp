// The JOSE pieces under token.cpp (see detail/jose.hpp): base64url, keys, RS256/ES256 with OpenSSL.
// Nothing here is hand-written cryptography: OpenSSL parses keys, hashes, signs and verifies; this
// file only moves bytes between the JOSE encodings and OpenSSL's.
#include "auth/detail/jose.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <rapidjson/document.h>

#include <optional>
#include <stdexcept>

namespace caregate::auth::detail {

namespace {

template <auto free_function>
struct openssl_free {
    template <class T>
    void operator()(T* p) const noexcept { free_function(p); }
};
using bio_ptr = std::unique_ptr<BIO, openssl_free<BIO_free>>;
using bn_ptr = std::unique_ptr<BIGNUM, openssl_free<BN_free>>;
using param_bld_ptr = std::unique_ptr<OSSL_PARAM_BLD, openssl_free<OSSL_PARAM_BLD_free>>;
using param_ptr = std::unique_ptr<OSSL_PARAM, openssl_free<OSSL_PARAM_free>>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, openssl_free<EVP_PKEY_CTX_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, openssl_free<EVP_MD_CTX_free>>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, openssl_free<ECDSA_SIG_free>>;

constexpr std::size_t p256_coordinate_bytes = 32;

// OpenSSL would otherwise prompt on the terminal for the passphrase of an encrypted PEM key.
int no_passphrase(char*, int, int, void*) { return 0; }

const unsigned char* bytes(std::string_view text) { return reinterpret_cast<const unsigned char*>(text.data()); }

bio_ptr memory_bio(const std::string& text) {
    bio_ptr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio)
        throw std::bad_alloc();
    return bio;
}

/// What a key may sign, or why it may not be used.
std::optional<algorithm> kind_of(EVP_PKEY* key, std::string& why) {
    if (EVP_PKEY_is_a(key, "RSA")) {
        const int bits = EVP_PKEY_get_bits(key);
        if (bits < min_rsa_bits || bits > max_rsa_bits) {
            why = "an RSA key of " + std::to_string(bits) + " bits (2048 to 8192 are accepted)";
            return std::nullopt;
        }
        return algorithm::rs256;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = {};
        std::size_t length = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) != 1 ||
            (std::string_view(group, length) != "prime256v1" && std::string_view(group, length) != "P-256")) {
            why = "an EC key on a curve other than P-256";
            return std::nullopt;
        }
        return algorithm::es256;
    }
    why = "a key that is neither RSA nor EC P-256";
    return std::nullopt;
}

/// An imported public key, checked: usable type and size, and (EC) a point on the curve.
public_key checked_public_key(pkey_ptr key, std::string kid, const std::string& source) {
    std::string why;
    auto alg = kind_of(key.get(), why);
    if (!alg)
        throw std::invalid_argument(source + " is " + why);
    if (*alg == algorithm::es256) {
        pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
        if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1) {
            ERR_clear_error();
            throw std::invalid_argument(source + " is not a valid P-256 public key");
        }
    }
    return public_key{std::move(kid), *alg, std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free)};
}

pkey_ptr key_from_params(const char* type, OSSL_PARAM_BLD* builder) {
    param_ptr params(OSSL_PARAM_BLD_to_param(builder));
    pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        ERR_clear_error();
        return nullptr;
    }
    return pkey_ptr(key);
}

std::string member_text(const rapidjson::Value& object, const char* name) {
    auto found = object.FindMember(name);
    if (found == object.MemberEnd() || !found->value.IsString())
        return {};
    return std::string(found->value.GetString(), found->value.GetStringLength());
}

std::string decoded_member(const rapidjson::Value& jwk, const char* name, const std::string& source) {
    std::string value;
    if (!base64url_decode(member_text(jwk, name), value) || value.empty())
        throw std::invalid_argument(source + " has no valid base64url '" + name + "'");
    return value;
}

pkey_ptr rsa_from_jwk(const rapidjson::Value& jwk, const std::string& source) {
    const std::string n = decoded_member(jwk, "n", source);
    const std::string e = decoded_member(jwk, "e", source);
    bn_ptr modulus(BN_bin2bn(bytes(n), static_cast<int>(n.size()), nullptr));
    bn_ptr exponent(BN_bin2bn(bytes(e), static_cast<int>(e.size()), nullptr));
    param_bld_ptr builder(OSSL_PARAM_BLD_new());
    if (!modulus || !exponent || !builder ||
        OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1)
        throw std::bad_alloc();
    return key_from_params("RSA", builder.get());
}

pkey_ptr ec_from_jwk(const rapidjson::Value& jwk, const std::string& source) {
    if (member_text(jwk, "crv") != "P-256")
        throw std::invalid_argument(source + " is an EC key on a curve other than P-256");
    const std::string x = decoded_member(jwk, "x", source);
    const std::string y = decoded_member(jwk, "y", source);
    if (x.size() != p256_coordinate_bytes || y.size() != p256_coordinate_bytes)
        throw std::invalid_argument(source + " has x or y of the wrong length for P-256");
    const std::string point = "\x04" + x + y; // SEC 1 2.3.3, uncompressed
    param_bld_ptr builder(OSSL_PARAM_BLD_new());
    if (!builder ||
        OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
        throw std::bad_alloc();
    return key_from_params("EC", builder.get());
}

bool is_base64url_character(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

} // namespace

bool base64url_decode(std::string_view text, std::string& out) {
    out.clear();
    if (text.size() % 4 == 1)
        return false;
    std::string standard;
    standard.reserve(text.size() + 3);
    for (char c : text) {
        if (!is_base64url_character(c))
            return false;
        standard += c == '-' ? '+' : c == '_' ? '/' : c;
    }
    if (standard.empty())
        return true;
    const std::size_t padding = (4 - standard.size() % 4) % 4;
    standard.append(padding, '=');
    out.resize(standard.size() / 4 * 3);
    const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(standard),
                                        static_cast<int>(standard.size()));
    if (decoded < 0 || static_cast<std::size_t>(decoded) < padding) {
        out.clear();
        return false;
    }
    out.resize(static_cast<std::size_t>(decoded) - padding);
    // Unused low bits of the last character must be zero (RFC 4648 3.5): one spelling per value.
    if (base64url_encode(out) != text) {
        out.clear();
        return false;
    }
    return true;
}

std::string base64url_encode(std::string_view data) {
    std::string text(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()), bytes(data),
                                        static_cast<int>(data.size()));
    text.resize(static_cast<std::size_t>(written));
    while (!text.empty() && text.back() == '=')
        text.pop_back();
    for (char& c : text)
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    return text;
}

public_key key_from_pem(const std::string& pem) {
    auto bio = memory_bio(pem);
    pkey_ptr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
    if (!key) {
        ERR_clear_error();
        throw std::invalid_argument("a token-signing public key is not a PEM public key (BEGIN PUBLIC KEY)");
    }
    return checked_public_key(std::move(key), {}, "a token-signing public key");
}

std::vector<public_key> keys_from_jwks(const std::string& jwks_json) {
    rapidjson::Document doc;
    doc.Parse(jwks_json.c_str(), jwks_json.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("keys") || !doc["keys"].IsArray())
        throw std::invalid_argument("a JWKS document is not a JSON object with a 'keys' array");
    std::vector<public_key> keys;
    std::size_t index = 0;
    for (const auto& jwk : doc["keys"].GetArray()) {
        const std::string source = "JWKS key " + std::to_string(index++);
        if (!jwk.IsObject())
            throw std::invalid_argument(source + " is not a JSON object");
        const std::string use = member_text(jwk, "use");
        const std::string alg = member_text(jwk, "alg");
        const std::string kty = member_text(jwk, "kty");
        if (!use.empty() && use != "sig")
            continue; // an encryption key, published next to the signing keys
        pkey_ptr key;
        if (kty == "RSA" && (alg.empty() || alg == "RS256"))
            key = rsa_from_jwk(jwk, source);
        else if (kty == "EC" && (alg.empty() || alg == "ES256"))
            key = ec_from_jwk(jwk, source);
        else
            continue; // a type or algorithm caregate does not accept: never used, so harmless
        if (!key)
            throw std::invalid_argument(source + " is not a valid " + kty + " public key");
        keys.push_back(checked_public_key(std::move(key), member_text(jwk, "kid"), source));
    }
    if (keys.empty())
        throw std::invalid_argument("a JWKS document has no RS256 or ES256 signing key");
    return keys;
}

pkey_ptr private_key_from_pem(const std::string& pem) {
    auto bio = memory_bio(pem);
    pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    if (!key) {
        ERR_clear_error();
        throw std::runtime_error("the token-signing key is not an unencrypted PEM private key");
    }
    algorithm_of(key.get());
    return key;
}

algorithm algorithm_of(EVP_PKEY* key) {
    std::string why;
    auto alg = kind_of(key, why);
    if (!alg)
        throw std::runtime_error("the token-signing key is " + why);
    return *alg;
}

bool verify_signature(algorithm alg, EVP_PKEY* key, std::string_view signing_input, std::string_view signature) {
    std::string der;
    if (alg == algorithm::es256) {
        if (signature.size() != 2 * p256_coordinate_bytes)
            return false;
        ecdsa_sig_ptr sig(ECDSA_SIG_new());
        bn_ptr r(BN_bin2bn(bytes(signature), p256_coordinate_bytes, nullptr));
        bn_ptr s(BN_bin2bn(bytes(signature) + p256_coordinate_bytes, p256_coordinate_bytes, nullptr));
        if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
            throw std::bad_alloc();
        r.release(); // owned by sig now
        s.release();
        const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
        if (length <= 0)
            return false;
        der.resize(static_cast<std::size_t>(length));
        auto* out = reinterpret_cast<unsigned char*>(der.data());
        i2d_ECDSA_SIG(sig.get(), &out);
        signature = der;
    }
    md_ctx_ptr ctx(EVP_MD_CTX_new());
    const bool verified = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
                          EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(signing_input),
                                           signing_input.size()) == 1;
    if (!verified)
        ERR_clear_error();
    return verified;
}

std::string sign(algorithm alg, EVP_PKEY* key, std::string_view signing_input) {
    md_ctx_ptr ctx(EVP_MD_CTX_new());
    std::size_t length = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &length, bytes(signing_input), signing_input.size()) != 1)
        throw std::runtime_error("cannot sign the token with this key");
    std::string signature(length, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, bytes(signing_input),
                       signing_input.size()) != 1)
        throw std::runtime_error("cannot sign the token with this key");
    signature.resize(length);
    if (alg == algorithm::rs256)
        return signature;
    // ES256 (RFC 7518 3.4): OpenSSL gives DER, JOSE wants r and s as two 32-byte big-endian numbers.
    const auto* in = bytes(signature);
    ecdsa_sig_ptr sig(d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(signature.size())));
    if (!sig)
        throw std::runtime_error("cannot read the ECDSA signature OpenSSL made");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    std::string raw(2 * p256_coordinate_bytes, '\0');
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    if (BN_bn2binpad(r, out, p256_coordinate_bytes) < 0 ||
        BN_bn2binpad(s, out + p256_coordinate_bytes, p256_coordinate_bytes) < 0)
        throw std::runtime_error("cannot encode the ECDSA signature");
    return raw;
}

std::string sha256(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string public_jwks_of(EVP_PKEY* key) {
    auto number = [key](const char* name, int width) {
        BIGNUM* value = nullptr;
        if (EVP_PKEY_get_bn_param(key, name, &value) != 1)
            throw std::runtime_error("the signing key's public parameters cannot be read");
        const int size = width > 0 ? width : BN_num_bytes(value);
        std::string bytes(static_cast<std::size_t>(size), '\0');
        const int written = BN_bn2binpad(value, reinterpret_cast<unsigned char*>(bytes.data()), size);
        BN_free(value);
        if (written != size)
            throw std::runtime_error("the signing key's public parameters do not fit");
        return base64url_encode(bytes);
    };
    if (algorithm_of(key) == algorithm::rs256)
        return R"({"keys":[{"kty":"RSA","use":"sig","alg":"RS256","n":")" + number(OSSL_PKEY_PARAM_RSA_N, 0) +
               R"(","e":")" + number(OSSL_PKEY_PARAM_RSA_E, 0) + R"("}]})";
    return R"({"keys":[{"kty":"EC","use":"sig","alg":"ES256","crv":"P-256","x":")" +
           number(OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" + number(OSSL_PKEY_PARAM_EC_PUB_Y, 32) + R"("}]})";
}

} // namespace caregate::auth::detail
