// The TLS policy of every listener, the revocation check of client certificates (its invariants are
// in tls.hpp), and the caller's ODS code from its client certificate.
#include "net/tls.hpp"

#include "net/session.hpp"

#include "fhir_model/ods_code.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

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

/// A distinguished name on one line, for messages ("O = caregate development, CN = ...").
std::string one_line(const X509_NAME* name) {
    BIO* out = BIO_new(BIO_s_mem());
    if (!out)
        return "(a name)";
    X509_NAME_print_ex(out, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    char* text = nullptr;
    const long length = BIO_get_mem_data(out, &text);
    std::string line(text, length > 0 ? static_cast<std::size_t>(length) : 0);
    BIO_free(out);
    return line;
}

std::string time_text(const ASN1_TIME* time) {
    BIO* out = BIO_new(BIO_s_mem());
    if (!out)
        return "(a time)";
    ASN1_TIME_print(out, time);
    char* text = nullptr;
    const long length = BIO_get_mem_data(out, &text);
    std::string line(text, length > 0 ? static_cast<std::size_t>(length) : 0);
    BIO_free(out);
    return line;
}

/// Every PEM object of one kind in a file: certificates or CRLs. Throws when the file cannot be read,
/// holds none, or holds one that does not parse.
template <class Object, Object* (*read)(BIO*, Object**, pem_password_cb*, void*), void (*release)(Object*)>
std::vector<std::shared_ptr<Object>> read_pem_objects(const std::string& file, const std::string& what) {
    ERR_clear_error();
    std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_file(file.c_str(), "r"), &BIO_free);
    const std::string where = "the " + what + " file '" + file + "'";
    if (!in)
        fail("cannot read " + where);
    std::vector<std::shared_ptr<Object>> objects;
    while (Object* object = read(in.get(), nullptr, nullptr, nullptr))
        objects.emplace_back(object, release);
    // The loop ends at the end of the file (no further PEM block: not an error) or at a block that
    // does not parse (an error, whatever came before it).
    const unsigned long last = ERR_peek_last_error();
    if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    else if (last != 0)
        fail(where + " does not parse (PEM, one " + what + " after another)");
    if (objects.empty())
        throw std::runtime_error(where + " holds no " + what + " (a PEM -----BEGIN " +
                                 (what == "CRL" ? "X509 CRL" : "CERTIFICATE") + "----- block)");
    return objects;
}

/// Whether an error of certificate verification is about revocation: those an operator must act on
/// (a revoked client trying to connect, or a CRL to renew), so they are logged.
bool is_revocation_error(int error) {
    switch (error) {
    case X509_V_ERR_CERT_REVOKED:
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
        return true;
    default:
        return false;
    }
}

/// The verify callback: changes no decision, only logs a refusal for revocation. The certificate's
/// subject names an organisation (its ODS code), never a patient.
int log_revocation_refusal(int preverified, X509_STORE_CTX* store) {
    if (preverified)
        return preverified;
    const int error = X509_STORE_CTX_get_error(store);
    if (!is_revocation_error(error))
        return preverified;
    std::string line = std::string("client certificate refused at the handshake: ") +
                       X509_verify_cert_error_string(error);
    if (X509* certificate = X509_STORE_CTX_get_current_cert(store)) {
        line += " (" + one_line(X509_get_subject_name(certificate));
        if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr)) {
            if (char* hex = BN_bn2hex(serial)) {
                line += std::string(", serial ") + hex;
                OPENSSL_free(hex);
            }
            BN_free(serial);
        }
        line += ", depth " + std::to_string(X509_STORE_CTX_get_error_depth(store)) + ")";
    }
    log_line(line);
    return preverified;
}

} // namespace

struct revocation_lists {
    revocation_lists(X509_STORE* lists, std::string context) : store(lists), session_context(std::move(context)) {}
    ~revocation_lists() { X509_STORE_free(store); }
    revocation_lists(const revocation_lists&) = delete;
    revocation_lists& operator=(const revocation_lists&) = delete;

    X509_STORE* const store;
    /// The session id context of this reading's TLS sessions (invariant 4): at most 32 bytes.
    const std::string session_context;
};

namespace {

/// The ClientHello callback: binds the handshake to the reading current now (invariants 3 and 4).
/// OpenSSL looks up a session to resume, and verifies the client's certificate, only after it.
int bind_revocation_lists(SSL* connection, int* alert, void* check) {
    const auto lists = static_cast<revocation_check*>(check)->current();
    // The connection takes its own reference to the store: a reload may free the reading meanwhile.
    if (SSL_set1_verify_cert_store(connection, lists->store) != 1 ||
        SSL_set_session_id_context(connection, reinterpret_cast<const unsigned char*>(lists->session_context.data()),
                                   static_cast<unsigned>(lists->session_context.size())) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

} // namespace

revocation_check::revocation_check(const tls_settings& settings)
    : ca_file_(settings.client_ca_file), crl_file_(settings.crl_file) {
    if (ca_file_.empty())
        throw std::runtime_error("a CRL file is set but no client CA: there is no client certificate to check");
    ca_certificates_ = read_pem_objects<X509, PEM_read_bio_X509, X509_free>(ca_file_, "certificate");
    current_.store(read());
}

revocation_check::~revocation_check() = default;

std::shared_ptr<const revocation_lists> revocation_check::read() const {
    const auto crls = read_pem_objects<X509_CRL, PEM_read_bio_X509_CRL, X509_CRL_free>(crl_file_, "CRL");
    const std::string where = "the CRL file '" + crl_file_ + "'";
    std::vector<const X509*> covered;
    for (const auto& crl : crls) {
        const X509_NAME* issuer_name = X509_CRL_get_issuer(crl.get());
        const std::string issuer = one_line(issuer_name);
        const X509* signer = nullptr;
        bool named = false;
        for (const auto& ca : ca_certificates_)
            if (X509_NAME_cmp(X509_get_subject_name(ca.get()), issuer_name) == 0) {
                named = true;
                if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) == 1) {
                    signer = ca.get();
                    break;
                }
            }
        ERR_clear_error();
        if (!signer)
            throw std::runtime_error(where + ": the CRL of '" + issuer + "' " +
                                     (named ? "is not signed by the client CA (its signature does not verify with "
                                              "the key of '" + ca_file_ + "')"
                                            : "is from no CA of the client CA file '" + ca_file_ + "'"));
        const ASN1_TIME* next_update = X509_CRL_get0_nextUpdate(crl.get());
        if (!next_update)
            throw std::runtime_error(where + ": the CRL of '" + issuer +
                                     "' has no next update, so it could never be known to be stale");
        if (X509_cmp_current_time(next_update) <= 0)
            throw std::runtime_error(where + ": the CRL of '" + issuer + "' expired on " + time_text(next_update) +
                                     ": publish a new one");
        const ASN1_TIME* this_update = X509_CRL_get0_lastUpdate(crl.get());
        if (!this_update || X509_cmp_current_time(this_update) >= 0)
            throw std::runtime_error(where + ": the CRL of '" + issuer + "' is not valid yet" +
                                     (this_update ? " (from " + time_text(this_update) + ")" : ""));
        covered.push_back(signer);
    }
    // Invariant 1 checks the whole chain: a CA of the client CA file without a CRL would have every
    // certificate it issued refused, so say so now rather than at each handshake.
    for (const auto& ca : ca_certificates_)
        if (std::find(covered.begin(), covered.end(), ca.get()) == covered.end())
            throw std::runtime_error(where + " holds no CRL from '" + one_line(X509_get_subject_name(ca.get())) +
                                     "' (in '" + ca_file_ + "'): every client certificate it issued would be refused");

    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
    if (!store)
        fail("cannot make a certificate store");
    for (const auto& ca : ca_certificates_)
        if (X509_STORE_add_cert(store.get(), ca.get()) != 1)
            fail("cannot add the client CA to a certificate store");
    for (const auto& crl : crls)
        if (X509_STORE_add_crl(store.get(), crl.get()) != 1)
            fail("cannot add a CRL of " + where + " to a certificate store");
    // The whole chain (invariant 1): CRL_CHECK alone would check the client's own certificate only.
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return std::make_shared<const revocation_lists>(store.release(), "caregate/crl/" + std::to_string(++readings_));
}

void revocation_check::use(std::shared_ptr<const revocation_lists> lists) noexcept {
    current_.store(std::move(lists));
}

void revocation_check::attach(SSL_CTX* context) {
    // Should a handshake ever miss its reading, it would use the context's own store, which holds no
    // CRL: with these flags, that fails closed ("unable to get certificate CRL").
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(context), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    SSL_CTX_set_client_hello_cb(context, bind_revocation_lists, this);
}

std::unique_ptr<ssl::context> make_tls_context(const tls_settings& settings, revocation_check* revocation) {
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
        SSL_CTX_set_verify(native, mode, log_revocation_refusal);
        SSL_CTX_set_verify_depth(native, client_chain_depth);
        if (!settings.crl_file.empty()) {
            if (!revocation)
                throw std::runtime_error("a CRL file is set but the listener has no revocation check");
            revocation->attach(native);
        }
    } else if (!settings.crl_file.empty()) {
        throw std::runtime_error("a CRL file is set but no client CA: there is no client certificate to check");
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
