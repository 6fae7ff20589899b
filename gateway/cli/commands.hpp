// The caregate subcommands. Each takes its arguments (after the subcommand's name) and returns the
// process exit code; each answers --help.
#pragma once

#include "storage/store.hpp"

#include <memory>
#include <string>
#include <vector>

namespace caregate::cli {

int serve(const std::vector<std::string>& args);
int audit(const std::vector<std::string>& args);
int token(const std::vector<std::string>& args);
int backup(const std::vector<std::string>& args);
int migrate(const std::vector<std::string>& args);
/// `caregate import` (not `import`: a contextual keyword in C++20).
int import_resources(const std::vector<std::string>& args);

/// Opens the store `database` names (storage::open_store) for a command; on failure prints
/// "caregate <command>: cannot open DATABASE: why" to standard error and returns nullptr.
std::unique_ptr<storage::store> open_store(const std::string& database, const storage::store_settings& settings,
                                           const std::string& command);

} // namespace caregate::cli
