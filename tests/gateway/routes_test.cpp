// The route table (gateway/rest/routes.cpp): one row per path and method, Allow from the rows that
// match a path, 404 for a path no row serves, and the table's description of itself, which /metadata
// is written from. Then what the audit log's search answers now that it is a search like any other.
#include "application_fixture.hpp"

#include "rest/routes.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace caregate;
using namespace caregate::testing;
using interactions::interaction;

namespace {

std::vector<std::string> segments_of(std::string_view path) {
    std::vector<std::string> out;
    while (!path.empty()) {
        const auto slash = path.find('/');
        out.emplace_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    }
    return out;
}

std::size_t entries(const http::response& r) {
    auto doc = json_of(r);
    return doc.HasMember("entry") ? doc["entry"].Size() : 0;
}

} // namespace

TEST_CASE("routes: invariant 2, no two rows share a pattern and a method") {
    std::set<std::pair<std::string_view, std::string_view>> seen;
    for (const rest::route_row& row : rest::route_table())
        CHECK_MESSAGE(seen.insert({row.pattern, row.method}).second, row.pattern, " ", row.method);
}

TEST_CASE("routes: a path's methods in table order; the audit log only by its own rows") {
    CHECK(rest::allowed_methods({}) == "GET, POST");
    CHECK(rest::allowed_methods(segments_of("Observation")) == "GET, POST, PUT, DELETE, PATCH");
    CHECK(rest::allowed_methods(segments_of("Observation/x")) == "GET, HEAD, PUT, DELETE, PATCH");
    CHECK(rest::allowed_methods(segments_of("AuditEvent")) == "GET");
    CHECK(rest::allowed_methods(segments_of("AuditEvent/12")) == "GET, HEAD");

    auto read = rest::match_route("GET", segments_of("Observation/abc"));
    REQUIRE(read.ok());
    CHECK(read->where.kind == interaction::read);
    CHECK(read->where.type == "Observation");
    CHECK(read->where.id == "abc");
    auto vread = rest::match_route("GET", segments_of("Observation/abc/_history/3"));
    REQUIRE(vread.ok());
    CHECK(vread->where.version_id == 3);
    auto compartment = rest::match_route("GET", segments_of("Patient/9000000009/Observation"));
    REQUIRE(compartment.ok());
    CHECK(compartment->where.kind == interaction::search_compartment);
    CHECK(compartment->where.type == "Observation");
    CHECK(compartment->where.id == "9000000009");

    CHECK(rest::match_route("PUT", segments_of("AuditEvent/1")).failure().kind == fhir::category::method_not_allowed);
    CHECK(rest::match_route("GET", segments_of("AuditEvent/1/_history")).failure().kind == fhir::category::not_found);
    CHECK(rest::match_route("GET", segments_of("Patient/9000000009/AuditEvent")).failure().kind ==
          fhir::category::not_found);
    CHECK(rest::match_route("GET", segments_of("Nope")).failure().kind == fhir::category::not_found);
    CHECK(rest::match_route("GET", segments_of("Observation/abc/_history/0")).failure().kind ==
          fhir::category::not_found);
}

TEST_CASE("routes: the description /metadata is written from comes from the rows") {
    const interactions::service_description& served = rest::served();
    const interactions::served_type* audit = served.find("AuditEvent");
    REQUIRE(audit != nullptr);
    CHECK(audit->interactions == std::vector{interaction::read, interaction::search_type});
    CHECK_FALSE(audit->in_record);
    CHECK(audit->search_parameters.size() == 3);
    const interactions::served_type* patient = served.find("Patient");
    REQUIRE(patient != nullptr);
    CHECK(patient->in_record);
    CHECK(patient->everything);
    CHECK(patient->allows(interaction::history_instance));
    CHECK(served.compartment);
    CHECK(served.system == std::vector{interaction::transaction, interaction::history_system,
                                       interaction::search_system, interaction::capabilities});
}

TEST_CASE("audit log search: date takes every prefix that is a time window; ne is not one") {
    application_fixture f;
    REQUIRE(f.call("PUT", "/Patient/9000000009", patient_json("9000000009", R"("id":"9000000009")")).status == 201);
    REQUIRE(f.call("GET", "/Patient/9000000009").status == 200);
    f.flush();
    for (const char* date : {"ge2000-01-01", "gt2000-01-01", "sa2000-01-01", "le2100-01-01", "lt2100-01-01",
                             "eb2100-01-01"}) {
        auto found = f.call_as(ig_officer(), "GET", std::string("/AuditEvent?date=") + date);
        CHECK_MESSAGE(found.status == 200, date);
        CHECK_MESSAGE(entries(found) > 0, date);
    }
    for (const char* date : {"sa2100-01-01", "eb2000-01-01", "ap2000-01-01"})
        CHECK_MESSAGE(entries(f.call_as(ig_officer(), "GET", std::string("/AuditEvent?date=") + date)) == 0, date);
    CHECK(f.call_as(ig_officer(), "GET", "/AuditEvent?date=ne2000-01-01").status == 400);
}

TEST_CASE("audit log search: an unsupported parameter is 400, or dropped and reported under handling=lenient") {
    application_fixture f;
    CHECK(f.call_as(ig_officer(), "GET", "/AuditEvent?action=R").status == 400);
    CHECK(f.call_as(ig_officer(), "GET", "/AuditEvent?_sort=date").status == 400);
    auto lenient = f.call_as(ig_officer(), "GET", "/AuditEvent?action=R", {}, {{"Prefer", "handling=lenient"}});
    REQUIRE(lenient.status == 200);
    auto doc = json_of(lenient);
    const auto& last = doc["entry"][doc["entry"].Size() - 1];
    CHECK(std::string(last["search"]["mode"].GetString()) == "outcome");
    CHECK(std::string(doc["link"][0]["url"].GetString()).find("action") == std::string::npos);
}

TEST_CASE("_count=0 is a Bundle without entries for search, history, the audit log and $everything alike") {
    application_fixture f;
    REQUIRE(f.call("PUT", "/Patient/9000000009", patient_json("9000000009", R"("id":"9000000009")")).status == 201);
    for (const char* path : {"/Patient?_count=0", "/_history?_count=0", "/Patient/_history?_count=0",
                             "/Patient/9000000009/_history?_count=0", "/Patient/9000000009/$everything?_count=0"}) {
        auto r = f.call("GET", path);
        CHECK_MESSAGE(r.status == 200, path);
        CHECK_MESSAGE(entries(r) == 0, path);
    }
    auto audit = f.call_as(ig_officer(), "GET", "/AuditEvent?_count=0");
    CHECK(audit.status == 200);
    CHECK(entries(audit) == 0);
    for (const char* path : {"/Patient?_count=x", "/_history?_count=-1", "/Patient/9000000009/$everything?_count=1.5"})
        CHECK_MESSAGE(f.call("GET", path).status == 400, path);
}
