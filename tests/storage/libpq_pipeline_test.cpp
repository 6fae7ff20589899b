// The PostgreSQL driver's pipeline (storage/src/postgresql/libpq.hpp): on a connection that defers
// writes, a failing INSERT inside a transaction answers step_done at once, and its failure reaches
// the caller at the next settle or the next statement that is not deferred, with its own SQLSTATE;
// a rollback to the savepoint still runs and the rows before it stay; a preparation the failure
// aborted is made again; changes() counts what a deferred DELETE removed; outside a transaction
// nothing is deferred. And the rows of deferred INSERTs batched per table (row_batches.hpp): which
// INSERTs are batched, and that their rows reach the server, in order, before anything else does.
// Runs only beside a PostgreSQL server, but for the parsing of shapes.
#include "../support/postgresql.hpp"

#include "../../storage/src/postgresql/libpq.hpp"
#include "../../storage/src/postgresql/row_batches.hpp"

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

TEST_CASE("only an INSERT of bare placeholders in order, with nothing after them but ON CONFLICT DO NOTHING, is batched") {
    auto one = batchable_insert("INSERT INTO item (id, label) VALUES ($1, $2)");
    REQUIRE(one);
    CHECK(one->head == "INSERT INTO item (id, label) VALUES ");
    CHECK(one->width == 2);
    CHECK(one->tail == "");
    auto several = batchable_insert("INSERT INTO item (id, label) VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT DO NOTHING");
    REQUIRE(several);
    CHECK(several->width == 2);
    CHECK(several->tail == " ON CONFLICT DO NOTHING");
    CHECK(insert_rows_sql(*several, 2) == "INSERT INTO item (id, label) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING");
    for (const char* refused : {
             "INSERT INTO item (id, label) VALUES ($1, $2) RETURNING id",
             "INSERT INTO item (id, label) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET label = $2",
             "INSERT INTO item (id, label) VALUES ($1, upper($2))",
             "INSERT INTO item (id, label) VALUES ($2, $1)",
             "INSERT INTO item (id, label) VALUES ($1, $2), ($3)",
             "INSERT INTO item (id, label) SELECT id, label FROM other",
             "INSERT INTO item (id, label) VALUES ($1, 'fixed')",
             "UPDATE item SET label = $2 WHERE id = $1",
         })
        CHECK_MESSAGE(!batchable_insert(refused), refused);
}

TEST_CASE("batched rows reach the server before the next statement of another kind, each table's in order" *
          needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.db->exec_script("CREATE TABLE note (item bigint NOT NULL, position bigint GENERATED ALWAYS AS IDENTITY, "
                              "text text NOT NULL, UNIQUE (item, text))",
                              "setting up"));
    REQUIRE(c.db->run("BEGIN", "beginning"));
    auto note = [&](std::int64_t item, const std::string& text) {
        auto stmt = c.db->prepare("INSERT OR IGNORE INTO note (item, text) VALUES (?1, ?2)", "noting");
        REQUIRE(stmt);
        statement use(*stmt);
        use.bind(1, item).bind(2, text);
        return use.step();
    };
    // Interleaved, as a Bundle's resources interleave their tables; one note twice (ignored).
    for (std::int64_t id = 1; id <= 600; ++id) {
        REQUIRE(c.insert(id, "item " + std::to_string(id)) == step_done);
        REQUIRE(note(id, "first") == step_done);
        REQUIRE(note(id, "first") == step_done);
        REQUIRE(note(id, "second") == step_done);
    }
    CHECK(c.count() == 600); // a read: every row was sent before it
    REQUIRE(c.db->run("COMMIT", "committing"));
    auto notes = caregate::testing::postgresql_rows(c.database.uri(), "SELECT item, text FROM note ORDER BY position");
    REQUIRE(notes.size() == 1200);
    for (std::size_t i = 0; i < notes.size(); ++i) { // in the order they were added
        CHECK(notes[i][0] == std::to_string(i / 2 + 1));
        CHECK(notes[i][1] == (i % 2 ? "second" : "first"));
    }
}

TEST_CASE("a rollback to a savepoint undoes the rows batched after it, sent or not" * needs_postgresql()) {
    pipelined_connection c;
    REQUIRE(c.db->run("BEGIN", "beginning"));
    REQUIRE(c.insert(1, "kept") == step_done);
    REQUIRE(c.db->run("SAVEPOINT job", "saving"));
    for (std::int64_t id = 2; id <= 300; ++id) // more than one statement's worth: some are sent at once
        REQUIRE(c.insert(id, "undone") == step_done);
    REQUIRE(c.db->run("ROLLBACK TO job", "undoing"));
    REQUIRE(c.db->run("RELEASE job", "releasing"));
    REQUIRE(c.db->run("COMMIT", "committing"));
    CHECK(c.count() == 1);
}
