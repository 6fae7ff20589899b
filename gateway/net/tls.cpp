// The TLS policy of every listener, and the caller's ODS code from its client certificate.
#include "net/tls.hpp"

#include "fhir_model/ods_code.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace caregate::net::detail {

namespace {

namespace ssl = boost::asio::ssl;

/// TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 suites are all of that already,
/// so OpenSSL's default TLS 1.3 list stands.
constexpr const char* tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* key_exchange_groups = "X25519:P-256:P-384";
/// Server CA -> intermediate -> client: a short chain is all a provider PKI needs.
constexpr int client_chain_depth = 4;
/// Required for session resumption when client certificates are verified.
constexpr unsigned char session_id_context[] = "caregate";

/// The queued OpenSSL errors as one line (and clears the queue).
std::string openssl_errors() {
    std::string text;
    while (unsigned long code = ERR_get_error()) {
        char buffer[256];
        ERR_error_string_n(code, buffer, sizeof buffer);
        if (!text.empty())
            text += "; ";
        text += buffer;
    }
    return text.empty() ? "unknown OpenSSL error" : text;
}

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + openssl_errors());
}

} // namespace

std::unique_ptr<ssl::context> make_tls_context(const tls_settings& settings) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = context->native_handle();

    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1)
        fail("cannot set the minimum TLS version");
    // No compression (CRIME), no renegotiation (a denial-of-service lever, and unneeded with 1.3);
    // the server's cipher order wins. Stateless session tickets are off so that a stolen ticket key
    // cannot decrypt recorded TLS 1.2 sessions; resumption uses the server-side session cache instead.
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1)
        fail("cannot set the TLS 1.2 ciphers");
    if (SSL_CTX_set1_groups_list(native, key_exchange_groups) != 1)
        fail("cannot set the TLS key exchange groups");
    SSL_CTX_set_session_id_context(native, session_id_context, sizeof session_id_context - 1);

    if (SSL_CTX_use_certificate_chain_file(native, settings.certificate_file.c_str()) != 1)
        fail("cannot load the server certificate '" + settings.certificate_file + "'");
    if (SSL_CTX_use_PrivateKey_file(native, settings.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        fail("cannot load the server private key '" + settings.private_key_file + "'");
    if (SSL_CTX_check_private_key(native) != 1)
        fail("the private key '" + settings.private_key_file + "' does not match the certificate '" +
             settings.certificate_file + "'");

    if (!settings.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(native, settings.client_ca_file.c_str(), nullptr) != 1)
            fail("cannot load the client CA '" + settings.client_ca_file + "'");
        // Tells clients which CAs we accept, so that one holding several certificates picks the right one.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.client_ca_file.c_str());
        if (!names)
            fail("cannot read the CA names in '" + settings.client_ca_file + "'");
        SSL_CTX_set_client_CA_list(native, names);
        int mode = SSL_VERIFY_PEER;
        if (settings.require_client_certificate)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(native, mode, nullptr);
        SSL_CTX_set_verify_depth(native, client_chain_depth);
    } else if (settings.require_client_certificate) {
        throw std::runtime_error("a client certificate is required but no client CA file is set");
    }
    return context;
}

std::string peer_ods_code(SSL* connection) {
    // With SSL_VERIFY_PEER a certificate that does not verify fails the handshake; the check of the
    // verify result here is a second lock on the same door.
    X509* certificate = SSL_get0_peer_certificate(connection);
    if (!certificate || SSL_get_verify_result(connection) != X509_V_OK)
        return {};
    X509_NAME* subject = X509_get_subject_name(certificate);
    int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index < 0)
        return {};
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
    if (length < 0)
        return {};
    std::string common_name(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
    // A CN that is not an ODS code does not name an organisation, and must not travel on into
    // authorisation and audit.
    return fhir::is_ods_code(common_name) ? common_name : std::string{};
}

} // namespace caregate::net::detail
