// The caregate executable: dispatches to a subcommand.
#include "cli/commands.hpp"

#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr const char* usage = R"(caregate: a shared care record gateway (FHIR R4 over HTTPS, keyed on the NHS number)

Usage: caregate <command> [options]

Commands:
  serve       serve the FHIR API on an embedded SQLite database, or on PostgreSQL
  audit       verify the audit log's hash chain; list break-glass accesses for review
  token       mint a development bearer token signed with the key from certs/
  import      load an NDJSON file of FHIR resources into the database
  backup      copy the database, while it is served, to a consistent single-file backup
  migrate     move a SQLite database into PostgreSQL
  version     print the version

Run 'caregate <command> --help' for a command's options.
)";

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::cout << usage;
        return args.empty() ? 2 : 0;
    }
    const std::string command = args[0];
    args.erase(args.begin());
    if (command == "serve")
        return caregate::cli::serve(args);
    if (command == "audit")
        return caregate::cli::audit(args);
    if (command == "token")
        return caregate::cli::token(args);
    if (command == "import")
        return caregate::cli::import_resources(args);
    if (command == "backup")
        return caregate::cli::backup(args);
    if (command == "migrate")
        return caregate::cli::migrate(args);
    if (command == "version" || command == "--version") {
        std::cout << "caregate " << CAREGATE_VERSION << "\n";
        return 0;
    }
    std::cerr << "caregate: unknown command '" << command << "'\n\n" << usage;
    return 2;
}
