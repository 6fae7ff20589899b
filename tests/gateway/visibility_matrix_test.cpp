// Callers x items x paths: every caller the access model knows (each sector and role, break-glass,
// information governance, citizens at P9 and P5, carers under each kind of grant) against items made
// to test it (labels, an objection, relationships, subjects moved, labels added later, deletions, an
// erasure, Provenances and Binaries of visible and hidden items, Binaries of no item), asserting that every path that returns
// resources (read, vread, instance, type and system history with _since and _at, search with
// includes, $everything, the access log) returns exactly the versions the one rule allows.
//
// The expectation for each version is guard::can_read, the single-version check (the one rule,
// storage/src/visibility_rule.hpp, decided in memory over the caller's standings), composed as the
// rule says: a version is seen only if it (a deletion: the version it removed) and the resource's last
// live version both are. Each path under test renders the same rule as SQL inside its own query
// (pages, totals, includes, history's last live version, the access log's names), so the matrix holds
// the two evaluators of the rule to each other and every path's composition to the rule; the spot
// checks of the second test case pin the rule itself, value by value.
#include "patient_fixture.hpp"

#include "fhir_model/date_time.hpp"
#include "storage/search.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

using namespace caregate;
using namespace caregate::testing;

namespace {

constexpr const char* carol = "9000000025"; // objects to sharing; treated by the GP and the acute trust
constexpr const char* dan = "9000000033";   // erased
constexpr const char* second_carer = "9693632109";
constexpr const char* confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
constexpr const char* act_code = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

std::string labelled(const std::string& json_without_brace, const std::string& system, const std::string& code) {
    return R"({"meta":{"security":[{"system":")" + system + R"(","code":")" + code + R"("}]},)" + json_without_brace;
}

std::string observation_of(const std::string& nhs, const std::string& category, const std::string& id = {}) {
    return std::string(R"("resourceType":"Observation",)") + (id.empty() ? "" : R"("id":")" + id + R"(",)") +
           R"("status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":")" +
           category + R"("}]}],"code":{"text":"matrix"},"subject":{"reference":"Patient/)" + nhs + R"("}})";
}

std::string condition_of(const std::string& nhs) {
    return R"("resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":{"text":"matrix"},"subject":{"reference":"Patient/)" +
           nhs + R"("}})";
}

std::string encounter_of(const std::string& nhs, const std::string& ods) {
    return R"({"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/)" +
           nhs + R"("},"serviceProvider":{"reference":"Organization/)" + ods + R"("}})";
}

std::string provenance_of(const std::string& target, const std::string& ods) {
    return R"({"resourceType":"Provenance","target":[{"reference":")" + target +
           R"("}],"recorded":"2026-11-01T10:00:00Z","agent":[{"who":{"reference":"Organization/)" + ods + R"("}}]})";
}

/// A caller: a provider identity, or a citizen's token on the patient endpoint (with X-Act-For for a carer).
struct caller {
    std::string name;
    std::optional<identity> provider;
    std::string citizen_token;
    std::string act_for;
};

/// "Type/id/version" of a version.
std::string key_of(const storage::stored_version& v) { return v.type + "/" + v.id + "/" + std::to_string(v.version_id); }
std::string resource_of(const storage::stored_version& v) { return v.type + "/" + v.id; }

struct matrix_fixture : patient_fixture {
    std::vector<storage::stored_version> versions; ///< every version stored, oldest first
    std::set<std::string> resources;               ///< Type/id of every resource ever stored
    std::vector<caller> callers;
    storage::timestamp middle = 0;                 ///< a moment halfway through the writes

    matrix_fixture() {
        const std::string carol_patient = patient_json(carol, R"("id":"9000000025","generalPractitioner":[{"reference":"Organization/A81001"}])");
        REQUIRE(call("PUT", std::string("/Patient/") + carol, carol_patient).status == 201);
        REQUIRE(call("PUT", std::string("/Patient/") + dan,
                     patient_json(dan, R"("id":"9000000033","generalPractitioner":[{"reference":"Organization/A81001"}])"))
                    .status == 201);
        // Relationships: the acute trust with Tom and Carol, the council with Tom.
        created_id(call_as(acute_clinician(), "POST", "/Encounter", encounter_of(tom, "RX1")));
        created_id(call_as(acute_clinician(), "POST", "/Encounter", encounter_of(carol, "RX1")));
        created_id(call_as(social_worker(), "POST", "/CareTeam",
                           R"({"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/9000000009"},"managingOrganization":[{"reference":"Organization/8JK23"}]})"));
        // Labels and parts of types.
        created_id(call_as(gp_clinician(), "POST", "/Condition", labelled(condition_of(tom), confidentiality, "R")));
        const std::string acute_v = created_id(call_as(acute_clinician(), "POST", "/Condition", labelled(condition_of(tom), confidentiality, "V")));
        created_id(call_as(gp_clinician(), "POST", "/Observation", "{" + observation_of(tom, "social-history")));
        const std::string lab = created_id(call_as(gp_clinician(), "POST", "/Observation", "{" + observation_of(tom, "laboratory")));
        flush();
        middle = access::now_micros();
        // Restricted later; moved; deleted; deleted after a label.
        REQUIRE(call_as(gp_clinician(), "PUT", "/Observation/later", "{" + observation_of(tom, "laboratory", "later")).status == 201);
        REQUIRE(call_as(gp_clinician(), "PUT", "/Observation/later", labelled(observation_of(tom, "laboratory", "later"), act_code, "NOPAT")).status == 200);
        REQUIRE(call("PUT", "/Observation/moved", "{" + observation_of(tom, "social-history", "moved")).status == 201);
        REQUIRE(call("PUT", "/Observation/moved", "{" + observation_of(bunmi, "social-history", "moved")).status == 200);
        REQUIRE(call_as(gp_clinician(), "PUT", "/Observation/gone", "{" + observation_of(tom, "vital-signs", "gone")).status == 201);
        REQUIRE(call_as(gp_clinician(), "DELETE", "/Observation/gone").status == 204);
        REQUIRE(call_as(gp_clinician(), "PUT", "/Condition/gone-r", "{" + std::string(R"("id":"gone-r",)") + condition_of(tom)).status == 201);
        REQUIRE(call_as(gp_clinician(), "PUT", "/Condition/gone-r",
                        labelled(std::string(R"("id":"gone-r",)") + condition_of(tom), confidentiality, "R")).status == 200);
        REQUIRE(call_as(gp_clinician(), "DELETE", "/Condition/gone-r").status == 204);
        // Carol objects: each organisation sees what it wrote.
        created_id(call_as(gp_clinician(), "POST", "/Condition", "{" + condition_of(carol)));
        created_id(call_as(acute_clinician(), "POST", "/Condition", "{" + condition_of(carol)));
        created_id(call_as(gp_clinician(), "POST", "/Consent",
                           R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/9000000025"},"provision":{"type":"deny"}})"));
        // Provenances: of the acute trust's V item, of the GP's lab result, of a NOPAT item, of Bunmi's.
        created_id(call_as(acute_clinician(), "POST", "/Provenance", provenance_of("Condition/" + acute_v, "RX1")));
        created_id(call_as(gp_clinician(), "POST", "/Provenance", provenance_of("Observation/" + lab, "A81001")));
        created_id(call_as(gp_clinician(), "POST", "/Provenance", provenance_of("Observation/" + tom_hidden, "A81001")));
        created_id(call("POST", "/Provenance", provenance_of("Observation/" + bunmi_observation, "QZZ")));
        // Binaries: the documents of the acute trust's V item, of the GP's lab result, of a NOPAT item,
        // of Bunmi's item; and one of the GP's and one of the trust's naming no context.
        created_id(binary(acute_clinician(), "Condition/" + acute_v));
        created_id(binary(gp_clinician(), "Observation/" + lab));
        created_id(binary(gp_clinician(), "Observation/" + tom_hidden));
        created_id(binary(gp_clinician(), "Observation/later")); // labelled NOPAT after it was written
        created_id(binary(system_identity(), "Observation/" + bunmi_observation));
        created_id(binary(gp_clinician(), {}));
        created_id(binary(acute_clinician(), {}));
        // Dan's record, then its erasure.
        const std::string dans = created_id(call_as(gp_clinician(), "POST", "/Observation", "{" + observation_of(dan, "laboratory")));
        created_id(call_as(gp_clinician(), "POST", "/Provenance", provenance_of("Observation/" + dans, "A81001")));
        created_id(binary(gp_clinician(), "Observation/" + dans));
        REQUIRE(call("DELETE", std::string("/Patient/") + dan + "?_cascade=delete").status / 100 == 2);
        // Carers for Tom: Bunmi with the whole record, another with appointments and medicines.
        created_id(call("POST", "/Appointment",
                        R"({"resourceType":"Appointment","status":"booked","participant":[{"actor":{"reference":"Patient/9000000009"},"status":"accepted"}]})"));
        grant(bunmi, "full-record", "lasting-power-of-attorney");
        grant(second_carer, "appointments-and-medications", "citizen-consent");
        // A break-glass grant into Bunmi's record, opened before the matrix runs.
        REQUIRE(call_as(acute_emergency(), "GET", std::string("/Patient/") + bunmi).status == 200);
        flush();

        storage::search_visibility everything;
        everything.everything = true;
        storage::history_query all;
        all.visibility = &everything;
        all.count = 100000;
        auto page = store->history(all);
        REQUIRE(page.ok());
        versions.assign(page->entries.rbegin(), page->entries.rend());
        for (const auto& v : versions)
            resources.insert(resource_of(v));

        for (const identity& who : {system_identity(), gp_clinician(), gp_nurse(), gp_admin(), acute_clinician(),
                                    acute_admin(), social_worker(), ig_officer(), acute_emergency()})
            callers.push_back({who.user + "@" + who.ods, who, {}, {}});
        callers.push_back({"Tom P9", std::nullopt, citizen_token(tom), {}});
        callers.push_back({"Tom P5", std::nullopt, citizen_token(tom, "P5"), {}});
        callers.push_back({"Bunmi P9", std::nullopt, citizen_token(bunmi), {}});
        callers.push_back({"Carol P9 (objecting)", std::nullopt, citizen_token(carol), {}});
        callers.push_back({"Bunmi for Tom, full record", std::nullopt, citizen_token(bunmi), tom});
        callers.push_back({"carer for Tom, appointments", std::nullopt, citizen_token(second_carer), tom});
    }

    static identity acute_emergency() {
        return {"RX1", "R8000", "acute-doctor-2", "ETREAT", "unconscious in A&E", {}};
    }

    void grant(const std::string& carer, const std::string& scope, const std::string& basis) {
        const std::string related = created_id(call(
            "POST", "/RelatedPerson",
            R"({"resourceType":"RelatedPerson","patient":{"reference":"Patient/9000000009"},"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
                carer + R"("}]})"));
        created_id(call("POST", "/Consent",
                        R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"https://fhir.caregate.nhs.uk/CodeSystem/proxy-access","code":")" +
                            scope + R"("}]}],"patient":{"reference":"Patient/9000000009"},"policyRule":{"coding":[{"system":"https://fhir.caregate.nhs.uk/CodeSystem/proxy-basis","code":")" +
                            basis + R"("}]},"provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-RoleCode","code":"DAU"}]},"reference":{"reference":"RelatedPerson/)" +
                            related + R"("}}]}})"));
    }

    /// A document's bytes sent raw by `who`, for `context` (none when empty).
    http::response binary(const identity& who, const std::string& context) {
        std::vector<http::header_field> headers{{"Content-Type", "application/pdf"}};
        if (!context.empty())
            headers.push_back({"X-Security-Context", context});
        return call_as(who, "POST", "/Binary", "%PDF-1.4 a letter for " + (context.empty() ? "nobody" : context),
                       std::move(headers));
    }

    http::response as(const caller& c, const std::string& target) {
        if (c.provider)
            return call_as(*c.provider, "GET", target);
        std::vector<http::header_field> headers;
        if (!c.act_for.empty())
            headers.push_back({"X-Act-For", c.act_for});
        return as_citizen(c.citizen_token, "GET", target, {}, std::move(headers));
    }

    /// The rule's single-resource form for this caller: which versions it may see, and which current
    /// versions it may read.
    struct expectation {
        std::set<std::string> entries;       ///< Type/id/version of the history entries it may see
        std::set<std::string> readable;      ///< Type/id of live resources it may read now
        std::set<std::string> deleted_known; ///< Type/id of deleted resources whose deletion it may learn
    };

    expectation expect(const caller& c) {
        http::request req;
        req.secure = true;
        if (c.provider) {
            req.headers.push_back({"Authorization", "Bearer " + token_for(*c.provider)});
            req.client_ods = c.provider->ods;
        } else {
            req.headers.push_back({"Authorization", "Bearer " + c.citizen_token});
            if (!c.act_for.empty())
                req.headers.push_back({"X-Act-For", c.act_for});
        }
        const access::guard& rule = c.provider ? *guard : *citizen_guard;
        auto who = rule.authenticate(caregate::rest::credentials_of(req), access::now_micros() / 1'000'000);
        REQUIRE_MESSAGE(who.ok(), c.name);
        access::request_views views;
        const auto now = access::now_micros();
        auto can_read = [&](const storage::stored_version& v) {
            auto seen = rule.can_read(*who, v, "matrix", now, views, false);
            REQUIRE(seen.ok());
            return *seen;
        };
        // The last live version of each resource, and whether it is current (not deleted since).
        std::map<std::string, const storage::stored_version*> last_live;
        std::map<std::string, const storage::stored_version*> current;
        std::map<std::string, const storage::stored_version*> by_key;
        for (const auto& v : versions) {
            current[resource_of(v)] = &v;
            by_key[key_of(v)] = &v;
            if (!v.deleted)
                last_live[resource_of(v)] = &v;
        }
        expectation out;
        for (const auto& v : versions) {
            const auto live = last_live.find(resource_of(v));
            if (live == last_live.end() || !can_read(*live->second))
                continue;
            const storage::stored_version* shown = &v;
            if (v.deleted) {
                auto before = by_key.find(v.type + "/" + v.id + "/" + std::to_string(v.version_id - 1));
                if (before == by_key.end())
                    continue;
                shown = before->second;
            }
            if (can_read(*shown))
                out.entries.insert(key_of(v));
        }
        for (const auto& [resource, v] : current) {
            if (!v->deleted && can_read(*v))
                out.readable.insert(resource);
            if (v->deleted && last_live.count(resource) && can_read(*last_live[resource]))
                out.deleted_known.insert(resource);
        }
        return out;
    }
};

/// Reads `path` and the pages its next links lead to, handing each 200 page's JSON to `on_page`;
/// `status` gets the last status.
template <class OnPage>
void each_page(matrix_fixture& f, const caller& c, std::string path, unsigned* status, OnPage&& on_page) {
    for (int page = 0; page < 200 && !path.empty(); ++page) {
        const http::response r = f.as(c, path);
        if (status)
            *status = r.status;
        if (r.status != 200)
            return;
        auto doc = json_of(r);
        path.clear();
        on_page(doc);
        for (const auto& link : doc["link"].GetArray())
            if (std::string_view(link["relation"].GetString()) == "next") {
                std::string next = link["url"].GetString();
                path = next.substr(next.find("/fhir/") + 5);
            }
    }
}

/// Type/id/version of every entry of a history Bundle, following next links.
std::set<std::string> history_entries(matrix_fixture& f, const caller& c, std::string path, unsigned* status = nullptr) {
    std::set<std::string> out;
    each_page(f, c, std::move(path), status, [&](const rapidjson::Document& doc) {
        if (doc.HasMember("entry"))
            for (const auto& e : doc["entry"].GetArray()) {
                std::string url = e["fullUrl"].GetString();
                url.erase(0, url.find("/fhir/") + 6);
                std::string etag = e["response"]["etag"].GetString(); // W/"n"
                out.insert(url + "/" + etag.substr(3, etag.size() - 4));
            }
    });
    return out;
}

/// Type/id of every resource a searchset Bundle holds, following next links; `matches_only`: its matches.
std::set<std::string> search_resources(matrix_fixture& f, const caller& c, std::string path, bool matches_only,
                                       unsigned* status = nullptr) {
    std::set<std::string> out;
    each_page(f, c, std::move(path), status, [&](const rapidjson::Document& doc) {
        if (!doc.HasMember("entry"))
            return;
        for (const auto& e : doc["entry"].GetArray()) {
            if (!e.HasMember("resource"))
                continue;
            const bool match = !e.HasMember("search") || std::string_view(e["search"]["mode"].GetString()) == "match";
            if (matches_only && !match)
                continue;
            const auto& resource = e["resource"];
            if (std::string_view(resource["resourceType"].GetString()) == "OperationOutcome")
                continue;
            out.insert(std::string(resource["resourceType"].GetString()) + "/" + resource["id"].GetString());
        }
    });
    return out;
}

std::set<std::string> only_type(const std::set<std::string>& keys, const std::string& type) {
    std::set<std::string> out;
    for (const auto& k : keys)
        if (k.starts_with(type + "/"))
            out.insert(k);
    return out;
}

std::set<std::string> only_resource(const std::set<std::string>& keys, const std::string& resource) {
    std::set<std::string> out;
    for (const auto& k : keys)
        if (k.starts_with(resource + "/"))
            out.insert(k);
    return out;
}

const std::vector<std::string> matrix_types = {"Observation", "Condition", "Provenance", "Patient", "Encounter",
                                               "Consent", "Appointment", "Binary"};

} // namespace

TEST_CASE("the visibility matrix: every caller sees exactly the versions the rule allows, on every path") {
    matrix_fixture f;
    for (const caller& c : f.callers) {
        CAPTURE(c.name);
        const auto expected = f.expect(c);

        // System and type history, whole and with _since and _at.
        unsigned status = 0;
        const auto system = history_entries(f, c, "/_history?_count=7", &status);
        if (status == 200) {
            CHECK(system == expected.entries);
        } else {
            CHECK(status == 403);
        }
        std::set<std::string> since_expected, at_expected;
        const std::string middle = storage::store::format_instant(f.middle);
        auto at = fhir::parse_date_time(middle);
        REQUIRE(at.has_value());
        std::map<std::string, storage::timestamp> next_version_at;
        for (const auto& v : f.versions) {
            const std::string key = key_of(v);
            if (!expected.entries.count(key))
                continue;
            if (v.last_updated >= f.middle)
                since_expected.insert(key);
        }
        for (std::size_t i = 0; i < f.versions.size(); ++i) {
            const auto& v = f.versions[i];
            if (!expected.entries.count(key_of(v)) || v.last_updated >= at->end)
                continue;
            bool replaced = false;
            for (const auto& w : f.versions)
                replaced = replaced || (w.type == v.type && w.id == v.id && w.version_id == v.version_id + 1 &&
                                        w.last_updated <= at->begin);
            if (!replaced)
                at_expected.insert(key_of(v));
        }
        if (status == 200) {
            CHECK(history_entries(f, c, "/_history?_count=5&_since=" + middle) == since_expected);
            CHECK(history_entries(f, c, "/_history?_count=5&_at=" + middle) == at_expected);
        }
        for (const std::string& type : matrix_types) {
            CAPTURE(type);
            unsigned type_status = 0;
            const auto of_type = history_entries(f, c, "/" + type + "/_history?_count=4", &type_status);
            if (type_status == 200) {
                CHECK(of_type == only_type(expected.entries, type));
                CHECK(history_entries(f, c, "/" + type + "/_history?_since=" + middle) == only_type(since_expected, type));
                CHECK(history_entries(f, c, "/" + type + "/_history?_at=" + middle) == only_type(at_expected, type));
            } else {
                CHECK(type_status == 403);
                CHECK(only_type(expected.entries, type).empty());
            }
            // Search: the live resources it may read now, totals included; includes add nothing hidden.
            unsigned search_status = 0;
            const auto found = search_resources(f, c, "/" + type + "?_count=3", true, &search_status);
            std::set<std::string> readable_of_type;
            for (const auto& r : expected.readable)
                if (r.starts_with(type + "/"))
                    readable_of_type.insert(r);
            if (search_status == 200) {
                CHECK(found == readable_of_type);
                const http::response counted = f.as(c, "/" + type + "?_total=accurate&_count=1");
                CHECK(json_of(counted)["total"].GetUint() == readable_of_type.size());
            } else {
                CHECK(search_status == 403);
                CHECK(readable_of_type.empty());
            }
        }
        for (const auto& shown : search_resources(
                 f, c, "/Observation?_include=Observation:subject&_revinclude=Provenance:target&_count=50", false))
            CHECK_MESSAGE(expected.readable.count(shown), shown);
        for (const auto& shown : search_resources(f, c, "/Condition?_revinclude=Provenance:target&_count=50", false))
            CHECK_MESSAGE(expected.readable.count(shown), shown);

        // Every resource: read, instance history, every version's vread.
        for (const std::string& resource : f.resources) {
            CAPTURE(resource);
            const unsigned read = f.as(c, "/" + resource).status;
            if (expected.readable.count(resource))
                CHECK(read == 200);
            else if (expected.deleted_known.count(resource))
                CHECK(read == 410);
            else
                CHECK((read == 404 || read == 403));
            unsigned instance_status = 0;
            const auto instance = history_entries(f, c, "/" + resource + "/_history?_count=2", &instance_status);
            if (instance_status == 200)
                CHECK(instance == only_resource(expected.entries, resource));
            else
                CHECK(only_resource(expected.entries, resource).empty());
        }
        for (const auto& v : f.versions) {
            CAPTURE(key_of(v));
            const unsigned vread = f.as(c, "/" + resource_of(v) + "/_history/" + std::to_string(v.version_id)).status;
            if (!expected.entries.count(key_of(v)))
                CHECK((vread == 404 || vread == 403));
            else
                CHECK(vread == (v.deleted ? 410u : 200u));
        }

        // $everything: nothing it may not read.
        for (const char* citizen : {tom, bunmi, carol, dan})
            for (const auto& shown : search_resources(f, c, std::string("/Patient/") + citizen + "/$everything", false))
                CHECK_MESSAGE(expected.readable.count(shown), shown);

        // The access log names only what its reader may see now.
        if (!c.provider) {
            f.flush();
            const http::response log = f.as(c, "/AuditEvent?_count=1000");
            if (log.status == 200) {
                auto doc = json_of(log);
                if (doc.HasMember("entry"))
                    for (const auto& e : doc["entry"].GetArray()) {
                        const auto& event = e["resource"];
                        if (!event.HasMember("entity"))
                            continue;
                        for (const auto& entity : event["entity"].GetArray()) {
                            if (!entity.HasMember("what") || !entity["what"].HasMember("reference"))
                                continue;
                            const std::string named = entity["what"]["reference"].GetString();
                            if (named.starts_with("Patient/"))
                                continue;
                            CHECK_MESSAGE(expected.readable.count(named) + expected.deleted_known.count(named) == 1, named);
                        }
                    }
            }
        }
    }
}

TEST_CASE("the visibility matrix's rule, pinned: what each caller may see of the items made to test it") {
    matrix_fixture f;
    auto by_name = [&](const std::string& name) {
        for (const auto& c : f.callers)
            if (c.name == name)
                return f.expect(c);
        FAIL("no caller " << name);
        return matrix_fixture::expectation{};
    };
    const auto gp = by_name("gp-doctor-1@A81001");
    const auto acute = by_name("acute-doctor-1@RX1");
    const auto tom_p9 = by_name("Tom P9");
    const auto tom_p5 = by_name("Tom P5");
    const auto carer = by_name("carer for Tom, appointments");
    const auto social = by_name("social-worker-1@8JK23");
    const auto emergency = by_name("acute-doctor-2@RX1");
    // A label added later hides version 1 from the citizen; the GP who wrote it sees both.
    CHECK_FALSE(tom_p9.entries.count("Observation/later/1"));
    CHECK(gp.entries.count("Observation/later/1"));
    CHECK(gp.entries.count("Observation/later/2"));
    // A subject moved to Bunmi leaves Tom's GP, who has no relationship with her.
    CHECK_FALSE(gp.entries.count("Observation/moved/1"));
    CHECK(tom_p9.readable.count(std::string("Patient/") + tom));
    CHECK_FALSE(tom_p9.entries.count("Observation/moved/1"));
    // A deletion of an item labelled R first: the social worker learns nothing of it.
    CHECK_FALSE(social.entries.count("Condition/gone-r/1"));
    CHECK(gp.deleted_known.count("Condition/gone-r"));
    // The erased citizen is gone for everyone, the ICS included.
    CHECK_FALSE(by_name("test-system@QZZ").readable.count(std::string("Patient/") + dan));
    // P5: demographics only; a carer: their grant only.
    for (const auto& r : tom_p5.readable)
        CHECK_MESSAGE(r.starts_with("Patient/"), r);
    for (const auto& r : carer.readable)
        CHECK_MESSAGE((r.starts_with("Patient/") || r.starts_with("Appointment/") || r.starts_with("MedicationRequest/")), r);
    // Break-glass opened Bunmi's record for the user who broke it, not for the colleague.
    CHECK(emergency.readable.count(std::string("Patient/") + bunmi));
    CHECK_FALSE(acute.readable.count(std::string("Patient/") + bunmi));
    // Carol objects: the acute trust sees its own Condition, not the GP's.
    std::size_t acute_carol_conditions = 0;
    for (const auto& v : f.versions)
        if (v.type == "Condition" && !v.citizens.empty() && v.citizens.front() == carol &&
            acute.readable.count(resource_of(v))) {
            CHECK(v.owner == "RX1");
            ++acute_carol_conditions;
        }
    CHECK(acute_carol_conditions == 1);
    // A Binary follows its securityContext: the V item's document is the trust's alone, the NOPAT
    // item's is not the citizen's; one naming no context is its writer's organisation's alone.
    std::size_t binaries = 0;
    for (const auto& v : f.versions) {
        if (v.type != "Binary")
            continue;
        ++binaries;
        const std::string binary = resource_of(v);
        CAPTURE(v.json);
        if (v.json.find("securityContext") == std::string::npos) {
            CHECK(gp.readable.count(binary) == (v.owner == "A81001"));
            CHECK(acute.readable.count(binary) == (v.owner == "RX1"));
            CHECK_FALSE(tom_p9.readable.count(binary));
        } else if (v.json.find("Condition/") != std::string::npos) { // the acute trust's V item
            CHECK(acute.readable.count(binary));
            CHECK_FALSE(gp.readable.count(binary));
        } else if (v.json.find("Observation/later") != std::string::npos) { // labelled NOPAT after
            CHECK(gp.readable.count(binary));
            CHECK_FALSE(tom_p9.readable.count(binary));
        }
        CHECK_FALSE(social.readable.count(binary)); // social care reads no documents
    }
    CHECK(binaries == 7); // Dan's went with his record
}
