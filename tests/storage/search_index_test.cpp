// Tests for storage/src/search_index.cpp and its use by the writer and by schema migration 3:
// invariant 16 of store.cpp (index rows are exactly those of the current live versions), and the
// query plans the search indexes are there for. Read through a connection of the test's own.
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

const std::vector<std::string> index_tables = {"search_string",   "search_token",  "search_date", "search_reference",
                                               "search_quantity", "search_number", "search_uri"};

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

/// Every row `sql` returns, each column as text ("NULL" for NULL), through a read-only connection.
std::vector<std::vector<std::string>> rows(const store_fixture& db, const std::string& sql) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open_v2(db.options.path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE_MESSAGE(sqlite3_prepare_v2(raw, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK, sqlite3_errmsg(raw));
    std::vector<std::vector<std::string>> found;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        std::vector<std::string> row;
        for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
            const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
            row.emplace_back(text ? text : "NULL");
        }
        found.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    sqlite3_close_v2(raw);
    return found;
}

/// All index rows of one resource (or of all, with empty type), table by table, in a stable order.
std::vector<std::vector<std::string>> index_rows(const store_fixture& db, const std::string& type = {},
                                                 const std::string& id = {}, bool with_rowid = false) {
    std::vector<std::vector<std::string>> all;
    for (const auto& table : index_tables) {
        std::string sql = "SELECT '" + table + "', " + (with_rowid ? "rowid, " : "") + "* FROM " + table;
        if (!type.empty())
            sql += " WHERE type = '" + type + "' AND id = '" + id + "'";
        sql += " ORDER BY type, id, rowid";
        for (auto& row : rows(db, sql))
            all.push_back(std::move(row));
    }
    return all;
}

std::int64_t index_row_count(const store_fixture& db, const std::string& type, const std::string& id) {
    return static_cast<std::int64_t>(index_rows(db, type, id).size());
}

/// How many rows the content should give: every extracted value but composite ones (not indexed yet).
std::int64_t expected_row_count(const std::string& stamped_json) {
    std::int64_t count = 0;
    for (const auto& value : fhir::extract_search_values(stamped_json))
        if (value.type != fhir::search_param_type::composite && value.type != fhir::search_param_type::special)
            ++count;
    return count;
}

void add_patient(store& db) { must_write(db, create_request("Patient", nhs, patient_json(nhs))); }

std::string plan_of(const store_fixture& db, const std::string& sql) {
    std::string plan;
    for (const auto& row : rows(db, "EXPLAIN QUERY PLAN " + sql))
        plan += row.back() + "\n";
    return plan;
}

} // namespace

TEST_CASE("a created Observation has its code, subject, date, quantity, _id and _lastUpdated rows") {
    store_fixture db;
    add_patient(*db);
    const auto created = must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));

    CHECK(rows(db, "SELECT system, code, text FROM search_token WHERE type = 'Observation' AND id = 'hr-1' "
                   "AND param = 'code'") ==
          std::vector<std::vector<std::string>>{{"http://loinc.org", "8867-4", "heart rate"}});
    CHECK(rows(db, "SELECT system, code FROM search_token WHERE id = 'hr-1' AND param = '_id'") ==
          std::vector<std::vector<std::string>>{{"NULL", "hr-1"}});
    CHECK(rows(db, "SELECT target_type, target_id, identifier_system FROM search_reference "
                   "WHERE type = 'Observation' AND id = 'hr-1' AND param = 'subject'") ==
          std::vector<std::vector<std::string>>{{"Patient", nhs, "NULL"}});

    const auto day = fhir::parse_date_time("2026-11-23");
    REQUIRE(day);
    CHECK(rows(db, "SELECT low, high FROM search_date WHERE id = 'hr-1' AND param = 'date'") ==
          std::vector<std::vector<std::string>>{{std::to_string(day->begin), std::to_string(day->end)}});
    // _lastUpdated is the stamped instant: the version's own timestamp, to the microsecond.
    CHECK(rows(db, "SELECT low, high FROM search_date WHERE id = 'hr-1' AND param = '_lastUpdated'") ==
          std::vector<std::vector<std::string>>{
              {std::to_string(created.version.last_updated), std::to_string(created.version.last_updated + 1)}});
    CHECK(rows(db, "SELECT value, value_text, system, code, unit FROM search_quantity WHERE id = 'hr-1' "
                   "AND param = 'value-quantity'") ==
          std::vector<std::vector<std::string>>{{"72.0", "72", "http://unitsofmeasure.org", "/min", "beats/minute"}});

    // Exactly the rows the stored content gives, and the Patient has its own.
    CHECK(index_row_count(db, "Observation", "hr-1") == expected_row_count(created.version.json));
    auto patient = db->read("Patient", nhs);
    REQUIRE(patient.ok());
    CHECK(index_row_count(db, "Patient", nhs) == expected_row_count(patient->json));
    CHECK(rows(db, "SELECT normalized, exact FROM search_string WHERE type = 'Patient' AND param = 'family'") ==
          std::vector<std::vector<std::string>>{{"smith", "Smith"}});
}

TEST_CASE("an update replaces the rows, a deletion removes them, an unchanged update touches none") {
    store_fixture db;
    add_patient(*db);
    must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));
    const auto other = must_write(*db, heart_rate(write_kind::create, "hr-2", heart_rate_json()));
    const auto before_other = index_rows(db, "Observation", "hr-2", true);

    const auto updated = must_write(*db, heart_rate(write_kind::update, "hr-1", heart_rate_json("8310-5", "37.5")));
    CHECK(updated.version.version_id == 2);
    CHECK(rows(db, "SELECT code FROM search_token WHERE id = 'hr-1' AND param = 'code'") ==
          std::vector<std::vector<std::string>>{{"8310-5"}});
    CHECK(rows(db, "SELECT value_text FROM search_quantity WHERE id = 'hr-1' AND param = 'value-quantity'") ==
          std::vector<std::vector<std::string>>{{"37.5"}});
    CHECK(index_row_count(db, "Observation", "hr-1") == expected_row_count(updated.version.json));
    CHECK(index_rows(db, "Observation", "hr-2", true) == before_other); // another resource's rows stay

    // Unchanged: no new version and the very same rows (same rowids: not even deleted and re-inserted).
    const auto snapshot = index_rows(db, {}, {}, true);
    const auto unchanged = must_write(*db, heart_rate(write_kind::update, "hr-1", heart_rate_json("8310-5", "37.5")));
    CHECK(unchanged.unchanged);
    CHECK(index_rows(db, {}, {}, true) == snapshot);

    must_write(*db, remove_request("Observation", "hr-1"));
    CHECK(index_row_count(db, "Observation", "hr-1") == 0);
    CHECK(index_row_count(db, "Observation", "hr-2") == expected_row_count(other.version.json));

    // A create after the deletion indexes the new content.
    const auto again = must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json("9279-1")));
    CHECK(again.version.version_id == 4);
    CHECK(rows(db, "SELECT code FROM search_token WHERE id = 'hr-1' AND param = 'code'") ==
          std::vector<std::vector<std::string>>{{"9279-1"}});
    CHECK(index_row_count(db, "Observation", "hr-1") == expected_row_count(again.version.json));
}

TEST_CASE("a type without search parameters is stored with no index rows") {
    store_fixture db;
    must_write(*db, create_request("Basic", "b-1", R"({"resourceType":"Basic","code":{"text":"x"}})"));
    CHECK(index_row_count(db, "Basic", "b-1") == 0);
}

TEST_CASE("a write whose content cannot be indexed fails as a fault and stores nothing, in a group") {
    store_fixture db;
    add_patient(*db);
    must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));
    const auto snapshot = index_rows(db, "Observation", "hr-1", true);

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
        write_lock lock(db.options.path); // the writes below queue up and commit as one group
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

    // The failed writes left no version and no rows; hr-1 keeps its version 1 and its very rows.
    CHECK(db->read("Observation", "wrong").failure().kind == fhir::category::not_found);
    CHECK(index_row_count(db, "Observation", "wrong") == 0);
    auto kept = db->read("Observation", "hr-1");
    REQUIRE(kept.ok());
    CHECK(kept->version_id == 1);
    CHECK(index_rows(db, "Observation", "hr-1", true) == snapshot);
    // The others in the group are indexed.
    CHECK(index_row_count(db, "Observation", "hr-2") == expected_row_count(results[0]->version.json));
    CHECK(index_row_count(db, "Observation", "hr-3") == expected_row_count(results[3]->version.json));
}

TEST_CASE("migration 3 indexes the current live versions of a schema-2 database") {
    store_fixture db;
    add_patient(*db);
    must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));
    must_write(*db, heart_rate(write_kind::update, "hr-1", heart_rate_json("8310-5"))); // only v2 is indexed
    must_write(*db, heart_rate(write_kind::create, "gone", heart_rate_json()));
    must_write(*db, remove_request("Observation", "gone"));
    must_write(*db, create_request("Basic", "b-1", R"({"resourceType":"Basic","code":{"text":"x"}})"));
    const auto indexed = index_rows(db);
    REQUIRE(indexed.size() > 10);
    db.close();

    // Back to schema 2 exactly: migration 3 only added the search tables (and their indexes).
    std::string downgrade;
    for (const auto& table : index_tables)
        downgrade += "DROP TABLE " + table + ";";
    REQUIRE(db.execute(downgrade + "PRAGMA user_version = 2;") == SQLITE_OK);
    REQUIRE(db.count("SELECT count(*) FROM sqlite_master WHERE name LIKE 'search_%'") == 0);

    db.reopen();
    CHECK(db.count("PRAGMA user_version") == 3);
    CHECK(index_rows(db) == indexed); // the same rows the writer made, table by table
    CHECK(index_row_count(db, "Observation", "gone") == 0);
    CHECK(rows(db, "SELECT code FROM search_token WHERE id = 'hr-1' AND param = 'code'") ==
          std::vector<std::vector<std::string>>{{"8310-5"}});

    // And the writer carries on from there.
    must_write(*db, remove_request("Observation", "hr-1"));
    CHECK(index_row_count(db, "Observation", "hr-1") == 0);
}

TEST_CASE("the common token and subject lookups are index searches, not table scans") {
    store_fixture db;
    add_patient(*db);
    must_write(*db, heart_rate(write_kind::create, "hr-1", heart_rate_json()));

    const std::string by_code = plan_of(
        db, "SELECT id FROM search_token WHERE type = 'Observation' AND param = 'code' AND code = ?1 AND system = ?2");
    CHECK_MESSAGE(by_code.find("COVERING INDEX search_token_by_code") != std::string::npos, by_code);
    CHECK_MESSAGE(by_code.find("SCAN") == std::string::npos, by_code);

    const std::string by_subject =
        plan_of(db, "SELECT id FROM search_reference WHERE type = 'Observation' AND param = 'subject' "
                    "AND target_type = 'Patient' AND target_id = ?1");
    CHECK_MESSAGE(by_subject.find("COVERING INDEX search_reference_by_target") != std::string::npos, by_subject);
    CHECK_MESSAGE(by_subject.find("SCAN") == std::string::npos, by_subject);

    // Joined to the current versions: one seek per match into the resources primary key.
    const std::string joined =
        plan_of(db, "SELECT v.json FROM search_reference s JOIN resources r ON r.type = s.type AND r.id = s.id "
                    "JOIN resource_versions v ON v.seq = r.seq WHERE s.type = 'Observation' AND s.param = 'subject' "
                    "AND s.target_type = 'Patient' AND s.target_id = ?1");
    CHECK_MESSAGE(joined.find("SCAN") == std::string::npos, joined);

    const std::string by_date = plan_of(
        db, "SELECT id FROM search_date WHERE type = 'Observation' AND param = 'date' AND low >= ?1 AND low < ?2");
    CHECK_MESSAGE(by_date.find("search_date_by_range") != std::string::npos, by_date);
    CHECK_MESSAGE(by_date.find("SCAN") == std::string::npos, by_date);
}
