// Tests of the admin listener (gateway/admin/admin_endpoint.cpp, readiness.cpp; `caregate serve
// --admin-listen`): a real server with a FHIR listener and the admin listener, both plain HTTP on
// loopback, spoken to by curl. /health answers while the process does; /ready says whether the
// database takes a commit, within its deadline, never hanging; /metrics is Prometheus text that
// counts what the FHIR listener answered, by interaction and status, with its latency. The admin
// listener serves nothing of FHIR, and `--admin-listen none` opens no port.
#include "application_fixture.hpp"
#include "net_fixture.hpp"

#include "../support/background.hpp"
#include "../support/command.hpp"
#include "../support/fault_vfs.hpp"
#include "../support/write_lock.hpp"

#include "admin/admin_endpoint.hpp"
#include "admin/prometheus_text.hpp"
#include "rest/request_metrics.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

using namespace caregate;
using namespace caregate::testing;

namespace {

struct reply {
    int status = 0;
    std::string head; ///< status line and headers
    std::string body;
    std::string header(const std::string& name) const {
        std::istringstream lines(head);
        for (std::string line; std::getline(lines, line);) {
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            const auto colon = line.find(':');
            if (colon == std::string::npos)
                continue;
            std::string field = line.substr(0, colon);
            std::transform(field.begin(), field.end(), field.begin(), ::tolower);
            std::string wanted = name;
            std::transform(wanted.begin(), wanted.end(), wanted.begin(), ::tolower);
            if (field == wanted)
                return line.substr(colon + 2);
        }
        return {};
    }
};

/// One request with curl, over plain HTTP to 127.0.0.1.
reply request(std::uint16_t port, const std::string& method, const std::string& target,
              const std::string& options = {}) {
    const std::string how = method == "HEAD" ? "-I" : "-X " + method;
    const auto out = run("curl -sS -i --max-time 10 " + how + " " + options + " 'http://127.0.0.1:" +
                         std::to_string(port) + target + "' 2>/dev/null");
    reply r;
    const auto split = out.text.find("\r\n\r\n");
    r.head = out.text.substr(0, split);
    r.body = split == std::string::npos ? std::string() : out.text.substr(split + 4);
    if (r.head.size() > 12 && r.head.starts_with("HTTP/1.1 "))
        r.status = std::stoi(r.head.substr(9, 3));
    return r;
}

/// The Prometheus text format read back, strictly: every line a HELP, a TYPE, or a sample of the
/// family whose TYPE came last; label values with their escapes; values as numbers; each histogram
/// series' buckets cumulative, ending with le="+Inf" equal to its _count. What breaks a rule is a
/// problem; samples are keyed by name and labels as written.
struct exposition {
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types; ///< family -> type
    std::vector<std::string> problems;

    double at(const std::string& key) const {
        const auto found = samples.find(key);
        return found == samples.end() ? 0 : found->second;
    }
};

exposition parse_prometheus(const std::string& text) {
    exposition out;
    static const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    static const std::regex label_re(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)")re");
    std::set<std::string> helped;
    std::string current; // the family whose samples may come now
    // Per histogram series (name and labels without le): the buckets in order, and the count.
    std::map<std::string, std::vector<std::pair<std::string, double>>> buckets;
    std::map<std::string, double> counts;
    auto problem = [&](const std::string& why, const std::string& line) { out.problems.push_back(why + ": " + line); };

    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const std::string rest = line.substr(7);
            const auto space = rest.find(' ');
            const std::string name = rest.substr(0, space);
            if (!std::regex_match(name, name_re) || space == std::string::npos)
                problem("a comment without a metric name", line);
            if (line.starts_with("# HELP ")) {
                if (!helped.insert(name).second)
                    problem("a second HELP", line);
                continue;
            }
            const std::string type = rest.substr(space + 1);
            if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
                problem("an unknown type", line);
            if (!out.types.emplace(name, type).second)
                problem("a second TYPE", line);
            current = name;
            continue;
        }
        if (line.empty() || line.front() == '#') {
            problem("an unexpected line", line);
            continue;
        }
        // name{labels} value
        const auto brace = line.find('{');
        const auto end_of_name = std::min(brace, line.find(' '));
        const std::string name = line.substr(0, end_of_name);
        std::string labels, le;
        std::size_t value_at = end_of_name;
        if (brace != std::string::npos && brace == end_of_name) {
            const auto close = line.rfind('}');
            if (close == std::string::npos) {
                problem("labels not closed", line);
                continue;
            }
            labels = line.substr(brace + 1, close - brace - 1);
            value_at = close + 1;
            // Every label pair, comma-separated, must match exactly.
            std::string rebuilt;
            for (std::sregex_iterator it(labels.begin(), labels.end(), label_re), stop; it != stop; ++it) {
                if (!rebuilt.empty())
                    rebuilt += ',';
                rebuilt += it->str();
                if ((*it)[1] == "le")
                    le = (*it)[2];
            }
            if (rebuilt != labels)
                problem("labels not in the format", line);
        }
        if (value_at >= line.size() || line[value_at] != ' ') {
            problem("no value", line);
            continue;
        }
        const std::string value_text = line.substr(value_at + 1);
        double value = 0;
        if (value_text == "+Inf")
            value = INFINITY;
        else if (value_text == "-Inf")
            value = -INFINITY;
        else if (value_text == "NaN")
            value = NAN;
        else if (auto [ptr, ec] = std::from_chars(value_text.data(), value_text.data() + value_text.size(), value);
                 ec != std::errc() || ptr != value_text.data() + value_text.size())
            problem("a value that is not a number", line);
        // The family: the name, or for a histogram the name without its suffix.
        std::string family = name;
        for (const std::string suffix : {"_bucket", "_sum", "_count"})
            if (name.ends_with(suffix) && out.types.count(name.substr(0, name.size() - suffix.size())) &&
                out.types.at(name.substr(0, name.size() - suffix.size())) == "histogram")
                family = name.substr(0, name.size() - suffix.size());
        if (family != current)
            problem("a sample outside its family's block (or with no TYPE)", line);
        if (!out.samples.emplace(line.substr(0, value_at), value).second)
            problem("a sample written twice", line);
        if (out.types.count(family) && out.types.at(family) == "histogram") {
            std::string series = labels;
            series = std::regex_replace(series, std::regex(R"re(,?le="[^"]*")re"), "");
            if (name.ends_with("_bucket"))
                buckets[family + "{" + series + "}"].emplace_back(le, value);
            else if (name.ends_with("_count"))
                counts[family + "{" + series + "}"] = value;
        }
    }
    for (const auto& [series, list] : buckets) {
        for (std::size_t i = 1; i < list.size(); ++i)
            if (list[i].second < list[i - 1].second)
                out.problems.push_back("buckets not cumulative: " + series);
        if (list.empty() || list.back().first != "+Inf")
            out.problems.push_back("no +Inf bucket last: " + series);
        else if (!counts.count(series) || counts.at(series) != list.back().second)
            out.problems.push_back("+Inf is not _count: " + series);
    }
    return out;
}

/// A FHIR application whose requests are counted, on a plain loopback listener (0), beside the admin
/// listener (1), both served by one server as `caregate serve` does.
struct admin_fixture {
    rest::request_metrics requests;
    application_fixture fhir;
    std::unique_ptr<admin::admin_endpoint> admin;
    std::unique_ptr<running_server> server;

    explicit admin_fixture(admin::readiness_settings settings = {},
                           std::chrono::milliseconds busy_timeout = std::chrono::milliseconds(5000),
                           std::string vfs = {},
                           std::size_t max_audit_backlog = storage::sqlite_options{}.max_audit_backlog) {
        fhir.metrics = &requests;
        fhir.busy_timeout = busy_timeout;
        fhir.vfs = std::move(vfs);
        fhir.max_audit_backlog = max_audit_backlog;
        fhir.restart();
        admin = std::make_unique<admin::admin_endpoint>(*fhir.store, requests, settings);
        std::vector<net::listener> listeners(2);
        for (auto& l : listeners) {
            l.address = "127.0.0.1";
            l.port = 0;
            l.plain = true;
        }
        listeners[0].handle = [app = fhir.app.get()](http::request req, http::responder done) {
            app->handle(std::move(req), std::move(done));
        };
        listeners[1].handle = [endpoint = admin.get()](http::request req, http::responder done) {
            endpoint->handle(std::move(req), std::move(done));
        };
        server = std::make_unique<running_server>(std::move(listeners), net::limits{});
    }
    ~admin_fixture() {
        server.reset();
        admin.reset(); // its readiness check asks the store, which the fixture closes after
    }

    std::uint16_t fhir_port() const { return static_cast<std::uint16_t>(std::stoi(server->port(0))); }
    std::uint16_t admin_port() const { return static_cast<std::uint16_t>(std::stoi(server->port(1))); }
    reply admin_get(const std::string& path, const std::string& method = "GET") const {
        return request(admin_port(), method, path);
    }
    exposition metrics() const {
        const reply r = admin_get("/metrics");
        REQUIRE(r.status == 200);
        CHECK(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
        exposition parsed = parse_prometheus(r.body);
        for (const auto& problem : parsed.problems)
            FAIL_CHECK(problem);
        return parsed;
    }
};

const std::string requests_key = "caregate_http_requests_total";
const std::string latency_key = "caregate_http_request_duration_seconds";

std::string counted(const std::string& interaction, const std::string& status) {
    return requests_key + "{endpoint=\"provider\",interaction=\"" + interaction + "\",status=\"" + status + "\"}";
}

} // namespace

TEST_CASE("the exposition parser of these tests finds what breaks the format") {
    CHECK(parse_prometheus("# TYPE a counter\na 1\n").problems.empty());
    CHECK_FALSE(parse_prometheus("a 1\n").problems.empty());                         // no TYPE
    CHECK_FALSE(parse_prometheus("# TYPE a counter\na{x=\"q\"q\"} 1\n").problems.empty()); // a bare quote
    CHECK_FALSE(parse_prometheus("# TYPE a counter\na one\n").problems.empty());     // not a number
    CHECK_FALSE(parse_prometheus("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n")
                    .problems.empty()); // not cumulative
    CHECK_FALSE(parse_prometheus("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n").problems.empty());
}

TEST_CASE("admin listener: /health is 200 ok; a method other than GET or HEAD is 405 with Allow; every other path is 404, FHIR's too") {
    admin_fixture f;
    const reply health = f.admin_get("/health");
    CHECK(health.status == 200);
    CHECK(health.body == "ok\n");
    CHECK(health.header("Content-Type") == "text/plain; charset=utf-8");
    const reply head = f.admin_get("/health", "HEAD");
    CHECK(head.status == 200);
    CHECK(head.body.empty());

    for (const std::string path : {"/", "/fhir/metadata", "/fhir/Patient/9000000009", "/metadata", "/healthz",
                                   "/metrics/extra", "/fhir/.well-known/smart-configuration"}) {
        CAPTURE(path);
        const reply r = f.admin_get(path);
        CHECK(r.status == 404);
        CHECK(r.body.find("resourceType") == std::string::npos); // no FHIR OperationOutcome: not a FHIR server
    }
    for (const std::string method : {"POST", "PUT", "DELETE", "PATCH"})
        for (const std::string path : {"/health", "/ready", "/metrics"}) {
            CAPTURE(method);
            CAPTURE(path);
            const reply r = f.admin_get(path, method);
            CHECK(r.status == 405);
            CHECK(r.header("Allow") == "GET, HEAD");
        }
    // ...and the FHIR listener does not serve the admin pages.
    CHECK(request(f.fhir_port(), "GET", "/health").status == 404);
}

TEST_CASE("admin listener: /metrics is Prometheus text and counts a FHIR request by interaction and status, with its latency bucket") {
    admin_fixture f;
    const exposition before = f.metrics();
    CHECK(before.types.at(requests_key) == "counter");
    CHECK(before.types.at(latency_key) == "histogram");
    const std::string capabilities_count = latency_key + "_count{endpoint=\"provider\",interaction=\"capabilities\"}";
    CHECK(before.samples.count(capabilities_count) == 1); // every series, before any request

    const auto started = std::chrono::steady_clock::now();
    const reply metadata = request(f.fhir_port(), "GET", "/fhir/metadata");
    const auto took = std::chrono::steady_clock::now() - started;
    REQUIRE(metadata.status == 200);
    // A read with no token (401), a path no row serves (404), a method the base does not allow (405).
    CHECK(request(f.fhir_port(), "GET", "/fhir/Patient/9000000009").status == 401);
    CHECK(request(f.fhir_port(), "GET", "/fhir/Patient/9000000009/nothing/here").status == 404);
    CHECK(request(f.fhir_port(), "DELETE", "/fhir").status == 405);
    // A write through the application (an authenticated provider system): create, 201.
    REQUIRE(f.fhir.call("PUT", "/Patient/9000000017", patient_json("9000000017", R"("id":"9000000017")")).status ==
            201);

    const exposition after = f.metrics();
    CHECK(after.at(counted("capabilities", "200")) - before.at(counted("capabilities", "200")) == 1);
    CHECK(after.at(counted("read", "401")) - before.at(counted("read", "401")) == 1);
    CHECK(after.at(counted("unrouted", "404")) - before.at(counted("unrouted", "404")) == 1);
    CHECK(after.at(counted("unrouted", "405")) - before.at(counted("unrouted", "405")) == 1);
    CHECK(after.at(counted("update", "201")) - before.at(counted("update", "201")) == 1);
    CHECK(after.at(capabilities_count) - before.at(capabilities_count) == 1);

    // Its latency: at most what the client measured, so in every bucket from the one that holds that.
    const double seconds = std::chrono::duration<double>(took).count();
    int buckets_checked = 0;
    for (const double le : {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0}) {
        if (le < seconds)
            continue;
        const std::string bound = admin::format_value(le);
        const std::string key =
            latency_key + "_bucket{endpoint=\"provider\",interaction=\"capabilities\",le=\"" + bound + "\"}";
        REQUIRE(after.samples.count(key) == 1);
        CHECK(after.at(key) - before.at(key) == 1);
        ++buckets_checked;
    }
    CHECK(buckets_checked > 0);
    const std::string sum = latency_key + "_sum{endpoint=\"provider\",interaction=\"capabilities\"}";
    CHECK(after.at(sum) - before.at(sum) > 0);
    CHECK(after.at(sum) - before.at(sum) <= seconds);

    // The store's figures are there, measured: the write's commit among them.
    CHECK(after.at("caregate_store_group_writes_total") - before.at("caregate_store_group_writes_total") >= 1);
    CHECK(after.at("caregate_store_commit_duration_seconds_count") >
          before.at("caregate_store_commit_duration_seconds_count"));
    CHECK(after.samples.count("caregate_store_write_queue_jobs") == 1);
    CHECK(after.samples.count("caregate_audit_backlog") == 1);
    CHECK(after.at("caregate_audit_backlog_full") == 0);
    CHECK(after.at("caregate_database_up") == 1);
    CHECK(after.at("caregate_database_failovers_total") == 0);

    // No label carries what a request carried: no NHS number, no path.
    const reply page = f.admin_get("/metrics");
    CHECK(page.body.find("9000000009") == std::string::npos);
    CHECK(page.body.find("9000000017") == std::string::npos);
    CHECK(page.body.find("Patient") == std::string::npos);
    CHECK(page.body.find("nothing") == std::string::npos);
}

TEST_CASE("admin listener: /ready is 200 with a working store, 503 while it cannot commit (another process holds the write lock), and 200 again after, a failover seen") {
    admin::readiness_settings settings;
    settings.fresh_for = std::chrono::milliseconds(50);
    admin_fixture f(settings, std::chrono::milliseconds(100));
    const reply ready = f.admin_get("/ready");
    CHECK(ready.status == 200);
    CHECK(ready.body == "ready\n");

    std::this_thread::sleep_for(std::chrono::milliseconds(100)); // past fresh_for
    reply refused;
    exposition while_refused;
    {
        write_lock other((f.fhir.dir / "test.db").string());
        refused = f.admin_get("/ready");
        while_refused = f.metrics();
    }
    CHECK(refused.status == 503);
    CHECK(refused.body.starts_with("not ready: "));
    CHECK(refused.body.find("busy") != std::string::npos);
    CHECK(while_refused.at("caregate_database_up") == 0);

    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(f.admin_get("/ready").status == 200);
    const exposition after = f.metrics();
    CHECK(after.at("caregate_database_up") == 1);
    CHECK(after.at("caregate_database_failovers_total") == 1); // ready, not ready, ready again
}

TEST_CASE("admin listener: /ready never hangs: a writer stuck on a lock answers 503 at the deadline, at once while it stays stuck, and /health is served meanwhile") {
    admin::readiness_settings settings;
    settings.deadline = std::chrono::milliseconds(500);
    settings.fresh_for = std::chrono::milliseconds(50);
    admin_fixture f(settings, std::chrono::milliseconds(5000)); // the writer waits up to 5 s for a lock
    REQUIRE(f.admin_get("/ready").status == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

    write_lock other((f.fhir.dir / "test.db").string());
    reply health;
    std::chrono::steady_clock::duration health_took{};
    background meanwhile([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100)); // while /ready waits
        const auto started = std::chrono::steady_clock::now();
        health = f.admin_get("/health");
        health_took = std::chrono::steady_clock::now() - started;
    });
    auto started = std::chrono::steady_clock::now();
    const reply late = f.admin_get("/ready");
    const auto late_took = std::chrono::steady_clock::now() - started;
    meanwhile.join();
    CHECK(late.status == 503);
    CHECK(late.body.find("did not answer within 500 ms") != std::string::npos);
    CHECK(late_took >= std::chrono::milliseconds(450));
    CHECK(late_took < std::chrono::milliseconds(2000));
    CHECK(health.status == 200);
    CHECK(health_took < std::chrono::milliseconds(400));

    // The probe is still stuck: the next check answers at once, starting no second probe.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    started = std::chrono::steady_clock::now();
    const reply still = f.admin_get("/ready");
    CHECK(still.status == 503);
    CHECK(still.body.find("has not answered the check started") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(400));

    other.release(); // the writer gets the lock, the probe returns, and the node is ready again
    bool ready_again = false;
    for (int i = 0; i < 50 && !ready_again; ++i) {
        ready_again = f.admin_get("/ready").status == 200;
        if (!ready_again)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(ready_again);
}

TEST_CASE("admin listener: /ready is 503 on a full disk while reads' audit records wait to be committed, and 200 once it clears") {
    admin::readiness_settings settings;
    settings.fresh_for = std::chrono::milliseconds(0);
    admin_fixture f(settings, std::chrono::milliseconds(5000), fault_vfs_name());
    const std::string nhs = "9000000009";
    REQUIRE(f.fhir.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")")).status == 201);
    REQUIRE(f.admin_get("/ready").status == 200);
    {
        fault_while full(fs_fault::disk_full);
        REQUIRE(f.fhir.call("GET", "/Patient/" + nhs).status == 200); // its audit record waits
        const reply refused = f.admin_get("/ready");
        CHECK(refused.status == 503);
        CHECK(refused.body.find(nhs) == std::string::npos); // says nothing of the record
    }
    CHECK(f.admin_get("/ready").status == 200);
}

TEST_CASE("admin listener: /ready is 503 while the audit backlog is full and every FHIR request is refused, and /metrics says so") {
    admin::readiness_settings settings;
    settings.fresh_for = std::chrono::milliseconds(0);
    admin_fixture f(settings, std::chrono::milliseconds(5000), fault_vfs_name(), 2);
    const std::string nhs = "9000000009";
    REQUIRE(f.fhir.call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")")).status == 201);
    {
        fault_while full(fs_fault::disk_full);
        for (int i = 0; i < 2; ++i)
            REQUIRE(f.fhir.call("GET", "/Patient/" + nhs).status == 200);
        REQUIRE(f.fhir.store->audit_backlog_full());
        CHECK(f.fhir.call("GET", "/Patient/" + nhs).status == 503); // fail closed
        const reply refused = f.admin_get("/ready");
        CHECK(refused.status == 503);
        CHECK(refused.body.find("the audit log cannot be written") != std::string::npos);
        const exposition page = f.metrics();
        CHECK(page.at("caregate_audit_backlog_full") == 1);
        CHECK(page.at("caregate_audit_backlog") == 2);
        CHECK(page.at("caregate_database_up") == 0);
    }
    CHECK(f.admin_get("/ready").status == 200);
    CHECK(f.metrics().at("caregate_audit_backlog_full") == 0);
}

namespace {

/// The inodes of the TCP sockets `pid` has listening.
std::set<std::string> listening_sockets(pid_t pid) {
    std::set<std::string> inodes;
    const fs::path fds = fs::path("/proc") / std::to_string(pid) / "fd";
    for (const auto& entry : fs::directory_iterator(fds)) {
        std::error_code ec;
        const std::string target = fs::read_symlink(entry.path(), ec).string();
        if (!ec && target.starts_with("socket:["))
            inodes.insert(target.substr(8, target.size() - 9));
    }
    std::set<std::string> listening;
    for (const char* table : {"tcp", "tcp6"}) {
        std::ifstream in(fs::path("/proc") / std::to_string(pid) / "net" / table);
        std::string line;
        std::getline(in, line); // the header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::vector<std::string> f;
            for (std::string field; fields >> field;)
                f.push_back(field);
            if (f.size() > 9 && f[3] == "0A" && inodes.count(f[9])) // 0A: LISTEN
                listening.insert(f[9]);
        }
    }
    return listening;
}

/// `caregate serve --plain` in the background on a fresh database, its standard error in a file.
class serve_child {
public:
    explicit serve_child(std::vector<std::string> extra)
        : dir_(fresh_directory("caregate-admin-cli")), log_(dir_ / "serve.log") {
        const std::string binary = (fs::path(CAREGATE_BINARY_DIR) / "caregate").string();
        REQUIRE(fs::exists(binary));
        std::vector<std::string> words{binary,         "serve",       "--plain",      "--listen",
                                       "127.0.0.1:0",  "--patient-listen", "none", "--threads",
                                       "1",            "--db",        (dir_ / "serve.db").string(),
                                       "--certs",      pki().dir.string()};
        words.insert(words.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& word : words)
            argv.push_back(word.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        REQUIRE(::posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) == 0);
        posix_spawn_file_actions_destroy(&actions);
    }
    ~serve_child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    pid_t pid() const { return pid_; }
    /// Waits (up to 10 s) for the log to hold `text`; returns the log.
    std::string wait_for(const std::string& text) const {
        std::string log;
        for (int i = 0; i < 200; ++i) {
            std::ifstream in(log_);
            std::stringstream all;
            all << in.rdbuf();
            log = all.str();
            if (log.find(text) != std::string::npos)
                return log;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        FAIL("caregate serve did not log '" << text << "'; its log:\n" << log);
        return log;
    }

private:
    fs::path dir_;
    fs::path log_;
    pid_t pid_ = -1;
};

} // namespace

TEST_CASE("admin listener: caregate serve --admin-listen none opens no port; with an address it opens one more, which serves /health and /ready") {
    {
        serve_child off({"--admin-listen", "none"});
        off.wait_for("caregate: listening on");
        off.wait_for("caregate: admin listener off");
        CHECK(listening_sockets(off.pid()).size() == 1); // the provider listener alone
    }
    serve_child on({"--admin-listen", "127.0.0.1:0"});
    const std::string log = on.wait_for("caregate: admin listener (");
    const auto at = log.find("on http://127.0.0.1:", log.find("caregate: admin listener ("));
    REQUIRE(at != std::string::npos);
    const auto port = static_cast<std::uint16_t>(std::stoi(log.substr(at + 20)));
    on.wait_for("listening on http://127.0.0.1:" + std::to_string(port));
    CHECK(listening_sockets(on.pid()).size() == 2);
    CHECK(request(port, "GET", "/health").status == 200);
    CHECK(request(port, "GET", "/ready").status == 200);
    CHECK(request(port, "GET", "/fhir/metadata").status == 404);
    CHECK(log.find("is not loopback") == std::string::npos);
}
