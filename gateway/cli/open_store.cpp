// Opening the store for the commands that need one (serve, audit, import), with one way of saying
// why it could not be opened.
#include "cli/commands.hpp"

#include <iostream>

namespace caregate::cli {

std::unique_ptr<storage::store> open_store(const std::string& database, const storage::store_settings& settings,
                                           const std::string& command) {
    auto opened = storage::open_store(database, settings);
    if (!opened) {
        std::cerr << "caregate " << command << ": cannot open " << storage::printable_database_name(database) << ": "
                  << (opened.failure().issues.empty() ? "" : opened.failure().issues[0].diagnostics) << "\n";
        return nullptr;
    }
    return std::move(opened.value());
}

} // namespace caregate::cli
