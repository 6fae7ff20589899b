// Bearer tokens: verifying the JWT a provider system sends for the person (or system) acting, and
// minting development tokens. Signatures (RS256, ES256) are checked with OpenSSL EVP against the
// configured trusted issuers; each distinct token is verified once and cached until it expires.
#pragma once

#include "fhir_model/error.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::auth {

/// Who is acting, from a verified token's claims.
struct caller {
    std::string issuer;
    std::string user;         ///< `sub`: the SDS user id, or a system's id
    std::string organisation; ///< `ods_code`: the ODS code of the organisation acting
    std::string role;         ///< `role`: national RBAC job role code, e.g. R8000 (from "S8000:G8000:R8000" too)
    std::vector<std::string> scopes; ///< `scope`, split on spaces: SMART scopes such as user/*.rs
    /// Whether the token carries a `scope` claim at all. Without one a provider's access is the
    /// policy's alone; with one, `scopes` is all it grants, so an empty claim ("", " ", []) grants
    /// nothing rather than everything.
    bool scope_claimed = false;
    std::string purpose;      ///< `purpose_of_use`: HL7 PurposeOfUse code, TREAT when absent
    std::string reason;       ///< `break_glass_reason`: free text given with ETREAT
    std::int64_t expires = 0; ///< `exp`, seconds since the epoch

    // NHS login's claims (https://nhsconnect.github.io/nhslogin/id-token/), in tokens for the
    // patient-facing endpoint only; empty in a provider's token.
    std::string nhs_number;     ///< `nhs_number`: the citizen the token identifies (valid, checked)
    std::string proofing_level; ///< `identity_proofing_level`: P0, P5 or P9
    std::string vot;            ///< `vot`: vector of trust, e.g. "P9.Cp.Cd" (kept for audit; may be empty)
    bool is_citizen() const noexcept { return !nhs_number.empty(); }
};

/// Which tokens a verifier takes: a provider's (organisation and role required, no NHS number) or a
/// citizen's (NHS number and proofing level required, no organisation or role). A token of the other
/// kind is refused (401), so that neither listener accepts the other's callers.
enum class token_kind { provider, citizen };

/// An issuer whose tokens are trusted, with its public keys.
struct trusted_issuer {
    std::string issuer; ///< the `iss` value
    /// PEM public keys (RSA or EC P-256) or a JWKS document: exactly one of the two.
    std::vector<std::string> pem_public_keys;
    std::string jwks_json;
};

struct verifier_settings {
    std::string audience; ///< the `aud` every token must carry (the provider base URL)
    /// Clock skew allowed on exp and nbf: clocks of connected systems drift a little.
    std::chrono::seconds clock_skew{60};
    /// Tokens cached at most; a full cache drops expired entries, then the oldest.
    std::size_t cache_entries = 100000;
    /// Longest token accepted (a JWT of a few claims is well under 4 KiB).
    std::size_t max_token_bytes = 8192;
    token_kind kind = token_kind::provider;
};

class token_verifier {
public:
    /// Throws std::invalid_argument when an issuer's keys cannot be read.
    token_verifier(std::vector<trusted_issuer> issuers, verifier_settings settings);
    ~token_verifier();

    /// Verifies `Authorization: Bearer <jwt>`'s token (without the "Bearer " prefix). Errors:
    /// unauthorised, with a diagnostic saying what was wrong (never echoing the token).
    /// Thread-safe; a token already verified and not yet expired is answered from the cache.
    fhir::result<std::shared_ptr<const caller>> verify(std::string_view token, std::int64_t now_seconds) const;

    /// How many tokens have had their signature checked (cache misses that got that far): for tests
    /// and metrics, to see the cache at work.
    std::uint64_t verifications() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// Claims of a development token.
struct token_claims {
    std::string issuer = "caregate-dev";
    std::string audience;
    std::string user;
    std::string organisation;
    std::string role;
    std::vector<std::string> scopes;
    std::string purpose;
    std::string reason;
    std::string nhs_number;     ///< a citizen's token: `nhs_number`
    std::string proofing_level; ///< `identity_proofing_level`
    std::string vot;            ///< `vot`
    std::string fhir_user;      ///< `fhirUser` (an id_token's: the FHIR resource of the user)
    std::string token_id;       ///< `jti`: tells apart two tokens minted in the same second
    std::int64_t issued_at = 0;
    std::int64_t not_before = 0;
    std::int64_t expires = 0;
};

/// A stable pseudonymous `sub` for a citizen of a development token, as NHS login gives one that is
/// not the NHS number: a UUID (RFC 9562 version 8, made from a hash) from SHA-256 of the number with a
/// fixed prefix. It does not hide the number from someone who hashes every NHS number.
std::string development_citizen_subject(const std::string& nhs_number);

/// Signs claims with a PEM private key (RSA: RS256, EC P-256: ES256). Throws std::runtime_error.
/// Empty strings are left out of the token (which the verifier then refuses if the claim is required).
std::string mint_token(const token_claims& claims, const std::string& private_key_pem);

} // namespace caregate::auth
