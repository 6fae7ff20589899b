// A connection of the test's own that holds a database's write lock (BEGIN IMMEDIATE on SQLite; on
// PostgreSQL, named by a postgresql:// URI, the writers' advisory lock that each group's transaction
// takes), as another process, a backup tool or a second writer (node) would, so that the store's
// writer waits or gets BUSY.
// The lock goes with release() or with the object, however the test ends (a failed REQUIRE too):
// a lock left behind would stay with the test runner's process, and with any later store that
// SQLite takes for the same file.
#pragma once

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <memory>
#include <string>

namespace caregate::testing {

class write_lock {
public:
    explicit write_lock(const std::string& path) {
        if (path.starts_with("postgresql://")) {
            pg_.reset(PQconnectdb(path.c_str()));
            REQUIRE(PQstatus(pg_.get()) == CONNECTION_OK);
            // The key of storage/src/postgresql/schema.hpp, writer_lock_key.
            PGresult* locked = PQexec(pg_.get(), "BEGIN; SELECT pg_advisory_xact_lock(27973166649794932)");
            const bool ok = PQresultStatus(locked) == PGRES_TUPLES_OK;
            PQclear(locked);
            REQUIRE(ok);
            return;
        }
        sqlite3* opened = nullptr;
        const int rc = sqlite3_open_v2(path.c_str(), &opened, SQLITE_OPEN_READWRITE, nullptr);
        db_.reset(opened); // closed even when opening failed, as SQLite asks
        REQUIRE(rc == SQLITE_OK);
        REQUIRE(sqlite3_exec(db_.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    /// Gives the lock back and closes the connection.
    void release() {
        db_.reset();
        pg_.reset();
    }

private:
    struct closer {
        void operator()(sqlite3* db) const {
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr); // nothing to roll back: not an error
            sqlite3_close_v2(db);
        }
    };
    std::unique_ptr<sqlite3, closer> db_;
    struct pg_closer {
        void operator()(PGconn* db) const { PQfinish(db); } // the transaction, and its lock, end with it
    };
    std::unique_ptr<PGconn, pg_closer> pg_;
};

} // namespace caregate::testing
