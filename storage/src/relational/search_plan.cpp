// Running a search (search_plan.hpp, where the design notes are): one read transaction for the
// whole request (design note 1), the total, the page query and its cursors, the includes, and the
// versions loaded by seq in the page's order; find_matches and explain_search run the same plan.
// What the SQL says is the planner's (search_planner.hpp); this file only runs it and maps rows.
#include "search_plan.hpp"

#include "list_column.hpp"
#include "search_planner.hpp"

#include <algorithm>
#include <cassert>
#include <map>
#include <variant>

namespace caregate::storage::detail {

namespace {

constexpr std::string_view searching = "searching";

/// Loads the versions with these seqs, in the order given.
fhir::result<std::vector<stored_version>> load_versions(connection& db, const std::vector<std::int64_t>& seqs) {
    std::vector<stored_version> versions;
    if (seqs.empty())
        return versions;
    sql_text sql;
    const std::string list = sql.in_list(seqs);
    std::map<std::int64_t, stored_version> found;
    auto read = each_row(db, sql,
                         "SELECT seq, type, id, version_id, deleted, last_updated, json, method, owner, citizens, "
                         "labels, facets FROM resource_versions WHERE seq IN (" + list + ")",
                         [&](const prepared& row) {
                             stored_version v;
                             v.type = row.text(1);
                             v.id = row.text(2);
                             v.version_id = row.integer(3);
                             v.deleted = row.integer(4) != 0;
                             v.last_updated = row.integer(5);
                             v.json = row.text(6);
                             v.method = row.text(7);
                             v.owner = row.text(8);
                             v.citizens = split_lines(row.text(9));
                             v.labels = split_lines(row.text(10));
                             v.facets = split_lines(row.text(11));
                             found.emplace(row.integer(0), std::move(v));
                         });
    if (!read)
        return std::move(read).failure();
    for (std::int64_t seq : seqs)
        if (auto it = found.find(seq); it != found.end())
            versions.push_back(std::move(it->second));
    return versions;
}

/// A read transaction for the length of a search (design note 1); ends when it goes out of scope.
/// On a connection already inside a transaction (the writer's, for a conditional write) it is that
/// transaction, which is already one snapshot.
class read_transaction {
public:
    explicit read_transaction(connection& db) : db_(db) {}
    fhir::status begin() {
        if (db_.in_transaction())
            return {};
        auto begun = db_.run("BEGIN", searching);
        open_ = begun.ok();
        return begun;
    }
    ~read_transaction() {
        if (open_)
            db_.run("COMMIT", searching);
    }

private:
    connection& db_;
    bool open_ = false;
};

fhir::result<std::int64_t> single_integer(connection& db, const std::string& text) {
    std::int64_t value = 0;
    sql_text none;
    auto read = each_row(db, none, text, [&](const prepared& row) { value = row.integer(0); });
    if (!read)
        return std::move(read).failure();
    return value;
}

/// The end of a page bounded by size (search_request::max_bytes): its versions loaded a few at a
/// time, in order, up to the one that brings the page to `max_bytes`; `next` moves to start after
/// the last one kept when that is before the page's end.
fhir::result<search_page> with_bounded_size(connection& db, std::size_t max_bytes, const std::vector<found_row>& rows,
                                            const std::vector<std::vector<sql_value>>& row_keys, search_page page) {
    constexpr std::size_t load_at_once = 64;
    std::size_t bytes = 0;
    for (std::size_t start = 0; start < rows.size() && bytes < max_bytes; start += load_at_once) {
        std::vector<std::int64_t> seqs;
        for (std::size_t i = start; i < std::min(rows.size(), start + load_at_once); ++i)
            seqs.push_back(rows[i].seq);
        auto versions = load_versions(db, seqs);
        if (!versions)
            return std::move(versions).failure();
        assert(versions->size() == seqs.size());
        for (stored_version& version : *versions) {
            bytes += version.json.size();
            page.entries.push_back({std::move(version), false});
            if (bytes >= max_bytes)
                break;
        }
    }
    if (page.entries.size() < rows.size())
        page.next = search_cursor{page.snapshot, false, write_keys(row_keys[page.entries.size() - 1])};
    return page;
}

} // namespace

fhir::result<search_page> run_search(connection& db, const search_request& request) {
    const fhir::search_query& query = *request.query;
    read_transaction transaction(db);
    if (auto begun = transaction.begin(); !begun)
        return std::move(begun).failure();

    search_page page;
    if (request.cursor || request.snapshot) {
        const std::int64_t snapshot = request.cursor ? request.cursor->snapshot : *request.snapshot;
        auto horizon = single_integer(db, "SELECT purged_through FROM search_horizon");
        if (!horizon)
            return std::move(horizon).failure();
        if (snapshot < horizon.value())
            return fhir::error::make(fhir::category::deleted, "not-found",
                                     "this page belongs to a search whose snapshot has expired; run the search again");
        page.snapshot = snapshot;
    } else {
        auto newest = single_integer(db, "SELECT coalesce(max(seq), 0) FROM resource_versions");
        if (!newest)
            return std::move(newest).failure();
        page.snapshot = newest.value();
    }

    sql_text sql;
    planner plan(request, sql, page.snapshot);
    plan.probe_with(db);

    auto matches = matches_sql(request, plan, sql);
    if (!matches)
        return std::move(matches).failure();
    if (query.total != fhir::search_total::none) {
        std::int64_t total = 0;
        auto counted = each_row(db, sql, plan.with_clause() + "SELECT count(*) FROM (" + matches.value() + ") counted",
                                [&](const prepared& row) { total = row.integer(0); });
        if (!counted)
            return std::move(counted).failure();
        page.total = total;
    }
    if (query.count == 0)
        return page;

    const std::vector<fhir::search_sort_key> sort = sort_of(request);
    const bool backwards = request.cursor && request.cursor->backwards;
    auto text = page_sql(request, plan, sql, matches.value());
    if (!text)
        return std::move(text).failure();

    std::vector<found_row> rows;
    std::vector<std::vector<sql_value>> row_keys;
    auto read = each_row(db, sql, plan.with_clause() + text.value(), [&](const prepared& row) {
        rows.push_back({row.integer(0), row.text(1), row.text(2)});
        // Every page plan takes its rows live at the snapshot (design note 1), and binds no value
        // its text does not name: the LIMIT, bound last, is the highest ?N.
        assert(rows.back().seq <= page.snapshot);
        assert(row.parameter_count() == static_cast<int>(sql.args.size()));
        std::vector<sql_value> k;
        for (std::size_t i = 0; i < sort.size(); ++i)
            k.push_back(row.value(static_cast<int>(3 + i)));
        k.emplace_back(std::int64_t{rows.back().seq});
        row_keys.push_back(std::move(k));
    });
    if (!read)
        return std::move(read).failure();
    assert(rows.size() <= std::size_t{query.count} + 1); // the page's LIMIT
    const bool more = rows.size() > query.count;
    if (more) {
        rows.pop_back();
        row_keys.pop_back();
    }
    if (backwards) {
        std::reverse(rows.begin(), rows.end());
        std::reverse(row_keys.begin(), row_keys.end());
    }
    if (!rows.empty()) {
        // Forward: more after the last row if `more`; a page before if we came by a cursor.
        // Backwards: more before the first row if `more`; the page we came from after the last.
        const bool has_next = backwards ? true : more;
        const bool has_previous = backwards ? more : request.cursor.has_value();
        assert(page.snapshot > 0); // a row's seq (1 or more) is at most the snapshot
        if (has_next)
            page.next = search_cursor{page.snapshot, false, write_keys(row_keys.back())};
        if (has_previous)
            page.previous = search_cursor{page.snapshot, true, write_keys(row_keys.front())};
    }

    if (request.max_bytes > 0 && !backwards)
        return with_bounded_size(db, request.max_bytes, rows, row_keys, std::move(page));

    auto included = includes(db, request, page.snapshot, rows);
    if (!included)
        return std::move(included).failure();

    std::vector<std::int64_t> seqs;
    for (const found_row& row : rows)
        seqs.push_back(row.seq);
    for (const found_row& row : included.value())
        seqs.push_back(row.seq);
    auto versions = load_versions(db, seqs);
    if (!versions)
        return std::move(versions).failure();
    // Every seq is a version row read in this transaction, so none is missing and the first
    // rows.size() entries are the page's own.
    assert(versions->size() == seqs.size());
    for (std::size_t i = 0; i < versions->size(); ++i)
        page.entries.push_back({std::move((*versions)[i]), i >= rows.size()});
    return page;
}

fhir::result<std::vector<stored_version>> find_matches(connection& db, const write_condition& condition,
                                                       unsigned limit) {
    fhir::search_query query = condition.query;
    query.sort.clear();
    query.includes.clear();
    query.total = fhir::search_total::none;
    query.summary = fhir::search_summary::none;
    query.elements.clear();
    query.count = std::max(1u, limit);
    search_request request;
    request.query = &query;
    request.visibility = condition.visibility;
    auto page = run_search(db, request);
    if (!page)
        return std::move(page).failure();
    std::vector<stored_version> found;
    for (search_entry& entry : page->entries)
        if (!entry.include)
            found.push_back(std::move(entry.version));
    return found;
}

fhir::result<std::string> explain_search(connection& db, const search_request& request) {
    auto newest = single_integer(db, "SELECT coalesce(max(seq), 0) FROM resource_versions");
    if (!newest)
        return std::move(newest).failure();
    sql_text sql;
    planner plan(request, sql, newest.value());
    plan.probe_with(db);
    auto matches = matches_sql(request, plan, sql);
    if (!matches)
        return std::move(matches).failure();
    auto text = page_sql(request, plan, sql, matches.value());
    if (!text)
        return std::move(text).failure();
    std::string explained;
    const connection::explain_form form = db.explaining();
    auto read = each_row(db, sql, std::string(form.prefix) + plan.with_clause() + text.value(), [&](const prepared& row) {
        explained += row.text(form.column) + "\n";
    });
    if (!read)
        return std::move(read).failure();
    return explained;
}

} // namespace caregate::storage::detail
