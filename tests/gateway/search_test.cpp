// Search through the handle() seam with the shipped default policy: what a search finds, counts and
// includes is exactly what the caller could read one by one (the access rules are inside the
// query, never a filter afterwards), paging, lenient handling, compartments and $everything.
#include "application_fixture.hpp"

#include <rapidjson/document.h>

#include <set>

using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009";   // registered with the GP practice A81001
constexpr const char* bunmi = "9000000017"; // in the care of adult social care 8JK23; objects to sharing
constexpr const char* ada = "9000000025";   // in hospital at RX1

std::string ref(const std::string& nhs) { return R"({"reference":"Patient/)" + nhs + R"("})"; }

std::string meta_label(const std::string& code) {
    return R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":")" + code +
           R"("}]},)";
}

std::string condition_json(const std::string& nhs, const std::string& status, const std::string& code,
                           const std::string& label = {}) {
    return R"({"resourceType":"Condition",)" + (label.empty() ? "" : meta_label(label)) +
           R"("clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":")" +
           status + R"("}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":")" + code +
           R"("}]},"subject":)" + ref(nhs) + "}";
}

std::string observation_json(const std::string& nhs, const std::string& category, const std::string& code,
                             const std::string& label = {}) {
    return R"({"resourceType":"Observation",)" + (label.empty() ? "" : meta_label(label)) +
           R"("status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
           category + R"("}]}],"code":{"coding":[{"system":"http://loinc.org","code":")" + code +
           R"("}]},"subject":)" + ref(nhs) + R"(,"effectiveDateTime":"2026-11-01T10:00:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}})";
}

/// An Observation whose category is `categories` (the JSON array's items as written).
std::string observation_in(const std::string& nhs, const std::string& categories, const std::string& code) {
    return R"({"resourceType":"Observation","status":"final","category":[)" + categories +
           R"(],"code":{"coding":[{"system":"http://loinc.org","code":")" + code + R"("}]},"subject":)" + ref(nhs) +
           R"(,"effectiveDateTime":"2026-11-02T10:00:00Z"})";
}

std::string category(const std::string& code, const std::string& system = "http://terminology.hl7.org/CodeSystem/observation-category") {
    return R"({"coding":[{"system":")" + system + R"(","code":")" + code + R"("}]})";
}

std::string encounter_json(const std::string& nhs, const std::string& ods, const std::string& status,
                           const std::string& period) {
    return R"({"resourceType":"Encounter","status":")" + status +
           R"(","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":)" + ref(nhs) +
           R"(,"period":)" + period + R"(,"serviceProvider":{"reference":"Organization/)" + ods + R"("}})";
}

std::string episode_json(const std::string& nhs, const std::string& ods) {
    return R"({"resourceType":"EpisodeOfCare","status":"active","patient":)" + ref(nhs) +
           R"(,"managingOrganization":{"reference":"Organization/)" + ods + R"("}})";
}

rapidjson::Document parse(const caregate::http::response& r) {
    rapidjson::Document doc;
    doc.Parse(r.body.c_str());
    REQUIRE_FALSE(doc.HasParseError());
    return doc;
}

/// The Type/id of a searchset's entries in one mode ("match" or "include").
std::vector<std::string> entries(const rapidjson::Document& bundle, const std::string& mode) {
    std::vector<std::string> out;
    if (!bundle.HasMember("entry"))
        return out;
    for (const auto& e : bundle["entry"].GetArray())
        if (e["search"]["mode"].GetString() == mode)
            out.push_back(std::string(e["resource"]["resourceType"].GetString()) + "/" + e["resource"]["id"].GetString());
    return out;
}

std::string link(const rapidjson::Document& bundle, const std::string& relation) {
    for (const auto& l : bundle["link"].GetArray())
        if (l["relation"].GetString() == relation)
            return l["url"].GetString();
    return {};
}

/// A shared record of three citizens and items written by several organisations, with labels, an
/// objection and relationships of every kind the policy knows.
struct shared_record : application_fixture {
    std::map<std::string, std::vector<std::string>> ids; ///< type -> ids created

    std::string create_as(const identity& who, const std::string& type, const std::string& body) {
        auto r = call_as(who, "POST", "/" + type, body);
        REQUIRE_MESSAGE(r.status == 201, r.body);
        const std::string id = parse(r)["id"].GetString();
        ids[type].push_back(id);
        return id;
    }
    void put_patient(const std::string& nhs, const std::string& extra) {
        REQUIRE(call("PUT", "/Patient/" + nhs, patient_json(nhs, R"("id":")" + nhs + R"(")" + extra)).status == 201);
        ids["Patient"].push_back(nhs);
    }

    shared_record() {
        put_patient(tom, R"(,"generalPractitioner":[{"reference":"Organization/A81001"}])");
        put_patient(bunmi, "");
        put_patient(ada, "");
        const identity gp = gp_clinician();
        const identity system = system_identity();
        // Relationships: social care for Tom and Bunmi, the hospital for Ada (and long ago for Tom).
        create_as(system, "EpisodeOfCare", episode_json(tom, "8JK23"));
        create_as(system, "EpisodeOfCare", episode_json(bunmi, "8JK23"));
        create_as(system, "Encounter", encounter_json(ada, "RX1", "in-progress", R"({"start":"2026-11-20T08:00:00Z"})"));
        create_as(system, "Encounter",
                  encounter_json(tom, "RX1", "finished", R"({"start":"2001-01-01","end":"2001-01-05"})"));
        // Tom's GP record: active and resolved problems, R and V items, observations of two kinds.
        create_as(gp, "Condition", condition_json(tom, "active", "38341003"));
        create_as(gp, "Condition", condition_json(tom, "resolved", "195967001"));
        create_as(gp, "Condition", condition_json(tom, "active", "35489007", "R"));
        create_as(gp, "Condition", condition_json(tom, "active", "191736004", "V"));
        create_as(gp, "Observation", observation_json(tom, "vital-signs", "8867-4"));
        create_as(gp, "Observation", observation_json(tom, "social-history", "72166-2"));
        create_as(social_worker(), "Observation", observation_json(tom, "survey", "44249-1"));
        // Part-of-type grants by every value and by system (fhir::facets_satisfy, and its SQL in the
        // search): social care reads the first, none of the others.
        create_as(gp, "Observation", observation_in(tom, category("social-history") + "," + category("survey"), "72166-2"));
        create_as(gp, "Observation", observation_in(tom, category("social-history") + "," + category("laboratory"), "2339-0"));
        create_as(gp, "Observation", observation_in(tom, category("social-history", "http://example.org/x"), "72166-2"));
        create_as(gp, "Observation", observation_in(tom, category("survey") + R"(,{"text":"laboratory"})", "44249-1"));
        create_as(gp, "Observation", observation_in(tom, R"({"text":"social history"})", "72166-2"));
        create_as(gp, "Condition",
                  R"({"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"},{"system":"http://example.org/x","code":"active"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"73211009"}]},"subject":)" +
                      ref(tom) + "}");
        create_as(gp, "Condition",
                  R"({"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"},{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"resolved"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"73211009"}]},"subject":)" +
                      ref(tom) + "}");
        // Bunmi: social care's own items, the ICS's items, and her objection to sharing.
        create_as(social_worker(), "Observation", observation_json(bunmi, "social-history", "72166-2"));
        create_as(system, "Condition", condition_json(bunmi, "active", "38341003"));
        create_as(system, "Consent",
                  R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/9000000017"},"provision":{"type":"deny"}})");
        // Ada in hospital.
        create_as(acute_clinician(), "Observation", observation_json(ada, "vital-signs", "8867-4"));
        create_as(acute_clinician(), "Condition", condition_json(ada, "active", "38341003"));
        create_as(acute_clinician(), "Condition", condition_json(ada, "active", "22298006", "V"));
        // Not about any citizen.
        create_as(system, "Practitioner", R"({"resourceType":"Practitioner","name":[{"family":"Okafor"}]})");
        create_as(system, "Organization", R"({"resourceType":"Organization","name":"Riverside Surgery"})");
        // An acute clinician who broke the glass for Tom earlier (the grant lasts).
        identity emergency = acute_clinician();
        emergency.user = "acute-doctor-2";
        emergency.purpose = "ETREAT";
        emergency.reason = "collapsed in A&E";
        REQUIRE(call_as(emergency, "GET", "/Patient/9000000009").status == 200);
        flush();
    }
};

identity acute_after_break_glass() {
    identity who = acute_clinician();
    who.user = "acute-doctor-2";
    return who;
}

} // namespace

TEST_CASE("search visibility: every role finds and counts exactly what it could read one by one") {
    shared_record f;
    const std::vector<std::pair<std::string, identity>> callers = {
        {"gp clinician", gp_clinician()},     {"gp nurse", gp_nurse()},
        {"gp admin", gp_admin()},             {"acute clinician", acute_clinician()},
        {"acute after break-glass", acute_after_break_glass()},
        {"acute admin", acute_admin()},       {"social worker", social_worker()},
        {"ig officer", ig_officer()},         {"system", system_identity()},
    };
    for (const auto& [caller, who] : callers) {
        for (const auto& [resource_type, all] : f.ids) {
            // Named copies: clang before 16 captures no structured binding (CAPTURE's lambda).
            const std::string& name = caller;
            const std::string& type = resource_type;
            CAPTURE(name);
            CAPTURE(type);
            auto found = f.call_as(who, "GET", "/" + type + "?_count=1000&_total=accurate");
            std::set<std::string> readable;
            bool forbidden = false;
            for (const std::string& id : all) {
                auto read = f.call_as(who, "GET", "/" + type + "/" + id);
                REQUIRE((read.status == 200 || read.status == 404 || read.status == 403));
                forbidden = forbidden || read.status == 403;
                if (read.status == 200)
                    readable.insert(type + "/" + id);
            }
            if (forbidden) {
                CHECK(found.status == 403);
                continue;
            }
            REQUIRE_MESSAGE(found.status == 200, found.body);
            auto bundle = parse(found);
            auto matches = entries(bundle, "match");
            CHECK(std::set<std::string>(matches.begin(), matches.end()) == readable);
            CHECK(matches.size() == readable.size()); // no duplicates
            CHECK(bundle["total"].GetInt64() == static_cast<std::int64_t>(readable.size()));
        }
    }
}

TEST_CASE("search visibility: social care's Condition?patient=X&_total=accurate counts only what it may see") {
    shared_record f;
    auto r = f.call_as(social_worker(), "GET", std::string("/Condition?patient=") + tom + "&_total=accurate");
    REQUIRE(r.status == 200);
    auto bundle = parse(r);
    // Tom has six Conditions: active, resolved, active R, active V, active also coded in another code
    // system, and active and resolved at once. Social care sees the plain active one.
    CHECK(bundle["total"].GetInt64() == 1);
    CHECK(entries(bundle, "match").size() == 1);
    auto gp = parse(f.call_as(gp_clinician(), "GET", std::string("/Condition?patient=") + tom + "&_total=accurate"));
    CHECK(gp["total"].GetInt64() == 6); // the GP wrote the V item itself
}

TEST_CASE("search visibility: a part-of-type grant counts an Observation only when every category it carries is granted") {
    shared_record f;
    // Tom's eight Observations: vital signs; social history; survey; social history and survey (these
    // three social care reads); social history and laboratory; social history of another code system;
    // survey and a text-only category; a text-only category.
    auto social = parse(f.call_as(social_worker(), "GET", std::string("/Observation?patient=") + tom + "&_total=accurate"));
    CHECK(social["total"].GetInt64() == 3);
    auto gp = parse(f.call_as(gp_clinician(), "GET", std::string("/Observation?patient=") + tom + "&_total=accurate"));
    CHECK(gp["total"].GetInt64() == 8);
}

TEST_CASE("search visibility: a hidden item never appears through _include, _revinclude, _has, chains or $everything") {
    shared_record f;
    const std::vector<std::pair<identity, std::string>> probes = {
        {social_worker(), "/Patient?_revinclude=Condition:subject&_revinclude=Observation:subject"},
        {social_worker(), "/Observation?_include=Observation:subject&_revinclude=Provenance:target"},
        {social_worker(), "/Patient?_has:Condition:subject:code=195967001"}, // Tom's resolved problem: hidden
        {social_worker(), "/Condition?subject:Patient.name=Test&_include=Condition:subject"},
        {acute_clinician(), "/Patient?_revinclude=Condition:subject&_revinclude=Encounter:subject"},
        {acute_clinician(), "/Encounter?_include=Encounter:subject&_include=Encounter:service-provider"},
        {gp_clinician(), "/Patient?_revinclude:iterate=Condition:subject&_revinclude=Observation:subject"},
        {gp_admin(), "/Patient?_revinclude=Condition:subject"},
        {social_worker(), "/Patient?_revinclude=*"},
        {social_worker(), "/Patient?_revinclude=Condition:*&_revinclude=Observation:*"},
        {gp_admin(), "/Patient?_revinclude=*"},
        {gp_clinician(), std::string("/Patient/") + tom + "/$everything"},
        {social_worker(), std::string("/Patient/") + tom + "/$everything"},
        {social_worker(), std::string("/Patient/") + bunmi + "/$everything"},
        {acute_after_break_glass(), std::string("/Patient/") + tom + "/$everything"},
    };
    for (const auto& [who, probe_target] : probes) {
        const std::string& target = probe_target; // clang before 16 captures no structured binding (CAPTURE)
        CAPTURE(target);
        auto r = f.call_as(who, "GET", target);
        REQUIRE_MESSAGE(r.status == 200, r.body);
        auto bundle = parse(r);
        for (const std::string mode : {"match", "include"})
            for (const std::string& item : entries(bundle, mode)) {
                CAPTURE(item);
                CHECK(f.call_as(who, "GET", "/" + item).status == 200);
            }
    }
    // _has over a hidden item finds nothing; over a visible one it finds the citizen.
    auto hidden = parse(f.call_as(social_worker(), "GET", "/Patient?_has:Condition:subject:code=195967001"));
    CHECK(entries(hidden, "match").empty());
    auto visible = parse(f.call_as(social_worker(), "GET", "/Patient?_has:Condition:subject:code=38341003"));
    CHECK(entries(visible, "match") == std::vector<std::string>{std::string("Patient/") + tom});
}

TEST_CASE("$everything: the citizen's whole visible record, and 404 for a record the caller may not open") {
    shared_record f;
    auto r = f.call_as(gp_clinician(), "GET", std::string("/Patient/") + tom + "/$everything?_count=1000");
    REQUIRE(r.status == 200);
    auto matches = entries(parse(r), "match");
    std::set<std::string> got(matches.begin(), matches.end());
    CHECK(got.count(std::string("Patient/") + tom) == 1);
    // Every item of Tom's that the GP reads one by one is there.
    for (const auto& [type, all] : f.ids)
        for (const std::string& id : all) {
            auto read = f.call_as(gp_clinician(), "GET", "/" + type + "/" + id);
            if (read.status != 200)
                continue;
            auto doc = parse(read);
            const bool toms = read.body.find(std::string("Patient/") + tom) != std::string::npos ||
                              (type == "Patient" && id == tom);
            const std::string reference = type + "/" + id; // CHECK_MESSAGE's lambda: no structured binding in clang 14
            if (toms)
                CHECK_MESSAGE(got.count(reference) == 1, reference);
        }
    auto refused = f.call_as(acute_clinician(), "GET", std::string("/Patient/") + tom + "/$everything");
    CHECK(refused.status == 404);
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/9000000033/$everything").status == 404);
}

TEST_CASE("search: an unknown parameter is 400 naming it; with handling=lenient it is dropped from the self link") {
    shared_record f;
    auto strict = f.call_as(gp_clinician(), "GET", "/Observation?patient=9000000009&colour=blue");
    CHECK(strict.status == 400);
    CHECK(strict.body.find("colour") != std::string::npos);
    auto lenient = f.call_as(gp_clinician(), "GET", "/Observation?patient=9000000009&colour=blue", {},
                             {{"Prefer", "handling=lenient"}});
    REQUIRE(lenient.status == 200);
    auto bundle = parse(lenient);
    const std::string self = link(bundle, "self");
    CHECK(self.find("patient=9000000009") != std::string::npos);
    CHECK(self.find("colour") == std::string::npos);
    CHECK(lenient.body.find("\"outcome\"") != std::string::npos); // what was dropped, as an OperationOutcome entry
}

TEST_CASE("search: pages follow next links, each result exactly once while others write") {
    shared_record f;
    for (int i = 0; i < 60; ++i)
        f.create_as(gp_clinician(), "Observation", observation_json(tom, "vital-signs", "8310-5"));
    std::vector<std::string> seen;
    std::string next = "/Observation?code=8310-5&_count=25";
    int pages = 0;
    while (!next.empty()) {
        auto r = f.call_as(gp_clinician(), "GET", next);
        REQUIRE_MESSAGE(r.status == 200, r.body);
        auto bundle = parse(r);
        auto page = entries(bundle, "match");
        CHECK(page.size() <= 25);
        seen.insert(seen.end(), page.begin(), page.end());
        // Others write between pages: new matches are not part of this search's snapshot.
        f.create_as(gp_clinician(), "Observation", observation_json(tom, "vital-signs", "8310-5"));
        next = link(bundle, "next");
        if (!next.empty()) {
            REQUIRE(next.starts_with(test_base_url));
            next = next.substr(std::string(test_base_url).size());
        }
        ++pages;
    }
    CHECK(pages == 3);
    CHECK(seen.size() == 60);
    CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 60);
}

TEST_CASE("search: POST _search with a form body, compartment search, _summary=count, _sort and _elements") {
    shared_record f;
    auto posted = f.call_as(gp_clinician(), "POST", "/Observation/_search", "patient=9000000009&code=8867-4",
                            {{"Content-Type", "application/x-www-form-urlencoded"}});
    REQUIRE_MESSAGE(posted.status == 200, posted.body);
    CHECK(entries(parse(posted), "match").size() == 1);

    auto compartment = f.call_as(gp_clinician(), "GET", std::string("/Patient/") + tom + "/Condition");
    REQUIRE(compartment.status == 200);
    CHECK(entries(parse(compartment), "match").size() == 6); // Tom's six Conditions (shared_record)
    CHECK(f.call_as(acute_clinician(), "GET", std::string("/Patient/") + tom + "/Condition").status == 404);
    // The compartment narrows; every parameter still applies.
    auto narrowed = f.call_as(gp_clinician(), "GET", std::string("/Patient/") + tom + "/Condition?code=38341003");
    CHECK(entries(parse(narrowed), "match").size() == 1);
    auto none = f.call_as(gp_clinician(), "GET", std::string("/Patient/") + tom + "/Condition?_id=nope");
    CHECK(entries(parse(none), "match").empty());
    // The audit trail is not a compartment type: it is searched at AuditEvent itself.
    CHECK(f.call_as(ig_officer(), "GET", std::string("/Patient/") + tom + "/AuditEvent").status == 404);

    auto counted = parse(f.call_as(gp_clinician(), "GET", std::string("/Condition?patient=") + tom + "&_summary=count"));
    CHECK(counted["total"].GetInt64() == 6);
    CHECK_FALSE(counted.HasMember("entry"));

    auto sorted = f.call_as(system_identity(), "GET", "/Patient?_sort=-_id&_elements=birthDate");
    REQUIRE_MESSAGE(sorted.status == 200, sorted.body);
    auto patients = entries(parse(sorted), "match");
    CHECK(patients == std::vector<std::string>{"Patient/9000000025", "Patient/9000000017", "Patient/9000000009"});
    CHECK(sorted.body.find("SUBSETTED") != std::string::npos);
    CHECK(sorted.body.find("\"name\"") == std::string::npos);

    auto system = f.call_as(gp_admin(), "GET", "/?_type=Patient,Appointment&_total=accurate");
    REQUIRE_MESSAGE(system.status == 200, system.body);
    CHECK(parse(system)["total"].GetInt64() == 1); // the GP's admin sees Tom's Patient only
    CHECK(f.call_as(gp_admin(), "GET", "/?_type=Condition").status == 403);
}

TEST_CASE("search: three-step chains and nested _has, with every caller's visibility in each step, are answered") {
    shared_record f;
    // The deepest queries the parser accepts (three steps), each step with the access rules inside.
    const std::vector<std::string> deep = {
        "/Observation?subject:Patient.general-practitioner:Organization.name=Riverside",
        "/Observation?subject:Patient._has:Encounter:subject:service-provider:Organization.name=Riverside",
        "/Patient?_has:Observation:subject:_has:Provenance:target:agent=Practitioner/x",
        "/Condition?subject:Patient._has:EpisodeOfCare:patient:organization=Organization/8JK23",
    };
    for (const std::string& target : deep) {
        CAPTURE(target);
        auto r = f.call_as(social_worker(), "GET", target);
        CHECK_MESSAGE(r.status == 200, r.body);
    }
    // Social care sees Tom's one active Condition through its own EpisodeOfCare: the chain finds it.
    auto found = parse(f.call_as(social_worker(), "GET",
                                 "/Condition?subject:Patient._has:EpisodeOfCare:patient:organization=Organization/8JK23"));
    // Tom's active problem; not Bunmi's: she objects to sharing, and the ICS wrote it, not social care.
    CHECK(entries(found, "match").size() == 1);
    // :missing=false with another condition: the other condition drives, :missing checks.
    auto born = parse(f.call_as(gp_clinician(), "GET", "/Patient?family=test&birthdate:missing=false"));
    CHECK(entries(born, "match") == std::vector<std::string>{std::string("Patient/") + tom});
}
