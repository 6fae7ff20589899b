// The SQLite driver: see sqlite.hpp.
#include "sqlite.hpp"

#include <mutex>

namespace caregate::storage::detail {

bool sqlite_code_transient(int code) noexcept {
    switch (code & 0xff) {
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

const char* sqlite_code_text(int code) noexcept { return sqlite3_errstr(code); }

namespace {

/// A statement prepared on a SQLite connection.
class sqlite_prepared final : public prepared {
public:
    explicit sqlite_prepared(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    ~sqlite_prepared() override { sqlite3_finalize(stmt_); }

    int bind_integer(int index, std::int64_t value) override { return sqlite3_bind_int64(stmt_, index, value); }
    int bind_real(int index, double value) override { return sqlite3_bind_double(stmt_, index, value); }
    int bind_text(int index, std::string_view text) override {
        return sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
    }
    int bind_blob(int index, std::string_view bytes) override {
        // A zero-length blob still binds as a blob, not NULL: sqlite3_bind_blob64 with a non-null pointer.
        static const char empty = 0;
        return sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &empty : bytes.data(), bytes.size(), SQLITE_STATIC);
    }
    int bind_null(int index) override { return sqlite3_bind_null(stmt_, index); }
    int parameter_index(const char* name) const override { return sqlite3_bind_parameter_index(stmt_, name); }
    int parameter_count() const override { return sqlite3_bind_parameter_count(stmt_); }
    int step() override { return sqlite3_step(stmt_); }
    void reset() override {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    bool busy() const override { return sqlite3_stmt_busy(stmt_) != 0; }

    std::int64_t integer(int column) const override { return sqlite3_column_int64(stmt_, column); }
    double real(int column) const override { return sqlite3_column_double(stmt_, column); }
    std::string text(int column) const override {
        const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
        return data ? std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
    }
    bool is_null(int column) const override { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
    sql_value value(int column) const override {
        switch (sqlite3_column_type(stmt_, column)) {
        case SQLITE_INTEGER: return std::int64_t{sqlite3_column_int64(stmt_, column)};
        case SQLITE_FLOAT: return sqlite3_column_double(stmt_, column);
        case SQLITE_NULL: return std::monostate{};
        default: {
            const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
            return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
        }
        }
    }

private:
    sqlite3_stmt* stmt_;
};

} // namespace

fhir::result<std::unique_ptr<sqlite_connection>> sqlite_connection::open(const std::string& path, int flags,
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
        return storage_failure(rc, "opening the database");
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
    return std::unique_ptr<sqlite_connection>(new sqlite_connection(db));
}

sqlite_connection::~sqlite_connection() {
    drop_statements();
    sqlite3_close_v2(db_);
}

fhir::result<std::unique_ptr<prepared>> sqlite_connection::compile(const std::string& sql, bool lasting,
                                                                   std::string_view doing) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      lasting ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return storage_failure(rc, doing);
    }
    return std::unique_ptr<prepared>(new sqlite_prepared(stmt));
}

fhir::status sqlite_connection::exec_script(const std::string& sql, std::string_view doing) {
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
        return storage_failure(rc, doing);
    return {};
}

fhir::result<std::string> sqlite_connection::pragma(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return storage_failure(rc, "setting up the connection");
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
        return storage_failure(rc, "setting up the connection");
    return value;
}

} // namespace caregate::storage::detail
