// An online backup of the database (store.hpp, backup_database): SQLite's backup API copies every
// page of one read snapshot into a new file beside the target, which is checked, made durable and
// only then given the target's name.
//
// Design notes:
//  1. One step (sqlite3_backup_step with -1) holds one read transaction on the source for the whole
//     copy, so the copy is a single moment of it, whatever the server writes meanwhile (WAL: the
//     writer goes on; its commits after the snapshot are not in the copy). A copy in several steps
//     would restart from the beginning at every commit of another process, and a busy server
//     commits every few milliseconds.
//  2. The copy is switched to a rollback journal (journal_mode DELETE): a single self-contained file,
//     which caregate switches back to WAL when it next opens it as its database.
//  3. Nothing at the target's name until the copy is whole, checked and on disk: the copy is written
//     to "<to>.partial", fsynced, renamed, and the directory fsynced, so a crash leaves either no
//     backup or a complete one.
#include "storage/store.hpp"

#include "sqlite.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace caregate::storage {

namespace {

fhir::error backup_failure(std::string diagnostics) {
    return fhir::error::make(fhir::category::fault, "exception", "backup failed: " + std::move(diagnostics));
}

/// fsync of a file or directory by path.
bool sync_path(const std::string& path, bool directory) {
    const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDWR);
    if (fd < 0)
        return false;
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    return synced;
}

fhir::result<std::int64_t> single_value(detail::sqlite_connection& db, const std::string& sql) {
    auto text = db.pragma(sql);
    if (!text)
        return std::move(text).failure();
    try {
        return std::stoll(*text);
    } catch (const std::exception&) {
        return backup_failure("'" + sql + "' did not give a number");
    }
}

} // namespace

fhir::result<backup_report> backup_database(const std::string& from, const std::string& to,
                                            std::chrono::milliseconds busy_timeout) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(to, ec))
        return fhir::error::make(fhir::category::conflict, "duplicate",
                                 "backup: " + to + " exists already; a backup never overwrites a file");
    if (!fs::exists(from, ec))
        return fhir::error::make(fhir::category::not_found, "not-found", "backup: there is no database at " + from);
    const std::string partial = to + ".partial";
    fs::remove(partial, ec);
    fs::remove(partial + "-journal", ec);

    // Whatever fails from here on, no partial copy stays behind.
    struct remove_partial {
        const std::string& path;
        bool keep = false;
        ~remove_partial() {
            if (keep)
                return;
            std::error_code ignored;
            std::filesystem::remove(path, ignored);
            std::filesystem::remove(path + "-journal", ignored);
        }
    } cleanup{partial};

    backup_report report;
    {
        auto source = detail::sqlite_connection::open(from, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, busy_timeout);
        if (!source)
            return std::move(source).failure();
        auto copy = detail::sqlite_connection::open(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                             busy_timeout);
        if (!copy)
            return std::move(copy).failure();
        sqlite3_backup* backup = sqlite3_backup_init((*copy)->handle(), "main", (*source)->handle(), "main");
        if (!backup)
            return backup_failure(sqlite3_errmsg((*copy)->handle()));
        // Design note 1: all pages in one step. Busy (a checkpoint or a writer holding a lock the
        // snapshot needs for a moment): wait and try again, up to the busy timeout.
        const auto deadline = std::chrono::steady_clock::now() + busy_timeout;
        int rc;
        while ((rc = sqlite3_backup_step(backup, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            if (std::chrono::steady_clock::now() >= deadline)
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        report.pages = sqlite3_backup_pagecount(backup);
        const int finished = sqlite3_backup_finish(backup);
        if (rc != SQLITE_DONE)
            return detail::storage_failure(rc, "copying the database");
        if (finished != SQLITE_OK)
            return detail::storage_failure(finished, "copying the database");

        if (auto journal = (*copy)->pragma("PRAGMA journal_mode = DELETE"); !journal || *journal != "delete")
            return backup_failure("the copy could not be made a single file");
        auto integrity = (*copy)->pragma("PRAGMA integrity_check");
        if (!integrity)
            return std::move(integrity).failure();
        if (*integrity != "ok")
            return backup_failure("the copy did not pass integrity_check: " + *integrity);
        auto version = single_value(**copy, "PRAGMA user_version");
        if (!version)
            return std::move(version).failure();
        report.schema_version = *version;
        // A database too old to have an audit log has none to count.
        if (auto has_log = single_value(**copy, "SELECT count(*) FROM sqlite_master WHERE name = 'audit_log'");
            has_log && *has_log > 0) {
            auto records = single_value(**copy, "SELECT count(*) FROM audit_log");
            if (!records)
                return std::move(records).failure();
            report.audit_records = *records;
        }
    } // both connections closed: the copy is complete on its own

    report.bytes = static_cast<std::int64_t>(fs::file_size(partial, ec));
    const std::string directory = fs::absolute(to).parent_path().string();
    if (!sync_path(partial, false))
        return backup_failure("the copy could not be written to disk (fsync)");
    fs::rename(partial, to, ec);
    if (!ec)
        cleanup.keep = true;
    if (ec)
        return backup_failure("the copy could not be renamed to " + to + ": " + ec.message());
    if (!sync_path(directory, true))
        return backup_failure("the directory of " + to + " could not be written to disk (fsync)");
    return report;
}

} // namespace caregate::storage
