// The patient-facing endpoint's access model through the handle() seam: a citizen with an
// NHS login-shaped token sees their own record and nothing else (another NHS number is 404, exactly
// as for a record that does not exist), P5 sees demographics only, P0 nothing, an item marked not for
// patient view never appears (read, search, total, $everything), and the app's scopes narrow it.
#include "patient_fixture.hpp"

using namespace caregate;
using namespace caregate::testing;


TEST_CASE("patient endpoint: a citizen reads their own record; another NHS number is 404, as if absent") {
    patient_fixture f;
    const std::string token = citizen_token(tom);
    CHECK(f.as_citizen(token, "GET", std::string("/Patient/") + tom).status == 200);
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.tom_observation).status == 200);

    auto other = f.as_citizen(token, "GET", std::string("/Patient/") + bunmi);
    auto absent = f.as_citizen(token, "GET", "/Patient/9000000025");
    CHECK(other.status == 404);
    CHECK(absent.status == 404);
    CHECK(at(json_of(other), "issue", 0, "diagnostics") == at(json_of(absent), "issue", 0, "diagnostics"));
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.bunmi_observation).status == 404);
    CHECK(f.as_citizen(token, "GET", std::string("/Patient/") + bunmi + "/$everything").status == 404);

    // Searches find their own only, whatever they ask for, and count only those.
    CHECK(f.ids_of(f.as_citizen(token, "GET", "/Observation")) == std::vector<std::string>{"Observation/" + f.tom_observation});
    CHECK(f.ids_of(f.as_citizen(token, "GET", std::string("/Observation?subject=Patient/") + bunmi)).empty());
    auto counted = f.as_citizen(token, "GET", "/Patient?_total=accurate");
    CHECK(json_of(counted)["total"].GetInt() == 1);
    CHECK(f.ids_of(counted) == std::vector<std::string>{std::string("Patient/") + tom});
    auto everything = f.ids_of(f.as_citizen(token, "GET", std::string("/Patient/") + tom + "/$everything"));
    CHECK(std::find(everything.begin(), everything.end(), "Observation/" + f.tom_observation) != everything.end());
    CHECK(std::find(everything.begin(), everything.end(), "Observation/" + f.bunmi_observation) == everything.end());
}

TEST_CASE("patient endpoint: items not for patient view (NOPAT) and very restricted items (V) never appear") {
    patient_fixture f;
    const std::string token = citizen_token(tom);
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.tom_hidden).status == 404);
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.tom_safeguarding).status == 404);
    auto found = f.as_citizen(token, "GET", "/Observation?_total=accurate");
    CHECK(json_of(found)["total"].GetInt() == 1);
    auto everything = f.ids_of(f.as_citizen(token, "GET", std::string("/Patient/") + tom + "/$everything"));
    for (const auto& hidden : {f.tom_hidden, f.tom_safeguarding})
        CHECK(std::find(everything.begin(), everything.end(), "Observation/" + hidden) == everything.end());
    // The GP still sees them.
    CHECK(f.call_as(gp_clinician(), "GET", "/Observation/" + f.tom_hidden).status == 200);
}

TEST_CASE("patient endpoint: P5 sees demographics only, P0 nothing; scopes narrow what the app may read") {
    patient_fixture f;
    const std::string p5 = citizen_token(tom, "P5");
    CHECK(f.as_citizen(p5, "GET", std::string("/Patient/") + tom).status == 200);
    CHECK(f.as_citizen(p5, "GET", "/Observation/" + f.tom_observation).status == 403);
    CHECK(f.as_citizen(p5, "GET", "/Observation").status == 403);
    auto everything = f.as_citizen(p5, "GET", std::string("/Patient/") + tom + "/$everything");
    if (everything.status == 200) // their Patient, and no clinical item
        CHECK(f.ids_of(everything) == std::vector<std::string>{std::string("Patient/") + tom});

    const std::string p0 = citizen_token(tom, "P0");
    CHECK(f.as_citizen(p0, "GET", std::string("/Patient/") + tom).status == 403);

    const std::string observations_only = citizen_token(tom, "P9", {"patient/Observation.rs"});
    CHECK(f.as_citizen(observations_only, "GET", "/Observation/" + f.tom_observation).status == 200);
    CHECK(f.as_citizen(observations_only, "GET", std::string("/Patient/") + tom).status == 403);
    const std::string no_scopes = citizen_token(tom, "P9", {});
    CHECK(f.as_citizen(no_scopes, "GET", "/Observation/" + f.tom_observation).status == 403);
    const std::string v1 = citizen_token(tom, "P9", {"patient/*.read"});
    CHECK(f.as_citizen(v1, "GET", "/Observation/" + f.tom_observation).status == 200);
}

TEST_CASE("patient endpoint: a provider's token is refused there, and a citizen's at the provider endpoint") {
    patient_fixture f;
    CHECK(f.as_citizen(token_for(gp_clinician()), "GET", std::string("/Patient/") + tom).status == 401);
    auto at_provider = f.call("GET", std::string("/Patient/") + tom, {}, {{"Authorization", "Bearer " + citizen_token(tom)}});
    CHECK(at_provider.status == 401);
}

TEST_CASE("patient endpoint: a citizen's reads are audited as patient-requested, naming them") {
    patient_fixture f;
    REQUIRE(f.as_citizen(citizen_token(tom), "GET", "/Observation/" + f.tom_observation).status == 200);
    f.flush();
    auto trail = f.store->audit({tom, {}, {}, "PATRQT", 10, {}});
    REQUIRE(trail.ok());
    REQUIRE_FALSE(trail->records.empty());
    CHECK(trail->records.front().role == "citizen");
    CHECK(trail->records.front().organisation == std::string("patient:") + tom);
    CHECK(trail->records.front().resource_ids == f.tom_observation);
}

TEST_CASE("patient endpoint: history, system search and compartment search show the citizen's own record only") {
    patient_fixture f;
    const std::string token = citizen_token(tom);
    auto own_only = [&](const http::response& bundle, const char* what) {
        for (const auto& id : f.ids_of(bundle)) {
            INFO(what << ": " << id);
            CHECK(id != "Observation/" + f.bunmi_observation);
            CHECK(id != std::string("Patient/") + bunmi);
            CHECK(id != "Observation/" + f.tom_hidden);
            CHECK(id != "Observation/" + f.tom_safeguarding);
        }
    };
    auto history = f.as_citizen(token, "GET", "/_history");
    own_only(history, "system history");
    CHECK(f.ids_of(history).size() >= 2); // their Patient and the GP's Observation
    own_only(f.as_citizen(token, "GET", "/Observation/_history"), "type history");
    own_only(f.as_citizen(token, "GET", "/?_type=Patient,Observation"), "system search");
    CHECK(f.as_citizen(token, "GET", std::string("/Patient/") + bunmi + "/Observation").status == 404);
    CHECK(f.as_citizen(token, "GET", "/Observation/" + f.bunmi_observation + "/_history").status == 404);
    own_only(f.as_citizen(token, "GET", "/Observation?_include=Observation:subject&_revinclude=Provenance:target"),
             "includes");
}
