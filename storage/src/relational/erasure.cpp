// Erasure of a citizen's record (erasure.hpp). Versions and break-glass grants are otherwise
// immutable: the schema's triggers refuse to delete them unless the `erasing` table names a citizen,
// and only erase_citizen writes that row, first, and removes it, last, inside the writer's savepoint,
// so it is never committed.
#include "erasure.hpp"

#include "list_column.hpp"
#include "search_index.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>

namespace caregate::storage::detail {
namespace {

constexpr std::string_view erasing = "erasing a citizen's record";

using resource_key = std::pair<std::string, std::string>;

const std::string begin_sql = "INSERT INTO erasing (nhs_number) VALUES (?1)";
const std::string end_sql = "DELETE FROM erasing";
const std::string naming_sql =
    "SELECT DISTINCT v.type, v.id FROM version_citizens c JOIN resource_versions v ON v.seq = c.seq "
    "WHERE c.nhs_number = ?1";
const std::string versions_sql = "SELECT seq, citizens FROM resource_versions WHERE type = ?1 AND id = ?2";
const std::string current_sql = "SELECT seq FROM resources WHERE type = ?1 AND id = ?2";
const std::string pointing_sql =
    "SELECT DISTINCT v.type, v.id FROM version_targets t JOIN resource_versions v ON v.seq = t.seq "
    "WHERE t.type = ?1 AND t.id = ?2";
const std::string remove_version_sql = "DELETE FROM resource_versions WHERE seq = ?1";
const std::string remove_grants_sql = "DELETE FROM break_glass_grants WHERE nhs_number = ?1";
const std::array<std::string, 4> remove_resource_sql = {
    "DELETE FROM organisation_links WHERE type = ?1 AND id = ?2",
    "DELETE FROM objections WHERE type = ?1 AND id = ?2",
    "DELETE FROM opt_outs WHERE type = ?1 AND id = ?2",
    "DELETE FROM resources WHERE type = ?1 AND id = ?2",
};

fhir::status run(connection& db, const std::string& sql, std::string_view first, std::string_view second = {}) {
    return execute(db, sql, erasing, [&](statement& use) {
        use.bind(1, first);
        if (!second.empty())
            use.bind(2, second);
    });
}

/// The (type, id) pairs a two-column query gives for its one or two bound values.
fhir::result<std::vector<resource_key>> resources_of(connection& db, const std::string& sql, std::string_view first,
                                                     std::string_view second = {}) {
    auto prepared = db.prepare(sql, erasing);
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    query.bind(1, first);
    if (!second.empty())
        query.bind(2, second);
    std::vector<resource_key> found;
    int rc;
    while ((rc = query.step()) == step_row)
        found.emplace_back(query.text(0), query.text(1));
    if (rc != step_done)
        return storage_failure(rc, erasing);
    return found;
}

fhir::status remove_version(connection& db, std::int64_t seq) {
    if (auto derived = erase_version_rows(db, seq); !derived)
        return derived;
    return execute(db, remove_version_sql, erasing, [&](statement& use) { use.bind(1, seq); });
}

/// Removes the versions of one resource that name the citizen (all of them when `whole`, or when its
/// current version is among them); true when the resource is gone whole.
fhir::result<bool> erase_resource(connection& db, const resource_key& resource, std::string_view nhs_number,
                                  bool whole) {
    const auto& [type, id] = resource;
    std::vector<std::pair<std::int64_t, bool>> versions; // seq, names the citizen
    {
        auto prepared = db.prepare(versions_sql, erasing);
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, type).bind(2, id);
        int rc;
        while ((rc = query.step()) == step_row) {
            const auto citizens = split_lines(query.text(1));
            versions.emplace_back(query.integer(0),
                                  std::find(citizens.begin(), citizens.end(), nhs_number) != citizens.end());
        }
        if (rc != step_done)
            return storage_failure(rc, erasing);
    }
    std::optional<std::int64_t> current;
    {
        auto prepared = db.prepare(current_sql, erasing);
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, type).bind(2, id);
        const int rc = query.step();
        if (rc == step_row)
            current = query.integer(0);
        else if (rc != step_done)
            return storage_failure(rc, erasing);
    }
    // A resource whose current version names the citizen goes whole: its earlier versions of
    // someone else would have no current version left to stand under.
    whole = whole || !current ||
            std::any_of(versions.begin(), versions.end(), [&](const auto& v) { return v.first == *current && v.second; });
    // The current-version row and the links first: they reference the versions (foreign keys).
    if (whole)
        for (const std::string& sql : remove_resource_sql)
            if (auto removed = run(db, sql, type, id); !removed)
                return std::move(removed).failure();
    for (const auto& [seq, names_citizen] : versions)
        if (whole || names_citizen)
            if (auto removed = remove_version(db, seq); !removed)
                return std::move(removed).failure();
    return whole;
}


/// Every export job whose files hold the citizen (export_citizens) loses its files and fails, saying
/// why; a job still running finds it so at its next save (exports.hpp, invariant 2) and stops.
fhir::status withdraw_exports(connection& db, std::string_view nhs_number) {
    static const std::string jobs_of = "SELECT job_id FROM export_citizens WHERE nhs_number = ?1";
    static const std::string files = "DELETE FROM export_files WHERE job_id IN (" + jobs_of + ")";
    static const std::string fail =
        "UPDATE export_jobs SET status = 'failed', worker = NULL, lease_until = NULL, finished = ?2, expires = ?2, "
        "error = 'withdrawn: a record it held has been erased; export again' WHERE id IN (" + jobs_of + ")";
    static const std::string citizens = "DELETE FROM export_citizens WHERE job_id IN (" + jobs_of + ")";
    if (auto removed = run(db, files, nhs_number); !removed)
        return removed;
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    if (auto failed = execute(db, fail, erasing, [&](statement& use) { use.bind(1, nhs_number).bind(2, now); });
        !failed)
        return failed;
    return run(db, citizens, nhs_number);
}

} // namespace

fhir::status erase_citizen(connection& db, std::string_view nhs_number, const std::vector<resource_key>& record) {
    if (auto begun = run(db, begin_sql, nhs_number); !begun)
        return begun;
    std::set<resource_key> touched(record.begin(), record.end());
    auto naming = resources_of(db, naming_sql, nhs_number);
    if (!naming)
        return std::move(naming).failure();
    touched.insert(naming->begin(), naming->end());

    std::set<resource_key> erased;
    for (const resource_key& resource : touched) {
        auto gone = erase_resource(db, resource, nhs_number, false);
        if (!gone)
            return std::move(gone).failure();
        if (*gone)
            erased.insert(resource);
    }
    // What points at an item gone whole goes whole too (one level: pointing types never point at
    // pointing types, visibility_sql.hpp note 3). An item moved to another citizen keeps its own
    // later versions, and what points at it.
    for (const resource_key& item : erased) {
        auto pointing = resources_of(db, pointing_sql, item.first, item.second);
        if (!pointing)
            return std::move(pointing).failure();
        for (const resource_key& pointer : *pointing)
            if (!erased.count(pointer))
                if (auto gone = erase_resource(db, pointer, nhs_number, true); !gone)
                    return std::move(gone).failure();
    }
    if (auto removed = run(db, remove_grants_sql, nhs_number); !removed)
        return removed;
    if (auto withdrawn = withdraw_exports(db, nhs_number); !withdrawn)
        return withdrawn;
    return execute(db, end_sql, erasing, [](statement&) {});
}

} // namespace caregate::storage::detail
