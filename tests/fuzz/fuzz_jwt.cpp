// Fuzzes the bearer token verifier (gateway/auth/token.cpp, auth::token_verifier::verify) that every
// request's Authorization header reaches. One ES256 key is made at start-up and trusted for issuer
// "fuzz-issuer". The first byte chooses what the rest is:
//   even: a token as a client sends it (header.payload.signature), to fuzz the decoding that comes
//         before the signature check;
//   odd:  a JWS header and a payload (JSON), split at the first newline, which the fuzzer signs with
//         the trusted key, to fuzz the claims that only a valid signature reaches.
// Both token kinds (provider, citizen) are verified.
#include "auth/detail/jose.hpp"
#include "auth/token.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace auth = caregate::auth;

namespace {

constexpr std::int64_t now = 1795000000; // 2026-11-19

struct fixture {
    auth::detail::pkey_ptr key;
    std::unique_ptr<auth::token_verifier> provider, citizen;

    fixture() : key(EVP_EC_gen("P-256")) {
        if (!key)
            __builtin_trap();
        BIO* bio = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(bio, key.get());
        char* pem = nullptr;
        long length = BIO_get_mem_data(bio, &pem);
        std::string public_pem(pem, static_cast<std::size_t>(length));
        BIO_free(bio);

        auth::verifier_settings settings;
        settings.audience = "https://fuzz.example/fhir";
        settings.cache_entries = 16;
        provider = std::make_unique<auth::token_verifier>(
            std::vector<auth::trusted_issuer>{{"fuzz-issuer", {public_pem}, {}}}, settings);
        settings.kind = auth::token_kind::citizen;
        citizen = std::make_unique<auth::token_verifier>(
            std::vector<auth::trusted_issuer>{{"fuzz-issuer", {public_pem}, {}}}, settings);
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fixture f;
    if (size == 0)
        return 0;
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::string token;
    if (data[0] % 2 == 0) {
        token = rest;
    } else {
        auto newline = rest.find('\n');
        if (newline == std::string_view::npos)
            return 0;
        std::string signing_input = auth::detail::base64url_encode(rest.substr(0, newline)) + "." +
                                    auth::detail::base64url_encode(rest.substr(newline + 1));
        token = signing_input + "." +
                auth::detail::base64url_encode(auth::detail::sign(auth::detail::algorithm::es256, f.key.get(), signing_input));
    }
    f.provider->verify(token, now);
    f.citizen->verify(token, now);
    return 0;
}
