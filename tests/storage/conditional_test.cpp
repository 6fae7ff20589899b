// Conditional writes and transactions in the store: the writer runs a condition's search
// inside its write transaction, so concurrent conditional creates make exactly one resource; a
// transaction commits all its writes or none; a Patient goes only with its whole record.
#include "store_fixture.hpp"

#include "fhir_model/resource.hpp"
#include "fhir_model/search_query.hpp"
#include "storage/search.hpp"

#include <barrier>
#include <memory>
#include <set>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

const std::string nhs = "9000000009";
const std::string uuid_a = "0d5e6b5a-1f7e-4a51-9c3e-6b1a2f3c4d5e";
const std::string uuid_b = "7a1b2c3d-4e5f-4a6b-8c9d-0e1f2a3b4c5d";

std::string observation(const std::string& identifier, const std::string& value,
                        const std::string& encounter = {}) {
    return R"({"resourceType":"Observation","identifier":[{"system":"https://trust.example/obs","value":")" + identifier +
           R"("}],"status":"final","code":{"text":"heart rate"},"subject":{"reference":"Patient/)" + nhs + R"("})" +
           (encounter.empty() ? std::string() : R"(,"encounter":{"reference":"Encounter/)" + encounter + R"("})") +
           R"(,"valueQuantity":{"value":)" + value + "}}";
}

std::string encounter(const std::string& identifier) {
    return R"({"resourceType":"Encounter","identifier":[{"system":"https://trust.example/enc","value":")" + identifier +
           R"("}],"status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},)"
           R"("subject":{"reference":"Patient/)" + nhs + R"("}})";
}

/// A condition on `type` with these criteria, seen by everything (tools) unless a test narrows it.
std::shared_ptr<write_condition> condition(const std::string& type,
                                           std::vector<std::pair<std::string, std::string>> criteria) {
    auto parsed = fhir::parse_search_query({type}, criteria, {});
    REQUIRE(parsed.ok());
    auto made = std::make_shared<write_condition>();
    made->query = std::move(parsed.value());
    made->visibility.everything = true;
    made->removable = {{type, true, {}}};
    return made;
}

std::int64_t live(store_fixture& db, const std::string& type) {
    return db.count("SELECT count(*) FROM resources WHERE deleted = 0 AND type = '" + type + "'");
}

void with_patient(store_fixture& db) {
    auto created = db->write(prepared(write_kind::create, "Patient", nhs, patient_json(nhs)));
    REQUIRE(created.ok());
}

} // namespace

TEST_CASE("conditional create: none creates, one answers the match, several fail") {
    store_fixture db;
    with_patient(db);
    auto first = prepared(write_kind::create, "Observation", uuid_a, observation("obs-1", "72"));
    first.condition = condition("Observation", {{"identifier", "https://trust.example/obs|obs-1"}});
    auto created = db->write(first);
    REQUIRE(created.ok());
    CHECK(created->created);
    CHECK_FALSE(created->matched);
    CHECK(created->version.id == uuid_a);

    auto again = first;
    again.id = uuid_b;
    auto matched = db->write(again);
    REQUIRE(matched.ok());
    CHECK(matched->matched);
    CHECK(matched->version.id == uuid_a);
    CHECK(live(db, "Observation") == 1);

    auto plain = prepared(write_kind::create, "Observation", uuid_b, observation("obs-1", "80"));
    REQUIRE(db->write(plain).ok()); // a second one with the same identifier, unconditionally
    auto third = first;
    third.id = "5b2d1c0e-3f4a-4b5c-8d6e-7f8091a2b3c4";
    auto several = db->write(third);
    REQUIRE_FALSE(several.ok());
    CHECK(several.failure().kind == fhir::category::precondition_failed);
    CHECK(live(db, "Observation") == 2);
}

TEST_CASE("conditional create: a match the caller may not see does not count") {
    store_fixture db;
    with_patient(db);
    REQUIRE(db->write(prepared(write_kind::create, "Observation", uuid_a, observation("obs-1", "72"))).ok());
    auto blind = prepared(write_kind::create, "Observation", uuid_b, observation("obs-1", "72"));
    auto hidden = condition("Observation", {{"identifier", "https://trust.example/obs|obs-1"}});
    hidden->visibility.everything = false;
    hidden->visibility.all_citizens = true;
    hidden->visibility.readable = {{"Patient", true, {}}}; // may not read Observations at all
    blind.condition = hidden;
    auto outcome = db->write(blind);
    REQUIRE(outcome.ok());
    CHECK(outcome->created); // never the hidden one's id or content
    CHECK(outcome->version.id == uuid_b);
}

namespace {

/// 32 clients write the same conditional `kind` of the same Observation at the same moment, client i
/// through nodes[i % nodes.size()]; their outcomes, each checked to be a success.
std::vector<write_outcome> race(const std::vector<store*>& nodes, write_kind kind) {
    const auto criteria = condition("Observation", {{"identifier", "https://trust.example/obs|same"}});
    constexpr int clients = 32;
    std::barrier start(clients);
    std::vector<std::future<fhir::result<write_outcome>>> answers;
    for (int i = 0; i < clients; ++i)
        answers.push_back(std::async(std::launch::async, [&, i] {
            auto request = prepared(kind, "Observation", "id-" + std::to_string(i), observation("same", "72"));
            request.condition = criteria;
            start.arrive_and_wait();
            return nodes[static_cast<std::size_t>(i) % nodes.size()]->write(std::move(request));
        }));
    std::vector<write_outcome> outcomes;
    for (auto& answer : answers) {
        auto outcome = answer.get();
        REQUIRE(outcome.ok());
        outcomes.push_back(std::move(*outcome));
    }
    return outcomes;
}

/// The race's outcomes made exactly one resource: one create, every other a match of it.
void check_one_created(store_fixture& db, const std::vector<write_outcome>& outcomes) {
    int created = 0, matched = 0;
    std::set<std::string> ids;
    for (const auto& outcome : outcomes) {
        created += outcome.created;
        matched += outcome.matched;
        ids.insert(outcome.version.id);
    }
    CHECK(created == 1);
    CHECK(matched == 31);
    CHECK(ids.size() == 1);
    CHECK(live(db, "Observation") == 1);
}

} // namespace

TEST_CASE("32 concurrent conditional creates of the same identifier make exactly one resource") {
    store_fixture db;
    with_patient(db);
    check_one_created(db, race({db.db.get()}, write_kind::create));
}

TEST_CASE("32 concurrent conditional creates spread over two nodes on one database make exactly one resource" *
          caregate::testing::several_nodes()) {
    store_fixture db;
    with_patient(db);
    const auto second = db.another_node();
    check_one_created(db, race({db.db.get(), second.get()}, write_kind::create));
}

TEST_CASE("32 concurrent conditional updates of the same identifier make exactly one resource") {
    store_fixture db;
    with_patient(db);
    const auto outcomes = race({db.db.get()}, write_kind::update);
    int created = 0, unchanged = 0;
    for (const auto& outcome : outcomes) {
        created += outcome.created;
        unchanged += outcome.unchanged;
    }
    CHECK(created == 1);
    CHECK(unchanged == 31); // the same content again: no new version
    CHECK(live(db, "Observation") == 1);
    CHECK(db.count("SELECT count(*) FROM resource_versions WHERE type = 'Observation'") == 1);
}

TEST_CASE("conditional update: one match is updated; a body id that differs from it is refused") {
    store_fixture db;
    with_patient(db);
    REQUIRE(db->write(prepared(write_kind::create, "Observation", uuid_a, observation("obs-1", "72"))).ok());
    auto change = prepared(write_kind::update, "Observation", uuid_b, observation("obs-1", "99"));
    change.condition = condition("Observation", {{"identifier", "https://trust.example/obs|obs-1"}});
    auto updated = db->write(change);
    REQUIRE(updated.ok());
    CHECK(updated->version.id == uuid_a);
    CHECK(updated->version.version_id == 2);

    auto wrong_id = change;
    auto differs = std::make_shared<write_condition>(*change.condition);
    differs->client_id = "someone-else";
    wrong_id.condition = differs;
    auto refused = db->write(wrong_id);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().kind == fhir::category::malformed);
}

TEST_CASE("conditional delete: none, one, several (single and multiple), and facets it may not delete") {
    store_fixture db;
    with_patient(db);
    auto by_identifier = [&](const std::string& value) {
        auto request = remove_request("Observation", "unused");
        request.condition = condition("Observation", {{"identifier", "https://trust.example/obs|" + value}});
        return request;
    };
    auto nothing = db->write(by_identifier("none"));
    REQUIRE(nothing.ok());
    CHECK(nothing->removed_nothing);

    REQUIRE(db->write(prepared(write_kind::create, "Observation", "o1", observation("one", "72"))).ok());
    auto one = db->write(by_identifier("one"));
    REQUIRE(one.ok());
    CHECK(one->version.id == "o1");
    CHECK(one->version.deleted);

    REQUIRE(db->write(prepared(write_kind::create, "Observation", "o2", observation("two", "72"))).ok());
    REQUIRE(db->write(prepared(write_kind::create, "Observation", "o3", observation("two", "73"))).ok());
    auto single = db->write(by_identifier("two"));
    REQUIRE_FALSE(single.ok());
    CHECK(single.failure().kind == fhir::category::precondition_failed);
    CHECK(live(db, "Observation") == 2);

    auto forbidden = by_identifier("two");
    auto narrow = std::make_shared<write_condition>(*forbidden.condition);
    narrow->multiple = true;
    narrow->removable = {{"Observation", false, {"category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}}};
    forbidden.condition = narrow;
    auto refused = db->write(forbidden);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().kind == fhir::category::forbidden);
    CHECK(live(db, "Observation") == 2);

    auto all = by_identifier("two");
    auto multiple = std::make_shared<write_condition>(*all.condition);
    multiple->multiple = true;
    all.condition = multiple;
    auto both = db->write(all);
    REQUIRE(both.ok());
    CHECK(both->also_removed.size() == 1);
    CHECK(live(db, "Observation") == 0);
}

TEST_CASE("a transaction commits every write or none, and names the write that failed") {
    store_fixture db;
    with_patient(db);
    std::vector<write_request> writes;
    writes.push_back(prepared(write_kind::create, "Observation", uuid_a, observation("t-1", "72")));
    writes.push_back(prepared(write_kind::create, "Observation", uuid_b, observation("t-2", "72")));
    auto stale = prepared(write_kind::update, "Patient", nhs, patient_json(nhs, "Jones"));
    stale.if_match = 7; // the Patient is at version 1
    writes.push_back(stale);
    for (auto& write : writes) {
        write.audit = audit_record{};
        write.audit->action = "create";
        write.audit->resource_type = write.type;
    }
    auto failed = run_transaction(*db, writes);
    REQUIRE(std::holds_alternative<transaction_failure>(failed));
    CHECK(std::get<transaction_failure>(failed).index == 2);
    CHECK(std::get<transaction_failure>(failed).failure.kind == fhir::category::precondition_failed);
    CHECK(live(db, "Observation") == 0);
    CHECK(db.count("SELECT count(*) FROM audit_log WHERE outcome = 'failed'") == 3);

    writes.pop_back();
    auto done = run_transaction(*db, writes);
    REQUIRE(std::holds_alternative<std::vector<write_outcome>>(done));
    CHECK(std::get<std::vector<write_outcome>>(done).size() == 2);
    CHECK(live(db, "Observation") == 2);
    CHECK(db.count("SELECT count(*) FROM audit_log WHERE outcome = 'success'") == 2);
    auto verified = db->verify_audit();
    REQUIRE(verified.ok());
    CHECK_FALSE(verified->first_broken);
}

TEST_CASE("a transaction: a conditional create that matches gives its id to the other writes' references") {
    store_fixture db;
    with_patient(db);
    REQUIRE(db->write(prepared(write_kind::create, "Encounter", "enc-existing", encounter("visit-1"))).ok());

    std::vector<write_request> writes;
    // The item comes first, its Patient-independent Encounter second: order in the bundle.
    writes.push_back(prepared(write_kind::create, "Observation", uuid_b, observation("o-1", "72", uuid_a)));
    auto visit = prepared(write_kind::create, "Encounter", uuid_a, encounter("visit-1"));
    visit.condition = condition("Encounter", {{"identifier", "https://trust.example/enc|visit-1"}});
    writes.push_back(visit);
    auto done = run_transaction(*db, writes);
    REQUIRE(std::holds_alternative<std::vector<write_outcome>>(done));
    const auto& outcomes = std::get<std::vector<write_outcome>>(done);
    CHECK(outcomes[1].matched);
    CHECK(outcomes[1].version.id == "enc-existing");
    auto stored = db->read("Observation", uuid_b);
    REQUIRE(stored.ok());
    CHECK(stored->json.find("Encounter/enc-existing") != std::string::npos);
    CHECK(stored->json.find(uuid_a) == std::string::npos);
    CHECK(live(db, "Encounter") == 1);
}

TEST_CASE("a transaction may create the citizen after the items that name them") {
    store_fixture db;
    std::vector<write_request> writes;
    writes.push_back(prepared(write_kind::create, "Observation", uuid_a, observation("o-1", "72")));
    writes.push_back(prepared(write_kind::create, "Patient", nhs, patient_json(nhs)));
    auto done = run_transaction(*db, writes);
    REQUIRE(std::holds_alternative<std::vector<write_outcome>>(done));
    CHECK(live(db, "Observation") == 1);
    CHECK(live(db, "Patient") == 1);
}

TEST_CASE("a citizen's Patient is deleted only with the whole record, by an erasure") {
    store_fixture db;
    with_patient(db);
    REQUIRE(db->write(prepared(write_kind::create, "Observation", "o1", observation("o-1", "72"))).ok());
    REQUIRE(db->write(prepared(write_kind::create, "Encounter", "e1", encounter("visit-1"))).ok());
    auto refused = db->write(remove_request("Patient", nhs));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().kind == fhir::category::conflict);
    CHECK(live(db, "Patient") == 1);

    auto erase = remove_request("Patient", nhs);
    erase.erase_record = true;
    auto erased = db->write(erase);
    REQUIRE(erased.ok());
    CHECK(erased->version.deleted);
    CHECK(erased->also_removed.size() == 2);
    CHECK(db.count("SELECT count(*) FROM resources WHERE deleted = 0") == 0);
    CHECK(db.count("SELECT count(*) FROM " + current_citizen_links) == 0);
}
