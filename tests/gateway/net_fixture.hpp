// What the tests of gateway/net share: a real server on 127.0.0.1 (port 0) on a background thread, with
// certificates made by certs/make-dev-certs.sh, spoken to by the curl and openssl command lines as a
// client would, and a handler that echoes what reached it. Needs `curl` and `openssl` on the PATH.
#pragma once

#include "../support/command.hpp"

#include "net/server.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace caregate::testing {

namespace net = caregate::net;
namespace http = caregate::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// The development PKI, made once per test run by the real script into a temporary directory. Not
/// pki_fixture.hpp's dev_pki (one PKI per test): two classes of one name would break the one
/// definition rule, and the linker would keep one's constructor for both.
struct shared_pki {
    shared_pki() : dir(fs::temp_directory_path() / ("caregate-net-test-" + std::to_string(::getpid()))) {
        const std::string command = std::string("bash '") + CAREGATE_SOURCE_DIR + "/certs/make-dev-certs.sh' --out '" +
                                    dir.string() + "' > /dev/null";
        if (std::system(command.c_str()) != 0)
            throw std::runtime_error("certs/make-dev-certs.sh failed");
    }
    ~shared_pki() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }
    std::string file(const std::string& name) const { return (dir / name).string(); }

    fs::path dir;
};

inline const shared_pki& pki() {
    static const shared_pki instance;
    return instance;
}

/// The handler behind every test server: echoes what it was given, and has a few special paths.
inline void echo(http::request request, http::responder respond) {
    if (request.target == "/throw")
        throw std::runtime_error("a bug in the handler (expected by the test)");
    if (request.target == "/later" || request.target == "/slow") {
        // Answers from another thread, as a database write does once its commit is durable.
        const auto delay = request.target == "/later" ? 50ms : 700ms;
        std::thread([respond = std::move(respond), delay] {
            std::this_thread::sleep_for(delay);
            http::response answer;
            answer.set("Content-Type", "text/plain");
            answer.body = "answered later";
            respond(std::move(answer));
        }).detach();
        return;
    }
    http::response answer;
    answer.set("Content-Type", "text/plain");
    if (request.target == "/unwritable")
        answer.set("X-Large", std::string(70'000, 'h')); // Beast's header container throws on 64 KiB
    if (request.target == "/headers") {
        // Every header field as the application was given it, one a line, to show what reached it.
        for (const auto& field : request.headers)
            answer.body += "header " + field.name + ": " + field.value + "\n";
    }
    answer.body += request.method + " " + request.target + " ods=" + request.client_ods +
                  " secure=" + (request.secure ? "yes" : "no") + " body=" + std::to_string(request.body.size());
    respond(std::move(answer));
}

enum class client_certs { none, requested, required };

inline net::listener tls_listener(client_certs certs = client_certs::requested) {
    net::listener l;
    l.address = "127.0.0.1";
    l.port = 0;
    l.tls.certificate_file = pki().file("server.crt");
    l.tls.private_key_file = pki().file("server.key");
    if (certs != client_certs::none)
        l.tls.client_ca_file = pki().file("ca.crt");
    l.tls.require_client_certificate = certs == client_certs::required;
    l.handle = echo;
    return l;
}

/// A server running on a background thread for the length of a test.
class running_server {
public:
    explicit running_server(net::listener l, net::limits limits = {})
        : running_server(make_listeners(std::move(l)), limits) {}
    running_server(std::vector<net::listener> listeners, net::limits limits)
        : server_(std::move(listeners), limits, 2), runner_([this] { server_.run(); }) {}
    ~running_server() { stop(); }

    /// The port of the first listener, or of the one given.
    std::string port(std::size_t listener = 0) const { return std::to_string(server_.bound_port(listener)); }
    std::string url(const std::string& path, std::size_t listener = 0) const {
        return "https://127.0.0.1:" + port(listener) + path;
    }
    /// curl trusting the dev CA; -w appends "[status connects]" after each response. With
    /// `verbose`, curl's account of the connection (TLS version, cipher) is in the output too.
    std::string curl(const std::string& options, bool verbose = false) const {
        return "curl -sS --max-time 10 --cacert '" + pki().file("ca.crt") + "' -w ' [%{http_code} %{num_connects}]\\n' " +
               options + (verbose ? " -v 2>&1" : " 2>/dev/null");
    }
    /// openssl s_client, connected, sending what `feed` (a shell command) prints; it returns when the
    /// server closes the connection, or after `seconds`.
    std::string s_client(const std::string& feed, int seconds = 10) const {
        return "(" + feed + ") | timeout " + std::to_string(seconds) + " openssl s_client -quiet -connect 127.0.0.1:" +
               port() + " 2>/dev/null";
    }

    /// Stops the server and returns how long run() took to return.
    std::chrono::steady_clock::duration stop() {
        const auto start = std::chrono::steady_clock::now();
        if (runner_.joinable()) {
            server_.stop();
            runner_.join();
        }
        return std::chrono::steady_clock::now() - start;
    }

private:
    static std::vector<net::listener> make_listeners(net::listener l) {
        std::vector<net::listener> all;
        all.push_back(std::move(l));
        return all;
    }

    net::server server_;
    std::thread runner_;
};

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

} // namespace caregate::testing
