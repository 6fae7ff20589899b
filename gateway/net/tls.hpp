// The TLS policy of every listener (protocol versions, ciphers, client certificates and their
// revocation lists) and reading the caller's ODS code from a verified client certificate. Private to
// gateway/net.
//
// Revocation, the invariants kept:
//  1. With a CRL file, every certificate of a client's chain (not only the client's own) must be
//     covered by a current CRL from its issuer, or the handshake is refused: a revoked intermediate
//     CA stops every certificate under it, and a missing or expired CRL fails closed.
//  2. CRLs are checked when read, at start and at each reload: parsed, signed by a certificate of the
//     client CA file, current (this update passed, next update to come), one from each CA of that
//     file. A reading that fails any check is never used.
//  3. A handshake uses the reading current when its ClientHello arrives; a reload changes nothing for
//     handshakes already past that point, nor for connections already open.
//  4. A TLS session made under one reading is never resumed under another, so a certificate revoked
//     by a reload cannot come back through a session saved before it.
#pragma once

#include "net/server.hpp"

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace caregate::net::detail {

/// One reading of a CRL file: the client CA's certificates and the CRLs as one X509_STORE that checks
/// revocation, immutable once made. Defined in tls.cpp.
struct revocation_lists;

/// A listener's revocation check: the client CA and the CRL file it was made from, and the reading
/// of them that new handshakes use. Thread-safe. Must outlive every SSL_CTX it is attached to.
class revocation_check {
public:
    /// Reads the client CA file and the CRL file. Throws std::runtime_error naming the file and the
    /// fault (invariant 2).
    explicit revocation_check(const tls_settings& settings);
    ~revocation_check();
    revocation_check(const revocation_check&) = delete;
    revocation_check& operator=(const revocation_check&) = delete;

    /// Makes every handshake of `context` check the client's chain against the reading current at
    /// its ClientHello (invariants 1, 3 and 4).
    void attach(SSL_CTX* context);
    /// Reads the CRL file again, checked as at start, without using it. Throws std::runtime_error.
    std::shared_ptr<const revocation_lists> read() const;
    /// Puts a reading in use for the handshakes that begin after this.
    void use(std::shared_ptr<const revocation_lists> lists) noexcept;
    /// The reading in use now.
    std::shared_ptr<const revocation_lists> current() const noexcept { return current_.load(); }

    const std::string& crl_file() const noexcept { return crl_file_; }

private:
    std::string ca_file_;
    std::string crl_file_;
    std::vector<std::shared_ptr<X509>> ca_certificates_; ///< read once: the CA is not reloaded
    mutable std::atomic<unsigned> readings_{0};          ///< numbers each reading, for invariant 4
    std::atomic<std::shared_ptr<const revocation_lists>> current_;
};

/// A server TLS context: TLS 1.2 minimum (1.3 preferred), forward-secret AEAD ciphers only for 1.2,
/// no compression, no renegotiation; asks for (or requires) a client certificate when the settings
/// name a client CA, checked against `revocation` when given (settings.crl_file needs it). Throws
/// std::runtime_error naming the file that could not be loaded.
std::unique_ptr<boost::asio::ssl::context> make_tls_context(const tls_settings& settings,
                                                            revocation_check* revocation = nullptr);

/// The ODS code named by the peer's verified certificate (its subject CN); empty when the peer sent
/// no certificate, it did not verify, or its CN is not shaped like an ODS code.
std::string peer_ods_code(SSL* connection);

} // namespace caregate::net::detail
