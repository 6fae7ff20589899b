// Fuzzes how a session reads requests (gateway/net/session.cpp and request_parser.cpp): the input is
// what a client sends on one connection (request lines, headers, bodies framed by Content-Length or
// chunked with extensions and trailers, pipelined requests), written over a real loopback TCP
// connection to a real session started by start_session, as the server's acceptor starts one. The
// session is a plain one: TLS adds only the handshake under the same request loop. The limits are
// the real limit logic with smaller values, so that short inputs reach and pass every one of them.
//
// The first byte chooses how the rest is written: in pieces of 2^(byte % 17) bytes (or more, so
// that there are at most 64), so that lines, chunk-size lines and trailers arrive split across
// reads; then the client half-closes and reads until the server closes. Checked for every input (a
// failed check traps, which libFuzzer reports):
//   1. no exception escapes the session (io_context::run_one would rethrow it, and libFuzzer
//      reports an uncaught exception);
//   2. the session ends and gives back its connection slot and its share of bodies_bytes, without
//      waiting for a timeout (a wait would be a hang, which libFuzzer's -timeout reports);
//   3. the heap never holds more than the limits allow (heap_budget) while the session runs;
//   4. what the client gets back is whole HTTP responses: one 200 for each request the handler was
//      given, in order, then at most one refusal (an OperationOutcome with Connection: close) and
//      nothing after it; never a half-written response;
//   5. what reaches the handler is within the limits: no body over body_bytes, no header section
//      over header_bytes, no Transfer-Encoding but chunked alone.
#include "net/session.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <sanitizer/allocator_interface.h>

#include <algorithm>
#include <csignal>
#include <pthread.h>
#include <signal.h>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace net = caregate::net;
namespace http = caregate::http;
namespace asio = boost::asio;
namespace beast_http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

/// The server's limits, scaled down from the defaults so that inputs of a few KiB pass each.
net::limits fuzz_limits() {
    net::limits limits;
    limits.header_bytes = 512;
    limits.body_bytes = 2048;
    limits.bodies_bytes = 4096;
    limits.chunk_extension_bytes = 64;
    limits.trailer_bytes = 256;
    // The timeouts stay as they are: the client half-closes once it has written everything, so a
    // session still waiting after that is a hang, for libFuzzer's -timeout to report.
    return limits;
}

/// The most the heap may grow by while one session runs (check 3), from the limits:
///  - the request's header fields: a field line of 4 bytes ("a:" CRLF) makes a header_field of 64
///    bytes (two std::strings, short enough to hold their text inline) in a vector that may have
///    doubled, a longer one its text once more: at most 33 bytes for each byte of header;
///  - its body, in a string that may have doubled;
///  - the read buffer: what waits unparsed (the header, or a chunk-size line, or a trailer section,
///    within their bounds) and one read on top of it;
///  - 16 KiB for what every session holds whatever it reads (measured: under 8 KiB beside the read
///    buffer): its coroutine frames, the socket's state, the answer and its serialisation.
/// Each read is at most 16 KiB (session.cpp's read_chunk); an input of 64 KiB (run.sh's -max_len)
/// held unbounded would pass the budget.
std::size_t heap_budget(const net::limits& limits) {
    constexpr std::size_t read_chunk = 16 * 1024;
    constexpr std::size_t chunk_size_line = 16 + 2; // hex digits and CRLF, beside the extension
    const std::size_t unparsed =
        std::max(limits.header_bytes, chunk_size_line + limits.chunk_extension_bytes + limits.trailer_bytes);
    return 33 * limits.header_bytes + 2 * limits.body_bytes + unparsed + read_chunk + 16 * 1024;
}

/// The most writes an input is sent in: more would spend the fuzzer's time on system calls.
constexpr std::size_t max_pieces = 64;

struct handled_request {
    bool head = false;
};

/// Runs `f` with SIGALRM blocked in this thread: libFuzzer's -timeout timer raises it every second,
/// and a blocking connect or accept it interrupts fails with EINTR, which Asio throws (a harness
/// failure, not the session's). An alarm that comes meanwhile is handled once `f` returns.
template <class F>
auto without_alarm(F&& f) {
    sigset_t alarm, before;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, &before);
    struct restore {
        sigset_t mask;
        ~restore() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
    } restored{before};
    return f();
}

/// One server, client and io_context for the whole run; one connection per input.
struct harness {
    asio::io_context io{1};
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
    net::limits limits = fuzz_limits();
    caregate::net::detail::server_state server{limits};
    caregate::net::detail::listener_state listener{server, [this](http::request request, http::responder respond) {
                                                        answer(std::move(request), std::move(respond));
                                                    },
                                                    nullptr}; // plain: no TLS
    const std::size_t budget = heap_budget(limits);

    // Per input.
    std::vector<handled_request> handled;
    std::size_t heap_before = 0;
    std::string received;

    harness() { std::signal(SIGPIPE, SIG_IGN); }

    void check_heap() {
        const std::size_t now = __sanitizer_get_current_allocated_bytes();
        // What the client and this harness hold is not the session's.
        const std::size_t client_side = received.capacity() + handled.capacity() * sizeof(handled_request);
        if (now > heap_before + client_side && now - heap_before - client_side > budget)
            __builtin_trap(); // check 3
    }

    void answer(http::request request, http::responder respond) {
        check_heap();
        // Check 5.
        std::size_t header_size = request.method.size() + request.target.size();
        unsigned transfer_encodings = 0;
        for (const auto& field : request.headers) {
            header_size += field.name.size() + field.value.size();
            if (boost::beast::iequals(field.name, "Transfer-Encoding")) {
                ++transfer_encodings;
                std::string_view value = field.value;
                while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
                    value.remove_prefix(1);
                while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
                    value.remove_suffix(1);
                if (!boost::beast::iequals(value, "chunked"))
                    __builtin_trap();
            }
        }
        if (request.body.size() > limits.body_bytes || header_size > limits.header_bytes || transfer_encodings > 1)
            __builtin_trap();
        handled.push_back({request.method == "HEAD"});
        http::response response;
        response.set("Content-Type", "text/plain");
        response.body = "answer " + std::to_string(handled.size());
        respond(std::move(response));
    }

    /// Check 4, on everything the client received.
    void check_responses() const {
        std::string_view rest = received;
        std::size_t answered = 0;
        bool refused = false;
        while (!rest.empty()) {
            if (refused)
                __builtin_trap(); // bytes after a refusal
            beast_http::response_parser<beast_http::string_body> parser;
            parser.eager(true);
            parser.header_limit(64 * 1024);
            parser.body_limit(1024 * 1024);
            if (answered < handled.size() && handled[answered].head)
                parser.skip(true);
            error_code ec;
            const std::size_t used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
            if (ec || !parser.is_done())
                __builtin_trap(); // a response cut short, or not HTTP
            rest.remove_prefix(used);
            const auto& response = parser.get();
            const unsigned status = response.result_int();
            if (status == 100)
                continue; // the interim answer to Expect: 100-continue
            if (status == 200 && answered < handled.size()) {
                ++answered;
                if (!handled[answered - 1].head && response.body() != "answer " + std::to_string(answered))
                    __builtin_trap(); // out of order, or another request's answer
                continue;
            }
            // Not one of the handler's answers: it must be the session's refusal, and the last thing sent.
            if (status < 400 || response.keep_alive() ||
                response.body().find("\"resourceType\":\"OperationOutcome\"") == std::string::npos)
                __builtin_trap();
            refused = true;
        }
        if (answered != handled.size())
            __builtin_trap(); // a request the handler answered whose answer never came
    }

    void run(const std::uint8_t* data, std::size_t size) {
        handled.clear();
        handled.shrink_to_fit();
        received.clear();
        received.shrink_to_fit();
        io.restart();
        heap_before = __sanitizer_get_current_allocated_bytes();

        tcp::socket client(io);
        without_alarm([&] { client.connect(acceptor.local_endpoint()); });
        client.set_option(tcp::no_delay(true));
        // On its own strand, as the server's acceptor gives each connection (start_session needs one).
        tcp::socket accepted =
            without_alarm([&] { return acceptor.accept(asio::any_io_executor(asio::make_strand(io))); });
        caregate::net::detail::start_session(std::move(accepted), listener);

        // At most max_pieces writes, however long the input: small pieces are for short inputs.
        const std::size_t piece =
            std::max(std::size_t{1} << (size == 0 ? 16 : data[0] % 17), (size + max_pieces - 1) / max_pieces);
        const std::string_view sent = size == 0 ? std::string_view{}
                                                : std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1);
        bool client_done = false;
        write_from(client, sent, piece);
        read_all(client, client_done);

        while (!(client_done && listener.open_connections.load() == 0)) {
            if (io.run_one() == 0)
                __builtin_trap(); // nothing left to run, yet the session or the client waits: check 2
            check_heap();
        }
        if (listener.body_bytes_held.load() != 0)
            __builtin_trap(); // check 2
        check_responses();
        error_code ignored;
        client.close(ignored);
        // Whatever the closed sockets left (cancelled handlers) runs before the next input.
        io.poll();
    }

    void write_from(tcp::socket& client, std::string_view rest, std::size_t piece) {
        if (rest.empty()) {
            error_code ignored;
            client.shutdown(tcp::socket::shutdown_send, ignored);
            return;
        }
        const auto now = rest.substr(0, piece);
        asio::async_write(client, asio::buffer(now.data(), now.size()),
                          [this, &client, rest, piece](error_code ec, std::size_t written) {
                              // The server may close before it has read everything (after a
                              // refusal, or Connection: close): the rest is not sent.
                              write_from(client, ec ? std::string_view{} : rest.substr(written), piece);
                          });
    }

    void read_all(tcp::socket& client, bool& done) {
        const std::size_t at = received.size();
        received.resize(at + 16 * 1024);
        client.async_read_some(asio::buffer(received.data() + at, 16 * 1024),
                               [this, &client, &done, at](error_code ec, std::size_t n) {
                                   received.resize(at + n);
                                   if (ec) {
                                       done = true; // EOF, or reset after the server closed
                                       return;
                                   }
                                   read_all(client, done);
                               });
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static harness h;
    h.run(data, size);
    return 0;
}
