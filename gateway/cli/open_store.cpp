// Opening the store for the commands that need one (serve, audit, import), with one way of saying
// why it could not be opened.
#include "cli/commands.hpp"

#include <iostream>

namespace caregate::cli {

std::unique_ptr<storage::store> open_store(const storage::store_options& options, const std::string& command) {
    auto opened = storage::store::open(options);
    if (!opened) {
        std::cerr << "caregate " << command << ": cannot open " << options.path << ": "
                  << (opened.failure().issues.empty() ? "" : opened.failure().issues[0].diagnostics) << "\n";
        return nullptr;
    }
    return std::move(opened.value());
}

} // namespace caregate::cli
