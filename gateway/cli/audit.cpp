// `caregate audit`: checks the audit log's hash chain (and, with --anchors, that the log still holds
// every record the signed anchors outside the database name), and lists break-glass accesses for
// review. Reads only: it neither anchors nor appends.
#include "cli/commands.hpp"
#include "cli/options.hpp"

#include "storage/audit_anchor.hpp"
#include "storage/store.hpp"

#include <iostream>
#include <optional>

namespace caregate::cli {

namespace {

constexpr const char* audit_usage = R"(Usage: caregate audit <verify | break-glass> [options]

  verify        walk the audit log's hash chain, and with --anchors check every anchor in FILE
                against it; exit 0 if all holds, 1 naming the first broken record and every anchor
                that does not hold
  break-glass   list break-glass accesses (purpose of use ETREAT), newest first, for review

Options:
)";

/// `caregate audit verify`: the chain, then the anchors. Every problem is printed; exit 1 on any.
int verify(const storage::store& store, const std::string& anchors,
           const std::optional<storage::audit_key>& key) {
    auto checked = store.verify_audit();
    if (!checked) {
        std::cerr << "caregate audit: the audit log could not be read\n";
        return 1;
    }
    bool sound = true;
    if (checked->first_broken) {
        std::cout << "audit log BROKEN at record " << *checked->first_broken << ": " << checked->problem << " ("
                  << checked->records << " records)\n";
        sound = false;
    } else {
        std::cout << "audit log verified: " << checked->records << " records, hash chain intact\n";
    }
    if (!key) {
        // The chain alone cannot show its newest records removed, an older copy restored, or the
        // whole chain rewritten with its hashes recomputed: say so, every time.
        std::cout << "not checked: the end of the log and a rewrite of the chain with its hashes recomputed "
                     "(no --anchors)\n";
        return sound ? 0 : 1;
    }
    auto anchored = storage::verify_anchors(store, *key, anchors);
    if (!anchored) {
        std::cerr << "caregate audit: " << anchored.failure().issues.front().diagnostics << "\n";
        return 1;
    }
    for (const auto& problem : anchored->problems)
        std::cout << "anchor at " << anchors << " line " << problem.line << " does NOT hold: " << problem.problem
                  << "\n";
    if (!anchored->problems.empty()) {
        std::cout << "anchors BROKEN: " << anchored->problems.size() << " of " << anchored->lines << " lines of "
                  << anchors << " do not hold (" << anchored->anchors_verified << " hold)\n";
        return 1;
    }
    if (anchored->anchors_verified == 0) {
        std::cout << "anchors: " << anchors << " holds no anchor: nothing beyond the hash chain was checked\n";
        return sound ? 0 : 1;
    }
    std::cout << "anchors verified: " << anchored->anchors_verified
              << (anchored->anchors_verified == 1 ? " anchor" : " anchors") << " (key " << key->id()
              << ") hold, the newest at record " << anchored->newest_anchored;
    if (anchored->tip.sequence > anchored->newest_anchored)
        std::cout << "; records " << anchored->newest_anchored + 1 << " to " << anchored->tip.sequence
                  << " are after it, not yet anchored";
    std::cout << "\n";
    return sound ? 0 : 1;
}

} // namespace

int audit(const std::vector<std::string>& args) {
    std::string db = "caregate.db";
    unsigned count = 100;
    std::string anchors;
    std::string public_key;
    const std::vector<option> table{
        {"db", "DATABASE", "the database: a SQLite file, as PATH or sqlite:PATH (default ./caregate.db), or postgresql://...", [&](const std::string& v) { db = v; }},
        {"anchors", "FILE", "verify: the anchors file caregate serve --audit-anchors wrote; each anchor is checked "
                            "(needs --audit-public-key)",
         [&](const std::string& v) { anchors = v; }},
        {"audit-public-key", "FILE", "verify: the Ed25519 public key (PEM) of the --audit-key that signed the anchors",
         [&](const std::string& v) { public_key = v; }},
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
    if (anchors.empty() != public_key.empty() || (what != "verify" && !anchors.empty())) {
        std::cerr << "caregate audit: --anchors and --audit-public-key go together, with verify\n";
        return 2;
    }
    std::optional<storage::audit_key> key;
    if (!public_key.empty()) {
        auto loaded = storage::audit_key::load_public(public_key);
        if (!loaded) {
            std::cerr << "caregate audit: " << loaded.failure().issues.front().diagnostics << "\n";
            return 2;
        }
        key = std::move(*loaded);
    }
    std::unique_ptr<storage::store> opened = open_store(db, storage::store_settings{}, "audit");
    if (!opened)
        return 1;
    auto& store = *opened;
    if (what == "verify")
        return verify(store, anchors, key);
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
