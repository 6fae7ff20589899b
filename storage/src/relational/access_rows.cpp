// What a version records for access control (invariant 11 in engine.hpp): the organisation links
// and objection of the current live version, replaced with each version; break-glass grants (15);
// and a citizen's standing with a caller, read in one statement and cached until the next write
// that commits (22).
#include "engine.hpp"

namespace caregate::storage {
namespace {

const std::string organisation_links_sql =
    "SELECT nhs_number, ods, kind, active, ended FROM organisation_links WHERE type = ?1 AND id = ?2 ORDER BY rowid";

const std::string remove_organisation_links_sql = "DELETE FROM organisation_links WHERE type = ?1 AND id = ?2";

const std::string insert_organisation_link_sql =
    "INSERT INTO organisation_links (type, id, nhs_number, ods, kind, active, ended) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const std::string has_objection_sql = "SELECT 1 FROM objections WHERE type = ?1 AND id = ?2";

const std::string remove_objections_sql = "DELETE FROM objections WHERE type = ?1 AND id = ?2";

const std::string insert_objection_sql =
    "INSERT OR IGNORE INTO objections (type, id, nhs_number) VALUES (?1, ?2, ?3)";

const std::string has_opt_out_sql = "SELECT 1 FROM opt_outs WHERE type = ?1 AND id = ?2";

const std::string remove_opt_outs_sql = "DELETE FROM opt_outs WHERE type = ?1 AND id = ?2";

const std::string insert_opt_out_sql = "INSERT OR IGNORE INTO opt_outs (type, id, nhs_number) VALUES (?1, ?2, ?3)";

const std::string insert_grant_sql =
    "INSERT INTO break_glass_grants (nhs_number, organisation, \"user\", reason, from_time, until_time, request_id, role) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

// A citizen's standing in one statement (one read of one snapshot, where four statements took four):
// held; a relationship (an active link while it has no end, an ended one while the end is recent);
// an objection; the latest break-glass grant still open for this user in this role (invariant 15); the
// national data opt-out. ?1 NHS number, ?2 ODS code, ?3 recent_since, ?4 user, ?5 now, ?6 role.
const std::string standing_sql =
    "SELECT EXISTS (SELECT 1 FROM resources WHERE type = 'Patient' AND id = ?1 AND deleted = 0), "
    "EXISTS (SELECT 1 FROM organisation_links WHERE nhs_number = ?1 AND ods = ?2 "
    "AND ((active = 1 AND ended IS NULL) OR ended >= ?3)), "
    "EXISTS (SELECT 1 FROM objections WHERE nhs_number = ?1), "
    "(SELECT max(until_time) FROM break_glass_grants WHERE nhs_number = ?1 AND organisation = ?2 AND \"user\" = ?4 "
    "AND role = ?6 AND until_time > ?5 AND from_time <= ?5), "
    "EXISTS (SELECT 1 FROM opt_outs WHERE nhs_number = ?1)";

// On PostgreSQL, with the database's access generation from the same snapshot (invariant 27).
const std::string standing_and_generation_sql = standing_sql + ", (SELECT generation FROM access_generation)";

} // namespace

fhir::result<bool> relational_engine::same_access(const write_request& request, const stored_version& current) {
    const access_rows wanted = access_rows_for(request);
    if (current.citizens != wanted.citizens || current.labels != request.access.labels ||
        current.facets != request.access.facets)
        return false;
    connection& db = *writer_db;
    std::vector<organisation_link_row> links;
    {
        auto prepared = db.prepare(organisation_links_sql, "comparing organisation links");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, request.type).bind(2, request.id);
        int rc;
        while ((rc = query.step()) == step_row) {
            organisation_link_row row{query.text(0), query.text(1), query.text(2), query.integer(3) != 0, {}};
            if (!query.is_null(4))
                row.ended = query.integer(4);
            links.push_back(std::move(row));
        }
        if (rc != step_done)
            return detail::storage_failure(rc, "comparing organisation links");
    }
    if (links != wanted.links)
        return false;
    auto objection = exists(db, has_objection_sql, "comparing objections",
                            [&](statement& query) { query.bind(1, request.type).bind(2, request.id); });
    if (!objection)
        return std::move(objection).failure();
    if (*objection != wanted.objection)
        return false;
    auto opt_out = exists(db, has_opt_out_sql, "comparing opt-outs",
                          [&](statement& query) { query.bind(1, request.type).bind(2, request.id); });
    if (!opt_out)
        return std::move(opt_out).failure();
    return *opt_out == wanted.opt_out;
}

fhir::status relational_engine::write_access_rows(const write_request& request, bool deletion, bool live) {
    // Invariant 11: the rows are the new version's, or none for a deletion; only a live resource has
    // rows to remove.
    connection& db = *writer_db;
    auto by_resource = [&](statement& use) -> statement& { return use.bind(1, request.type).bind(2, request.id); };
    if (live) {
        if (auto removed = execute(db, remove_organisation_links_sql, "linking organisations", by_resource); !removed)
            return removed;
        if (auto removed = execute(db, remove_objections_sql, "recording an objection", by_resource); !removed)
            return removed;
        if (auto removed = execute(db, remove_opt_outs_sql, "recording an opt-out", by_resource); !removed)
            return removed;
    }
    if (deletion)
        return {};
    const access_rows rows = access_rows_for(request);
    for (const auto& link : rows.links) {
        auto inserted = execute(db, insert_organisation_link_sql, "linking organisations", [&](statement& insert) {
            insert.bind(1, request.type).bind(2, request.id).bind(3, link.nhs_number).bind(4, link.ods);
            insert.bind(5, link.kind).bind(6, std::int64_t{link.active});
            if (link.ended)
                insert.bind(7, *link.ended); // left unbound: NULL
        });
        if (!inserted)
            return inserted;
    }
    if (rows.objection)
        for (const auto& citizen : rows.citizens)
            if (auto inserted = execute(db, insert_objection_sql, "recording an objection",
                                        [&](statement& insert) { by_resource(insert).bind(3, citizen); });
                !inserted)
                return inserted;
    if (rows.opt_out)
        for (const auto& citizen : rows.citizens)
            if (auto inserted = execute(db, insert_opt_out_sql, "recording an opt-out",
                                        [&](statement& insert) { by_resource(insert).bind(3, citizen); });
                !inserted)
                return inserted;
    return {};
}

fhir::status relational_engine::insert_grant(const break_glass_grant& grant) {
    return execute(*writer_db, insert_grant_sql, "recording a break-glass grant", [&](statement& insert) {
        insert.bind(1, grant.nhs_number).bind(2, grant.organisation).bind(3, grant.user).bind(4, grant.reason);
        insert.bind(5, grant.from).bind(6, grant.until).bind(7, grant.request_id).bind(8, grant.role);
    });
}

fhir::result<citizen_standing> relational_store::standing(std::string_view nhs_number, std::string_view organisation,
                                               std::string_view user, std::string_view role, timestamp recent_since,
                                               timestamp now, std::uint64_t seen_generation) const {
    const timestamp ttl =
        std::chrono::duration_cast<std::chrono::microseconds>(impl_->options.standing_cache_ttl).count();
    if (ttl <= 0)
        return impl_->read_standing(nhs_number, organisation, user, role, recent_since, now);
    // Invariant 22 on SQLite: the process's generation, read before the query. Invariant 27 on
    // PostgreSQL: the generation the request read from the database (none: no entry serves), and
    // the entry's own from the statement that read it.
    const bool shared = impl_->on_postgresql();
    std::string key;
    key.reserve(nhs_number.size() + organisation.size() + user.size() + role.size() + 25);
    key.append(nhs_number).append(1, '\0').append(organisation).append(1, '\0').append(user).append(1, '\0');
    key.append(role).append(1, '\0');
    key += std::to_string(now - recent_since);
    // Read before the query: a commit after this load makes the entry stale at the next look, whether
    // or not the query saw it.
    std::uint64_t generation = shared ? seen_generation : impl_->access_generation.load(std::memory_order_acquire);
    if (!shared || seen_generation != 0) {
        std::lock_guard lock(impl_->standings_mutex);
        if (auto found = impl_->standings.find(key); found != impl_->standings.end()) {
            const cached_standing& cached = found->second;
            if (cached.generation == generation && now >= cached.read_at && now - cached.read_at < ttl) {
                citizen_standing standing = cached.standing;
                if (standing.break_glass_until && *standing.break_glass_until <= now)
                    standing.break_glass_until.reset(); // the grant ended since
                return standing;
            }
        }
    }
    auto read = impl_->read_standing(nhs_number, organisation, user, role, recent_since, now,
                                     shared ? &generation : nullptr);
    if (read) {
        std::lock_guard lock(impl_->standings_mutex);
        // Bounded: at a few hundred bytes an entry, 65,536 of them are well within the memory budget;
        // emptied at once rather than evicted one by one (they are all gone within a second anyway).
        if (impl_->standings.size() >= 65536)
            impl_->standings.clear();
        impl_->standings.insert_or_assign(std::move(key), cached_standing{*read, generation, now});
    }
    return read;
}

fhir::result<citizen_standing> relational_engine::read_standing(std::string_view nhs_number, std::string_view organisation,
                                                          std::string_view user, std::string_view role,
                                                          timestamp recent_since, timestamp now,
                                                          std::uint64_t* generation) const {
    return with_reader<citizen_standing>([&](connection& db) -> fhir::result<citizen_standing> {
        citizen_standing found;
        auto prepared = db.prepare(on_postgresql() ? standing_and_generation_sql : standing_sql,
                                   "reading a citizen's standing");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, nhs_number).bind(2, organisation).bind(3, recent_since).bind(4, user).bind(5, now).bind(6, role);
        if (const int rc = query.step(); rc != step_row)
            return detail::storage_failure(rc, "reading a citizen's standing");
        found.held = query.integer(0) != 0;
        found.relationship = query.integer(1) != 0;
        found.objection = query.integer(2) != 0;
        if (!query.is_null(3)) // max() over no rows is NULL
            found.break_glass_until = query.integer(3);
        found.opted_out = query.integer(4) != 0;
        if (generation && on_postgresql())
            *generation = static_cast<std::uint64_t>(query.integer(5));
        return found;
    });
}

} // namespace caregate::storage
