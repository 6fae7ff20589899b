// Tests for storage/src/relational/search_index.cpp and its use by the writer and by schema migrations 3 and 4:
// invariant 16 of engine.hpp (index rows belong to a version; the open ones are exactly those of the
// current live versions), and the query plans the search indexes are there for. Read through a
// connection of the test's own. Snapshots, version_citizens and the purge: search_snapshot_test.cpp.
#include "search_fixture_resources.hpp"
#include "store_fixture.hpp"

#include "fhir_model/date_time.hpp"
#include "fhir_model/search_values.hpp"

#include <chrono>
#include <future>
#include <memory>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

const std::string nhs = "9000000009";

const std::vector<std::string> index_tables = {"search_string",   "search_token",  "search_date",
                                               "search_reference", "search_quantity", "search_number",
                                               "search_uri",       "search_composite"};

using table_rows = std::vector<std::vector<std::string>>;

std::string heart_rate_json(const std::string& code = "8867-4", const std::string& value = "72",
                            const std::string& date = "2026-11-23") {
    return R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":")" +
           code + R"(","display":"Heart Rate"}]},"subject":{"reference":"Patient/)" + nhs +
           R"("},"effectiveDateTime":")" + date + R"(","valueQuantity":{"value":)" + value +
           R"(,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}})";
}

write_request heart_rate(write_kind kind, const std::string& id, std::string content) {
    write_request request = create_request("Observation", id, std::move(content));
    request.kind = kind;
    request.citizens.push_back({nhs, "Observation.subject"});
    return request;
}

write_outcome must_write(store& db, write_request request) {
    auto outcome = db.write(std::move(request));
    REQUIRE_MESSAGE(outcome.ok(), (outcome.ok() ? "" : outcome.failure().issues.at(0).diagnostics));
    return std::move(outcome).value();
}

/// Which index rows index_rows() returns.
enum class which { open, all };

/// The index rows of one resource's versions (of all resources, with empty type), table by table,
/// each as (table, [rowid,] type, id, version, the row's own columns...), in a stable order: by
/// version, then as inserted. `open`: the rows of current live versions only (until_seq NULL).
table_rows index_rows(const store_fixture& db, const std::string& type = {}, const std::string& id = {},
                      which selected = which::open, bool with_rowid = false) {
    table_rows all;
    for (const auto& table : index_tables) {
        std::string sql = "SELECT '" + table + "', " + (with_rowid ? "s.rowid, " : "") +
                          "v.type, v.id, v.version_id, s.* FROM " + table +
                          " s JOIN resource_versions v ON v.seq = s.seq WHERE 1 = 1";
        if (!type.empty())
            sql += " AND v.type = '" + type + "' AND v.id = '" + id + "'";
        if (selected == which::open)
            sql += " AND s.until_seq IS NULL";
        sql += " ORDER BY s.seq, s.rowid";
        for (auto& row : db.rows(sql))
            all.push_back(std::move(row));
    }
    return all;
}

std::int64_t open_row_count(const store_fixture& db, const std::string& type, const std::string& id) {
    return static_cast<std::int64_t>(index_rows(db, type, id).size());
}

/// SQL for `columns` of the open rows of one resource's parameter in `table` (aliased s).
std::string open_rows_sql(const std::string& table, const std::string& columns, const std::string& id,
                          const std::string& param) {
    return "SELECT " + columns + " FROM " + table +
           " s JOIN resource_versions v ON v.seq = s.seq WHERE s.until_seq IS NULL AND v.id = '" + id +
           "' AND s.param = '" + param + "' ORDER BY s.rowid";
}

/// How many rows the content should give: every extracted value but special ones (not indexed) and
/// those of union parameters (stored as their parts' rows).
std::int64_t expected_row_count(const std::string& stamped_json) {
    std::int64_t count = 0;
    for (const auto& value : fhir::extract_search_values(stamped_json))
        if (value.type != fhir::search_param_type::special && value.parameter->has_own_values())
            ++count;
    return count;
}

/// The seq of a version of type/id.
std::int64_t seq_of(const store_fixture& db, const std::string& type, const std::string& id, std::int64_t version) {
    return db.count("SELECT seq FROM resource_versions WHERE type = '" + type + "' AND id = '" + id +
                    "' AND version_id = " + std::to_string(version));
}

/// The rows of every table whose seq is the version's, as (until_seq) per row.
std::vector<std::string> until_seqs_of(const store_fixture& db, std::int64_t seq) {
    std::vector<std::string> found;
    for (const auto& table : index_tables)
        for (auto& row : db.rows("SELECT until_seq FROM " + table + " WHERE seq = " + std::to_string(seq)))
            found.push_back(row.at(0));
    return found;
}

void add_patient(store& db) { must_write(db, create_request("Patient", nhs, patient_json(nhs))); }

std::string plan_of(const store_fixture& db, const std::string& sql) {
    std::string plan;
    for (const auto& row : db.rows("EXPLAIN QUERY PLAN " + sql))
        plan += row.back() + "\n";
    return plan;
}

} // namespace

TEST_CASE("a created Observation has its code, subject, date, quantity, _id and _lastUpdated rows") {
    store_fixture db;
    add_patient(*db);
    const auto created = must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));
    const std::int64_t seq = seq_of(db, "Observation", "hr-1", 1);

    // Every row carries its version's seq and the type, and is open.
    CHECK(db.rows("SELECT s.seq, s.until_seq, s.type FROM search_token s JOIN resource_versions v "
                   "ON v.seq = s.seq WHERE v.id = 'hr-1' AND s.param = 'code'") ==
          table_rows{{std::to_string(seq), "NULL", "Observation"}});
    CHECK(db.rows(open_rows_sql("search_token", "system, code, text", "hr-1", "code")) ==
          table_rows{{"http://loinc.org", "8867-4", "heart rate"}});
    CHECK(db.rows(open_rows_sql("search_token", "system, code", "hr-1", "_id")) == table_rows{{"NULL", "hr-1"}});
    CHECK(db.rows(open_rows_sql("search_reference", "target_type, target_id, identifier_system", "hr-1", "subject")) ==
          table_rows{{"Patient", nhs, "NULL"}});

    const auto day = fhir::parse_date_time("2026-11-23");
    REQUIRE(day);
    CHECK(db.rows(open_rows_sql("search_date", "low, high", "hr-1", "date")) ==
          table_rows{{std::to_string(day->begin), std::to_string(day->end)}});
    // _lastUpdated is the stamped instant: the version's own timestamp, to the microsecond.
    CHECK(db.rows(open_rows_sql("search_date", "low, high", "hr-1", "_lastUpdated")) ==
          table_rows{{std::to_string(created.version.last_updated), std::to_string(created.version.last_updated + 1)}});
    CHECK(db.rows(open_rows_sql("search_quantity", "value, value_text, system, code, unit", "hr-1", "value-quantity")) ==
          table_rows{{"72.0", "72", "http://unitsofmeasure.org", "/min", "beats/minute"}});
    // Composites are indexed now: the code with the quantity.
    CHECK(db.rows(open_rows_sql("search_composite", "c1_system, c1_code, c2_system, c2_code, c2_value, c2_low, c2_text",
                                 "hr-1", "code-value-quantity")) ==
          table_rows{{"http://loinc.org", "8867-4", "http://unitsofmeasure.org", "/min", "72.0", "NULL", "NULL"}});

    // Exactly the rows the stored content gives, and the Patient has its own.
    CHECK(open_row_count(db, "Observation", "hr-1") == expected_row_count(created.version.json));
    auto patient = db->read("Patient", nhs);
    REQUIRE(patient.ok());
    CHECK(open_row_count(db, "Patient", nhs) == expected_row_count(patient->json));
    CHECK(db.rows(open_rows_sql("search_string", "normalized, exact", nhs, "family")) == table_rows{{"smith", "Smith"}});
}

TEST_CASE("an update closes the old version's rows and adds its own, a deletion closes them, an unchanged "
          "update touches none") {
    store_fixture db;
    add_patient(*db);
    const auto first = must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));
    const auto other = must_write(*db, heart_rate(write_kind::create, "hr-2", heart_rate_json()));
    const auto before_other = index_rows(db, "Observation", "hr-2", which::all, true);

    const auto updated = must_write(*db, heart_rate(write_kind::update, "hr-1", heart_rate_json("8310-5", "37.5")));
    CHECK(updated.version.version_id == 2);
    const std::int64_t v1 = seq_of(db, "Observation", "hr-1", 1), v2 = seq_of(db, "Observation", "hr-1", 2);
    CHECK(db.rows(open_rows_sql("search_token", "code", "hr-1", "code")) == table_rows{{"8310-5"}});
    CHECK(db.rows(open_rows_sql("search_quantity", "value_text", "hr-1", "value-quantity")) == table_rows{{"37.5"}});
    CHECK(open_row_count(db, "Observation", "hr-1") == expected_row_count(updated.version.json));
    // Version 1's rows are all still there, closed at version 2.
    const auto closed_at_v2 = until_seqs_of(db, v1);
    CHECK(static_cast<std::int64_t>(closed_at_v2.size()) == expected_row_count(first.version.json));
    CHECK(closed_at_v2 == std::vector<std::string>(closed_at_v2.size(), std::to_string(v2)));
    CHECK(index_rows(db, "Observation", "hr-2", which::all, true) == before_other); // another resource's rows stay

    // Unchanged: no new version and the very same rows (same rowids: not even deleted and re-inserted).
    const auto snapshot = index_rows(db, {}, {}, which::all, true);
    const auto unchanged = must_write(*db, heart_rate(write_kind::update, "hr-1", heart_rate_json("8310-5", "37.5")));
    CHECK(unchanged.unchanged);
    CHECK(index_rows(db, {}, {}, which::all, true) == snapshot);

    must_write(*db, remove_request("Observation", "hr-1"));
    const std::int64_t v3 = seq_of(db, "Observation", "hr-1", 3);
    CHECK(open_row_count(db, "Observation", "hr-1") == 0);
    CHECK(until_seqs_of(db, v3).empty()); // a deletion marker has no rows
    const auto closed_at_v3 = until_seqs_of(db, v2);
    CHECK(static_cast<std::int64_t>(closed_at_v3.size()) == expected_row_count(updated.version.json));
    CHECK(closed_at_v3 == std::vector<std::string>(closed_at_v3.size(), std::to_string(v3)));
    CHECK(until_seqs_of(db, v1) == closed_at_v2); // closed once, never again
    CHECK(open_row_count(db, "Observation", "hr-2") == expected_row_count(other.version.json));

    // A create after the deletion indexes the new content; the deletion had nothing open to close.
    const auto again = must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json("9279-1")));
    CHECK(again.version.version_id == 4);
    CHECK(db.rows(open_rows_sql("search_token", "code", "hr-1", "code")) == table_rows{{"9279-1"}});
    CHECK(open_row_count(db, "Observation", "hr-1") == expected_row_count(again.version.json));
    CHECK(until_seqs_of(db, v2) == closed_at_v3);
}

namespace {

/// Every index row of a database with its rowid, and every version's JSON, with what depends on the
/// time of writing (the _lastUpdated rows' range, meta.lastUpdated) given relative to the version's
/// own timestamp, so two databases written at different times compare equal.
table_rows timeless_content(const store_fixture& db) {
    table_rows all;
    for (const auto& table : index_tables) {
        const std::string sql =
            table == "search_date"
                ? "SELECT 'search_date', s.rowid, s.seq, s.until_seq, s.type, s.param, "
                  "CASE WHEN s.param = '_lastUpdated' THEN s.low - v.last_updated ELSE s.low END, "
                  "CASE WHEN s.param = '_lastUpdated' THEN s.high - v.last_updated ELSE s.high END "
                  "FROM search_date s JOIN resource_versions v ON v.seq = s.seq ORDER BY s.rowid"
                : "SELECT '" + table + "', rowid, * FROM " + table + " ORDER BY rowid";
        for (auto& row : db.rows(sql))
            all.push_back(std::move(row));
    }
    for (auto& row : db.rows("SELECT seq, type, id, version_id, last_updated, CAST(json AS TEXT) FROM resource_versions "
                             "ORDER BY seq")) {
        const std::string instant = store::format_instant(std::stoll(row.at(4)));
        const auto at = row.at(5).find("\"lastUpdated\":\"" + instant + "\"");
        CHECK(at != std::string::npos);
        if (at != std::string::npos)
            row.at(5).replace(at, 16 + instant.size(), "\"lastUpdated\":\"(the version's)");
        row.at(4) = "(time)";
        all.push_back(std::move(row));
    }
    return all;
}

} // namespace

TEST_CASE("values extracted ahead of the writer (store::prepare_index) give the same versions and index rows, "
          "rowids included, as the writer's own extraction") {
    store_fixture own;
    store_fixture ahead;
    std::size_t prepared = 0;
    for (const auto& resource : search_fixture::hand_written_resources()) {
        for (const write_kind kind : {write_kind::create, write_kind::update}) { // a second version, unchanged
            must_write(*own, [&] {
                write_request request = create_request(resource.type, resource.id, resource.json);
                request.kind = kind;
                return request;
            }());
            write_request request = create_request(resource.type, resource.id, resource.json);
            request.kind = kind;
            ahead->prepare_index(request);
            prepared += request.index ? 1 : 0;
            must_write(*ahead, std::move(request));
        }
        // A real second version: the content changes, so the rows are closed and made again.
        const std::string changed = resource.json.substr(0, resource.json.rfind('}')) + R"(,"language":"en-GB"})";
        must_write(*own, update_request(resource.type, resource.id, changed));
        write_request request = update_request(resource.type, resource.id, changed);
        ahead->prepare_index(request);
        must_write(*ahead, std::move(request));
    }
    CHECK(prepared > 10);
    const table_rows expected = timeless_content(own);
    CHECK(expected.size() > 100);
    CHECK(timeless_content(ahead) == expected);
}

TEST_CASE("values extracted ahead for other content than the write's are not used: the writer extracts its own") {
    store_fixture db;
    add_patient(*db);
    write_request request = heart_rate(write_kind::create, "hr-1", heart_rate_json("8867-4"));
    db->prepare_index(request);
    REQUIRE(request.index);
    request.content = heart_rate_json("8310-5"); // as a transaction's id rewrite would change it
    must_write(*db, std::move(request));
    CHECK(db.rows(open_rows_sql("search_token", "code", "hr-1", "code")) == table_rows{{"8310-5"}});

    write_request renamed = heart_rate(write_kind::create, "hr-2", heart_rate_json());
    db->prepare_index(renamed);
    renamed.id = "hr-3"; // as a conditional update's match would change it
    must_write(*db, std::move(renamed));
    CHECK(db.rows(open_rows_sql("search_token", "code", "hr-3", "_id")) == table_rows{{"hr-3"}});
    CHECK(db.rows(open_rows_sql("search_token", "code", "hr-2", "_id")).empty());
}

TEST_CASE("a type without search parameters (one the server never stores as a record) is stored with no index rows") {
    store_fixture db;
    must_write(*db, create_request("Parameters", "b-1", R"({"resourceType":"Parameters","parameter":[{"name":"x"}]})"));
    CHECK(index_rows(db, "Parameters", "b-1", which::all).empty());
}

TEST_CASE("a write whose content cannot be indexed fails as a fault and stores nothing, in a group") {
    store_fixture db;
    add_patient(*db);
    must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));
    const auto snapshot = index_rows(db, "Observation", "hr-1", which::all, true);
    const auto citizens = db.rows("SELECT * FROM version_citizens ORDER BY seq, nhs_number");

    // Content of another type than the request's: extraction would give another type's parameters.
    const std::string patient_content = patient_json("9000000009", "Jones");
    std::vector<std::future<fhir::result<write_outcome>>> outcomes;
    auto submit = [&](write_request request) {
        auto promise = std::make_shared<std::promise<fhir::result<write_outcome>>>();
        outcomes.push_back(promise->get_future());
        db->submit(std::move(request),
                   [promise](fhir::result<write_outcome> outcome) { promise->set_value(std::move(outcome)); });
    };
    {
        write_lock lock(db.database); // the writes below queue up and commit as one group
        submit(heart_rate(write_kind::create, "hr-2", heart_rate_json("8310-5")));
        submit(create_request("Observation", "wrong", patient_content));
        submit(update_request("Observation", "hr-1", patient_content));
        submit(heart_rate(write_kind::create, "hr-3", heart_rate_json("9279-1")));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::vector<fhir::result<write_outcome>> results;
    for (auto& outcome : outcomes)
        results.push_back(outcome.get());
    REQUIRE(results[0].ok());
    REQUIRE_FALSE(results[1].ok());
    CHECK(results[1].failure().kind == fhir::category::fault);
    REQUIRE_FALSE(results[2].ok());
    CHECK(results[2].failure().kind == fhir::category::fault);
    REQUIRE(results[3].ok());

    // The failed writes left no version and no rows; hr-1 keeps its version 1 and its very rows,
    // still open (the failed update's closing went back with its savepoint).
    CHECK(db->read("Observation", "wrong").failure().kind == fhir::category::not_found);
    CHECK(db.count("SELECT count(*) FROM resource_versions WHERE id = 'wrong'") == 0);
    auto kept = db->read("Observation", "hr-1");
    REQUIRE(kept.ok());
    CHECK(kept->version_id == 1);
    CHECK(index_rows(db, "Observation", "hr-1", which::all, true) == snapshot);
    // The others in the group are indexed, and only their versions got citizens.
    CHECK(open_row_count(db, "Observation", "hr-2") == expected_row_count(results[0]->version.json));
    CHECK(open_row_count(db, "Observation", "hr-3") == expected_row_count(results[3]->version.json));
    CHECK(db.count("SELECT count(*) FROM version_citizens") == static_cast<std::int64_t>(citizens.size()) + 2);
}

TEST_CASE("migrations 3 and 4 index the current live versions of a schema-2 database" * caregate::testing::sqlite_only()) {
    store_fixture db;
    add_patient(*db);
    must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));
    must_write(*db, heart_rate(write_kind::update, "hr-1", heart_rate_json("8310-5"))); // only v2 is indexed
    must_write(*db, heart_rate(write_kind::create, "gone", heart_rate_json()));
    must_write(*db, remove_request("Observation", "gone"));
    must_write(*db, create_request("Parameters", "b-1", R"({"resourceType":"Parameters","parameter":[{"name":"x"}]})"));
    const auto indexed = index_rows(db);
    const auto citizens = db.rows("SELECT * FROM version_citizens ORDER BY seq, nhs_number");
    REQUIRE(indexed.size() > 10);
    REQUIRE(db.count("SELECT count(*) FROM search_token WHERE until_seq IS NOT NULL") > 0);
    db.close();

    // Back to schema 2 exactly: migrations 3 and 4 only added the search tables (and their indexes),
    // search_horizon and version_citizens; migration 8 the erasing and version_targets tables (its
    // triggers it makes again).
    std::string downgrade;
    for (const auto& table : index_tables)
        downgrade += "DROP TABLE " + table + ";";
    REQUIRE(db.execute(downgrade + undo_migrations_8_and_9 +
                       "DROP TABLE search_horizon; DROP TABLE version_citizens; PRAGMA user_version = 2;") == SQLITE_OK);
    REQUIRE(db.count("SELECT count(*) FROM sqlite_master WHERE name LIKE 'search_%' OR name LIKE 'version_%'") == 0);

    db.reopen(); // migration 3 (its own fill, into its own tables), then 4 and 5
    CHECK(db.count("PRAGMA user_version") == newest_sqlite_schema);
    CHECK(index_rows(db) == indexed); // the same open rows the writer made, table by table
    CHECK(db.count("SELECT count(*) FROM search_token WHERE until_seq IS NOT NULL") == 0);
    CHECK(index_rows(db, "Observation", "gone", which::all).empty());
    CHECK(db.rows(open_rows_sql("search_token", "code", "hr-1", "code")) == table_rows{{"8310-5"}});
    CHECK(db.rows("SELECT * FROM version_citizens ORDER BY seq, nhs_number") == citizens);
    // The rows of superseded versions were not made again: no snapshot older than now is complete.
    CHECK(db.count("SELECT purged_through FROM search_horizon") == db.count("SELECT max(seq) FROM resource_versions"));

    // And the writer carries on from there: the migrated rows are closed like the writer's own.
    const std::int64_t v2 = seq_of(db, "Observation", "hr-1", 2);
    must_write(*db, remove_request("Observation", "hr-1"));
    CHECK(open_row_count(db, "Observation", "hr-1") == 0);
    const auto closed = until_seqs_of(db, v2);
    CHECK_FALSE(closed.empty());
    CHECK(closed == std::vector<std::string>(closed.size(), std::to_string(seq_of(db, "Observation", "hr-1", 3))));
}

TEST_CASE("the common token, subject and date lookups at a snapshot are index searches, not table scans" * caregate::testing::sqlite_only()) {
    store_fixture db;
    add_patient(*db);
    must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));
    const std::string at_snapshot = " AND seq <= ?9 AND (until_seq IS NULL OR until_seq > ?9)";

    const std::string by_code = plan_of(db, "SELECT seq FROM search_token WHERE type = 'Observation' AND param = 'code' "
                                            "AND code = ?1 AND system = ?2" + at_snapshot);
    CHECK_MESSAGE(by_code.find("COVERING INDEX search_token_by_code") != std::string::npos, by_code);
    CHECK_MESSAGE(by_code.find("SCAN") == std::string::npos, by_code);

    const std::string by_subject =
        plan_of(db, "SELECT seq FROM search_reference WHERE type = 'Observation' AND param = 'subject' "
                    "AND target_type = 'Patient' AND target_id = ?1" + at_snapshot);
    CHECK_MESSAGE(by_subject.find("COVERING INDEX search_reference_by_target") != std::string::npos, by_subject);
    CHECK_MESSAGE(by_subject.find("SCAN") == std::string::npos, by_subject);

    // Joined to the versions: one seek per match into the resource_versions primary key.
    const std::string joined =
        plan_of(db, "SELECT v.json FROM search_reference s JOIN resource_versions v ON v.seq = s.seq "
                    "WHERE s.type = 'Observation' AND s.param = 'subject' AND s.target_type = 'Patient' "
                    "AND s.target_id = ?1 AND s.seq <= ?9 AND (s.until_seq IS NULL OR s.until_seq > ?9)");
    CHECK_MESSAGE(joined.find("SCAN") == std::string::npos, joined);

    const std::string by_date = plan_of(db, "SELECT seq FROM search_date WHERE type = 'Observation' AND param = 'date' "
                                            "AND low >= ?1 AND low < ?2" + at_snapshot);
    CHECK_MESSAGE(by_date.find("search_date_by_range") != std::string::npos, by_date);
    CHECK_MESSAGE(by_date.find("SCAN") == std::string::npos, by_date);

    const std::string by_composite =
        plan_of(db, "SELECT seq FROM search_composite WHERE type = 'Observation' AND param = 'code-value-quantity' "
                    "AND c1_code = ?1 AND c2_value > ?2" + at_snapshot);
    CHECK_MESSAGE(by_composite.find("search_composite_by_first") != std::string::npos, by_composite);
    CHECK_MESSAGE(by_composite.find("SCAN") == std::string::npos, by_composite);
}

TEST_CASE("the writer's closing and the purge use the version and closed-row indexes, not table scans" * caregate::testing::sqlite_only()) {
    store_fixture db;
    for (const auto& table : index_tables) {
        CAPTURE(table);
        const std::string close = plan_of(db, "UPDATE " + table + " SET until_seq = ?2 WHERE seq = ?1 AND until_seq IS NULL");
        CHECK_MESSAGE(close.find(table + "_by_version") != std::string::npos, close);
        CHECK_MESSAGE(close.find("SCAN") == std::string::npos, close);
        const std::string purge =
            plan_of(db, "DELETE FROM " + table + " WHERE until_seq IS NOT NULL AND until_seq <= ?1");
        const std::string oldest = plan_of(db, "SELECT max(until_seq) FROM (SELECT until_seq FROM " + table +
                                                   " WHERE until_seq IS NOT NULL AND until_seq <= ?1 ORDER BY until_seq LIMIT 5000)");
        CHECK_MESSAGE(oldest.find(table + "_closed") != std::string::npos, oldest);
        CHECK_MESSAGE(oldest.find("SCAN " + table) == std::string::npos, oldest);
        CHECK_MESSAGE(oldest.find("TEMP B-TREE") == std::string::npos, oldest);
        CHECK_MESSAGE(purge.find(table + "_closed") != std::string::npos, purge);
        CHECK_MESSAGE(purge.find("SCAN " + table) == std::string::npos, purge);
        CHECK_MESSAGE(purge.find("TEMP B-TREE") == std::string::npos, purge);
    }
}
