// The relational engine's audit log: appending chained records in the writer's transaction (invariant
// 13 in engine.hpp), and reading pages, single records, the tip and hashes for anchors, and the
// whole chain's verification, each after committing what is queued so that it covers every
// request answered before it.
#include "engine.hpp"

#include "list_column.hpp"
#include <cassert>
#include <future>

namespace caregate::storage {
namespace {

const std::string audit_columns =
    "sequence, time, request_id, \"user\", role, organisation, purpose, break_glass_reason, nhs_number, "
    "resource_type, resource_ids, action, outcome, detail, previous_hash, hash";

const std::string insert_audit_sql =
    "INSERT OR FAIL INTO audit_log (" + audit_columns + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
    "?14, ?15, ?16)";

/// insert_audit_sql for `rows` records in one statement (?1..?16 the first's, ?17.. the next's).
std::string insert_audits_sql(std::size_t rows) {
    std::string sql = "INSERT OR FAIL INTO audit_log (" + audit_columns + ") VALUES ";
    for (std::size_t r = 0; r < rows; ++r) {
        sql += r ? ", (" : "(";
        for (std::size_t c = 1; c <= 16; ++c)
            sql += (c > 1 ? ", ?" : "?") + std::to_string(r * 16 + c);
        sql += ")";
    }
    return sql;
}

/// The statement sizes a run of records is cut into: few enough shapes that each is prepared once.
constexpr std::size_t audit_batch_sizes[] = {64, 16, 4, 1};

const std::string audit_at_sql = "SELECT " + audit_columns + " FROM audit_log WHERE sequence = ?1";

const std::string audit_walk_sql = "SELECT " + audit_columns + " FROM audit_log ORDER BY sequence";

const std::string audit_hash_at_sql = "SELECT hash FROM audit_log WHERE sequence = ?1";

/// Reads an audit_log row selected as audit_columns.
audit_record audit_from(const statement& row) {
    audit_record record;
    record.sequence = row.integer(0);
    record.time = row.integer(1);
    record.request_id = row.text(2);
    record.user = row.text(3);
    record.role = row.text(4);
    record.organisation = row.text(5);
    record.purpose = row.text(6);
    record.break_glass_reason = row.text(7);
    record.nhs_number = row.text(8);
    record.resource_type = row.text(9);
    record.resource_ids = row.text(10);
    record.action = row.text(11);
    record.outcome = row.text(12);
    record.detail = row.text(13);
    record.previous_hash = row.text(14);
    record.hash = row.text(15);
    return record;
}

} // namespace

fhir::status relational_engine::append_one(audit_record record) {
    // Invariant 13: the writer thread is the only appender.
    assert(!writer.joinable() || std::this_thread::get_id() == writer.get_id());
    assert(tip.sequence >= committed_tip.sequence && tip.hash.size() == 64);
    record.sequence = tip.sequence + 1;
    record.previous_hash = tip.hash;
    record.hash = store::audit_hash(record);
    auto inserted = execute(*writer_db, insert_audit_sql, "appending to the audit log", [&](statement& insert) {
        insert.bind(1, record.sequence).bind(2, record.time).bind(3, record.request_id).bind(4, record.user);
        insert.bind(5, record.role).bind(6, record.organisation).bind(7, record.purpose);
        insert.bind(8, record.break_glass_reason).bind(9, record.nhs_number).bind(10, record.resource_type);
        insert.bind(11, record.resource_ids).bind(12, record.action).bind(13, record.outcome);
        insert.bind(14, record.detail).bind(15, record.previous_hash).bind(16, record.hash);
    });
    if (!inserted)
        return inserted;
    tip = chain_tip{record.sequence, record.hash};
    return {};
}

fhir::status relational_engine::append_run(const std::vector<const audit_record*>& records) {
    // Invariant 13, as append_one: chained from the tip in order, the tip moved only once they are in.
    assert(!writer.joinable() || std::this_thread::get_id() == writer.get_id());
    static const std::vector<std::string> batch_sql = [] {
        std::vector<std::string> sql;
        for (const std::size_t size : audit_batch_sizes)
            sql.push_back(insert_audits_sql(size));
        return sql;
    }();
    std::vector<audit_record> chained;
    chained.reserve(records.size());
    chain_tip at = tip;
    for (const audit_record* record : records) {
        audit_record next = *record;
        next.sequence = at.sequence + 1;
        next.previous_hash = at.hash;
        next.hash = store::audit_hash(next);
        at = chain_tip{next.sequence, next.hash};
        chained.push_back(std::move(next));
    }
    std::size_t done = 0;
    while (done < chained.size()) {
        std::size_t shape = 0;
        while (audit_batch_sizes[shape] > chained.size() - done)
            ++shape;
        const std::size_t size = audit_batch_sizes[shape];
        auto inserted = execute(*writer_db, batch_sql[shape], "appending to the audit log", [&](statement& insert) {
            for (std::size_t r = 0; r < size; ++r) {
                const audit_record& record = chained[done + r];
                const int base = static_cast<int>(r * 16);
                insert.bind(base + 1, record.sequence).bind(base + 2, record.time).bind(base + 3, record.request_id);
                insert.bind(base + 4, record.user).bind(base + 5, record.role).bind(base + 6, record.organisation);
                insert.bind(base + 7, record.purpose).bind(base + 8, record.break_glass_reason);
                insert.bind(base + 9, record.nhs_number).bind(base + 10, record.resource_type);
                insert.bind(base + 11, record.resource_ids).bind(base + 12, record.action);
                insert.bind(base + 13, record.outcome).bind(base + 14, record.detail);
                insert.bind(base + 15, record.previous_hash).bind(base + 16, record.hash);
            }
        });
        if (!inserted)
            return inserted; // the caller's savepoint undoes what went in, and puts the tip back
        done += size;
    }
    tip = at;
    return {};
}

fhir::status relational_engine::flush_audit() {
    if (writer.get_id() == std::this_thread::get_id())
        return {}; // the writer's own reads see its open transaction
    std::promise<fhir::status> committed;
    auto done = committed.get_future();
    enqueue(queued_audit{{}, [&committed](fhir::status status) { committed.set_value(std::move(status)); }});
    return done.get();
}

fhir::result<store::audit_page> relational_store::audit(const audit_query& query) const {
    audit_page page;
    if (query.count == 0)
        return page;
    if (auto flushed = impl_->flush_audit(); !flushed)
        return std::move(flushed).failure();
    // Assembled from fixed fragments only (one cached statement per shape); values are bound.
    std::string sql = "SELECT " + audit_columns + " FROM audit_log WHERE 1 = 1";
    if (!query.nhs_number.empty())
        sql += " AND nhs_number = :nhs_number";
    if (!query.agent.empty())
        sql += " AND (\"user\" = :agent OR organisation = :agent)";
    if (query.time)
        sql += " AND time >= :begin AND time < :end";
    if (!query.purpose.empty())
        sql += " AND purpose = :purpose";
    if (query.before)
        sql += " AND sequence < :before";
    sql += " ORDER BY sequence DESC LIMIT :limit";

    auto records = impl_->with_reader<std::vector<audit_record>>(
        [&](connection& db) -> fhir::result<std::vector<audit_record>> {
            auto prepared = db.prepare(sql, "reading the audit log");
            if (!prepared)
                return std::move(prepared).failure();
            statement select(*prepared);
            if (!query.nhs_number.empty())
                select.bind(":nhs_number", query.nhs_number);
            if (!query.agent.empty())
                select.bind(":agent", query.agent);
            if (query.time)
                select.bind(":begin", query.time->first).bind(":end", query.time->second);
            if (!query.purpose.empty())
                select.bind(":purpose", query.purpose);
            if (query.before)
                select.bind(":before", *query.before);
            // One more than asked for: a probe that tells whether there is an older page.
            select.bind(":limit", static_cast<std::int64_t>(query.count) + 1);
            std::vector<audit_record> found;
            int rc;
            while ((rc = select.step()) == step_row)
                found.push_back(audit_from(select));
            if (rc != step_done)
                return detail::storage_failure(rc, "reading the audit log");
            return found;
        });
    if (!records)
        return std::move(records).failure();
    const bool more = records->size() > query.count;
    if (more)
        records->resize(query.count);
    page.records = std::move(*records);
    if (more)
        page.next = page.records.back().sequence;
    return page;
}

fhir::result<audit_record> relational_store::audit_record_at(std::int64_t sequence) const {
    if (auto flushed = impl_->flush_audit(); !flushed)
        return std::move(flushed).failure();
    auto found = impl_->with_reader<std::optional<audit_record>>(
        [&](connection& db) -> fhir::result<std::optional<audit_record>> {
            return query_one<audit_record>(
                db, audit_at_sql, "reading the audit log", [&](statement& q) { q.bind(1, sequence); },
                [](const statement& row) { return audit_from(row); });
        });
    if (!found)
        return std::move(found).failure();
    if (!*found)
        return fhir::error::make(fhir::category::not_found, "not-found",
                                 "there is no audit record " + std::to_string(sequence));
    return std::move(**found);
}

fhir::result<store::audit_verification> relational_store::verify_audit() const {
    if (auto flushed = impl_->flush_audit(); !flushed)
        return std::move(flushed).failure();
    return impl_->with_reader<audit_verification>([&](connection& db) -> fhir::result<audit_verification> {
        // One statement: one read snapshot of the whole log, however long the walk.
        auto prepared = db.prepare(audit_walk_sql, "verifying the audit log");
        if (!prepared)
            return std::move(prepared).failure();
        statement walk(*prepared);
        audit_verification verdict;
        std::string previous_hash = genesis_hash;
        int rc;
        while ((rc = walk.step()) == step_row) {
            const audit_record record = audit_from(walk);
            ++verdict.records;
            if (record.sequence != verdict.records)
                verdict.problem = "a record is missing before it";
            else if (audit_hash(record) != record.hash)
                verdict.problem = "its hash does not match its contents";
            else if (record.previous_hash != previous_hash)
                verdict.problem = "it does not follow the record before it";
            if (!verdict.problem.empty()) {
                verdict.first_broken = record.sequence;
                return verdict;
            }
            previous_hash = record.hash;
        }
        if (rc != step_done)
            return detail::storage_failure(rc, "verifying the audit log");
        return verdict;
    });
}

fhir::result<store::audit_chain_point> relational_store::audit_tip() const {
    auto found = audit_hashes_at({});
    if (!found)
        return std::move(found).failure();
    return std::move(found->tip);
}

fhir::result<store::audit_chain_lookup> relational_store::audit_hashes_at(const std::vector<std::int64_t>& sequences) const {
    if (auto flushed = impl_->flush_audit(); !flushed)
        return std::move(flushed).failure();
    return impl_->with_reader<audit_chain_lookup>([&](connection& db) -> fhir::result<audit_chain_lookup> {
        static const std::string doing = "reading the audit chain";
        // One read transaction: the tip and every hash come from the same snapshot.
        if (auto begun = db.run("BEGIN", doing); !begun)
            return std::move(begun).failure();
        struct end_read {
            connection& db;
            ~end_read() { db.run("COMMIT", doing); }
        } ends{db};
        audit_chain_lookup found;
        auto tip = query_one<audit_chain_point>(
            db, audit_tip_sql, doing, [](statement&) {},
            [](const statement& row) { return audit_chain_point{row.integer(0), row.text(1)}; });
        if (!tip)
            return std::move(tip).failure();
        found.tip = tip->value_or(audit_chain_point{0, genesis_hash});
        found.hashes.reserve(sequences.size());
        for (const std::int64_t sequence : sequences) {
            auto hash = query_one<std::string>(
                db, audit_hash_at_sql, doing, [&](statement& q) { q.bind(1, sequence); },
                [](const statement& row) { return row.text(0); });
            if (!hash)
                return std::move(hash).failure();
            found.hashes.push_back(std::move(*hash));
        }
        return found;
    });
}

} // namespace caregate::storage
