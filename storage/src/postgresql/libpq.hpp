// The PostgreSQL driver of the relational engine (relational/database.hpp), over libpq. The engine
// writes SQLite's dialect; this driver translates what differs when it compiles a statement
// (placeholders ?N and :name become $N, INSERT OR IGNORE becomes ON CONFLICT DO NOTHING, INSERT OR
// FAIL and UPDATE OR FAIL plain ones, BEGIN IMMEDIATE a BEGIN), and the schema (postgresql/schema.cpp) defines the few SQLite functions the
// engine calls (instr, two-argument max and min, ...). Failure codes carry the SQLSTATE.
//
// Invariants:
//  - a statement is compiled on the server (PQprepare) on its first run, with the types of the values
//    bound then (bigint, double precision, text; NULL left to the server), and run by name after;
//  - a run fetches its whole result before the first row is read, so a row callback may run other
//    statements on the same connection;
//  - an error's words are the SQLSTATE and its class, never the server's message (which can quote
//    values: "Key (id)=(...) already exists");
//  - on a connection that defers writes (defer_writes, the engine's writer), a statement that returns
//    nothing and changes nothing outside the open transaction if it fails (INSERT, UPDATE or DELETE
//    without RETURNING, SAVEPOINT, RELEASE; and BEGIN, when no transaction is open) is sent in a
//    libpq pipeline and its step answers
//    step_done at once; the pipeline is settled (sent, every result read) by the next statement that
//    is not deferred, by settle() and by changes(). The first failure among the deferred is what
//    that statement, settle() or the next step after changes() returns, so a failure still reaches
//    the engine inside the savepoint whose statements caused it (the writer settles before it
//    releases one). One round trip then carries a write's dozen statements, where it took a dozen;
//  - on such a connection, an INSERT of bare placeholders (row_batches.hpp) is not even sent: its rows
//    join those of the same table and columns, sent as a few multi-row INSERTs before the next
//    statement of any other kind (settle() and changes() included). changes() then counts the last
//    statement sent, which the engine asks only after an UPDATE or a DELETE.
#pragma once

#include "../relational/database.hpp"
#include "row_batches.hpp"

#include <libpq-fe.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace caregate::storage::detail {

/// Failure codes of this driver: a flag bit and the SQLSTATE's five characters in base 36.
bool is_postgresql_code(int code) noexcept;
int postgresql_code(std::string_view sqlstate) noexcept;
std::string postgresql_sqlstate(int code);
/// Transient: a connection lost or refused (class 08), a server shutting down or a standby (57P,
/// 25006 read-only transaction), contention (40001, 40P01, 55P03 lock not available), resources
/// short (53), a statement cancelled by its timeout (57014).
bool postgresql_code_transient(int code) noexcept;
/// The SQLSTATE and its class in words, e.g. "SQLSTATE 40001 (transaction rollback)".
std::string postgresql_code_text(int code);

/// SQL in SQLite's dialect as PostgreSQL takes it, and the names of its :name parameters in the order
/// they were numbered (parameter i+1 is names[i]; "" for a numbered one).
struct translated_sql {
    std::string text;
    std::vector<std::string> names;
    int parameters = 0;
};
translated_sql translate_to_postgresql(std::string_view sql);

/// Who holds a server-side statement name whose preparation went into a pipeline: told when the
/// preparation did not happen (a command before it failed), so that it prepares again on its next run.
class server_preparation {
public:
    virtual void forget_server_name() noexcept = 0;

protected:
    ~server_preparation() = default;
};

/// One libpq connection.
class postgresql_connection final : public connection {
public:
    /// Connects with `conninfo` (a postgresql:// URI or key=value words). Errors: busy (refused,
    /// unreachable: a retry may find the server), with words that name neither the password nor
    /// anything else of the URI.
    static fhir::result<std::unique_ptr<postgresql_connection>> open(const std::string& conninfo);
    ~postgresql_connection() override;

    PGconn* handle() const noexcept { return db_; }
    /// Whether the connection is still up (PQstatus): a broken one must be replaced, not reused.
    bool healthy() const noexcept { return PQstatus(db_) == CONNECTION_OK; }

    fhir::status exec_script(const std::string& sql, std::string_view doing) override;
    std::int64_t changes() override;
    fhir::status settle(std::string_view doing) override;
    bool in_transaction() const override;
    explain_form explaining() const override { return {"EXPLAIN ", 0}; }
    bool usable() const override { return healthy(); }
    /// Inside a transaction that a failed statement has aborted (only a rollback is taken).
    bool in_transaction_failed() const;

    /// Set by each run: rows changed by the last command.
    void record_changes(std::int64_t rows) noexcept { changes_ = rows; }
    /// A fresh name for a server-side prepared statement.
    std::string next_statement_name() { return "s" + std::to_string(++statements_named_); }

    /// Whether write statements inside a transaction are pipelined (see the invariants above).
    void defer_writes(bool on) noexcept { defer_writes_ = on; }
    /// Whether a statement that could be deferred is, now: deferring is on and a transaction is open.
    bool deferring_now() const;
    /// Whether a BEGIN may be deferred now: deferring is on and no transaction is open (it then opens
    /// one, so that what follows it is deferred too).
    bool may_defer_begin() const;
    /// What a pipelined command is, so that settling knows what its result means.
    enum class deferred_kind { prepare, run, other };
    /// Enters the pipeline if need be and notes a command just sent, in order. `owner`: the
    /// statement whose server-side preparation (kind prepare) this is, told if it did not happen.
    void note_deferred(deferred_kind kind, server_preparation* owner);
    std::size_t pending_count() const noexcept { return pending_.size(); }
    /// Sends what is pipelined, reads every result, leaves the pipeline: step_ok, or the first
    /// failure (also a failure kept from an earlier settle that could not report it). `last`, if
    /// given, receives the last command's result when it succeeded (the caller's to clear): a
    /// statement that needs its rows goes behind the deferred ones, in the same round trip.
    int settle_pending(PGresult** last = nullptr);
    /// Commands are in the pipeline, not yet settled, or rows are batched, not yet sent.
    bool pipelined() const noexcept { return !pending_.empty() || !batches_.empty(); }

    /// The connection's copy of `sql`'s shape when its rows may be batched (row_batches.hpp); null otherwise.
    const insert_shape* batch_shape(std::string_view sql);
    /// Adds the rows a statement of `shape` bound (its strings are moved from) to their batch, sending
    /// the batches when that one is full: step_ok, or a failure of the sending.
    int batch_rows(const insert_shape* shape, std::vector<std::string>& values, const std::vector<bool>& nulls);
    /// Sends every batched row into the pipeline (settling it whenever it holds pipeline_limit
    /// commands): step_ok, or the first failure.
    int send_batches();

protected:
    fhir::result<std::unique_ptr<prepared>> compile(const std::string& sql, bool lasting,
                                                    std::string_view doing) override;

private:
    explicit postgresql_connection(PGconn* db) : db_(db) {}
    struct deferred {
        deferred_kind kind;
        server_preparation* owner;
    };
    /// The multi-row INSERT of one size of one shape, prepared on the server on its first use.
    struct batch_statement final : server_preparation {
        std::string name;
        void forget_server_name() noexcept override { name.clear(); }
    };
    PGconn* db_;
    std::int64_t changes_ = 0;
    std::uint64_t statements_named_ = 0;
    bool defer_writes_ = false;
    std::vector<deferred> pending_;
    int kept_failure_ = step_ok; // a settle's failure that no caller has been told of yet
    row_batches batches_;
    std::map<std::pair<const insert_shape*, std::size_t>, batch_statement> batch_statements_;
};

/// The failure code of a result (or of the connection, when there is no result).
int postgresql_result_code(const PGresult* result, const PGconn* db) noexcept;

} // namespace caregate::storage::detail
