// Tests of how gateway/net reads a request's framing (RFC 9112 sections 6 and 7): Transfer-Encoding,
// chunk extensions and trailer sections, with their bounds, sent byte for byte over a real TLS
// connection (tests/gateway/net_fixture.hpp). What they prove: a refusal is a 400 OperationOutcome and
// then the close, never a half-written answer; nothing a client frames reaches the application as a
// header or as a second request; no framing a client sends holds memory or a connection slot.
#include "net_fixture.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <string>

using namespace caregate::testing;

namespace {

/// A shell command printing `bytes` exactly (from a file: no quoting to get wrong).
std::string feed(const std::string& name, const std::string& bytes) {
    const std::string file = pki().file(name);
    std::ofstream(file, std::ios::binary) << bytes;
    return "cat '" + file + "'";
}

/// A chunked POST of `chunks` (the chunked body as sent, after the header).
std::string chunked_post(const std::string& target, const std::string& chunks) {
    return "POST " + target + " HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks;
}

void check_refused_with_400(const std::string& out, const std::string& diagnostics) {
    CHECK(contains(out, "HTTP/1.1 400 Bad Request"));
    CHECK(contains(out, "\"resourceType\":\"OperationOutcome\""));
    CHECK(contains(out, diagnostics));
    CHECK(contains(out, "Connection: close"));
}

} // namespace

TEST_CASE("framing: a Transfer-Encoding other than exactly chunked gets 400, and its body is never read as a request") {
    // Behind a proxy that reads such a header otherwise, the body would be a second request of the
    // attacker's making (request smuggling), so it is refused, and the connection closed unread.
    net::limits limits;
    limits.idle_timeout = 1s;
    running_server server(tls_listener(), limits);
    SUBCASE("a coding other than chunked, a list, a parameter, none, two fields") {
    const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (const std::string transfer_encoding :
         {"Transfer-Encoding: chunked, identity", "Transfer-Encoding: xchunked", "Transfer-Encoding: identity",
          "Transfer-Encoding: gzip, chunked", "Transfer-Encoding:", "Transfer-Encoding: chunked;q=1",
          "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked"}) {
        CAPTURE(transfer_encoding);
        const auto out = run(server.s_client(feed("te.http", "POST /first HTTP/1.1\r\nHost: localhost\r\n" +
                                                                 transfer_encoding + "\r\n\r\n" + smuggled)))
                             .text;
        check_refused_with_400(out, "Transfer-Encoding");
        CHECK_FALSE(contains(out, "/first"));
        CHECK_FALSE(contains(out, "/smuggled"));
    }
    }

    SUBCASE("chunked in an HTTP/1.0 request, which has no chunked coding") {
        const auto out = run(server.s_client(feed("te10.http", "POST /first HTTP/1.0\r\nHost: localhost\r\n"
                                                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")))
                             .text;
        check_refused_with_400(out, "Transfer-Encoding");
        CHECK_FALSE(contains(out, "/first"));
    }
    SUBCASE("the control: chunked, in any case, is read as chunked") {
        const auto out = run(server.s_client(feed("te-ok.http", "POST /first HTTP/1.1\r\nHost: localhost\r\n"
                                                                "Transfer-Encoding: Chunked\r\n\r\n"
                                                                "5\r\nhello\r\n0\r\n\r\n")))
                             .text;
        CHECK(contains(out, "HTTP/1.1 200 OK"));
        CHECK(contains(out, "POST /first ods= secure=yes body=5"));
    }
}

TEST_CASE("framing: trailer fields never act as headers") {
    // A trailer arrives after the body, outside what a proxy in front checked: an Authorization or
    // X-Act-For there must not authorise anything. Trailers are read, bounded and dropped.
    net::limits limits;
    limits.idle_timeout = 1s;
    running_server server(tls_listener(), limits);
    const auto out = run(server.s_client(feed(
                             "trailers.http",
                             chunked_post("/headers", "5\r\nhello\r\n0\r\nAuthorization: Bearer smuggled\r\n"
                                                      "X-Act-For: 9000000009\r\nConnection: close\r\n\r\n"))))
                         .text;
    CHECK(contains(out, "HTTP/1.1 200 OK"));
    CHECK(contains(out, "header Transfer-Encoding: chunked"));
    CHECK(contains(out, "POST /headers ods= secure=yes body=5"));
    CHECK_FALSE(contains(out, "Authorization"));
    CHECK_FALSE(contains(out, "smuggled"));
    CHECK_FALSE(contains(out, "X-Act-For"));
    // Nor does a Connection: close there close the connection: the header's keep-alive stands.
    CHECK_FALSE(contains(out, "Connection: close"));
}

TEST_CASE("framing: a trailer section over trailer_bytes gets 400, and the connection and its slot are freed") {
    net::limits limits;
    limits.max_connections = 2;
    limits.idle_timeout = 1s;
    running_server server(tls_listener(), limits);
    const std::string large_trailer = chunked_post("/Bundle", "5\r\nhello\r\n0\r\nX-Padding: " +
                                                                  std::string(70'000, 'a') + "\r\n\r\n");
    // Three times the connection limit: a slot kept by any of them would refuse the last request.
    for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        const auto out = run(server.s_client(feed("large-trailer.http", large_trailer), 5)).text;
        check_refused_with_400(out, "trailer section is longer than the limit of " +
                                        std::to_string(limits.trailer_bytes) + " bytes");
        CHECK_FALSE(contains(out, "POST /Bundle"));
    }
    CHECK(contains(run(server.curl("'" + server.url("/Patient") + "'")).text,
                   "GET /Patient ods= secure=yes body=0 [200 1]"));

    SUBCASE("a trailer within the bound is read and the request served") {
        const auto out = run(server.s_client(feed("small-trailer.http",
                                                  chunked_post("/Bundle", "5\r\nhello\r\n0\r\nX-Padding: " +
                                                                              std::string(1000, 'a') + "\r\n\r\n")),
                                             5))
                             .text;
        CHECK(contains(out, "HTTP/1.1 200 OK"));
        CHECK(contains(out, "POST /Bundle ods= secure=yes body=5"));
    }
    SUBCASE("a trailer sent slowly is bounded as it arrives, not once it ends") {
        // No end to the trailer section: refused once more than the bound is buffered, not at read_timeout.
        const auto out =
            run(server.s_client(feed("endless-trailer.http", chunked_post("/Bundle", "5\r\nhello\r\n0\r\nX-Padding: " +
                                                                                       std::string(70'000, 'a'))),
                                5))
                .text;
        check_refused_with_400(out, "trailer section is longer than the limit");
    }
}

TEST_CASE("framing: a header field over 64 KiB, within a larger header_bytes, is served") {
    // Beast's own header container cannot hold a field value of 64 KiB or more and throws; an
    // exception in a session once left the connection open and its slot taken for good.
    net::limits limits;
    limits.header_bytes = 128 * 1024;
    limits.max_connections = 1;
    running_server server(tls_listener(), limits);
    for (int i = 0; i < 2; ++i) {
        CAPTURE(i);
        const auto out = run(server.s_client(feed("large-header.http", "GET /headers HTTP/1.1\r\nHost: localhost\r\n"
                                                                       "X-Large: " + std::string(70'000, 'a') +
                                                                       "\r\nConnection: close\r\n\r\n"),
                                             5))
                             .text;
        CHECK(contains(out, "HTTP/1.1 200 OK"));
        CHECK(contains(out, "header X-Large: aaaa"));
    }
}

TEST_CASE("framing: a chunk extension over chunk_extension_bytes gets 400 as it arrives") {
    // Beast buffers a chunk's size line until its end; an endless extension once grew the
    // connection's buffer without bound, past every body limit.
    net::limits limits;
    limits.idle_timeout = 1s;
    running_server server(tls_listener(), limits);

    SUBCASE("an extension without end (1 MiB of it, then silence)") {
        const auto out = run(server.s_client(feed("endless-extension.http",
                                                  chunked_post("/Bundle", "1;" + std::string(1 << 20, 'a'))),
                                             5))
                             .text;
        check_refused_with_400(out, "chunk extension is longer than the limit of " +
                                        std::to_string(limits.chunk_extension_bytes) + " bytes");
        CHECK_FALSE(contains(out, "POST /Bundle"));
    }
    SUBCASE("an extension with its end, just over the limit") {
        const auto out =
            run(server.s_client(feed("long-extension.http",
                                     chunked_post("/Bundle", "5;x=" + std::string(limits.chunk_extension_bytes, 'a') +
                                                                 "\r\nhello\r\n0\r\n\r\n")),
                                5))
                .text;
        check_refused_with_400(out, "chunk extension is longer than the limit");
    }
    SUBCASE("on the last chunk") {
        const auto out =
            run(server.s_client(feed("last-extension.http",
                                     chunked_post("/Bundle", "5\r\nhello\r\n0;x=" +
                                                                 std::string(limits.chunk_extension_bytes, 'a') +
                                                                 "\r\n\r\n")),
                                5))
                .text;
        check_refused_with_400(out, "chunk extension is longer than the limit");
    }
    SUBCASE("a chunk size of endless leading zeros is a chunk-size line without end too") {
        const auto out = run(server.s_client(feed("zeros.http", chunked_post("/Bundle", std::string(1 << 20, '0'))),
                                             5))
                             .text;
        check_refused_with_400(out, "chunk extension is longer than the limit");
    }
    SUBCASE("the control: extensions within the limit are read and ignored") {
        const auto out = run(server.s_client(feed("extensions.http",
                                                  chunked_post("/Bundle", "5;name=value;other=\"quoted\"\r\nhello\r\n"
                                                                          "0;last\r\n\r\n")),
                                             5))
                             .text;
        CHECK(contains(out, "HTTP/1.1 200 OK"));
        CHECK(contains(out, "POST /Bundle ods= secure=yes body=5"));
    }
}
