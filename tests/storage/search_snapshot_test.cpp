// Tests for the search index read at a snapshot (schema migrations 4 and 5; engine.hpp invariants 16,
// 17 and 18): the rows a snapshot reads are those of the versions current and live at it, composite
// parameters are indexed by their two components, typed identifiers by :of-type rows that a search
// finds, version_citizens holds each live version's citizens, the writer purges closed rows only
// past the snapshot lifetime and moves the horizon, migration 4 fills a schema-3 database and
// migration 5 a schema-4 one. Read through connections of the test's own.
#include "store_fixture.hpp"

#include "fhir_model/date_time.hpp"
#include "fhir_model/search_query.hpp"
#include "fhir_model/search_values.hpp"
#include "storage/search.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

const std::string nhs = "9000000009";
const std::string other_nhs = "9000000017";

const std::vector<std::string> index_tables = {"search_string",   "search_token",  "search_date",
                                               "search_reference", "search_quantity", "search_number",
                                               "search_uri",       "search_composite"};

using table_rows = std::vector<std::vector<std::string>>;

/// What a snapshot S sees of an index table (the condition every search at S puts on its rows);
/// `alias` prefixes the columns ("s.").
std::string at_snapshot(std::int64_t snapshot, const std::string& alias = {}) {
    const std::string s = std::to_string(snapshot);
    return alias + "seq <= " + s + " AND (" + alias + "until_seq IS NULL OR " + alias + "until_seq > " + s + ")";
}

write_outcome must_write(store& db, write_request request) {
    auto outcome = db.write(std::move(request));
    REQUIRE_MESSAGE(outcome.ok(), (outcome.ok() ? "" : outcome.failure().issues.at(0).diagnostics));
    return std::move(outcome).value();
}

std::string observation_with(const std::string& code, const std::string& value_member) {
    return R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":")" +
           code + R"("}]},"subject":{"reference":"Patient/)" + nhs + R"("},)" + value_member + "}";
}

std::string heart_rate_json(const std::string& code = "8867-4", const std::string& value = "72") {
    return observation_with(code, R"("valueQuantity":{"value":)" + value +
                                      R"(,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"})");
}

write_request observation(write_kind kind, const std::string& id, std::string content) {
    write_request request = create_request("Observation", id, std::move(content));
    request.kind = kind;
    request.citizens.push_back({nhs, "Observation.subject"});
    return request;
}

std::int64_t seq_of(const store_fixture& db, const std::string& type, const std::string& id, std::int64_t version) {
    return db.count("SELECT seq FROM resource_versions WHERE type = '" + type + "' AND id = '" + id +
                    "' AND version_id = " + std::to_string(version));
}

std::int64_t newest_seq(const store_fixture& db) {
    return db.count("SELECT coalesce(max(seq), 0) FROM resource_versions");
}

std::int64_t purged_through(const store_fixture& db) { return db.count("SELECT purged_through FROM search_horizon"); }

std::int64_t closed_rows(const store_fixture& db, const std::string& table) {
    return db.count("SELECT count(*) FROM " + table + " WHERE until_seq IS NOT NULL");
}

std::int64_t all_closed_rows(const store_fixture& db) {
    std::int64_t total = 0;
    for (const auto& table : index_tables)
        total += closed_rows(db, table);
    return total;
}

/// Index rows (all tables) per version seq.
std::map<std::int64_t, std::int64_t> rows_per_seq(const store_fixture& db, const std::string& condition) {
    std::map<std::int64_t, std::int64_t> counts;
    for (const auto& table : index_tables)
        for (const auto& row : db.rows("SELECT seq, count(*) FROM " + table + " WHERE " + condition + " GROUP BY seq"))
            counts[std::stoll(row[0])] += std::stoll(row[1]);
    return counts;
}

/// The rows extraction gives a version's JSON, per parameter type (special ones are not indexed, nor
/// those of union parameters, stored as their parts' rows),
/// and an :of-type row per coding of a typed identifier.
std::int64_t expected_row_count(const std::string& stamped_json) {
    std::int64_t count = 0;
    for (const auto& value : fhir::extract_search_values(stamped_json))
        if (value.type != fhir::search_param_type::special && value.parameter->has_own_values())
            count += 1 + static_cast<std::int64_t>(value.identifier_types.size());
    return count;
}

/// What a snapshot S should see, from the versions alone: for every resource, its newest version
/// at or before S if live, with the rows its content gives (versions that give none left out).
std::map<std::int64_t, std::int64_t> expected_rows_at(const store_fixture& db, std::int64_t snapshot) {
    const std::string s = std::to_string(snapshot);
    std::map<std::int64_t, std::int64_t> counts;
    for (const auto& row : db.rows("SELECT v.seq, v.type, v.json FROM resource_versions v WHERE v.seq <= " + s +
                                   " AND v.deleted = 0 AND NOT EXISTS (SELECT 1 FROM resource_versions n WHERE "
                                   "n.type = v.type AND n.id = v.id AND n.seq > v.seq AND n.seq <= " + s + ")")) {
        if (row[1] == "Parameters")
            continue; // no search parameters
        if (const auto count = expected_row_count(row[2]); count > 0)
            counts[std::stoll(row[0])] = count;
    }
    return counts;
}

void add_patients(store& db) {
    must_write(db, create_request("Patient", nhs, patient_json(nhs)));
    must_write(db, create_request("Patient", other_nhs, patient_json(other_nhs, "Jones")));
}

/// The citizens of every live version, from resource_versions' own column, as (seq, nhs) rows.
table_rows citizens_of_live_versions(const store_fixture& db) {
    table_rows expected;
    for (const auto& row : db.rows("SELECT seq, citizens FROM resource_versions WHERE deleted = 0 ORDER BY seq")) {
        std::set<std::string> citizens;
        std::string_view text = row[1];
        while (!text.empty()) {
            const auto end = text.find('\n');
            citizens.emplace(text.substr(0, end));
            text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        }
        for (const auto& citizen : citizens)
            expected.push_back({row[0], citizen});
    }
    return expected;
}

table_rows version_citizens(const store_fixture& db) {
    return db.rows("SELECT seq, nhs_number FROM version_citizens ORDER BY seq, nhs_number");
}

const std::string v2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"; // identifier types
const std::string typed_nhs = "9000000025", other_typed_nhs = "9000000033";

/// A Patient with its NHS number and two typed identifiers: a hospital number (type MR) and a
/// driving licence number (type DL).
std::string typed_patient_json(const std::string& nhs_number, const std::string& hospital_number,
                               const std::string& licence) {
    auto typed = [](const std::string& type, const std::string& system, const std::string& value) {
        return R"({"type":{"coding":[{"system":")" + v2_0203 + R"(","code":")" + type + R"("}]},"system":")" + system +
               R"(","value":")" + value + R"("})";
    };
    return R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
           nhs_number + R"("},)" + typed("MR", "http://hospital.example.org/mrn", hospital_number) + "," +
           typed("DL", "http://licensing.example.org/driver", licence) + R"(],"name":[{"family":"Smith"}]})";
}

/// The identifier:of-type rows of every version of a resource: seq, system, code, text, until_seq.
table_rows of_type_rows(const store_fixture& db, const std::string& id) {
    return db.rows("SELECT s.seq, s.system, s.code, s.text, s.until_seq FROM search_token s JOIN resource_versions v "
                   "ON v.seq = s.seq WHERE v.id = '" + id + "' AND s.param = 'identifier:of-type' ORDER BY s.seq, s.rowid");
}

/// The ids a Patient search finds, everything visible, on one page.
std::set<std::string> patients_found(store_fixture& db, std::vector<std::pair<std::string, std::string>> parameters) {
    fhir::search_query_options options;
    auto query = fhir::parse_search_query({"Patient"}, parameters, options);
    REQUIRE_MESSAGE(query.ok(), (query.ok() ? std::string() : query.failure().issues.at(0).diagnostics));
    search_request request;
    request.query = &query.value();
    request.visibility.everything = true;
    auto page = db->search(request);
    REQUIRE_MESSAGE(page.ok(), (page.ok() ? std::string() : page.failure().issues.at(0).diagnostics));
    std::set<std::string> ids;
    for (const auto& entry : page->entries)
        ids.insert(entry.version.id);
    return ids;
}

} // namespace

TEST_CASE("a search at snapshot S reads exactly the rows of the versions current and live at S") {
    store_fixture db;
    add_patients(*db);
    must_write(*db, observation(write_kind::create, "hr-1", heart_rate_json("8867-4")));
    must_write(*db, observation(write_kind::create, "hr-2", heart_rate_json("8867-4", "80")));
    must_write(*db, observation(write_kind::update, "hr-1", heart_rate_json("8310-5")));
    must_write(*db, remove_request("Observation", "hr-2"));
    must_write(*db, create_request("Parameters", "b-1", R"({"resourceType":"Parameters","parameter":[{"name":"x"}]})"));
    must_write(*db, observation(write_kind::update, "hr-1", heart_rate_json("8310-5", "37.5")));
    must_write(*db, observation(write_kind::update, "hr-1", heart_rate_json("8310-5", "37.5"))); // unchanged
    must_write(*db, observation(write_kind::create, "hr-2", heart_rate_json("9279-1")));
    must_write(*db, update_request("Patient", other_nhs, patient_json(other_nhs, "Brown")));
    must_write(*db, remove_request("Patient", other_nhs));

    // Nothing has been purged (the lifetime is an hour), so every snapshot is complete.
    REQUIRE(purged_through(db) == 0);
    for (std::int64_t snapshot = 0; snapshot <= newest_seq(db); ++snapshot) {
        CAPTURE(snapshot);
        CHECK(rows_per_seq(db, at_snapshot(snapshot)) == expected_rows_at(db, snapshot));
    }

    // A token search as a page would run it, at three snapshots.
    auto ids_with_code = [&](const std::string& code, std::int64_t snapshot) {
        return db.rows("SELECT v.id, v.version_id FROM search_token s JOIN resource_versions v ON v.seq = s.seq "
                       "WHERE s.type = 'Observation' AND s.param = 'code' AND s.code = '" + code + "' AND " +
                       at_snapshot(snapshot, "s.") + " ORDER BY v.id");
    };
    const std::int64_t hr1_v1 = seq_of(db, "Observation", "hr-1", 1), hr1_v2 = seq_of(db, "Observation", "hr-1", 2);
    const std::int64_t hr2_gone = seq_of(db, "Observation", "hr-2", 2);
    CHECK(ids_with_code("8867-4", hr1_v1) == table_rows{{"hr-1", "1"}});
    CHECK(ids_with_code("8867-4", hr1_v2 - 1) == table_rows{{"hr-1", "1"}, {"hr-2", "1"}});
    CHECK(ids_with_code("8867-4", hr1_v2) == table_rows{{"hr-2", "1"}});
    CHECK(ids_with_code("8867-4", hr2_gone) == table_rows{});
    CHECK(ids_with_code("8310-5", hr2_gone) == table_rows{{"hr-1", "2"}});
    CHECK(ids_with_code("8310-5", newest_seq(db)) == table_rows{{"hr-1", "3"}});
}

TEST_CASE("composite parameters are indexed by their two components") {
    store_fixture db;
    add_patients(*db);
    auto component = [](const std::string& code, const std::string& value) {
        return R"({"code":{"coding":[{"system":"http://loinc.org","code":")" + code + R"("}]},"valueQuantity":{"value":)" +
               value + R"(,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}})";
    };
    const std::string blood_pressure =
        R"({"resourceType":"Observation","status":"final",)"
        R"("code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/)" +
        nhs + R"("},"component":[)" + component("8480-6", "107") + "," + component("8462-4", "60") + "]}";
    const std::string smoking_status =
        R"("valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"77176002"}]})";
    std::vector<std::string> stored;
    auto create = [&](const std::string& id, std::string content) {
        stored.push_back(must_write(*db, observation(write_kind::create, id, std::move(content))).version.json);
    };
    create("bp", blood_pressure);
    create("hr", heart_rate_json());
    create("note", observation_with("8251-1", R"("valueString":"Café  Noir")"));
    create("smoker", observation_with("72166-2", smoking_status));

    auto composite = [&](const std::string& id, const std::string& param) {
        return db.rows("SELECT s.c1_system, s.c1_code, s.c2_system, s.c2_code, s.c2_value, s.c2_low, s.c2_high, s.c2_text "
                       "FROM search_composite s JOIN resource_versions v ON v.seq = s.seq WHERE v.id = '" + id +
                       "' AND s.param = '" + param + "' AND s.until_seq IS NULL ORDER BY s.rowid");
    };
    const std::string loinc = "http://loinc.org", ucum = "http://unitsofmeasure.org";
    // Each component's code with its own value: never systolic with 60.
    CHECK(composite("bp", "component-code-value-quantity") ==
          table_rows{{loinc, "8480-6", ucum, "mm[Hg]", "107.0", "NULL", "NULL", "NULL"},
                     {loinc, "8462-4", ucum, "mm[Hg]", "60.0", "NULL", "NULL", "NULL"}});
    CHECK(composite("bp", "code-value-quantity").empty()); // no Observation.value
    CHECK(composite("hr", "code-value-quantity") ==
          table_rows{{loinc, "8867-4", ucum, "/min", "72.0", "NULL", "NULL", "NULL"}});
    CHECK(composite("note", "code-value-string") ==
          table_rows{{loinc, "8251-1", "NULL", "NULL", "NULL", "NULL", "NULL", "cafe noir"}});
    CHECK(composite("smoker", "code-value-concept") ==
          table_rows{{loinc, "72166-2", "http://snomed.info/sct", "77176002", "NULL", "NULL", "NULL", "NULL"}});

    // Every composite value extraction gives has its row, but a union's (its parts' rows are its own).
    std::int64_t composites = 0;
    for (const auto& json : stored)
        for (const auto& value : fhir::extract_search_values(json))
            composites += value.type == fhir::search_param_type::composite && value.parameter->has_own_values();
    CHECK(db.count("SELECT count(*) FROM search_composite WHERE type <> 'Patient'") == composites);
    CHECK(composites > 4);
}

// Observation code-value-date's second component is `value.as(DateTime) | value.as(Period)` (a cast
// to System.DateTime takes a FHIR dateTime), and DocumentReference relationship's first component is
// the reference `target` (R4 pairs the two components' expressions crosswise; the generator pairs
// each with its own parameter's path).
TEST_CASE("a date second component and a reference first component are indexed") {
    store_fixture db;
    add_patients(*db);
    must_write(*db, observation(write_kind::create, "onset", observation_with("11368-8", R"("valueDateTime":"2026-11-23")")));
    must_write(*db, create_request("DocumentReference", "doc-1",
                                   R"({"resourceType":"DocumentReference","status":"current",)"
                                   R"("relatesTo":[{"code":"replaces","target":{"reference":"DocumentReference/doc-0"}}],)"
                                   R"("content":[{"attachment":{"url":"http://example.org/letter.pdf"}}]})"));
    auto composite = [&](const std::string& id, const std::string& param) {
        return db.rows("SELECT s.c1_system, s.c1_code, s.c2_system, s.c2_code, s.c2_value, s.c2_low, s.c2_high, s.c2_text "
                       "FROM search_composite s JOIN resource_versions v ON v.seq = s.seq WHERE v.id = '" + id +
                       "' AND s.param = '" + param + "' AND s.until_seq IS NULL ORDER BY s.rowid");
    };
    const auto day = fhir::parse_date_time("2026-11-23");
    REQUIRE(day);
    CHECK(composite("onset", "code-value-date") ==
          table_rows{{"http://loinc.org", "11368-8", "NULL", "NULL", "NULL", std::to_string(day->begin),
                      std::to_string(day->end), "NULL"}});
    // A reference first: "Type/id" in c1_code, no system.
    CHECK(composite("doc-1", "relationship") ==
          table_rows{{"NULL", "DocumentReference/doc-0", "NULL", "replaces", "NULL", "NULL", "NULL", "NULL"}});
}

TEST_CASE("version_citizens holds the citizens of every live version, and never changes") {
    store_fixture db;
    add_patients(*db);
    write_request both = observation(write_kind::create, "shared", heart_rate_json());
    both.citizens.push_back({other_nhs, "Observation.performer[0]"});
    both.citizens.push_back({nhs, "Observation.focus[0]"}); // twice: recorded once
    must_write(*db, std::move(both));
    const std::int64_t v1 = seq_of(db, "Observation", "shared", 1);
    CHECK(db.rows("SELECT nhs_number FROM version_citizens WHERE seq = " + std::to_string(v1) + " ORDER BY nhs_number") ==
          table_rows{{nhs}, {other_nhs}});
    // A Patient's citizen is itself.
    CHECK(db.rows("SELECT nhs_number FROM version_citizens WHERE seq = " +
                  std::to_string(seq_of(db, "Patient", other_nhs, 1))) == table_rows{{other_nhs}});

    write_request one = update_request("Observation", "shared", heart_rate_json("8310-5"));
    one.citizens.push_back({other_nhs, "Observation.subject"});
    must_write(*db, std::move(one));
    const auto before = version_citizens(db);
    must_write(*db, remove_request("Observation", "shared"));
    must_write(*db, remove_request("Patient", other_nhs));
    // Deletion markers record none, and the versions they supersede keep theirs.
    CHECK(version_citizens(db) == before);
    CHECK(db.count("SELECT count(*) FROM version_citizens WHERE seq = " + std::to_string(newest_seq(db))) == 0);
    CHECK(db.rows("SELECT nhs_number FROM version_citizens WHERE seq = " +
                  std::to_string(seq_of(db, "Observation", "shared", 2))) == table_rows{{other_nhs}});
    CHECK(version_citizens(db) == citizens_of_live_versions(db));
}

TEST_CASE("the writer purges rows closed before the snapshot lifetime, at most once a second, and moves the horizon") {
    store_fixture db; // a snapshot lifetime of an hour
    add_patients(*db);
    const auto first = must_write(*db, observation(write_kind::create, "hr-1", heart_rate_json()));
    const auto second = must_write(*db, observation(write_kind::update, "hr-1", heart_rate_json("8310-5")));
    const auto third = must_write(*db, observation(write_kind::update, "hr-1", heart_rate_json("9279-1")));
    const std::int64_t v1 = seq_of(db, "Observation", "hr-1", 1), v2 = seq_of(db, "Observation", "hr-1", 2),
                       v3 = seq_of(db, "Observation", "hr-1", 3);
    // A purge a second later still keeps them: no version is an hour old.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    must_write(*db, create_request("Parameters", "b-1", R"({"resourceType":"Parameters","parameter":[{"name":"x"}]})"));
    CHECK(db.count("SELECT count(*) FROM search_token WHERE seq = " + std::to_string(v1)) > 0);
    CHECK(all_closed_rows(db) == expected_row_count(first.version.json) + expected_row_count(second.version.json));
    CHECK(purged_through(db) == 0);

    // With no lifetime at all, the next group purges every closed row.
    db.close();
    db.options.snapshot_lifetime = std::chrono::seconds(0);
    db.reopen();
    const auto open_before = rows_per_seq(db, "until_seq IS NULL");
    const auto citizens_before = version_citizens(db);
    const auto started = std::chrono::steady_clock::now();
    must_write(*db, observation(write_kind::create, "hr-2", heart_rate_json()));
    CHECK(all_closed_rows(db) == 0);
    CHECK(rows_per_seq(db, "seq IN (" + std::to_string(v1) + ", " + std::to_string(v2) + ")").empty());
    CHECK(purged_through(db) == v3); // the largest until_seq deleted: version 2's rows, closed by 3
    // The open rows, the versions and their citizens are untouched.
    auto open_after = rows_per_seq(db, "until_seq IS NULL");
    open_after.erase(seq_of(db, "Observation", "hr-2", 1));
    CHECK(open_after == open_before);
    CHECK(open_after.at(v3) == expected_row_count(third.version.json));
    CHECK(version_citizens(db).size() == citizens_before.size() + 1);
    auto history = db->history(history_of("Observation", "hr-1"));
    REQUIRE(history.ok());
    CHECK(history->entries.size() == 3);

    // Within the second: version 3's rows are closed and stay (no purge has been due since).
    must_write(*db, observation(write_kind::update, "hr-1", heart_rate_json("8462-4")));
    const std::int64_t v4 = seq_of(db, "Observation", "hr-1", 4);
    if (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(1000)) {
        CHECK(closed_rows(db, "search_token") > 0);
        CHECK(purged_through(db) == v3);
    }
    // A second later, the next write's group purges them.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    must_write(*db, observation(write_kind::create, "hr-3", heart_rate_json()));
    CHECK(all_closed_rows(db) == 0);
    CHECK(purged_through(db) == v4);
    CHECK(rows_per_seq(db, at_snapshot(purged_through(db))) == expected_rows_at(db, purged_through(db)));
}

TEST_CASE("a purge deletes the 5000 longest-closed rows of a table and the rest of their last version's, no more") {
    // 600 codings: code gives 600 token rows a version, code-value-quantity 600 composite rows (their
    // unions, combo-code and combo-code-value-quantity, none); eleven closed versions hold more than
    // 5000 of each, the 5000th closed by version 10.
    std::string codings;
    for (int i = 0; i < 600; ++i)
        codings += std::string(i ? "," : "") + R"({"system":"http://example.org/codes","code":"c)" + std::to_string(i) + R"("})";
    auto content = [&](int value) {
        return R"({"resourceType":"Observation","status":"final","code":{"coding":[)" + codings +
               R"(]},"subject":{"reference":"Patient/)" + nhs + R"("},"valueQuantity":{"value":)" + std::to_string(value) +
               R"(,"system":"http://unitsofmeasure.org","code":"/min"}})";
    };
    store_fixture db;
    add_patients(*db);
    must_write(*db, observation(write_kind::create, "many", content(1)));
    for (int value = 2; value <= 12; ++value)
        must_write(*db, observation(write_kind::update, "many", content(value)));
    const std::int64_t v12 = seq_of(db, "Observation", "many", 12);

    std::map<std::string, std::int64_t> closed_before;
    std::map<std::string, std::int64_t> boundary; // the until_seq of the 5000th longest-closed row
    std::map<std::string, std::int64_t> through;  // how many rows are closed at or before it
    std::map<std::string, std::int64_t> last_version_rows; // how many are closed at it
    for (const auto& table : index_tables) {
        closed_before[table] = closed_rows(db, table);
        if (closed_before[table] >= 5000) {
            boundary[table] = db.count("SELECT until_seq FROM " + table +
                                       " WHERE until_seq IS NOT NULL ORDER BY until_seq LIMIT 1 OFFSET 4999");
            through[table] = db.count("SELECT count(*) FROM " + table +
                                      " WHERE until_seq IS NOT NULL AND until_seq <= " + std::to_string(boundary[table]));
            last_version_rows[table] =
                db.count("SELECT count(*) FROM " + table + " WHERE until_seq = " + std::to_string(boundary[table]));
        }
    }
    REQUIRE(closed_before["search_token"] > 5000);
    REQUIRE(closed_before["search_composite"] > 5000);

    db.close();
    db.options.snapshot_lifetime = std::chrono::seconds(0);
    db.reopen();
    must_write(*db, create_request("Parameters", "b-1", R"({"resourceType":"Parameters","parameter":[{"name":"x"}]})"));
    for (const auto& table : index_tables) {
        CAPTURE(table);
        if (boundary.count(table)) {
            // The 5000 and the rest of the version that closed the 5000th (about 600 rows a version
            // here), and none closed after that version.
            CHECK(through[table] >= 5000);
            CHECK(through[table] - last_version_rows[table] < 5000);
            CHECK(closed_rows(db, table) == closed_before[table] - through[table]);
            CHECK(closed_rows(db, table) > 0);
            CHECK(db.count("SELECT coalesce(min(until_seq), 0) FROM " + table + " WHERE until_seq IS NOT NULL") >
                  boundary[table]);
        } else {
            CHECK(closed_rows(db, table) == 0);
        }
    }
    // The horizon covers every row deleted; what is left over is below it too, and no snapshot
    // at or after it needs those.
    // The tables with fewer than 5000 closed rows gave all of theirs, up to version 12's closing.
    CHECK(purged_through(db) == v12);
    CHECK(rows_per_seq(db, at_snapshot(v12)) == expected_rows_at(db, v12));

    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    must_write(*db, create_request("Parameters", "b-2", R"({"resourceType":"Parameters","parameter":[{"name":"y"}]})"));
    CHECK(all_closed_rows(db) == 0);
    CHECK(purged_through(db) == v12);
}

// PostgreSQL's migration 6 (no index on the search tables' rowid): a database of schema 5, its
// rowid indexes there, loses them, and its closed rows are purged as before.
TEST_CASE("a PostgreSQL database of schema 5 loses the search tables' rowid indexes and still purges" *
          caregate::testing::several_nodes()) {
    store_fixture db;
    add_patients(*db);
    must_write(*db, observation(write_kind::create, "o-1", heart_rate_json("8867-4", "60")));
    must_write(*db, observation(write_kind::update, "o-1", heart_rate_json("8867-4", "61")));
    const std::int64_t v2 = seq_of(db, "Observation", "o-1", 2);
    db.close();
    std::string schema_5 = "UPDATE caregate_schema SET version = 5; ";
    for (const auto& table : index_tables)
        schema_5 += "CREATE INDEX " + table + "_by_rowid ON " + table + " (rowid); ";
    REQUIRE(db.execute(schema_5) == SQLITE_OK);
    REQUIRE(db.count("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'search_%_by_rowid'") == 8);

    db.options.snapshot_lifetime = std::chrono::seconds(0);
    db.reopen();
    CHECK(db.count("SELECT version FROM caregate_schema") == newest_postgresql_schema);
    CHECK(db.count("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'search_%_by_rowid'") == 0);
    REQUIRE(all_closed_rows(db) > 0);
    must_write(*db, create_request("Parameters", "b-1", R"({"resourceType":"Parameters","parameter":[{"name":"x"}]})"));
    CHECK(all_closed_rows(db) == 0);
    CHECK(purged_through(db) == v2);
}

// SQLite's migration 10 and PostgreSQL's 7: a database of the schema before them loses the index of a
// resource's versions by seq, the index of references by their target alone, the rows of union
// parameters and narrowings (a narrowed parameter's rows gaining the target type its narrowing's rows
// showed) and citizen_links; a resource's history still comes newest first, page by page, from its
// unique key.
TEST_CASE("a database of the previous schema loses two indexes, the union rows and citizen_links; history still pages") {
    store_fixture db;
    add_patients(*db);
    for (int value = 60; value < 65; ++value)
        must_write(*db, observation(value == 60 ? write_kind::create : write_kind::update, "o-1",
                                    heart_rate_json("8867-4", std::to_string(value))));
    db.close();
    const std::string indexes = "('resource_versions_by_resource', 'search_reference_by_target_any_source')";
    const std::string add_them =
        "CREATE INDEX resource_versions_by_resource ON resource_versions (type, id, seq); "
        "CREATE INDEX search_reference_by_target_any_source ON search_reference "
        "(target_id, target_type, type, param, seq, until_seq); "
        // The rows the writer made for combo-code, a union of code and component-code, before.
        "INSERT INTO search_token (seq, until_seq, type, param, system, code, text) "
        "SELECT seq, until_seq, type, 'combo-code', system, code, text FROM search_token WHERE param = 'code'; "
        "CREATE TABLE citizen_links (type text NOT NULL, id text NOT NULL, nhs_number text NOT NULL); "
        // A subject at an absolute URL, as the writer recorded it before (no target type), with the
        // row it made for patient, a narrowing of subject to Patients.
        "INSERT INTO search_reference (seq, until_seq, type, param, url) SELECT seq, until_seq, type, 'subject', "
        "'https://other.example/fhir/Patient/1' FROM search_reference WHERE param = 'subject'; "
        "INSERT INTO search_reference (seq, until_seq, type, param, url) SELECT seq, until_seq, type, 'patient', url "
        "FROM search_reference WHERE param = 'subject' AND url IS NOT NULL; ";
    const std::string narrowing_rows = "SELECT count(*) FROM search_reference WHERE param = 'patient'";
    const std::string typed_url_rows = "SELECT count(*) FROM search_reference WHERE param = 'subject' AND url IS NOT NULL "
                                       "AND target_type = 'Patient'";
    const std::string links_table = db.scratch
                                        ? "SELECT count(*) FROM pg_tables WHERE tablename = 'citizen_links'"
                                        : "SELECT count(*) FROM sqlite_master WHERE name = 'citizen_links'";
    const std::string union_rows = "SELECT count(*) FROM search_token WHERE param = 'combo-code'";
    const std::string counted = db.scratch ? "SELECT count(*) FROM pg_indexes WHERE indexname IN " + indexes
                                           : "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN " + indexes;
    REQUIRE(db.execute(add_them + (db.scratch ? "UPDATE caregate_schema SET version = 6" : "PRAGMA user_version = 9")) ==
            SQLITE_OK);
    REQUIRE(db.count(counted) == 2);
    REQUIRE(db.count(union_rows) > 0);
    REQUIRE(db.count(links_table) == 1);
    const std::int64_t url_rows = db.count(narrowing_rows);
    REQUIRE(url_rows > 0);
    REQUIRE(db.count(typed_url_rows) == 0);

    db.reopen();
    CHECK(db.count(db.scratch ? "SELECT version FROM caregate_schema" : "PRAGMA user_version") ==
          (db.scratch ? newest_postgresql_schema : newest_sqlite_schema));
    CHECK(db.count(counted) == 0);
    CHECK(db.count(union_rows) == 0);
    CHECK(db.count(links_table) == 0);
    CHECK(db.count(narrowing_rows) == 0);
    CHECK(db.count(typed_url_rows) == url_rows);
    std::vector<std::int64_t> versions;
    history_query query = history_of("Observation", "o-1");
    query.count = 2;
    for (;;) {
        auto page = db->history(query);
        REQUIRE(page.ok());
        for (const auto& entry : page->entries)
            versions.push_back(entry.version_id);
        if (!page->next)
            break;
        query.before = page->next;
    }
    CHECK(versions == std::vector<std::int64_t>{5, 4, 3, 2, 1});
}

TEST_CASE("the purge horizon is one seek down resource_versions by lastUpdated" * caregate::testing::sqlite_only()) {
    store_fixture db;
    const auto plan = db.rows("EXPLAIN QUERY PLAN SELECT seq FROM resource_versions WHERE last_updated <= ?1 "
                              "ORDER BY last_updated DESC, seq DESC LIMIT 1");
    std::string text;
    for (const auto& row : plan)
        text += row.back() + "\n";
    CHECK_MESSAGE(text.find("resource_versions_by_last_updated") != std::string::npos, text);
    CHECK_MESSAGE(text.find("TEMP B-TREE") == std::string::npos, text);
    CHECK_MESSAGE(text.find("SCAN") == std::string::npos, text);
}

TEST_CASE("migration 4 turns a schema-3 database into one readable at a snapshot" * caregate::testing::sqlite_only()) {
    store_fixture db;
    add_patients(*db);
    must_write(*db, observation(write_kind::create, "hr-1", heart_rate_json()));
    must_write(*db, observation(write_kind::update, "hr-1", heart_rate_json("8310-5")));
    must_write(*db, observation(write_kind::create, "gone", heart_rate_json()));
    must_write(*db, remove_request("Observation", "gone"));
    must_write(*db, create_request("Parameters", "b-1", R"({"resourceType":"Parameters","parameter":[{"name":"x"}]})"));
    must_write(*db, create_request("DocumentReference", "doc-1",
                                   R"({"resourceType":"DocumentReference","status":"current",)"
                                   R"("relatesTo":[{"code":"replaces","target":{"reference":"DocumentReference/doc-0"}}],)"
                                   R"("content":[{"attachment":{"url":"http://example.org/letter.pdf"}}]})"));
    // Its :of-type rows come from migration 5, the others from 4: made once each.
    must_write(*db, create_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "12345", "SMITH701234")));
    const auto open_rows = rows_per_seq(db, "until_seq IS NULL");
    const auto citizens = version_citizens(db);
    const std::int64_t newest = newest_seq(db);
    REQUIRE(all_closed_rows(db) > 0);
    db.close();

    // Schema 3 as migration 3 made it: the versions as they are, the search tables keyed by (type,
    // id) holding one stale row that migration 4 must not carry over, and none of migration 4's.
    std::string downgrade;
    for (const auto& table : index_tables)
        downgrade += "DROP TABLE " + table + ";";
    downgrade += R"sql(
DROP TABLE search_horizon; DROP TABLE version_citizens;
CREATE TABLE search_string (type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, normalized TEXT NOT NULL, exact TEXT NOT NULL);
CREATE INDEX search_string_by_resource ON search_string (type, id);
CREATE TABLE search_token (type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, system TEXT, code TEXT, text TEXT);
CREATE INDEX search_token_by_resource ON search_token (type, id);
CREATE TABLE search_date (type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL);
CREATE INDEX search_date_by_resource ON search_date (type, id);
CREATE TABLE search_reference (type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, target_type TEXT, target_id TEXT,
    url TEXT, identifier_system TEXT, identifier_value TEXT);
CREATE INDEX search_reference_by_resource ON search_reference (type, id);
CREATE TABLE search_quantity (type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, value REAL NOT NULL,
    value_text TEXT NOT NULL, system TEXT, code TEXT, unit TEXT);
CREATE INDEX search_quantity_by_resource ON search_quantity (type, id);
CREATE TABLE search_number (type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, value REAL NOT NULL, value_text TEXT NOT NULL);
CREATE INDEX search_number_by_resource ON search_number (type, id);
CREATE TABLE search_uri (type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, uri TEXT NOT NULL);
CREATE INDEX search_uri_by_resource ON search_uri (type, id);
INSERT INTO search_token (type, id, param, system, code, text) VALUES ('Observation', 'stale', 'code', NULL, 'x', NULL);
PRAGMA user_version = 3;
)sql";
    REQUIRE(db.execute(downgrade + undo_migrations_8_and_9) == SQLITE_OK);
    REQUIRE(db.count("SELECT count(*) FROM sqlite_master WHERE name IN ('search_composite', 'search_horizon', "
                     "'version_citizens')") == 0);

    db.reopen(); // migration 4, then 5
    CHECK(db.count("PRAGMA user_version") == newest_sqlite_schema);
    CHECK(rows_per_seq(db, "until_seq IS NULL") == open_rows); // the current live versions' rows, open
    CHECK(all_closed_rows(db) == 0);                            // superseded versions' rows were never kept
    CHECK(db.count("SELECT count(*) FROM search_token WHERE code = 'x'") == 0);
    CHECK(db.count("SELECT count(*) FROM search_composite WHERE param = 'code-value-quantity'") == 1); // hr-1 v2
    CHECK(version_citizens(db) == citizens); // every live version's, superseded ones too
    CHECK(version_citizens(db) == citizens_of_live_versions(db));
    CHECK(purged_through(db) == newest); // no snapshot before the migration is complete
    CHECK(rows_per_seq(db, at_snapshot(newest)) == expected_rows_at(db, newest));

    // The writer carries on: the migrated rows are closed by the next version.
    const std::int64_t v2 = seq_of(db, "Observation", "hr-1", 2);
    must_write(*db, observation(write_kind::update, "hr-1", heart_rate_json("9279-1")));
    const std::int64_t v3 = seq_of(db, "Observation", "hr-1", 3);
    CHECK(db.count("SELECT count(*) FROM search_token WHERE seq = " + std::to_string(v2) + " AND until_seq = " +
                   std::to_string(v3)) > 0);
    CHECK(db.count("SELECT count(*) FROM search_token WHERE seq = " + std::to_string(v2) + " AND until_seq IS NULL") == 0);
    for (std::int64_t snapshot = newest; snapshot <= newest_seq(db); ++snapshot)
        CHECK(rows_per_seq(db, at_snapshot(snapshot)) == expected_rows_at(db, snapshot));
}

TEST_CASE("a typed identifier has an :of-type row per type coding, written and closed with its version") {
    store_fixture db;
    must_write(*db, create_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "12345", "SMITH701234")));
    const std::string v1 = std::to_string(seq_of(db, "Patient", typed_nhs, 1));
    // The type's system and code, and the identifier's value as written (not folded).
    CHECK(of_type_rows(db, typed_nhs) == table_rows{{v1, v2_0203, "MR", "12345", "NULL"},
                                                    {v1, v2_0203, "DL", "SMITH701234", "NULL"}});
    // The identifier's own rows are as they were: one per identifier, its system and value.
    CHECK(db.rows("SELECT system, code FROM search_token WHERE param = 'identifier' ORDER BY rowid") ==
          table_rows{{"https://fhir.nhs.uk/Id/nhs-number", typed_nhs},
                     {"http://hospital.example.org/mrn", "12345"},
                     {"http://licensing.example.org/driver", "SMITH701234"}});
    // Only typed identifiers have them: a Patient with just its NHS number has none.
    must_write(*db, create_request("Patient", nhs, patient_json(nhs)));
    CHECK(of_type_rows(db, nhs).empty());

    must_write(*db, update_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "67890", "SMITH701234")));
    const std::string v2 = std::to_string(seq_of(db, "Patient", typed_nhs, 2));
    must_write(*db, update_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "67890", "SMITH701234"))); // unchanged
    must_write(*db, remove_request("Patient", typed_nhs));
    const std::string gone = std::to_string(seq_of(db, "Patient", typed_nhs, 3));
    CHECK(of_type_rows(db, typed_nhs) == table_rows{{v1, v2_0203, "MR", "12345", v2},
                                                    {v1, v2_0203, "DL", "SMITH701234", v2},
                                                    {v2, v2_0203, "MR", "67890", gone},
                                                    {v2, v2_0203, "DL", "SMITH701234", gone}});
    for (std::int64_t snapshot = 0; snapshot <= newest_seq(db); ++snapshot) {
        CAPTURE(snapshot);
        CHECK(rows_per_seq(db, at_snapshot(snapshot)) == expected_rows_at(db, snapshot));
    }

    // Purged like the version's other rows.
    db.close();
    db.options.snapshot_lifetime = std::chrono::seconds(0);
    db.reopen();
    must_write(*db, create_request("Parameters", "b-1", R"({"resourceType":"Parameters","parameter":[{"name":"x"}]})"));
    CHECK(of_type_rows(db, typed_nhs).empty());
    CHECK(purged_through(db) == std::stoll(gone));
}

TEST_CASE("identifier:of-type finds a Patient by the type and value of one identifier, and not by another type") {
    store_fixture db;
    must_write(*db, create_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "12345", "SMITH701234")));
    // The other has 12345 too, as a licence number.
    must_write(*db, create_request("Patient", other_typed_nhs, typed_patient_json(other_typed_nhs, "67890", "12345")));
    must_write(*db, create_request("Patient", nhs, patient_json(nhs)));
    auto of_type = [](const std::string& value) { return std::pair<std::string, std::string>{"identifier:of-type", value}; };
    using ids = std::set<std::string>;

    // As the driver of the match.
    CHECK(patients_found(db, {of_type(v2_0203 + "|MR|12345")}) == ids{typed_nhs});
    CHECK(patients_found(db, {of_type(v2_0203 + "|DL|12345")}) == ids{other_typed_nhs});
    CHECK(patients_found(db, {of_type(v2_0203 + "|DL|SMITH701234")}) == ids{typed_nhs});
    CHECK(patients_found(db, {of_type(v2_0203 + "|MR|SMITH701234")}).empty()); // a value of another type
    CHECK(patients_found(db, {of_type(v2_0203 + "|DL|smith701234")}).empty());  // the value as written
    CHECK(patients_found(db, {of_type("http://example.org/types|MR|12345")}).empty());
    CHECK(patients_found(db, {of_type(v2_0203 + "|MR|12345," + v2_0203 + "|MR|67890")}) == ids{typed_nhs, other_typed_nhs});
    // The identifier's own system|value still finds it, and not through the type.
    CHECK(patients_found(db, {{"identifier", "http://hospital.example.org/mrn|12345"}}) == ids{typed_nhs});
    CHECK(patients_found(db, {{"identifier", v2_0203 + "|MR"}}).empty());

    // As a condition on versions another clause drives (_id ranks as high and comes first).
    CHECK(patients_found(db, {{"_id", typed_nhs}, of_type(v2_0203 + "|MR|12345")}) == ids{typed_nhs});
    CHECK(patients_found(db, {{"_id", other_typed_nhs}, of_type(v2_0203 + "|MR|12345")}).empty());
    CHECK(patients_found(db, {{"family", "smith"}, {"_id", other_typed_nhs + "," + typed_nhs},
                              of_type(v2_0203 + "|DL|12345")}) == ids{other_typed_nhs});

    // A new version with another hospital number: the old one no longer finds it.
    must_write(*db, update_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "99999", "SMITH701234")));
    CHECK(patients_found(db, {of_type(v2_0203 + "|MR|12345")}).empty());
    CHECK(patients_found(db, {of_type(v2_0203 + "|MR|99999")}) == ids{typed_nhs});
}

TEST_CASE("migration 5 adds the :of-type rows of the current live versions to a schema-4 database" * caregate::testing::sqlite_only()) {
    store_fixture db;
    add_patients(*db);
    must_write(*db, create_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "12345", "SMITH701234")));
    must_write(*db, update_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "67890", "SMITH701234")));
    must_write(*db, create_request("Patient", other_typed_nhs, typed_patient_json(other_typed_nhs, "24680", "12345")));
    must_write(*db, remove_request("Patient", other_typed_nhs));
    must_write(*db, observation(write_kind::create, "hr-1", heart_rate_json()));
    const auto open_rows = rows_per_seq(db, "until_seq IS NULL");
    const auto open_of_type = db.rows("SELECT seq, system, code, text FROM search_token WHERE param LIKE '%:of-type' "
                                      "AND until_seq IS NULL ORDER BY seq, rowid");
    const std::string other_rows = "SELECT seq, until_seq, param, system, code, text FROM search_token "
                                   "WHERE param NOT LIKE '%:of-type' ORDER BY rowid";
    const auto before = db.rows(other_rows);
    const std::int64_t newest = newest_seq(db);
    REQUIRE(open_of_type.size() == 2); // the typed Patient's version 2; the other's were closed by its deletion
    REQUIRE(db.count("SELECT count(*) FROM search_token WHERE param LIKE '%:of-type' AND until_seq IS NOT NULL") == 4);
    REQUIRE(purged_through(db) == 0);
    db.close();

    // Schema 4 as migration 4 left it: everything as it is but the :of-type rows.
    REQUIRE(db.execute("DELETE FROM search_token WHERE param LIKE '%:of-type'; DROP INDEX search_date_by_high; " +
                       undo_migrations_8_and_9 + "PRAGMA user_version = 4;") == SQLITE_OK);

    db.reopen();
    CHECK(db.count("PRAGMA user_version") == newest_sqlite_schema);
    CHECK(db.rows("SELECT seq, system, code, text FROM search_token WHERE param LIKE '%:of-type' "
                  "AND until_seq IS NULL ORDER BY seq, rowid") == open_of_type);
    CHECK(db.count("SELECT count(*) FROM search_token WHERE param LIKE '%:of-type' AND until_seq IS NOT NULL") == 0);
    CHECK(db.rows(other_rows) == before); // nothing else made again, nothing lost
    CHECK(rows_per_seq(db, "until_seq IS NULL") == open_rows);
    // The superseded versions' :of-type rows were not made: no snapshot before the migration is read.
    CHECK(purged_through(db) == newest);
    CHECK(rows_per_seq(db, at_snapshot(newest)) == expected_rows_at(db, newest));
    CHECK(patients_found(db, {{"identifier:of-type", v2_0203 + "|MR|67890"}}) == std::set<std::string>{typed_nhs});

    // The writer carries on: the migrated rows are closed by the next version.
    must_write(*db, update_request("Patient", typed_nhs, typed_patient_json(typed_nhs, "13579", "SMITH701234")));
    const std::string v2 = std::to_string(seq_of(db, "Patient", typed_nhs, 2));
    const std::string v3 = std::to_string(seq_of(db, "Patient", typed_nhs, 3));
    CHECK(db.rows("SELECT code, text, until_seq FROM search_token WHERE param = 'identifier:of-type' AND seq = " + v2 +
                  " ORDER BY rowid") == table_rows{{"MR", "67890", v3}, {"DL", "SMITH701234", v3}});
    for (std::int64_t snapshot = newest; snapshot <= newest_seq(db); ++snapshot)
        CHECK(rows_per_seq(db, at_snapshot(snapshot)) == expected_rows_at(db, snapshot));
}
