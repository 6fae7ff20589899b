// `caregate serve`: opens the store and serves the provider listener, the patient-facing listener
// (citizens' apps: no client certificate, NHS login-shaped tokens) and the admin listener (health,
// readiness, metrics) until SIGINT/SIGTERM; SIGHUP reloads what live_configuration.hpp lists.
#include "cli/commands.hpp"
#include "cli/demo_data.hpp"
#include "cli/live_configuration.hpp"
#include "cli/options.hpp"

#include "admin/admin_endpoint.hpp"
#include "auth/token.hpp"
#include "net/server.hpp"
#include "interactions/binary.hpp"
#include "interactions/context.hpp"
#include "rest/cors.hpp"
#include "rest/request_metrics.hpp"
#include "storage/audit_anchor.hpp"
#include "citizen_app/citizen_app.hpp"
#include "dev_idp/dev_idp.hpp"
#include "export/runner.hpp"
#include "storage/store.hpp"

#include <boost/url/parse.hpp>

#include <sys/resource.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace caregate::cli {

namespace {

struct serve_settings {
    std::string db = "caregate.db";
    std::string listen = "127.0.0.1:8443";
    std::string certs = "certs/dev";
    bool plain = false;
    unsigned threads = 0;
    std::string policy_file;        ///< empty: the shipped default
    std::string organisations_file; ///< empty: the shipped default
    std::string issuers_file;       ///< empty: the development issuer from --certs
    std::string crl_file;           ///< empty: client certificates are not checked for revocation
    std::string base_url; ///< derived from --listen and --plain when not given
    /// The patient-facing endpoint: on by default beside the provider listener, so that a
    /// development server offers both; "none" turns it off.
    std::string patient_listen = "127.0.0.1:9443";
    std::string patient_base_url; ///< derived from --patient-listen and --plain when not given
    /// The admin listener (/health, /ready, /metrics): plain HTTP without authentication, so on
    /// loopback unless the operator names another address; "none" turns it off. Not 9090, where a
    /// Prometheus server itself listens by default.
    std::string admin_listen = "127.0.0.1:9464";
    /// The identity provider citizens log in with. caregate is not one: the URLs left empty are
    /// derived as placeholders that say so (dev_idp_path); production points them at NHS login.
    interactions::smart_settings smart;
    std::vector<std::string> cors_origins; ///< the patient-facing endpoint's (rest/cors.hpp); none by default
    bool dev_idp = false; ///< the development login (dev_idp/dev_idp.hpp)
    bool demo_data = false;
    net::limits limits;
    unsigned max_count = 1000;
    bool conditional_delete_multiple = false;
    std::size_t max_bundle_entries = 10000;
    /// Population health exports (README, "Population health exports"): jobs this node runs at once,
    /// and how long a finished job's files are kept.
    exports::runner_settings exports;
    std::string export_keys_file;      ///< empty: export-keys.json of --certs, when there
    std::string deidentification_file; ///< empty: the shipped profile
    /// The audit trail's anchors (README, "The audit trail"): none without a key, and then the
    /// start says so. No default key: the anchors file's place is the operator's decision (out of
    /// reach of whoever can write the database), which no default can make.
    std::string audit_key;
    storage::audit_anchoring anchoring; ///< the anchors file and the interval
};

bool to_bool(const std::string& text, const char* flag) {
    if (text == "true")
        return true;
    if (text == "false")
        return false;
    throw std::invalid_argument(std::string("--") + flag + " takes true or false");
}

std::vector<option> serve_options(serve_settings& s) {
    return {
        {"config", "FILE", "read options from a JSON object whose keys are these option names; flags win", {}},
        {"db", "DATABASE", "the database: a SQLite file, as PATH or sqlite:PATH (default ./caregate.db; created if absent), or a PostgreSQL database, as postgresql://USER@HOST:PORT/DATABASE",
         [&](const std::string& v) { s.db = v; }},
        {"listen", "HOST:PORT", "the provider listener's address (default 127.0.0.1:8443)",
         [&](const std::string& v) { s.listen = v; }},
        {"certs", "DIR", "server certificate, key, client CA and dev token key: DIR/server.crt, DIR/server.key, "
                         "DIR/ca.crt, DIR/token-signing.pub (default ./certs/dev, made by certs/make-dev-certs.sh)",
         [&](const std::string& v) { s.certs = v; }},
        {"plain", "", "serve HTTP without TLS, on both listeners; only on loopback addresses (behind a TLS proxy, "
                      "for benchmarks)",
         [&](const std::string& v) { s.plain = to_bool(v, "plain"); }},
        {"threads", "N", "threads serving requests (default 0: one per core, two per core on PostgreSQL)",
         [&](const std::string& v) { s.threads = to_number<unsigned>(v, "threads"); }},
        {"policy", "FILE", "the access policy (JSON; default: the shipped gateway/access/default-policy.json)",
         [&](const std::string& v) { s.policy_file = v; }},
        {"orgs", "FILE", "the connected organisations, a JSON array of {ods, name, sector} "
                         "(default: the shipped gateway/access/default-organisations.json)",
         [&](const std::string& v) { s.organisations_file = v; }},
        {"issuers", "FILE", "trusted token issuers, a JSON array of {issuer, public_key_pem_file | jwks_file} "
                            "(default: the development issuer caregate-dev with DIR/token-signing.pub from --certs)",
         [&](const std::string& v) { s.issuers_file = v; }},
        {"crl", "FILE", "certificate revocation lists (PEM, one or more) of the client CA: a client certificate "
                        "they revoke is refused at the handshake; read again on SIGHUP (default: none)",
         [&](const std::string& v) { s.crl_file = v; }},
        {"base-url", "URL", "the URL the server calls itself in links and Location "
                            "(default https://localhost:PORT/fhir, http:// with --plain)",
         [&](const std::string& v) { s.base_url = v; }},
        {"patient-listen", "HOST:PORT", "the patient-facing listener's address: citizens' apps, TLS without client "
                                        "certificates (default 127.0.0.1:9443; 'none' turns it off)",
         [&](const std::string& v) { s.patient_listen = v; }},
        {"admin-listen", "HOST:PORT", "the admin listener's address: /health, /ready and /metrics over plain HTTP "
                                      "without authentication (default 127.0.0.1:9464; 'none' turns it off; an "
                                      "address that is not loopback is served when given, to whoever reaches it)",
         [&](const std::string& v) { s.admin_listen = v; }},
        {"patient-base-url", "URL", "the URL the patient-facing endpoint calls itself, and its tokens' audience "
                                    "(default https://localhost:PORT/fhir, http:// with --plain)",
         [&](const std::string& v) { s.patient_base_url = v; }},
        {"smart-issuer", "ISS", "the identity provider citizens log in with, as SMART discovery names it; its keys "
                                "must be among --issuers (default caregate-dev, the issuer of caregate token; "
                                "production: NHS login's)",
         [&](const std::string& v) { s.smart.issuer = v; }},
        {"smart-authorize-url", "URL", "the identity provider's authorization endpoint (default: the development "
                                       "login's, ORIGIN/dev-idp/authorize, served only with --dev-idp)",
         [&](const std::string& v) { s.smart.authorization_endpoint = v; }},
        {"smart-token-url", "URL", "the identity provider's token endpoint (default: the development login's, "
                                   "ORIGIN/dev-idp/token)",
         [&](const std::string& v) { s.smart.token_endpoint = v; }},
        {"smart-jwks-url", "URL", "the identity provider's JSON Web Key Set (default: the development login's, "
                                  "ORIGIN/dev-idp/jwks.json)",
         [&](const std::string& v) { s.smart.jwks_uri = v; }},
        {"cors-origins", "ORIGINS", "the origins browser apps may call the patient-facing endpoint's API from, "
                                    "comma-separated, each scheme://host[:port] (e.g. https://app.example.nhs.uk); "
                                    "the SMART discovery documents answer any origin (default: none)",
         [&](const std::string& v) {
             auto parsed = rest::cors_origins::parse(v);
             if (!parsed)
                 throw std::invalid_argument(parsed.failure().issues.front().diagnostics);
             s.cors_origins = std::move(parsed->allowed);
         }},
        {"max-body-bytes", "N", "largest request body; more gets 413 (default 16777216, 16 MiB)",
         [&](const std::string& v) { s.limits.body_bytes = to_number<std::size_t>(v, "max-body-bytes"); }},
        {"max-binary-bytes", "N", "largest Binary sent as its raw bytes (POST Binary, PUT Binary/{id}); more gets "
                                  "413 (default 67108864, 64 MiB; a Binary sent as JSON or FHIR XML is held to --max-body-bytes)",
         [&](const std::string& v) { s.limits.binary_body_bytes = to_number<std::size_t>(v, "max-binary-bytes"); }},
        {"max-bodies-bytes", "N", "request bodies held at once per listener, received or being handled; "
                                  "a request over it gets 503 (default 268435456, 256 MiB; at least --max-body-bytes)",
         [&](const std::string& v) { s.limits.bodies_bytes = to_number<std::size_t>(v, "max-bodies-bytes"); }},
        {"max-header-bytes", "N", "largest request line and headers; more gets 431 (default 16384)",
         [&](const std::string& v) { s.limits.header_bytes = to_number<std::size_t>(v, "max-header-bytes"); }},
        {"read-timeout", "SECONDS", "time to receive a whole request; slower clients get 408 (default 30)",
         [&](const std::string& v) { s.limits.read_timeout = std::chrono::seconds(to_number<long>(v, "read-timeout")); }},
        {"idle-timeout", "SECONDS", "time a kept-alive connection may idle before it is closed (default 60)",
         [&](const std::string& v) { s.limits.idle_timeout = std::chrono::seconds(to_number<long>(v, "idle-timeout")); }},
        {"max-connections", "N", "open connections per listener; more are closed at once (default 10000)",
         [&](const std::string& v) { s.limits.max_connections = to_number<std::size_t>(v, "max-connections"); }},
        {"max-count", "N", "largest page (_count) served (default 1000)",
         [&](const std::string& v) { s.max_count = to_number<unsigned>(v, "max-count"); }},
        {"conditional-delete-multiple", "",
         "let DELETE [type]?criteria delete every match (up to 100); without it several matches get 412",
         [&](const std::string& v) { s.conditional_delete_multiple = to_bool(v, "conditional-delete-multiple"); }},
        {"max-bundle-entries", "N", "most entries in one transaction or batch Bundle; more get 413 (default 10000)",
         [&](const std::string& v) { s.max_bundle_entries = to_number<std::size_t>(v, "max-bundle-entries"); }},
        {"export-jobs", "N", "Bulk Data export jobs this node runs at once (default 1; 0: none here, another "
                             "node of the same database runs them)",
         [&](const std::string& v) { s.exports.workers = to_number<unsigned>(v, "export-jobs"); }},
        {"export-retention", "HOURS", "how long a finished export's files are kept before they are deleted "
                                      "(default 24)",
         [&](const std::string& v) {
             s.exports.retention = std::chrono::hours(to_number<unsigned>(v, "export-retention"));
         }},
        {"export-file-bytes", "N", "an export's output file is closed once it holds this many bytes, and what a job "
                                   "holds in memory is committed at this much: smaller files for clients that "
                                   "download in parallel, larger for fewer (default 4194304)",
         [&](const std::string& v) {
             s.exports.file_bytes = std::max<std::size_t>(1, to_number<std::size_t>(v, "export-file-bytes"));
         }},
        {"export-keys", "FILE", "the pseudonymisation keys of the recipients of pseudonymised exports: a JSON "
                                "object from ODS codes to hex keys (default: export-keys.json of --certs, if there)",
         [&](const std::string& v) { s.export_keys_file = v; }},
        {"deidentification", "FILE", "the de-identification profile of pseudonymised exports (default: the shipped "
                                     "one, README \"Population health exports\")",
         [&](const std::string& v) { s.deidentification_file = v; }},
        {"dev-idp", "", "serve a development login (SMART standalone launch: authorize, token, jwks.json under "
                        "/dev-idp/ on the patient-facing listener) for test citizens; refused unless every listener "
                        "is on loopback (default off; production uses NHS login)",
         [&](const std::string& v) { s.dev_idp = to_bool(v, "dev-idp"); }},
        {"demo-data", "", "load three demo citizens (test-range NHS numbers) and a few records at start",
         [&](const std::string& v) { s.demo_data = to_bool(v, "demo-data"); }},
        {"audit-key", "FILE", "the Ed25519 private key (PEM) that signs the audit chain's anchors; without it the "
                              "trail is not anchored (needs --audit-anchors)",
         [&](const std::string& v) { s.audit_key = v; }},
        {"audit-anchors", "FILE", "the append-only file the signed anchors go to, one line each; keep it where "
                                  "whoever can write the database cannot rewrite it",
         [&](const std::string& v) { s.anchoring.anchors_path = v; }},
        {"audit-anchor-interval", "SECONDS", "how often the audit chain's tip is anchored, when it moved; also at "
                                             "shutdown (default 60)",
         [&](const std::string& v) {
             const auto seconds = to_number<unsigned>(v, "audit-anchor-interval");
             if (seconds == 0)
                 throw std::invalid_argument("--audit-anchor-interval needs 1 or more seconds");
             s.anchoring.interval = std::chrono::seconds(seconds);
         }},
    };
}

std::pair<std::string, std::uint16_t> split_listen(const std::string& listen, const char* flag) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos)
        throw std::invalid_argument(std::string("--") + flag + " needs HOST:PORT, not '" + listen + "'");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return {host, to_number<std::uint16_t>(listen.substr(colon + 1), flag)};
}

/// Where the SMART URLs point when not configured: under the patient endpoint's origin, on a path
/// that says what they are. caregate serves nothing there (404): development apps get their tokens
/// from `caregate token --citizen`, and production names NHS login's endpoints.
constexpr const char* dev_idp_path = "/dev-idp";

/// scheme://host[:port] of a URL.
std::string origin_of(const std::string& url, const char* flag) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed || !parsed->has_authority())
        throw std::invalid_argument(std::string("--") + flag + " is not an absolute URL: " + url);
    return std::string(parsed->scheme()) + "://" + std::string(parsed->encoded_authority());
}

/// What SIGHUP reloads, and the settings it is made with.
reloadable_settings reloadable_part(const serve_settings& settings, bool patient_endpoint) {
    reloadable_settings reloadable;
    reloadable.policy_file = settings.policy_file;
    reloadable.organisations_file = settings.organisations_file;
    reloadable.issuers_file = settings.issuers_file;
    reloadable.certs_dir = settings.certs;
    reloadable.crl_file = settings.crl_file;
    reloadable.provider.base_url = settings.base_url;
    reloadable.provider.max_count = settings.max_count;
    reloadable.provider.conditional_delete_multiple = settings.conditional_delete_multiple;
    reloadable.provider.max_bundle_entries = settings.max_bundle_entries;
    reloadable.provider_tokens.audience = settings.base_url;
    if (patient_endpoint) {
        interactions::rest_config patients = reloadable.provider;
        patients.base_url = settings.patient_base_url;
        patients.patient_endpoint = true;
        patients.smart = settings.smart;
        patients.cors_origins = settings.cors_origins;
        reloadable.patients = std::move(patients);
        reloadable.citizen_tokens = reloadable.provider_tokens;
        reloadable.citizen_tokens.audience = settings.patient_base_url;
        reloadable.citizen_tokens.kind = auth::token_kind::citizen;
    }
    return reloadable;
}

} // namespace


namespace {

/// Open connections need a file descriptor each, and so do the database's connections: with the
/// soft limit many systems start with (1,024), --max-connections' 10,000 could never be reached,
/// and a flood of idle connections would make accept() and SQLite's opens fail (EMFILE) for
/// everyone. So the soft limit is raised to the hard one (as Go and nginx do), and where even that
/// cannot hold --max-connections on every listener beside a reserve for the store, the limit is
/// lowered to fit, saying so: connections beyond it are refused at once, and the rest are served.
void fit_connections_to_descriptors(net::limits& limits, std::size_t listeners) {
    constexpr rlim_t reserve = 256; // the database's files per connection, certificates, logs
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) != 0)
        return;
    if (files.rlim_cur < files.rlim_max) {
        rlimit raised = files;
        raised.rlim_cur = files.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
            files = raised;
    }
    if (files.rlim_cur == RLIM_INFINITY || listeners == 0)
        return;
    const rlim_t room = files.rlim_cur > 2 * reserve ? files.rlim_cur - reserve : files.rlim_cur / 2;
    const std::size_t fits = static_cast<std::size_t>(room / listeners);
    if (limits.max_connections > fits) {
        std::cerr << "caregate: --max-connections lowered from " << limits.max_connections << " to " << fits
                  << " a listener: the process may open " << files.rlim_cur
                  << " files (ulimit -n); raise that limit to allow more\n";
        limits.max_connections = fits;
    }
}

/// A file's bytes; std::invalid_argument naming `what` when it cannot be read.
std::string read_whole_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::invalid_argument(std::string("cannot read ") + what + " " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The pseudonymisation keys and the de-identification profile of pseudonymised exports, read at
/// start: a file that does not parse stops the server (std::invalid_argument) rather than export
/// with the wrong rules.
void load_export_settings(serve_settings& s) {
    std::string keys_file = s.export_keys_file;
    if (keys_file.empty() && std::filesystem::exists(std::filesystem::path(s.certs) / "export-keys.json"))
        keys_file = (std::filesystem::path(s.certs) / "export-keys.json").string();
    if (!keys_file.empty())
        s.exports.keys = std::make_shared<const exports::pseudonym_keys>(
            exports::pseudonym_keys::parse(read_whole_file(keys_file, "the export keys file")));
    if (!s.deidentification_file.empty()) {
        auto profile = fhir::deidentification_profile::parse(
            read_whole_file(s.deidentification_file, "the de-identification profile"));
        if (!profile)
            throw std::invalid_argument(s.deidentification_file + ": " + profile.failure().issues.front().diagnostics);
        s.exports.profile = std::make_shared<const fhir::deidentification_profile>(std::move(*profile));
    }
}

/// Starts anchoring the audit chain, or says at start that it is not anchored. Throws
/// invalid_argument for options that do not fit, runtime_error when the database does not continue
/// the anchors file (audit_anchorer::start says which way).
std::unique_ptr<storage::audit_anchorer> start_anchoring(serve_settings& s, storage::store& store) {
    if (s.audit_key.empty() != s.anchoring.anchors_path.empty())
        throw std::invalid_argument("--audit-key and --audit-anchors go together");
    if (s.audit_key.empty()) {
        std::cerr << "caregate: the audit trail is NOT anchored (no --audit-key): whoever can write " << s.db
                  << " can rewrite its audit log, or remove its newest records, and caregate audit verify passes\n";
        return nullptr;
    }
    auto key = storage::audit_key::load_private(s.audit_key);
    if (!key)
        throw std::invalid_argument(key.failure().issues.front().diagnostics);
    const std::string key_id = key->id();
    s.anchoring.report = [](const std::string& line) { std::cerr << "caregate: " + line + "\n"; };
    auto started = storage::audit_anchorer::start(store, std::move(*key), s.anchoring);
    if (!started)
        throw std::runtime_error(started.failure().issues.front().diagnostics);
    std::cerr << "caregate: the audit trail is anchored every "
              << std::chrono::duration_cast<std::chrono::seconds>(s.anchoring.interval).count()
              << " s (when it moved) and at shutdown, in " << s.anchoring.anchors_path << " (key " << key_id << ")\n";
    return std::move(*started);
}

} // namespace

int serve(const std::vector<std::string>& args) {
    serve_settings settings;
    const auto table = serve_options(settings);
    for (const auto& a : args)
        if (a == "--help" || a == "-h") {
            std::cout << "Usage: caregate serve [options]\n\n"
                         "Serves the FHIR R4 API on an embedded SQLite database (or on PostgreSQL) until SIGINT or SIGTERM.\n"
                         "SIGHUP reloads --crl, --issuers, --policy and --orgs, keeping open connections.\n\n"
                         "Options:\n"
                      << describe_options(table);
            return 0;
        }
    try {
        parse_options(table, args);
        auto [host, port] = split_listen(settings.listen, "listen");
        if (settings.plain && !net::is_loopback(host))
            throw std::invalid_argument("--plain is only allowed on a loopback address (it serves without TLS)");
        if (settings.plain && !settings.crl_file.empty())
            throw std::invalid_argument("--crl needs TLS: with --plain no client certificate reaches caregate");
        if (settings.base_url.empty())
            settings.base_url = std::string(settings.plain ? "http" : "https") + "://localhost:" +
                                std::to_string(port) + "/fhir";
        const bool patient_endpoint = settings.patient_listen != "none";
        std::string patient_host;
        std::uint16_t patient_port = 0;
        bool placeholder_idp = false;
        if (patient_endpoint) {
            std::tie(patient_host, patient_port) = split_listen(settings.patient_listen, "patient-listen");
            if (settings.plain && !net::is_loopback(patient_host))
                throw std::invalid_argument("--plain serves the patient-facing endpoint without TLS too: "
                                            "--patient-listen must be a loopback address (or none)");
            if (settings.patient_base_url.empty())
                settings.patient_base_url = std::string(settings.plain ? "http" : "https") + "://localhost:" +
                                            std::to_string(patient_port) + "/fhir";
            const std::string dev_idp = origin_of(settings.patient_base_url, "patient-base-url") + dev_idp_path;
            for (auto [url, name] : {std::pair{&settings.smart.authorization_endpoint, "/authorize"},
                                     std::pair{&settings.smart.token_endpoint, "/token"},
                                     std::pair{&settings.smart.jwks_uri, "/jwks.json"}}) {
                if (url->empty()) {
                    *url = dev_idp + name;
                    placeholder_idp = true;
                } else if (settings.dev_idp) {
                    throw std::invalid_argument("--dev-idp serves the login itself: leave out --smart-authorize-url, "
                                                "--smart-token-url and --smart-jwks-url");
                }
            }
        }
        if (settings.dev_idp) {
            // Invariant 1 of dev_idp.hpp: a login that hands out any test citizen's token stays on this machine.
            if (!patient_endpoint)
                throw std::invalid_argument("--dev-idp needs the patient-facing endpoint (--patient-listen)");
            if (!net::is_loopback(host) || !net::is_loopback(patient_host) ||
                (settings.admin_listen != "none" && !net::is_loopback(split_listen(settings.admin_listen, "admin-listen").first)))
                throw std::invalid_argument("--dev-idp is refused unless every listener is on a loopback address: it "
                                            "logs anyone in as any test citizen");
            placeholder_idp = false;
        }

        const bool admin_listener = settings.admin_listen != "none";
        std::string admin_host;
        std::uint16_t admin_port = 0;
        if (admin_listener)
            std::tie(admin_host, admin_port) = split_listen(settings.admin_listen, "admin-listen");

        load_export_settings(settings);
        std::unique_ptr<storage::store> store = open_store(settings.db, storage::store_settings{}, "serve");
        if (!store)
            return 1;
        if (settings.demo_data)
            std::cerr << "caregate: demo data loaded (" << load_demo_data(*store) << " resources new or changed)\n";
        std::unique_ptr<storage::audit_anchorer> anchorer = start_anchoring(settings, *store);

        // What the FHIR applications count of the requests they answer, for the admin listener's /metrics.
        rest::request_metrics requests;
        // The policy, organisations and trusted issuers, as SIGHUP reloads them.
        live_configuration configuration(reloadable_part(settings, patient_endpoint), *store,
                                         admin_listener ? &requests : nullptr);
        if (const std::string warning = configuration.untrusted_smart_issuer(); !warning.empty())
            std::cerr << "caregate: " << warning << "\n";

        net::listener provider;
        provider.address = host;
        provider.port = port;
        provider.plain = settings.plain;
        if (!settings.plain) {
            const std::filesystem::path dir(settings.certs);
            provider.tls.certificate_file = (dir / "server.crt").string();
            provider.tls.private_key_file = (dir / "server.key").string();
            provider.tls.client_ca_file = (dir / "ca.crt").string();
            // Access control starts from the organisation the certificate names: it is mandatory.
            provider.tls.require_client_certificate = true;
            provider.tls.crl_file = settings.crl_file;
            for (const auto& file : {provider.tls.certificate_file, provider.tls.private_key_file})
                if (!std::filesystem::exists(file))
                    throw std::invalid_argument(file + " is missing: run certs/make-dev-certs.sh or give --certs DIR");
        }
        provider.handle = configuration.provider_handler();
        // A Binary's raw bytes may be larger than any other body (net::limits::binary_body_bytes).
        provider.takes_binary_body = interactions::detail::binary_upload_lines(settings.base_url);
        std::unique_ptr<dev_idp::provider> login;
        if (settings.dev_idp) {
            dev_idp::settings chosen;
            chosen.issuer = settings.smart.issuer;
            chosen.signing_key_pem = read_whole_file((std::filesystem::path(settings.certs) / "token-signing.key").string(),
                                                     "--dev-idp's signing key (certs/make-dev-certs.sh makes it)");
            chosen.audience = settings.patient_base_url;
            chosen.origins.allowed = settings.cors_origins;
            login = std::make_unique<dev_idp::provider>(std::move(chosen));
        }

        std::vector<net::listener> listeners;
        listeners.push_back(std::move(provider));
        if (patient_endpoint) {
            net::listener patients;
            patients.address = patient_host;
            patients.port = patient_port;
            patients.plain = settings.plain;
            if (!settings.plain) {
                // The same server certificate; no client certificate is asked for: citizens' apps
                // authenticate by their bearer token alone.
                patients.tls.certificate_file = listeners.front().tls.certificate_file;
                patients.tls.private_key_file = listeners.front().tls.private_key_file;
                patients.tls.client_ca_file.clear();
                patients.tls.require_client_certificate = false;
            }
            patients.handle = configuration.patient_handler();
            // The citizen app beside the API, on the same origin; it calls the login's token
            // endpoint too, wherever that is.
            citizen_app::settings app;
            app.fhir_base_url = settings.patient_base_url;
            const std::string token_origin = origin_of(settings.smart.token_endpoint, "smart-token-url");
            if (token_origin != origin_of(settings.patient_base_url, "patient-base-url"))
                app.connect_origins.push_back(token_origin);
            patients.handle = [app = std::make_shared<const citizen_app::server>(std::move(app)), login = login.get(),
                               fhir = std::move(patients.handle)](http::request req, http::responder done) {
                if (citizen_app::server::owns(req.target))
                    return done(app->answer(req));
                if (login && dev_idp::provider::owns(req.target))
                    return done(login->answer(req));
                fhir(std::move(req), std::move(done));
            };
            listeners.push_back(std::move(patients));
        }
        std::unique_ptr<admin::admin_endpoint> admin;
        if (admin_listener) {
            admin = std::make_unique<admin::admin_endpoint>(*store, requests);
            net::listener operators;
            operators.address = admin_host;
            operators.port = admin_port;
            operators.plain = true;
            operators.plain_on_any_address = true; // the operator named it: --admin-listen
            operators.handle = [endpoint = admin.get()](http::request req, http::responder done) {
                endpoint->handle(std::move(req), std::move(done));
            };
            listeners.push_back(std::move(operators));
        }
        const std::size_t admin_index = listeners.size() - 1;
        fit_connections_to_descriptors(settings.limits, listeners.size());
        net::server server(std::move(listeners), settings.limits,
                           settings.threads ? settings.threads : storage::default_request_threads(settings.db));
        server.on_hangup([&configuration, &server] { configuration.reload(server); });
        std::cerr << "caregate: serving providers at " << settings.base_url << " on " << host << ":"
                  << server.bound_port(0);
        if (patient_endpoint)
            std::cerr << " and patients at " << settings.patient_base_url << " on " << patient_host << ":"
                      << server.bound_port(1);
        else
            std::cerr << ", patient-facing endpoint off";
        std::cerr << " (database " << storage::printable_database_name(settings.db) << ")\n";
        if (admin_listener) {
            std::cerr << "caregate: admin listener (/health, /ready, /metrics; plain HTTP, no authentication) on http://"
                      << admin_host << ":" << server.bound_port(admin_index) << "\n";
            if (!net::is_loopback(admin_host))
                std::cerr << "caregate: warning: the admin listener's address " << admin_host
                          << " is not loopback: whoever reaches it reads /metrics and /ready\n";
        } else {
            std::cerr << "caregate: admin listener off\n";
        }
        if (login)
            std::cerr << "caregate: development login (--dev-idp) at "
                      << origin_of(settings.patient_base_url, "patient-base-url") << dev_idp_path
                      << "/authorize: anyone who reaches it logs in as any test citizen; production uses NHS login\n";
        if (placeholder_idp)
            std::cerr << "caregate: the SMART login URLs are development placeholders under "
                      << origin_of(settings.patient_base_url, "patient-base-url") << dev_idp_path
                      << " (caregate is not an identity provider; production sets --smart-authorize-url, "
                         "--smart-token-url, --smart-jwks-url and --smart-issuer to NHS login's)\n";
        // Export jobs run beside requests, reading with the configuration in use when each page is read.
        exports::runner export_runner(*store, [&configuration] { return configuration.provider_guard(); },
                                      settings.exports);
        server.run();
        export_runner.stop(); // their leases given back: a restart goes on from each job's last save
        // The last anchor covers every request answered (a clean shutdown), before the store closes.
        if (anchorer)
            if (auto stopped = anchorer->stop(); !stopped)
                std::cerr << "caregate: the audit chain's last anchor could not be made: "
                          << stopped.failure().issues.front().diagnostics << "\n";
        anchorer.reset();
        admin.reset(); // its readiness check asks the store
        // Drain the writer while the server still exists: a write's answer is posted to its session.
        store.reset();
        return 0;
    } catch (const std::invalid_argument& e) {
        std::cerr << "caregate serve: " << e.what() << "\n(see caregate serve --help)\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "caregate serve: " << e.what() << "\n";
        return 1;
    }
}

} // namespace caregate::cli
