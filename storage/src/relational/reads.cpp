// Reads of the relational engine: the current version, a version, history pages and which resources a
// caller may see, each on a pooled read connection. History is decided in the query with the
// caller's visibility (visibility_sql.hpp), so a page is full whenever there are that many entries,
// and a page cursor is a version's seq, stable under later writes (invariants 2, 4 and 12 in
// engine.hpp). On PostgreSQL a current version is read by one statement for a batch of reads
// (read_batches.hpp), the same statement whether the batch holds one read or many.
#include "engine.hpp"

#include <bit>
#include <span>

#include "binary_parts.hpp"
#include "list_column.hpp"
#include "search_plan.hpp"
#include "sql_text.hpp"
#include "visibility_sql.hpp"

namespace caregate::storage {
namespace {

const std::string version_sql =
    "SELECT version_id, deleted, last_updated, json, method, owner, citizens, labels, facets "
    "FROM resource_versions WHERE type = ?1 AND id = ?2 AND version_id = ?3";

// On PostgreSQL, with the database's access generation, for the standings that decide the version
// (engine.hpp, invariant 27).
const std::string version_and_generation_sql = with_access_generation(version_sql);

// On PostgreSQL, the current versions of a batch of reads (read_batches.hpp) in one statement: the
// columns of current_version_sql and the access generation, then which read of the batch (1-based)
// the row answers. Its `slots` (type, id) pairs are bound as parameters, a VALUES list rather than
// arrays, because PostgreSQL then knows how many rows to expect and keeps one generic plan (an
// array's unnest is estimated at ten rows, which made it plan a batch of one afresh at every run).
std::string current_versions_sql(std::size_t slots) {
    std::string sql = "SELECT r.version_id, r.deleted, v.last_updated, v.json, v.method, v.owner, v.citizens, "
                      "v.labels, v.facets, (SELECT generation FROM access_generation), k.i FROM (VALUES ";
    for (std::size_t slot = 0; slot < slots; ++slot) {
        if (slot > 0)
            sql += ", ";
        sql += "(" + std::to_string(slot + 1) + ", ?" + std::to_string(2 * slot + 1) + ", ?" +
               std::to_string(2 * slot + 2) + ")";
    }
    return sql + ") AS k(i, type, id) JOIN resources r ON r.type = k.type AND r.id = k.id "
                 "JOIN resource_versions v ON v.seq = r.seq";
}

// A batch runs in the statement of the next power of two slots at or above its size, its last slots
// empty (an empty type and id, which name no resource): seven statements cover every batch.
const std::vector<std::string> current_versions_by_slots = [] {
    std::vector<std::string> statements;
    for (std::size_t slots = 1; slots <= detail::current_version_batches::max_reads; slots *= 2)
        statements.push_back(current_versions_sql(slots));
    return statements;
}();
static_assert(std::has_single_bit(detail::current_version_batches::max_reads));

/// What store::read_current answers for a resource that never existed.
fhir::error not_known(std::string_view type, std::string_view id) {
    return fhir::error::make(fhir::category::not_found, "not-found", reference(type, id) + " is not known");
}

} // namespace

void relational_engine::read_current_batch(std::span<detail::current_version_batches::wanted* const> reads) const {
    auto found = with_reader<bool>([&](connection& db) -> fhir::result<bool> {
        const char* doing = "reading resources";
        const std::size_t slots = std::bit_ceil(reads.size());
        auto prepared = db.prepare(current_versions_by_slots[static_cast<std::size_t>(std::countr_zero(slots))], doing);
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        for (std::size_t slot = 0; slot < slots; ++slot) {
            const bool used = slot < reads.size();
            query.bind(static_cast<int>(2 * slot + 1), used ? reads[slot]->type : std::string_view())
                .bind(static_cast<int>(2 * slot + 2), used ? reads[slot]->id : std::string_view());
        }
        for (;;) {
            const int rc = query.step();
            if (rc == step_done)
                return true;
            if (rc != step_row)
                return detail::storage_failure(rc, doing);
            const std::int64_t i = query.integer(10);
            if (i < 1 || static_cast<std::size_t>(i) > reads.size() || reads[i - 1]->found)
                return store_fault("a batch of reads was answered out of place");
            auto& read = *reads[i - 1];
            read.found = version_and_generation_from(query, read.type, read.id);
        }
    });
    for (auto* read : reads) {
        if (!found)
            read->found = found.failure();
        else if (!read->found)
            read->found = not_known(read->type, read->id);
    }
}

fhir::result<stored_version> relational_store::read_current(std::string_view type, std::string_view id) const {
    if (!impl_->on_postgresql()) {
        auto found = impl_->with_reader<std::optional<stored_version>>(
            [&](connection& db) { return load_current(db, type, id); });
        if (!found)
            return std::move(found).failure();
        if (!*found)
            return not_known(type, id);
        return std::move(**found);
    }
    // A batch of one, on this thread: a caller that waits for its answer gains nothing from a batch
    // thread, and its statement is the batches' own.
    detail::current_version_batches::wanted read{std::string(type), std::string(id), std::nullopt, {}};
    detail::current_version_batches::wanted* const reads[] = {&read};
    detail::answer_batch([this](auto batch) { impl_->read_current_batch(batch); }, reads);
    return std::move(*read.found);
}

void relational_store::read_current_async(std::string_view type, std::string_view id,
                                          std::function<void(fhir::result<stored_version>)> then) const {
    if (!impl_->on_postgresql())
        return then(read_current(type, id));
    impl_->current_versions.read(std::string(type), std::string(id), std::move(then));
}

fhir::result<stored_version> relational_store::read(std::string_view type, std::string_view id) const {
    auto current = read_current(type, id);
    if (current && current->deleted)
        return fhir::error::make(fhir::category::deleted, "deleted", reference(type, id) + " has been deleted");
    return current;
}

fhir::result<stored_version> relational_store::vread(std::string_view type, std::string_view id,
                                          std::int64_t version_id) const {
    auto found = impl_->with_reader<std::optional<stored_version>>(
        [&](connection& db) -> fhir::result<std::optional<stored_version>> {
            const bool shared = impl_->on_postgresql();
            return query_one<stored_version>(
                db, shared ? version_and_generation_sql : version_sql, "reading a version",
                [&](statement& q) { q.bind(1, type).bind(2, id).bind(3, version_id); },
                [&](const statement& row) {
                    return shared ? version_and_generation_from(row, type, id) : version_from(row, type, id);
                });
        });
    if (!found)
        return std::move(found).failure();
    if (!*found)
        return fhir::error::make(fhir::category::not_found, "not-found",
                                 reference(type, id) + " has no version " + std::to_string(version_id));
    if ((*found)->deleted)
        return fhir::error::make(fhir::category::deleted, "deleted",
                                 "version " + std::to_string(version_id) + " of " + reference(type, id) +
                                     " is a deletion");
    return std::move(**found);
}

fhir::status relational_store::binary_bytes(std::string_view id, std::int64_t version_id,
                                            const std::function<fhir::status(std::string_view, std::size_t)>& each) const {
    auto read = impl_->with_reader<bool>([&](connection& db) -> fhir::result<bool> {
        if (auto parts = detail::read_binary_parts(db, id, version_id, impl_->on_postgresql(), each); !parts)
            return std::move(parts).failure();
        return true;
    });
    if (!read)
        return std::move(read).failure();
    return {};
}

fhir::result<history_page> relational_store::history(const history_query& query) const {
    if (!query.id.empty() && query.type.empty())
        return store_fault("the history of one resource needs its type");
    if (query.visibility == nullptr)
        return store_fault("a history query needs the caller's visibility");
    history_page page;
    if (query.count == 0)
        return page;

    // The SQL is assembled from fixed fragments only; values are bound (detail::sql_text).
    detail::sql_text sql;
    std::string text = "SELECT v.seq, v.version_id, v.deleted, v.last_updated, v.json, v.method, v.type, v.id, "
                       "v.owner, v.citizens, v.labels, v.facets FROM resource_versions v WHERE 1 = 1";
    if (!query.type.empty())
        text += " AND v.type = " + sql.text_arg(query.type);
    if (!query.id.empty())
        text += " AND v.id = " + sql.text_arg(query.id);
    if (query.before)
        text += " AND v.seq < " + sql.arg(*query.before);
    if (query.since) {
        // Invariant 4: the first version at or after `since` bounds seq from below.
        const std::string since = sql.arg(*query.since);
        text += " AND v.last_updated >= " + since + " AND v.seq >= (SELECT s.seq FROM resource_versions s"
                " WHERE s.last_updated >= " + since + " ORDER BY s.last_updated LIMIT 1)";
    }
    if (query.at) {
        // Current at some point in [at_begin, at_end): made before at_end, and not replaced by a
        // next version at or before at_begin.
        const std::string at_begin = sql.arg(query.at->first);
        const std::string at_end = sql.arg(query.at->second);
        text += " AND v.last_updated < " + at_end + " AND v.seq < coalesce((SELECT e.seq FROM resource_versions e"
                " WHERE e.last_updated >= " + at_end + " ORDER BY e.last_updated LIMIT 1), 9223372036854775807)"
                " AND NOT EXISTS (SELECT 1 FROM resource_versions n WHERE n.type = v.type AND n.id = v.id"
                " AND n.version_id = v.version_id + 1 AND n.last_updated <= " + at_begin + ")";
    }
    // The visibility rule inside the query: LIMIT counts visible entries only, so pages are full.
    detail::visibility_sql rule(*query.visibility, sql);
    if (!query.type.empty() && !rule.readable(query.type))
        return page;
    text += " AND " + (query.type.empty() ? rule.visible_in_history("v")
                                          : rule.visible_in_history("v", std::string_view(query.type)));
    // One more than asked for: a probe that tells whether there is an older page. A resource's
    // versions come newest first from its unique key (type, id, version_id), in seq order too.
    text += std::string(query.id.empty() ? " ORDER BY v.seq DESC" : " ORDER BY v.version_id DESC") + " LIMIT " +
            sql.arg(static_cast<std::int64_t>(query.count) + 1);

    struct row {
        std::int64_t seq;
        stored_version version;
    };
    auto rows = impl_->with_reader<std::vector<row>>([&](connection& db) -> fhir::result<std::vector<row>> {
        std::vector<row> found;
        auto read = detail::each_row(
            db, sql, text,
            [&](const prepared& select) {
                auto text_at = [&](int column) { return select.text(column); };
                row entry;
                entry.seq = select.integer(0);
                entry.version.version_id = select.integer(1);
                entry.version.deleted = select.integer(2) != 0;
                entry.version.last_updated = select.integer(3);
                entry.version.json = text_at(4);
                entry.version.method = text_at(5);
                entry.version.type = text_at(6);
                entry.version.id = text_at(7);
                entry.version.owner = text_at(8);
                entry.version.citizens = split_lines(text_at(9));
                entry.version.labels = split_lines(text_at(10));
                entry.version.facets = split_lines(text_at(11));
                found.push_back(std::move(entry));
            },
            "reading history");
        if (!read)
            return std::move(read).failure();
        return found;
    });
    if (!rows)
        return std::move(rows).failure();

    const bool more = rows->size() > query.count;
    if (more)
        rows->resize(query.count);
    for (auto& entry : *rows)
        page.entries.push_back(std::move(entry.version));
    if (more)
        page.next = rows->back().seq;
    return page;
}

fhir::result<std::vector<bool>> relational_store::visible_resources(
    const search_visibility& visibility, const std::vector<std::pair<std::string, std::string>>& resources) const {
    std::vector<bool> visible(resources.size(), false);
    // In batches, so that one statement's placeholders stay few (SQLite allows 32,766).
    constexpr std::size_t batch = 64;
    for (std::size_t from = 0; from < resources.size(); from += batch) {
        const std::size_t to = std::min(resources.size(), from + batch);
        detail::sql_text sql;
        std::string items;
        for (std::size_t i = from; i < to; ++i)
            items += (i == from ? "(" : ", (") + sql.arg(static_cast<std::int64_t>(i)) + ", " +
                     sql.text_arg(resources[i].first) + ", " + sql.text_arg(resources[i].second) + ")";
        detail::visibility_sql rule(visibility, sql);
        const std::string text = "WITH items (n, type, id) AS (VALUES " + items + ") SELECT n FROM items WHERE " +
                                 rule.resource_visible("items.type", "items.id");
        auto found = impl_->with_reader<std::vector<std::int64_t>>(
            [&](connection& db) -> fhir::result<std::vector<std::int64_t>> {
                std::vector<std::int64_t> shown;
                auto read = detail::each_row(
                    db, sql, text, [&](const prepared& select) { shown.push_back(select.integer(0)); },
                    "naming resources");
                if (!read)
                    return std::move(read).failure();
                return shown;
            });
        if (!found)
            return std::move(found).failure();
        for (const std::int64_t n : *found)
            visible[static_cast<std::size_t>(n)] = true;
    }
    return visible;
}

fhir::result<search_page> relational_store::search(const search_request& request) const {
    return impl_->with_reader<search_page>([&](connection& db) { return detail::run_search(db, request); });
}

fhir::result<std::string> relational_store::explain_search(const search_request& request) const {
    return impl_->with_reader<std::string>([&](connection& db) { return detail::explain_search(db, request); });
}

} // namespace caregate::storage
