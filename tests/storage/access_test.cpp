// Tests for what storage/src/relational/access_rows.cpp keeps for access control (README, the access model): ownership of
// contributions, the access facts stored with each version, organisation links, objections,
// break-glass grants, a citizen's standing, and migrating a schema-1 database. Audit is in audit_test.cpp.
#include "store_fixture.hpp"

#include "fhir_model/resource.hpp"
#include "storage/search.hpp"

#include <algorithm>
#include <future>
#include <set>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

const std::string nhs = "9000000009";
const std::string other_nhs = "9000000017";
const std::string confidentiality_r = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R";
constexpr timestamp hour = 3600LL * 1000 * 1000;
constexpr timestamp day = 24 * hour;

write_outcome must_write(store& db, write_request request) {
    auto outcome = db.write(std::move(request));
    REQUIRE_MESSAGE(outcome.ok(), (outcome.ok() ? "" : outcome.failure().issues.at(0).diagnostics));
    return std::move(outcome).value();
}

write_request by(std::string writer, write_request request) {
    request.writer = std::move(writer);
    return request;
}

write_request patient(const std::string& nhs_number, const std::string& family = "Smith") {
    return create_request("Patient", nhs_number, patient_json(nhs_number, family));
}

/// An Encounter of `nhs_number` at `ods`; `active` with no end, or ended at `ended`.
write_request encounter(const std::string& id, const std::string& nhs_number, const std::string& ods,
                        std::optional<timestamp> ended = {}) {
    const std::string status = ended ? "finished" : "in-progress";
    write_request request = create_request(
        "Encounter", id,
        R"({"resourceType":"Encounter","status":")" + status + R"(","class":{"code":"AMB"},"subject":{"reference":"Patient/)" +
            nhs_number + R"("},"serviceProvider":{"reference":"Organization/)" + ods + R"("}})");
    request.citizens.push_back({nhs_number, "Encounter.subject"});
    request.access.organisations.push_back({ods, "encounter", !ended, ended});
    request.access.facets = {"status=" + status};
    return request;
}

/// A Consent of `nhs_number`: an objection to sharing (provision deny) or not (permit).
write_request consent(const std::string& id, const std::string& nhs_number, bool objection) {
    const std::string type = objection ? "deny" : "permit";
    write_request request = create_request(
        "Consent", id,
        R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"code":"patient-privacy"}]},"patient":{"reference":"Patient/)" +
            nhs_number + R"("},"provision":{"type":")" + type + R"("}})");
    request.citizens.push_back({nhs_number, "Consent.patient"});
    request.access.objection = objection;
    return request;
}

std::int64_t rows(const store_fixture& db, const std::string& sql) { return db.count(sql); }

void check_access_facts(const stored_version& version) {
    CHECK(version.owner == "A81001");
    CHECK(version.citizens == std::vector<std::string>{nhs});
    CHECK(version.labels == std::vector<std::string>{confidentiality_r});
    CHECK(version.facets == std::vector<std::string>{"status=final", "category=vital-signs"});
}

} // namespace

// ---- ownership: only the contributing organisation updates or deletes its own contributions

TEST_CASE("4.6 ownership: only the creating organisation updates or deletes; forbidden writes write nothing") {
    store_fixture db;
    const auto created = must_write(*db, by("A81001", patient(nhs, "Smith")));
    CHECK(created.version.owner == "A81001");

    auto update = by("RX1", update_request("Patient", nhs, patient_json(nhs, "Jones")));
    auto refused = db->write(update);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().kind == fhir::category::forbidden);
    CHECK(refused.failure().issues.at(0).code == "forbidden");
    CHECK(refused.failure().issues.at(0).diagnostics ==
          "only the organisation that contributed this resource may change it");
    CHECK(refused.failure().issues.at(0).diagnostics.find("A81001") == std::string::npos);
    CHECK(db.count("SELECT count(*) FROM resource_versions") == 1);

    SUBCASE("the owner updates; the owner stays") {
        const auto updated = must_write(*db, by("A81001", update_request("Patient", nhs, patient_json(nhs, "Jones"))));
        CHECK(updated.version.version_id == 2);
        CHECK(updated.version.owner == "A81001");
    }
    SUBCASE("ownership is checked before If-Match, so a wrong version tells another organisation nothing") {
        update.if_match = 7;
        auto again = db->write(update);
        REQUIRE_FALSE(again.ok());
        CHECK(again.failure().kind == fhir::category::forbidden);
    }
    SUBCASE("unchanged content from another organisation is still forbidden") {
        auto same = db->write(by("RX1", update_request("Patient", nhs, patient_json(nhs, "Smith"))));
        REQUIRE_FALSE(same.ok());
        CHECK(same.failure().kind == fhir::category::forbidden);
    }
    SUBCASE("any_owner (an integration service) changes it and the owner is kept") {
        auto service = by("RX1", update_request("Patient", nhs, patient_json(nhs, "Jones")));
        service.any_owner = true;
        const auto updated = must_write(*db, service);
        CHECK(updated.version.owner == "A81001");
    }
    SUBCASE("a delete by another organisation is forbidden; by the owner it works; then a new creator owns it") {
        auto removal = db->write(by("RX1", remove_request("Patient", nhs)));
        REQUIRE_FALSE(removal.ok());
        CHECK(removal.failure().kind == fhir::category::forbidden);
        CHECK(db->read("Patient", nhs).ok());
        CHECK(db.count("SELECT count(*) FROM resource_versions") == 1);

        const auto removed = must_write(*db, by("A81001", remove_request("Patient", nhs)));
        CHECK(removed.version.deleted);
        CHECK(removed.version.owner == "A81001");

        const auto recreated = must_write(*db, by("RX1", patient(nhs, "Jones")));
        CHECK(recreated.created);
        CHECK(recreated.version.version_id == 3);
        CHECK(recreated.version.owner == "RX1");
        CHECK(db->write(by("A81001", update_request("Patient", nhs, patient_json(nhs, "Brown")))).failure().kind ==
              fhir::category::forbidden);
        CHECK(must_write(*db, by("RX1", update_request("Patient", nhs, patient_json(nhs, "Brown")))).version.version_id == 4);
    }
}

TEST_CASE("a writer with no ODS code (a tool) is not checked for ownership") {
    store_fixture db;
    must_write(*db, by("A81001", patient(nhs)));
    CHECK(must_write(*db, update_request("Patient", nhs, patient_json(nhs, "Jones"))).version.owner == "A81001");
}

// ---- access facts kept with each version

TEST_CASE("versions return owner, citizens, labels and facets on read, vread and history; a deletion keeps them") {
    store_fixture db;
    must_write(*db, patient(nhs));
    auto request = by("A81001", observation_request("obs-1", nhs));
    request.citizens.push_back({nhs, "Observation.performer"}); // the same citizen twice: stored once
    request.access.labels = {confidentiality_r};
    request.access.facets = {"status=final", "category=vital-signs"};
    const auto created = must_write(*db, request);
    check_access_facts(created.version);

    auto read = db->read("Observation", "obs-1");
    REQUIRE(read.ok());
    check_access_facts(*read);
    auto vread = db->vread("Observation", "obs-1", 1);
    REQUIRE(vread.ok());
    check_access_facts(*vread);

    must_write(*db, by("A81001", remove_request("Observation", "obs-1")));
    auto history = db->history(history_of("Observation", "obs-1"));
    REQUIRE(history.ok());
    REQUIRE(history->entries.size() == 2);
    CHECK(history->entries[0].deleted);
    check_access_facts(history->entries[0]);
    check_access_facts(history->entries[1]);
    auto marker = db->read_current("Observation", "obs-1");
    REQUIRE(marker.ok());
    check_access_facts(*marker);

    auto everything = db->history(history_of(""));
    REQUIRE(everything.ok());
    REQUIRE(everything->entries.size() == 3);
    CHECK(everything->entries[2].type == "Patient");
    CHECK(everything->entries[2].citizens == std::vector<std::string>{nhs}); // a Patient is its own citizen
    CHECK(everything->entries[2].owner.empty());
}

TEST_CASE("an update with the same content but different access facts makes a new version") {
    store_fixture db;
    must_write(*db, patient(nhs));
    must_write(*db, encounter("enc-1", nhs, "RX1"));
    CHECK(must_write(*db, encounter("enc-1", nhs, "RX1")).unchanged);

    auto ended = encounter("enc-1", nhs, "RX1");
    ended.access.organisations.at(0).active = false; // the same bytes, but the link has ended since
    ended.access.organisations.at(0).ended = 1;
    const auto outcome = must_write(*db, ended);
    CHECK_FALSE(outcome.unchanged);
    CHECK(outcome.version.version_id == 2);
    CHECK(must_write(*db, ended).unchanged);
}

// ---- organisation links, objections, standing

TEST_CASE("organisation links belong to the current live version: replaced on update, removed on delete") {
    store_fixture db;
    must_write(*db, patient(nhs));
    must_write(*db, encounter("enc-1", nhs, "RX1"));
    CHECK(rows(db, "SELECT count(*) FROM organisation_links WHERE ods = 'RX1' AND nhs_number = '9000000009' "
                   "AND kind = 'encounter' AND active = 1 AND ended IS NULL") == 1);

    auto moved = encounter("enc-1", nhs, "RYJ");
    moved.kind = write_kind::update;
    must_write(*db, moved);
    CHECK(rows(db, "SELECT count(*) FROM organisation_links") == 1);
    CHECK(rows(db, "SELECT count(*) FROM organisation_links WHERE ods = 'RYJ'") == 1);

    must_write(*db, remove_request("Encounter", "enc-1"));
    CHECK(rows(db, "SELECT count(*) FROM organisation_links") == 0);
}

TEST_CASE("standing: a relationship is an active link, or one that ended at or after recent_since") {
    store_fixture db;
    const timestamp now = 1'800'000'000LL * 1000 * 1000;
    must_write(*db, patient(nhs));
    must_write(*db, encounter("active", nhs, "RX1"));
    must_write(*db, encounter("recent", nhs, "RYJ", now - 10 * day));
    must_write(*db, encounter("long-ago", nhs, "RAL", now - 400 * day));
    must_write(*db, encounter("future-end", nhs, "RQM", now + day));
    auto passed = encounter("passed-end", nhs, "RJ1", now - 400 * day);
    passed.access.organisations.at(0).active = true; // status says ongoing, but the end is long past
    must_write(*db, passed);

    const timestamp recent_since = now - 90 * day;
    auto standing_of = [&](const std::string& ods) {
        auto found = db->standing(nhs, ods, "user-1", "R8000", recent_since, now);
        REQUIRE(found.ok());
        return *found;
    };
    CHECK(standing_of("RX1").held);
    CHECK(standing_of("RX1").relationship);
    CHECK(standing_of("RYJ").relationship);
    CHECK(standing_of("RQM").relationship);
    CHECK_FALSE(standing_of("RAL").relationship);
    CHECK_FALSE(standing_of("RJ1").relationship);
    CHECK_FALSE(standing_of("A81001").relationship);
    CHECK_FALSE(standing_of("RX1").objection);
    CHECK_FALSE(standing_of("RX1").break_glass_until);

    auto unknown = db->standing(other_nhs, "RX1", "user-1", "R8000", recent_since, now);
    REQUIRE(unknown.ok());
    CHECK_FALSE(unknown->held);
    CHECK_FALSE(unknown->relationship);

    auto erase = remove_request("Patient", nhs); // the Encounters go with it (a full erasure)
    erase.erase_record = true;
    must_write(*db, erase);
    CHECK_FALSE(standing_of("RX1").held);
}

TEST_CASE("a registered GP recorded on the Patient is a relationship for that Patient") {
    store_fixture db;
    auto registered = patient(nhs);
    registered.access.organisations.push_back({"A81001", "registered-gp", true, {}});
    must_write(*db, registered);
    auto found = db->standing(nhs, "A81001", "user-1", "R8000", 0, 1);
    REQUIRE(found.ok());
    CHECK(found->relationship);
    CHECK(rows(db, "SELECT count(*) FROM organisation_links WHERE type = 'Patient' AND nhs_number = '9000000009'") == 1);
}

TEST_CASE("invariant 11: a version keeps only the links naming its writer, unless the writer is the ICS's or a tool") {
    store_fixture db;
    must_write(*db, by("A81001", patient(nhs)));
    auto relationship = [&](const std::string& ods) {
        auto found = db->standing(nhs, ods, "user-1", "R8000", 0, 1);
        REQUIRE(found.ok());
        return found->relationship;
    };
    // A GP's Encounter naming the acute trust as its serviceProvider gives the trust nothing.
    must_write(*db, by("A81001", encounter("by-gp", nhs, "RX1")));
    CHECK(rows(db, "SELECT count(*) FROM organisation_links WHERE id = 'by-gp'") == 0);
    CHECK_FALSE(relationship("RX1"));
    // The trust's own Encounter does; so does the ICS's integration service's (any_owner), and a tool's.
    must_write(*db, by("RX1", encounter("by-trust", nhs, "RX1")));
    CHECK(rows(db, "SELECT count(*) FROM organisation_links WHERE id = 'by-trust' AND ods = 'RX1'") == 1);
    CHECK(relationship("RX1"));
    auto by_ics = by("QZZ", encounter("by-ics", nhs, "RYJ"));
    by_ics.any_owner = true;
    must_write(*db, by_ics);
    CHECK(relationship("RYJ"));
    must_write(*db, encounter("by-tool", nhs, "RAL"));
    CHECK(relationship("RAL"));
    // A Patient naming two practices, written by one of them: only that one's registration counts.
    auto registered = by("A81001", update_request("Patient", nhs, patient_json(nhs, "Jones")));
    registered.access.organisations = {{"A81001", "registered-gp", true, {}}, {"B82002", "registered-gp", true, {}}};
    must_write(*db, registered);
    CHECK(relationship("A81001"));
    CHECK_FALSE(relationship("B82002"));
}

TEST_CASE("a search's type grant decides part-of-type access exactly as fhir::facets_satisfy") {
    store_fixture db;
    must_write(*db, patient(nhs));
    const std::string category = "category=http://terminology.hl7.org/CodeSystem/observation-category|";
    const std::string status = "status=http://example.org/status|";
    const std::vector<std::vector<std::string>> stored = {
        {},
        {category + "survey"},
        {category + "activity", category + "survey"},
        {category + "laboratory", category + "survey"},
        {"category=http://example.org/x|survey"},
        {category + "survey", "category=|"},
        {"category=|survey"},
        {"code=http://loinc.org|1", category + "social-history"},
        {category + "survey", status + "final"},
        {category + "survey", status + "final", status + "amended"},
        {"categoryX=http://terminology.hl7.org/CodeSystem/observation-category|survey"},
    };
    for (std::size_t i = 0; i < stored.size(); ++i) {
        auto request = observation_request("obs-" + std::to_string(i), nhs);
        request.access.facets = stored[i];
        std::sort(request.access.facets.begin(), request.access.facets.end()); // as fhir_model gives them
        must_write(*db, request);
    }
    const std::vector<std::vector<std::string>> rules = {
        {category + "social-history", category + "survey", category + "activity"},
        {category + "survey"},
        {category + "survey", status + "final"},
        {"category=http://example.org/x|survey"},
        {"code=http://loinc.org|1"},
    };
    fhir::search_query_options options;
    options.max_count = 100;
    auto query = fhir::parse_search_query({"Observation"}, {{"_count", "100"}}, options);
    REQUIRE(query.ok());
    for (const auto& where : rules) {
        CAPTURE(where.front());
        CAPTURE(where.size());
        search_request request;
        request.query = &*query;
        request.visibility.all_citizens = true;
        request.visibility.organisation = "QZZ";
        request.visibility.readable = {{"Observation", false, where}};
        auto page = db->search(request);
        REQUIRE(page.ok());
        std::set<std::string> found;
        for (const auto& entry : page->entries)
            found.insert(entry.version.id);
        std::set<std::string> expected;
        for (std::size_t i = 0; i < stored.size(); ++i) {
            auto facets = stored[i];
            std::sort(facets.begin(), facets.end());
            if (fhir::facets_satisfy(where, facets))
                expected.insert("obs-" + std::to_string(i));
        }
        CHECK(found == expected);
        CHECK_FALSE(expected.empty()); // each rule lets something through: the comparison is not vacuous
    }
}

TEST_CASE("an objection is set by a live Consent and cleared when it no longer objects or is deleted") {
    store_fixture db;
    must_write(*db, patient(nhs));
    must_write(*db, patient(other_nhs));
    auto objects = [&](const std::string& who) {
        auto found = db->standing(who, "RX1", "user-1", "R8000", 0, 1);
        REQUIRE(found.ok());
        return found->objection;
    };
    CHECK_FALSE(objects(nhs));

    must_write(*db, consent("consent-1", nhs, true));
    CHECK(objects(nhs));
    CHECK_FALSE(objects(other_nhs));

    auto permit = consent("consent-1", nhs, false);
    permit.kind = write_kind::update;
    must_write(*db, permit);
    CHECK_FALSE(objects(nhs));

    auto deny = consent("consent-1", nhs, true);
    deny.kind = write_kind::update;
    must_write(*db, deny);
    CHECK(objects(nhs));
    must_write(*db, remove_request("Consent", "consent-1"));
    CHECK_FALSE(objects(nhs));
    CHECK(rows(db, "SELECT count(*) FROM objections") == 0);

    SUBCASE("only a Consent records an objection") {
        auto observation = observation_request("obs-1", nhs);
        observation.access.objection = true;
        must_write(*db, observation);
        CHECK_FALSE(objects(nhs));
    }
}

TEST_CASE("break-glass: a grant opens the record for that user of that organisation in that role during its window only") {
    store_fixture db;
    must_write(*db, patient(nhs));
    const timestamp from = 1'800'000'000LL * 1000 * 1000;
    break_glass_grant grant{nhs, "RX1", "user-1", "R8000", "unconscious in A&E", from, from + 4 * hour, "request-1"};
    audit_record record;
    record.time = from;
    record.user = "user-1";
    record.organisation = "RX1";
    record.purpose = "ETREAT";
    record.break_glass_reason = grant.reason;
    record.nhs_number = nhs;
    record.action = "break-glass";
    record.outcome = "success";
    std::promise<fhir::status> granted;
    db->grant_break_glass(grant, record, [&](fhir::status done) { granted.set_value(std::move(done)); });
    REQUIRE(granted.get_future().get().ok());

    auto until = [&](const std::string& ods, const std::string& user, timestamp now, const std::string& role = "R8000") {
        auto found = db->standing(nhs, ods, user, role, 0, now);
        REQUIRE(found.ok());
        return found->break_glass_until;
    };
    CHECK(until("RX1", "user-1", from) == from + 4 * hour);
    CHECK(until("RX1", "user-1", from + 4 * hour - 1) == from + 4 * hour);
    CHECK_FALSE(until("RX1", "user-1", from - 1));
    CHECK_FALSE(until("RX1", "user-1", from + 4 * hour));
    CHECK_FALSE(until("RX1", "user-2", from + hour));
    CHECK_FALSE(until("RYJ", "user-1", from + hour));
    CHECK_FALSE(until("RX1", "user-1", from + hour, "R8008")); // the same user in another role
    CHECK_FALSE(until("RX1", "user-1", from + hour, ""));
    CHECK(rows(db, "SELECT count(*) FROM break_glass_grants WHERE role = 'R8000'") == 1);

    // A second, longer grant: the latest open one wins.
    grant.until = from + 8 * hour;
    std::promise<fhir::status> again;
    db->grant_break_glass(grant, record, [&](fhir::status done) { again.set_value(std::move(done)); });
    REQUIRE(again.get_future().get().ok());
    CHECK(until("RX1", "user-1", from + hour) == from + 8 * hour);

    // Each grant committed with its audit record.
    CHECK(rows(db, "SELECT count(*) FROM break_glass_grants") == 2);
    auto log = db->audit({});
    REQUIRE(log.ok());
    REQUIRE(log->records.size() == 2);
    CHECK(log->records[0].break_glass_reason == "unconscious in A&E");
    CHECK(db.execute("DELETE FROM break_glass_grants") != SQLITE_OK); // grants are evidence: never removed
}

// ---- schema migration

TEST_CASE("a schema-1 database migrates: its versions read back with no owner and no access facts" * caregate::testing::sqlite_only()) {
    temp_directory directory;
    const std::string path = (directory.path() / "caregate.db").string();
    {
        // Schema 1 exactly as migration 1 made it, with one version written by that release.
        sqlite3* raw = nullptr;
        REQUIRE(sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK);
        const std::string version_1 = R"sql(
CREATE TABLE resource_versions (
    seq INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,
    version_id INTEGER NOT NULL CHECK (version_id >= 1), last_updated INTEGER NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('POST', 'PUT', 'DELETE')),
    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)), json BLOB NOT NULL, UNIQUE (type, id, version_id));
CREATE INDEX resource_versions_by_type ON resource_versions (type, seq);
CREATE INDEX resource_versions_by_resource ON resource_versions (type, id, seq);
CREATE INDEX resource_versions_by_last_updated ON resource_versions (last_updated);
CREATE TRIGGER resource_versions_never_change BEFORE UPDATE ON resource_versions
BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;
CREATE TRIGGER resource_versions_never_go BEFORE DELETE ON resource_versions
BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;
CREATE TABLE resources (
    type TEXT NOT NULL, id TEXT NOT NULL, version_id INTEGER NOT NULL,
    seq INTEGER NOT NULL UNIQUE REFERENCES resource_versions (seq),
    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)), PRIMARY KEY (type, id)) WITHOUT ROWID;
CREATE TABLE citizen_links (
    type TEXT NOT NULL, id TEXT NOT NULL, nhs_number TEXT NOT NULL,
    PRIMARY KEY (type, id, nhs_number), FOREIGN KEY (type, id) REFERENCES resources (type, id)) WITHOUT ROWID;
CREATE INDEX citizen_links_by_nhs_number ON citizen_links (nhs_number);
INSERT INTO resource_versions (seq, type, id, version_id, last_updated, method, deleted, json)
VALUES (1, 'Patient', '9000000009', 1, 1700000000000000, 'POST', 0,
        '{"resourceType":"Patient","id":"9000000009","meta":{"versionId":"1","lastUpdated":"2023-11-14T22:13:20.000000Z"}}');
INSERT INTO resources (type, id, version_id, seq, deleted) VALUES ('Patient', '9000000009', 1, 1, 0);
PRAGMA user_version = 1;
)sql";
        REQUIRE(sqlite3_exec(raw, version_1.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close_v2(raw);
    }
    sqlite_options options;
    options.path = path;
    auto opened = sqlite_store::open(options);
    REQUIRE(opened.ok());
    store& db = **opened;

    auto read = db.read("Patient", nhs);
    REQUIRE(read.ok());
    CHECK(read->version_id == 1);
    CHECK(read->json.find(R"("lastUpdated":"2023-11-14T22:13:20.000000Z")") != std::string::npos);
    CHECK(read->owner.empty());
    CHECK(read->citizens.empty());
    CHECK(read->labels.empty());
    CHECK(read->facets.empty());

    // A version with no owner is changed only by a tool or an integration service, not claimed.
    CHECK(db.write(by("A81001", update_request("Patient", nhs, patient_json(nhs)))).failure().kind ==
          fhir::category::forbidden);
    const auto updated = must_write(db, update_request("Patient", nhs, patient_json(nhs)));
    CHECK(updated.version.version_id == 2);
    CHECK(updated.version.citizens == std::vector<std::string>{nhs});

    auto verified = db.verify_audit();
    REQUIRE(verified.ok());
    CHECK(verified->records == 0);
    CHECK_FALSE(verified->first_broken);
}

TEST_CASE("migration 9: stored facets get their code systems again; earlier break-glass grants open for no role" * caregate::testing::sqlite_only()) {
    store_fixture db;
    must_write(*db, patient(nhs));
    const std::string observation_body =
        R"({"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"survey"}]}],"code":{"text":"x"},"subject":{"reference":"Patient/9000000009"}})";
    must_write(*db, prepared(write_kind::create, "Observation", "obs-1", observation_body));
    must_write(*db, prepared(write_kind::create, "Observation", "obs-2", observation_body));
    must_write(*db, remove_request("Observation", "obs-2"));
    const auto facets = db.rows("SELECT seq, facets FROM resource_versions ORDER BY seq");
    REQUIRE(facets.at(1).at(1) == "category=http://terminology.hl7.org/CodeSystem/observation-category|survey\ncode=|");
    REQUIRE(facets.at(3).at(1) == facets.at(2).at(1)); // a deletion keeps the facets of what it deleted
    db.close();

    // Schema 8: facets named codes without their systems, and grants had no role.
    REQUIRE(db.execute(undo_migration_9 + R"sql(
DROP TRIGGER resource_versions_never_change;
UPDATE resource_versions SET facets = 'category=survey' WHERE type = 'Observation';
CREATE TRIGGER resource_versions_never_change BEFORE UPDATE ON resource_versions
BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;
INSERT INTO break_glass_grants (nhs_number, organisation, user, reason, from_time, until_time, request_id)
VALUES ('9000000009', 'RX1', 'user-1', 'before', 0, 9000000000000000000, 'request-0');
PRAGMA user_version = 8;
)sql") == SQLITE_OK);

    db.reopen();
    CHECK(db.count("PRAGMA user_version") == newest_sqlite_schema);
    CHECK(db.rows("SELECT seq, facets FROM resource_versions ORDER BY seq") == facets);
    CHECK(db.execute("UPDATE resource_versions SET facets = ''") != SQLITE_OK); // immutable again
    CHECK(db.count("SELECT count(*) FROM break_glass_grants WHERE role = ''") == 1);
    auto standing = db->standing(nhs, "RX1", "user-1", "R8000", 0, 1);
    REQUIRE(standing.ok());
    CHECK_FALSE(standing->break_glass_until);
}

// sqlite_options::standing_cache_ttl: standings are kept in memory, but every write that commits
// invalidates them before it is acknowledged; with an hour's lifetime, only that keeps these right.
TEST_CASE("several nodes: a write acknowledged through one node narrows what the other answers at once" *
          caregate::testing::several_nodes()) {
    store_fixture db;
    const auto other = db.another_node(); // node B; node A is db
    auto standing_at_b = [&](timestamp recent_since = 0) {
        auto found = other->standing(nhs, "A81001", "user-1", "R8000", recent_since, recent_since + 1);
        REQUIRE(found.ok());
        return *found;
    };
    CHECK_FALSE(standing_at_b().held);
    auto registered = patient(nhs);
    registered.access.organisations.push_back({"A81001", "registered-gp", true, {}});
    must_write(*db, registered); // through A
    CHECK(standing_at_b().held);
    CHECK(standing_at_b().relationship);

    SUBCASE("an objection") {
        must_write(*db, consent("consent-1", nhs, true));
        CHECK(standing_at_b().objection);
    }
    SUBCASE("a registration ended") {
        auto ended = update_request("Patient", nhs, patient_json(nhs, "Jones"));
        ended.access.organisations.push_back({"A81001", "registered-gp", false, timestamp{5}});
        must_write(*db, ended);
        CHECK_FALSE(standing_at_b(10).relationship); // ended before the recent window
    }
    SUBCASE("an erasure") {
        auto erase = remove_request("Patient", nhs);
        erase.erase_record = true;
        must_write(*db, erase);
        CHECK_FALSE(standing_at_b().held);
        auto read = other->read("Patient", nhs);
        REQUIRE_FALSE(read.ok());
        CHECK(read.failure().kind == fhir::category::not_found);
    }
}

// Invariant 27 of the engine: node B caches standings for an hour, and serves one from memory only to
// a read that saw the generation it was read at; a write through node A raises the database's
// generation, so B's next read of the version decides it on the new standing. The control: asked
// with the generation of before the write, B does answer from memory (the cache is really used).
TEST_CASE("several nodes: a standing cached on one node is not served once another node's write commits" *
          caregate::testing::several_nodes()) {
    sqlite_options cached;
    cached.standing_cache_ttl = std::chrono::hours(1);
    store_fixture db(cached);
    const auto other = db.another_node();
    auto registered = patient(nhs);
    registered.access.organisations.push_back({"A81001", "registered-gp", true, {}});
    must_write(*db, registered);
    auto version_at_b = [&] {
        auto read = other->read("Patient", nhs);
        REQUIRE(read.ok());
        CHECK(read->access_generation != 0);
        return *read;
    };
    auto standing_at_b = [&](std::uint64_t seen) {
        auto found = other->standing(nhs, "A81001", "user-1", "R8000", 0, 1, seen);
        REQUIRE(found.ok());
        return *found;
    };
    // The visibility rule over a version B read decides on the standing for the generation read with it.
    search_visibility gp;
    gp.organisation = "A81001";
    gp.user = "user-1";
    gp.role = "R8000";
    gp.now = 1;
    gp.readable.push_back({"Patient", true, {}});
    auto visible_at_b = [&](const stored_version& version) {
        auto visible = other->version_visible(gp, version);
        REQUIRE(visible.ok());
        return *visible;
    };
    const auto before = version_at_b();
    CHECK(visible_at_b(before));
    CHECK_FALSE(standing_at_b(before.access_generation).objection); // cached at B now
    must_write(*db, by("RX1", consent("consent-1", nhs, true)));    // through A
    // The control: asked with the generation of before the write, B answers from its memory.
    CHECK_FALSE(standing_at_b(before.access_generation).objection);
    CHECK(visible_at_b(before));
    const auto after = version_at_b();
    CHECK(after.access_generation > before.access_generation);
    CHECK(standing_at_b(after.access_generation).objection);
    CHECK_FALSE(visible_at_b(after));
}

TEST_CASE("a cached standing never outlives a write: registration, objection and erasure are seen at once") {
    sqlite_options cached;
    cached.standing_cache_ttl = std::chrono::hours(1);
    store_fixture db(cached);
    auto standing = [&] {
        auto found = db->standing(nhs, "A81001", "user-1", "R8000", 0, 1);
        REQUIRE(found.ok());
        return *found;
    };
    CHECK_FALSE(standing().held);
    auto registered = patient(nhs);
    registered.access.organisations.push_back({"A81001", "registered-gp", true, {}});
    must_write(*db, registered);
    CHECK(standing().held);
    CHECK(standing().relationship);
    CHECK_FALSE(standing().objection);
    must_write(*db, consent("consent-1", nhs, true));
    CHECK(standing().objection);
    auto erase = remove_request("Patient", nhs);
    erase.erase_record = true;
    must_write(*db, erase);
    CHECK_FALSE(standing().held);
    CHECK_FALSE(standing().relationship);

    SUBCASE("an audit record alone changes nothing a standing reads, and invalidates nothing") {
        std::promise<fhir::status> appended;
        audit_record record;
        record.user = "user-1";
        record.action = "read";
        record.outcome = "success";
        db->append_audit({record}, [&](fhir::status done) { appended.set_value(std::move(done)); });
        REQUIRE(appended.get_future().get().ok());
        CHECK_FALSE(standing().held);
    }
}

TEST_CASE("an upgrade links the Devices stored before to their citizens, every version, deletions as the version they delete") {
    store_fixture db;
    must_write(*db, patient(nhs));
    const std::string pacemaker = R"({"resourceType":"Device","patient":{"reference":"Patient/9000000009"},"type":{"text":"pacemaker"}})";
    must_write(*db, prepared(write_kind::create, "Device", "pacemaker", pacemaker));
    must_write(*db, prepared(write_kind::update, "Device", "pacemaker",
                             R"({"resourceType":"Device","id":"pacemaker","patient":{"reference":"Patient/9000000009"},"type":{"text":"pacemaker, dual chamber"}})"));
    must_write(*db, prepared(write_kind::create, "Device", "monitor", pacemaker));
    must_write(*db, remove_request("Device", "monitor"));
    must_write(*db, prepared(write_kind::create, "Device", "hoist", R"({"resourceType":"Device","type":{"text":"hoist"}})"));
    const auto linked = db.rows("SELECT id, version_id, citizens FROM resource_versions WHERE type = 'Device' ORDER BY seq");
    REQUIRE(linked == std::vector<std::vector<std::string>>{
                          {"pacemaker", "1", nhs}, {"pacemaker", "2", nhs}, {"monitor", "1", nhs}, {"monitor", "2", nhs}, {"hoist", "1", ""}});
    const auto version_citizens = db.count("SELECT count(*) FROM version_citizens");
    db.close();

    // What the previous release stored: Devices linked to no citizen. SQLite schema 15, PostgreSQL 12.
    const std::string forget =
        "UPDATE resource_versions SET citizens = '' WHERE type = 'Device'; "
        "DELETE FROM version_citizens WHERE seq IN (SELECT seq FROM resource_versions WHERE type = 'Device'); ";
    REQUIRE(db.execute(db.scratch ? "DROP TRIGGER resource_versions_never_change ON resource_versions; " + forget +
                                        "CREATE TRIGGER resource_versions_never_change BEFORE UPDATE ON resource_versions "
                                        "FOR EACH ROW EXECUTE FUNCTION caregate_refuse('resource versions are immutable'); "
                                        "UPDATE caregate_schema SET version = 12"
                                  : "DROP TRIGGER resource_versions_never_change; " + forget +
                                        "CREATE TRIGGER resource_versions_never_change BEFORE UPDATE ON resource_versions "
                                        "BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END; "
                                        "PRAGMA user_version = 15") == SQLITE_OK);
    REQUIRE(db.count("SELECT count(*) FROM version_citizens") == version_citizens - 3);
    db.reopen();
    CHECK(db.count(db.scratch ? "SELECT version FROM caregate_schema" : "PRAGMA user_version") ==
          (db.scratch ? newest_postgresql_schema : newest_sqlite_schema));
    CHECK(db.rows("SELECT id, version_id, citizens FROM resource_versions WHERE type = 'Device' ORDER BY seq") == linked);
    CHECK(db.count("SELECT count(*) FROM version_citizens") == version_citizens);
    auto read = db->read_current("Device", "pacemaker");
    REQUIRE(read.ok());
    CHECK(read->citizens == std::vector<std::string>{nhs});
    // The versions are immutable again.
    CHECK(db.execute("UPDATE resource_versions SET citizens = '' WHERE type = 'Device'") != SQLITE_OK);
}
