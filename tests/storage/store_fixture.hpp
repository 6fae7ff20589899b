// Shared by the storage tests: a store on a real database of its own, removed afterwards (a SQLite
// file in a fresh temporary directory, or, when the suite runs on PostgreSQL, a fresh database on the
// tests' server: tests/support/postgresql.hpp), and short helpers for building write requests. Not a
// mock of anything.
#pragma once

#include "storage/search.hpp"
#include "storage/postgresql_store.hpp"
#include "storage/sqlite_store.hpp"

#include "fhir_model/resource.hpp"

#include "../support/postgresql.hpp"
#include "../support/write_lock.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <random>
#include <string>
#include <variant>
#include <vector>

namespace caregate::storage::testing {

/// A fresh directory under the system's temporary directory, removed with everything in it.
class temp_directory {
public:
    temp_directory() {
        static std::atomic<unsigned> counter{0};
        std::random_device entropy;
        path_ = std::filesystem::temp_directory_path() /
                ("caregate-storage-test-" + std::to_string(entropy()) + "-" + std::to_string(counter++));
        std::filesystem::create_directories(path_);
    }
    ~temp_directory() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    temp_directory(const temp_directory&) = delete;
    temp_directory& operator=(const temp_directory&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

/// The schema versions this build migrates to (storage/src/sqlite/schema.cpp, postgresql/schema.cpp):
/// the tests that migrate a database of an older release expect them.
inline constexpr int newest_sqlite_schema = 17;
inline constexpr int newest_postgresql_schema = 14;

/// A store on its own database; reopen() closes and opens it again on the same database. On
/// PostgreSQL the options' store_settings are the engine's and its SQLite settings are unused.
struct store_fixture {
    temp_directory directory;
    std::optional<caregate::testing::scratch_database> scratch; ///< on PostgreSQL
    sqlite_options options;
    std::string database; ///< the SQLite file, or the PostgreSQL URI
    std::unique_ptr<store> db;

    explicit store_fixture(sqlite_options chosen = {}) : options(std::move(chosen)) {
        options.path = (directory.path() / "caregate.db").string();
        database = options.path;
        if (caregate::testing::on_postgresql()) {
            scratch.emplace();
            database = scratch->uri();
        }
        reopen();
    }
    void close() { db.reset(); }
    void reopen() {
        db.reset();
        if (scratch) {
            postgresql_options chosen;
            static_cast<store_settings&>(chosen) = options;
            chosen.conninfo = scratch->uri();
            chosen.reader_connections = options.reader_connections;
            auto opened = postgresql_store::open(chosen);
            REQUIRE_MESSAGE(opened.ok(), (opened.ok() ? std::string() : opened.failure().issues.front().diagnostics));
            db = std::move(opened).value();
            return;
        }
        auto opened = sqlite_store::open(options);
        REQUIRE_MESSAGE(opened.ok(), (opened.ok() ? std::string() : opened.failure().issues.front().diagnostics));
        db = std::move(opened).value();
    }
    /// Another store on the same database, as a second caregate node opens it (PostgreSQL only:
    /// tests marked caregate::testing::several_nodes()).
    std::unique_ptr<store> another_node() const {
        REQUIRE(scratch);
        postgresql_options chosen;
        static_cast<store_settings&>(chosen) = options;
        chosen.conninfo = scratch->uri();
        auto opened = postgresql_store::open(chosen);
        REQUIRE(opened.ok());
        return std::move(opened).value();
    }
    store& operator*() { return *db; }
    store* operator->() { return db.get(); }

    /// SQL that drops a trigger of `table`, in the database's dialect: for tests that tamper with the
    /// database as someone with access to it could.
    std::string drop_trigger(const std::string& trigger, const std::string& table) const {
        return "DROP TRIGGER " + trigger + (scratch ? " ON " + table : std::string()) + "; ";
    }

    /// Runs SQL on the database file through a read-write connection of the test's own (to tamper
    /// with it as someone with the file could). Returns the SQLite result code.
    int execute(const std::string& sql) const {
        if (scratch) {
            bool failed = false;
            caregate::testing::postgresql_rows(scratch->uri(), sql, &failed);
            return failed ? SQLITE_ERROR : SQLITE_OK;
        }
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open_v2(options.path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
        const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr);
        sqlite3_close_v2(raw);
        return rc;
    }

    /// Every row `sql` returns, each column as text ("NULL" for NULL), through a read-only
    /// connection of the test's own.
    std::vector<std::vector<std::string>> rows(const std::string& sql) const {
        if (scratch)
            return caregate::testing::postgresql_rows(scratch->uri(), sql);
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open_v2(options.path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
        sqlite3_stmt* stmt = nullptr;
        REQUIRE_MESSAGE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK, sqlite3_errmsg(raw));
        std::vector<std::vector<std::string>> found;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            std::vector<std::string> row;
            for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
                const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
                row.emplace_back(text ? text : "NULL");
            }
            found.push_back(std::move(row));
        }
        sqlite3_finalize(stmt);
        sqlite3_close_v2(raw);
        return found;
    }

    /// A count from the database file itself, through a connection of the test's own.
    std::int64_t count(const std::string& sql) const {
        if (scratch) {
            const auto found = caregate::testing::postgresql_rows(scratch->uri(), sql);
            REQUIRE(found.size() == 1);
            return std::stoll(found.front().front());
        }
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open_v2(options.path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
        sqlite3_stmt* stmt = nullptr;
        REQUIRE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
        const std::int64_t value = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        sqlite3_close_v2(raw);
        return value;
    }
};

/// Holds the database's write lock from a connection of the test's own, so the store's writer
/// waits: writes submitted meanwhile queue up and go into one group once release() is called.
using caregate::testing::write_lock;

inline std::string patient_json(const std::string& nhs_number, const std::string& family = "Smith") {
    return R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
           nhs_number + R"("}],"name":[{"family":")" + family + R"("}]})";
}

inline std::string observation_json(const std::string& nhs_number, const std::string& value = "72") {
    return R"({"resourceType":"Observation","status":"final","code":{"text":"heart rate"},"subject":{"reference":"Patient/)" +
           nhs_number + R"("},"valueQuantity":{"value":)" + value + "}}";
}

/// What migration 9 added, taken away again, for the tests that take a database back to an older
/// schema and run the later migrations over it (its facets need no undoing: the fill remakes them).
inline const std::string undo_migration_9 =
    "DROP INDEX break_glass_grants_by_caller; ALTER TABLE break_glass_grants DROP COLUMN role; "
    "CREATE INDEX break_glass_grants_by_caller ON break_glass_grants (nhs_number, organisation, user, until_time); ";
/// What migration 8 added (its triggers it makes again).
inline const std::string undo_migration_8 = "DROP TABLE version_targets; DROP TABLE erasing; ";
inline const std::string undo_migrations_8_and_9 = undo_migration_9 + undo_migration_8;

using transaction_result = std::variant<std::vector<write_outcome>, transaction_failure>;

/// Submits `writes` as one transaction and waits for its outcome.
inline transaction_result run_transaction(store& db, std::vector<write_request> writes) {
    std::promise<transaction_result> finished;
    auto answer = finished.get_future();
    db.submit_transaction(std::move(writes), [&](transaction_result result) { finished.set_value(std::move(result)); });
    return answer.get();
}

inline write_request create_request(std::string type, std::string id, std::string content) {
    write_request request;
    request.kind = write_kind::create;
    request.type = std::move(type);
    request.id = std::move(id);
    request.content = std::move(content);
    return request;
}

inline write_request update_request(std::string type, std::string id, std::string content) {
    write_request request = create_request(std::move(type), std::move(id), std::move(content));
    request.kind = write_kind::update;
    return request;
}

inline write_request remove_request(std::string type, std::string id) {
    write_request request;
    request.kind = write_kind::remove;
    request.type = std::move(type);
    request.id = std::move(id);
    return request;
}

inline write_request observation_request(std::string id, const std::string& nhs_number, const std::string& value = "72") {
    write_request request = create_request("Observation", std::move(id), observation_json(nhs_number, value));
    request.citizens.push_back({nhs_number, "Observation.subject"});
    return request;
}

/// The outcome of a write that must succeed (the store's own failure, if not, named).
inline write_outcome must(store& db, write_request request) {
    auto written = db.write(std::move(request));
    REQUIRE_MESSAGE(written.ok(), written.failure().issues.front().diagnostics);
    return *written;
}

/// A write as the API makes it: prepared (validated, citizens, access facts) by fhir_model.
inline write_request prepared(write_kind kind, const std::string& type, const std::string& id, const std::string& body) {
    auto ready = fhir::prepare_resource(body, type);
    REQUIRE_MESSAGE(ready.ok(), body);
    write_request request;
    request.kind = kind;
    request.type = type;
    request.id = id;
    request.content = ready->content;
    request.citizens = ready->citizens;
    request.access = ready->access;
    return request;
}

/// The server's own view, for tests that mean every version.
inline const search_visibility& every_version() {
    static const search_visibility everything = [] {
        search_visibility all;
        all.everything = true;
        return all;
    }();
    return everything;
}

/// The citizen links of current live versions (engine.hpp, invariant 5), as a table named
/// citizen_links with columns type, id and nhs_number: "SELECT count(*) FROM " + current_citizen_links.
inline const std::string current_citizen_links =
    "(SELECT r.type, r.id, c.nhs_number FROM resources r JOIN version_citizens c ON c.seq = r.seq "
    "WHERE r.deleted = 0) citizen_links";

inline history_query history_of(std::string type, std::string id = {}) {
    history_query query;
    query.visibility = &every_version();
    query.type = std::move(type);
    query.id = std::move(id);
    return query;
}

} // namespace caregate::storage::testing
