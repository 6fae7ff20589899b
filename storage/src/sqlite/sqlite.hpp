// A thin RAII layer over the SQLite C API for the store: a connection owning its cache of prepared
// statements, a statement in use (reset when it goes out of scope), and SQLite failures as
// fhir::error values. Knows nothing of FHIR resources; SQL text here is always the store's own.
#pragma once

#include "fhir_model/error.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace caregate::storage::detail {

/// A SQLite failure as a storage error: `busy` ("storage temporarily unavailable") for contention
/// and a full disk, which a retry can get past, and `fault` for everything else. Never a client
/// category: a failed statement is the server's problem, not the request's.
fhir::error sqlite_failure(int result_code, std::string_view doing);

/// True for the result codes sqlite_failure maps to `busy` (a 503 with Retry-After at the API): the
/// database or its file system cannot take the write now, and can again once an operator or another
/// process has cleared the cause, with nothing to repair: locked (BUSY, LOCKED), the disk full (FULL),
/// the file system read-only or failing a read or write (READONLY, IOERR), a file that cannot be
/// opened (CANTOPEN), memory short (NOMEM). SQLite rolls back what such a failure interrupts. Not
/// transient: a corrupt database, a misuse, a constraint (a bug): `fault`, a 500.
bool is_transient(int result_code) noexcept;

/// One SQLite connection and the statements prepared on it. Used by one thread at a time (the
/// connections are opened with SQLITE_OPEN_NOMUTEX; the store hands them between threads under
/// its own mutex).
class connection {
public:
    /// Opens `path` with `flags` (SQLITE_OPEN_*), extended result codes on, and a busy timeout,
    /// through the SQLite VFS named `vfs` (empty: the default one).
    static fhir::result<std::unique_ptr<connection>> open(const std::string& path, int flags,
                                                          std::chrono::milliseconds busy_timeout,
                                                          const std::string& vfs = {});
    /// Finalises every cached statement, then closes (sqlite3_close_v2).
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    sqlite3* handle() const noexcept { return db_; }

    /// The cached prepared statement for `sql`, preparing it on first use.
    fhir::result<sqlite3_stmt*> prepare(const std::string& sql, std::string_view doing);
    /// A prepared statement for SQL whose text varies from call to call (a search's, which follows the
    /// query's shape; its values are bound, so the same shape gives the same text): kept among the
    /// `varying_limit` most recently used, the least recently used finalised beyond that. A
    /// statement still in use (stepping, sqlite3_stmt_busy) is never handed out twice: the caller
    /// then gets a fresh one it must finalise itself (`owned` true). Compiling a search's SQL was a
    /// third of a search's time.
    struct varying_statement {
        sqlite3_stmt* stmt = nullptr;
        bool owned = false;
    };
    fhir::result<varying_statement> prepare_varying(const std::string& sql, std::string_view doing);
    static constexpr std::size_t varying_limit = 64;
    /// Runs a cached statement that returns no rows (BEGIN, SAVEPOINT, COMMIT, ...).
    fhir::status run(const std::string& sql, std::string_view doing);
    /// Runs a fixed script of DDL or PRAGMAs, not cached (schema migrations, connection setup).
    fhir::status exec_script(const std::string& sql, std::string_view doing);
    /// Runs a PRAGMA and returns its first column as text ("" when it returns no row).
    fhir::result<std::string> pragma(const std::string& sql);

private:
    explicit connection(sqlite3* db) : db_(db) {}
    sqlite3* db_;
    std::unordered_map<std::string, sqlite3_stmt*> statements_;
    // prepare_varying's statements, most recently used first, and an index into the list.
    std::list<std::pair<std::string, sqlite3_stmt*>> varying_;
    std::unordered_map<std::string_view, std::list<std::pair<std::string, sqlite3_stmt*>>::iterator> varying_index_;
};

/// A cached statement in use: binds, steps, reads columns; resets and clears bindings when it goes
/// out of scope so the next user finds it fresh. Bound text and blobs must outlive the steps.
class statement {
public:
    explicit statement(sqlite3_stmt* prepared) noexcept : stmt_(prepared) {}
    ~statement();
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    statement& bind(int index, std::int64_t value);
    statement& bind(int index, std::string_view text);
    statement& bind_blob(int index, std::string_view bytes);
    /// Binds a REAL (a separate name, so an int argument is never ambiguous with bind(int64)).
    statement& bind_real(int index, double value);
    /// Binds a named parameter (":name"); the SQL must contain it.
    statement& bind(const char* name, std::int64_t value);
    statement& bind(const char* name, std::string_view text);

    /// SQLITE_ROW, SQLITE_DONE, or an error code (the first binding error, if any).
    int step();

    std::int64_t integer(int column) const;
    std::string text(int column) const;
    std::string blob(int column) const;

private:
    int named(const char* name) const;
    sqlite3_stmt* stmt_;
    int bind_error_ = SQLITE_OK;
};

/// Runs a cached statement that returns no rows; `bind(statement&)` binds its parameters.
template <class Bind>
fhir::status execute(connection& db, const std::string& sql, std::string_view doing, Bind&& bind) {
    auto prepared = db.prepare(sql, doing);
    if (!prepared)
        return std::move(prepared).failure();
    statement use(*prepared);
    bind(use);
    if (const int rc = use.step(); rc != SQLITE_DONE)
        return sqlite_failure(rc, doing);
    return {};
}

} // namespace caregate::storage::detail
