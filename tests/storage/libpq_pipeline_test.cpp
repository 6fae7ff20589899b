// The PostgreSQL driver's pipeline (storage/src/postgresql/libpq.hpp): on a connection that defers
// writes, a failing INSERT inside a transaction answers step_done at once, and its failure reaches
// the caller at the next settle or the next statement that is not deferred, with its own SQLSTATE;
// a rollback to the savepoint still runs and the rows before it stay; a preparation the failure
// aborted is made again; changes() counts what a deferred DELETE removed; outside a transaction
// nothing is deferred. Runs only beside a PostgreSQL server.
#include "../support/postgresql.hpp"

#include "../../storage/src/postgresql/libpq.hpp"

#include <doctest/doctest.h>

using namespace caregate;
using namespace caregate::storage::detail;
using caregate::testing::needs_postgresql;

namespace {

struct pipelined_connection {
    caregate::testing::scratch_database database;
    std::unique_ptr<postgresql_connection> db;

    pipelined_connection() {
        auto opened = postgresql_connection::open(database.uri());
        REQUIRE(opened);
        db = std::move(*opened);
        REQUIRE(db->exec_script("CREATE TABLE item (id bigint PRIMARY KEY, label text NOT NULL)", "setting up"));
        db->defer_writes(true);
    }

    int insert(std::int64_t id, const std::string& label) {
        auto stmt = db->prepare("INSERT INTO item (id, label) VALUES (?1, ?2)", "inserting");
        REQUIRE(stmt);
        statement use(*stmt);
        use.bind(1, id).bind(2, label);
        return use.step();
    }

    std::int64_t count() {
        auto stmt = db->prepare("SELECT count(*) FROM item", "counting");
        REQUIRE(stmt);
        statement use(*stmt);
        REQUIRE(use.step() == step_row);
        return use.integer(0);
    }
};

std::string sqlstate_of(const fhir::status& status) {
    REQUIRE_FALSE(status.ok());
    return status.failure().issues.at(0).diagnostics;
}

} // namespace

TEST_CASE("a deferred insert's failure reaches the savepoint that made it, and a rollback to it goes on" *
          needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.db->run("BEGIN", "beginning"));
    REQUIRE(c.insert(1, "kept") == step_done);
    REQUIRE(c.db->settle("settling"));
    REQUIRE(c.db->run("SAVEPOINT job", "saving"));
    CHECK(c.insert(2, "second") == step_done);
    CHECK(c.insert(1, "the same key again") == step_done); // deferred: not known yet
    CHECK(c.insert(3, "after the failure") == step_done);
    const auto settled = c.db->settle("finishing a job");
    CHECK(sqlstate_of(settled).find("SQLSTATE 23505") != std::string::npos);
    CHECK(c.db->settle("settling again")); // told once
    REQUIRE(c.db->run("ROLLBACK TO job", "undoing"));
    REQUIRE(c.db->run("RELEASE job", "releasing"));
    CHECK(c.count() == 1);
    REQUIRE(c.db->run("COMMIT", "committing"));
    CHECK(c.count() == 1);
}

TEST_CASE("the statement after a failing deferred one returns that failure, and a rollback still runs" *
          needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.db->run("BEGIN", "beginning"));
    REQUIRE(c.insert(1, "first") == step_done);
    REQUIRE(c.insert(1, "again") == step_done);
    auto select = c.db->prepare("SELECT count(*) FROM item", "counting");
    REQUIRE(select);
    {
        statement use(*select);
        const int code = use.step();
        REQUIRE(code != step_row);
        CHECK(postgresql_sqlstate(code) == "23505");
    }
    const auto rolled_back = c.db->run("ROLLBACK", "rolling back");
    CHECK(rolled_back);
    CHECK_FALSE(c.db->in_transaction());
    CHECK(c.count() == 0);
}

TEST_CASE("a preparation the pipeline's failure aborted is made again on the next run" * needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.db->run("BEGIN", "beginning"));
    REQUIRE(c.insert(1, "first") == step_done);
    REQUIRE(c.db->settle("settling"));
    REQUIRE(c.db->run("SAVEPOINT job", "saving"));
    REQUIRE(c.insert(1, "again") == step_done);
    // Never run on this connection before: its preparation goes into the pipeline after the failure.
    const std::string update_sql = "UPDATE item SET label = ?2 WHERE id = ?1";
    auto update = c.db->prepare(update_sql, "updating");
    REQUIRE(update);
    {
        statement use(*update);
        use.bind(1, std::int64_t{1}).bind(2, std::string_view("changed"));
        CHECK(use.step() == step_done);
    }
    CHECK_FALSE(c.db->settle("finishing a job"));
    REQUIRE(c.db->run("ROLLBACK TO job", "undoing"));
    {
        statement use(*update);
        use.bind(1, std::int64_t{1}).bind(2, std::string_view("changed"));
        CHECK(use.step() == step_done);
    }
    REQUIRE(c.db->settle("settling"));
    CHECK(c.db->changes() == 1);
    REQUIRE(c.db->run("COMMIT", "committing"));
    auto rows = caregate::testing::postgresql_rows(c.database.uri(), "SELECT label FROM item WHERE id = 1");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][0] == "changed");
}

TEST_CASE("changes() counts what a deferred DELETE removed" * needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.db->run("BEGIN", "beginning"));
    for (std::int64_t id = 1; id <= 5; ++id)
        REQUIRE(c.insert(id, "row") == step_done);
    auto remove = c.db->prepare("DELETE FROM item WHERE id <= ?1", "deleting");
    REQUIRE(remove);
    {
        statement use(*remove);
        use.bind(1, std::int64_t{3});
        REQUIRE(use.step() == step_done);
    }
    CHECK(c.db->changes() == 3);
    REQUIRE(c.db->run("COMMIT", "committing"));
    CHECK(c.count() == 2);
}

TEST_CASE("outside a transaction nothing is deferred: a failing insert fails at its own step" *
          needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.insert(1, "first") == step_done);
    const int code = c.insert(1, "again");
    REQUIRE(code != step_done);
    CHECK(postgresql_sqlstate(code) == "23505");
    CHECK(c.count() == 1);
}

TEST_CASE("more deferred statements than the pipeline holds are all run, in order" * needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.db->run("BEGIN", "beginning"));
    for (std::int64_t id = 1; id <= 2000; ++id)
        REQUIRE(c.insert(id, "row " + std::to_string(id)) == step_done);
    REQUIRE(c.db->run("COMMIT", "committing"));
    CHECK(c.count() == 2000);
}

TEST_CASE("a statement that returns rows goes behind the deferred ones and reads what they wrote" *
          needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.db->run("BEGIN", "beginning")); // deferred: travels with what follows
    CHECK(c.db->in_transaction());
    for (std::int64_t id = 1; id <= 3; ++id)
        REQUIRE(c.insert(id, "row") == step_done);
    CHECK(c.count() == 3);
    CHECK(c.db->settle("settling")); // nothing left
    REQUIRE(c.db->run("ROLLBACK", "rolling back"));
    CHECK(c.count() == 0);
}
