// The server: binds the listeners, runs one io_context on a pool of threads, accepts connections
// (closing those beyond max_connections at once), and stops on SIGINT, SIGTERM or stop(), letting
// requests in hand finish within a grace period; on SIGHUP it calls the reload it was given.
// Sessions themselves are in session.cpp, TLS and revocation lists in tls.cpp.
#include "net/server.hpp"

#include "net/session.hpp"
#include "net/tls.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>

#include <fcntl.h>

#include <algorithm>
#include <csignal>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>

namespace caregate::net {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

/// How long stopping waits for requests in hand to finish (a transaction commit, a large search)
/// before abandoning them. Orchestrators wait about 30 s after SIGTERM before SIGKILL; 10 s is well
/// inside that.
constexpr auto shutdown_grace = std::chrono::seconds(10);
/// After accept fails (typically out of file descriptors), how long to wait before trying again,
/// rather than spin.
constexpr auto accept_retry = std::chrono::milliseconds(100);

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::ip::address parse_address(const std::string& address) {
    if (boost::beast::iequals(address, "localhost"))
        return asio::ip::address_v4::loopback();
    error_code ec;
    auto parsed = asio::ip::make_address(address, ec);
    if (ec)
        throw std::runtime_error("'" + address + "' is not an IP address to listen on");
    return parsed;
}

void log_exception(std::string_view where, const std::exception_ptr& failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        detail::log_line(std::string(where) + ": " + e.what());
    } catch (...) {
        detail::log_line(std::string(where) + ": an exception that is not a std::exception");
    }
}

} // namespace

struct server::impl {
    /// A listener, bound.
    struct bound_listener {
        bound_listener(detail::server_state& server, http::handler handle,
                       std::unique_ptr<detail::revocation_check> crls, std::unique_ptr<asio::ssl::context> tls,
                       asio::io_context& io)
            : revocation(std::move(crls)), state{server, std::move(handle), std::move(tls)},
              acceptor(std::in_place, asio::make_strand(io)) {}

        /// Null without a CRL file. Before `state`, whose TLS context refers to it, so it goes after it.
        const std::unique_ptr<detail::revocation_check> revocation;
        detail::listener_state state;
        std::optional<tcp::acceptor> acceptor; // on its own strand; reset before the io_context goes
        std::uint16_t port = 0;
        std::string description; // "https://127.0.0.1:8443", for the log
    };

    impl(std::vector<listener> configured, net::limits limits, unsigned thread_count)
        : state(limits), threads(thread_count ? thread_count : std::max(1u, std::thread::hardware_concurrency())) {
        if (limits.bodies_bytes < limits.body_bytes)
            throw std::runtime_error("--max-bodies-bytes (" + std::to_string(limits.bodies_bytes) +
                                     ") is less than --max-body-bytes (" + std::to_string(limits.body_bytes) +
                                     "): a body of the largest size could never be received");
        io.emplace(static_cast<int>(threads));
        for (auto& config : configured) {
            if (config.plain && !config.plain_on_any_address && !is_loopback(config.address))
                throw std::runtime_error("--plain is only allowed on a loopback address");
            if (!config.handle)
                throw std::runtime_error("a listener has no handler");
            if (config.takes_binary_body && limits.bodies_bytes < limits.binary_body_bytes)
                throw std::runtime_error("--max-bodies-bytes (" + std::to_string(limits.bodies_bytes) +
                                         ") is less than --max-binary-bytes (" + std::to_string(limits.binary_body_bytes) +
                                         "): a Binary of the largest size could never be received");
            auto revocation = !config.plain && !config.tls.crl_file.empty()
                                  ? std::make_unique<detail::revocation_check>(config.tls)
                                  : nullptr;
            auto tls = config.plain ? nullptr : detail::make_tls_context(config.tls, revocation.get());
            auto& bound = *listeners.emplace_back(std::make_unique<bound_listener>(
                state, std::move(config.handle), std::move(revocation), std::move(tls), *io));
            bound.state.takes_binary_body = std::move(config.takes_binary_body);
            bind(bound, config);
        }
        signals.emplace(*io, SIGINT, SIGTERM);
    }

    ~impl() {
        // The io_context goes first, while the listener and server state that abandoned sessions
        // refer to still exist; the acceptors and signal set go before it, as I/O objects must.
        // No thread of the application may be posting an answer to it meanwhile, nor post one after.
        {
            const std::unique_lock lock(state.alive->mutex);
            state.alive->open = false;
        }
        for (auto& l : listeners)
            l->acceptor.reset();
        signals.reset();
        hangups.reset();
        io.reset();
    }

    static void bind(bound_listener& bound, const listener& config) {
        const tcp::endpoint endpoint(parse_address(config.address), config.port);
        auto& acceptor = *bound.acceptor;
        error_code ec;
        acceptor.open(endpoint.protocol(), ec);
        if (!ec)
            acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec)
            acceptor.bind(endpoint, ec);
        if (!ec)
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec)
            throw std::runtime_error("cannot listen on " + config.address + ":" + std::to_string(config.port) +
                                     ": " + ec.message());
        ::fcntl(acceptor.native_handle(), F_SETFD, FD_CLOEXEC); // see start_session
        bound.port = acceptor.local_endpoint().port();
        bound.description = std::string(config.plain ? "http://" : "https://") + config.address + ":" +
                            std::to_string(bound.port);
        if (!config.plain && !config.tls.client_ca_file.empty()) {
            bound.description += config.tls.require_client_certificate ? " (client certificate required"
                                                                       : " (client certificate requested";
            if (!config.tls.crl_file.empty())
                bound.description += ", checked against the CRLs of " + config.tls.crl_file;
            bound.description += ")";
        }
    }

    asio::awaitable<void> accept_connections(bound_listener& bound) {
        auto& acceptor = *bound.acceptor;
        for (;;) {
            // Each connection gets its own strand: its I/O, its timer and its answer from the
            // application are then never handled on two threads at once.
            auto [ec, socket] = co_await acceptor.async_accept(asio::any_io_executor(asio::make_strand(*io)), use_tuple);
            if (ec == asio::error::operation_aborted || !acceptor.is_open() || state.stopping)
                co_return;
            if (ec) {
                detail::log_line("accepting on " + bound.description + " failed: " + ec.message());
                asio::steady_timer pause(acceptor.get_executor(), accept_retry);
                co_await pause.async_wait(use_tuple);
                continue;
            }
            if (bound.state.open_connections.load(std::memory_order_relaxed) >= state.limits.max_connections) {
                error_code ignored; // over max_connections: closed at once, before any TLS work
                socket.close(ignored);
                continue;
            }
            try {
                detail::start_session(std::move(socket), bound.state);
            } catch (...) {
                log_exception("a session could not start", std::current_exception());
            }
        }
    }

    /// One thread of the pool. A handler that throws is a bug; the thread logs it and goes on.
    void run_io() {
        for (;;) {
            try {
                io->run();
                return;
            } catch (...) {
                log_exception("an I/O thread caught", std::current_exception());
            }
        }
    }

    /// Waits for the next SIGHUP, calls the reload, and waits again, until cancelled.
    void await_hangup() {
        hangups->async_wait([this](const error_code& ec, int) {
            if (ec)
                return; // cancelled: the server is stopping
            detail::log_line("SIGHUP: reloading");
            try {
                reload();
            } catch (...) {
                log_exception("the reload failed", std::current_exception());
            }
            if (!state.stopping)
                await_hangup();
        });
    }

    void request_stop() {
        {
            std::lock_guard lock(stop_mutex);
            stop_requested = true;
        }
        stop_wanted.notify_all();
    }

    // Destroyed last, in this order: what sessions refer to.
    detail::server_state state;
    const unsigned threads;
    std::optional<asio::io_context> io;
    std::vector<std::unique_ptr<bound_listener>> listeners;
    std::optional<asio::signal_set> signals;
    std::optional<asio::signal_set> hangups; // SIGHUP, with on_hangup
    std::function<void()> reload;

    std::mutex stop_mutex;
    std::condition_variable stop_wanted;
    bool stop_requested = false; // guarded by stop_mutex
};

server::server(std::vector<listener> listeners, limits limits, unsigned threads)
    : impl_(std::make_unique<impl>(std::move(listeners), limits, threads)) {}

server::~server() = default;

void server::run() {
    impl& m = *impl_;
    m.signals->async_wait([&m](const error_code& ec, int signal) {
        if (ec)
            return; // cancelled: the server is stopping anyway
        detail::log_line(signal == SIGINT ? "SIGINT: stopping" : "SIGTERM: stopping");
        m.request_stop();
    });
    for (auto& bound : m.listeners) {
        asio::co_spawn(bound->acceptor->get_executor(), m.accept_connections(*bound), [](std::exception_ptr failure) {
            if (failure)
                log_exception("an acceptor failed", failure);
        });
        detail::log_line("listening on " + bound->description);
    }

    std::vector<std::thread> pool;
    pool.reserve(m.threads);
    for (unsigned i = 0; i < m.threads; ++i)
        pool.emplace_back([&m] { m.run_io(); });

    {
        std::unique_lock lock(m.stop_mutex);
        m.stop_wanted.wait(lock, [&m] { return m.stop_requested; });
    }

    // Stop accepting; close connections between requests; let the requests in hand finish.
    m.state.stopping = true;
    for (auto& bound : m.listeners)
        asio::post(bound->acceptor->get_executor(), [&bound = *bound] {
            error_code ignored;
            bound.acceptor->close(ignored);
        });
    asio::post(*m.io, [&m] {
        m.signals->cancel();
        if (m.hangups)
            m.hangups->cancel();
    });
    detail::close_idle_connections(m.state);
    bool drained = false;
    {
        std::unique_lock lock(m.state.mutex);
        drained = m.state.all_closed.wait_for(lock, shutdown_grace,
                                              [&m] { return m.state.open_connections.empty(); });
        if (!drained)
            detail::log_line(std::to_string(m.state.open_connections.size()) +
                             " connections still busy after the grace period; abandoning them");
    }
    m.io->stop();
    for (auto& thread : pool)
        thread.join();
    detail::log_line("stopped");
}

void server::stop() { impl_->request_stop(); }

void server::on_hangup(std::function<void()> reload) {
    if (impl_->hangups)
        throw std::logic_error("server::on_hangup is called once");
    // Registered now, not in run(): a SIGHUP from here on is caught (and waits for run()) rather than
    // ending the process.
    impl_->reload = std::move(reload);
    impl_->hangups.emplace(*impl_->io, SIGHUP);
    asio::post(*impl_->io, [&m = *impl_] { m.await_hangup(); });
}

std::function<void()> server::read_revocation_lists() const {
    std::vector<std::pair<detail::revocation_check*, std::shared_ptr<const detail::revocation_lists>>> readings;
    for (const auto& bound : impl_->listeners)
        if (bound->revocation)
            readings.emplace_back(bound->revocation.get(), bound->revocation->read());
    return [readings = std::move(readings)] {
        for (const auto& [check, lists] : readings)
            check->use(lists);
    };
}

std::uint16_t server::bound_port(std::size_t listener_index) const {
    return impl_->listeners.at(listener_index)->port;
}

bool is_loopback(const std::string& address) {
    if (boost::beast::iequals(address, "localhost"))
        return true;
    error_code ec;
    const auto parsed = asio::ip::make_address(address, ec);
    if (ec)
        return false;
    if (parsed.is_v4())
        return parsed.to_v4().is_loopback(); // 127.0.0.0/8
    const auto v6 = parsed.to_v6();
    return v6.is_loopback() || (v6.is_v4_mapped() &&
                                asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback());
}

} // namespace caregate::net
