// The TLS policy of every listener (protocol versions, ciphers, client certificates) and reading the
// caller's ODS code from a verified client certificate. Private to gateway/net.
#pragma once

#include "net/server.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace caregate::net::detail {

/// A server TLS context: TLS 1.2 minimum (1.3 preferred), forward-secret AEAD ciphers only for 1.2,
/// no compression, no renegotiation; asks for (or requires) a client certificate when the settings
/// name a client CA. Throws std::runtime_error naming the file that could not be loaded.
std::unique_ptr<boost::asio::ssl::context> make_tls_context(const tls_settings& settings);

/// The ODS code named by the peer's verified certificate (its subject CN); empty when the peer sent
/// no certificate, it did not verify, or its CN is not shaped like an ODS code.
std::string peer_ods_code(SSL* connection);

} // namespace caregate::net::detail
