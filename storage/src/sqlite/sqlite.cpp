// The RAII layer over the SQLite C API: see sqlite.hpp.
#include "sqlite.hpp"

#include <mutex>

#include <cassert>
#include <stdexcept>

namespace caregate::storage::detail {

bool is_transient(int result_code) noexcept {
    switch (result_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
        return true;
    default:
        return false;
    }
}

fhir::error sqlite_failure(int result_code, std::string_view doing) {
    // sqlite3_errstr is the generic text for the code ("database is locked"); unlike
    // sqlite3_errmsg it can never carry values from a statement, so no patient data leaks.
    std::string diagnostics = "storage ";
    diagnostics += is_transient(result_code) ? "temporarily unavailable" : "failure";
    diagnostics += " while ";
    diagnostics += doing;
    diagnostics += ": ";
    diagnostics += sqlite3_errstr(result_code);
    if (is_transient(result_code))
        return fhir::error::make(fhir::category::busy, "transient", std::move(diagnostics));
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

fhir::result<std::unique_ptr<connection>> connection::open(const std::string& path, int flags,
                                                           std::chrono::milliseconds busy_timeout,
                                                           const std::string& vfs) {
    // SQLite counts every allocation under one global mutex unless told not to (memory statistics
    // are on by default); the writer and the readers allocate on every statement, so the counting
    // was a tenth of the writer's time in a bulk load. Must come before SQLite initialises: a call
    // after that (another library opened a database first) is refused and changes nothing.
    static std::once_flag configured;
    std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs.empty() ? nullptr : vfs.c_str());
    if (rc != SQLITE_OK) {
        sqlite3_close_v2(db); // a handle is returned even on failure
        return sqlite_failure(rc, "opening the database");
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
    return std::unique_ptr<connection>(new connection(db));
}

connection::~connection() {
    for (auto& [sql, stmt] : statements_)
        sqlite3_finalize(stmt);
    for (auto& [sql, stmt] : varying_)
        sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
}

fhir::result<sqlite3_stmt*> connection::prepare(const std::string& sql, std::string_view doing) {
    if (auto found = statements_.find(sql); found != statements_.end())
        return found->second;
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return sqlite_failure(rc, doing);
    }
    statements_.emplace(sql, stmt);
    return stmt;
}

fhir::result<connection::varying_statement> connection::prepare_varying(const std::string& sql,
                                                                        std::string_view doing) {
    if (auto found = varying_index_.find(sql); found != varying_index_.end()) {
        auto entry = found->second;
        if (!sqlite3_stmt_busy(entry->second)) {
            varying_.splice(varying_.begin(), varying_, entry); // most recently used
            return varying_statement{entry->second, false};
        }
        // In use further up the stack (a row callback running the same shape): a fresh one.
        sqlite3_stmt* stmt = nullptr;
        if (const int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
            rc != SQLITE_OK) {
            sqlite3_finalize(stmt);
            return sqlite_failure(rc, doing);
        }
        return varying_statement{stmt, true};
    }
    sqlite3_stmt* stmt = nullptr;
    if (const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                          &stmt, nullptr);
        rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return sqlite_failure(rc, doing);
    }
    if (varying_.size() >= varying_limit) {
        auto& [oldest_sql, oldest] = varying_.back();
        if (!sqlite3_stmt_busy(oldest)) {
            varying_index_.erase(oldest_sql);
            sqlite3_finalize(oldest);
            varying_.pop_back();
        }
    }
    varying_.emplace_front(sql, stmt);
    varying_index_.emplace(varying_.front().first, varying_.begin());
    return varying_statement{stmt, false};
}

fhir::status connection::run(const std::string& sql, std::string_view doing) {
    auto prepared = prepare(sql, doing);
    if (!prepared)
        return std::move(prepared).failure();
    statement use(*prepared);
    int rc;
    while ((rc = use.step()) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE)
        return sqlite_failure(rc, doing);
    return {};
}

fhir::status connection::exec_script(const std::string& sql, std::string_view doing) {
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
        return sqlite_failure(rc, doing);
    return {};
}

fhir::result<std::string> connection::pragma(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return sqlite_failure(rc, "setting up the connection");
    }
    std::string value;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        if (auto text = sqlite3_column_text(stmt, 0))
            value = reinterpret_cast<const char*>(text);
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return sqlite_failure(rc, "setting up the connection");
    return value;
}

statement::~statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

statement& statement::bind(int index, std::int64_t value) {
    if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK && bind_error_ == SQLITE_OK)
        bind_error_ = rc;
    return *this;
}

statement& statement::bind(int index, std::string_view text) {
    if (int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
        rc != SQLITE_OK && bind_error_ == SQLITE_OK)
        bind_error_ = rc;
    return *this;
}

statement& statement::bind_real(int index, double value) {
    if (int rc = sqlite3_bind_double(stmt_, index, value); rc != SQLITE_OK && bind_error_ == SQLITE_OK)
        bind_error_ = rc;
    return *this;
}

statement& statement::bind_blob(int index, std::string_view bytes) {
    // A zero-length blob still binds as a blob, not NULL: sqlite3_bind_blob64 with a non-null pointer.
    static const char empty = 0;
    const char* data = bytes.empty() ? &empty : bytes.data();
    if (int rc = sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_STATIC);
        rc != SQLITE_OK && bind_error_ == SQLITE_OK)
        bind_error_ = rc;
    return *this;
}

int statement::named(const char* name) const {
    const int index = sqlite3_bind_parameter_index(stmt_, name);
    if (index == 0)
        throw std::logic_error(std::string("statement has no parameter ") + name);
    return index;
}

statement& statement::bind(const char* name, std::int64_t value) { return bind(named(name), value); }
statement& statement::bind(const char* name, std::string_view text) { return bind(named(name), text); }

int statement::step() {
    if (bind_error_ != SQLITE_OK)
        return bind_error_;
    return sqlite3_step(stmt_);
}

std::int64_t statement::integer(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string statement::text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return data ? std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
}

std::string statement::blob(int column) const {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    return data ? std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
}

} // namespace caregate::storage::detail
