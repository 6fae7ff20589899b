// One connection from accept to close: the TLS handshake, the HTTP/1.1 keep-alive loop with its
// limits and timeouts, the bridge that brings the application's answer (given on any thread) back
// into the session, and the close. Modelled on Boost.Beast's example/advanced/server-flex-awaitable:
// TLS and plain connections share one template. Knows nothing of FHIR beyond the error values.
//
// Invariants:
//   1. A session ends, and frees its socket and its max_connections slot, however it ends: a
//      refusal, a timeout, the peer leaving, or an exception. Only the session's coroutine owns it;
//      the watchdog timer holds it weakly, so no cycle keeps it when the coroutine is gone.
//   2. No code that parses what the client sent runs inside an Asio completion handler, where an
//      exception would escape to the I/O thread and leave the coroutine hanging: the session reads
//      raw bytes and parses them itself (request_parser.hpp, which also keeps the framing rules).
//   3. Every byte held for a request's body, parsed or still buffered, counts against
//      limits.bodies_bytes; what waits unparsed between them is bounded by request_parser.
//   4. Every request gets one answer, or the connection closes; after an error answer it closes.
//   5. After an error answer the connection lingers before it closes (close_socket): it reads and
//      discards what the client still sends, parsing none of it, into the session's own read
//      buffer, for at most limits.linger_time and limits.linger_bytes, holding no share of
//      limits.bodies_bytes. Only its connection slot is held, and only that long.
#include "net/session.hpp"

#include "fhir_model/error.hpp"
#include "net/request_parser.hpp"
#include "net/tls.hpp"
#include "http/error_response.hpp"
#include "http/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <fcntl.h>

#include <cassert>
#include <chrono>
#include <cstdio>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace caregate::net::detail {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock = std::chrono::steady_clock;
using tls_stream = beast::ssl_stream<tcp::socket>;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// How long sending TLS close_notify may take.
constexpr auto close_timeout = std::chrono::seconds(2);
/// Once a deadline has passed, how often the watchdog cancels again: a composed operation (an HTTP
/// read is many socket reads) may start its next read after the first cancellation has landed.
constexpr auto cancel_retry = std::chrono::milliseconds(50);
/// The most one read asks for: a TLS record's worth. Also the most a read adds to the buffer before
/// its bytes are parsed and checked against the limits.
constexpr std::size_t read_chunk = 16 * 1024;

/// What a connection is doing, which decides what its deadline means.
enum class phase {
    handshake, ///< TLS handshake, limited by handshake_timeout
    idle,      ///< waiting for the first byte of a request, limited by idle_timeout; closed silently
    reading,   ///< receiving a request, limited by read_timeout; 408 when it passes
    handling,  ///< the application has the request; no deadline here (stop() has its grace period)
    writing,   ///< sending the response, limited by read_timeout: a client that does not read is dropped
    closing,   ///< sending close_notify, limited by close_timeout
    lingering, ///< after an error answer, discarding what the client still sends, limited by linger_time
};

/// How a connection's request loop ended, which decides how it is closed.
enum class ending {
    peer_gone,   ///< the peer closed or the connection broke: close the socket, nothing more
    done,        ///< we close after a complete exchange (Connection: close, idle timeout, stopping)
    after_error, ///< we close after an error response, while the client may still be sending
};

/// Errors that mean the peer has gone, which is how most connections end: not worth a log line.
bool is_peer_gone(error_code ec) {
    return ec == beast::http::error::end_of_stream     // closed cleanly between requests
           || ec == beast::http::error::partial_message // closed in the middle of a request
           || ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe
           // The peer closed TCP without a TLS close_notify. Many clients do; it is harmless for
           // HTTP, which frames every message by its length, so no cut message passes as whole.
           || ec == asio::ssl::error::stream_truncated;
}

bool is_http_syntax_error(error_code ec) {
    static const auto& http_errors = beast::http::make_error_code(beast::http::error::bad_method).category();
    return ec.category() == http_errors;
}

/// Why a request could not be read, as the error the client is told; none when no response is
/// possible or useful (the peer has gone).
std::optional<fhir::error> read_failure(error_code ec, bool timed_out, const net::limits& limits) {
    using fhir::category;
    if (timed_out)
        return fhir::error::make(category::timeout, "timeout",
                                 "The request was not received in full within " +
                                     std::to_string(limits.read_timeout.count()) + " seconds.");
    if (ec == beast::http::error::body_limit)
        return fhir::error::make(category::too_large, "too-long",
                                 "The request body is larger than the limit of " +
                                     std::to_string(limits.body_bytes) + " bytes (" +
                                     std::to_string(limits.binary_body_bytes) +
                                     " for a Binary's raw bytes).");
    if (ec == beast::http::error::header_limit)
        return fhir::error::make(category::headers_too_large, "too-long",
                                 "The request line and headers are larger than the limit of " +
                                     std::to_string(limits.header_bytes) + " bytes.");
    if (ec == framing_error::transfer_encoding_not_chunked)
        return fhir::error::make(category::unsupported, "not-supported",
                                 "The request's Transfer-Encoding is not supported: a body is framed by "
                                 "Content-Length, or by `Transfer-Encoding: chunked` alone, in HTTP/1.1.");
    if (ec == framing_error::chunk_extension_too_long)
        return fhir::error::make(category::malformed, "too-long",
                                 "A chunk extension is longer than the limit of " +
                                     std::to_string(limits.chunk_extension_bytes) + " bytes.");
    if (ec == framing_error::trailer_too_long)
        return fhir::error::make(category::malformed, "too-long",
                                 "The trailer section is longer than the limit of " +
                                     std::to_string(limits.trailer_bytes) + " bytes.");
    if (is_peer_gone(ec) || !is_http_syntax_error(ec))
        return std::nullopt;
    return fhir::error::make(category::malformed, "structure",
                             "The request is not valid HTTP/1.1: " + ec.message() + ".");
}

http::response fault_response(std::string diagnostics) {
    return http::error_response(fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics)));
}

/// Logs what a bug threw, once, at the session boundary.
void log_exception(std::string_view where, const std::exception_ptr& failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        log_line(std::string(where) + ": " + e.what());
    } catch (...) {
        log_line(std::string(where) + ": an exception that is not a std::exception");
    }
}

// ---------------------------------------------------------------------------------------------------
// The connection: its deadline (one watchdog timer), its registration with the server, its identity.

} // namespace

/// What every session has, whatever its stream. Lives on the session's strand: every member function
/// but the constructor, the destructor and socket() runs there.
class connection : public std::enable_shared_from_this<connection> {
public:
    connection(listener_state& listener, const asio::any_io_executor& strand, bool secure)
        : listener_(listener), timer_(strand, clock::time_point::max()), secure_(secure) {
        // Counted here and uncounted in the destructor, so that a session that fails to start is
        // uncounted too. The acceptor checks the count before it makes a session.
        listener_.open_connections.fetch_add(1, std::memory_order_relaxed);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    virtual ~connection() {
        listener_.open_connections.fetch_sub(1, std::memory_order_relaxed);
        server_state& server = listener_.server;
        std::lock_guard lock(server.mutex);
        server.open_connections.erase(this);
        if (server.open_connections.empty())
            server.all_closed.notify_all();
    }

    /// The TCP socket under the stream.
    virtual tcp::socket& socket() noexcept = 0;

    listener_state& listener() const noexcept { return listener_; }
    const net::limits& limits() const noexcept { return listener_.server.limits; }
    bool stopping() const noexcept { return listener_.server.stopping.load(std::memory_order_relaxed); }
    bool secure() const noexcept { return secure_; }
    const std::string& client_ods() const noexcept { return client_ods_; }
    void set_client_ods(std::string ods) { client_ods_ = std::move(ods); }
    /// True when the current phase's deadline passed (or the server stopped an idle connection).
    bool timed_out() const noexcept { return timed_out_; }

    /// Registers with the server (so that stopping can reach it) and starts the watchdog.
    void open() {
        {
            std::lock_guard lock(listener_.server.mutex);
            listener_.server.open_connections.emplace(this, weak_from_this());
        }
        watch();
    }
    /// Stops the watchdog at once, rather than at its next wake-up.
    void finish() {
        finished_ = true;
        timer_.cancel();
    }

    /// Enters a phase with a deadline `limit` from now.
    void arm(phase next, clock::duration limit) {
        phase_ = next;
        timed_out_ = false;
        const auto now = clock::now();
        deadline_ = limit < clock::time_point::max() - now ? now + limit : clock::time_point::max();
        // Setting the expiry cancels the pending wait: the watchdog wakes and waits for the new time.
        // A later deadline needs no timer call: the watchdog finds it when it wakes.
        if (deadline_ < timer_.expiry())
            timer_.expires_at(deadline_);
    }
    /// Enters a phase without a deadline.
    void disarm(phase next) {
        phase_ = next;
        timed_out_ = false;
        deadline_ = clock::time_point::max();
    }

    /// The server is stopping: a connection between requests (or still shaking hands) closes now;
    /// one with a request in hand finishes it first (the request loop checks `stopping`).
    void close_if_idle() {
        if (phase_ == phase::idle || phase_ == phase::handshake) {
            deadline_ = clock::now();
            timer_.expires_at(deadline_);
        }
    }

private:
    // Weakly: the session's coroutine alone keeps the connection (invariant 1). A coroutine that
    // never completes (its frame destroyed after an exception escaped a completion handler) then
    // still frees it; a watchdog holding it strongly would re-arm, and keep it, for ever.
    void watch() {
        timer_.async_wait([weak = weak_from_this()](error_code) {
            if (auto self = weak.lock())
                self->on_alarm();
        });
    }

    // Cancelling (not closing) the socket lets the request loop still answer 408 after a read times
    // out. Runs on the strand, so it never races the session's own steps.
    void on_alarm() {
        if (finished_)
            return;
        const auto now = clock::now();
        if (now >= deadline_) {
            timed_out_ = true;
            error_code ignored;
            socket().cancel(ignored);
            timer_.expires_at(now + cancel_retry);
        } else {
            timer_.expires_at(deadline_);
        }
        watch();
    }

    listener_state& listener_;
    asio::steady_timer timer_;
    clock::time_point deadline_ = clock::time_point::max();
    phase phase_ = phase::handshake;
    bool timed_out_ = false;
    bool finished_ = false;
    const bool secure_;
    std::string client_ods_;
};

namespace {

/// A connection over a particular stream: tcp::socket (plain) or beast::ssl_stream (TLS).
template <class Stream>
class session final : public connection {
public:
    static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

    template <class... StreamArgs>
    session(listener_state& listener, tcp::socket socket, StreamArgs&&... stream_args)
        : connection(listener, socket.get_executor(), is_tls),
          stream(std::move(socket), std::forward<StreamArgs>(stream_args)...) {}

    tcp::socket& socket() noexcept override { return beast::get_lowest_layer(stream); }

    Stream stream;
    /// Bytes read but not yet parsed; kept across requests, as a client may pipeline.
    beast::flat_buffer buffer;
};

// ---------------------------------------------------------------------------------------------------
// The bridge from the application's responder to the session.

/// One request's answer on its way back. The application may call the responder on any thread (a
/// write answers from the storage writer thread once its commit is durable); complete() posts the
/// response to the session's strand, where the waiting coroutine resumes. Shared by every copy of the
/// responder; the first answer wins.
template <class Completion>
class pending_response {
public:
    pending_response(Completion completion, std::shared_ptr<lifeline> alive)
        : completion_(std::move(completion)), alive_(std::move(alive)) {}
    pending_response(const pending_response&) = delete;
    pending_response& operator=(const pending_response&) = delete;

    ~pending_response() {
        // The application dropped every copy of the responder without answering: a bug, but the
        // client still gets an answer, and the session is not left waiting for ever.
        if (!answered_.load(std::memory_order_acquire)) {
            log_line("a handler dropped its responder without answering");
            complete(fault_response("The server did not produce a response."));
        }
    }

    void complete(http::response response) {
        if (answered_.exchange(true, std::memory_order_acq_rel))
            return; // a second answer is a bug in the handler; the first one has gone out
        const std::shared_lock lock(alive_->mutex); // released after `strand` is destroyed
        if (!alive_->open) {
            // The server has gone, having abandoned this session after its grace period. The
            // completion holds the session's coroutine, which refers to the destroyed io_context:
            // it can be neither resumed nor destroyed, so it is left (the process is ending).
            static_cast<void>(new Completion(std::move(completion_)));
            return;
        }
        auto strand = asio::get_associated_executor(completion_);
        asio::post(strand, [completion = std::move(completion_), response = std::move(response)]() mutable {
            std::move(completion)(std::move(response));
        });
    }

private:
    Completion completion_;
    std::shared_ptr<lifeline> alive_;
    std::atomic<bool> answered_{false};
};

/// Calls the application's handler and waits, without blocking a thread, for its response.
/// Exceptions (bugs) become a 500 OperationOutcome here, and are logged.
asio::awaitable<http::response> call_handler(const http::handler& handle, http::request request,
                                             const std::shared_ptr<lifeline>& alive) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(http::response)>(
        [&handle, &alive](auto completion, http::request request) {
            auto pending = std::make_shared<pending_response<decltype(completion)>>(std::move(completion), alive);
            try {
                handle(std::move(request),
                       [pending](http::response response) { pending->complete(std::move(response)); });
            } catch (...) {
                log_exception("a handler threw", std::current_exception());
                pending->complete(fault_response("An internal error occurred; it has been logged."));
            }
        },
        asio::use_awaitable, std::move(request));
}

// ---------------------------------------------------------------------------------------------------
// From the rest layer's response to Beast's message.

/// The wire form of a response. This layer owns framing and the connection: the application's
/// Content-Length, Transfer-Encoding and Connection headers are replaced (though its
/// `Connection: close` is honoured by clearing `keep_alive`).
beast::http::response<beast::http::string_body> to_message(http::response&& answer, unsigned version, bool head_request,
                                             bool& keep_alive) {
    if (answer.status < 200 || answer.status > 599) {
        log_line("a handler answered with status " + std::to_string(answer.status));
        answer = fault_response("The server produced an invalid response.");
    }
    beast::http::response<beast::http::string_body> message;
    message.version(version);
    message.result(answer.status);
    for (auto& field : answer.headers) {
        if (beast::iequals(field.name, "Content-Length") || beast::iequals(field.name, "Transfer-Encoding"))
            continue;
        if (beast::iequals(field.name, "Connection")) {
            if (beast::iequals(field.value, "close"))
                keep_alive = false;
            continue;
        }
        message.insert(field.name, field.value);
    }
    const auto status = message.result();
    if (head_request) {
        // HEAD: the headers a GET would have, no body.
        message.content_length(answer.body.size());
    } else if (status != beast::http::status::no_content && status != beast::http::status::not_modified) {
        message.body() = std::move(answer.body);
        message.prepare_payload();
    }
    message.keep_alive(keep_alive);
    return message;
}

// ---------------------------------------------------------------------------------------------------
// The request loop and the close.

template <class Stream>
asio::awaitable<void> write_error(session<Stream>& s, const fhir::error& failure) {
    bool keep_alive = false;
    auto message = to_message(http::error_response(failure), 11, false, keep_alive);
    s.arm(phase::writing, s.limits().read_timeout);
    // An error here leaves nothing more to do: the connection closes either way.
    co_await beast::http::async_write(s.stream, message, use_tuple);
}

/// One request's share of listener_state::body_bytes_held, given back when it is destroyed (after
/// the response is written: the handler holds the body, and what it made of it, until then).
class body_share {
public:
    explicit body_share(listener_state& listener) noexcept : listener_(listener) {}
    body_share(const body_share&) = delete;
    body_share& operator=(const body_share&) = delete;
    ~body_share() {
        if (held_ != 0)
            listener_.body_bytes_held.fetch_sub(held_, std::memory_order_relaxed);
    }

    /// Takes what more is needed for the share to be `total` bytes; false, taking nothing, when that
    /// would take the listener's total over limits.bodies_bytes.
    bool grow_to(std::size_t total) noexcept {
        if (total <= held_)
            return true;
        const std::size_t more = total - held_;
        const std::size_t limit = listener_.server.limits.bodies_bytes;
        std::size_t now = listener_.body_bytes_held.load(std::memory_order_relaxed);
        do {
            if (now > limit || more > limit - now)
                return false;
        } while (!listener_.body_bytes_held.compare_exchange_weak(now, now + more, std::memory_order_relaxed));
        held_ = total;
        return true;
    }

private:
    listener_state& listener_;
    std::size_t held_ = 0;
};

fhir::error too_many_bodies(const net::limits& limits) {
    return fhir::error::make(fhir::category::busy, "transient",
                             "The server is receiving as many request bodies as it holds at once (" +
                                 std::to_string(limits.bodies_bytes) + " bytes); retry shortly.");
}

/// One step of reading a request: hands the parser what is buffered and, when it needs more, checks
/// what it left against the bounds and reads once. Returns what ends the request, if anything: the
/// caller steps again until the part it waits for (header, body) is done. Parsing happens here, in
/// the coroutine, not in a completion handler (invariant 2).
template <class Stream>
asio::awaitable<error_code> read_step(session<Stream>& s, request_parser& parser) {
    error_code ec;
    if (s.buffer.size() != 0) {
        const std::size_t used = parser.put(s.buffer.data(), ec);
        s.buffer.consume(used);
        if (ec ? ec != beast::http::error::need_more : used != 0)
            co_return ec;
        const auto unparsed = s.buffer.data();
        if ((ec = parser.check_unparsed({static_cast<const char*>(unparsed.data()), unparsed.size()})))
            co_return ec;
    }
    auto [read_ec, received] = co_await s.stream.async_read_some(s.buffer.prepare(read_chunk), use_tuple);
    s.buffer.commit(received);
    if (read_ec != asio::error::eof)
        co_return read_ec;
    // The peer closed: between requests that is the end of the stream; within one, a cut message.
    if (!parser.got_some())
        co_return beast::http::error::end_of_stream;
    parser.put_eof(ec);
    co_return ec ? ec : beast::http::error::partial_message;
}

/// Reads requests and writes their responses, one at a time, until the connection should close.
template <class Stream>
asio::awaitable<ending> serve_requests(session<Stream>& s) {
    const net::limits& limits = s.limits();
    for (;;) {
        if (s.buffer.size() == 0) {
            // Between requests: wait for the first byte of the next, or close quietly.
            if (s.stopping())
                co_return ending::done;
            s.arm(phase::idle, limits.idle_timeout);
            auto [ec, received] = co_await s.stream.async_read_some(s.buffer.prepare(read_chunk), use_tuple);
            if (ec)
                co_return s.timed_out() ? ending::done : ending::peer_gone;
            s.buffer.commit(received);
        }

        s.arm(phase::reading, limits.read_timeout);
        request_parser parser(limits, s.listener().takes_binary_body);
        body_share share(s.listener());
        error_code ec;
        while (!ec && !parser.is_header_done())
            ec = co_await read_step(s, parser);
        if (!ec && !parser.is_done()) {
            // A body's bytes are counted against limits.bodies_bytes before it is read when its
            // length is declared (the client is refused before it sends it), else as it arrives.
            const auto declared = parser.content_length();
            if (declared && !share.grow_to(static_cast<std::size_t>(*declared))) {
                co_await write_error(s, too_many_bodies(limits));
                co_return ending::after_error;
            }
            // A client that asked may send the body only after "100 Continue" (curl does so above 1 MiB).
            if (parser.version() == 11 && parser.expects_continue()) {
                beast::http::response<beast::http::empty_body> go_on{beast::http::status::continue_, 11};
                auto [continue_ec, sent] = co_await beast::http::async_write(s.stream, go_on, use_tuple);
                if (continue_ec)
                    co_return ending::peer_gone;
            }
            parser.eager(true);
            while (!ec && !parser.is_done()) {
                ec = co_await read_step(s, parser);
                // Invariant 3: the body so far and every byte buffered behind it, each read adding at
                // most read_chunk before it is counted.
                if (!ec && !share.grow_to(std::max(static_cast<std::size_t>(declared.value_or(0)),
                                                   parser.body_size() + s.buffer.size()))) {
                    co_await write_error(s, too_many_bodies(limits));
                    co_return ending::after_error;
                }
            }
        }
        if (ec) {
            auto failure = read_failure(ec, s.timed_out(), limits);
            if (!failure)
                co_return ending::peer_gone;
            co_await write_error(s, *failure);
            co_return ending::after_error;
        }

        s.disarm(phase::handling);
        const unsigned version = parser.version();
        const bool head_request = parser.is_head();
        bool keep_alive = parser.header_keep_alive();
        http::request request = parser.release();
        request.client_ods = s.client_ods();
        request.secure = s.secure();
        http::response answer =
            co_await call_handler(s.listener().handle, std::move(request), s.listener().server.alive);

        keep_alive = keep_alive && !s.stopping();
        auto message = to_message(std::move(answer), version, head_request, keep_alive);
        s.arm(phase::writing, limits.read_timeout);
        auto [write_ec, written] = co_await beast::http::async_write(s.stream, message, use_tuple);
        if (write_ec)
            co_return ending::peer_gone;
        if (!keep_alive)
            co_return ending::done;
    }
}

/// Closes the TCP connection. After an error response the client may still be sending (the rest of
/// a body, which a client that does not wait for 100 Continue writes whole before it reads): closing
/// a socket with unread data makes the kernel send a reset, which fails the client's writes, or
/// destroys our response before the client has read it. So first half-close, then read and discard
/// until the client closes, or for limits.linger_time or linger_bytes, whichever ends first
/// (invariant 5). `sink` is where the discarded bytes go, over and over.
asio::awaitable<void> close_socket(connection& c, ending how, asio::mutable_buffer sink) {
    tcp::socket& socket = c.socket();
    error_code ignored;
    if (how == ending::after_error) {
        assert(sink.size() != 0); // an empty read would complete at once, for ever
        socket.shutdown(tcp::socket::shutdown_send, ignored);
        c.arm(phase::lingering, c.limits().linger_time);
        const std::size_t most = c.limits().linger_bytes;
        std::size_t discarded = 0;
        while (discarded < most) {
            auto [ec, received] = co_await socket.async_read_some(asio::buffer(sink, most - discarded), use_tuple);
            if (ec)
                break; // the client closed, the connection broke, or linger_time passed
            discarded += received;
        }
    }
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
}

/// The session's read buffer, emptied, as the lingering close's sink: lingering takes no memory the
/// session does not already hold. Nothing left in it is wanted once the connection is closing.
template <class Stream>
asio::mutable_buffer discard_space(session<Stream>& s) {
    s.buffer.clear();
    return s.buffer.prepare(read_chunk);
}

asio::awaitable<void> run_tls_session(std::shared_ptr<session<tls_stream>> s) {
    s->arm(phase::handshake, s->limits().handshake_timeout);
    auto [ec] = co_await s->stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
        // Failed handshakes are the client's business (no or untrusted certificate, TLS 1.1, plain
        // HTTP, scanners) and common: not logged. The client's TLS stack reports the reason.
        co_await close_socket(*s, ending::peer_gone, {});
        co_return;
    }
    s->set_client_ods(peer_ods_code(s->stream.native_handle()));

    const ending how = co_await serve_requests(*s);
    if (how != ending::peer_gone) {
        // close_notify tells the client that the connection ends here, not cut by an attacker. We do
        // not wait for the client's own close_notify: marking it received makes SSL_shutdown send
        // ours and return at once.
        s->arm(phase::closing, close_timeout);
        SSL_set_shutdown(s->stream.native_handle(), SSL_RECEIVED_SHUTDOWN);
        co_await s->stream.async_shutdown(use_tuple);
    }
    co_await close_socket(*s, how, discard_space(*s));
}

asio::awaitable<void> run_plain_session(std::shared_ptr<session<tcp::socket>> s) {
    const ending how = co_await serve_requests(*s);
    co_await close_socket(*s, how, discard_space(*s));
}

/// The completion of a session's coroutine: stops its watchdog, and logs a bug that escaped it
/// (the server goes on).
auto on_session_end(std::shared_ptr<connection> c) {
    return [c = std::move(c)](std::exception_ptr failure) {
        c->finish();
        if (failure)
            log_exception("a session failed", failure);
    };
}

} // namespace

void start_session(tcp::socket socket, listener_state& listener) {
    error_code ignored;
    // Each response goes out in one write; Nagle's algorithm would only hold its tail back.
    socket.set_option(tcp::no_delay(true), ignored);
    // Asio does not open sockets close-on-exec; a process started by this one (a backup tool, a
    // test's curl) would otherwise hold connections open after we close them.
    ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
    const auto strand = socket.get_executor();
    if (listener.tls) {
        auto s = std::make_shared<session<tls_stream>>(listener, std::move(socket), *listener.tls);
        s->open();
        asio::co_spawn(strand, run_tls_session(s), on_session_end(s));
    } else {
        auto s = std::make_shared<session<tcp::socket>>(listener, std::move(socket));
        s->open();
        asio::co_spawn(strand, run_plain_session(s), on_session_end(s));
    }
}

void close_idle_connections(server_state& server) {
    std::vector<std::shared_ptr<connection>> open;
    {
        std::lock_guard lock(server.mutex);
        open.reserve(server.open_connections.size());
        for (auto& [key, weak] : server.open_connections)
            if (auto c = weak.lock())
                open.push_back(std::move(c));
    }
    for (auto& c : open) {
        auto strand = c->socket().get_executor();
        asio::post(strand, [c] { c->close_if_idle(); });
    }
}

void log_line(std::string_view text) { http::log_line(text); }

} // namespace caregate::net::detail
