// Tests of gateway/net/server: TLS, the connection limits and timeouts, HTTP/1.1 keep-alive and
// pipelining, the handler bridge and stopping, through a real server (tests/gateway/net_fixture.hpp).
// How a request's framing is read (Transfer-Encoding, chunk extensions, trailers) is in
// net_framing_test.cpp.
#include "net_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace caregate::testing;


TEST_CASE("TLS: a request round trip, kept alive for the next request") {
    running_server server(tls_listener());
    auto out = run(server.curl("'" + server.url("/Patient/9000000009") + "' '" + server.url("/metadata") + "'"));
    CHECK(out.exit_status == 0);
    CHECK(contains(out.text, "GET /Patient/9000000009 ods= secure=yes body=0 [200 1]"));
    // The second request reused the connection: no new connect.
    CHECK(contains(out.text, "GET /metadata ods= secure=yes body=0 [200 0]"));

    auto verbose = run(server.curl("'" + server.url("/metadata") + "'", true));
    CHECK(contains(verbose.text, "SSL connection using TLSv1.3")); // preferred when the client has it
}

TEST_CASE("TLS: a POST body reaches the handler") {
    running_server server(tls_listener());
    auto out = run(server.curl("--data-binary 'hello world' '" + server.url("/Patient") + "'"));
    CHECK(contains(out.text, "POST /Patient ods= secure=yes body=11 [200 1]"));
}

TEST_CASE("TLS: the client certificate's CN is the caller's ODS code") {
    running_server server(tls_listener());
    auto out = run(server.curl("--cert '" + pki().file("client-A81001.crt") + "' --key '" +
                               pki().file("client-A81001.key") + "' '" + server.url("/Patient") + "'"));
    CHECK(contains(out.text, "GET /Patient ods=A81001 secure=yes body=0 [200 1]"));

    out = run(server.curl("--cert '" + pki().file("client-8JK23.crt") + "' --key '" +
                          pki().file("client-8JK23.key") + "' '" + server.url("/Patient") + "'"));
    CHECK(contains(out.text, "ods=8JK23 "));
}

TEST_CASE("TLS: require_client_certificate refuses a client without one, accepts one with one") {
    running_server server(tls_listener(client_certs::required));
    auto refused = run(server.curl("'" + server.url("/Patient") + "'"));
    CHECK(refused.exit_status != 0);
    CHECK_FALSE(contains(refused.text, "[200"));

    auto accepted = run(server.curl("--cert '" + pki().file("client-RX1.crt") + "' --key '" +
                                    pki().file("client-RX1.key") + "' '" + server.url("/Patient") + "'"));
    CHECK(contains(accepted.text, "ods=RX1 secure=yes body=0 [200 1]"));
}

TEST_CASE("TLS: without a client CA (the patient-facing listener) no certificate is asked for, and a client with none is served") {
    running_server patients(tls_listener(client_certs::none));
    auto out = run(patients.curl("'" + patients.url("/metadata") + "'", true));
    CHECK(contains(out.text, "GET /metadata ods= secure=yes body=0 [200 1]"));
    CHECK_FALSE(contains(out.text, "Request CERT")); // no CertificateRequest in the handshake

    // The control: a provider listener does ask (curl reports the server's request).
    running_server providers(tls_listener(client_certs::requested));
    CHECK(contains(run(providers.curl("'" + providers.url("/metadata") + "'", true)).text, "Request CERT"));
}

TEST_CASE("TLS: a client certificate from another CA is refused") {
    // The server certificate is signed by the dev CA, but it is not itself a CA: a certificate
    // self-signed by a stranger must not verify.
    running_server server(tls_listener(client_certs::required));
    const std::string key = pki().file("stranger.key"), cert = pki().file("stranger.crt");
    REQUIRE(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" + key +
                "' -out '" + cert + "' -days 1 -subj /CN=A81001 2>/dev/null")
                .exit_status == 0);
    auto out = run(server.curl("--cert '" + cert + "' --key '" + key + "' '" + server.url("/Patient") + "'"));
    CHECK(out.exit_status != 0);
    CHECK_FALSE(contains(out.text, "[200"));
}

TEST_CASE("TLS: 1.1 and older are refused; 1.2 is served with a forward-secret cipher") {
    running_server server(tls_listener());
    // SECLEVEL=0 lets the client offer TLS 1.1 at all; the refusal must come from the server.
    auto old = run(server.curl("--tlsv1.0 --tls-max 1.1 --ciphers 'DEFAULT@SECLEVEL=0' '" + server.url("/") + "'"));
    CHECK(old.exit_status != 0);
    CHECK_FALSE(contains(old.text, "[200"));

    auto tls12 = run(server.curl("--tlsv1.2 --tls-max 1.2 '" + server.url("/") + "'", true));
    CHECK(contains(tls12.text, "[200 1]"));
    CHECK(contains(tls12.text, "SSL connection using TLSv1.2 / ECDHE-"));

    // A TLS 1.2 client offering only RSA key exchange (no forward secrecy) is refused.
    auto static_rsa = run(server.curl("--tls-max 1.2 --ciphers AES128-GCM-SHA256 '" + server.url("/") + "'"));
    CHECK(static_rsa.exit_status != 0);
}

TEST_CASE("TLS: plain HTTP sent to a TLS port gets no HTTP response") {
    running_server server(tls_listener());
    auto out = run(server.curl("'http://127.0.0.1:" + server.port() + "/Patient'"));
    CHECK(out.exit_status != 0);
    CHECK_FALSE(contains(out.text, "[200"));
}

TEST_CASE("limits: a body over body_bytes is refused with 413 and an OperationOutcome") {
    net::limits limits;
    limits.body_bytes = 1024;
    running_server server(tls_listener(), limits);
    const std::string body_file = pki().file("body.json");
    std::ofstream(body_file) << std::string(5000, 'x');

    SUBCASE("with Content-Length") {
        auto out = run(server.curl("-H 'Expect:' --data-binary @'" + body_file + "' '" + server.url("/Bundle") + "'"));
        CHECK(contains(out.text, "\"resourceType\":\"OperationOutcome\""));
        CHECK(contains(out.text, "too-long"));
        CHECK(contains(out.text, "[413 1]"));
    }
    SUBCASE("with Expect: 100-continue, refused before the body is sent") {
        auto out = run(server.curl("-H 'Expect: 100-continue' --data-binary @'" + body_file + "' '" +
                                   server.url("/Bundle") + "'"));
        CHECK(contains(out.text, "OperationOutcome"));
        CHECK(contains(out.text, "[413 1]"));
    }
    SUBCASE("chunked") {
        auto out = run(server.curl("-H 'Transfer-Encoding: chunked' --data-binary @'" + body_file + "' '" +
                                   server.url("/Bundle") + "'"));
        CHECK(contains(out.text, "OperationOutcome"));
        CHECK(contains(out.text, "[413 1]"));
    }
    SUBCASE("a body of exactly the limit is served") {
        std::ofstream(body_file) << std::string(1024, 'x');
        auto out = run(server.curl("--data-binary @'" + body_file + "' '" + server.url("/Bundle") + "'"));
        CHECK(contains(out.text, "POST /Bundle ods= secure=yes body=1024 [200 1]"));
    }
}

TEST_CASE("limits: bodies beyond bodies_bytes at once get 503 with Retry-After; served again once given back") {
    net::limits limits;
    limits.body_bytes = 1024;
    limits.bodies_bytes = 1536;
    // How long the slow client below holds its share: long enough that the refusals are tried while
    // it does, however slow the machine (under the sanitizers, beside other work, 3 s was missed).
    limits.read_timeout = 10s;
    std::vector<net::listener> listeners; // the second stands for the other (patient-facing) listener
    listeners.push_back(tls_listener());
    listeners.push_back(tls_listener());
    running_server server(std::move(listeners), limits);
    const std::string full = pki().file("body-1024.json"), small = pki().file("body-500.json");
    std::ofstream(full) << std::string(1024, 'x');
    std::ofstream(small) << std::string(500, 'x');
    auto post = [&](const std::string& file, const std::string& headers = "-H 'Expect:'", std::size_t listener = 0) {
        return run(server.curl("-i " + headers + " --data-binary @'" + file + "' '" + server.url("/Bundle", listener) +
                               "'"))
            .text;
    };
    CHECK(contains(post(full), "[200 1]")); // nothing else held: a body of the limit is served

    // A slow client holds 1,024 bytes: it declares them, sends 10 and waits (until read_timeout, 408;
    // its own time limit is longer).
    std::string held; // what the slow client got back: its 408, or nothing if it never got in
    std::jthread holder([&] { // joined as the test ends, however it ends
        held = run(server.s_client("printf 'POST /Bundle HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 1024\\r\\n\\r\\n"
                                   "0123456789'",
                                   20))
                   .text;
    });
    std::string refused;
    for (int tries = 0; tries < 100 && !contains(refused, "[503"); ++tries) {
        std::this_thread::sleep_for(20ms);
        refused = post(full);
    }
    if (!contains(refused, "[503")) { // say why, for a failure seen once in CI under TSan
        holder.join();
        FAIL_CHECK("no 503 while the slow client should hold its share; the last answer: " << refused
                                                                                          << "; the slow client got: " << held);
    }
    // 1,024 more would make 2,048 > 1,536: refused before the body is read, saying so, without a record.
    CHECK(contains(refused, "HTTP/1.1 503"));
    CHECK(contains(refused, "Retry-After: 1"));
    CHECK(contains(refused, "\"resourceType\":\"OperationOutcome\""));
    CHECK(contains(refused, "\"code\":\"transient\""));
    CHECK(contains(refused, "[503 1]"));
    // With Expect: 100-continue the refusal comes before the client sends its body.
    CHECK(contains(post(full, "-H 'Expect: 100-continue'"), "[503 1]"));
    // Chunked, so counted as it arrives: refused once it would pass the total.
    CHECK(contains(post(full, "-H 'Transfer-Encoding: chunked'"), "[503 1]"));
    // 500 more fits (1,524 <= 1,536).
    CHECK(contains(post(small), "POST /Bundle ods= secure=yes body=500 [200 1]"));
    // The other listener counts its own bodies: it is not refused for this one's.
    CHECK(contains(post(full, "-H 'Expect:'", 1), "POST /Bundle ods= secure=yes body=1024 [200 1]"));
    if (holder.joinable())
        holder.join();

    // Every share given back (the slow client's after its 408, the refused ones' at their close).
    CHECK(contains(post(full), "POST /Bundle ods= secure=yes body=1024 [200 1]"));
    CHECK(contains(post(full, "-H 'Transfer-Encoding: chunked'"), "body=1024 [200 1]"));
}

TEST_CASE("limits: the request lines takes_binary_body chooses may carry up to binary_body_bytes, unless declared FHIR") {
    net::limits limits;
    limits.body_bytes = 1024;
    limits.binary_body_bytes = 8192;
    net::listener listener = tls_listener();
    listener.takes_binary_body = [](std::string_view method, std::string_view target) {
        return method == "POST" && target == "/Binary";
    };
    running_server server(std::move(listener), limits);
    const std::string body_file = pki().file("binary.bin");
    auto post = [&](const std::string& path, const std::string& options) {
        return run(server.curl("-H 'Expect:' " + options + " --data-binary @'" + body_file + "' '" + server.url(path) + "'"))
            .text;
    };
    std::ofstream(body_file) << std::string(8192, 'x');
    CHECK(contains(post("/Binary", "-H 'Content-Type: application/pdf'"), "body=8192 [200 1]"));
    CHECK(contains(post("/Binary", "-H 'Content-Type: application/pdf' -H 'Transfer-Encoding: chunked'"),
                   "body=8192 [200 1]"));
    // Another path, or the same one with FHIR JSON, is held to body_bytes, by Content-Length or as it arrives.
    CHECK(contains(post("/Bundle", "-H 'Content-Type: application/pdf'"), "[413 1]"));
    CHECK(contains(post("/Binary", "-H 'Content-Type: application/fhir+json'"), "[413 1]"));
    CHECK(contains(post("/Binary", "-H 'Content-Type: application/fhir+json' -H 'Transfer-Encoding: chunked'"),
                   "[413 1]"));
    CHECK(contains(post("/Binary", "-H 'Content-Type: application/fhir+xml'"), "[413 1]"));
    std::ofstream(body_file) << std::string(8193, 'x');
    auto over = post("/Binary", "-H 'Content-Type: application/pdf'");
    CHECK(contains(over, "[413 1]"));
    CHECK(contains(over, "8192 for a Binary"));
}

TEST_CASE("limits: bodies_bytes below binary_body_bytes is refused at start where a listener takes a Binary's bytes") {
    net::limits limits;
    limits.bodies_bytes = 2048;
    limits.body_bytes = 1024;
    limits.binary_body_bytes = 4096;
    std::vector<net::listener> listeners;
    listeners.push_back(tls_listener());
    listeners.back().takes_binary_body = [](std::string_view, std::string_view) { return true; };
    CHECK_THROWS_WITH_AS(net::server(std::move(listeners), limits, 1),
                         doctest::Contains("--max-bodies-bytes (2048) is less than --max-binary-bytes (4096)"),
                         std::runtime_error);
}

TEST_CASE("limits: bodies_bytes below body_bytes is refused at start") {
    net::limits limits;
    limits.body_bytes = 2048;
    limits.bodies_bytes = 1024;
    std::vector<net::listener> listeners;
    listeners.push_back(tls_listener());
    CHECK_THROWS_WITH_AS(net::server(std::move(listeners), limits, 1),
                         doctest::Contains("--max-bodies-bytes (1024) is less than --max-body-bytes (2048)"),
                         std::runtime_error);
}

TEST_CASE("limits: headers over header_bytes are refused with 431 and an OperationOutcome") {
    net::limits limits;
    limits.header_bytes = 4096;
    running_server server(tls_listener(), limits);
    auto out = run(server.curl("-H 'X-Large: " + std::string(8000, 'a') + "' '" + server.url("/Patient") + "'"));
    CHECK(contains(out.text, "\"resourceType\":\"OperationOutcome\""));
    CHECK(contains(out.text, "[431 1]"));

    auto within = run(server.curl("-H 'X-Large: " + std::string(2000, 'a') + "' '" + server.url("/Patient") + "'"));
    CHECK(contains(within.text, "[200 1]"));

    // The limit holds for the request line and the fields together (Beast holds each to it alone).
    auto together = run(server.curl("-H 'X-Large: " + std::string(3000, 'a') + "' '" +
                                    server.url("/Patient?name=" + std::string(3000, 'n')) + "'"));
    CHECK(contains(together.text, "\"resourceType\":\"OperationOutcome\""));
    CHECK(contains(together.text, "[431 1]"));
}

TEST_CASE("limits: a client too slow to send its request gets 408, then the connection closes") {
    net::limits limits;
    limits.read_timeout = 1s;
    running_server server(tls_listener(), limits);
    const auto start = std::chrono::steady_clock::now();
    // Half a request, then silence for longer than read_timeout.
    auto out = run(server.s_client("printf 'GET /Patient HTTP/1.1\\r\\nHost: localhost\\r\\n'; sleep 2"));
    CHECK(contains(out.text, "HTTP/1.1 408 Request Timeout"));
    CHECK(contains(out.text, "\"code\":\"timeout\""));
    CHECK(contains(out.text, "Connection: close"));
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("limits: an idle connection is closed silently after idle_timeout") {
    net::limits limits;
    limits.idle_timeout = 1s;
    running_server server(tls_listener(), limits);
    // One request, then nothing: the server closes without a word (no 408).
    const auto start = std::chrono::steady_clock::now();
    auto out = run(server.s_client("printf 'GET /a HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'; sleep 2"));
    CHECK(contains(out.text, "HTTP/1.1 200 OK"));
    CHECK_FALSE(contains(out.text, "408"));
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("limits: a client that never starts the TLS handshake is dropped after handshake_timeout") {
    net::limits limits;
    limits.handshake_timeout = 1s;
    running_server server(tls_listener(), limits);
    const auto start = std::chrono::steady_clock::now();
    // Connects and sends nothing; `cat` returns when the server closes the connection.
    auto out = run("timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + server.port() + "; cat <&3'");
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(out.exit_status == 0); // closed by the server, not by `timeout`
    CHECK(took >= 900ms);
    CHECK(took < 5s);
}

TEST_CASE("limits: connections beyond max_connections are closed at once") {
    net::limits limits;
    limits.max_connections = 1;
    running_server server(tls_listener(), limits);
    // Holds the one allowed connection open for 2 s (without -quiet, s_client leaves when its input ends).
    const std::string hold = "sleep 2 | openssl s_client -connect 127.0.0.1:" + server.port() + " >/dev/null 2>&1";
    FILE* holder = ::popen(hold.c_str(), "r");
    REQUIRE(holder != nullptr);
    std::this_thread::sleep_for(500ms);
    auto refused = run(server.curl("'" + server.url("/Patient") + "'"));
    CHECK_FALSE(contains(refused.text, "[200"));
    ::pclose(holder);
    std::this_thread::sleep_for(200ms);
    auto served = run(server.curl("'" + server.url("/Patient") + "'"));
    CHECK(contains(served.text, "[200 1]"));
}

TEST_CASE("HTTP: malformed requests get 400 with an OperationOutcome, then the connection closes") {
    running_server server(tls_listener());
    auto out = run(server.s_client("printf 'NOT HTTP AT ALL\\r\\n\\r\\n'; sleep 1"));
    CHECK(contains(out.text, "HTTP/1.1 400 Bad Request"));
    CHECK(contains(out.text, "OperationOutcome"));
}

TEST_CASE("HTTP: pipelined requests are answered in order") {
    running_server server(tls_listener());
    auto out = run(server.s_client("printf 'GET /first HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /second HTTP/1.1\\r\\n"
                                   "Host: x\\r\\nConnection: close\\r\\n\\r\\n'; sleep 1"));
    const auto first = out.text.find("GET /first"), second = out.text.find("GET /second");
    CHECK(first != std::string::npos);
    CHECK(second != std::string::npos);
    CHECK(first < second);
}

TEST_CASE("HTTP: HEAD gets the headers of a GET and no body") {
    running_server server(tls_listener());
    auto out = run(server.curl("-I '" + server.url("/Patient") + "'"));
    // The Content-Length a GET would have: "HEAD /Patient ods= secure=yes body=0" is 36 bytes.
    CHECK(contains(out.text, "Content-Length: 36"));
    CHECK(contains(out.text, "[200 1]"));
    CHECK_FALSE(contains(out.text, "secure=yes"));
}

TEST_CASE("handler: an answer given later from another thread reaches the client") {
    running_server server(tls_listener());
    auto out = run(server.curl("'" + server.url("/later") + "' '" + server.url("/later") + "'"));
    CHECK(contains(out.text, "answered later [200 1]"));
    CHECK(contains(out.text, "answered later [200 0]"));
}

TEST_CASE("handler: an exception becomes 500 with an OperationOutcome, and the server goes on") {
    running_server server(tls_listener());
    auto out = run(server.curl("'" + server.url("/throw") + "' '" + server.url("/after") + "'"));
    CHECK(contains(out.text, "\"code\":\"exception\""));
    CHECK(contains(out.text, "[500 1]"));
    CHECK_FALSE(contains(out.text, "a bug in the handler")); // the client is not told the internals
    CHECK(contains(out.text, "GET /after ods= secure=yes body=0 [200 0]"));
}

TEST_CASE("handler: an answer that cannot be written closes the connection unanswered, and frees its slot") {
    // The session's own exception (Beast cannot hold a header field of 64 KiB) ends the session as
    // any other end does: nothing half-written reaches the client, and the connection is freed.
    net::limits limits;
    limits.max_connections = 1;
    running_server server(tls_listener(), limits);
    for (int i = 0; i < 2; ++i) {
        CAPTURE(i);
        auto out = run(server.curl("-i '" + server.url("/unwritable") + "'"));
        CHECK(out.exit_status != 0);
        CHECK_FALSE(contains(out.text, "HTTP/"));
        CHECK(contains(out.text, "[000 1]")); // connected, and no response at all
    }
    CHECK(contains(run(server.curl("'" + server.url("/Patient") + "'")).text,
                   "GET /Patient ods= secure=yes body=0 [200 1]"));
}

TEST_CASE("plain: served on a loopback address, refused elsewhere") {
    net::listener plain;
    plain.plain = true;
    plain.port = 0;
    plain.handle = echo;
    {
        running_server server(plain);
        auto out = run(server.curl("'http://127.0.0.1:" + server.port() + "/Patient'"));
        CHECK(contains(out.text, "GET /Patient ods= secure=no body=0 [200 1]"));
    }
    plain.address = "0.0.0.0";
    std::vector<net::listener> listeners{plain};
    CHECK_THROWS_WITH_AS(net::server(listeners, {}, 1), "--plain is only allowed on a loopback address",
                         std::runtime_error);
}

TEST_CASE("is_loopback") {
    CHECK(net::is_loopback("127.0.0.1"));
    CHECK(net::is_loopback("127.10.0.1"));
    CHECK(net::is_loopback("::1"));
    CHECK(net::is_loopback("localhost"));
    CHECK(net::is_loopback("::ffff:127.0.0.1"));
    CHECK_FALSE(net::is_loopback("0.0.0.0"));
    CHECK_FALSE(net::is_loopback("::"));
    CHECK_FALSE(net::is_loopback("10.0.0.1"));
    CHECK_FALSE(net::is_loopback("128.0.0.1"));
    CHECK_FALSE(net::is_loopback("localhost.example.org"));
    CHECK_FALSE(net::is_loopback(""));
}

TEST_CASE("server: a clear error when a port is taken or a certificate is missing") {
    running_server first(tls_listener());
    auto taken = tls_listener();
    taken.port = static_cast<std::uint16_t>(std::stoi(first.port()));
    std::vector<net::listener> listeners{taken};
    CHECK_THROWS_WITH_AS(net::server(listeners, {}, 1), doctest::Contains("cannot listen on 127.0.0.1:"),
                         std::runtime_error);

    auto missing = tls_listener();
    missing.tls.certificate_file = pki().file("no-such.crt");
    listeners = {missing};
    CHECK_THROWS_WITH_AS(net::server(listeners, {}, 1), doctest::Contains("no-such.crt"), std::runtime_error);
}

TEST_CASE("stop: run() returns promptly, closing idle connections") {
    running_server server(tls_listener());
    // An idle kept-alive connection must not hold the server up.
    FILE* idle = ::popen(server.s_client("printf 'GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; sleep 2").c_str(), "r");
    REQUIRE(idle != nullptr);
    std::this_thread::sleep_for(500ms);
    CHECK(server.stop() < 2s);
    ::pclose(idle);
}

TEST_CASE("stop: a request in hand is finished before run() returns") {
    running_server server(tls_listener());
    FILE* client = ::popen(server.curl("'" + server.url("/slow") + "'").c_str(), "r");
    REQUIRE(client != nullptr);
    std::this_thread::sleep_for(300ms); // the request is with the handler, which answers at 700 ms
    const auto took = server.stop();
    std::string text;
    char chunk[1024];
    while (std::size_t n = std::fread(chunk, 1, sizeof chunk, client))
        text.append(chunk, n);
    ::pclose(client);
    CHECK(contains(text, "answered later [200 1]"));
    CHECK(took < 3s);
}
