// Tests of gateway/cli/live_configuration.cpp, what `caregate serve` reloads on SIGHUP: the policy,
// the organisations, the trusted issuers and the CRLs, through a real TLS server with the real
// application behind it, and through a real `caregate serve` process sent a real SIGHUP. Needs `curl`
// and `openssl` on the PATH, and the caregate executable built.
#include "cli/live_configuration.hpp"

#include "auth/token.hpp"
#include "net/server.hpp"
#include "storage/sqlite_store.hpp"

#include "pki_fixture.hpp"
#include "../support/background.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace auth = caregate::auth;
namespace cli = caregate::cli;
namespace net = caregate::net;
namespace http = caregate::http;
namespace storage = caregate::storage;
namespace fs = std::filesystem;
using caregate::testing::command_output;
using caregate::testing::contains;
using caregate::testing::dev_pki;
using caregate::testing::refused_at_handshake;
using caregate::testing::run;
using caregate::testing::write_text_file;
using namespace std::chrono_literals;

namespace {

constexpr const char* base_url = "https://localhost:8443/fhir";

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

/// The configuration files a test changes, beside a dev PKI, and a second token-signing key.
struct configuration_files {
    explicit configuration_files(const dev_pki& pki) : pki(pki) {
        shipped_policy = read_text(std::string(CAREGATE_SOURCE_DIR) + "/gateway/access/default-policy.json");
        shipped_organisations = read_text(std::string(CAREGATE_SOURCE_DIR) + "/gateway/access/default-organisations.json");
        write_text_file(policy(), shipped_policy);
        write_text_file(organisations(), organisations_without_acute());
        write_text_file(issuers(), R"([{"issuer": "caregate-dev", "public_key_pem_file": "token-signing.pub"}])");
        REQUIRE(run("openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '" +
                            pki.file("other-signing.key") + "' && openssl pkey -in '" + pki.file("other-signing.key") +
                            "' -pubout -out '" + pki.file("other-signing.pub") + "'")
                    .exit_status == 0);
    }

    std::string policy() const { return pki.file("policy.json"); }
    std::string organisations() const { return pki.file("organisations.json"); }
    std::string issuers() const { return pki.file("issuers.json"); }

    /// The shipped organisations without the acute trust RX1.
    std::string organisations_without_acute() const {
        return replaced(shipped_organisations,
                        R"({"ods": "RX1", "name": "Demo acute hospital trust", "sector": "acute"},)", "");
    }
    /// The shipped policy, except that R8008 is no longer an admin role (nor any other).
    std::string policy_without_r8008() const {
        return replaced(shipped_policy, R"("roles": ["R8008", "R8009", "R8010"])", R"("roles": ["R8009", "R8010"])");
    }

    /// Every file changed: RX1 connected, R8008 no admin, tokens of the other key trusted (and the dev
    /// key no longer), 8JK23's certificate revoked.
    void change_everything() const {
        write_text_file(organisations(), shipped_organisations);
        write_text_file(policy(), policy_without_r8008());
        write_text_file(issuers(), R"([{"issuer": "caregate-dev", "public_key_pem_file": "other-signing.pub"}])");
        pki.make("--revoke 8JK23");
    }

    const dev_pki& pki;
    std::string shipped_policy;
    std::string shipped_organisations;
};

std::string token(const dev_pki& pki, const std::string& ods, const std::string& role,
                  const std::string& key = "token-signing.key") {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auth::token_claims claims;
    claims.audience = base_url;
    claims.user = "user-" + ods + "-" + role;
    claims.organisation = ods;
    claims.role = role;
    claims.issued_at = now;
    claims.not_before = now;
    claims.expires = now + 3600;
    return auth::mint_token(claims, read_text(pki.file(key)));
}

/// `caregate serve` in one process: the live configuration behind a real TLS provider listener with
/// the CRL, and the store under it.
struct served_configuration {
    explicit served_configuration(const dev_pki& pki, const configuration_files& files) : pki(pki) {
        storage::sqlite_options options;
        options.path = pki.file("test.db");
        auto opened = storage::sqlite_store::open(options);
        REQUIRE(opened.ok());
        store = std::move(opened.value());

        cli::reloadable_settings settings;
        settings.policy_file = files.policy();
        settings.organisations_file = files.organisations();
        settings.issuers_file = files.issuers();
        settings.certs_dir = pki.dir.string();
        settings.crl_file = pki.file("crl.pem");
        settings.provider.base_url = base_url;
        settings.provider_tokens.audience = base_url;
        configuration = std::make_unique<cli::live_configuration>(settings, *store);

        net::listener provider;
        provider.address = "127.0.0.1";
        provider.port = 0;
        provider.tls.certificate_file = pki.file("server.crt");
        provider.tls.private_key_file = pki.file("server.key");
        provider.tls.client_ca_file = pki.file("ca.crt");
        provider.tls.require_client_certificate = true;
        provider.tls.crl_file = pki.file("crl.pem");
        provider.handle = configuration->provider_handler();
        std::vector<net::listener> listeners;
        listeners.push_back(std::move(provider));
        server = std::make_unique<net::server>(std::move(listeners), net::limits{}, 2);
        runner = std::thread([this] { server->run(); });
    }
    ~served_configuration() {
        server->stop();
        runner.join();
        store.reset(); // drains the writer while the applications it answers to exist, as serve does
        server.reset();
        configuration.reset();
    }

    /// GET /fhir/Patient/9000000009 over a connection with `ods`'s certificate, with a token of `ods`
    /// and `role` signed by `key`: curl's output, ending " [status]".
    command_output read_patient(const std::string& ods, const std::string& role,
                                const std::string& key = "token-signing.key") const {
        return pki.curl_as(ods, "https://127.0.0.1:" + std::to_string(server->bound_port(0)) + "/fhir/Patient/9000000009",
                           "-H 'Authorization: Bearer " + token(pki, ods, role, key) + "'");
    }
    /// The HTTP status of read_patient, or 0 when the handshake was refused.
    int status(const std::string& ods, const std::string& role, const std::string& key = "token-signing.key") const {
        const auto out = read_patient(ods, role, key);
        if (refused_at_handshake(out))
            return 0;
        const auto at = out.text.rfind(" [");
        REQUIRE(at != std::string::npos);
        return std::stoi(out.text.substr(at + 2, 3));
    }

    const dev_pki& pki;
    std::unique_ptr<storage::store> store;
    std::unique_ptr<cli::live_configuration> configuration;
    std::unique_ptr<net::server> server;
    std::thread runner;
};

// The statuses that tell the configurations apart. 404: the caller may read Patients, and this one is
// not held; 403: the organisation is unknown, or the role may never read a Patient; 401: the token's
// issuer key is not trusted; 0: the certificate is refused at the handshake.
void check_old_configuration(const served_configuration& served) {
    CHECK(served.status("RX1", "R8000") == 403);                      // RX1 not connected
    CHECK(served.status("A81001", "R8008") == 404);                   // R8008 an admin role
    CHECK(served.status("A81001", "R8000") == 404);                   // the dev key trusted
    CHECK(served.status("A81001", "R8000", "other-signing.key") == 401); // the other key not
    CHECK(served.status("8JK23", "R8014") == 404);                    // 8JK23 not revoked
}

void check_new_configuration(const served_configuration& served) {
    CHECK(served.status("RX1", "R8000", "other-signing.key") == 404);
    CHECK(served.status("A81001", "R8008", "other-signing.key") == 403);
    CHECK(served.status("A81001", "R8000") == 401);
    CHECK(served.status("A81001", "R8000", "other-signing.key") == 404);
    CHECK(served.status("8JK23", "R8014", "other-signing.key") == 0);
}

} // namespace

TEST_CASE("reload: requests and handshakes after a reload use the new CRL, policy, organisations and issuers") {
    dev_pki pki;
    configuration_files files(pki);
    served_configuration served(pki, files);
    check_old_configuration(served);

    files.change_everything();
    check_old_configuration(served); // nothing is read until the reload

    CHECK(served.configuration->reload(*served.server)); // what SIGHUP does
    check_new_configuration(served);
    CHECK(served.configuration->generations() == 1); // the replaced generation, unused, is gone
}

TEST_CASE("reload: a reload that fails keeps the whole configuration in use, CRL included") {
    dev_pki pki;
    configuration_files files(pki);
    served_configuration served(pki, files);

    SUBCASE("a policy file that does not parse") {
        files.change_everything();
        write_text_file(files.policy(), "{\"comment\": ");
    }
    SUBCASE("a policy file that parses but names an unknown role group") {
        files.change_everything();
        write_text_file(files.policy(), replaced(files.policy_without_r8008(), R"("role_groups": ["clinical", "nurse"])",
                                                 R"("role_groups": ["clinical", "surgeon"])"));
    }
    SUBCASE("an organisations file that does not parse") {
        files.change_everything();
        write_text_file(files.organisations(), "[{\"ods\": ");
    }
    SUBCASE("an issuers file naming a key that is missing") {
        files.change_everything();
        write_text_file(files.issuers(), R"([{"issuer": "caregate-dev", "public_key_pem_file": "missing.pub"}])");
    }
    SUBCASE("a CRL that is not one") {
        files.change_everything();
        write_text_file(pki.file("crl.pem"), "not a CRL\n");
    }
    CHECK_FALSE(served.configuration->reload(*served.server));
    check_old_configuration(served);
    CHECK(served.configuration->generations() == 1);
}

TEST_CASE("reload: a request in flight keeps its generation until it is answered; a replaced generation is "
          "freed once no request holds it") {
    dev_pki pki;
    configuration_files files(pki);
    served_configuration served(pki, files);
    files.change_everything();

    // A request answered while it is still in the application (its responder runs before its
    // handler returns), reloading from inside: its generation must outlive the reload.
    http::request req;
    req.method = "GET";
    req.target = "/fhir/Patient/9000000009";
    req.headers.push_back({"Authorization", "Bearer " + token(pki, "RX1", "R8000")});
    req.secure = true;
    req.client_ods = "RX1";
    int status = 0;
    bool reloaded = false;
    std::size_t generations_while_answering = 0;
    served.configuration->provider_handler()(std::move(req), [&](http::response out) {
        status = out.status;
        reloaded = served.configuration->reload(*served.server);
        generations_while_answering = served.configuration->generations();
    });
    CHECK(status == 403); // RX1 was not connected when the request arrived
    CHECK(reloaded);
    CHECK(generations_while_answering == 2); // the request's generation, held, and the new one
    CHECK(served.status("RX1", "R8000", "other-signing.key") == 404);
    CHECK(served.configuration->reload(*served.server));
    CHECK(served.configuration->generations() == 1); // freed by the next reload, unused
}

TEST_CASE("reload: an open connection survives a reload and is served under the new configuration") {
    dev_pki pki;
    configuration_files files(pki);
    served_configuration served(pki, files);
    const std::string port = std::to_string(served.server->bound_port(0));
    const std::string request = "printf 'GET /fhir/Patient/9000000009 HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer " +
                                token(pki, "8JK23", "R8014") + "\\r\\n%b\\r\\n'";
    // The client sends its second request once `reloaded` exists.
    const std::string reloaded = pki.file("reloaded");
    caregate::testing::background reload([&] { // its REQUIREs fail the test, not the runner
        std::this_thread::sleep_for(500ms); // the first request answered, the connection open
        files.change_everything();          // revokes 8JK23's certificate, of the open connection
        CHECK(served.configuration->reload(*served.server));
        write_text_file(reloaded, "");
    });
    const auto out = run("(" + request + " ''; while [ ! -e '" + reloaded + "' ]; do sleep 0.1; done; " +
                                 request + " 'Connection: close\\r\\n'; sleep 1) | timeout 20 openssl s_client -quiet "
                                 "-connect 127.0.0.1:" + port + " -cert '" + pki.file("client-8JK23.crt") + "' -key '" +
                                 pki.file("client-8JK23.key") + "' 2>/dev/null");
    reload.join();
    INFO(out.text);
    // Both requests answered on the one connection: the second under the new configuration, whose
    // trusted key no longer signs the token (401).
    CHECK(contains(out.text, "HTTP/1.1 404"));
    CHECK(contains(out.text, "HTTP/1.1 401"));
    CHECK(served.status("8JK23", "R8014") == 0); // a new connection meets the new CRL
}

namespace {

/// `caregate serve` as a child process, its standard error in a file; stopped with SIGTERM.
class serve_process {
public:
    serve_process(const std::vector<std::string>& arguments, std::string log) : log_(std::move(log)) {
        const std::string binary = (fs::path(CAREGATE_BINARY_DIR) / "caregate").string();
        REQUIRE(fs::exists(binary));
        std::vector<std::string> words{binary, "serve"};
        words.insert(words.end(), arguments.begin(), arguments.end());
        std::vector<char*> argv;
        for (auto& word : words)
            argv.push_back(word.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, 2, 1);
        REQUIRE(::posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) == 0);
        posix_spawn_file_actions_destroy(&actions);
    }
    ~serve_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    /// Waits (up to 10 s) until the log holds `text` `count` times; returns the log.
    std::string wait_for(const std::string& text, int count = 1) const {
        std::string log;
        for (int i = 0; i < 200; ++i) {
            log = read_text(log_);
            int found = 0;
            for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1))
                ++found;
            if (found >= count)
                return log;
            std::this_thread::sleep_for(50ms);
        }
        FAIL("caregate serve did not log '" << text << "'; its log:\n" << log);
        return log;
    }
    void signal(int number) const { REQUIRE(::kill(pid_, number) == 0); }
    /// Sends SIGTERM and returns the exit status.
    int stop() {
        signal(SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    std::string log_;
    pid_t pid_ = -1;
};

} // namespace

TEST_CASE("SIGHUP: caregate serve --crl reloads on a real SIGHUP, and keeps what it has when the reload fails") {
    dev_pki pki;
    serve_process serve({"--db", pki.file("serve.db"), "--listen", "127.0.0.1:0", "--patient-listen", "none",
                         "--admin-listen", "none", "--certs", pki.dir.string(), "--crl", pki.file("crl.pem")},
                        pki.file("serve.log"));
    const std::string started = serve.wait_for("caregate: serving providers");
    const auto at = started.find("on 127.0.0.1:");
    REQUIRE(at != std::string::npos);
    const std::string url = "https://127.0.0.1:" + std::to_string(std::stoi(started.substr(at + 13))) + "/fhir/metadata";
    CHECK(contains(pki.curl_as("RX1", url).text, "[200]"));

    pki.make("--revoke RX1");
    serve.signal(SIGHUP);
    serve.wait_for("caregate: reloaded the policy");
    CHECK(refused_at_handshake(pki.curl_as("RX1", url)));
    CHECK(contains(pki.curl_as("A81001", url).text, "[200]"));

    write_text_file(pki.file("crl.pem"), "not a CRL\n");
    serve.signal(SIGHUP);
    const std::string log = serve.wait_for("caregate: the reload failed");
    CHECK(contains(log, "holds no CRL"));
    CHECK(refused_at_handshake(pki.curl_as("RX1", url)));
    CHECK(contains(pki.curl_as("A81001", url).text, "[200]"));

    CHECK(serve.stop() == 0);
}
