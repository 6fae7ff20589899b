// `caregate migrate`: moves a SQLite database into PostgreSQL (storage::migrate_store), for a
// deployment outgrowing one machine. The source is only read; the target must be an empty caregate
// database (or a new one); no server may write either meanwhile.
#include "cli/commands.hpp"
#include "cli/options.hpp"

#include "storage/store.hpp"

#include <chrono>
#include <iostream>

namespace caregate::cli {

namespace {

constexpr const char* migrate_usage = R"(Usage: caregate migrate --from DATABASE --to DATABASE

Moves a caregate database from SQLite into PostgreSQL: every version, the current versions, the
access facts (citizen and organisation links, objections, break-glass grants), the search index and
the whole audit chain, each as stored, in one transaction of the target; then verifies the copy's
audit chain. The source is brought to the current schema first and otherwise only read. The target
must hold no resource and no audit record. Stop every server using either database first. Exit 0
when the move is complete, 1 when it failed (the target is left as it was), 2 for wrong usage.

Options:
)";

} // namespace

int migrate(const std::vector<std::string>& args) {
    std::string from;
    std::string to;
    const std::vector<option> table{
        {"from", "DATABASE", "the SQLite database to move, as PATH or sqlite:PATH", [&](const std::string& v) { from = v; }},
        {"to", "DATABASE", "the PostgreSQL database to move it into, as postgresql://USER@HOST:PORT/DATABASE",
         [&](const std::string& v) { to = v; }},
    };
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
        std::cout << migrate_usage << describe_options(table);
        return 0;
    }
    try {
        parse_options(table, args);
    } catch (const std::exception& e) {
        std::cerr << "caregate migrate: " << e.what() << "\n";
        return 2;
    }
    if (from.empty() || to.empty()) {
        std::cerr << "caregate migrate: --from and --to are required\n" << migrate_usage << describe_options(table);
        return 2;
    }
    const auto begun = std::chrono::steady_clock::now();
    auto moved = storage::migrate_store(from, to);
    if (!moved) {
        std::cerr << "caregate migrate: "
                  << (moved.failure().issues.empty() ? "failed" : moved.failure().issues[0].diagnostics) << "\n";
        return 1;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count();
    std::cout << "caregate migrate: " << moved->resources << " resources, " << moved->versions << " versions, "
              << moved->audit_records << " audit records (chain verified), " << moved->rows << " rows in all, in "
              << seconds << " s\n";
    return 0;
}

} // namespace caregate::cli
