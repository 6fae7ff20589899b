// Tests of the audit chain's anchors through the command line (gateway/cli/serve.cpp, audit.cpp):
// the built `caregate serve --audit-key --audit-anchors` run as an operator runs it, stopped with
// SIGTERM, and `caregate audit verify --anchors` on what it wrote, with the development key made by
// certs/make-dev-certs.sh. Needs `openssl` on the PATH and the caregate executable built.
#include "storage/sqlite_store.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
namespace storage = caregate::storage;

extern char** environ;

namespace {

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::string> lines_of(const fs::path& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A temporary directory with the development PKI (certs/make-dev-certs.sh) in `certs/`.
struct workspace {
    fs::path dir;
    fs::path certs;
    fs::path db;
    fs::path anchors;

    workspace() {
        std::random_device random;
        dir = fs::temp_directory_path() /
              ("caregate-audit-anchor-cli-" + std::to_string(random()) + "-" + std::to_string(random()));
        certs = dir / "certs";
        db = dir / "caregate.db";
        anchors = dir / "anchors";
        const std::string command = std::string("'") + CAREGATE_SOURCE_DIR + "/certs/make-dev-certs.sh' --out '" +
                                    certs.string() + "' >/dev/null 2>&1";
        REQUIRE(std::system(command.c_str()) == 0);
        REQUIRE(fs::exists(certs / "audit-signing.key"));
        REQUIRE(fs::exists(certs / "audit-signing.pub"));
    }
    ~workspace() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }

    /// Appends `n` audit records to the database with no server running, as a server would have.
    void add_records(int n) const {
        storage::sqlite_options options;
        options.path = db.string();
        auto store = storage::sqlite_store::open(options);
        REQUIRE(store.ok());
        static int made = 0;
        std::vector<storage::audit_record> records;
        for (int i = 0; i < n; ++i) {
            storage::audit_record record;
            record.time = 1'000'000 * ++made;
            record.request_id = "request-" + std::to_string(made);
            record.user = "user-" + std::to_string(made);
            record.organisation = "A81001";
            record.action = "read";
            record.outcome = "success";
            records.push_back(record);
        }
        std::promise<caregate::fhir::status> appended;
        (*store)->append_audit(std::move(records), [&](caregate::fhir::status done) { appended.set_value(done); });
        REQUIRE(appended.get_future().get().ok());
    }

    /// Runs SQL on the database file as someone holding it could.
    void tamper(const std::string& sql) const {
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
        CHECK(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close_v2(raw);
    }
};

fs::path caregate_binary() {
    const fs::path binary = fs::path(CAREGATE_BINARY_DIR) / "caregate";
    REQUIRE_MESSAGE(fs::exists(binary), "build the caregate executable first (ninja caregate)");
    return binary;
}

/// `caregate serve` in the background, its output in `log`.
class server_process {
public:
    server_process(const workspace& space, std::vector<std::string> extra) : log_(space.dir / "serve.log") {
        std::vector<std::string> args{caregate_binary().string(), "serve", "--plain", "--listen", "127.0.0.1:0",
                                      "--patient-listen", "none", "--admin-listen", "none", "--threads", "1", "--db", space.db.string(),
                                      "--certs", space.certs.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        REQUIRE(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) == 0);
        posix_spawn_file_actions_destroy(&actions);
    }
    ~server_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    /// Waits (up to 20 s) until the log holds `text`, or the process has ended.
    bool wait_for(const std::string& text) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline) {
            if (mentions(log(), text))
                return true;
            if (exited_)
                return false;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                pid_ = -1;
                continue; // the log is complete now: look once more
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    /// SIGTERM (a clean shutdown) and its exit code.
    int stop() {
        if (!exited_) {
            REQUIRE(::kill(pid_, SIGTERM) == 0);
            int status = 0;
            REQUIRE(::waitpid(pid_, &status, 0) == pid_);
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            exited_ = true;
            pid_ = -1;
        }
        return exit_code_;
    }
    /// Waits for the process to end on its own (up to 20 s), and its exit code.
    int exit_code() {
        wait_for("\x01never printed");
        return exited_ ? exit_code_ : -1;
    }
    std::string log() const { return read_file(log_); }

private:
    fs::path log_;
    pid_t pid_ = -1;
    bool exited_ = false;
    int exit_code_ = -1;
};

struct run_result {
    int exit_code = -1;
    std::string out;
};

/// `caregate audit verify --db DB ARGS`, standard output and error together.
run_result audit_verify(const workspace& space, const std::string& args) {
    const fs::path out = space.dir / "verify.out";
    const std::string command = "'" + caregate_binary().string() + "' audit verify --db '" + space.db.string() + "' " +
                                args + " >'" + out.string() + "' 2>&1";
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out)};
}

std::string anchor_flags(const workspace& space) {
    return "--audit-key " + (space.certs / "audit-signing.key").string() + " --audit-anchors " + space.anchors.string();
}

std::string verify_flags(const workspace& space) {
    return "--anchors '" + space.anchors.string() + "' --audit-public-key '" +
           (space.certs / "audit-signing.pub").string() + "'";
}

std::vector<std::string> split(const std::string& flags) {
    std::vector<std::string> words;
    std::istringstream in(flags);
    for (std::string word; in >> word;)
        words.push_back(word);
    return words;
}

} // namespace

TEST_CASE("audit anchor cli: serve anchors on the interval and at shutdown; audit verify --anchors checks them") {
    workspace space;
    space.add_records(5);

    // On the interval: the tip moved from nothing to record 5.
    {
        auto flags = split(anchor_flags(space));
        flags.insert(flags.end(), {"--audit-anchor-interval", "1"});
        server_process server(space, flags);
        REQUIRE(server.wait_for("caregate: serving providers"));
        CHECK(mentions(server.log(), "the audit trail is anchored every 1 s"));
        REQUIRE(server.wait_for("caregate: audit anchor caregate-audit-anchor/1 sequence=5 "));
        CHECK(lines_of(space.anchors).size() == 1);
        CHECK(server.stop() == 0);
        CHECK(lines_of(space.anchors).size() == 1); // the tip did not move again: nothing more at shutdown
    }
    // At shutdown: an hour's interval never comes, the last anchor does.
    space.add_records(2);
    {
        auto flags = split(anchor_flags(space));
        flags.insert(flags.end(), {"--audit-anchor-interval", "3600"});
        server_process server(space, flags);
        REQUIRE(server.wait_for("caregate: serving providers"));
        CHECK(lines_of(space.anchors).size() == 1);
        CHECK(server.stop() == 0);
        const auto lines = lines_of(space.anchors);
        REQUIRE(lines.size() == 2);
        CHECK(lines[1].starts_with("caregate-audit-anchor/1 sequence=7 "));
        CHECK(mentions(server.log(), "caregate: audit anchor " + lines[1]));
    }

    auto verified = audit_verify(space, verify_flags(space));
    CHECK(verified.exit_code == 0);
    CHECK(mentions(verified.out, "audit log verified: 7 records"));
    CHECK(mentions(verified.out, "anchors verified: 2 anchors"));
    CHECK(mentions(verified.out, "the newest at record 7"));

    // The newest two records removed: the chain alone still verifies (the gap, stated), the anchors do not.
    space.tamper("DROP TRIGGER audit_log_never_goes; DELETE FROM audit_log WHERE sequence >= 6");
    auto chain_only = audit_verify(space, "");
    CHECK(chain_only.exit_code == 0);
    CHECK(mentions(chain_only.out, "not checked: the end of the log"));
    auto anchored = audit_verify(space, verify_flags(space));
    CHECK(anchored.exit_code == 1);
    CHECK(mentions(anchored.out, "line 2 does NOT hold"));
    CHECK(mentions(anchored.out, "2 records are missing, 6 to 7 at least"));
    CHECK(mentions(anchored.out, "anchors BROKEN: 1 of 2 lines"));

    // A server with the key refuses a database that does not continue its anchors.
    server_process refused(space, split(anchor_flags(space)));
    CHECK(refused.exit_code() == 1);
    CHECK(mentions(refused.log(), "the audit log does not continue the anchors file"));
    CHECK(lines_of(space.anchors).size() == 2);
}

TEST_CASE("audit anchor cli: without --audit-key serve says the trail is not anchored; half the options are refused") {
    workspace space;
    {
        server_process server(space, {});
        REQUIRE(server.wait_for("caregate: serving providers"));
        CHECK(mentions(server.log(), "the audit trail is NOT anchored (no --audit-key)"));
        CHECK(server.stop() == 0);
    }
    {
        server_process server(space, {"--audit-key", (space.certs / "audit-signing.key").string()});
        CHECK(server.exit_code() == 2);
        CHECK(mentions(server.log(), "--audit-key and --audit-anchors go together"));
    }
    {
        // The public key cannot sign.
        server_process server(space, {"--audit-key", (space.certs / "audit-signing.pub").string(), "--audit-anchors",
                                      space.anchors.string()});
        CHECK(server.exit_code() == 2);
        CHECK(mentions(server.log(), "is not a PEM private key"));
    }
    auto half = audit_verify(space, "--anchors '" + space.anchors.string() + "'");
    CHECK(half.exit_code == 2);
    CHECK(mentions(half.out, "--anchors and --audit-public-key go together"));
    auto wrong_key = audit_verify(space, "--anchors '" + space.anchors.string() + "' --audit-public-key '" +
                                             (space.certs / "audit-signing.key").string() + "'");
    CHECK(wrong_key.exit_code == 2);
}
