// caregate migrate's engine (storage::migrate_store): a SQLite database with every kind of row moved
// into PostgreSQL answers the same reads, histories, searches, standings and audit chain, and goes on
// from where it was; a target that is not empty is refused and left as it was.
#include "store_fixture.hpp"

#include "fhir_model/search_query.hpp"
#include "storage/search.hpp"

#include <future>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

const std::string nhs = "9000000009";
const std::string other_nhs = "9000000017";

write_request registered_patient(const std::string& nhs_number) {
    auto request = prepared(write_kind::create, "Patient", nhs_number,
                            R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
                                nhs_number + R"("}],"name":[{"family":"Moved"}],"generalPractitioner":[{"reference":"Organization/A81001"}]})");
    return request;
}

write_request heart_rate(const std::string& id, const std::string& nhs_number, const std::string& value) {
    return prepared(write_kind::create, "Observation", id,
                    R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},)"
                    R"("subject":{"reference":"Patient/)" + nhs_number +
                        R"("},"effectiveDateTime":"2026-11-01T10:00:00Z","valueQuantity":{"value":)" + value +
                        R"(,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}})");
}

write_request with_audit(write_request request, const std::string& user) {
    audit_record record;
    record.user = user;
    record.organisation = "A81001";
    record.action = "create";
    record.nhs_number = nhs;
    request.audit = record;
    return request;
}

std::vector<std::string> search_ids(store& db, const std::string& type,
                                    std::vector<std::pair<std::string, std::string>> params) {
    fhir::search_query_options options;
    options.max_count = 1000;
    auto parsed = fhir::parse_search_query({type}, params, options);
    REQUIRE(parsed.ok());
    search_request request;
    request.query = &parsed.value();
    request.visibility.everything = true;
    auto page = db.search(request);
    REQUIRE(page.ok());
    std::vector<std::string> ids;
    for (const auto& entry : page->entries)
        ids.push_back(entry.version.id + "/" + std::to_string(entry.version.version_id));
    return ids;
}

std::vector<stored_version> history_of_all(store& db) {
    history_query query;
    query.visibility = &every_version();
    query.count = 1000;
    auto page = db.history(query);
    REQUIRE(page.ok());
    std::vector<stored_version> versions;
    for (const auto& entry : page->entries)
        versions.push_back(entry);
    return versions;
}

} // namespace

TEST_CASE("a SQLite database moved into PostgreSQL answers the same, verifies, and goes on" *
          caregate::testing::needs_postgresql()) {
    temp_directory directory;
    const std::string path = (directory.path() / "caregate.db").string();
    {
        sqlite_options options;
        options.path = path;
        auto opened = sqlite_store::open(options);
        REQUIRE(opened.ok());
        store& sqlite = **opened;
        REQUIRE(sqlite.write(with_audit(registered_patient(nhs), "gp-1")).ok());
        REQUIRE(sqlite.write(registered_patient(other_nhs)).ok());
        for (int i = 0; i < 30; ++i)
            REQUIRE(sqlite.write(with_audit(heart_rate("hr-" + std::to_string(i), i % 2 ? nhs : other_nhs,
                                                       std::to_string(60 + i)),
                                            "gp-" + std::to_string(i)))
                        .ok());
        auto changed = heart_rate("hr-1", nhs, "99");
        changed.kind = write_kind::update;
        REQUIRE(sqlite.write(changed).ok());
        REQUIRE(sqlite.write(remove_request("Observation", "hr-2")).ok());
        auto objection = prepared(write_kind::create, "Consent", "consent-1",
                                  R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
                                  R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/)" +
                                      other_nhs + R"("},"provision":{"type":"deny"}})");
        REQUIRE(sqlite.write(objection).ok());
        std::promise<fhir::status> granted;
        break_glass_grant grant{nhs, "RX1", "doctor-1", "R8000", "unconscious", 1, 4'000'000'000'000'000, "request-1"};
        sqlite.grant_break_glass(grant, audit_record{}, [&](fhir::status s) { granted.set_value(s); });
        REQUIRE(granted.get_future().get().ok());
    }

    caregate::testing::scratch_database target;
    auto moved = migrate_store(path, target.uri());
    REQUIRE_MESSAGE(moved.ok(), (moved.ok() ? std::string() : moved.failure().issues.front().diagnostics));
    CHECK(moved->resources == 33);
    CHECK(moved->versions == 35);
    CHECK(moved->audit_records >= 32);

    sqlite_options again;
    again.path = path;
    auto sqlite = sqlite_store::open(again);
    REQUIRE(sqlite.ok());
    postgresql_options chosen;
    chosen.conninfo = target.uri();
    auto postgres = postgresql_store::open(chosen);
    REQUIRE(postgres.ok());

    // The same bytes, versions, lastUpdated and history order.
    for (const std::string id : {"hr-1", "hr-2", "hr-7"}) {
        auto a = (*sqlite)->read_current("Observation", id);
        auto b = (*postgres)->read_current("Observation", id);
        REQUIRE(a.ok());
        REQUIRE(b.ok());
        CHECK(a->json == b->json);
        CHECK(a->version_id == b->version_id);
        CHECK(a->deleted == b->deleted);
        CHECK(a->last_updated == b->last_updated);
    }
    const auto history_a = history_of_all(**sqlite);
    const auto history_b = history_of_all(**postgres);
    REQUIRE(history_a.size() == history_b.size());
    for (std::size_t i = 0; i < history_a.size(); ++i) {
        CHECK(history_a[i].id == history_b[i].id);
        CHECK(history_a[i].json == history_b[i].json);
        CHECK(history_a[i].facets == history_b[i].facets);
    }
    // The same search answers, through the copied index rows.
    for (const auto& params : std::vector<std::vector<std::pair<std::string, std::string>>>{
             {{"patient", nhs}}, {{"code", "http://loinc.org|8867-4"}, {"_sort", "-value-quantity"}}, {{"value-quantity", "gt80"}}})
        CHECK(search_ids(**sqlite, "Observation", params) == search_ids(**postgres, "Observation", params));
    // The same standings: relationships, the objection, the break-glass grant.
    for (const auto& [citizen, organisation, user] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {nhs, "A81001", "gp-1"}, {other_nhs, "A81001", "gp-1"}, {nhs, "RX1", "doctor-1"}}) {
        auto a = (*sqlite)->standing(citizen, organisation, user, "R8000", 0, 2);
        auto b = (*postgres)->standing(citizen, organisation, user, "R8000", 0, 2);
        REQUIRE(a.ok());
        REQUIRE(b.ok());
        CHECK(a->held == b->held);
        CHECK(a->relationship == b->relationship);
        CHECK(a->objection == b->objection);
        CHECK(a->break_glass_until == b->break_glass_until);
    }
    // One chain, the same tip.
    auto tip_a = (*sqlite)->audit_tip();
    auto tip_b = (*postgres)->audit_tip();
    REQUIRE(tip_a.ok());
    REQUIRE(tip_b.ok());
    CHECK(tip_a->sequence == tip_b->sequence);
    CHECK(tip_a->hash == tip_b->hash);
    CHECK_FALSE((*postgres)->verify_audit()->first_broken);

    // It goes on: a new version follows the moved ones, a new resource gets a later seq, and the chain grows.
    auto changed = heart_rate("hr-1", nhs, "100");
    changed.kind = write_kind::update;
    auto updated = (*postgres)->write(with_audit(changed, "gp-9"));
    REQUIRE(updated.ok());
    CHECK(updated->version.version_id == 3);
    REQUIRE((*postgres)->write(heart_rate("hr-new", nhs, "70")).ok());
    CHECK(history_of_all(**postgres).front().id == "hr-new");
    auto verified = (*postgres)->verify_audit();
    REQUIRE(verified.ok());
    CHECK_FALSE(verified->first_broken);
    CHECK(verified->records == tip_a->sequence + 1);

    // A second move into a database that is not empty is refused, and changes nothing.
    postgres->reset();
    auto twice = migrate_store(path, target.uri());
    REQUIRE_FALSE(twice.ok());
    CHECK(twice.failure().kind == fhir::category::conflict);
    auto reopened = postgresql_store::open(chosen);
    REQUIRE(reopened.ok());
    CHECK((*reopened)->verify_audit()->records == tip_a->sequence + 1);
}

TEST_CASE("caregate migrate moves SQLite into PostgreSQL only") {
    auto wrong = migrate_store("postgresql://nobody@127.0.0.1:1/none", "caregate.db");
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.failure().kind == fhir::category::invalid);
    auto missing = migrate_store("/nonexistent/caregate.db", "postgresql://nobody@127.0.0.1:1/none");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.failure().kind == fhir::category::invalid);
}

TEST_CASE("a database's name as printed never shows a URI's password") {
    CHECK(printable_database_name("postgresql://caregate:s3cret@db1:5432,db2:5432/caregate?sslmode=require") ==
          "postgresql://caregate:***@db1:5432,db2:5432/caregate?sslmode=require");
    CHECK(printable_database_name("postgresql://caregate@db1/caregate") == "postgresql://caregate@db1/caregate");
    CHECK(printable_database_name("postgresql://db1/caregate?user=a") == "postgresql://db1/caregate?user=a");
    CHECK(printable_database_name("/var/lib/caregate/caregate.db") == "/var/lib/caregate/caregate.db");
    CHECK(printable_database_name("sqlite:caregate.db") == "sqlite:caregate.db");
}
