// Bulk Data export jobs (storage/exports.hpp, where the invariants are): their rows, their files and
// the citizens each has logged. Every change of a job is a job of the writer's (queued_export),
// committed in a savepoint of its own inside a group, so a job's file rows, cursor and access-log
// records commit together (invariant 1); the files' bytes are stored before, apart from the writer
// (export_file_bytes.hpp), and swept when nothing references them. Reads of jobs and files run on a
// pooled reader.
#include "engine.hpp"

#include <future>

namespace caregate::storage {

namespace {

constexpr std::string_view exporting = "keeping an export job";

const std::string job_columns = "id, status, request, organisation, client, snapshot, transaction_time, created, "
                                "cursor, written, finished, expires, error";

std::string_view status_text(export_status status) {
    switch (status) {
    case export_status::accepted: return "accepted";
    case export_status::in_progress: return "in-progress";
    case export_status::completed: return "completed";
    case export_status::failed: return "failed";
    }
    return "failed";
}

export_status status_of(std::string_view text) {
    if (text == "accepted")
        return export_status::accepted;
    if (text == "in-progress")
        return export_status::in_progress;
    if (text == "completed")
        return export_status::completed;
    return export_status::failed;
}

export_job job_from(const statement& row) {
    export_job job;
    job.id = row.text(0);
    job.status = status_of(row.text(1));
    job.request = row.text(2);
    job.organisation = row.text(3);
    job.client = row.text(4);
    job.snapshot = row.integer(5);
    job.transaction_time = row.integer(6);
    job.created = row.integer(7);
    job.cursor = row.text(8);
    job.written = row.integer(9);
    if (!row.is_null(10))
        job.finished = row.integer(10);
    if (!row.is_null(11))
        job.expires = row.integer(11);
    job.error = row.text(12);
    return job;
}

fhir::result<std::optional<export_job>> load_job(connection& db, std::string_view id) {
    static const std::string sql = "SELECT " + job_columns + " FROM export_jobs WHERE id = ?1";
    return query_one<export_job>(
        db, sql, exporting, [&](statement& q) { q.bind(1, id); }, job_from);
}

/// Removes a job, its files' rows and its citizens' rows (invariant 5); whether there was a job.
/// The files' bytes, which nothing reaches without those rows, are swept afterwards.
fhir::result<bool> remove_job(connection& db, std::string_view id) {
    static const std::string citizens = "DELETE FROM export_citizens WHERE job_id = ?1";
    static const std::string files = "DELETE FROM export_files WHERE job_id = ?1";
    static const std::string job = "DELETE FROM export_jobs WHERE id = ?1";
    for (const std::string* sql : {&citizens, &files, &job})
        if (auto removed = execute(db, *sql, exporting, [&](statement& q) { q.bind(1, id); }); !removed)
            return std::move(removed).failure();
    return db.changes() > 0;
}

} // namespace

template <class T, class Work>
fhir::result<T> relational_engine::export_change(Work&& work) {
    if (std::this_thread::get_id() == writer.get_id())
        return store_fault("an export job's change was asked for on the writer thread");
    std::promise<fhir::status> finished;
    auto status = finished.get_future();
    std::optional<T> value;
    enqueue(queued_export{[&](relational_engine& engine, connection& db) -> fhir::status {
                              auto made = work(engine, db);
                              if (!made)
                                  return std::move(made).failure();
                              value.emplace(std::move(*made));
                              return {};
                          },
                          [&finished](fhir::status done) { finished.set_value(std::move(done)); }});
    if (auto done = status.get(); !done)
        return std::move(done).failure();
    return std::move(*value);
}

fhir::status relational_engine::sweep_unreferenced_export_bytes(std::string_view job_id) {
    auto kept = export_bytes->ids_of(job_id);
    if (!kept)
        return std::move(kept).failure();
    if (kept->empty())
        return export_bytes->remove(job_id, {}); // a job's directory left empty goes too
    auto referenced = with_reader<std::vector<std::int64_t>>(
        [&](connection& db) -> fhir::result<std::vector<std::int64_t>> {
            static const std::string sql = "SELECT content FROM export_files WHERE job_id = ?1";
            auto prepared = db.prepare(sql, exporting);
            if (!prepared)
                return std::move(prepared).failure();
            statement query(*prepared);
            query.bind(1, job_id);
            std::vector<std::int64_t> ids;
            int rc;
            while ((rc = query.step()) == step_row)
                ids.push_back(query.integer(0));
            if (rc != step_done)
                return storage_failure(rc, exporting);
            return ids;
        });
    if (!referenced)
        return std::move(referenced).failure();
    std::sort(referenced->begin(), referenced->end());
    std::vector<std::int64_t> unreferenced;
    for (const std::int64_t id : *kept)
        if (!std::binary_search(referenced->begin(), referenced->end(), id))
            unreferenced.push_back(id);
    return export_bytes->remove(job_id, unreferenced);
}

void relational_engine::sweep_export_bytes() {
    // A failure leaves the bytes for the next sweep: nothing reaches them meanwhile.
    auto jobs = export_bytes->jobs();
    if (!jobs)
        return;
    for (const std::string& job : *jobs) {
        auto running = with_reader<bool>([&](connection& db) -> fhir::result<bool> {
            static const std::string sql =
                "SELECT 1 FROM export_jobs WHERE id = ?1 AND status IN ('accepted', 'in-progress')";
            auto found = query_one<bool>(
                db, sql, exporting, [&](statement& q) { q.bind(1, job); }, [](const statement&) { return true; });
            if (!found)
                return std::move(found).failure();
            return found->has_value();
        });
        // A running job may commit a reference to bytes it has just stored: its next claim sweeps it.
        if (!running || *running)
            continue;
        (void)sweep_unreferenced_export_bytes(job);
    }
}

fhir::result<std::optional<std::int64_t>> sqlite_engine::oldest_unfinished_export_snapshot(connection& db) {
    static const std::string sql =
        "SELECT min(snapshot) FROM export_jobs WHERE status IN ('accepted', 'in-progress')";
    auto found = query_one<std::optional<std::int64_t>>(
        db, sql, exporting, [](statement&) {},
        [](const statement& row) { return row.is_null(0) ? std::nullopt : std::optional(row.integer(0)); });
    if (!found)
        return std::move(found).failure();
    return found->value_or(std::nullopt);
}

void relational_store::create_export(export_job job, std::function<void(fhir::result<export_job>)> done) {
    auto made = std::make_shared<std::optional<export_job>>();
    impl_->enqueue(queued_export{
        [job = std::move(job), made](relational_engine&, connection& db) -> fhir::status {
            export_job stored = job;
            // Invariant 4: the writer is the only one writing, so the newest version now is the
            // newest any read of this job could ever find at or before this moment.
            static const std::string newest = "SELECT coalesce(max(seq), 0) FROM resource_versions";
            auto snapshot = query_one<std::int64_t>(
                db, newest, exporting, [](statement&) {}, [](const statement& row) { return row.integer(0); });
            if (!snapshot)
                return std::move(snapshot).failure();
            stored.snapshot = snapshot->value_or(0);
            stored.transaction_time = now_microseconds();
            stored.created = stored.transaction_time;
            stored.status = export_status::accepted;
            static const std::string insert =
                "INSERT INTO export_jobs (id, status, request, organisation, client, snapshot, transaction_time, "
                "created, cursor, written, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', 0, '')";
            if (auto inserted = execute(db, insert, exporting, [&](statement& q) {
                    q.bind(1, stored.id)
                        .bind(2, status_text(stored.status))
                        .bind(3, stored.request)
                        .bind(4, stored.organisation)
                        .bind(5, stored.client)
                        .bind(6, stored.snapshot)
                        .bind(7, stored.transaction_time)
                        .bind(8, stored.created);
                });
                !inserted)
                return inserted;
            made->emplace(std::move(stored));
            return {};
        },
        [made, done = std::move(done)](fhir::status status) {
            if (!status)
                return done(std::move(status).failure());
            done(std::move(**made));
        }});
}

fhir::result<std::optional<export_job>> relational_store::find_export(std::string_view id) const {
    return impl_->with_reader<std::optional<export_job>>([&](connection& db) { return load_job(db, id); });
}

fhir::result<std::vector<export_file_summary>> relational_store::export_files(std::string_view id) const {
    return impl_->with_reader<std::vector<export_file_summary>>(
        [&](connection& db) -> fhir::result<std::vector<export_file_summary>> {
            static const std::string sql =
                "SELECT f.number, min(f.type), CAST(sum(f.count) AS BIGINT) FROM export_files f "
                "JOIN export_jobs j ON j.id = f.job_id WHERE f.job_id = ?1 GROUP BY f.number ORDER BY f.number";
            auto prepared = db.prepare(sql, exporting);
            if (!prepared)
                return std::move(prepared).failure();
            statement query(*prepared);
            query.bind(1, id);
            std::vector<export_file_summary> files;
            int rc;
            while ((rc = query.step()) == step_row)
                files.push_back({query.integer(0), query.text(1), query.integer(2)});
            if (rc != step_done)
                return storage_failure(rc, exporting);
            return files;
        });
}

fhir::result<std::optional<std::string>> relational_store::export_file_content(std::string_view id,
                                                                               std::int64_t number) const {
    auto parts = impl_->with_reader<std::vector<detail::stored_piece>>(
        [&](connection& db) -> fhir::result<std::vector<detail::stored_piece>> {
            static const std::string sql =
                "SELECT f.content, f.start, f.length FROM export_files f JOIN export_jobs j ON j.id = f.job_id "
                "WHERE f.job_id = ?1 AND f.number = ?2 ORDER BY f.part";
            auto prepared = db.prepare(sql, exporting);
            if (!prepared)
                return std::move(prepared).failure();
            statement query(*prepared);
            query.bind(1, id).bind(2, number);
            std::vector<detail::stored_piece> found;
            int rc;
            while ((rc = query.step()) == step_row)
                found.push_back({query.integer(0), query.integer(1), query.integer(2)});
            if (rc != step_done)
                return storage_failure(rc, exporting);
            return found;
        });
    if (!parts)
        return std::move(parts).failure();
    if (parts->empty())
        return std::optional<std::string>();
    std::string ndjson;
    for (const detail::stored_piece& part : *parts) {
        auto bytes = impl_->export_bytes->get(id, part);
        if (!bytes)
            return std::move(bytes).failure();
        if (!*bytes) // gone since (a cancel swept it): as if the file had never been
            return std::optional<std::string>();
        ndjson += **bytes;
    }
    return std::optional<std::string>(std::move(ndjson));
}

fhir::result<std::optional<export_job>> relational_store::claim_export(std::string worker, timestamp now,
                                                                       timestamp lease_until) {
    auto claimed = impl_->export_change<std::optional<export_job>>(
        [&](relational_engine&, connection& db) -> fhir::result<std::optional<export_job>> {
            static const std::string free_job =
                "SELECT id FROM export_jobs WHERE status IN ('accepted', 'in-progress') "
                "AND (lease_until IS NULL OR lease_until < ?1) ORDER BY created, id LIMIT 1";
            auto id = query_one<std::string>(
                db, free_job, exporting, [&](statement& q) { q.bind(1, now); },
                [](const statement& row) { return row.text(0); });
            if (!id)
                return std::move(id).failure();
            if (!*id)
                return std::optional<export_job>();
            static const std::string take = "UPDATE export_jobs SET status = 'in-progress', worker = ?2, "
                                            "lease_until = ?3 WHERE id = ?1";
            if (auto taken = execute(db, take, exporting,
                                     [&](statement& q) { q.bind(1, **id).bind(2, worker).bind(3, lease_until); });
                !taken)
                return std::move(taken).failure();
            return load_job(db, **id);
        });
    // An earlier holder may have stored bytes whose file never committed (a crash, a lost lease):
    // they go now, before this holder stores any. A failure leaves them to the sweep after the job ends.
    if (claimed && *claimed)
        (void)impl_->sweep_unreferenced_export_bytes((*claimed)->id);
    return claimed;
}

fhir::status relational_store::save_export_progress(export_progress progress) {
    // Invariant 1: the bytes first, all of this progress's at once and apart from the writer; then
    // their rows with the cursor. Bytes stored here whose rows never commit are swept (exports.hpp).
    std::vector<detail::stored_piece> contents;
    if (!progress.files.empty()) {
        std::vector<std::string_view> pieces;
        for (const export_file& file : progress.files)
            pieces.push_back(file.ndjson);
        auto stored = impl_->export_bytes->put(progress.job_id, pieces);
        if (!stored) {
            // A job cancelled meanwhile has its bytes swept, these among them: refused as its rows would be.
            auto holds = impl_->with_reader<bool>([&](connection& db) -> fhir::result<bool> {
                static const std::string sql =
                    "SELECT 1 FROM export_jobs WHERE id = ?1 AND worker = ?2 AND status = 'in-progress'";
                auto found = query_one<bool>(
                    db, sql, exporting, [&](statement& q) { q.bind(1, progress.job_id).bind(2, progress.worker); },
                    [](const statement&) { return true; });
                if (!found)
                    return std::move(found).failure();
                return found->has_value();
            });
            if (holds && !*holds)
                return fhir::error::make(fhir::category::conflict, "conflict",
                                         "the export job was cancelled, has finished or is run by another worker");
            return std::move(stored).failure();
        }
        contents = std::move(*stored);
    }
    auto saved = impl_->export_change<bool>([&](relational_engine& engine, connection& db) -> fhir::result<bool> {
        std::int64_t lines = 0;
        for (const export_file& file : progress.files)
            lines += file.count;
        // Invariant 2: only the lease holder's, on an unfinished job.
        static const std::string advance =
            "UPDATE export_jobs SET cursor = ?3, written = written + ?4, lease_until = ?5 "
            "WHERE id = ?1 AND worker = ?2 AND status = 'in-progress'";
        if (auto advanced = execute(db, advance, exporting, [&](statement& q) {
                q.bind(1, progress.job_id)
                    .bind(2, progress.worker)
                    .bind(3, progress.cursor)
                    .bind(4, lines)
                    .bind(5, progress.lease_until);
            });
            !advanced)
            return std::move(advanced).failure();
        if (db.changes() == 0)
            return fhir::error::make(fhir::category::conflict, "conflict",
                                     "the export job was cancelled, has finished or is run by another worker");
        static const std::string last_number = "SELECT coalesce(max(number), 0) FROM export_files WHERE job_id = ?1";
        auto last = query_one<std::int64_t>(
            db, last_number, exporting, [&](statement& q) { q.bind(1, progress.job_id); },
            [](const statement& row) { return row.integer(0); });
        if (!last)
            return std::move(last).failure();
        std::int64_t highest = last->value_or(0);
        for (const export_file& file : progress.files)
            highest = std::max(highest, file.number);
        // A file's next part, and the type its parts hold so far (none for a new file).
        static const std::string next_part =
            "SELECT coalesce(max(part) + 1, 0), coalesce(min(type), '') FROM export_files WHERE job_id = ?1 AND number = ?2";
        static const std::string insert_part =
            "INSERT INTO export_files (job_id, number, part, type, count, content, start, length) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        for (std::size_t i = 0; i < progress.files.size(); ++i) {
            const export_file& file = progress.files[i];
            const std::int64_t number = file.number > 0 ? file.number : ++highest;
            auto found = query_one<std::pair<std::int64_t, std::string>>(
                db, next_part, exporting, [&](statement& q) { q.bind(1, progress.job_id).bind(2, number); },
                [](const statement& row) { return std::pair(row.integer(0), row.text(1)); });
            if (!found)
                return std::move(found).failure();
            // Named, not a structured binding: the lambda below captures it (clang 14 refuses a binding).
            const auto existing = found->value_or(std::pair<std::int64_t, std::string>(0, ""));
            const std::int64_t part = existing.first;
            const std::string& type = existing.second;
            if (!type.empty() && type != file.type)
                return fhir::error::make(fhir::category::fault, "exception",
                                         "an export file holds one type: file " + std::to_string(number) + " holds " +
                                             type + ", not " + file.type);
            if (auto inserted = execute(db, insert_part, exporting, [&](statement& q) {
                    q.bind(1, progress.job_id).bind(2, number).bind(3, part).bind(4, file.type).bind(5, file.count);
                    q.bind(6, contents[i].id).bind(7, contents[i].start).bind(8, contents[i].length);
                });
                !inserted)
                return std::move(inserted).failure();
        }
        // Each citizen once per job: the first file holding them logs them.
        static const std::string log_citizen = "INSERT INTO export_citizens (job_id, nhs_number) VALUES (?1, ?2) "
                                               "ON CONFLICT DO NOTHING RETURNING nhs_number";
        for (const std::string& citizen : progress.citizens) {
            auto fresh = query_one<bool>(
                db, log_citizen, exporting, [&](statement& q) { q.bind(1, progress.job_id).bind(2, citizen); },
                [](const statement&) { return true; });
            if (!fresh)
                return std::move(fresh).failure();
            if (!*fresh || !progress.audit)
                continue;
            audit_record record = *progress.audit;
            record.nhs_number = citizen;
            if (auto appended = engine.append_one(std::move(record)); !appended)
                return std::move(appended).failure();
        }
        if (progress.finish) {
            static const std::string finish = "UPDATE export_jobs SET status = ?2, finished = ?3, expires = ?4, "
                                              "error = ?5, worker = NULL, lease_until = NULL WHERE id = ?1";
            if (auto finished = execute(db, finish, exporting, [&](statement& q) {
                    q.bind(1, progress.job_id)
                        .bind(2, status_text(progress.error.empty() ? export_status::completed : export_status::failed))
                        .bind(3, progress.finished)
                        .bind(4, progress.expires)
                        .bind(5, progress.error);
                });
                !finished)
                return std::move(finished).failure();
        }
        return true;
    });
    // Refused (a cancel, another holder), or the job's end: whatever it leaves unreferenced goes.
    if (!saved || progress.finish)
        impl_->export_bytes_sweeper->sweep_later();
    if (!saved)
        return std::move(saved).failure();
    return {};
}

fhir::status relational_store::release_export(std::string job_id, std::string worker) {
    auto released = impl_->export_change<bool>([&](relational_engine&, connection& db) -> fhir::result<bool> {
        static const std::string release =
            "UPDATE export_jobs SET worker = NULL, lease_until = NULL WHERE id = ?1 AND worker = ?2";
        if (auto done = execute(db, release, exporting, [&](statement& q) { q.bind(1, job_id).bind(2, worker); });
            !done)
            return std::move(done).failure();
        return true;
    });
    if (!released)
        return std::move(released).failure();
    return {};
}

void relational_store::cancel_export(std::string id, std::function<void(fhir::result<bool>)> done) {
    auto found = std::make_shared<bool>(false);
    relational_engine* engine = impl_.get();
    impl_->enqueue(queued_export{
        [id = std::move(id), found](relational_engine&, connection& db) -> fhir::status {
            auto removed = remove_job(db, id);
            if (!removed)
                return std::move(removed).failure();
            *found = *removed;
            return {};
        },
        [engine, found, done = std::move(done)](fhir::status status) {
            if (!status)
                return done(std::move(status).failure());
            if (*found)
                engine->export_bytes_sweeper->sweep_later();
            done(*found);
        }});
}

fhir::result<std::int64_t> relational_store::remove_expired_exports(timestamp now) {
    // Also the bytes a crash left (a job gone or finished before its sweep ran).
    impl_->export_bytes_sweeper->sweep_later();
    auto removed = impl_->export_change<std::int64_t>(
        [&](relational_engine&, connection& db) -> fhir::result<std::int64_t> {
            static const std::string expired = "SELECT id FROM export_jobs WHERE expires IS NOT NULL AND expires <= ?1";
            std::vector<std::string> ids;
            {
                auto prepared = db.prepare(expired, exporting);
                if (!prepared)
                    return std::move(prepared).failure();
                statement query(*prepared);
                query.bind(1, now);
                int rc;
                while ((rc = query.step()) == step_row)
                    ids.push_back(query.text(0));
                if (rc != step_done)
                    return storage_failure(rc, exporting);
            }
            for (const std::string& id : ids)
                if (auto removed = remove_job(db, id); !removed)
                    return std::move(removed).failure();
            return static_cast<std::int64_t>(ids.size());
        });
    if (removed && *removed > 0)
        impl_->export_bytes_sweeper->sweep_later();
    return removed;
}

} // namespace caregate::storage
