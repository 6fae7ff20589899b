// Bulk Data export jobs (storage/exports.hpp, where the invariants are): their rows, their files and
// the citizens each has logged. Every change is a job of the writer's (queued_export), committed in
// a savepoint of its own inside a group, so a job's files, cursor and access-log records commit
// together (invariant 1); reads of jobs and files run on a pooled reader.
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

/// Removes a job and its citizens' rows (invariant 5); whether there was a job. Its files, which
/// nothing reaches without the job, go a few at a time afterwards (purge_export_files).
fhir::result<bool> remove_job(connection& db, std::string_view id) {
    static const std::string citizens = "DELETE FROM export_citizens WHERE job_id = ?1";
    static const std::string job = "DELETE FROM export_jobs WHERE id = ?1";
    if (auto removed = execute(db, citizens, exporting, [&](statement& q) { q.bind(1, id); }); !removed)
        return std::move(removed).failure();
    if (auto removed = execute(db, job, exporting, [&](statement& q) { q.bind(1, id); }); !removed)
        return std::move(removed).failure();
    return db.changes() > 0;
}

/// Files deleted in one transaction: a few of about 4 MiB each, so that deleting a large export
/// (SQLite zeroes what it deletes where it is built with SECURE_DELETE, as Debian's is) holds a
/// bounded number of pages, and other groups commit between the steps.
constexpr std::int64_t files_purged_at_once = 8;

/// Deletes up to files_purged_at_once files of jobs that are gone; how many it deleted.
fhir::result<std::int64_t> purge_files_step(connection& db) {
    static const std::string purge =
        "DELETE FROM export_files WHERE (job_id, number) IN (SELECT f.job_id, f.number FROM export_files f "
        "WHERE NOT EXISTS (SELECT 1 FROM export_jobs j WHERE j.id = f.job_id) LIMIT ?1)";
    if (auto purged = execute(db, purge, exporting, [](statement& q) { q.bind(1, files_purged_at_once); }); !purged)
        return std::move(purged).failure();
    return db.changes();
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

void relational_engine::purge_export_files() {
    auto purged = std::make_shared<std::int64_t>(0);
    enqueue(queued_export{[purged](relational_engine&, connection& db) -> fhir::status {
                              auto step = purge_files_step(db);
                              if (!step)
                                  return std::move(step).failure();
                              *purged = *step;
                              return {};
                          },
                          [this, purged](fhir::status status) {
                              // On the writer's thread: the next step is queued, never waited for.
                              if (status.ok() && *purged == files_purged_at_once)
                                  purge_export_files();
                          }});
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
            // Not the files' lengths: length() reads a text value whole, a file of megabytes for each.
            static const std::string sql = "SELECT f.number, f.type, f.count FROM export_files f "
                                           "JOIN export_jobs j ON j.id = f.job_id WHERE f.job_id = ?1 ORDER BY f.number";
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
    return impl_->with_reader<std::optional<std::string>>([&](connection& db) {
        static const std::string sql = "SELECT f.ndjson FROM export_files f JOIN export_jobs j ON j.id = f.job_id "
                                       "WHERE f.job_id = ?1 AND f.number = ?2";
        return query_one<std::string>(
            db, sql, exporting, [&](statement& q) { q.bind(1, id).bind(2, number); },
            [](const statement& row) { return row.blob(0); });
    });
}

fhir::result<std::optional<export_job>> relational_store::claim_export(std::string worker, timestamp now,
                                                                       timestamp lease_until) {
    return impl_->export_change<std::optional<export_job>>(
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
}

fhir::status relational_store::save_export_progress(export_progress progress) {
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
        static const std::string next_number =
            "SELECT coalesce(max(number), 0) FROM export_files WHERE job_id = ?1";
        auto last = query_one<std::int64_t>(
            db, next_number, exporting, [&](statement& q) { q.bind(1, progress.job_id); },
            [](const statement& row) { return row.integer(0); });
        if (!last)
            return std::move(last).failure();
        std::int64_t number = last->value_or(0);
        static const std::string insert_file =
            "INSERT INTO export_files (job_id, number, type, count, ndjson) VALUES (?1, ?2, ?3, ?4, ?5)";
        for (const export_file& file : progress.files)
            if (auto inserted = execute(db, insert_file, exporting, [&](statement& q) {
                    q.bind(1, progress.job_id).bind(2, ++number).bind(3, file.type).bind(4, file.count);
                    q.bind(5, std::string_view(file.ndjson));
                });
                !inserted)
                return std::move(inserted).failure();
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
                engine->purge_export_files();
            done(*found);
        }});
}

fhir::result<std::int64_t> relational_store::remove_expired_exports(timestamp now) {
    // Also the files left by a removal a crash interrupted (the job gone, its files not yet).
    impl_->purge_export_files();
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
        impl_->purge_export_files();
    return removed;
}

} // namespace caregate::storage
