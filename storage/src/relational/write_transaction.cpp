// The relational engine's side of the write rules (storage/src/write_rules.hpp decides what a write may
// do, for every engine): the operations of its write_transaction on the writer's connection inside
// the open transaction (invariant 8 in engine.hpp), and the version a write makes: versions 1, 2, 3
// without gaps with strictly increasing lastUpdated (3, 4), the owner kept (10), links replaced with
// each version (11), index rows closed and inserted (16), a deletion keeping the facts of what it
// deletes (12); conditions are searches on the writer's connection (19); erasure (25).
#include "engine.hpp"
#include "binary_parts.hpp"

#include "erasure.hpp"
#include "list_column.hpp"
#include "search_index.hpp"
#include "search_plan.hpp"

#include <cassert>

namespace caregate::storage {
namespace {

using detail::join_lines;

// The live items of a citizen's record (invariant 5): the current versions that name the citizen.
const std::string record_items_sql =
    "SELECT r.type, r.id FROM version_citizens c JOIN resources r ON r.seq = c.seq WHERE c.nhs_number = ?1 "
    "AND r.deleted = 0 AND NOT (r.type = 'Patient' AND r.id = ?1) ORDER BY r.type, r.id";

const std::string live_patient_sql =
    "SELECT 1 FROM resources WHERE type = 'Patient' AND id = ?1 AND deleted = 0";

// OR FAIL on one-row inserts: see search_index.cpp (no statement journal inside the savepoints).
const std::string insert_version_sql =
    "INSERT OR FAIL INTO resource_versions (type, id, version_id, last_updated, method, deleted, json, owner, citizens, "
    "labels, facets) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING seq";

// On PostgreSQL the writer gives the seq, reserved from the column's sequence (invariant 29), so the
// INSERT needs no answer and goes in the pipeline.
const std::string insert_version_with_seq_sql =
    "INSERT INTO resource_versions (type, id, version_id, last_updated, method, deleted, json, owner, citizens, "
    "labels, facets, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

const std::string reserve_seqs_sql =
    "SELECT nextval(pg_get_serial_sequence('resource_versions', 'seq')) FROM generate_series(1, ?1)";

const std::string current_seq_sql = "SELECT seq FROM resources WHERE type = ?1 AND id = ?2";

// Two statements, not an upsert: an upsert (and any statement that may abort after changing rows)
// opens a statement journal, and inside the writer's savepoints releasing one truncates SQLite's
// in-memory sub-journal by walking it from its start, so a large transaction's writes grew slower
// the more it had written (a fifth of the writer's time in bench/ingest.sh). OR FAIL on one-row
// statements needs no statement journal and fails the write (its savepoint) just the same.
const std::string insert_current_sql =
    "INSERT OR FAIL INTO resources (type, id, version_id, seq, deleted) VALUES (?1, ?2, ?3, ?4, ?5)";

const std::string point_current_sql =
    "UPDATE OR FAIL resources SET version_id = ?3, seq = ?4, deleted = ?5 WHERE type = ?1 AND id = ?2";

} // namespace

fhir::result<std::optional<stored_version>> relational_engine::current(std::string_view type, std::string_view id) {
    return load_current(*writer_db, type, id);
}

fhir::result<std::vector<stored_version>> relational_engine::matches(const write_condition& condition, unsigned limit) {
    return detail::find_matches(*writer_db, condition, limit);
}

fhir::result<bool> relational_engine::citizen_held(std::string_view nhs_number) {
    if (auto known = held_in_group.find(std::string(nhs_number)); known != held_in_group.end())
        return known->second;
    auto held = exists(*writer_db, live_patient_sql, "checking a citizen", [&](statement& q) { q.bind(1, nhs_number); });
    if (held)
        held_in_group.insert_or_assign(std::string(nhs_number), *held);
    return held;
}

fhir::result<std::int64_t> relational_engine::reserve_seq() {
    if (next_seq == seq_reserved_until) {
        // As many as the group has writes (seqs_wanted): one round trip for a group. A value left
        // unused when the group ends is a gap, as a rolled-back insert leaves one.
        const std::int64_t reserve = std::clamp<std::int64_t>(seqs_wanted, 1, 4096);
        auto prepared = writer_db->prepare(reserve_seqs_sql, "writing a version");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, reserve);
        std::int64_t first = 0, last = 0;
        int rc;
        while ((rc = query.step()) == step_row) {
            const std::int64_t value = query.integer(0);
            first = first ? std::min(first, value) : value;
            last = std::max(last, value);
        }
        if (rc != step_done)
            return detail::storage_failure(rc, "writing a version");
        // The sequence is this node's alone while it holds the writers' lock, but another session
        // (a tool) may take values too: only an unbroken run counts.
        if (last - first + 1 != reserve)
            return store_fault("the version sequence gave no unbroken run of values");
        next_seq = first;
        seq_reserved_until = last + 1;
    }
    return next_seq++;
}

fhir::status relational_engine::erase_citizen(std::string_view nhs_number, const std::vector<resource_name>& record) {
    held_in_group.erase(std::string(nhs_number));
    export_bytes_orphaned = true; // the exports it withdraws leave bytes to sweep once it commits
    return detail::erase_citizen(*writer_db, nhs_number, record);
}

fhir::result<std::vector<resource_name>> relational_engine::record_items(std::string_view nhs_number) {
    std::vector<std::pair<std::string, std::string>> items;
    auto prepared = writer_db->prepare(record_items_sql, "reading a citizen's record");
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    query.bind(1, nhs_number);
    int rc;
    while ((rc = query.step()) == step_row)
        items.emplace_back(query.text(0), query.text(1));
    if (rc != step_done)
        return detail::storage_failure(rc, "reading a citizen's record");
    return items;
}

fhir::result<write_outcome> relational_engine::write_version(const write_request& request,
                                                       const std::optional<stored_version>& current) {
    const bool deletion = request.kind == write_kind::remove;
    assert(!deletion || (current && !current->deleted)); // only a live resource is removed
    stored_version version;
    version.type = request.type;
    version.id = request.id;
    version.version_id = current ? current->version_id + 1 : 1; // invariant 3
    // Invariant 4. Taken even if this write is later rolled back: a gap in time is harmless.
    newest_timestamp = version.last_updated = std::max(now_microseconds(), newest_timestamp + 1);
    version.deleted = deletion;
    version.method = deletion ? "DELETE" : request.kind == write_kind::create ? "POST" : "PUT";
    const bool live = current && !current->deleted;
    version.owner = live ? current->owner : request.writer; // invariant 10
    if (deletion) { // invariant 12
        version.citizens = current->citizens;
        version.labels = current->labels;
        version.facets = current->facets;
    } else {
        version.citizens = access_rows_for(request).citizens;
        version.labels = request.access.labels;
        version.facets = request.access.facets;
    }
    const std::string last_updated = store::format_instant(version.last_updated);
    // Stamp and index values made ahead of the writer, if they are this content's (write_request::index).
    const prepared_index* ahead = request.index.get();
    if (deletion || !ahead || ahead->type != version.type || ahead->id != version.id || ahead->content != request.content)
        ahead = nullptr;
    if (!deletion) {
        auto stamped = ahead ? detail::stamp_prepared(*ahead, version.version_id, last_updated) : std::nullopt;
        version.json = stamped ? std::move(*stamped)
                               : fhir::stamp_resource(request.content, request.id, version.version_id, last_updated);
    }

    connection& db = *writer_db;
    std::int64_t seq = 0;
    if (on_postgresql()) { // invariant 29
        auto reserved = reserve_seq();
        if (!reserved)
            return std::move(reserved).failure();
        seq = *reserved;
    }
    {
        // Bound text must outlive the step.
        const std::string citizens = join_lines(version.citizens);
        const std::string labels = join_lines(version.labels);
        const std::string facets = join_lines(version.facets);
        auto prepared = db.prepare(seq ? insert_version_with_seq_sql : insert_version_sql, "writing a version");
        if (!prepared)
            return std::move(prepared).failure();
        statement insert(*prepared);
        insert.bind(1, version.type).bind(2, version.id).bind(3, version.version_id).bind(4, version.last_updated);
        insert.bind(5, version.method).bind(6, std::int64_t{deletion}).bind_blob(7, version.json);
        insert.bind(8, version.owner).bind(9, citizens).bind(10, labels).bind(11, facets);
        if (seq)
            insert.bind(12, seq);
        int rc = insert.step();
        if (rc == step_row) {
            seq = insert.integer(0);
            rc = insert.step();
        }
        if (rc != step_done)
            return detail::storage_failure(rc, "writing a version");
    }
    if (version.type == "Patient") // what check_citizens asks next, known without asking
        held_in_group.insert_or_assign(version.id, !deletion);
    assert(seq > 0 && version.last_updated > 0 && version.version_id >= 1); // invariants 3 and 4
    // The version this one supersedes, whose search index rows it closes (invariant 16); a deletion
    // marker's were closed when it was written.
    std::optional<std::int64_t> superseded_seq;
    if (live) {
        auto found = query_one<std::int64_t>(
            db, current_seq_sql, "writing a version", [&](statement& q) { q.bind(1, version.type).bind(2, version.id); },
            [](const statement& row) { return row.integer(0); });
        if (!found)
            return std::move(found).failure();
        superseded_seq = *found;
    }
    {
        auto prepared = db.prepare(current ? point_current_sql : insert_current_sql, "writing a version");
        if (!prepared)
            return std::move(prepared).failure();
        statement point(*prepared);
        point.bind(1, version.type).bind(2, version.id).bind(3, version.version_id).bind(4, seq);
        point.bind(5, std::int64_t{deletion});
        if (const int rc = point.step(); rc != step_done)
            return detail::storage_failure(rc, "writing a version");
    }
    // Invariant 11: a resource that is not live has no organisation links or objections to remove.
    if (auto linked = write_access_rows(request, deletion, live); !linked)
        return std::move(linked).failure();
    // Invariant 16: the superseded version's rows are closed at this version; a live version's own
    // come from the stamped JSON, exactly as stored and as migration 4 reads it.
    if (superseded_seq)
        if (auto closed = detail::close_search_rows(db, *superseded_seq, seq); !closed)
            return std::move(closed).failure();
    if (!deletion) {
        auto indexed = ahead ? detail::insert_search_rows(db, seq, *ahead, last_updated)
                           : detail::insert_search_rows(db, seq, version.type, version.id, version.json);
        if (!indexed)
            return std::move(indexed).failure();
        if (auto recorded = detail::insert_version_citizens(db, seq, version.citizens); !recorded) // invariant 17
            return std::move(recorded).failure();
        if (auto recorded = detail::insert_version_targets(db, seq, version.type, version.json); !recorded)
            return std::move(recorded).failure();
        if (request.binary_bytes && !request.binary_bytes->empty())
            if (auto kept = detail::insert_binary_parts(db, seq, *request.binary_bytes, on_postgresql()); !kept)
                return std::move(kept).failure();
    }

    write_outcome outcome;
    outcome.created = !current || current->deleted;
    outcome.version = std::move(version);
    return outcome;
}

} // namespace caregate::storage
