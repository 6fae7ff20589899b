// Tests for storage/exports.hpp: export jobs as the store keeps them (their invariants 1 to 5), and
// the pages of a search bounded by size and read at an export's snapshot, on either engine.
#include "store_fixture.hpp"

#include "fhir_model/search_query.hpp"
#include "storage/search.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

const std::string nhs_a = "9000000009";
const std::string nhs_b = "9000000017";

write_outcome must_write(store& db, write_request request) {
    auto outcome = db.write(std::move(request));
    REQUIRE_MESSAGE(outcome.ok(), (outcome.ok() ? "" : outcome.failure().issues.at(0).diagnostics));
    return std::move(outcome).value();
}

export_job new_job(const std::string& id) {
    export_job job;
    job.id = id;
    job.request = R"({"kind":"system"})";
    job.organisation = "QZZ";
    job.client = "QZZ";
    return job;
}

export_job must_create(store& db, export_job job) {
    std::promise<fhir::result<export_job>> made;
    auto answer = made.get_future();
    db.create_export(std::move(job), [&](fhir::result<export_job> result) { made.set_value(std::move(result)); });
    auto created = answer.get();
    REQUIRE(created.ok());
    return std::move(created).value();
}

bool cancel(store& db, const std::string& id) {
    std::promise<fhir::result<bool>> done;
    auto answer = done.get_future();
    db.cancel_export(id, [&](fhir::result<bool> result) { done.set_value(std::move(result)); });
    auto cancelled = answer.get();
    REQUIRE(cancelled.ok());
    return *cancelled;
}

timestamp now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

export_progress progress_of(const std::string& job, const std::string& worker, std::string cursor) {
    export_progress progress;
    progress.job_id = job;
    progress.worker = worker;
    progress.lease_until = now_us() + 60'000'000;
    progress.cursor = std::move(cursor);
    progress.audit.emplace();
    progress.audit->action = "export";
    progress.audit->organisation = "QZZ";
    progress.audit->user = "exporter";
    progress.audit->outcome = "success";
    progress.audit->time = now_us();
    return progress;
}

/// Creates job `id` and leases it to `worker` for a minute (the oldest job waiting: create it alone).
void create_claimed(store& db, const std::string& id, const std::string& worker = "worker") {
    must_create(db, new_job(id));
    const timestamp now = now_us();
    auto claimed = db.claim_export(worker, now, now + 60'000'000);
    REQUIRE(claimed.ok());
    REQUIRE(claimed->has_value());
    REQUIRE((*claimed)->id == id);
}

/// Saves these files of job `id` with `cursor`, as `worker`; the save must succeed.
void must_save(store& db, const std::string& id, std::string cursor, std::vector<export_file> files,
               const std::string& worker = "worker") {
    auto progress = progress_of(id, worker, std::move(cursor));
    progress.files = std::move(files);
    auto saved = db.save_export_progress(std::move(progress));
    REQUIRE_MESSAGE(saved.ok(), (saved.ok() ? "" : saved.failure().issues.at(0).diagnostics));
}

/// Each of these jobs failed at an upgrade, saying so, and has no files.
void check_failed_by_upgrade(store& db, std::initializer_list<const char*> ids) {
    for (const char* id : ids) {
        auto job = db.find_export(id);
        REQUIRE(job.ok());
        REQUIRE(job->has_value());
        CHECK((*job)->status == export_status::failed);
        CHECK((*job)->error.find("upgrade") != std::string::npos);
        CHECK(db.export_files(id)->empty());
    }
}

std::int64_t access_log_entries(store& db, const std::string& nhs) {
    store::audit_query query;
    query.nhs_number = nhs;
    query.count = 100;
    auto page = db.audit(query);
    REQUIRE(page.ok());
    std::int64_t found = 0;
    for (const audit_record& record : page->records)
        found += record.action == "export";
    return found;
}

/// Export files' bytes kept, counted where the store keeps them: on SQLite files in a directory
/// beside the store's file, on PostgreSQL a table of the store's database.
std::int64_t bytes_kept(const store_fixture& db) {
    if (db.scratch)
        return db.count("SELECT count(*) FROM export_file_bytes");
    // Counted while the sweeper may be deleting: what goes meanwhile is not counted.
    namespace fs = std::filesystem;
    std::int64_t kept = 0;
    std::error_code error;
    for (fs::directory_iterator job(db.options.path + "-exports", error), end; !error && job != end; job.increment(error)) {
        std::error_code in_job;
        for (fs::directory_iterator file(job->path(), in_job); !in_job && file != end; file.increment(in_job))
            kept += file->is_regular_file(in_job);
    }
    return kept;
}

/// Leaves bytes for `job_id` where the store keeps them, as a crash between storing them and
/// committing their file's row does.
void leave_stray_bytes(const store_fixture& db, const std::string& job_id, const std::string& ndjson) {
    if (db.scratch) {
        REQUIRE(db.execute("INSERT INTO export_file_bytes (job_id, ndjson) VALUES ('" + job_id + "', '" + ndjson +
                           "')") == SQLITE_OK);
        return;
    }
    const std::filesystem::path dir = std::filesystem::path(db.options.path + "-exports") / job_id;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "1.ndjson", std::ios::binary) << ndjson; // an id lower than any the store gives
}

/// The bytes kept once the sweep has had time to run (a few seconds at most) down to `expected`.
std::int64_t bytes_kept_after_sweep(const store_fixture& db, std::int64_t expected = 0) {
    for (int i = 0; i < 500; ++i) {
        if (bytes_kept(db) == expected)
            return expected;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return bytes_kept(db);
}

fhir::search_query parse(const std::string& type) {
    fhir::search_query_options options;
    options.max_count = 10000;
    auto parsed = fhir::parse_search_query({type}, {{"_count", "1000"}}, options);
    REQUIRE(parsed.ok());
    return std::move(parsed.value());
}

} // namespace

TEST_CASE("an export job takes the newest version as its snapshot and starts accepted, with no lease") {
    store_fixture db;
    must_write(*db, create_request("Patient", nhs_a, patient_json(nhs_a)));
    const auto second = must_write(*db, create_request("Patient", nhs_b, patient_json(nhs_b)));
    const std::int64_t newest = db.count("SELECT max(seq) FROM resource_versions");

    const timestamp before = now_us();
    const export_job job = must_create(*db, new_job("job-1"));
    CHECK(job.snapshot == newest);
    CHECK(job.transaction_time >= before);
    CHECK(job.transaction_time >= second.version.last_updated);
    CHECK(job.status == export_status::accepted);

    auto found = db->find_export("job-1");
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK((*found)->snapshot == newest);
    CHECK((*found)->organisation == "QZZ");
    CHECK((*found)->request == R"({"kind":"system"})");
    CHECK((*found)->written == 0);
    auto none = db->find_export("no-such-job");
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
}

TEST_CASE("a job is leased to one worker at a time; a lapsed lease passes on and the old worker can save nothing") {
    store_fixture db;
    must_create(*db, new_job("job-1"));
    const timestamp now = now_us();

    auto first = db->claim_export("worker-a", now, now + 60'000'000);
    REQUIRE(first.ok());
    REQUIRE(first->has_value());
    CHECK((*first)->id == "job-1");
    CHECK((*first)->status == export_status::in_progress);
    auto second = db->claim_export("worker-b", now, now + 60'000'000);
    REQUIRE(second.ok());
    CHECK_FALSE(second->has_value()); // leased

    // Past the lease, another worker takes it over; the first one's progress is then refused whole.
    auto taken = db->claim_export("worker-b", now + 61'000'000, now + 120'000'000);
    REQUIRE(taken.ok());
    REQUIRE(taken->has_value());
    auto late = progress_of("job-1", "worker-a", "after-1");
    late.files.push_back({"Patient", 1, "{}\n"});
    late.citizens = {nhs_a};
    auto refused = db->save_export_progress(late);
    REQUIRE_FALSE(refused.ok());
    CHECK_MESSAGE(refused.failure().kind == fhir::category::conflict, refused.failure().issues.front().diagnostics);
    CHECK(db.count("SELECT count(*) FROM export_files") == 0);
    CHECK(access_log_entries(*db, nhs_a) == 0);

    // A worker that gives its lease back lets the next claim take the job at once.
    REQUIRE(db->release_export("job-1", "worker-b").ok());
    auto again = db->claim_export("worker-c", now, now + 60'000'000);
    REQUIRE(again.ok());
    CHECK(again->has_value());
    // The refused save's bytes, stored before it was refused, are gone with the next claim.
    CHECK(bytes_kept(db) == 0);
}

TEST_CASE("bytes stored whose file never committed are deleted at the job's next claim, and after it ends") {
    store_fixture db;
    must_create(*db, new_job("job-1"));
    const timestamp now = now_us();
    REQUIRE(db->claim_export("worker-a", now, now + 60'000'000).ok());
    auto saved = progress_of("job-1", "worker-a", "cursor-1");
    saved.files.push_back({"Patient", 1, "{\"kept\":1}\n"});
    REQUIRE(db->save_export_progress(saved).ok());
    // As a crash leaves them: bytes stored, their file's row never committed.
    leave_stray_bytes(db, "job-1", "{\"lost\":1}\n");
    CHECK(bytes_kept(db) == 2);
    db.reopen();
    // The restarted server's claim (the lease has lapsed) deletes them, and keeps the committed file.
    auto claimed = db->claim_export("worker-b", now + 61'000'000, now + 120'000'000);
    REQUIRE(claimed.ok());
    REQUIRE(claimed->has_value());
    CHECK(bytes_kept(db) == 1);
    CHECK(db->export_file_content("job-1", 1).value() == std::optional<std::string>("{\"kept\":1}\n"));

    // Once it has ended, whatever is left unreferenced goes too, and its own file stays.
    leave_stray_bytes(db, "job-1", "{\"late\":1}\n");
    auto end = progress_of("job-1", "worker-b", "cursor-1");
    end.finish = true;
    end.finished = now_us();
    end.expires = end.finished + 60'000'000;
    REQUIRE(db->save_export_progress(end).ok());
    CHECK(bytes_kept_after_sweep(db, 1) == 1);
    CHECK(db->export_file_content("job-1", 1).value() == std::optional<std::string>("{\"kept\":1}\n"));
}

TEST_CASE("a file's row reaches only bytes stored for its own job") {
    store_fixture db;
    must_create(*db, new_job("job-1"));
    must_create(*db, new_job("job-2"));
    const timestamp now = now_us();
    REQUIRE(db->claim_export("worker", now, now + 60'000'000).ok());
    auto saved = progress_of("job-1", "worker", "cursor-1");
    saved.files.push_back({"Patient", 1, "{\"secret\":1}\n"});
    REQUIRE(db->save_export_progress(saved).ok());
    const std::string content = db.rows("SELECT content FROM export_files WHERE job_id = 'job-1'").at(0).at(0);
    // A row of job-2 pointing at job-1's bytes (a database restored beside newer bytes, a tamperer).
    REQUIRE(db.execute("INSERT INTO export_files (job_id, number, part, type, count, content, start, length) VALUES "
                       "('job-2', 1, 0, 'Patient', 1, " + content + ", 0, -1)") == SQLITE_OK);
    auto found = db->export_file_content("job-2", 1);
    REQUIRE(found.ok());
    CHECK_FALSE(found->has_value());
    CHECK(db->export_file_content("job-1", 1).value().has_value());
}

TEST_CASE("progress commits its files, its cursor and each citizen's access-log entry once per job") {
    store_fixture db;
    must_create(*db, new_job("job-1"));
    must_create(*db, new_job("job-2"));
    const timestamp now = now_us();
    REQUIRE(db->claim_export("worker", now, now + 60'000'000).ok());

    auto first = progress_of("job-1", "worker", "cursor-1");
    first.files.push_back({"Patient", 2, "{\"a\":1}\n{\"b\":2}\n"});
    first.citizens = {nhs_a, nhs_b};
    REQUIRE(db->save_export_progress(first).ok());
    auto second = progress_of("job-1", "worker", "cursor-2");
    second.files.push_back({"Observation", 1, "{\"c\":3}\n"});
    second.files.push_back({"Observation", 1, "{\"d\":4}\n"});
    second.citizens = {nhs_a};
    REQUIRE(db->save_export_progress(second).ok());

    auto job = db->find_export("job-1");
    REQUIRE(job.ok());
    CHECK((*job)->cursor == "cursor-2");
    CHECK((*job)->written == 4);
    auto files = db->export_files("job-1");
    REQUIRE(files.ok());
    REQUIRE(files->size() == 3);
    CHECK((*files)[0].number == 1);
    CHECK((*files)[0].type == "Patient");
    CHECK((*files)[0].count == 2);
    CHECK((*files)[2].number == 3);
    CHECK((*files)[2].type == "Observation");
    auto content = db->export_file_content("job-1", 2);
    REQUIRE(content.ok());
    REQUIRE(content->has_value());
    CHECK(**content == "{\"c\":3}\n");
    auto missing = db->export_file_content("job-1", 4);
    REQUIRE(missing.ok());
    CHECK_FALSE(missing->has_value());
    auto others = db->export_file_content("job-2", 1);
    REQUIRE(others.ok());
    CHECK_FALSE(others->has_value());
    CHECK(access_log_entries(*db, nhs_a) == 1); // in two saves, logged once
    CHECK(access_log_entries(*db, nhs_b) == 1);

    // Finishing sets the expiry and frees the lease; a finished job takes no more progress.
    auto last = progress_of("job-1", "worker", "end");
    last.finish = true;
    last.finished = now_us();
    last.expires = last.finished + 1;
    REQUIRE(db->save_export_progress(last).ok());
    job = db->find_export("job-1");
    CHECK((*job)->status == export_status::completed);
    REQUIRE((*job)->expires.has_value());
    auto after = progress_of("job-1", "worker", "more");
    CHECK_FALSE(db->save_export_progress(after).ok());
    auto audit = db->verify_audit();
    REQUIRE(audit.ok());
    CHECK_FALSE(audit->first_broken.has_value());

    // Expiry removes the finished job whole, and leaves the unfinished one.
    auto removed = db->remove_expired_exports(now_us() + 2);
    REQUIRE(removed.ok());
    CHECK(*removed == 1);
    CHECK_FALSE(db->find_export("job-1")->has_value());
    CHECK_FALSE(db->export_file_content("job-1", 1)->has_value()); // at once, whatever the purge has done
    CHECK(db->export_files("job-1")->empty());
    CHECK(bytes_kept_after_sweep(db) == 0);
    CHECK(db.count("SELECT count(*) FROM export_citizens") == 0);
    CHECK(db->find_export("job-2")->has_value());
}

TEST_CASE("a failed save keeps nothing of itself, and a cancelled job takes no more progress") {
    store_fixture db;
    must_create(*db, new_job("job-1"));
    const timestamp now = now_us();
    REQUIRE(db->claim_export("worker", now, now + 60'000'000).ok());
    auto saved = progress_of("job-1", "worker", "cursor-1");
    for (int i = 0; i < 30; ++i) // more files than one step of the purge deletes
        saved.files.push_back({"Patient", 1, "{}\n"});
    REQUIRE(db->save_export_progress(saved).ok());

    CHECK(cancel(*db, "job-1"));
    CHECK_FALSE(db->export_file_content("job-1", 30)->has_value());
    CHECK_FALSE(cancel(*db, "job-1"));
    auto late = progress_of("job-1", "worker", "cursor-2");
    late.files.push_back({"Patient", 1, "{}\n"});
    late.citizens = {nhs_a};
    auto refused = db->save_export_progress(late);
    REQUIRE_FALSE(refused.ok());
    CHECK_MESSAGE(refused.failure().kind == fhir::category::conflict, refused.failure().issues.front().diagnostics);
    CHECK(bytes_kept_after_sweep(db) == 0);
    CHECK(db.count("SELECT count(*) FROM export_jobs") == 0);
    CHECK(access_log_entries(*db, nhs_a) == 0);
}

TEST_CASE("an unfinished export keeps its snapshot readable past the snapshot lifetime; a finished one does not") {
    store_fixture db;
    db.close();
    db.options.snapshot_lifetime = std::chrono::seconds(0);
    db.reopen();
    must_write(*db, create_request("Patient", nhs_a, patient_json(nhs_a, "Before")));
    const export_job job = must_create(*db, new_job("job-1"));
    must_write(*db, update_request("Patient", nhs_a, patient_json(nhs_a, "After")));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // a purge is due with the next group
    must_write(*db, create_request("Patient", nhs_b, patient_json(nhs_b)));

    const fhir::search_query query = parse("Patient");
    search_request request;
    request.query = &query;
    request.visibility.everything = true;
    request.snapshot = job.snapshot;
    auto page = db->search(request);
    REQUIRE(page.ok());
    REQUIRE(page->entries.size() == 1);
    CHECK(page->entries[0].version.version_id == 1); // what was current at the export's transaction time
    CHECK(page->entries[0].version.json.find("Before") != std::string::npos);

    CHECK(cancel(*db, job.id));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    must_write(*db, update_request("Patient", nhs_b, patient_json(nhs_b, "Later")));
    auto expired = db->search(request);
    REQUIRE_FALSE(expired.ok());
    CHECK(expired.failure().kind == fhir::category::deleted);
}

TEST_CASE("a page bounded by size ends after the entry that reaches the bound and goes on from there") {
    store_fixture db;
    must_write(*db, create_request("Patient", nhs_a, patient_json(nhs_a)));
    for (int i = 0; i < 40; ++i)
        must_write(*db, observation_request("obs-" + std::to_string(i), nhs_a, std::to_string(i)));
    const fhir::search_query query = parse("Observation");
    search_request request;
    request.query = &query;
    request.visibility.everything = true;
    auto whole = db->search(request);
    REQUIRE(whole.ok());
    REQUIRE(whole->entries.size() == 40);
    const std::size_t one = whole->entries[0].version.json.size();

    request.max_bytes = one * 3 + 1; // the fourth entry reaches it
    std::vector<std::string> seen;
    for (;;) {
        auto page = db->search(request);
        REQUIRE(page.ok());
        CHECK(page->entries.size() <= 4);
        CHECK_FALSE(page->entries.empty());
        for (const auto& entry : page->entries)
            seen.push_back(entry.version.id);
        if (!page->next)
            break;
        request.cursor = page->next;
    }
    REQUIRE(seen.size() == 40);
    for (std::size_t i = 0; i < seen.size(); ++i)
        CHECK(seen[i] == whole->entries[i].version.id);
}

TEST_CASE("an export's visibility: an objection excludes a whole record and the opt-out a citizen, alike in a search and in memory") {
    store_fixture db;
    const std::string plain = "9000000009", objecting = "9000000017", opting_out = "9000000025";
    auto write_as = [&](const std::string& writer, write_kind kind, const std::string& type, const std::string& id,
                        const std::string& body) {
        write_request request = prepared(kind, type, id, body);
        request.writer = writer;
        must_write(*db, std::move(request));
    };
    auto consent = [](const std::string& nhs, const std::string& scope) {
        return R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":")" +
               scope + R"("}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/)" +
               nhs + R"("},"provision":{"type":"deny"}})";
    };
    for (const std::string& nhs : {plain, objecting, opting_out}) {
        write_as("", write_kind::create, "Patient", nhs, patient_json(nhs));
        // One item the exporting organisation (QZZ) wrote, one another organisation wrote.
        write_as("QZZ", write_kind::create, "Observation", "own-" + nhs, observation_json(nhs));
        write_as("A81001", write_kind::create, "Observation", "other-" + nhs, observation_json(nhs));
    }
    write_as("A81001", write_kind::create, "Consent", "objection", consent(objecting, "patient-privacy"));
    write_as("A81001", write_kind::create, "Consent", "opt-out", consent(opting_out, "research"));

    const fhir::search_query query = parse("Observation");
    for (const bool objection_excludes : {false, true})
        for (const bool opt_out_excludes : {false, true})
            for (const bool objection_binds : {false, true}) {
                CAPTURE(objection_excludes);
                CAPTURE(opt_out_excludes);
                CAPTURE(objection_binds);
                search_request request;
                request.query = &query;
                request.visibility.all_citizens = true;
                request.visibility.organisation = "QZZ";
                request.visibility.readable = {{"Observation", true, {}}};
                request.visibility.objection_binds = objection_binds;
                request.visibility.objection_excludes = objection_excludes;
                request.visibility.opt_out_excludes = opt_out_excludes;
                auto page = db->search(request);
                REQUIRE(page.ok());
                std::set<std::string> searched;
                for (const auto& entry : page->entries)
                    searched.insert(entry.version.id);
                std::set<std::string> in_memory, expected;
                for (const std::string& nhs : {plain, objecting, opting_out})
                    for (const std::string& id : {"own-" + nhs, "other-" + nhs}) {
                        auto version = db->read("Observation", id);
                        REQUIRE(version.ok());
                        auto visible = db->version_visible(request.visibility, *version);
                        REQUIRE(visible.ok());
                        if (*visible)
                            in_memory.insert(id);
                        const bool hidden_by_objection =
                            nhs == objecting && (objection_excludes || (objection_binds && id.starts_with("other-")));
                        const bool hidden_by_opt_out = nhs == opting_out && opt_out_excludes;
                        if (!hidden_by_objection && !hidden_by_opt_out)
                            expected.insert(id);
                    }
                CHECK(searched == expected);
                CHECK(in_memory == expected);
            }

    // Withdrawn (deleted), the opt-out binds no more; an erasure takes its rows with it too.
    must_write(*db, remove_request("Consent", "opt-out"));
    CHECK(db.count("SELECT count(*) FROM opt_outs") == 0);
}

TEST_CASE("a database of the previous schema gains the export tables, and opt-outs from the Consents it holds") {
    store_fixture db;
    must_write(*db, create_request("Patient", nhs_a, patient_json(nhs_a)));
    write_request opt_out = prepared(write_kind::create, "Consent", "opt-out",
        R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"research"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/9000000009"},"provision":{"type":"deny"}})");
    must_write(*db, std::move(opt_out));
    must_create(*db, new_job("job-1"));
    REQUIRE(db.count("SELECT count(*) FROM opt_outs") == 1);
    db.close();

    // SQLite schema 10, PostgreSQL schema 7: what the previous release made.
    REQUIRE(db.execute("DROP TABLE opt_outs; DROP TABLE export_jobs; DROP TABLE export_files; DROP TABLE export_citizens; " +
                       std::string(db.scratch ? "DROP TABLE export_file_bytes; " : "") +
                       std::string(db.scratch ? "UPDATE caregate_schema SET version = 7" : "PRAGMA user_version = 10")) ==
            SQLITE_OK);
    db.reopen();
    CHECK(db.count(db.scratch ? "SELECT version FROM caregate_schema" : "PRAGMA user_version") == (db.scratch ? newest_postgresql_schema : newest_sqlite_schema));
    CHECK(db.rows("SELECT type, id, nhs_number FROM opt_outs") ==
          std::vector<std::vector<std::string>>{{"Consent", "opt-out", nhs_a}});
    CHECK(db.count("SELECT count(*) FROM export_jobs") == 0);
    must_create(*db, new_job("job-2")); // and the tables work
    auto standing = db->standing(nhs_a, "QZZ", "user", "role", 0, now_us());
    REQUIRE(standing.ok());
    CHECK(standing->opted_out);
}

TEST_CASE("an upgrade that moves export files' bytes apart fails the jobs made before it, saying why") {
    store_fixture db;
    must_create(*db, new_job("running"));
    must_create(*db, new_job("done"));
    db.close();
    // SQLite schema 12, PostgreSQL schema 9: files kept their bytes in their own rows.
    const std::string previous =
        db.scratch ? "DROP TABLE export_files; DROP TABLE export_file_bytes; CREATE TABLE export_files (job_id text "
                     "NOT NULL, number bigint NOT NULL, type text NOT NULL, count bigint NOT NULL, ndjson text NOT "
                     "NULL, PRIMARY KEY (job_id, number)); UPDATE caregate_schema SET version = 9; "
                   : "DROP TABLE export_files; CREATE TABLE export_files (job_id TEXT NOT NULL, number INTEGER NOT "
                     "NULL, type TEXT NOT NULL, count INTEGER NOT NULL, ndjson BLOB NOT NULL, PRIMARY KEY (job_id, "
                     "number)); PRAGMA user_version = 12; ";
    REQUIRE(db.execute(previous + "UPDATE export_jobs SET status = 'completed', finished = 1, expires = 9000000000000000 "
                                  "WHERE id = 'done'; INSERT INTO export_files VALUES ('done', 1, 'Patient', 1, '{}');") ==
            SQLITE_OK);
    db.reopen();
    CHECK(db.count(db.scratch ? "SELECT version FROM caregate_schema" : "PRAGMA user_version") == (db.scratch ? newest_postgresql_schema : newest_sqlite_schema));
    check_failed_by_upgrade(*db, {"running", "done"});
    auto removed = db->remove_expired_exports(now_us());
    REQUIRE(removed.ok());
    CHECK(*removed == 2); // expired at the upgrade
    create_claimed(*db, "after");
    must_save(*db, "after", "cursor-1", {{"Patient", 1, "{}\n"}});
    CHECK(db->export_file_content("after", 1).value() == std::optional<std::string>("{}\n"));
}

TEST_CASE("an upgrade that writes export files in parts keeps the files written before it") {
    store_fixture db;
    create_claimed(*db, "job-1");
    // A save each, so that each file's bytes are whole, as the previous schema stored them.
    must_save(*db, "job-1", "cursor-1", {{"Patient", 2, "{\"a\":1}\n{\"b\":2}\n"}});
    must_save(*db, "job-1", "cursor-2", {{"Observation", 1, "{\"c\":3}\n"}});
    db.close();
    // SQLite schema 14, PostgreSQL schema 10: a row per file, its bytes whole.
    const std::string whole =
        db.scratch ? "CREATE TABLE whole (job_id text COLLATE \"C\" NOT NULL, number bigint NOT NULL, type text NOT "
                     "NULL, count bigint NOT NULL, content bigint NOT NULL, PRIMARY KEY (job_id, number)); "
                   : "CREATE TABLE whole (job_id TEXT NOT NULL, number INTEGER NOT NULL, type TEXT NOT NULL, count "
                     "INTEGER NOT NULL, content INTEGER NOT NULL, PRIMARY KEY (job_id, number)) WITHOUT ROWID; ";
    REQUIRE(db.execute(whole + "INSERT INTO whole SELECT job_id, number, type, count, content FROM export_files; "
                               "DROP TABLE export_files; ALTER TABLE whole RENAME TO export_files; " +
                       std::string(db.scratch ? "UPDATE caregate_schema SET version = 10" : "PRAGMA user_version = 14")) ==
            SQLITE_OK);
    db.reopen();
    CHECK(db.count(db.scratch ? "SELECT version FROM caregate_schema" : "PRAGMA user_version") ==
          (db.scratch ? newest_postgresql_schema : newest_sqlite_schema));
    auto files = db->export_files("job-1");
    REQUIRE(files.ok());
    REQUIRE(files->size() == 2);
    CHECK((*files)[0].count == 2);
    CHECK((*files)[1].type == "Observation");
    CHECK(db->export_file_content("job-1", 1).value() == std::optional<std::string>("{\"a\":1}\n{\"b\":2}\n"));
    CHECK(db->export_file_content("job-1", 2).value() == std::optional<std::string>("{\"c\":3}\n"));
}

TEST_CASE("a file written in parts is served whole, in the order of its parts, and holds one type") {
    store_fixture db;
    create_claimed(*db, "job-1");
    must_save(*db, "job-1", "cursor-1", {{"Observation", 1, "{\"o\":1}\n", 1}, {"Patient", 1, "{\"p\":1}\n", 2}});
    must_save(*db, "job-1", "cursor-2",
              {{"Patient", 1, "{\"p\":2}\n", 2},
               {"Observation", 2, "{\"o\":2}\n{\"o\":3}\n", 1},
               {"Condition", 1, "{\"c\":1}\n"}}); // the last numbered after the highest

    auto files = db->export_files("job-1");
    REQUIRE(files.ok());
    REQUIRE(files->size() == 3);
    CHECK((*files)[0].type == "Observation");
    CHECK((*files)[0].count == 3);
    CHECK((*files)[1].type == "Patient");
    CHECK((*files)[1].count == 2);
    CHECK((*files)[2].number == 3);
    CHECK(db->export_file_content("job-1", 1).value() ==
          std::optional<std::string>("{\"o\":1}\n{\"o\":2}\n{\"o\":3}\n"));
    CHECK(db->export_file_content("job-1", 2).value() == std::optional<std::string>("{\"p\":1}\n{\"p\":2}\n"));
    CHECK(db->export_file_content("job-1", 3).value() == std::optional<std::string>("{\"c\":1}\n"));
    CHECK(db->find_export("job-1").value()->written == 6);

    // A part of another type refused, and nothing of its progress kept.
    auto mixed = progress_of("job-1", "worker", "cursor-3");
    mixed.files.push_back({"Condition", 1, "{\"c\":2}\n", 1});
    CHECK_FALSE(db->save_export_progress(mixed).ok());
    CHECK(db->find_export("job-1").value()->cursor == "cursor-2");
    CHECK(db->export_file_content("job-1", 1).value() ==
          std::optional<std::string>("{\"o\":1}\n{\"o\":2}\n{\"o\":3}\n"));
}

TEST_CASE("on SQLite, export files and their directories are the server's user's only") {
    store_fixture db;
    if (db.scratch)
        return; // PostgreSQL's table is the database's
    create_claimed(*db, "job-1");
    must_save(*db, "job-1", "cursor-1", {{"Patient", 1, "{}\n"}});
    using std::filesystem::perms;
    const std::filesystem::path root = db.options.path + "-exports";
    std::int64_t seen = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        CHECK((entry.status().permissions() & (perms::group_all | perms::others_all)) == perms::none);
        ++seen;
    }
    CHECK((std::filesystem::status(root).permissions() & (perms::group_all | perms::others_all)) == perms::none);
    CHECK(seen == 2); // the job's directory and its file
}

TEST_CASE("on SQLite, an upgrade that moves export files' bytes out of their database fails the jobs made before, and deletes it") {
    store_fixture db;
    if (db.scratch)
        return; // PostgreSQL keeps them in its table, as before
    must_create(*db, new_job("running"));
    must_create(*db, new_job("done"));
    db.close();
    // SQLite schema 13: a database of their own beside the store's, which the rows referenced.
    const std::string previous = db.options.path + "-export-files";
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(previous.c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "CREATE TABLE export_file_bytes (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT "
                              "NULL, ndjson BLOB NOT NULL); INSERT INTO export_file_bytes VALUES (1, 'done', '{}');",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close_v2(raw);
    REQUIRE(db.execute("PRAGMA user_version = 13; DROP TABLE export_files; CREATE TABLE export_files (job_id TEXT "
                       "NOT NULL, number INTEGER NOT NULL, type TEXT NOT NULL, count INTEGER NOT NULL, content "
                       "INTEGER NOT NULL, PRIMARY KEY (job_id, number)) WITHOUT ROWID; "
                       "UPDATE export_jobs SET status = 'completed', finished = 1, "
                       "expires = 9000000000000000 WHERE id = 'done'; INSERT INTO export_files VALUES ('done', 1, "
                       "'Patient', 1, 1);") == SQLITE_OK);
    db.reopen();
    CHECK(db.count("PRAGMA user_version") == newest_sqlite_schema);
    CHECK_FALSE(std::filesystem::exists(previous));
    check_failed_by_upgrade(*db, {"running", "done"});
    create_claimed(*db, "after");
    must_save(*db, "after", "cursor-1", {{"Patient", 1, "{}\n"}});
    CHECK(db->export_file_content("after", 1).value() == std::optional<std::string>("{}\n"));
    CHECK(bytes_kept(db) == 1);
}

TEST_CASE("erasing a citizen withdraws every export that holds them, running or finished; no access-log entry without an audit") {
    store_fixture db;
    must_write(*db, create_request("Patient", nhs_a, patient_json(nhs_a)));
    must_write(*db, create_request("Patient", nhs_b, patient_json(nhs_b)));
    for (const char* id : {"holds-a", "holds-b", "finished-with-a"})
        must_create(*db, new_job(id));
    const timestamp now = now_us();
    for (int i = 0; i < 3; ++i)
        REQUIRE(db->claim_export("worker", now, now + 60'000'000)->has_value());
    auto save = [&](const std::string& job, const std::string& citizen, bool finish) {
        auto progress = progress_of(job, "worker", "c");
        progress.files.push_back({"Patient", 1, "{}\n"});
        progress.citizens = {citizen};
        progress.audit.reset(); // a pseudonymised export's: recorded, not logged
        progress.finish = finish;
        progress.finished = now_us();
        progress.expires = progress.finished + 60'000'000;
        REQUIRE(db->save_export_progress(progress).ok());
    };
    save("holds-a", nhs_a, false);
    save("holds-b", nhs_b, false);
    save("finished-with-a", nhs_a, true);
    CHECK(access_log_entries(*db, nhs_a) == 0);

    write_request erase = remove_request("Patient", nhs_a);
    erase.erase_record = true;
    must_write(*db, std::move(erase));
    for (const char* id : {"holds-a", "finished-with-a"}) {
        auto job = db->find_export(id);
        REQUIRE(job.ok());
        REQUIRE(job->has_value());
        CHECK((*job)->status == export_status::failed);
        CHECK((*job)->error.find("erased") != std::string::npos);
        CHECK(db->export_files(id)->empty());
    }
    CHECK(db->find_export("holds-b")->value().status == export_status::in_progress);
    CHECK(db->export_files("holds-b")->size() == 1);
    CHECK(bytes_kept_after_sweep(db, 1) == 1); // the withdrawn jobs' bytes go once the erasure commits
    auto late = progress_of("holds-a", "worker", "d"); // the running one stops at its next save
    CHECK(db->save_export_progress(late).failure().kind == fhir::category::conflict);
}
