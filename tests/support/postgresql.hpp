// The tests' PostgreSQL: whether this run of a suite is on PostgreSQL (CAREGATE_TEST_POSTGRESQL names
// a server's database URI, as tests/support/postgresql.sh prints it: the storage and gateway suites
// then run every engine-neutral test on that engine), a fresh database per store (created beside the
// named one, dropped afterwards), and SQL run on it through a connection of the test's own.
#pragma once

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace caregate::testing {

/// The URI of the server's database the tests may create databases beside, when the suite runs on
/// PostgreSQL.
inline std::optional<std::string> postgresql_server() {
    const char* uri = std::getenv("CAREGATE_TEST_POSTGRESQL");
    if (!uri || !*uri)
        return std::nullopt;
    return std::string(uri);
}

inline bool on_postgresql() { return postgresql_server().has_value(); }

/// The URI with its database name replaced by `name`.
inline std::string with_database(const std::string& uri, const std::string& name) {
    const auto query = uri.find('?');
    const auto slash = uri.rfind('/', query == std::string::npos ? std::string::npos : query);
    return uri.substr(0, slash + 1) + name + (query == std::string::npos ? "" : uri.substr(query));
}

/// Runs `sql` on the database at `uri`; every row, each column as text ("NULL" for NULL). Fails the
/// test if the statement fails, unless `failed` is given (then set instead).
inline std::vector<std::vector<std::string>> postgresql_rows(const std::string& uri, const std::string& sql,
                                                             bool* failed = nullptr) {
    PGconn* conn = PQconnectdb(uri.c_str());
    REQUIRE_MESSAGE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    PGresult* result = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(result);
    const bool ok = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
    std::vector<std::vector<std::string>> rows;
    if (ok)
        for (int r = 0; r < PQntuples(result); ++r) {
            std::vector<std::string> row;
            for (int c = 0; c < PQnfields(result); ++c)
            {
                std::string value = PQgetisnull(result, r, c) ? "NULL" : PQgetvalue(result, r, c);
                // A double as SQLite writes a REAL ("72.0", not PostgreSQL's "72"), so that one
                // expectation holds on both engines.
                if (PQftype(result, c) == 701 && !PQgetisnull(result, r, c) &&
                    value.find_first_of(".eEnN") == std::string::npos)
                    value += ".0";
                row.push_back(std::move(value));
            }
            rows.push_back(std::move(row));
        }
    const std::string error = PQerrorMessage(conn);
    PQclear(result);
    PQfinish(conn);
    if (failed)
        *failed = !ok;
    else
        REQUIRE_MESSAGE(ok, sql << ": " << error);
    return rows;
}

/// A database of its own on the tests' server, dropped (with whatever connections are left on it)
/// when the object goes.
class scratch_database {
public:
    scratch_database() : server_(*postgresql_server()) {
        static std::atomic<unsigned> counter{0};
        std::random_device entropy;
        name_ = "caregate_test_" + std::to_string(entropy() % 1000000000u) + "_" + std::to_string(counter++);
        postgresql_rows(server_, "CREATE DATABASE " + name_);
        uri_ = with_database(server_, name_);
    }
    ~scratch_database() {
        // No doctest assertion here: a fixture kept for the whole run is destroyed after doctest's
        // context is gone.
        PGconn* conn = PQconnectdb(server_.c_str());
        if (PQstatus(conn) == CONNECTION_OK)
            PQclear(PQexec(conn, ("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)").c_str()));
        PQfinish(conn);
    }
    scratch_database(const scratch_database&) = delete;
    scratch_database& operator=(const scratch_database&) = delete;
    const std::string& uri() const { return uri_; }

private:
    std::string server_;
    std::string name_;
    std::string uri_;
};

} // namespace caregate::testing

namespace caregate::testing {

/// A test of what only the SQLite engine has (its file, VFS faults, WAL checkpoints, the backup API,
/// its query plans, its own migrations): skipped when the suite runs on PostgreSQL, whose engine
/// has none of them (its schema is one migration of its own; backups are PostgreSQL's tools).
inline doctest::skip sqlite_only() { return doctest::skip(on_postgresql()); }
/// A test of several caregate nodes on one database, which only PostgreSQL serves: skipped on SQLite.
inline doctest::skip several_nodes() { return doctest::skip(!on_postgresql()); }
/// A test that needs a PostgreSQL server beside the suite's engine (moving a SQLite database into
/// one): skipped when the suite runs on SQLite alone.
inline doctest::skip needs_postgresql() { return doctest::skip(!on_postgresql()); }

} // namespace caregate::testing
