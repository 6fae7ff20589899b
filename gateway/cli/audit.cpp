// `caregate audit`: checks the audit log's hash chain, and lists break-glass accesses for review.
#include "cli/commands.hpp"
#include "cli/options.hpp"

#include "storage/store.hpp"

#include <iostream>

namespace caregate::cli {

namespace {

constexpr const char* audit_usage = R"(Usage: caregate audit <verify | break-glass> [options]

  verify        walk the audit log's hash chain; exit 0 if every record verifies, 1 naming the first
                record that does not
  break-glass   list break-glass accesses (purpose of use ETREAT), newest first, for review

Options:
)";

} // namespace

int audit(const std::vector<std::string>& args) {
    std::string db = "caregate.db";
    unsigned count = 100;
    const std::vector<option> table{
        {"db", "PATH", "the SQLite database file (default ./caregate.db)", [&](const std::string& v) { db = v; }},
        {"count", "N", "break-glass: how many to list (default 100)",
         [&](const std::string& v) { count = static_cast<unsigned>(std::stoul(v)); }},
    };
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << audit_usage << describe_options(table);
        return args.empty() ? 2 : 0;
    }
    const std::string what = args[0];
    try {
        parse_options(table, std::vector<std::string>(args.begin() + 1, args.end()));
    } catch (const std::exception& e) {
        std::cerr << "caregate audit: " << e.what() << "\n";
        return 2;
    }
    if (what != "verify" && what != "break-glass") {
        std::cerr << "caregate audit: unknown action '" << what << "'\n" << audit_usage;
        return 2;
    }
    storage::store_options options;
    options.path = db;
    std::unique_ptr<storage::store> opened = open_store(options, "audit");
    if (!opened)
        return 1;
    auto& store = *opened;
    if (what == "verify") {
        auto checked = store.verify_audit();
        if (!checked) {
            std::cerr << "caregate audit: the audit log could not be read\n";
            return 1;
        }
        if (checked->first_broken) {
            std::cout << "audit log BROKEN at record " << *checked->first_broken << ": " << checked->problem << " ("
                      << checked->records << " records)\n";
            return 1;
        }
        std::cout << "audit log verified: " << checked->records << " records, hash chain intact\n";
        return 0;
    }
    storage::store::audit_query query;
    query.purpose = "ETREAT";
    query.count = count;
    auto page = store.audit(query);
    if (!page) {
        std::cerr << "caregate audit: the audit log could not be read\n";
        return 1;
    }
    std::cout << "time\tcitizen\torganisation\tuser\trole\taction\toutcome\treason\n";
    for (const auto& r : page->records)
        std::cout << storage::store::format_instant(r.time) << '\t' << r.nhs_number << '\t' << r.organisation << '\t'
                  << r.user << '\t' << r.role << '\t' << r.action << '\t' << r.outcome << '\t' << r.break_glass_reason
                  << '\n';
    return 0;
}

} // namespace caregate::cli
