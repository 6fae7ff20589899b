// `caregate backup`: an online, consistent copy of the database while a server serves it (SQLite's
// backup API: storage::backup_database). Reads the database only; restoring is copying the backup
// into place while no server runs (README, "Backup and restore").
#include "cli/commands.hpp"
#include "cli/options.hpp"

#include "storage/store.hpp"

#include <chrono>
#include <iostream>

namespace caregate::cli {

namespace {

constexpr const char* backup_usage = R"(Usage: caregate backup --to FILE [options]

Copies the database, while a server may be serving it, to FILE: one consistent moment of it (every
write acknowledged by then, none half), as a single self-contained SQLite file, checked with
integrity_check and on disk before it gets FILE's name. Never overwrites FILE. Exit 0 when the backup
is complete, 1 when it failed (nothing is left at FILE), 2 for wrong usage.

Options:
)";

} // namespace

int backup(const std::vector<std::string>& args) {
    std::string db = "caregate.db";
    std::string to;
    const std::vector<option> table{
        {"db", "DATABASE", "the database to copy: a SQLite file, as PATH or sqlite:PATH (default ./caregate.db)", [&](const std::string& v) { db = v; }},
        {"to", "FILE", "the backup file to make (must not exist)", [&](const std::string& v) { to = v; }},
    };
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
        std::cout << backup_usage << describe_options(table);
        return 0;
    }
    try {
        parse_options(table, args);
    } catch (const std::exception& e) {
        std::cerr << "caregate backup: " << e.what() << "\n";
        return 2;
    }
    if (to.empty()) {
        std::cerr << "caregate backup: --to FILE is required\n" << backup_usage << describe_options(table);
        return 2;
    }
    const auto begun = std::chrono::steady_clock::now();
    auto made = storage::backup_store(db, to);
    if (!made) {
        std::cerr << "caregate backup: "
                  << (made.failure().issues.empty() ? "failed" : made.failure().issues[0].diagnostics) << "\n";
        return 1;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count();
    std::cout << "caregate backup: " << to << ": " << made->bytes << " bytes (" << made->pages
              << " pages), schema " << made->schema_version << ", " << made->audit_records
              << " audit records, integrity ok, in " << seconds << " s\n";
    return 0;
}

} // namespace caregate::cli
