// A Binary's bytes in the store (storage/src/relational/binary_parts.hpp), on both engines: kept in
// parts with their version and read back exactly, a part at a time; immutable; removed by an erasure
// with the Binary whose securityContext the erasure takes. And the visibility rule's part for a
// Binary (visibility_rule.hpp, rules 4 and 6), decided alike in memory (a read) and in SQL (a search).
#include "store_fixture.hpp"

#include "fhir_model/search_query.hpp"

#include <memory>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

constexpr const char* tom = "9000000009";
constexpr const char* ann = "9000000017";

/// A Binary by `owner` for `context` (none when empty), holding `bytes`.
write_request binary(write_kind kind, const std::string& id, const std::string& bytes, const std::string& context,
                     const std::string& owner = "A81001") {
    write_request request = prepared(kind, "Binary", id,
                                     R"({"resourceType":"Binary","contentType":"application/pdf")" +
                                         (context.empty() ? std::string()
                                                          : R"(,"securityContext":{"reference":")" + context + R"("})") +
                                         "}");
    request.writer = owner;
    if (!bytes.empty())
        request.binary_bytes = std::make_shared<const std::string>(bytes);
    return request;
}

std::string patterned(std::size_t size, int salt) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        bytes[i] = static_cast<char>((i * 31 + static_cast<std::size_t>(salt)) & 0xff);
    return bytes;
}

/// The bytes read back, and the sizes of the parts they came in (each call's `whole` checked alike).
struct read_back {
    std::string bytes;
    std::vector<std::size_t> parts;
};

read_back read_bytes(const store& db, const std::string& id, std::int64_t version) {
    read_back out;
    auto read = db.binary_bytes(id, version, [&](std::string_view part, std::size_t whole) {
        out.bytes.append(part);
        out.parts.push_back(part.size());
        CHECK(whole >= out.bytes.size());
        return fhir::status{};
    });
    REQUIRE_MESSAGE(read.ok(), read.failure().issues.front().diagnostics);
    return out;
}

std::vector<std::string> binaries_seen(store& db, const search_visibility& visibility) {
    static const fhir::search_query query = fhir::parse_search_query({"Binary"}, {}, {}).value();
    search_request request;
    request.query = &query;
    request.visibility = visibility;
    auto page = db.search(request);
    REQUIRE(page.ok());
    std::vector<std::string> ids;
    for (const auto& entry : page->entries)
        ids.push_back(entry.version.id);
    std::sort(ids.begin(), ids.end());
    return ids;
}

search_visibility clinician_of(const std::string& organisation) {
    search_visibility caller;
    caller.organisation = organisation;
    caller.readable = {{"Binary", true, {}}, {"Observation", true, {}}, {"Patient", true, {}}};
    return caller;
}

} // namespace

TEST_CASE("Binary bytes: kept in parts with their version, read back exactly; each version keeps its own") {
    store_fixture db;
    const std::string first = patterned(store::binary_part_bytes * 2 + 7, 1);
    must(*db, binary(write_kind::create, "b1", first, {}));
    const std::string second = patterned(100, 2);
    auto updated = must(*db, binary(write_kind::update, "b1", second, {}));
    CHECK(updated.version.version_id == 2);
    CHECK(updated.version.json.find("data") == std::string::npos); // the JSON holds no bytes

    auto one = read_bytes(*db, "b1", 1);
    CHECK(one.bytes == first);
    CHECK(one.parts == std::vector<std::size_t>{store::binary_part_bytes, store::binary_part_bytes, 7});
    CHECK(read_bytes(*db, "b1", 2).bytes == second);
    // The same JSON and other bytes made a version: an update of a Binary is never "unchanged".
    CHECK_FALSE(updated.unchanged);

    // A Binary without bytes has no parts; a version not held is not_found.
    must(*db, binary(write_kind::create, "empty", {}, {}));
    CHECK(read_bytes(*db, "empty", 1).parts.empty());
    auto missing = db->binary_bytes("b1", 3, [](std::string_view, std::size_t) { return fhir::status{}; });
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.failure().kind == fhir::category::not_found);
    // A failure of the reader stops the reading and is returned as it is.
    int calls = 0;
    auto stopped = db->binary_bytes("b1", 1, [&](std::string_view, std::size_t) {
        ++calls;
        return fhir::status(fhir::error::make(fhir::category::busy, "transient", "the client went away"));
    });
    CHECK(calls == 1);
    REQUIRE_FALSE(stopped.ok());
    CHECK(stopped.failure().kind == fhir::category::busy);

    // Immutable as the versions are: no change and no deletion outside an erasure.
    CHECK(db.execute("UPDATE binary_parts SET part = part + 10") != SQLITE_OK);
    CHECK(db.execute("DELETE FROM binary_parts") != SQLITE_OK);
    db.reopen();
    CHECK(read_bytes(*db, "b1", 1).bytes == first);
}

TEST_CASE("Binary bytes: an erasure removes the Binary whose securityContext it takes, bytes and all") {
    store_fixture db;
    must(*db, prepared(write_kind::create, "Patient", tom, patient_json(tom)));
    must(*db, prepared(write_kind::create, "Patient", ann, patient_json(ann)));
    write_request toms = prepared(write_kind::create, "Observation", "toms", observation_json(tom));
    write_request anns = prepared(write_kind::create, "Observation", "anns", observation_json(ann));
    must(*db, toms);
    must(*db, anns);
    must(*db, binary(write_kind::create, "of-tom", patterned(5000, 3), "Observation/toms"));
    must(*db, binary(write_kind::create, "of-ann", patterned(6000, 4), "Observation/anns"));
    REQUIRE(db.count("SELECT count(*) FROM binary_parts") == 2);

    write_request erase = remove_request("Patient", tom);
    erase.erase_record = true;
    must(*db, erase);
    CHECK_FALSE(db->read("Binary", "of-tom").ok());
    CHECK(db.count("SELECT count(*) FROM binary_parts") == 1);
    CHECK(read_bytes(*db, "of-ann", 1).bytes == patterned(6000, 4));
}

TEST_CASE("Binary visibility: with a securityContext, exactly its readers; with none, its writer's organisation alone") {
    store_fixture db;
    must(*db, prepared(write_kind::create, "Patient", tom, patient_json(tom)));
    write_request item = prepared(write_kind::create, "Observation", "result", observation_json(tom));
    item.writer = "A81001";
    must(*db, item);
    must(*db, binary(write_kind::create, "with-context", "x", "Observation/result"));
    must(*db, binary(write_kind::create, "gp-own", "y", {}, "A81001"));
    must(*db, binary(write_kind::create, "trust-own", "z", {}, "RX1"));

    search_visibility gp = clinician_of("A81001");
    gp.all_citizens = true; // sees Tom's record
    search_visibility trust = clinician_of("RX1"); // no relationship with Tom
    // The search (SQL) and a read (in memory) decide alike.
    CHECK(binaries_seen(*db, gp) == std::vector<std::string>{"gp-own", "with-context"});
    CHECK(binaries_seen(*db, trust) == std::vector<std::string>{"trust-own"});
    for (const std::string id : {"with-context", "gp-own", "trust-own"}) {
        CAPTURE(id);
        auto version = db->read("Binary", id);
        REQUIRE(version.ok());
        CHECK(*db->version_visible(gp, *version) == (id != "trust-own"));
        CHECK(*db->version_visible(trust, *version) == (id == "trust-own"));
    }
    // Without the grant of Binary, none, whatever the context.
    search_visibility no_grant = gp;
    no_grant.readable = {{"Observation", true, {}}, {"Patient", true, {}}};
    CHECK(binaries_seen(*db, no_grant).empty());
    // The context restricted to its writer (very restricted) takes the Binary with it.
    write_request restricted = prepared(
        write_kind::update, "Observation", "result",
        R"({"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"V"}]},)"
        R"("status":"final","code":{"text":"heart rate"},"subject":{"reference":"Patient/9000000009"}})");
    restricted.writer = "A81001";
    must(*db, restricted);
    search_visibility other_gp = clinician_of("A81002");
    other_gp.all_citizens = true;
    other_gp.owner_only_labels = {"http://terminology.hl7.org/CodeSystem/v3-Confidentiality|V"};
    CHECK(binaries_seen(*db, other_gp).empty());
    gp.owner_only_labels = other_gp.owner_only_labels;
    CHECK(binaries_seen(*db, gp) == std::vector<std::string>{"gp-own", "with-context"});
}
