// Tests of the revocation check of gateway/net/tls.cpp through a real server on 127.0.0.1: client
// certificates revoked by CRLs that certs/make-dev-certs.sh writes (`--revoke ODS`), spoken to by the
// curl and openssl command lines as a provider system would. Needs `curl` and `openssl` on the PATH.
#include "net/server.hpp"

#include "pki_fixture.hpp"
#include "../support/background.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace net = caregate::net;
namespace http = caregate::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using caregate::testing::command_output;
using caregate::testing::contains;
using caregate::testing::dev_pki;
using caregate::testing::run;
constexpr auto write_file = caregate::testing::write_text_file;

void echo(http::request request, http::responder respond) {
    if (request.target.starts_with("/touch?")) {
        // Makes the file named after the '?', so that a test knows the request was served.
        write_file(request.target.substr(7), "");
        http::response answer;
        answer.set("Content-Type", "text/plain");
        answer.body = "touched";
        return respond(std::move(answer));
    }
    if (request.target.starts_with("/wait?")) {
        // Answers from another thread once the file named after the '?' exists, as a write does once
        // its commit is durable.
        std::thread([respond = std::move(respond), file = request.target.substr(6)] {
            while (!fs::exists(file))
                std::this_thread::sleep_for(20ms);
            http::response answer;
            answer.set("Content-Type", "text/plain");
            answer.body = "answered later";
            respond(std::move(answer));
        }).detach();
        return;
    }
    http::response answer;
    answer.set("Content-Type", "text/plain");
    answer.body = request.method + " " + request.target + " ods=" + request.client_ods;
    respond(std::move(answer));
}

/// The provider listener as `caregate serve --crl` makes it: a client certificate required, checked
/// against the dev CA's CRL.
net::listener provider_listener(const dev_pki& pki) {
    net::listener l;
    l.address = "127.0.0.1";
    l.port = 0;
    l.tls.certificate_file = pki.file("server.crt");
    l.tls.private_key_file = pki.file("server.key");
    l.tls.client_ca_file = pki.file("ca.crt");
    l.tls.require_client_certificate = true;
    l.tls.crl_file = pki.file("crl.pem");
    l.handle = echo;
    return l;
}

std::vector<net::listener> one(net::listener l) {
    std::vector<net::listener> all;
    all.push_back(std::move(l));
    return all;
}

class running_server {
public:
    running_server(const dev_pki& pki, net::listener l)
        : pki_(pki), server_(one(std::move(l)), net::limits{}, 2), runner_([this] { server_.run(); }) {}
    ~running_server() {
        server_.stop();
        runner_.join();
    }

    net::server& server() { return server_; }
    std::string port() const { return std::to_string(server_.bound_port(0)); }

    /// GET `path` with the client certificate of `ods`: curl's output, then " [status]".
    command_output get_as(const std::string& ods, const std::string& path = "/Patient") const {
        return pki_.curl_as(ods, "https://127.0.0.1:" + port() + path);
    }
    /// openssl s_client as `ods`, sending what `feed` (a shell command) prints; `options` go to s_client.
    std::string s_client_as(const std::string& ods, const std::string& feed, const std::string& options = "") const {
        return "(" + feed + ") | timeout 10 openssl s_client -quiet -connect 127.0.0.1:" + port() + " -cert '" +
               pki_.file("client-" + ods + ".crt") + "' -key '" + pki_.file("client-" + ods + ".key") + "' " +
               options + " 2>/dev/null";
    }

    /// One request as `ods` over openssl s_client with TLS `version` ("-tls1_2", "-tls1_3"), the
    /// server closing the connection after it (so that the TLS session may be resumed); `options`
    /// go to s_client (-sess_out FILE, -sess_in FILE). s_client's account: "New" or "Reused", and
    /// the response.
    std::string one_request_as(const std::string& ods, const std::string& version, const std::string& options) const {
        return run("(printf 'GET /Patient HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'; sleep 0.5) | "
                   "timeout 10 openssl s_client " + version + " -connect 127.0.0.1:" + port() + " -CAfile '" +
                   pki_.file("ca.crt") + "' -cert '" + pki_.file("client-" + ods + ".crt") + "' -key '" +
                   pki_.file("client-" + ods + ".key") + "' " + options + " 2>&1")
            .text;
    }

private:
    const dev_pki& pki_;
    net::server server_;
    std::thread runner_;
};

bool served(const command_output& out, const std::string& ods) {
    return out.exit_status == 0 && contains(out.text, "GET /Patient ods=" + ods + " [200]");
}
bool refused(const command_output& out) { return caregate::testing::refused_at_handshake(out); }

/// A CA for a test, with an `openssl ca` database of its own to revoke with and publish CRLs: its
/// files are named after it in the PKI's folder.
struct test_ca {
    /// A CA of an existing key and certificate (the dev CA's, say).
    test_ca(const dev_pki& pki, std::string ca_name, std::string key_file, std::string certificate_file)
        : pki(pki), name(std::move(ca_name)), key(std::move(key_file)), certificate(std::move(certificate_file)) {
        config = pki.file(name + ".cnf");
        write_file(pki.file(name + ".index"), "");
        write_file(pki.file(name + ".crlnumber"), "01\n");
        write_file(config, "[ca]\ndefault_ca = signer\n[signer]\ndatabase = " + pki.file(name + ".index") +
                               "\ncrlnumber = " + pki.file(name + ".crlnumber") + "\ncertificate = " + certificate +
                               "\nprivate_key = " + key + "\ndefault_md = sha256\ndefault_crl_days = 1\n");
    }
    /// A new CA with this subject: self-signed, or issued by `issuer` (an intermediate CA).
    static test_ca make(const dev_pki& pki, const std::string& name, const std::string& subject,
                        const test_ca* issuer = nullptr) {
        const std::string key = pki.file(name + ".key");
        const std::string certificate = pki.file(name + ".crt");
        const std::string extensions = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
        if (issuer) {
            issuer->issue(name, subject, extensions);
        } else {
            write_file(pki.file(name + ".ext"), extensions);
            REQUIRE(run("openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '" + key +
                        "' && openssl req -new -key '" + key + "' -subj '" + subject + "' | openssl x509 -req "
                        "-signkey '" + key + "' -days 1 -extfile '" + pki.file(name + ".ext") + "' -out '" +
                        certificate + "' 2>/dev/null")
                        .exit_status == 0);
        }
        return test_ca(pki, name, key, certificate);
    }

    /// Issues `file`.crt and its key `file`.key, with this subject and these X.509v3 extensions.
    void issue(const std::string& file, const std::string& subject, const std::string& extensions) const {
        write_file(pki.file(file + ".ext"), extensions);
        REQUIRE(run("openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '" + pki.file(file + ".key") +
                    "' && openssl req -new -key '" + pki.file(file + ".key") + "' -subj '" + subject +
                    "' | openssl x509 -req -CA '" + certificate + "' -CAkey '" + key +
                    "' -set_serial 0x$(openssl rand -hex 8) -days 1 -extfile '" + pki.file(file + ".ext") + "' -out '" +
                    pki.file(file + ".crt") + "' 2>/dev/null")
                    .exit_status == 0);
    }
    void revoke(const std::string& certificate_file) const {
        REQUIRE(run("openssl ca -config '" + config + "' -revoke '" + certificate_file + "' 2>/dev/null").exit_status == 0);
    }
    /// Writes this CA's CRL, `name`-crl.pem; `options` go to `openssl ca -gencrl`. Returns its path.
    std::string crl(const std::string& options = "") const {
        const std::string file = pki.file(name + "-crl.pem");
        REQUIRE(run("openssl ca -config '" + config + "' -gencrl " + options + " -out '" + file + "' 2>/dev/null")
                    .exit_status == 0);
        return file;
    }

    const dev_pki& pki;
    std::string name, key, certificate, config;
};

/// An expired CRL of the dev CA: its next update was in 2020.
std::string expired_crl(const dev_pki& pki, const std::string& name) {
    return test_ca(pki, name, pki.file("ca.key"), pki.file("ca.crt"))
        .crl("-crl_lastupdate 20200101000000Z -crl_nextupdate 20200201000000Z");
}

std::string concatenated(const dev_pki& pki, const std::string& name, const std::vector<std::string>& files) {
    std::string text;
    for (const auto& file : files)
        text += caregate::testing::read_text_file(file);
    write_file(pki.file(name), text);
    return pki.file(name);
}

/// What net::server says when it cannot start with this client CA file and CRL file ("" if it starts).
std::string start_failure(const dev_pki& pki, const std::string& client_ca_file, const std::string& crl_file) {
    net::listener l = provider_listener(pki);
    l.tls.client_ca_file = client_ca_file;
    l.tls.crl_file = crl_file;
    try {
        net::server server(one(std::move(l)), net::limits{}, 1);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

/// What net::server says when it cannot start with this CRL file ("" if it starts).
std::string start_failure(const dev_pki& pki, const std::string& crl_file) {
    return start_failure(pki, pki.file("ca.crt"), crl_file);
}

} // namespace

TEST_CASE("CRL: a client certificate the CRL revokes is refused at the handshake; an unrevoked one connects") {
    dev_pki pki;
    pki.make("--revoke RX1");
    running_server server(pki, provider_listener(pki));
    CHECK(refused(server.get_as("RX1")));
    CHECK(served(server.get_as("A81001"), "A81001"));
    CHECK(served(server.get_as("8JK23"), "8JK23"));
}

TEST_CASE("CRL: the empty CRL make-dev-certs.sh always writes lets every dev client connect") {
    dev_pki pki;
    running_server server(pki, provider_listener(pki));
    for (const char* ods : {"A81001", "RX1", "8JK23", "QZZ"})
        CHECK(served(server.get_as(ods), ods));
}

TEST_CASE("CRL: an expired CRL, one not signed by the client CA, or a file that is not a CRL stops the server at start") {
    dev_pki pki;
    CHECK(start_failure(pki, pki.file("crl.pem")).empty());

    CHECK(contains(start_failure(pki, expired_crl(pki, "expired-crl")), "expired"));

    // Signed by another key under the very name of the dev CA: a forged CRL.
    const auto forger = test_ca::make(pki, "forger", "/O=caregate development/CN=caregate development CA");
    CHECK(contains(start_failure(pki, forger.crl()), "is not signed by the client CA"));

    // From a CA the client CA file does not hold.
    const auto stranger = test_ca::make(pki, "stranger", "/CN=a stranger CA");
    CHECK(contains(start_failure(pki, stranger.crl()), "is from no CA of the client CA file"));

    // Several CRLs in one file are read, and each is checked: the dev CA's own does not excuse the
    // stranger's beside it.
    CHECK(contains(start_failure(pki, concatenated(pki, "both.pem", {pki.file("crl.pem"), stranger.crl()})),
                   "is from no CA of the client CA file"));
    CHECK(start_failure(pki, concatenated(pki, "twice.pem", {pki.file("crl.pem"), pki.file("crl.pem")})).empty());

    // Not a CRL at all: damaged, a certificate, empty, missing.
    const std::string damaged = pki.file("damaged-crl.pem");
    write_file(damaged, "-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n");
    CHECK(contains(start_failure(pki, damaged), "the CRL file '" + damaged + "' does not parse"));
    CHECK(contains(start_failure(pki, pki.file("ca.crt")), "holds no CRL"));
    write_file(pki.file("empty.pem"), "");
    CHECK(contains(start_failure(pki, pki.file("empty.pem")), "holds no CRL"));
    CHECK(contains(start_failure(pki, pki.file("missing.pem")), "cannot read the CRL file"));

    // Without a client CA there is nothing to check.
    net::listener no_ca = provider_listener(pki);
    no_ca.tls.client_ca_file.clear();
    no_ca.tls.require_client_certificate = false;
    CHECK_THROWS_WITH_AS(net::server(one(std::move(no_ca)), net::limits{}, 1),
                         doctest::Contains("no client CA"), std::runtime_error);
}

TEST_CASE("CRL: the whole chain is checked: a revoked intermediate CA stops every certificate it issued") {
    dev_pki pki;
    const auto root = test_ca::make(pki, "root", "/CN=caregate test root CA");
    const auto intermediate = test_ca::make(pki, "intermediate", "/CN=caregate test intermediate CA", &root);
    intermediate.issue("client-RX2", "/O=Caregate Test Trust/CN=RX2",
                       "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=clientAuth\n");
    net::listener listener = provider_listener(pki);
    listener.tls.client_ca_file = concatenated(pki, "client-cas.pem", {root.certificate, intermediate.certificate});
    listener.tls.crl_file = pki.file("crls.pem");

    // Every CA of the client CA file needs its CRL: without the intermediate's, the server does not start.
    concatenated(pki, "crls.pem", {root.crl()});
    CHECK(contains(start_failure(pki, listener.tls.client_ca_file, listener.tls.crl_file),
                   "holds no CRL from 'CN = caregate test intermediate CA'"));

    concatenated(pki, "crls.pem", {root.crl(), intermediate.crl()});
    running_server server(pki, listener);
    CHECK(served(server.get_as("RX2"), "RX2"));

    root.revoke(intermediate.certificate); // the client's own certificate is not revoked
    concatenated(pki, "crls.pem", {root.crl(), intermediate.crl()});
    server.server().read_revocation_lists()();
    CHECK(refused(server.get_as("RX2")));
}

TEST_CASE("CRL: a certificate revoked after start connects until the reload, and is refused after it, "
          "resumed sessions included") {
    dev_pki pki;
    running_server server(pki, provider_listener(pki));
    CHECK(served(server.get_as("RX1"), "RX1"));
    // TLS sessions saved now, to try to resume them once the certificate is revoked; that they can be
    // resumed until then shows that the refusal after the reload is not for want of a session cache.
    const std::vector<std::string> versions{"-tls1_2", "-tls1_3"};
    for (const auto& version : versions) {
        CAPTURE(version);
        const std::string first = pki.file("first" + version), saved = pki.file("saved" + version);
        CHECK(contains(server.one_request_as("RX1", version, "-sess_out '" + first + "'"), "ods=RX1"));
        const std::string resumed = server.one_request_as("RX1", version, "-sess_in '" + first + "' -sess_out '" + saved + "'");
        CHECK(contains(resumed, "Reused, TLSv1."));
        CHECK(contains(resumed, "ods=RX1"));
    }

    pki.make("--revoke RX1");
    CHECK(served(server.get_as("RX1"), "RX1")); // the CRL in use is the one read at start

    server.server().read_revocation_lists()(); // what SIGHUP does (besides the application's files)
    CHECK(refused(server.get_as("RX1")));
    CHECK(served(server.get_as("A81001"), "A81001"));
    for (const auto& version : versions) {
        CAPTURE(version);
        const std::string resumed = server.one_request_as("RX1", version, "-sess_in '" + pki.file("saved" + version) + "'");
        CHECK_FALSE(contains(resumed, "Reused"));
        CHECK_FALSE(contains(resumed, "ods=RX1"));
    }
}

TEST_CASE("CRL: a reload that fails keeps the CRLs in use") {
    dev_pki pki;
    pki.make("--revoke RX1");
    running_server server(pki, provider_listener(pki));
    REQUIRE(refused(server.get_as("RX1")));

    write_file(pki.file("crl.pem"), "not a CRL\n");
    CHECK_THROWS_WITH_AS(server.server().read_revocation_lists(), doctest::Contains("holds no CRL"), std::runtime_error);
    CHECK(refused(server.get_as("RX1"))); // still the old CRL, not none
    CHECK(served(server.get_as("A81001"), "A81001"));

    fs::copy_file(expired_crl(pki, "expired-crl"), pki.file("crl.pem"), fs::copy_options::overwrite_existing);
    CHECK_THROWS_WITH_AS(server.server().read_revocation_lists(), doctest::Contains("expired"), std::runtime_error);
    CHECK(refused(server.get_as("RX1")));
    CHECK(served(server.get_as("A81001"), "A81001"));
}

TEST_CASE("CRL: an open connection survives reloads, idle or with a request in flight, even when the reload "
          "revokes its own certificate") {
    dev_pki pki;
    running_server server(pki, provider_listener(pki));
    // One connection, three requests: the first answered at once (`served` then exists), and the
    // connection idle through the first reload (`first` exists after it); the second held in the
    // handler through the second reload (it is answered once `second` exists); the third after both.
    const std::string served = pki.file("served"), first = pki.file("first"), second = pki.file("second");
    caregate::testing::background reloads([&](std::stop_token stop) { // its REQUIREs fail the test, not the runner
        while (!fs::exists(served)) {
            if (stop.stop_requested())
                return; // the exchange is over and the first request was never served: the checks say so
            std::this_thread::sleep_for(20ms);
        }
        std::this_thread::sleep_for(200ms); // the answer written: the connection is idle
        pki.make("--revoke RX1");
        server.server().read_revocation_lists()();
        write_file(first, "");
        std::this_thread::sleep_for(500ms); // the second request in the handler
        server.server().read_revocation_lists()();
        write_file(second, "");
    });
    auto wait_for = [](const std::string& file) { return "while [ ! -e '" + file + "' ]; do sleep 0.1; done; "; };
    const auto out = run(server.s_client_as(
        "RX1", "printf 'GET /touch?" + served + " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; " + wait_for(first) +
                   "printf 'GET /wait?" + second + " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; " + wait_for(second) +
                   "sleep 0.3; printf 'GET /Patient HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'; sleep 0.5"));
    reloads.request_stop();
    reloads.join();
    INFO(out.text);
    CHECK(contains(out.text, "touched"));
    CHECK(contains(out.text, "answered later"));
    CHECK(contains(out.text, "GET /Patient ods=RX1"));
    CHECK(refused(server.get_as("RX1"))); // a new connection is checked against the new CRL
}

TEST_CASE("CRL: SIGHUP calls the reload the server was given, on a thread of its own, again and again") {
    dev_pki pki;
    std::atomic<int> reloads{0};
    running_server server(pki, provider_listener(pki));
    server.server().on_hangup([&] {
        server.server().read_revocation_lists()();
        ++reloads;
    });
    pki.make("--revoke RX1");
    for (int expected = 1; expected <= 2; ++expected) {
        REQUIRE(::kill(::getpid(), SIGHUP) == 0);
        for (int i = 0; i < 100 && reloads < expected; ++i)
            std::this_thread::sleep_for(20ms);
        CHECK(reloads == expected);
    }
    CHECK(refused(server.get_as("RX1")));
    CHECK(served(server.get_as("A81001"), "A81001"));
}
