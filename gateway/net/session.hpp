// What the server and its sessions share (private to gateway/net): the limits, the shutdown flag, the
// registry of open connections, each listener's state, and the entry point of a session.
#pragma once

#include "net/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>

namespace caregate::net::detail {

class connection;

/// Whether the server's io_context still exists, for the application's threads that answer
/// requests. They post an answer to it only holding `mutex` shared, while `open`; the server clears
/// `open`, holding `mutex` exclusively, before it destroys the io_context. So no thread is still
/// posting (or holding a copy of a strand) when it goes, and an answer given after it has gone (to
/// a session abandoned after the grace period) finds it closed. Shared with every pending answer.
struct lifeline {
    std::shared_mutex mutex;
    bool open = true;
};

/// State every session of a server shares.
struct server_state {
    explicit server_state(net::limits connection_limits) : limits(connection_limits) {}

    const net::limits limits;
    /// Whether the io_context still exists, for answers given on the application's threads.
    const std::shared_ptr<lifeline> alive = std::make_shared<lifeline>();
    /// Set once, when the server begins to stop: sessions finish the request in hand and close.
    std::atomic<bool> stopping{false};

    std::mutex mutex;
    /// Notified (under `mutex`) when the last open connection closes.
    std::condition_variable all_closed;
    /// Every open connection, so that stopping can close the idle ones. Guarded by `mutex`.
    std::unordered_map<const connection*, std::weak_ptr<connection>> open_connections;
};

/// One listener's state, shared by its sessions. Outlives them (owned by the server).
struct listener_state {
    server_state& server;
    http::handler handle;
    /// Null for a plain (loopback-only) listener.
    std::unique_ptr<boost::asio::ssl::context> tls;
    /// listener::takes_binary_body.
    std::function<bool(std::string_view, std::string_view)> takes_binary_body;
    /// Connections accepted and not yet closed, checked against limits.max_connections.
    std::atomic<std::size_t> open_connections{0};
    /// Bytes of request bodies held now (received or being received, not yet answered), at most
    /// limits.bodies_bytes: per listener, so that a flood of uploads to the patient-facing listener
    /// cannot refuse the providers' contributions. Taken and given back by each request's
    /// body_share (session.cpp).
    std::atomic<std::size_t> body_bytes_held{0};
};

/// Serves one accepted connection to its end, on the socket's executor (which must be a strand, as
/// the session's timer and I/O complete there). Counts it in `listener.open_connections` while open.
void start_session(boost::asio::ip::tcp::socket socket, listener_state& listener);

/// Asks every open connection to close once it is idle (between requests). Thread-safe.
void close_idle_connections(server_state& server);

/// http::log_line (http/log.hpp), for this layer's own failures.
void log_line(std::string_view text);

} // namespace caregate::net::detail
