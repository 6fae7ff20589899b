// Tests of Bulk Data export through the REST application and the export runner
// (interactions/bulk_export.cpp, export/runner.hpp, export/pseudonymise.hpp): what an export may take,
// as an attacker would look for what it should not (an objector, a very restricted item, an opted-out
// citizen, an NHS number, a name, free text), the access log, the job's owner, cancel and resume.
// The protocol itself is also checked black-box, on both engines, by conformance/checks/bulk_export.py.
#include "application_fixture.hpp"

#include "export/job_request.hpp"
#include "export/runner.hpp"

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace caregate;
using namespace caregate::testing;

namespace {

constexpr const char* tom = "9000000009";
constexpr const char* objector = "9000000017";
constexpr const char* opted_out = "9000000025";

identity analyst() { return {"QZZ", "analyst", "population-platform", {}, {}, {}}; }

const std::vector<http::header_field> async = {{"Prefer", "respond-async"}, {"Accept", "application/fhir+json"}};

std::string key_hex(char fill) { return std::string(64, fill); }

/// The fixture with an export runner beside it.
struct export_fixture : application_fixture {
    exports::runner_settings settings = [] {
        exports::runner_settings s;
        s.idle_poll = std::chrono::milliseconds(10);
        s.keys = std::make_shared<const exports::pseudonym_keys>(
            exports::pseudonym_keys::parse(R"({"QZZ": ")" + key_hex('a') + R"("})"));
        return s;
    }();
    std::unique_ptr<exports::runner> runner;

    void start() {
        runner = std::make_unique<exports::runner>(
            *store, [this] { return std::shared_ptr<const access::guard>(guard.get(), [](const access::guard*) {}); },
            settings);
    }
    ~export_fixture() { runner.reset(); }

    std::string status_path(const http::response& kickoff) {
        REQUIRE_MESSAGE(kickoff.status == 202, kickoff.body);
        const std::string location(kickoff.header("Content-Location"));
        REQUIRE(location.starts_with(test_base_url));
        return location.substr(std::string(test_base_url).size());
    }

    /// Polls until the job is done; the final answer.
    http::response finished(const identity& who, const std::string& status) {
        for (int i = 0; i < 2000; ++i) {
            http::response polled = call_as(who, "GET", status);
            if (polled.status != 202)
                return polled;
            CHECK_FALSE(polled.header("X-Progress").empty());
            CHECK(polled.header("Retry-After") == "1");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        FAIL("the export did not finish");
        return {};
    }

    /// Runs an export as `who` to its end; every line of every output file, by type.
    std::map<std::string, std::vector<std::string>> export_lines(const identity& who, const std::string& kickoff,
                                                                 std::string* status_out = nullptr) {
        const std::string status = status_path(call_as(who, "GET", kickoff, {}, async));
        if (status_out)
            *status_out = status;
        http::response done = finished(who, status);
        REQUIRE_MESSAGE(done.status == 200, done.body);
        CHECK(done.header("Content-Type") == "application/json");
        rapidjson::Document manifest = json_of(done);
        CHECK(at(manifest, "requiresAccessToken").GetBool());
        CHECK(text_at(manifest, "request") == std::string("https://localhost:8443/fhir") + kickoff);
        std::map<std::string, std::vector<std::string>> lines;
        for (const auto& output : at(manifest, "output").GetArray()) {
            const std::string url = text_at(output, "url");
            http::response file = call_as(who, "GET", url.substr(std::string(test_base_url).size()));
            REQUIRE(file.status == 200);
            CHECK(file.header("Content-Type") == "application/fhir+ndjson");
            std::istringstream text(file.body);
            std::int64_t count = 0;
            for (std::string line; std::getline(text, line); ++count)
                lines[text_at(output, "type")].push_back(line);
            CHECK(count == at(output, "count").GetInt64());
        }
        return lines;
    }
};

std::string labelled_observation(const std::string& nhs, const std::string& code) {
    return R"({"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":")" +
           code + R"("}]},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/)" +
           nhs + R"("},"valueQuantity":{"value":60,"unit":"/min"}})";
}

std::string consent_json(const std::string& nhs, const std::string& scope) {
    return R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":")" +
           scope + R"("}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/)" +
           nhs + R"("},"provision":{"type":"deny"}})";
}

std::string created(const http::response& r) {
    REQUIRE_MESSAGE(r.status == 201, r.body);
    return id_of(r);
}

/// Three citizens, each with a heart rate; one objects to sharing, one has opted out of planning and
/// research use; Tom also has a very restricted (V) item. Returns the ids of the heart rates.
std::map<std::string, std::string> populate(export_fixture& f) {
    std::map<std::string, std::string> heart_rates;
    for (const char* nhs : {tom, objector, opted_out}) {
        REQUIRE(f.call("PUT", std::string("/Patient/") + nhs, patient_json(nhs, std::string(R"("id":")") + nhs + "\"")).status == 201);
        heart_rates[nhs] = created(f.call("POST", "/Observation", observation_json(std::string(R"({"reference":"Patient/)") + nhs + "\"}")));
    }
    created(f.call("POST", "/Consent", consent_json(objector, "patient-privacy")));
    created(f.call("POST", "/Consent", consent_json(opted_out, "research")));
    heart_rates["V"] = created(f.call("POST", "/Observation", labelled_observation(tom, "V")));
    return heart_rates;
}

bool any_line_holds(const std::map<std::string, std::vector<std::string>>& lines, const std::string& text) {
    for (const auto& [type, of_type] : lines)
        for (const auto& line : of_type)
            if (line.find(text) != std::string::npos)
                return true;
    return false;
}

/// Writes bench's synthetic population of `citizens` (seed 3) through the API; its resources, as written.
std::vector<std::string> load_population(export_fixture& f, int citizens) {
    const std::filesystem::path population = f.dir / "population.ndjson";
    REQUIRE(std::system(("python3 '" + std::string(CAREGATE_SOURCE_DIR) + "/bench/population.py' --citizens " +
                         std::to_string(citizens) + " --seed 3 --out '" + population.string() + "' >/dev/null")
                            .c_str()) == 0);
    std::ifstream in(population);
    std::vector<std::string> written;
    for (std::string line; std::getline(in, line);) {
        rapidjson::Document doc;
        doc.Parse(line.c_str());
        REQUIRE(!doc.HasParseError());
        const std::string path = std::string("/") + doc["resourceType"].GetString() + "/" + doc["id"].GetString();
        REQUIRE_MESSAGE(f.call("PUT", path, line).status / 100 == 2, line);
        written.push_back(line);
    }
    return written;
}

std::int64_t export_log_entries(export_fixture& f, const std::string& nhs) {
    f.flush();
    storage::store::audit_query query;
    query.nhs_number = nhs;
    query.count = 1000;
    auto page = f.store->audit(query);
    REQUIRE(page.ok());
    std::int64_t found = 0;
    for (const auto& record : page->records)
        found += record.action == "export";
    return found;
}

} // namespace

TEST_CASE("identifiable export: an objector and a very restricted item never leave; each citizen exported is logged once") {
    export_fixture f;
    const auto ids = populate(f);
    f.start();
    const auto lines = f.export_lines(system_identity(), "/$export");

    REQUIRE(lines.contains("Observation"));
    CHECK(any_line_holds(lines, ids.at(tom)));
    CHECK(any_line_holds(lines, ids.at(opted_out))); // the opt-out binds planning, not direct care
    CHECK_FALSE(any_line_holds(lines, ids.at(objector)));
    CHECK_FALSE(any_line_holds(lines, objector)); // not their Patient, Consent or anything naming them
    CHECK_FALSE(any_line_holds(lines, ids.at("V")));
    CHECK_FALSE(lines.contains("AuditEvent"));
    // The stored bytes, as a read serves them.
    const std::string read = f.call("GET", "/Observation/" + ids.at(tom)).body;
    CHECK(std::find(lines.at("Observation").begin(), lines.at("Observation").end(), read) !=
          lines.at("Observation").end());

    CHECK(export_log_entries(f, tom) == 1); // a Patient, an Observation and a V item: one entry
    // As the access log shows it (to a citizen, and here to information governance).
    const http::response trail = f.call_as(ig_officer(), "GET", std::string("/AuditEvent?patient=") + tom);
    REQUIRE(trail.status == 200);
    CHECK(trail.body.find("included in a population health export, for direct care") != std::string::npos);
    CHECK(export_log_entries(f, opted_out) == 1);
    CHECK(export_log_entries(f, objector) == 0);
}

TEST_CASE("pseudonymised export: opted-out citizens and objectors left out, no NHS number, name or free text, stable pseudonyms") {
    export_fixture f;
    const auto ids = populate(f);
    f.start();
    const auto first = f.export_lines(analyst(), "/$export");
    const auto second = f.export_lines(analyst(), "/$export");

    for (const char* nhs : {tom, objector, opted_out})
        CHECK_FALSE(any_line_holds(first, nhs));
    for (const auto& [nhs, id] : ids)
        CHECK_FALSE(any_line_holds(first, id)); // ids are pseudonyms too
    CHECK_FALSE(any_line_holds(first, "Tess"));
    CHECK_FALSE(any_line_holds(first, "\"name\""));
    CHECK_FALSE(any_line_holds(first, "https://fhir.nhs.uk/Id/nhs-number"));
    const std::string tom_pseudonym = exports::pseudonym(*f.settings.keys->find("QZZ"), "Patient", tom);
    CHECK(any_line_holds(first, "Patient/" + tom_pseudonym));
    CHECK(any_line_holds(first, "\"birthDate\":\"1970-01\""));
    CHECK_FALSE(any_line_holds(first, exports::pseudonym(*f.settings.keys->find("QZZ"), "Patient", opted_out)));
    CHECK_FALSE(any_line_holds(first, exports::pseudonym(*f.settings.keys->find("QZZ"), "Patient", objector)));
    CHECK(first == second); // the same recipient, the same pseudonyms
    CHECK(exports::pseudonym(key_hex('a'), "Patient", tom) != exports::pseudonym(key_hex('b'), "Patient", tom));
    CHECK(export_log_entries(f, tom) == 0); // no citizen is exported identifiably
}

TEST_CASE("pseudonymised export of the synthetic population: no NHS number, name, address line or free text survives") {
    export_fixture f;
    // Every resource, as the integration system writes it; what identifies people, from the file itself.
    std::set<std::string> identifying;
    const std::vector<std::string> resources = load_population(f, 6);
    const std::size_t written = resources.size();
    for (const std::string& line : resources) {
        rapidjson::Document doc;
        doc.Parse(line.c_str());
        if (std::string(doc["resourceType"].GetString()) != "Patient")
            continue;
        identifying.insert(doc["id"].GetString());
        for (const auto& name : doc["name"].GetArray()) {
            if (name.HasMember("family"))
                identifying.insert(name["family"].GetString());
            if (name.HasMember("given"))
                for (const auto& given : name["given"].GetArray())
                    identifying.insert(given.GetString());
        }
        if (doc.HasMember("address"))
            for (const auto& address : doc["address"].GetArray())
                if (address.HasMember("line"))
                    for (const auto& part : address["line"].GetArray())
                        identifying.insert(part.GetString());
        if (doc.HasMember("telecom"))
            for (const auto& telecom : doc["telecom"].GetArray())
                identifying.insert(telecom["value"].GetString());
    }
    REQUIRE(written > 20);
    REQUIRE(identifying.size() > 12);
    f.start();
    const auto lines = f.export_lines(analyst(), "/$export");
    std::size_t exported = 0;
    for (const auto& [type, of_type] : lines)
        for (const auto& line : of_type) {
            ++exported;
            for (const auto& text : identifying)
                CHECK_MESSAGE(line.find(text) == std::string::npos, "'" << text << "' survived in " << line);
            for (const char* free_text : {"\"text\":", "\"note\":", "\"comment\":", "\"display\":", "\"name\":[",
                                          "\"telecom\":", "\"line\":["})
                CHECK_MESSAGE(line.find(free_text) == std::string::npos, free_text << " survived in " << line);
        }
    CHECK(exported == written);
}

TEST_CASE("a job's status, manifest and files are the requester's alone; a cancelled job is gone") {
    export_fixture f;
    populate(f);
    f.start();
    std::string status;
    const auto lines = f.export_lines(system_identity(), "/$export?_type=Patient", &status);
    REQUIRE(lines.size() == 1);
    http::response manifest = f.call("GET", status);
    REQUIRE(manifest.status == 200);
    const std::string file = text_at(json_of(manifest), "output", 0, "url").substr(std::string(test_base_url).size());

    // Another organisation learns nothing, not even that the job exists.
    for (const auto& other : {gp_clinician(), social_worker()}) {
        CHECK(f.call_as(other, "GET", status).status == 404);
        CHECK(f.call_as(other, "GET", file).status == 404);
        CHECK(f.call_as(other, "DELETE", status).status == 404);
    }
    CHECK(f.call_as(system_identity(), "GET", file).status == 200);

    CHECK(f.call("DELETE", status).status == 202);
    CHECK(f.call("GET", status).status == 404);
    CHECK(f.call("GET", file).status == 404);
    CHECK(f.call("DELETE", status).status == 404);
}

TEST_CASE("kick-off errors: 403 for who may not export, 400 naming what is wrong") {
    export_fixture f;
    CHECK(f.call_as(gp_clinician(), "GET", "/$export", {}, async).status == 403);
    CHECK(f.call_as(social_worker(), "GET", "/Patient/$export", {}, async).status == 403);
    CHECK(f.call("GET", "/$export").status == 400); // no Prefer: respond-async
    struct refused {
        std::string target;
        unsigned status;
        std::string names;
    };
    for (const refused& r : std::vector<refused>{
             {"/$export?patient=Patient/9000000009", 400, "patient"},
             {"/$export?includeAssociatedData=LatestProvenanceResources", 400, "includeAssociatedData"},
             {"/$export?_outputFormat=text/csv", 400, "_outputFormat"},
             {"/$export?_since=yesterday", 400, "_since"},
             {"/$export?_type=Nonsense", 400, "_type"},
             {"/$export?_type=AuditEvent", 400, "_type"},
             {"/Patient/$export?_type=Organization", 400, "_type"},
             {"/$export?_typeFilter=Observation%3Fnonsense%3D1", 400, "_typeFilter"},
             {"/$export?_type=Patient&_typeFilter=Observation%3Fcode%3D1", 400, "_typeFilter"},
             {"/$export?_typeFilter=Observation%3F_count%3D1", 400, "_typeFilter"},
             {"/$export?_typeFilter=Observation%3Fcode%3D1,Observation%3Fcode%3D2", 400, "_typeFilter"},
             {"/Group/no-such-group/$export", 404, ""},
         }) {
        const http::response answer = f.call("GET", r.target, {}, async);
        CHECK_MESSAGE(answer.status == r.status, r.target << ": " << answer.body);
        if (!r.names.empty())
            CHECK_MESSAGE(answer.body.find(r.names) != std::string::npos, r.target << ": " << answer.body);
    }
}

TEST_CASE("_type, _since, _typeFilter, _elements, Patient and Group exports take what they say, no more") {
    export_fixture f;
    const auto ids = populate(f);
    const std::string later_one = created(f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})")));
    f.start();

    auto only_patients = f.export_lines(system_identity(), "/$export?_type=Patient");
    REQUIRE(only_patients.size() == 1);
    CHECK(only_patients.at("Patient").size() == 2); // not the objector

    // _since: only what changed after it.
    auto since_ts = json_of(f.call("GET", "/Observation/" + later_one));
    const std::string since = text_at(since_ts, "meta", "lastUpdated");
    auto since_lines = f.export_lines(system_identity(), "/$export?_type=Observation&_since=" + since);
    CHECK(since_lines.empty()); // changed at, not after
    const std::string newest = created(f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})")));
    since_lines = f.export_lines(system_identity(), "/$export?_type=Observation&_since=" + since);
    REQUIRE(since_lines.contains("Observation"));
    CHECK(since_lines.at("Observation").size() == 1);
    CHECK(any_line_holds(since_lines, newest));

    // _typeFilter: the criteria of a search.
    auto filtered = f.export_lines(system_identity(),
                                   "/$export?_type=Observation,Patient&_typeFilter=Patient%3F_id%3D9000000009");
    CHECK(filtered.at("Patient").size() == 1);
    CHECK(filtered.at("Observation").size() == 4); // Tom's three, the opted-out citizen's one; not the V item

    // _elements: only what is named (and what is mandatory), marked SUBSETTED.
    auto subset = f.export_lines(system_identity(), "/$export?_type=Patient&_elements=Patient.gender");
    for (const auto& line : subset.at("Patient")) {
        CHECK(line.find("\"name\"") == std::string::npos);
        CHECK(line.find("SUBSETTED") != std::string::npos);
    }

    // A Group's export: its members only.
    const std::string group = created(f.call("POST", "/Group",
        R"({"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/9000000025"}}]})"));
    auto members = f.export_lines(system_identity(), "/Group/" + group + "/$export");
    REQUIRE(members.contains("Patient"));
    CHECK(members.at("Patient").size() == 1);
    CHECK(any_line_holds(members, opted_out));
    CHECK_FALSE(any_line_holds(members, ids.at(tom)));
    // The Patient level: the compartment's types only, never Organization.
    auto patient_level = f.export_lines(system_identity(), "/Patient/$export");
    CHECK_FALSE(patient_level.contains("Organization"));
    CHECK(patient_level.contains("Observation"));
}

TEST_CASE("a job resumed by another worker after a stop writes every line once") {
    export_fixture f;
    REQUIRE(f.call("PUT", std::string("/Patient/") + tom, patient_json(tom, std::string(R"("id":")") + tom + "\"")).status == 201);
    std::set<std::string> expected;
    for (int i = 0; i < 200; ++i)
        expected.insert(created(f.call("POST", "/Observation", observation_json(R"({"reference":"Patient/9000000009"})"))));
    f.settings.page_count = 7;
    f.settings.file_bytes = 1; // a file for every page: many saves to stop between
    const std::string status = f.status_path(f.call("GET", "/$export?_type=Observation", {}, async));
    f.start();
    for (int i = 0; i < 2000; ++i) {
        auto files = f.store->export_files(status.substr(status.rfind('/') + 1));
        REQUIRE(files.ok());
        if (!files->empty())
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    f.runner->stop(); // mid-job, most likely: it gives its lease back
    f.start();        // another worker goes on from the last save
    http::response done = f.finished(system_identity(), status);
    REQUIRE(done.status == 200);
    std::multiset<std::string> seen;
    const rapidjson::Document manifest = json_of(done);
    for (const auto& output : at(manifest, "output").GetArray()) {
        http::response file = f.call("GET", text_at(output, "url").substr(std::string(test_base_url).size()));
        std::istringstream text(file.body);
        for (std::string line; std::getline(text, line);) {
            const rapidjson::Document resource = json_of(http::response{200, {}, line});
            seen.insert(text_at(resource, "id"));
        }
    }
    CHECK(seen.size() == expected.size());
    CHECK(std::set<std::string>(seen.begin(), seen.end()) == expected);
}

TEST_CASE("an export of every type fills a file of each at once: one type a file, files of their size, every line once across a stop") {
    export_fixture f;
    const std::vector<std::string> resources = load_population(f, 6);
    std::multiset<std::string> expected;
    for (const std::string& line : resources) {
        const rapidjson::Document doc = json_of(http::response{200, {}, line});
        expected.insert(text_at(doc, "resourceType") + "/" + text_at(doc, "id"));
    }
    REQUIRE(std::set<std::string>(expected.begin(), expected.end()).size() > 5);
    f.settings.page_count = 13;
    f.settings.file_bytes = 8192; // a file of a type spans several saves; a save holds parts of several
    const std::string status = f.status_path(f.call("GET", "/$export", {}, async));
    const std::string job = status.substr(status.rfind('/') + 1);
    f.start();
    for (int i = 0; i < 5000; ++i) {
        auto files = f.store->export_files(job);
        REQUIRE(files.ok());
        if (files->size() > 2)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    f.runner->stop(); // mid-job, most likely: another worker goes on from the last save
    f.start();
    http::response done = f.finished(system_identity(), status);
    REQUIRE(done.status == 200);

    std::multiset<std::string> seen;
    std::map<std::string, std::vector<std::size_t>> sizes; // of each type's files, in order
    const rapidjson::Document manifest = json_of(done);
    for (const auto& output : at(manifest, "output").GetArray()) {
        const std::string type = text_at(output, "type");
        http::response file = f.call("GET", text_at(output, "url").substr(std::string(test_base_url).size()));
        REQUIRE(file.status == 200);
        sizes[type].push_back(file.body.size());
        std::istringstream text(file.body);
        for (std::string line; std::getline(text, line);) {
            const rapidjson::Document resource = json_of(http::response{200, {}, line});
            CHECK(text_at(resource, "resourceType") == type); // a file holds one type
            seen.insert(type + "/" + text_at(resource, "id"));
        }
    }
    CHECK(seen == expected);
    // A file is closed once it holds file_bytes: every file of a type but its last holds that much,
    // and none holds much more than two saves' worth.
    std::size_t files = 0;
    for (const auto& entry : sizes) { // not a structured binding: clang 14 cannot capture one (CHECK_MESSAGE)
        const std::string& type = entry.first;
        const auto& of_type = entry.second;
        files += of_type.size();
        for (std::size_t i = 0; i + 1 < of_type.size(); ++i) {
            CHECK_MESSAGE(of_type[i] >= f.settings.file_bytes, type);
            CHECK_MESSAGE(of_type[i] < 3 * f.settings.file_bytes, type);
        }
    }
    CHECK(files > sizes.size()); // some type filled more than one file
}

TEST_CASE("a job's passes: every type without a filter walked at once; a filtered type, _since or a Group's members one type at a time") {
    exports::job_request request;
    request.types = {"Patient", "Observation", "Condition"};
    auto types_of = [](const std::vector<exports::job_pass>& passes) {
        std::vector<std::vector<std::string>> out;
        for (const auto& pass : passes)
            out.push_back(pass.types);
        return out;
    };
    using passes = std::vector<std::vector<std::string>>;
    CHECK(types_of(exports::passes_of(request)) == passes{{"Patient", "Observation", "Condition"}});
    request.type_filters = {{"Observation", "code=8867-4"}};
    CHECK(types_of(exports::passes_of(request)) == passes{{"Patient", "Condition"}, {"Observation"}});
    request.since = 1;
    CHECK(types_of(exports::passes_of(request)) == passes{{"Patient"}, {"Observation"}, {"Condition"}});
    request.since.reset();
    request.level = exports::export_level::group;
    CHECK(types_of(exports::passes_of(request)) == passes{{"Patient"}, {"Observation"}, {"Condition"}});

    // The cursor keeps the pass, the member, the files open and the page, and refuses an older build's.
    exports::job_cursor cursor{2, 5, 9, {{"Condition", {9, 4096}}, {"Patient", {7, 10}}}, "abc-_"};
    auto back = exports::job_cursor_from_text(exports::to_text(cursor));
    REQUIRE(back.ok());
    CHECK(back->pass == 2);
    CHECK(back->member == 5);
    CHECK(back->last_number == 9);
    CHECK(back->open_files.size() == 2);
    CHECK(back->open_files.at("Condition").bytes == 4096);
    CHECK(back->open_files.at("Patient").number == 7);
    CHECK(back->page == "abc-_");
    CHECK_FALSE(exports::job_cursor_from_text("1:0:abc").ok());
}
