// The HTTPS server: Asio + Beast HTTP/1.1 over TLS (or plain on loopback), one io_context run by a
// thread per core, with every limit a named setting. The only public header of gateway/net; it
// includes no Asio or Beast header, so the rest of the gateway compiles without them.
#pragma once

#include "http/message.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::net {

/// Every limit of a connection, with its reason. Over a limit the client gets 413, 431, 400, 408 or
/// 503 with an OperationOutcome (where a response is still possible) and the connection is closed,
/// after lingering (linger_time, linger_bytes) for what the client was still sending.
struct limits {
    /// Largest request body. 16 MiB holds a large transaction Bundle; more is refused with 413.
    std::size_t body_bytes = 16 * 1024 * 1024;
    /// Request bodies held at once by a listener's connections: those being received and those
    /// being handled, until the response is written. A request whose body would take the total over
    /// it gets 503 with Retry-After (before its body is read, when it has a Content-Length), so that
    /// many large bodies at once (a flood of slow uploads, many transaction Bundles) cannot exhaust
    /// memory. Per listener, as max_connections, so that a flood of the patient-facing listener
    /// cannot refuse the providers' uploads. At least body_bytes; 256 MiB holds 16 of the largest.
    std::size_t bodies_bytes = 256 * 1024 * 1024;
    /// Largest body of a request the listener's takes_binary_body chooses (a Binary's raw bytes: a
    /// scanned letter is tens of MiB), in place of body_bytes; still counted against bodies_bytes,
    /// which must hold at least one. A body declared as JSON or FHIR XML (a Content-Type naming json,
    /// or application/fhir+xml) is held to body_bytes even there: it is parsed whole, more than once.
    std::size_t binary_body_bytes = 64 * 1024 * 1024;
    /// Largest request line plus headers. 16 KiB fits a long search URL and a large bearer token; 431.
    std::size_t header_bytes = 16 * 1024;
    /// Longest chunk extension (`;name=value` after a chunk's size, RFC 9112 section 7.1.1). A
    /// chunk's size line is buffered whole before it is parsed, so this, with at most 16 hex digits
    /// of size, bounds what that line holds in memory. Extensions mean nothing to this server and
    /// no client of it sends any; 4 KiB leaves room for any a proxy adds. Longer gets 400.
    std::size_t chunk_extension_bytes = 4 * 1024;
    /// Longest trailer section (the fields after a chunked body's last chunk, RFC 9112 section
    /// 7.1.2), buffered whole before it is parsed. Trailer fields are read and dropped, never taken
    /// as headers; 8 KiB holds a checksum or a signature with room to spare. Longer gets 400.
    std::size_t trailer_bytes = 8 * 1024;
    /// Time to receive a whole request once its first byte has arrived; a slow client gets 408.
    std::chrono::seconds read_timeout{30};
    /// Time a kept-alive connection may sit idle between requests before it is closed.
    std::chrono::seconds idle_timeout{60};
    /// Time for the TLS handshake; stops clients holding half-open handshakes.
    std::chrono::seconds handshake_timeout{10};
    /// Open connections per listener; beyond it new connections are closed at once.
    std::size_t max_connections = 10000;
    /// After a refusal that closes the connection, the longest the server goes on reading and
    /// discarding what the client still sends before it closes: the lingering close. A client that
    /// writes its whole body before it reads (Python's http.client, Java's HttpURLConnection; curl
    /// waits for 100 Continue instead) would otherwise have its writes fail on the reset a socket
    /// closed with unread data sends, and never see the answer. 5 s takes a 20 MiB body at 34
    /// Mbit/s, and is a sixth of read_timeout: a refusal holds a connection slot for less time than
    /// any client may hold one by sending slowly. It holds no share of bodies_bytes.
    std::chrono::seconds linger_time{5};
    /// The most the lingering close reads and discards, into the session's read buffer (nothing is
    /// kept). 64 MiB is four times the default body_bytes: a body some times larger than the limit
    /// is read to its end, so its client sees the 413; one that sends more is not about to read.
    std::size_t linger_bytes = 64 * 1024 * 1024;
};

struct tls_settings {
    std::string certificate_file; ///< server certificate chain (PEM)
    std::string private_key_file; ///< its key (PEM)
    std::string client_ca_file;   ///< CA whose client certificates are trusted (PEM); empty: none asked
    bool require_client_certificate = false; ///< refuse the handshake without a valid client certificate
    /// Revocation lists of the client CA (PEM, one or more CRLs); empty: none checked. With them, every
    /// certificate of a client's chain must be covered by a current CRL of its issuer, and must not
    /// be listed, or the handshake is refused. Read at start and by read_revocation_lists().
    std::string crl_file;
};

struct listener {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8443;
    bool plain = false; ///< HTTP without TLS; refused unless `address` is loopback
    /// Lets a plain listener take an address that is not loopback: the admin listener, when the
    /// operator names such an address (it serves no patient data and takes no credentials).
    bool plain_on_any_address = false;
    tls_settings tls;
    http::handler handle;
    /// Whether a request of this method and target (as received) may carry a body of up to
    /// limits::binary_body_bytes; none: no request may. Decided from the request line alone, before
    /// the header's Content-Length is held to a limit.
    std::function<bool(std::string_view method, std::string_view target)> takes_binary_body;
};

class server {
public:
    /// Binds every listener (errors are thrown as std::runtime_error with a clear message: the
    /// command line reports it and exits). `threads` 0 means one per core.
    server(std::vector<listener> listeners, limits limits, unsigned threads);
    ~server();

    /// Serves until SIGINT or SIGTERM (or stop()): then stops accepting, lets in-flight requests
    /// finish (up to a grace period), and returns.
    void run();
    /// Asks run() to return as it would on SIGTERM. Thread-safe.
    void stop();
    /// What the process does on SIGHUP from now on: calls `reload` on one of the server's threads while
    /// run() runs, one call at a time (an exception it throws is logged). Without it, SIGHUP keeps
    /// its default action. Called once, before or while run() runs.
    void on_hangup(std::function<void()> reload);
    /// Reads every listener's CRL file again, checked as at start, without using it: a fault throws
    /// std::runtime_error naming the file and changes nothing. The returned function puts what was
    /// read in use for every handshake that begins after it is called, and cannot fail; connections
    /// already open are left as they are. Thread-safe.
    std::function<void()> read_revocation_lists() const;
    /// The port a listener is bound to (useful with port 0).
    std::uint16_t bound_port(std::size_t listener_index) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(const std::string& address);

} // namespace caregate::net
