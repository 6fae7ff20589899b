// The token issuers a server trusts: read from the issuers file (`caregate serve --issuers FILE`), or
// the development issuer whose key certs/make-dev-certs.sh makes. Reading only; token.cpp verifies.
#pragma once

#include "auth/token.hpp"

#include <string>
#include <vector>

namespace caregate::auth {

/// The development issuer's name, as `caregate token` signs it.
inline constexpr const char* dev_issuer_name = "caregate-dev";

/// Reads a JSON array of issuers:
///   [{"issuer": "https://login.example", "jwks_file": "example-jwks.json"},
///    {"issuer": "caregate-dev", "public_key_pem_file": "certs/dev/token-signing.pub"}]
/// `public_key_pem_file` may also be an array of files (keys in rotation). Relative paths are relative
/// to the folder of the issuers file. Each key is checked as the verifier will use it. Throws
/// std::invalid_argument with a message for the operator.
std::vector<trusted_issuer> load_issuers(const std::string& config_path);

/// The issuer caregate-dev with the public key DIR/token-signing.pub. Throws std::invalid_argument.
trusted_issuer dev_issuer(const std::string& certs_dir);

} // namespace caregate::auth
