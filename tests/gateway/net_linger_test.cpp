// Tests of the lingering close of gateway/net (net::limits::linger_time and linger_bytes): a client
// that writes its whole body before it reads (Python's http.client, Java's HttpURLConnection) gets the
// refusal of that body, and a client that never stops sending is cut off within the bounds and its
// connection slot given back. Through a real TLS socket, written by a client of the test's own (raw
// OpenSSL, blocking) so that it reads nothing until it has written everything, and by Python itself.
#include "net_fixture.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <thread>

using namespace caregate::testing;

namespace {

/// What a client that writes first and reads after saw.
struct exchange {
    std::size_t body_sent = 0;  ///< body bytes written: all of them, or those before a write failed
    bool body_complete = false; ///< the whole body was written
    std::string response;       ///< what it read afterwards, up to the close or an error
    std::chrono::steady_clock::duration sending{}; ///< from the end of the head to the end of the writes
};

/// A blocking TLS client (the dev CA trusted, client-A81001's certificate presented) that writes
/// `head`, then the body in pieces of `piece` bytes from `next_piece` (which returns false to stop,
/// and may sleep to send slowly), and only then reads, as http.client does. Every socket call is
/// bounded by 30 s, so that a server that hangs fails the test rather than stopping it.
exchange write_then_read(const std::string& port, const std::string& head, std::size_t piece,
                         const std::function<bool(std::size_t sent)>& next_piece) {
    // A write to a connection the server has reset must fail, not end the test run.
    std::signal(SIGPIPE, SIG_IGN);
    exchange seen;
    struct socket_file {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        ~socket_file() {
            if (fd >= 0)
                ::close(fd);
        }
    } owned;
    const int fd = owned.fd;
    REQUIRE(fd >= 0);
    const timeval limit{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(port)));
    ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);

    const std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> context(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    REQUIRE(SSL_CTX_load_verify_locations(context.get(), pki().file("ca.crt").c_str(), nullptr) == 1);
    REQUIRE(SSL_CTX_use_certificate_chain_file(context.get(), pki().file("client-A81001.crt").c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(context.get(), pki().file("client-A81001.key").c_str(), SSL_FILETYPE_PEM) ==
            1);
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
    const std::unique_ptr<SSL, void (*)(SSL*)> tls(SSL_new(context.get()), SSL_free);
    SSL_set_fd(tls.get(), fd);
    REQUIRE(SSL_connect(tls.get()) == 1);

    const auto write_all = [&](const char* data, std::size_t size) {
        while (size != 0) {
            const int n = SSL_write(tls.get(), data, static_cast<int>(std::min<std::size_t>(size, 1 << 20)));
            if (n <= 0)
                return false;
            data += n;
            size -= static_cast<std::size_t>(n);
        }
        return true;
    };
    REQUIRE(write_all(head.data(), head.size()));
    const auto start = std::chrono::steady_clock::now();
    const std::string bytes(piece, 'x');
    seen.body_complete = true;
    while (next_piece(seen.body_sent)) {
        if (!write_all(bytes.data(), bytes.size())) {
            seen.body_complete = false;
            break;
        }
        seen.body_sent += bytes.size();
    }
    seen.sending = std::chrono::steady_clock::now() - start;

    char chunk[4096];
    for (;;) {
        const int n = SSL_read(tls.get(), chunk, sizeof chunk);
        if (n <= 0)
            break;
        seen.response.append(chunk, static_cast<std::size_t>(n));
    }
    return seen;
}

std::string post_head(std::size_t content_length) {
    return "POST /Bundle HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nContent-Length: " +
           std::to_string(content_length) + "\r\n\r\n";
}

constexpr std::size_t mib = 1024 * 1024;

/// Whether a new request is served, retried a while: a closed connection gives back its slot as the
/// session ends, just after the client sees the close.
bool served_again(const running_server& server) {
    for (int tries = 0; tries < 50; ++tries) {
        if (contains(run(server.curl("'" + server.url("/Patient") + "'")).text, "GET /Patient ods= secure=yes body=0 [200 1]"))
            return true;
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

} // namespace

TEST_CASE("linger: a client that sends a 20 MiB body before it reads gets the 413 and its OperationOutcome") {
    // The default limits: 16 MiB is the largest body, so 20 MiB is refused as soon as its header is read.
    running_server server(tls_listener());
    const std::size_t body = 20 * mib;
    const auto seen = write_then_read(server.port(), post_head(body), 64 * 1024,
                                      [&](std::size_t sent) { return sent < body; });
    CHECK(seen.body_complete); // the server read on (and discarded) until the client had written it all
    CHECK(contains(seen.response, "HTTP/1.1 413 Payload Too Large"));
    CHECK(contains(seen.response, "\"resourceType\":\"OperationOutcome\""));
    CHECK(contains(seen.response, "\"code\":\"too-long\""));
    CHECK(contains(seen.response, "Connection: close"));
    CHECK(served_again(server));
}

TEST_CASE("linger: Python's http.client posting 20 MiB gets the 413 and its OperationOutcome") {
    running_server server(tls_listener());
    const auto out = run("python3 '" CAREGATE_SOURCE_DIR "/tests/gateway/post_without_waiting.py' " + server.port() +
                         " '" + pki().file("ca.crt") + "' '" + pki().file("client-A81001.crt") + "' '" +
                         pki().file("client-A81001.key") + "' " + std::to_string(20 * mib));
    CHECK(out.exit_status == 0);
    CHECK(out.text.starts_with("413\n"));
    CHECK(contains(out.text, "\"resourceType\":\"OperationOutcome\""));
    CHECK(contains(out.text, "\"code\":\"too-long\""));
}

TEST_CASE("linger: a client sending a body beyond bodies_bytes before it reads gets the 503") {
    // The other refusal of a declared body before it is read: the same close lets the client see it.
    net::limits limits;
    limits.body_bytes = 32 * mib;
    limits.bodies_bytes = 32 * mib;
    running_server server(tls_listener(), limits);
    // One slow client holds the whole budget for 4 s: it declares 32 MiB and sends 10 bytes of them.
    std::jthread holder([&] {
        run(server.s_client("printf 'POST /Bundle HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 33554432\\r\\n"
                            "\\r\\n0123456789'",
                            4));
    });
    exchange seen;
    for (int tries = 0; tries < 50 && !contains(seen.response, " 503 "); ++tries) {
        std::this_thread::sleep_for(100ms);
        seen = write_then_read(server.port(), post_head(20 * mib), 64 * 1024,
                               [](std::size_t sent) { return sent < 20 * mib; });
    }
    CHECK(seen.body_complete);
    CHECK(contains(seen.response, "HTTP/1.1 503 Service Unavailable"));
    CHECK(contains(seen.response, "\"code\":\"transient\""));
}

TEST_CASE("linger: a client that never stops sending is cut off at linger_bytes, and its slot given back") {
    net::limits limits;
    limits.body_bytes = 1024;
    limits.max_connections = 1;
    limits.linger_bytes = 1 * mib;
    limits.linger_time = 60s; // far beyond the test's bound: only the byte bound can end it in time
    running_server server(tls_listener(), limits);
    const auto seen = write_then_read(server.port(), post_head(1024 * mib), 64 * 1024,
                                      [](std::size_t) { return true; }); // until a write fails
    CHECK_FALSE(seen.body_complete);
    // The 1 MiB discarded, plus what the two sockets' buffers held when the server closed.
    CHECK(seen.body_sent < 64 * mib);
    CHECK(seen.sending < 20s);
    CHECK(served_again(server));
}

TEST_CASE("linger: a client that sends slowly for ever is cut off at linger_time, and its slot given back") {
    net::limits limits;
    limits.body_bytes = 1024;
    limits.max_connections = 1;
    limits.linger_time = 1s;
    running_server server(tls_listener(), limits);
    // 1 KiB each 50 ms, 20 KiB a second: nowhere near linger_bytes.
    const auto seen = write_then_read(server.port(), post_head(1024 * mib), 1024, [](std::size_t) {
        std::this_thread::sleep_for(50ms);
        return true;
    });
    CHECK_FALSE(seen.body_complete);
    CHECK(seen.sending >= 500ms); // it did linger (half linger_time: the client starts its clock late)
    CHECK(seen.sending < 8s);     // and stopped: linger_time, the close, a write or two to notice it
    CHECK(served_again(server));
}
