// The search planner (storage/src/relational/search_plan.hpp and the parts it lists) on a real
// database: the query plans SQLite chooses for the common searches use the indexes (the plans
// written down below), and paging on a snapshot gives each result exactly once while another
// thread writes.
#include "store_fixture.hpp"

#include "fhir_model/nhs_number.hpp"
#include "fhir_model/resource.hpp"
#include "fhir_model/search_query.hpp"
#include "storage/search.hpp"

#include <algorithm>
#include <atomic>
#include <future>
#include <set>
#include <thread>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;

namespace {

/// The database's plan for a search's page query: what this file's plans are checked against.
fhir::result<std::string> plan_of(store_fixture& f, const search_request& request) {
    return dynamic_cast<relational_store&>(*f.db).explain_search(request);
}

std::string patient(const std::string& nhs, const std::string& family, const std::string& birth_date) {
    return R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs +
           R"("}],"name":[{"family":")" + family + R"("}],"birthDate":")" + birth_date + R"("})";
}

std::string observation(const std::string& nhs, const std::string& code, const std::string& value) {
    return R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":")" +
           code + R"("}]},"subject":{"reference":"Patient/)" + nhs +
           R"("},"effectiveDateTime":"2026-11-01T10:00:00Z","valueQuantity":{"value":)" + value + "}}";
}

fhir::search_query parse(const std::string& type, std::vector<std::pair<std::string, std::string>> params) {
    fhir::search_query_options options;
    options.max_count = 10000;
    auto parsed = fhir::parse_search_query({type}, params, options);
    REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? std::string() : parsed.failure().issues.front().diagnostics));
    return std::move(parsed.value());
}

search_request everything_visible(const fhir::search_query& query) {
    search_request request;
    request.query = &query;
    request.visibility.everything = true;
    return request;
}

/// Writes and waits for all of them (submitted together, so they commit in groups); whether all
/// succeeded. Asserts nothing, so that a thread other than the test's may call it.
bool wrote_all(store& db, std::vector<write_request> requests) {
    std::vector<std::future<bool>> done;
    for (auto& request : requests) {
        auto promise = std::make_shared<std::promise<bool>>();
        done.push_back(promise->get_future());
        db.submit(std::move(request), [promise](fhir::result<write_outcome> outcome) { promise->set_value(outcome.ok()); });
    }
    bool all = true;
    for (auto& d : done)
        all = d.get() && all;
    return all;
}

void write_all(store& db, std::vector<write_request> requests) { REQUIRE(wrote_all(db, std::move(requests))); }

/// The ids of a page's matches (not its includes), in order.
std::vector<std::string> match_ids(const search_page& page) {
    std::vector<std::string> ids;
    for (const auto& e : page.entries)
        if (!e.include)
            ids.push_back(e.version.id);
    return ids;
}

/// The page of `request` that `cursor` names.
search_page page_at(store& db, search_request request, const search_cursor& cursor) {
    request.cursor = cursor;
    auto page = db.search(request);
    REQUIRE(page.ok());
    return std::move(page).value();
}

/// The ids of every page of a search, following `next` cursors, in order.
std::vector<std::string> all_ids(store& db, search_request request) {
    std::vector<std::string> ids;
    for (;;) {
        auto page = db.search(request);
        REQUIRE(page.ok());
        for (const auto& e : page->entries)
            ids.push_back(e.version.id);
        if (!page->next)
            return ids;
        request.cursor = page->next;
    }
}

/// The ids every page of a search of `type` finds, sorted: for tests of which resources match.
std::vector<std::string> matching_ids(store& db, const std::string& type,
                                      std::vector<std::pair<std::string, std::string>> params) {
    auto query = parse(type, std::move(params));
    std::vector<std::string> ids = all_ids(db, everything_visible(query));
    std::sort(ids.begin(), ids.end());
    return ids;
}

} // namespace

// The expected plans of the common queries, as SQLite's EXPLAIN QUERY PLAN states them. Each starts
// from its most selective condition through an index; none scans a table.
TEST_CASE("search plan: the common queries start from an index and scan no table" * caregate::testing::sqlite_only()) {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    write_all(*f.db, {prepared(write_kind::create, "Observation", "o1", observation("9000000009", "8867-4", "72"))});

    struct expected_plan {
        std::string type;
        std::vector<std::pair<std::string, std::string>> params;
        std::string compartment;
        std::vector<std::string> indexes; ///< each must appear in the plan
    };
    const std::vector<expected_plan> plans = {
        // Observation?patient=X&code=Y: the citizen's references, then the code by version.
        {"Observation", {{"patient", "9000000009"}, {"code", "http://loinc.org|8867-4"}}, {},
         {"search_reference_by_target", "search_token_by_version"}},
        // MedicationRequest?patient=X&status=active
        {"MedicationRequest", {{"patient", "9000000009"}, {"status", "active"}}, {},
         {"search_reference_by_target", "search_token_by_version"}},
        // Patient?identifier=system|value
        {"Patient", {{"identifier", "https://fhir.nhs.uk/Id/nhs-number|9000000009"}}, {}, {"search_token_by_code"}},
        // Patient?family=F&birthdate=D: the name prefix range, then the date by version.
        {"Patient", {{"family", "smi"}, {"birthdate", "1970-01-01"}}, {},
         {"search_string_by_value", "search_date_by_version"}},
        // Encounter?date=ge...&_sort=-date: the dates ending after the bound, the sort key by version.
        {"Encounter", {{"date", "ge2026-01-01"}, {"_sort", "-date"}}, {}, {"search_date_by_high", "search_date_by_version"}},
        // Patient/X/Observation: the citizen's versions.
        {"Observation", {}, "9000000009", {"version_citizens_by_citizen"}},
    };
    for (const expected_plan& expected : plans) {
        auto query = parse(expected.type, expected.params);
        search_request request = everything_visible(query);
        request.compartment = expected.compartment;
        auto plan = plan_of(f, request);
        REQUIRE(plan.ok());
        CAPTURE(expected.type);
        CAPTURE(plan.value());
        for (const std::string& index : expected.indexes)
            CHECK(plan->find(index) != std::string::npos);
        // "SCAN x" over a table (not a subquery's result or a covering index) would read it whole.
        for (const char* table : {"SCAN search_", "SCAN resource_versions", "SCAN version_citizens", "SCAN v "})
            CHECK(plan->find(table) == std::string::npos);
    }

    // With the caller's visibility in the query the citizen checks are index lookups too.
    auto query = parse("Observation", {{"patient", "9000000009"}, {"code", "http://loinc.org|8867-4"}});
    search_request request;
    request.query = &query;
    request.visibility.organisation = "A81001";
    request.visibility.user = "gp-doctor-1";
    request.visibility.readable = {{"Observation", true, {}}};
    request.visibility.hidden_labels = {"http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R"};
    auto plan = plan_of(f, request);
    REQUIRE(plan.ok());
    CAPTURE(plan.value());
    for (const char* index : {"organisation_links_by_citizen", "objections_by_nhs_number", "break_glass_grants_by_caller"})
        CHECK(plan->find(index) != std::string::npos);
    for (const char* table : {"SCAN search_", "SCAN resource_versions", "SCAN organisation_links", "SCAN objections"})
        CHECK(plan->find(table) == std::string::npos);
}

TEST_CASE("search paging: 10,000 results paged while another client writes give each result exactly once") {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    constexpr int matches = 10000;
    std::vector<write_request> batch;
    for (int i = 0; i < matches; ++i)
        batch.push_back(prepared(write_kind::create, "Observation", "o" + std::to_string(i),
                                 observation("9000000009", "8867-4", std::to_string(60 + i % 40))));
    write_all(*f.db, std::move(batch));

    // The other client: new matches, updates that change the sort value of existing ones, deletions.
    std::atomic<int> writes{0};
    std::atomic<bool> write_failed{false};
    // Stopped and joined as the test ends, however it ends; no REQUIRE off the test's own thread.
    std::jthread writer([&](std::stop_token stop) {
        for (int i = 0; !stop.stop_requested(); ++i) {
            bool wrote = wrote_all(*f.db, {prepared(write_kind::create, "Observation", "new" + std::to_string(i),
                                                    observation("9000000009", "8867-4", "1")),
                                           prepared(write_kind::update, "Observation", "o" + std::to_string((i * 7919) % matches),
                                                    observation("9000000009", "8867-4", std::to_string(200 + i)))});
            if (wrote && i % 5 == 0) {
                write_request removal;
                removal.kind = write_kind::remove;
                removal.type = "Observation";
                removal.id = "o" + std::to_string((i * 104729) % matches);
                wrote = wrote_all(*f.db, {std::move(removal)});
            }
            if (!wrote) {
                write_failed = true;
                return;
            }
            writes += 2;
        }
    });

    // Once in the order of writes, once sorted by the value the other client changes.
    for (const bool by_value : {false, true}) {
        CAPTURE(by_value);
        std::vector<std::pair<std::string, std::string>> params = {
            {"code", "http://loinc.org|8867-4"}, {"_count", "500"}, {"_total", "accurate"}};
        if (by_value)
            params.emplace_back("_sort", "-value-quantity");
        auto query = parse("Observation", params);
        search_request request = everything_visible(query);
        std::multiset<std::string> seen;
        std::int64_t total = -1;
        int pages = 0;
        double last_value = 1e300;
        bool ordered = true;
        for (;;) {
            auto page = f.db->search(request);
            REQUIRE(page.ok());
            REQUIRE(page->total);
            if (total < 0)
                total = *page->total; // the matches at the snapshot of the first page
            CHECK(*page->total == total); // every page counts the same snapshot
            for (const search_entry& entry : page->entries) {
                seen.insert(entry.version.id);
                if (by_value) {
                    const auto at = entry.version.json.find("\"value\":");
                    const double value = std::stod(entry.version.json.substr(at + 8));
                    ordered = ordered && value <= last_value;
                    last_value = value;
                }
            }
            ++pages;
            if (!page->next)
                break;
            request.cursor = page->next;
        }
        CHECK(total >= matches - 2000); // the writer deletes one in ten of what it touches
        CHECK(pages == (total + 499) / 500);
        CHECK(seen.size() == static_cast<std::size_t>(total));
        CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == static_cast<std::size_t>(total));
        CHECK(ordered);
    }
    writer.request_stop();
    writer.join();
    CHECK_FALSE(write_failed);
    CHECK(writes > 0);
}

TEST_CASE("$everything pages: each of the record's versions once, in write order; previous goes back one page") {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01")),
                      prepared(write_kind::create, "Patient", "9000000017", patient("9000000017", "Jones", "1980-01-01"))});
    std::vector<write_request> batch;
    for (int i = 0; i < 23; ++i) {
        batch.push_back(prepared(write_kind::create, "Observation", "o" + std::to_string(i),
                                 observation("9000000009", "8867-4", std::to_string(i))));
        batch.push_back(prepared(write_kind::create, "Observation", "other" + std::to_string(i),
                                 observation("9000000017", "8867-4", std::to_string(i))));
    }
    write_all(*f.db, std::move(batch));
    // Deleted and updated items: a deletion is not in the record, an update is there once (its newest).
    write_request removal;
    removal.kind = write_kind::remove;
    removal.type = "Observation";
    removal.id = "o3";
    write_all(*f.db, {std::move(removal)});
    write_all(*f.db, {prepared(write_kind::update, "Observation", "o5", observation("9000000009", "8867-4", "55"))});
    auto query = parse("Patient", {{"_count", "7"}});
    query.types.clear();
    search_request request = everything_visible(query);
    request.everything = true;
    request.compartment = "9000000009";

    std::vector<std::string> ids;
    std::vector<search_cursor> nexts;
    for (;;) {
        auto page = f.db->search(request);
        REQUIRE(page.ok());
        const auto on_page = match_ids(*page);
        ids.insert(ids.end(), on_page.begin(), on_page.end());
        if (!page->next)
            break;
        nexts.push_back(*page->next);
        request.cursor = page->next;
    }
    std::vector<std::string> expected = {"9000000009"};
    for (int i = 0; i < 23; ++i)
        if (i != 3 && i != 5)
            expected.push_back("o" + std::to_string(i));
    expected.push_back("o5"); // updated last: its newest version comes last
    CHECK(ids == expected); // in write order, each once, nothing of the other citizen's
    REQUIRE(nexts.size() == 3); // 23 entries, 7 a page

    if (!caregate::testing::on_postgresql()) { // and it reads them in that order, stopping at the page's end
        request.cursor.reset();
        auto plan = plan_of(f, request);
        REQUIRE(plan.ok());
        CHECK_MESSAGE(plan->find("version_citizens_by_citizen") != std::string::npos, plan.value());
        CHECK_MESSAGE(plan->find("TEMP B-TREE FOR ORDER BY") == std::string::npos, plan.value());
    }

    // From the third page, previous gives the second again.
    const search_page third = page_at(*f.db, request, nexts[1]);
    REQUIRE(third.previous);
    CHECK(match_ids(page_at(*f.db, request, *third.previous)) == match_ids(page_at(*f.db, request, nexts[0])));
}

TEST_CASE("search paging: previous links go back exactly one page; a cursor is opaque and checked") {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    std::vector<write_request> batch;
    for (int i = 0; i < 25; ++i)
        batch.push_back(prepared(write_kind::create, "Observation", "o" + std::to_string(i),
                                 observation("9000000009", "8867-4", std::to_string(i))));
    write_all(*f.db, std::move(batch));
    auto query = parse("Observation", {{"code", "8867-4"}, {"_count", "10"}, {"_sort", "value-quantity"}});
    search_request request = everything_visible(query);
    auto first = f.db->search(request);
    REQUIRE(first.ok());
    CHECK_FALSE(first->previous);
    REQUIRE(first->next);
    const search_page second = page_at(*f.db, request, *first->next);
    REQUIRE(second.previous);
    CHECK(match_ids(page_at(*f.db, request, *second.previous)) == match_ids(*first));

    // Cursors travel in links: encoded, and refused when not one of ours.
    auto decoded = decode_cursor(encode_cursor(*second.next));
    REQUIRE(decoded.ok());
    CHECK(decoded->snapshot == second.next->snapshot);
    CHECK(decoded->after == second.next->after);
    CHECK(decode_cursor("not a cursor!").failure().kind == fhir::category::malformed);
    CHECK(decode_cursor(encode_cursor(search_cursor{5, false, "x"})).failure().kind == fhir::category::malformed);
}

TEST_CASE("search plan: of two conditions the one with fewer rows drives, counted through the index" * caregate::testing::sqlite_only()) {
    store_fixture f;
    std::vector<write_request> batch;
    // Forty Smiths, one of them born on 1970-01-01.
    int made = 0;
    for (long long n = 900001000; made < 40; ++n) {
        // Test-range numbers with a valid Modulus 11 check digit.
        std::string valid;
        for (char d = '0'; d <= '9' && valid.empty(); ++d)
            if (fhir::is_valid_nhs_number(std::to_string(n) + d))
                valid = std::to_string(n) + d;
        if (valid.empty())
            continue;
        batch.push_back(prepared(write_kind::create, "Patient", valid,
                                 patient(valid, "Smith", made == 0 ? "1970-01-01" : "1980-02-" + std::to_string(10 + made % 18))));
        ++made;
    }
    write_all(*f.db, std::move(batch));
    auto by_name_and_birth = parse("Patient", {{"family", "smith"}, {"birthdate", "1970-01-01"}});
    auto plan = plan_of(f, everything_visible(by_name_and_birth));
    REQUIRE(plan.ok());
    CAPTURE(plan.value());
    // The birth date (1 row) drives; the name (40 rows) is checked per version.
    CHECK(plan->find("search_date_by_range") != std::string::npos);
    CHECK(plan->find("search_string_by_version") != std::string::npos);
    auto found = f.db->search(everything_visible(by_name_and_birth));
    REQUIRE(found.ok());
    CHECK(found->entries.size() == 1);

    auto by_name = parse("Patient", {{"family", "smith"}, {"gender", "unknown"}});
    auto other = plan_of(f, everything_visible(by_name));
    REQUIRE(other.ok());
    CAPTURE(other.value());
    CHECK(other->find("search_token_by_code") != std::string::npos); // no one has gender unknown: 0 rows
}

TEST_CASE("search plan: sorted by a date it also bounds, a page reads the date index in order and is exact" * caregate::testing::sqlite_only()) {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    // Goals with one or two target dates (Goal.target is a list): the key of a resource is its
    // latest target date, whichever row carries it.
    std::vector<write_request> batch;
    auto day = [](int n) {
        const int month = 1 + n / 28, date = 1 + n % 28;
        return std::string("2026-") + (month < 10 ? "0" : "") + std::to_string(month) + "-" + (date < 10 ? "0" : "") +
               std::to_string(date);
    };
    for (int i = 0; i < 40; ++i) {
        std::string targets = R"({"dueDate":")" + day(i * 7 % 300) + R"("})";
        if (i % 3 == 0)
            targets += R"(,{"dueDate":")" + day((i * 11 + 5) % 300) + R"("})";
        batch.push_back(prepared(write_kind::create, "Goal", "g" + std::to_string(i),
                                 R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"walk"},"subject":{"reference":"Patient/9000000009"},"target":[)" +
                                     targets + "]}"));
    }
    write_all(*f.db, std::move(batch));

    auto page_through = [&](std::vector<std::pair<std::string, std::string>> params) {
        auto query = parse("Goal", params);
        return all_ids(*f.db, everything_visible(query));
    };
    // The same search by the general plan (a second key forces it; -_lastUpdated orders ties as
    // the write order does, newest first) gives the same order.
    auto ordered = page_through({{"target-date", "ge2026-04-01"}, {"_sort", "-target-date"}, {"_count", "4"}});
    auto general =
        page_through({{"target-date", "ge2026-04-01"}, {"_sort", "-target-date,-_lastUpdated"}, {"_count", "1000"}});
    CHECK(ordered.size() > 10);
    CHECK(std::set<std::string>(ordered.begin(), ordered.end()).size() == ordered.size());
    CHECK(ordered == general);

    // Sorted by the date alone, a Goal without a target date is still found, after the others.
    write_all(*f.db, {prepared(write_kind::create, "Goal", "undated",
                               R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"rest"},"subject":{"reference":"Patient/9000000009"}})")});
    auto by_date_alone = page_through({{"_sort", "-target-date"}, {"_count", "7"}});
    CHECK(by_date_alone.size() == 41);
    CHECK(by_date_alone.back() == "undated");

    auto query = parse("Goal", {{"target-date", "ge2026-04-01"}, {"_sort", "-target-date"}});
    auto plan = plan_of(f, everything_visible(query));
    REQUIRE(plan.ok());
    CAPTURE(plan.value());
    CHECK(plan->find("search_date_by_high") != std::string::npos);
    CHECK(plan->find("TEMP B-TREE FOR ORDER BY") == std::string::npos);
}

TEST_CASE("search paging: an item deleted or restricted after the first page leaves the later pages") {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    std::vector<write_request> batch;
    for (int i = 0; i < 30; ++i) {
        write_request w = prepared(write_kind::create, "Observation", "o" + std::to_string(i),
                                   observation("9000000009", "8867-4", std::to_string(i)));
        w.writer = "RX1";
        batch.push_back(std::move(w));
    }
    write_all(*f.db, std::move(batch));
    auto query = parse("Observation", {{"code", "8867-4"}, {"_count", "10"}});
    search_request request;
    request.query = &query;
    request.visibility.all_citizens = true; // the relationship is not what this test is about
    request.visibility.organisation = "A81001";
    request.visibility.readable = {{"Observation", true, {}}};
    request.visibility.owner_only_labels = {"http://terminology.hl7.org/CodeSystem/v3-Confidentiality|V"};
    auto first = f.db->search(request);
    REQUIRE(first.ok());
    REQUIRE(first->entries.size() == 10);
    // After the first page: o25 is restricted to the organisation that wrote it, o26 deleted.
    const std::string restricted =
        R"({"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"V"}]},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/9000000009"},"effectiveDateTime":"2026-11-01T10:00:00Z","valueQuantity":{"value":25}})";
    write_request label = prepared(write_kind::update, "Observation", "o25", restricted);
    label.writer = "RX1";
    write_request removal;
    removal.kind = write_kind::remove;
    removal.type = "Observation";
    removal.id = "o26";
    removal.writer = "RX1";
    write_all(*f.db, {std::move(label), std::move(removal)});

    std::set<std::string> later;
    request.cursor = first->next;
    while (request.cursor) {
        auto page = f.db->search(request);
        REQUIRE(page.ok());
        for (const auto& e : page->entries)
            later.insert(e.version.id);
        request.cursor = page->next;
    }
    CHECK(later.size() == 18);
    CHECK(later.count("o25") == 0);
    CHECK(later.count("o26") == 0);
    CHECK(later.count("o27") == 1);
}

// A union parameter (fhir::search_parameter::union_of) has no rows of its own: Observation's
// combo-code is searched through code's and component-code's, and finds what either holds.
TEST_CASE("search: a union parameter finds what any of its parts holds, and keeps no rows of its own") {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    const std::string pressure =
        R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},)"
        R"("subject":{"reference":"Patient/9000000009"},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},)"
        R"("valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})";
    write_all(*f.db, {prepared(write_kind::create, "Observation", "bp", pressure),
                      prepared(write_kind::create, "Observation", "hr", observation("9000000009", "8867-4", "72")),
                      prepared(write_kind::create, "Observation", "low", observation("9000000009", "8500-0", "50"))});
    auto found = [&](std::vector<std::pair<std::string, std::string>> params) {
        return matching_ids(*f.db, "Observation", std::move(params));
    };
    using ids = std::vector<std::string>;
    CHECK(found({{"combo-code", "http://loinc.org|85354-9"}}) == ids{"bp"});
    CHECK(found({{"combo-code", "http://loinc.org|8480-6"}}) == ids{"bp"});
    CHECK(found({{"combo-code", "8867-4,8480-6"}}) == ids{"bp", "hr"});
    CHECK(found({{"code", "8480-6"}}).empty());
    CHECK(found({{"combo-code:not", "8480-6"}}) == ids{"hr", "low"});
    CHECK(found({{"combo-code:missing", "true"}}).empty());
    CHECK(found({{"combo-value-quantity", "120||mm[Hg]"}}) == ids{"bp"});
    CHECK(found({{"combo-value-quantity", "gt100"}}) == ids{"bp"});
    CHECK(found({{"combo-code-value-quantity", "8480-6$120"}}) == ids{"bp"});
    CHECK(found({{"combo-code-value-quantity", "8867-4$72"}}) == ids{"hr"});
    // Sorted by the least of each one's codes, bp by its component's 8480-6 (by code alone, 85354-9,
    // it would come after low's 8500-0); descending by the greatest.
    auto by_code = parse("Observation", {{"combo-code", "8867-4,85354-9,8500-0"}, {"_sort", "combo-code"}});
    CHECK(all_ids(*f.db, everything_visible(by_code)) == ids{"bp", "low", "hr"});
    auto by_code_descending = parse("Observation", {{"combo-code", "8867-4,85354-9,8500-0"}, {"_sort", "-combo-code"}});
    CHECK(all_ids(*f.db, everything_visible(by_code_descending)) == ids{"hr", "bp", "low"});
    CHECK(f.count("SELECT count(*) FROM search_token WHERE param LIKE 'combo-%'") == 0);
    CHECK(f.count("SELECT count(*) FROM search_quantity WHERE param LIKE 'combo-%'") == 0);
    CHECK(f.count("SELECT count(*) FROM search_composite WHERE param LIKE 'combo-%'") == 0);
}

// A narrowing (fhir::search_parameter::narrows) has no rows of its own: Observation's patient is
// subject's rows whose target is a Patient, as resolve() gives it, also for a contained Patient or
// an absolute URL; every way of searching through it finds what its own rows found.
TEST_CASE("search: a narrowing finds its parameter's references of its type, however it is searched") {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    const std::string contained =
        R"({"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"}],"status":"final",)"
        R"("code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"#p"},)"
        R"("performer":[{"reference":"Patient/9000000009"}]})";
    const std::string absolute =
        R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},)"
        R"("subject":{"reference":"https://other.example/fhir/Patient/1"},"performer":[{"reference":"Patient/9000000009"}]})";
    const std::string group =
        R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},)"
        R"("subject":{"reference":"https://other.example/fhir/Group/1"},"performer":[{"reference":"Patient/9000000009"}]})";
    write_all(*f.db, {prepared(write_kind::create, "Observation", "local", observation("9000000009", "8867-4", "72")),
                      prepared(write_kind::create, "Observation", "contained", contained),
                      prepared(write_kind::create, "Observation", "absolute", absolute),
                      prepared(write_kind::create, "Observation", "group", group)});
    using ids = std::vector<std::string>;
    auto found = [&](const std::string& type, std::vector<std::pair<std::string, std::string>> params) {
        return matching_ids(*f.db, type, std::move(params));
    };
    CHECK(found("Observation", {{"patient", "9000000009"}}) == ids{"local"});
    CHECK(found("Observation", {{"patient", "Patient/9000000009"}}) == ids{"local"});
    CHECK(found("Observation", {{"patient", "https://other.example/fhir/Patient/1"}}) == ids{"absolute"});
    CHECK(found("Observation", {{"patient", "https://other.example/fhir/Group/1"}}).empty());
    CHECK(found("Observation", {{"subject", "https://other.example/fhir/Group/1"}}) == ids{"group"});
    CHECK(found("Observation", {{"patient:missing", "true"}}) == ids{"group"});
    CHECK(found("Observation", {{"patient:missing", "false"}}) == ids{"absolute", "contained", "local"});
    CHECK(found("Observation", {{"patient.family", "smith"}}) == ids{"local"});
    CHECK(found("Patient", {{"_has:Observation:patient:code", "8867-4"}}) == ids{"9000000009"});
    CHECK(found("Observation", {{"code", "8867-4"}, {"_sort", "patient"}}).size() == 4);

    auto included = [&](const std::string& type, std::vector<std::pair<std::string, std::string>> params) {
        auto query = parse(type, std::move(params));
        auto page = f.db->search(everything_visible(query));
        REQUIRE(page.ok());
        std::set<std::string> all;
        for (const auto& e : page->entries)
            if (e.include)
                all.insert(e.version.type + "/" + e.version.id);
        return all;
    };
    CHECK(included("Observation", {{"_id", "local"}, {"_include", "Observation:patient"}}) ==
          std::set<std::string>{"Patient/9000000009"});
    CHECK(included("Patient", {{"_revinclude", "Observation:patient"}}) == std::set<std::string>{"Observation/local"});
    CHECK(f.count("SELECT count(*) FROM search_reference WHERE type = 'Observation' AND param = 'patient'") == 0);
}

// _revinclude=* and _revinclude=Type:* name no parameter: every reference parameter of the source
// types is read (search_includes.cpp), through the index by (type, param, target).
TEST_CASE("search: _revinclude=* finds what references a match through any parameter, live and readable only") {
    store_fixture f;
    const std::string subject = R"("subject":{"reference":"Patient/9000000009"})";
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    write_all(*f.db,
              {prepared(write_kind::create, "Observation", "o1", observation("9000000009", "8867-4", "72")),
               prepared(write_kind::create, "Observation", "o2", observation("9000000009", "8867-4", "73")),
               prepared(write_kind::create, "Condition", "c1", R"({"resourceType":"Condition",)" + subject + "}"),
               prepared(write_kind::create, "Encounter", "e1",
                        R"({"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},)" + subject + "}")});
    write_request removal;
    removal.kind = write_kind::remove;
    removal.type = "Observation";
    removal.id = "o2";
    write_all(*f.db, {std::move(removal)});

    auto included = [&](const search_request& request) {
        auto page = f.db->search(request);
        REQUIRE(page.ok());
        std::set<std::string> ids;
        for (const auto& e : page->entries)
            if (e.include)
                ids.insert(e.version.type + "/" + e.version.id);
        return ids;
    };
    const std::set<std::string> everything = {"Condition/c1", "Encounter/e1", "Observation/o1"};
    auto any = parse("Patient", {{"_id", "9000000009"}, {"_revinclude", "*"}});
    CHECK(included(everything_visible(any)) == everything);
    auto observations = parse("Patient", {{"_id", "9000000009"}, {"_revinclude", "Observation:*"}});
    CHECK(included(everything_visible(observations)) == std::set<std::string>{"Observation/o1"});

    // A caller who may read patients and observations only gets nothing of the rest.
    search_request narrow;
    narrow.query = &any;
    narrow.visibility.all_citizens = true;
    narrow.visibility.organisation = "A81001";
    narrow.visibility.readable = {{"Patient", true, {}}, {"Observation", true, {}}};
    CHECK(included(narrow) == std::set<std::string>{"Observation/o1"});
}

TEST_CASE("search plan: without a sort or a condition to start from, a page reads versions in order and stops" * caregate::testing::sqlite_only()) {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    std::vector<write_request> batch;
    for (int i = 0; i < 300; ++i)
        batch.push_back(prepared(write_kind::create, "Observation", "o" + std::to_string(i),
                                 observation("9000000009", i % 2 ? "8867-4" : "8310-5", std::to_string(i))));
    write_all(*f.db, std::move(batch));
    for (const auto& params : std::vector<std::vector<std::pair<std::string, std::string>>>{
             {}, {{"status", "final"}}, {{"code", "8867-4"}, {"status", "final"}}}) {
        auto query = parse("Observation", params);
        auto plan = plan_of(f, everything_visible(query));
        REQUIRE(plan.ok());
        CAPTURE(plan.value());
        // Walked in write order when there is nothing to start from; a condition finding fewer
        // than dense_limit (20,000) rows, or two conditions, start from an index instead.
        CHECK((plan->find("resource_versions_by_type") != std::string::npos) == params.empty());
        if (params.empty())
            CHECK(plan->find("TEMP B-TREE") == std::string::npos);
        // The same matches, in the order of writes, page by page.
        const std::vector<std::string> ids = all_ids(*f.db, everything_visible(query));
        const std::size_t expected = params.size() == 2 ? 150 : 300;
        REQUIRE(ids.size() == expected);
        for (std::size_t i = 0; i < ids.size(); ++i)
            CHECK(ids[i] == "o" + std::to_string(params.size() == 2 ? 2 * i + 1 : i));
    }
    // A selective condition drives instead.
    auto selective = parse("Observation", {{"_id", "o7"}});
    auto plan = plan_of(f, everything_visible(selective));
    REQUIRE(plan.ok());
    CHECK(plan->find("resource_versions_by_type") == std::string::npos);
}

TEST_CASE("search plan: several types of many versions are walked in write order once, few through their index") {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    // More than dense_limit (20,000) versions of the types asked for, a Condition among them.
    for (int start = 0; start < 20001; start += 5000) {
        std::vector<write_request> batch;
        for (int i = start; i < std::min(start + 5000, 20001); ++i)
            batch.push_back(prepared(write_kind::create, "Observation", "o" + std::to_string(i),
                                     observation("9000000009", "8867-4", std::to_string(i))));
        if (start == 5000)
            batch.push_back(prepared(write_kind::create, "Condition", "c1",
                                     R"({"resourceType":"Condition","subject":{"reference":"Patient/9000000009"},"code":{"text":"asthma"}})"));
        write_all(*f.db, std::move(batch));
    }
    fhir::search_query_options options;
    options.max_count = 1000;
    auto many = fhir::parse_search_query({"Condition", "Observation", "Patient"}, {{"_count", "1000"}}, options).value();
    // A caller who may read these types and others (an export's): their grant is no way in either.
    search_request exporter;
    exporter.query = &many;
    exporter.visibility.all_citizens = true;
    exporter.visibility.organisation = "QZZ";
    exporter.visibility.readable = {{"Patient", true, {}}, {"Observation", true, {}}, {"Condition", true, {}},
                                    {"Encounter", true, {}}, {"Provenance", true, {}},
                                    {"DocumentReference", false, {"category=clinical-note"}}};
    exporter.visibility.hidden_labels = {"http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
                                         "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|V"};
    if (f.scratch) // PostgreSQL's planner chooses by its statistics: as a server's would be after a load
        REQUIRE(f.execute("ANALYZE") == SQLITE_OK);
    for (const search_request& request : {everything_visible(many), exporter}) {
        auto plan = plan_of(f, request);
        REQUIRE(plan.ok());
        CAPTURE(plan.value());
        if (f.scratch) { // the primary key walked to the LIMIT (visibility_sql.hpp, notes 5 and 6)
            CHECK(plan->find("Index Scan using resource_versions_pkey on resource_versions v") != std::string::npos);
            CHECK(plan->find("Sort Key: v.seq") == std::string::npos);
        } else {
            CHECK(plan->find("TEMP B-TREE FOR ORDER BY") == std::string::npos);
            CHECK(plan->find("SEARCH v USING INDEX resource_versions_by_type") == std::string::npos);
        }
    }
    CHECK(all_ids(*f.db, exporter).size() == 20003);
    // Every version once, in the order written, across the pages.
    const std::vector<std::string> ids = all_ids(*f.db, everything_visible(many));
    REQUIRE(ids.size() == 20003);
    CHECK(ids.front() == "9000000009");
    CHECK(ids[1] == "o0");
    CHECK(ids[10000] == "o9999");
    CHECK(ids[10001] == "c1");
    CHECK(ids.back() == "o20000");

    // Few versions of the types asked for: found through their index, in the same order.
    auto few = fhir::parse_search_query({"Condition", "Patient"}, {{"_count", "1"}}, options).value();
    if (!f.scratch) {
        auto few_plan = plan_of(f, everything_visible(few));
        REQUIRE(few_plan.ok());
        CAPTURE(few_plan.value());
        CHECK(few_plan->find("SCAN v") == std::string::npos);
    }
    CHECK(all_ids(*f.db, everything_visible(few)) == std::vector<std::string>{"9000000009", "c1"});
}

TEST_CASE("search: a quantity in one UCUM unit finds values written in another of its kind") {
    store_fixture f;
    write_all(*f.db, {prepared(write_kind::create, "Patient", "9000000009", patient("9000000009", "Smith", "1970-01-01"))});
    auto dose = [](const std::string& value, const std::string& code) {
        return R"({"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":{"reference":"Patient/9000000009"},"valueQuantity":{"value":)" +
               value + R"(,"system":"http://unitsofmeasure.org","code":")" + code + R"("}})";
    };
    write_all(*f.db, {prepared(write_kind::create, "Observation", "in-mg", dose("5400", "mg")),
                      prepared(write_kind::create, "Observation", "in-g", dose("5.4", "g")),
                      prepared(write_kind::create, "Observation", "in-kg", dose("0.0054", "kg")),
                      prepared(write_kind::create, "Observation", "other", dose("5.4", "kg")),
                      prepared(write_kind::create, "Observation", "not-mass", dose("5.4", "mL"))});
    auto ids = [&](const std::string& value) {
        auto query = parse("Observation", {{"value-quantity", value}});
        auto page = f.db->search(everything_visible(query));
        REQUIRE(page.ok());
        std::set<std::string> out;
        for (const auto& e : page->entries)
            out.insert(e.version.id);
        return out;
    };
    const std::set<std::string> same{"in-mg", "in-g", "in-kg"};
    CHECK(ids("5.4|http://unitsofmeasure.org|g") == same);
    CHECK(ids("5400|http://unitsofmeasure.org|mg") == same);
    CHECK(ids("gt5|http://unitsofmeasure.org|g") == std::set<std::string>{"in-mg", "in-g", "in-kg", "other"});
    CHECK(ids("5.4|http://unitsofmeasure.org|kg") == std::set<std::string>{"other"});
    // Without the UCUM system the code is matched as written.
    CHECK(ids("5.4||g") == std::set<std::string>{"in-g"});
}

TEST_CASE("search visibility: a citizen's own view shows their record only, and nothing linking anyone else") {
    store_fixture db;
    const std::string tom = "9000000009", bunmi = "9000000017";
    write_all(*db, {prepared(write_kind::create, "Patient", tom, patient(tom, "Smith", "1950-01-01")),
                    prepared(write_kind::create, "Patient", bunmi, patient(bunmi, "Adeyemi", "1960-01-01"))});
    write_all(*db, {prepared(write_kind::create, "Observation", "tom-1", observation(tom, "8867-4", "70")),
                    prepared(write_kind::create, "Observation", "bunmi-1", observation(bunmi, "8867-4", "71")),
                    prepared(write_kind::create, "Observation", "both",
                             R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/)" +
                                 tom + R"("},"performer":[{"reference":"Patient/)" + bunmi + R"("}]})"),
                    prepared(write_kind::create, "Organization", "A81001",
                             R"({"resourceType":"Organization","name":"A practice"})")});
    auto search_as_tom = [&](const std::string& type) {
        const auto query = parse(type, {});
        search_request request;
        request.query = &query;
        request.visibility.only_citizen = tom;
        request.visibility.all_citizens = true; // only_citizen wins over it
        request.visibility.objection_binds = false;
        request.visibility.readable = {{"Patient", true, {}}, {"Observation", true, {}}, {"Organization", true, {}}};
        std::vector<std::string> ids = all_ids(*db, request);
        std::sort(ids.begin(), ids.end());
        return ids;
    };
    CHECK(search_as_tom("Observation") == std::vector<std::string>{"tom-1"});
    CHECK(search_as_tom("Patient") == std::vector<std::string>{tom});
    CHECK(search_as_tom("Organization") == std::vector<std::string>{"A81001"});
}
