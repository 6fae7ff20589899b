// The JOSE pieces under token.cpp: base64url, public keys from PEM and JWKS, and RS256/ES256
// signatures through OpenSSL EVP. Private to gateway/auth; no claims, no policy, no caching here.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::auth::detail {

struct pkey_free {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

/// The two JWS algorithms caregate accepts (RFC 7518 3.3 and 3.4). Everything else, `none` and the
/// HMAC family above all, is refused: a public key must never be usable as a shared secret.
enum class algorithm { rs256, es256 };

/// Smallest RSA modulus accepted (NIST SP 800-131A), and the largest, so a key cannot make each
/// verification arbitrarily slow.
inline constexpr int min_rsa_bits = 2048;
inline constexpr int max_rsa_bits = 8192;

/// One trusted public key, with the JWKS `kid` it was published under (empty for PEM keys).
struct public_key {
    std::string kid;
    algorithm alg = algorithm::rs256;
    std::shared_ptr<EVP_PKEY> key;
};

/// RFC 7515 2: base64url without padding. decode() is strict: it refuses '=', characters outside
/// the URL-safe alphabet, impossible lengths and non-canonical trailing bits, so that one token has
/// exactly one spelling (the cache is keyed on the spelling). Returns false when `text` is not valid.
bool base64url_decode(std::string_view text, std::string& out);
std::string base64url_encode(std::string_view bytes);

/// A PEM SubjectPublicKeyInfo: RSA of at least 2048 bits, or EC on P-256. Throws std::invalid_argument.
public_key key_from_pem(const std::string& pem);

/// The signing keys of a JWKS document (RFC 7517): RSA (n, e) and EC P-256 (x, y). Keys for another
/// use (`use` other than sig), of another `alg`, or of another type (oct, OKP) are passed over; a
/// malformed RSA or EC key, or a document with no usable key, throws std::invalid_argument.
std::vector<public_key> keys_from_jwks(const std::string& jwks_json);

/// A PEM private key, RSA (>= 2048 bits) or EC P-256. Throws std::runtime_error.
pkey_ptr private_key_from_pem(const std::string& pem);

/// The algorithm a key signs with. Throws std::runtime_error for any other kind of key.
algorithm algorithm_of(EVP_PKEY* key);

/// Verifies a JWS signature over `signing_input` (RFC 7515 5.2). For ES256 the signature is the raw
/// r || s of RFC 7518 3.4 (64 bytes), converted to DER for OpenSSL.
bool verify_signature(algorithm alg, EVP_PKEY* key, std::string_view signing_input, std::string_view signature);

/// Signs `signing_input`; ES256 answers the raw r || s. Throws std::runtime_error.
std::string sign(algorithm alg, EVP_PKEY* key, std::string_view signing_input);

/// The JWKS document (RFC 7517) publishing the public half of `key`: one signing key, RSA (n, e) or
/// EC P-256 (x, y), without a kid. Throws std::runtime_error for any other kind of key.
std::string public_jwks_of(EVP_PKEY* key);

/// SHA-256 of `bytes`, 32 raw bytes.
std::string sha256(std::string_view bytes);

} // namespace caregate::auth::detail
