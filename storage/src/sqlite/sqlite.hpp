// The SQLite driver of the relational engine (relational/database.hpp): a connection over the SQLite
// C API and its prepared statements. SQLite's own result codes are the failure codes. What only
// SQLite has (PRAGMAs, the WAL hook and checkpoints, the backup API) is reached through handle().
#pragma once

#include "../relational/database.hpp"

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace caregate::storage::detail {

/// True for the SQLite codes storage_failure maps to `busy`: the database or its file system cannot
/// take the write now, and can again once an operator or another process has cleared the cause,
/// with nothing to repair: locked (BUSY, LOCKED), the disk full (FULL), the file system read-only or
/// failing a read or write (READONLY, IOERR), a file that cannot be opened (CANTOPEN), memory short
/// (NOMEM). SQLite rolls back what such a failure interrupts. Not transient: a corrupt database, a
/// misuse, a constraint (a bug).
bool sqlite_code_transient(int code) noexcept;
/// SQLite's generic words for the code ("database is locked"): unlike sqlite3_errmsg they can never
/// carry values from a statement, so no patient data leaks.
const char* sqlite_code_text(int code) noexcept;

/// One SQLite connection (opened with SQLITE_OPEN_NOMUTEX: one thread at a time).
class sqlite_connection final : public connection {
public:
    /// Opens `path` with `flags` (SQLITE_OPEN_*), extended result codes on, and a busy timeout,
    /// through the SQLite VFS named `vfs` (empty: the default one).
    static fhir::result<std::unique_ptr<sqlite_connection>> open(const std::string& path, int flags,
                                                                 std::chrono::milliseconds busy_timeout,
                                                                 const std::string& vfs = {});
    /// Finalises every cached statement, then closes (sqlite3_close_v2).
    ~sqlite_connection() override;

    sqlite3* handle() const noexcept { return db_; }
    /// Runs a PRAGMA and returns its first column as text ("" when it returns no row).
    fhir::result<std::string> pragma(const std::string& sql);

    fhir::status exec_script(const std::string& sql, std::string_view doing) override;
    std::int64_t changes() override { return sqlite3_changes64(db_); }
    bool in_transaction() const override { return !sqlite3_get_autocommit(db_); }
    explain_form explaining() const override { return {"EXPLAIN QUERY PLAN ", 3}; }

protected:
    fhir::result<std::unique_ptr<prepared>> compile(const std::string& sql, bool lasting,
                                                    std::string_view doing) override;

private:
    explicit sqlite_connection(sqlite3* db) : db_(db) {}
    sqlite3* db_;
};

/// The SQLite connection under `db`, for what only SQLite does: `db` must be one.
inline sqlite_connection& as_sqlite(connection& db) { return static_cast<sqlite_connection&>(db); }

} // namespace caregate::storage::detail
