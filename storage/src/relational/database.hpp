// What the relational engine asks of a database driver (SQLite's C API, libpq), so that one engine's
// SQL, planner and writer run on either: a connection owning its prepared statements, a prepared
// statement that binds values and steps through rows, a statement in use (reset when it goes out of
// scope), and failures as fhir::error values. The SQL the engine writes is SQLite's dialect with
// numbered placeholders (?N) or named ones (:name); a driver for another database translates it
// when it prepares a statement (storage/src/postgresql/libpq.hpp). Knows nothing of FHIR resources;
// SQL text here is always the store's own.
//
// Invariants every driver keeps:
//  - a step returns step_row, step_done, or a failure code that storage_failure turns into `busy`
//    (transient: contention, a lost connection, a full disk) or `fault`, never a client category,
//    and whose words never carry a value from a statement (no patient data in an error or a log);
//  - a prepared statement is used by one thread at a time, on its connection's thread;
//  - bound text and blobs outlive the steps that use them (the caller keeps them).
#pragma once

#include "fhir_model/error.hpp"

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

namespace caregate::storage::detail {

/// A value bound to, or read from, a statement.
using sql_value = std::variant<std::monostate, std::int64_t, double, std::string>;

/// What a step or a bind returns besides a failure code (SQLite's own numbers, which the SQLite
/// driver returns unchanged; other drivers use codes of their own, step_ok to step_done excepted).
inline constexpr int step_ok = 0;
inline constexpr int step_row = 100;
inline constexpr int step_done = 101;

/// A failure code (from a step, a bind or opening) as a storage error: `busy` ("storage temporarily
/// unavailable") for what a retry can get past, `fault` for everything else (a bug, corruption).
fhir::error storage_failure(int code, std::string_view doing);
/// True for the codes storage_failure maps to `busy` (a 503 with Retry-After at the API).
bool is_transient(int code) noexcept;

/// A statement prepared on a connection, in the driver's terms. Columns are numbered from 0,
/// parameters from 1; reading a column is valid after a step returned step_row.
class prepared {
public:
    virtual ~prepared() = default;
    /// Each returns step_ok or a failure code.
    virtual int bind_integer(int index, std::int64_t value) = 0;
    virtual int bind_real(int index, double value) = 0;
    virtual int bind_text(int index, std::string_view text) = 0;
    virtual int bind_blob(int index, std::string_view bytes) = 0;
    virtual int bind_null(int index) = 0;
    /// The index of the named parameter (":name"), 0 when the SQL has none of that name.
    virtual int parameter_index(const char* name) const = 0;
    /// The highest parameter number the SQL names.
    virtual int parameter_count() const = 0;
    /// step_row (a row is there to read), step_done, or a failure code.
    virtual int step() = 0;
    /// Rewinds for the next run and clears the bindings.
    virtual void reset() = 0;
    /// Stepped and not yet reset: in use further up the stack.
    virtual bool busy() const = 0;

    virtual std::int64_t integer(int column) const = 0;
    virtual double real(int column) const = 0;
    /// Text or blob bytes ("" for NULL).
    virtual std::string text(int column) const = 0;
    virtual bool is_null(int column) const = 0;
    /// The column as the database typed it.
    virtual sql_value value(int column) const = 0;
};

/// One connection and the statements prepared on it, used by one thread at a time (the store hands
/// connections between threads under its own mutex).
class connection {
public:
    virtual ~connection() = default;
    connection() = default;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// The cached prepared statement for `sql`, preparing it on first use.
    fhir::result<prepared*> prepare(const std::string& sql, std::string_view doing);
    /// A prepared statement for SQL whose text varies from call to call (a search's, which follows the
    /// query's shape; its values are bound, so the same shape gives the same text): kept among the
    /// `varying_limit` most recently used, the least recently used dropped beyond that. A statement
    /// still in use (prepared::busy) is never handed out twice: the caller then gets a fresh one it
    /// owns (`owned` set). Compiling a search's SQL was a third of a search's time on SQLite.
    struct varying_statement {
        prepared* stmt = nullptr;
        std::unique_ptr<prepared> owned;
    };
    fhir::result<varying_statement> prepare_varying(const std::string& sql, std::string_view doing);
    static constexpr std::size_t varying_limit = 64;
    /// Runs a cached statement that returns no rows (BEGIN, SAVEPOINT, COMMIT, ...).
    fhir::status run(const std::string& sql, std::string_view doing);
    /// Runs a fixed script of several statements, not cached (schema migrations, connection setup).
    virtual fhir::status exec_script(const std::string& sql, std::string_view doing) = 0;
    /// Rows the last INSERT, UPDATE or DELETE changed.
    virtual std::int64_t changes() = 0;
    /// Waits for every statement run so far to finish, and returns the first failure among them. A
    /// driver may defer a statement that returns no rows (libpq.hpp: a pipeline), so its step said
    /// step_done before the database had run it; whoever must know that the statements so far
    /// worked (a savepoint about to be released) settles first. SQLite runs each at once: nothing to do.
    virtual fhir::status settle(std::string_view doing) {
        (void)doing;
        return {};
    }
    /// Inside a transaction begun with BEGIN and not yet ended.
    virtual bool in_transaction() const = 0;
    /// False once the connection is lost (a database server gone, a failover): it must be replaced,
    /// not used again.
    virtual bool usable() const { return true; }
    /// How the database explains a query: the words put before it, and the column of each row
    /// that describes a step of the plan.
    struct explain_form {
        std::string_view prefix;
        int column;
    };
    virtual explain_form explaining() const = 0;

protected:
    /// Compiles `sql` (translating it, for a database whose dialect differs). `lasting`: kept for
    /// many runs (the cache's), so worth what a driver spends to make reruns cheap.
    virtual fhir::result<std::unique_ptr<prepared>> compile(const std::string& sql, bool lasting,
                                                            std::string_view doing) = 0;
    /// Drops every cached statement: a driver's destructor calls it before it closes its handle.
    void drop_statements() noexcept;

private:
    std::unordered_map<std::string, std::unique_ptr<prepared>> statements_;
    // prepare_varying's statements, most recently used first, and an index into the list.
    using varying_entry = std::pair<std::string, std::unique_ptr<prepared>>;
    std::list<varying_entry> varying_;
    std::unordered_map<std::string_view, std::list<varying_entry>::iterator> varying_index_;
};

/// A cached statement in use: binds, steps, reads columns; resets and clears bindings when it goes
/// out of scope so the next user finds it fresh. Bound text and blobs must outlive the steps.
class statement {
public:
    explicit statement(prepared* held) noexcept : held_(held) {}
    ~statement() { held_->reset(); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    statement& bind(int index, std::int64_t value) { return keep(held_->bind_integer(index, value)); }
    statement& bind(int index, std::string_view text) { return keep(held_->bind_text(index, text)); }
    statement& bind_blob(int index, std::string_view bytes) { return keep(held_->bind_blob(index, bytes)); }
    /// Binds a REAL (a separate name, so an int argument is never ambiguous with bind(int64)).
    statement& bind_real(int index, double value) { return keep(held_->bind_real(index, value)); }
    statement& bind_null(int index) { return keep(held_->bind_null(index)); }
    /// Binds a named parameter (":name"); the SQL must contain it.
    statement& bind(const char* name, std::int64_t value) { return bind(named(name), value); }
    statement& bind(const char* name, std::string_view text) { return bind(named(name), text); }

    /// step_row, step_done, or a failure code (the first binding failure, if any).
    int step() { return bind_failure_ != step_ok ? bind_failure_ : held_->step(); }

    std::int64_t integer(int column) const { return held_->integer(column); }
    double real(int column) const { return held_->real(column); }
    std::string text(int column) const { return held_->text(column); }
    std::string blob(int column) const { return held_->text(column); }
    bool is_null(int column) const { return held_->is_null(column); }
    const prepared& row() const { return *held_; }

private:
    statement& keep(int code) {
        if (code != step_ok && bind_failure_ == step_ok)
            bind_failure_ = code;
        return *this;
    }
    int named(const char* name) const;
    prepared* held_;
    int bind_failure_ = step_ok;
};

/// Runs a cached statement that returns no rows; `bind(statement&)` binds its parameters.
template <class Bind>
fhir::status execute(connection& db, const std::string& sql, std::string_view doing, Bind&& bind) {
    auto prepared = db.prepare(sql, doing);
    if (!prepared)
        return std::move(prepared).failure();
    statement use(*prepared);
    bind(use);
    if (const int code = use.step(); code != step_done)
        return storage_failure(code, doing);
    return {};
}

} // namespace caregate::storage::detail
