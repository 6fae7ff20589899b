// The store's side of erasure (storage/src/relational/erasure.cpp, engine.hpp invariant 25) and of the items a
// version points at (version_targets, migration 8): what an erasure removes and what it keeps, that
// versions and grants are otherwise never deleted, and that migration 8 records the targets of what
// was stored before it.
#include "store_fixture.hpp"

#include "fhir_model/resource.hpp"

#include <future>

using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

constexpr const char* erased = "9000000009";
constexpr const char* kept = "9000000017";


write_request patient(const std::string& nhs) { return prepared(write_kind::create, "Patient", nhs, patient_json(nhs)); }

write_request provenance_of(const std::string& id, const std::string& target) {
    return prepared(write_kind::create, "Provenance", id,
                    R"({"resourceType":"Provenance","target":[{"reference":")" + target +
                        R"("}],"recorded":"2026-11-01T10:00:00Z","agent":[{"who":{"reference":"Organization/A81001"}}]})");
}

} // namespace

TEST_CASE("erasure removes every version naming the citizen and what points at them, and keeps the rest") {
    store_fixture db;
    must(*db, patient(erased));
    must(*db, patient(kept));
    must(*db, prepared(write_kind::create, "Observation", "own", observation_json(erased)));
    must(*db, prepared(write_kind::create, "Observation", "moved", observation_json(erased)));
    must(*db, prepared(write_kind::update, "Observation", "moved", observation_json(kept, "80")));
    must(*db, prepared(write_kind::create, "Observation", "other", observation_json(kept)));
    must(*db, provenance_of("of-own", "Observation/own"));
    must(*db, provenance_of("of-other", "Observation/other"));
    CHECK(db.count("SELECT count(*) FROM version_targets") == 2);
    // A break-glass grant into the citizen's record.
    std::promise<void> granted;
    db->grant_break_glass({erased, "RX1", "doctor", "R8000", "unconscious", 1, 4'000'000'000'000'000, "r"}, audit_record{},
                          [&](caregate::fhir::status) { granted.set_value(); });
    granted.get_future().wait();

    // Versions and grants are never deleted but by an erasure.
    CHECK(db.execute("DELETE FROM resource_versions WHERE id = 'own'") != SQLITE_OK);
    CHECK(db.execute("DELETE FROM break_glass_grants") != SQLITE_OK);

    write_request erase = remove_request("Patient", erased);
    erase.erase_record = true;
    must(*db, erase);
    CHECK(db.count(std::string("SELECT count(*) FROM resource_versions WHERE instr(citizens, '") + erased + "') > 0") == 0);
    CHECK(db.count("SELECT count(*) FROM resource_versions WHERE id IN ('own', 'of-own')") == 0);
    CHECK(db.count("SELECT count(*) FROM resources WHERE id IN ('own', 'of-own', '9000000009')") == 0);
    // The moved item keeps its version of the other citizen, and what points at another item stays.
    CHECK(db.count("SELECT count(*) FROM resource_versions WHERE id = 'moved'") == 1);
    CHECK(db->read("Observation", "moved").ok());
    CHECK(db->vread("Observation", "moved", 1).failure().kind == caregate::fhir::category::not_found);
    CHECK(db->read("Provenance", "of-other").ok());
    CHECK(db.count("SELECT count(*) FROM break_glass_grants") == 0);
    CHECK(db.count("SELECT count(*) FROM erasing") == 0);
    for (const char* table : {"search_string", "search_token", "search_date", "search_reference", "search_quantity",
                              "search_number", "search_uri", "search_composite", "version_citizens", "version_targets"})
        CHECK_MESSAGE(db.count(std::string("SELECT count(*) FROM ") + table +
                               " WHERE seq NOT IN (SELECT seq FROM resource_versions)") == 0,
                      table);
    // The audit trail is untouched, and the chain holds.
    auto verified = db->verify_audit();
    REQUIRE(verified.ok());
    CHECK_FALSE(verified->first_broken.has_value());
    // A new registration starts at version 1.
    CHECK(must(*db, patient(erased)).version.version_id == 1);
}

TEST_CASE("migration 8 records what the Provenances stored before it point at" * caregate::testing::sqlite_only()) {
    store_fixture db;
    must(*db, patient(erased));
    must(*db, prepared(write_kind::create, "Observation", "own", observation_json(erased)));
    must(*db, provenance_of("p1", "Observation/own"));
    must(*db, provenance_of("p2", std::string("Patient/") + erased));
    const auto targets = db.rows("SELECT seq, type, id FROM version_targets ORDER BY seq, type, id");
    REQUIRE(targets.size() == 2);
    db.close();
    REQUIRE(db.execute(undo_migrations_8_and_9 + "PRAGMA user_version = 7;") == SQLITE_OK);
    db.reopen();
    CHECK(db.count("PRAGMA user_version") == newest_sqlite_schema);
    CHECK(db.rows("SELECT seq, type, id FROM version_targets ORDER BY seq, type, id") == targets);
}
