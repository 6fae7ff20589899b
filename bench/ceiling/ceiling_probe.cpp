// The ceiling probe: `net::server` (caregate's listeners, TLS settings and limits) with a handler that
// answers every request at once with the same fixed body, a stored Patient's bytes. What it serves per
// second is the most this machine can serve through caregate's network stack; bench/run.sh reports
// caregate's scenarios as a share of it. It is not a FHIR server: no routing, no storage, no tokens.
//
//   ceiling_probe --body-file FILE [--listen HOST:PORT] [--certs DIR] [--plain] [--threads N]
#include "net/server.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace caregate;

struct probe_settings {
    std::string listen = "127.0.0.1:8443";
    std::string certs = "certs/dev";
    bool plain = false;
    unsigned threads = 0; ///< 0: one per core, as caregate serve
    std::string body_file;
};

constexpr const char* usage =
    "Usage: ceiling_probe --body-file FILE [options]\n\n"
    "Answers every request with 200 and the bytes of FILE (application/fhir+json), through caregate's\n"
    "network stack (the same TLS settings and limits as caregate serve), until SIGINT or SIGTERM.\n\n"
    "Options:\n"
    "  --body-file FILE     the body of every answer (a stored Patient, for bench/run.sh)\n"
    "  --listen HOST:PORT   where to listen (default 127.0.0.1:8443; port 0: any free port)\n"
    "  --certs DIR          DIR/server.crt, DIR/server.key and the client CA DIR/ca.crt, as caregate serve;\n"
    "                       a client certificate is required, as on caregate's provider listener\n"
    "                       (default ./certs/dev)\n"
    "  --plain              HTTP without TLS; only on a loopback address\n"
    "  --threads N          threads serving requests (default 0: one per core)\n";

unsigned to_unsigned(const std::string& text, const char* flag) {
    unsigned value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size())
        throw std::invalid_argument(std::string("--") + flag + " needs a number, not '" + text + "'");
    return value;
}

probe_settings parse(const std::vector<std::string>& args) {
    probe_settings s;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& flag = args[i];
        auto value = [&]() -> const std::string& {
            if (i + 1 >= args.size())
                throw std::invalid_argument(flag + " needs a value");
            return args[++i];
        };
        if (flag == "--listen")
            s.listen = value();
        else if (flag == "--certs")
            s.certs = value();
        else if (flag == "--plain")
            s.plain = true;
        else if (flag == "--threads")
            s.threads = to_unsigned(value(), "threads");
        else if (flag == "--body-file")
            s.body_file = value();
        else
            throw std::invalid_argument("unknown option " + flag);
    }
    if (s.body_file.empty())
        throw std::invalid_argument("--body-file is required");
    return s;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::invalid_argument("cannot read " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    for (const auto& a : args)
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            return 0;
        }
    try {
        const probe_settings settings = parse(args);
        const auto colon = settings.listen.rfind(':');
        if (colon == std::string::npos)
            throw std::invalid_argument("--listen needs HOST:PORT, not '" + settings.listen + "'");
        net::listener listener;
        listener.address = settings.listen.substr(0, colon);
        listener.port = static_cast<std::uint16_t>(to_unsigned(settings.listen.substr(colon + 1), "listen"));
        listener.plain = settings.plain;
        if (settings.plain && !net::is_loopback(listener.address))
            throw std::invalid_argument("--plain is only allowed on a loopback address");
        if (!settings.plain) {
            // As caregate serve's provider listener: the client certificate is mandatory.
            const std::filesystem::path dir(settings.certs);
            listener.tls.certificate_file = (dir / "server.crt").string();
            listener.tls.private_key_file = (dir / "server.key").string();
            listener.tls.client_ca_file = (dir / "ca.crt").string();
            listener.tls.require_client_certificate = true;
        }

        // The answer is built once; each request gets a copy, as caregate copies a stored body into
        // its response. The headers are those of caregate's read (ETag, Last-Modified), so that the
        // bytes on the wire are about the same.
        http::response answer;
        answer.status = 200;
        answer.set("Content-Type", "application/fhir+json; charset=utf-8");
        answer.set("ETag", "W/\"1\"");
        answer.set("Last-Modified", "Sun, 01 Nov 2026 00:00:00 GMT");
        answer.body = read_file(settings.body_file);
        listener.handle = [answer](http::request, http::responder done) { done(answer); };

        std::vector<net::listener> listeners;
        listeners.push_back(std::move(listener));
        net::server server(std::move(listeners), net::limits{}, settings.threads);
        std::cerr << "ceiling_probe: serving " << answer.body.size() << " bytes over "
                  << (settings.plain ? "HTTP" : "HTTPS (client certificate required)") << " on "
                  << settings.listen.substr(0, colon) << ":" << server.bound_port(0) << "\n";
        server.run();
        return 0;
    } catch (const std::invalid_argument& e) {
        std::cerr << "ceiling_probe: " << e.what() << "\n(see ceiling_probe --help)\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "ceiling_probe: " << e.what() << "\n";
        return 1;
    }
}
