// What a write may do, decided inside the write transaction (invariant 8 in engine.hpp), and the
// version it makes: conditions resolved by a search on the writer's connection (19), transactions
// all or none with chosen ids replacing the gateway's UUIDs (20), the citizens a write names must
// be held (a live Patient), the owner rule (10), unchanged content makes no version, versions 1, 2,
// 3 without gaps with strictly increasing lastUpdated (3, 4), links replaced with each version (5),
// erasure (21, 25).
#include "engine.hpp"

#include "erasure.hpp"
#include "list_column.hpp"
#include "search_index.hpp"
#include "search_plan.hpp"

#include <cassert>

namespace caregate::storage {
namespace {

using detail::join_lines;

// The live items of a citizen's record (invariant 5: citizen_links holds only current live versions).
const std::string record_items_sql =
    "SELECT type, id FROM citizen_links WHERE nhs_number = ?1 AND NOT (type = 'Patient' AND id = ?1) ORDER BY type, id";

const std::string live_patient_sql =
    "SELECT 1 FROM resources WHERE type = 'Patient' AND id = ?1 AND deleted = 0";

// OR FAIL on one-row inserts: see search_index.cpp (no statement journal inside the savepoints).
const std::string insert_version_sql =
    "INSERT OR FAIL INTO resource_versions (type, id, version_id, last_updated, method, deleted, json, owner, citizens, "
    "labels, facets) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

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

const std::string remove_links_sql = "DELETE FROM citizen_links WHERE type = ?1 AND id = ?2";

const std::string insert_link_sql =
    "INSERT OR IGNORE INTO citizen_links (type, id, nhs_number) VALUES (?1, ?2, ?3)";

bool holds_line_break(const std::vector<std::string>& values) {
    return std::any_of(values.begin(), values.end(),
                       [](const std::string& value) { return value.find('\n') != std::string::npos; });
}

/// Ids the gateway assigns: 8-4-4-4-12 hex digits. Only such an id is replaced as text when a
/// condition chose another (store.hpp, submit_transaction).
bool is_uuid(std::string_view text) {
    if (text.size() != 36)
        return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (text[i] == '-') || (!dash && !std::isxdigit(static_cast<unsigned char>(text[i]))))
            return false;
    }
    return true;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
}

} // namespace

fhir::result<write_outcome> sqlite_store::impl::apply_guarded(const write_request& request) {
    try {
        return apply(request);
    } catch (const std::exception&) {
        // A bug (e.g. content that is not canonical JSON). The message could quote content, so
        // it is not passed on; the savepoint rollback keeps the database as it was.
        return store_fault("a write failed inside the store (" + reference(request.type, request.id) + ")");
    }
}

fhir::result<write_outcome> sqlite_store::impl::apply(const write_request& request) {
    if (request.type.empty() || request.id.empty())
        return store_fault("a write needs a type and an id");
    if (request.kind != write_kind::remove && request.content.empty())
        return store_fault("a create or update needs content");

    auto loaded = load_current(*writer_db, request.type, request.id);
    if (!loaded)
        return std::move(loaded).failure();
    const std::optional<stored_version>& current = *loaded;
    const bool live = current && !current->deleted;
    const std::string target = reference(request.type, request.id);

    if (request.kind == write_kind::remove) {
        if (!live) {
            write_outcome outcome;
            outcome.removed_nothing = true;
            if (current) {
                outcome.version = *current;
            } else {
                outcome.version.type = request.type;
                outcome.version.id = request.id;
            }
            // An erasure of a citizen whose Patient was deleted before still removes what remains
            // of the record (invariant 25); with nothing left it changes nothing.
            if (current && request.erase_record && request.type == "Patient")
                if (auto gone = detail::erase_citizen(*writer_db, request.id, {{"Patient", request.id}}); !gone)
                    return std::move(gone).failure();
            return outcome;
        }
    } else if (request.kind == write_kind::create && live && request.fail_if_exists) {
        return fhir::error::make(fhir::category::conflict, "duplicate", target + " already exists");
    }

    // Before If-Match, so that another organisation learns nothing of the version.
    if (live)
        if (auto owned = check_owner(request, *current); !owned)
            return std::move(owned).failure();
    if (request.kind != write_kind::remove &&
        (holds_line_break(request.access.labels) || holds_line_break(request.access.facets) ||
         std::any_of(request.citizens.begin(), request.citizens.end(),
                     [](const fhir::citizen_link& link) { return link.nhs_number.find('\n') != std::string::npos; })))
        return store_fault("a write's access facts hold a line break (" + target + ")");

    // A citizen's Patient goes only with the whole record, and only by a full erasure.
    std::vector<std::pair<std::string, std::string>> record;
    if (request.kind == write_kind::remove && request.type == "Patient" && live) {
        auto items = record_items(request.id);
        if (!items)
            return std::move(items).failure();
        record = std::move(*items);
        if (!record.empty() && !request.erase_record)
            // No count: the record may hold items the caller may not see.
            return fhir::error::make(fhir::category::conflict, "conflict",
                                     "the citizen's record holds items; a Patient is deleted only with its whole "
                                     "record, by a full erasure that the access policy must allow");
    }

    if (request.if_match && (!live || current->version_id != *request.if_match))
        return fhir::error::make(
            fhir::category::precondition_failed, "conflict",
            live ? target + " is at version " + std::to_string(current->version_id) + ", not " +
                       std::to_string(*request.if_match)
                 : target + " has no current version to match version " + std::to_string(*request.if_match));

    if (request.kind != write_kind::remove) {
        if (auto held = check_citizens(request); !held)
            return std::move(held).failure();
        if (live) {
            // Unchanged: stamped as the current version was, the bytes would be the same (comparing
            // bytes, not hashes, so a collision cannot lose an update), and so would the access facts
            // (the same content can give another link: an end date that has passed since).
            const std::string restamped = fhir::stamp_resource(request.content, request.id, current->version_id,
                                                               store::format_instant(current->last_updated));
            auto same = restamped == current->json ? same_access(request, *current) : fhir::result<bool>(false);
            if (!same)
                return std::move(same).failure();
            if (*same) {
                write_outcome outcome;
                outcome.unchanged = true;
                outcome.version = *current;
                return outcome;
            }
        }
    }
    // A full erasure: every item of the record goes, whoever wrote it, then the Patient.
    std::vector<stored_version> erased;
    for (const auto& [type, id] : record) {
        write_request item;
        item.kind = write_kind::remove;
        item.type = type;
        item.id = id;
        item.writer = request.writer;
        item.any_owner = true;
        auto removed = apply(item);
        if (!removed)
            return std::move(removed).failure();
        if (!removed->removed_nothing)
            erased.push_back(std::move(removed->version));
    }
    auto written = write_version(request, current);
    if (!written)
        return written;
    written->also_removed = std::move(erased);
    // Invariant 25: an erasure is final.
    if (request.erase_record && request.kind == write_kind::remove && request.type == "Patient") {
        record.emplace_back("Patient", request.id);
        if (auto gone = detail::erase_citizen(*writer_db, request.id, record); !gone)
            return std::move(gone).failure();
    }
    return written;
}

fhir::result<resolution> sqlite_store::impl::resolve(const write_request& request) {
    const write_condition& condition = *request.condition;
    const std::string& type = request.type;
    auto found = detail::find_matches(*writer_db, condition, std::max(1u, condition.max_matches) + 1);
    if (!found)
        return std::move(found).failure();
    std::vector<stored_version>& matches = *found;
    resolution decided;
    write_request plain = request;
    plain.condition.reset();
    auto too_many = [&] {
        return fhir::error::make(fhir::category::precondition_failed, "multiple-matches",
                                 "the criteria match " + std::string(matches.size() > condition.max_matches ? "more than " : "") +
                                     std::to_string(std::min<std::size_t>(matches.size(), condition.max_matches)) + " " + type +
                                     " resources; make them more selective");
    };
    switch (request.kind) {
    case write_kind::create:
        if (matches.size() > 1)
            return too_many();
        if (matches.size() == 1)
            decided.matched = std::move(matches.front());
        else
            decided.writes.push_back(std::move(plain));
        return decided;
    case write_kind::update:
        if (matches.size() > 1)
            return too_many();
        if (matches.size() == 1) {
            if (!condition.client_id.empty() && condition.client_id != matches.front().id)
                return fhir::error::make(fhir::category::malformed, "invalid",
                                         "the resource's id differs from the id of the " + type + " the criteria match",
                                         type + ".id");
            plain.id = matches.front().id;
        }
        decided.writes.push_back(std::move(plain));
        return decided;
    case write_kind::remove:
        if (matches.size() > 1 && (!condition.multiple || matches.size() > condition.max_matches))
            return too_many();
        for (const stored_version& match : matches) {
            const bool allowed = std::any_of(condition.removable.begin(), condition.removable.end(),
                                             [&](const search_visibility::type_grant& grant) {
                                                 return grant.type == type &&
                                                        (grant.whole || fhir::facets_satisfy(grant.facets, match.facets));
                                             });
            if (!allowed)
                return fhir::error::make(fhir::category::forbidden, "forbidden",
                                         "your role may not delete a " + type + " the criteria match");
            write_request one = plain;
            one.id = match.id;
            decided.writes.push_back(std::move(one));
        }
        return decided;
    }
    return store_fault("a conditional write of an unknown kind");
}

fhir::result<write_outcome> sqlite_store::impl::apply_request(const write_request& request) {
    if (!request.condition)
        return apply_guarded(request);
    auto decided = resolve(request);
    if (!decided)
        return std::move(decided).failure();
    write_outcome outcome;
    if (decided->matched) {
        outcome.matched = true;
        outcome.version = std::move(*decided->matched);
        return outcome;
    }
    if (decided->writes.empty()) { // a conditional remove that matched nothing
        outcome.removed_nothing = true;
        outcome.version.type = request.type;
        return outcome;
    }
    for (std::size_t i = 0; i < decided->writes.size(); ++i) {
        auto applied = apply_guarded(decided->writes[i]);
        if (!applied)
            return std::move(applied).failure();
        if (i == 0) {
            outcome = std::move(*applied);
        } else {
            outcome.also_removed.push_back(std::move(applied->version));
            for (auto& more : applied->also_removed)
                outcome.also_removed.push_back(std::move(more));
        }
    }
    return outcome;
}

fhir::result<std::vector<write_outcome>> sqlite_store::impl::apply_transaction(const std::vector<write_request>& writes,
                                                                        std::size_t& failed) {
    std::vector<write_request> plan = writes;
    std::vector<std::optional<write_outcome>> outcomes(writes.size());
    std::vector<std::pair<std::string, std::string>> renamed; // assigned id -> the id a condition chose
    // First the removes (applied at once, so later conditions see them) and every condition.
    for (std::size_t i = 0; i < plan.size(); ++i) {
        failed = i;
        if (plan[i].kind == write_kind::remove) {
            auto removed = apply_request(plan[i]);
            if (!removed)
                return std::move(removed).failure();
            outcomes[i] = std::move(*removed);
            continue;
        }
        if (!plan[i].condition)
            continue;
        auto decided = resolve(plan[i]);
        if (!decided)
            return std::move(decided).failure();
        std::string chosen;
        if (decided->matched) {
            chosen = decided->matched->id;
            write_outcome matched;
            matched.matched = true;
            matched.version = std::move(*decided->matched);
            outcomes[i] = std::move(matched);
        } else {
            plan[i] = std::move(decided->writes.front());
            chosen = plan[i].id;
        }
        if (chosen != writes[i].id) {
            if (!is_uuid(writes[i].id))
                return fhir::error::make(fhir::category::precondition_failed, "conflict",
                                         "the criteria match " + reference(writes[i].type, chosen) +
                                             ", but the resource's content fixes its id as " + writes[i].id);
            renamed.emplace_back(writes[i].id, chosen);
        }
    }
    for (const auto& [from, to] : renamed)
        for (write_request& write : plan)
            if (write.kind != write_kind::remove)
                replace_all(write.content, from, to);
    // Then the creates and updates, Patients first: an item may be listed before its citizen.
    for (const bool patients : {true, false})
        for (std::size_t i = 0; i < plan.size(); ++i) {
            if (outcomes[i] || (plan[i].type == "Patient") != patients)
                continue;
            failed = i;
            auto applied = apply_guarded(plan[i]);
            if (!applied)
                return std::move(applied).failure();
            outcomes[i] = std::move(*applied);
        }
    std::vector<write_outcome> done;
    done.reserve(outcomes.size());
    for (auto& outcome : outcomes)
        done.push_back(std::move(*outcome));
    return done;
}

fhir::result<std::vector<std::pair<std::string, std::string>>> sqlite_store::impl::record_items(std::string_view nhs_number) {
    std::vector<std::pair<std::string, std::string>> items;
    auto prepared = writer_db->prepare(record_items_sql, "reading a citizen's record");
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    query.bind(1, nhs_number);
    int rc;
    while ((rc = query.step()) == SQLITE_ROW)
        items.emplace_back(query.text(0), query.text(1));
    if (rc != SQLITE_DONE)
        return detail::sqlite_failure(rc, "reading a citizen's record");
    return items;
}

fhir::status sqlite_store::impl::check_citizens(const write_request& request) {
    std::vector<fhir::issue> missing;
    for (const auto& link : request.citizens) {
        if (request.type == "Patient" && link.nhs_number == request.id)
            continue; // a Patient naming itself is held once this very write is done
        auto prepared = writer_db->prepare(live_patient_sql, "checking a citizen");
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        query.bind(1, link.nhs_number);
        const int rc = query.step();
        if (rc == SQLITE_DONE)
            missing.push_back(fhir::issue{"error", "invalid", "the reference does not name a citizen held by this server",
                                          link.expression});
        else if (rc != SQLITE_ROW)
            return detail::sqlite_failure(rc, "checking a citizen");
    }
    if (!missing.empty())
        return fhir::error{fhir::category::invalid, std::move(missing)};
    return {};
}

fhir::status sqlite_store::impl::check_owner(const write_request& request, const stored_version& current) {
    // Invariant 10. No writer at all is a tool or a test, which owns nothing and checks nothing.
    if (request.writer.empty() || request.any_owner || request.writer == current.owner)
        return {};
    // Names no organisation: the owner's ODS code is not the caller's to learn.
    return fhir::error::make(fhir::category::forbidden, "forbidden",
                             "only the organisation that contributed this resource may change it");
}

fhir::result<write_outcome> sqlite_store::impl::write_version(const write_request& request,
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
    {
        // Bound text must outlive the step.
        const std::string citizens = join_lines(version.citizens);
        const std::string labels = join_lines(version.labels);
        const std::string facets = join_lines(version.facets);
        auto prepared = db.prepare(insert_version_sql, "writing a version");
        if (!prepared)
            return std::move(prepared).failure();
        statement insert(*prepared);
        insert.bind(1, version.type).bind(2, version.id).bind(3, version.version_id).bind(4, version.last_updated);
        insert.bind(5, version.method).bind(6, std::int64_t{deletion}).bind_blob(7, version.json);
        insert.bind(8, version.owner).bind(9, citizens).bind(10, labels).bind(11, facets);
        if (const int rc = insert.step(); rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "writing a version");
    }
    const std::int64_t seq = sqlite3_last_insert_rowid(db.handle());
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
        if (const int rc = point.step(); rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "writing a version");
    }
    // Invariants 5 and 11: a resource that is not live has no citizen links, organisation links or
    // objections to remove.
    if (live) { // invariant 5: the links are the new version's, or none for a deletion
        auto prepared = db.prepare(remove_links_sql, "linking citizens");
        if (!prepared)
            return std::move(prepared).failure();
        statement remove(*prepared);
        remove.bind(1, version.type).bind(2, version.id);
        if (const int rc = remove.step(); rc != SQLITE_DONE)
            return detail::sqlite_failure(rc, "linking citizens");
    }
    if (!deletion) {
        for (const auto& link : request.citizens) {
            auto prepared = db.prepare(insert_link_sql, "linking citizens");
            if (!prepared)
                return std::move(prepared).failure();
            statement insert(*prepared);
            insert.bind(1, version.type).bind(2, version.id).bind(3, link.nhs_number);
            if (const int rc = insert.step(); rc != SQLITE_DONE)
                return detail::sqlite_failure(rc, "linking citizens");
        }
    }
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
    }

    write_outcome outcome;
    outcome.created = !current || current->deleted;
    outcome.version = std::move(version);
    return outcome;
}

} // namespace caregate::storage
