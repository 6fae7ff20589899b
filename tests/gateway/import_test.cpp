// Tests of `caregate import` (gateway/cli/import.cpp): the built executable, run as an operator runs
// it, on a population from bench/population.py and on hand-written files with a bad line; what it
// stored is read back through the store and the REST application, as a GP of A81001 would.
// Needs `python3` on the PATH and the caregate executable built.
#include "application_fixture.hpp"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace caregate::testing;
namespace fs = std::filesystem;

namespace {

struct run_result {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

/// Runs a shell command in `dir`, capturing its output.
run_result run(const fs::path& dir, const std::string& command) {
    const fs::path out = dir / "stdout";
    const fs::path err = dir / "stderr";
    const int status = std::system((command + " >'" + out.string() + "' 2>'" + err.string() + "'").c_str());
    run_result result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_text(out);
    result.err = read_text(err);
    return result;
}

/// `caregate import ARGS` into the fixture's database.
run_result caregate_import(const application_fixture& f, const std::string& args) {
    const fs::path binary = fs::path(CAREGATE_BINARY_DIR) / "caregate";
    REQUIRE_MESSAGE(fs::exists(binary), "build the caregate executable first (ninja caregate)");
    return run(f.dir, "'" + binary.string() + "' import " + args + " --db '" + (f.dir / "test.db").string() + "'");
}

/// Lines of a file whose resourceType is `type` (every line when `type` is empty).
std::size_t count_type(const std::string& ndjson, const std::string& type) {
    std::size_t count = 0;
    std::istringstream lines(ndjson);
    for (std::string line; std::getline(lines, line);)
        count += type.empty() ? !line.empty() : line.starts_with(R"({"resourceType":")" + type + R"(")");
    return count;
}

std::size_t stored_count(application_fixture& f, const std::string& type) {
    caregate::storage::search_visibility everything;
    everything.everything = true;
    caregate::storage::history_query query;
    query.visibility = &everything;
    query.type = type;
    query.count = 1'000'000;
    auto page = f.store->history(query);
    REQUIRE(page.ok());
    return page->entries.size();
}

caregate::storage::audit_record newest_import_audit(application_fixture& f) {
    caregate::storage::store::audit_query query;
    query.agent = "caregate-import";
    query.count = 1;
    auto page = f.store->audit(query);
    REQUIRE(page.ok());
    REQUIRE(page->records.size() == 1);
    return page->records.front();
}

const std::string patient_line =
    R"({"resourceType":"Patient","id":"9000000009","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"generalPractitioner":[{"reference":"Organization/A81001"}]})";

std::string observation_line(const std::string& id, const std::string& nhs, const std::string& status = "final") {
    return R"({"resourceType":"Observation","id":")" + id + R"(","status":")" + status +
           R"(","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/)" + nhs +
           R"("},"valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}})";
}

} // namespace

TEST_CASE("import: a generated population is stored whole, readable as its GP reads it, and audited once") {
    application_fixture f;
    const fs::path file = f.dir / "population.ndjson";
    const auto generated = run(f.dir, "python3 '" + std::string(CAREGATE_SOURCE_DIR) +
                                          "/bench/population.py' --citizens 4 --seed 7 --out '" + file.string() + "'");
    REQUIRE_MESSAGE(generated.exit_code == 0, generated.err);
    const std::string ndjson = read_text(file);
    const std::size_t lines = count_type(ndjson, "");

    const auto imported = caregate_import(f, "'" + file.string() + "' --batch 64");
    REQUIRE_MESSAGE(imported.exit_code == 0, imported.err);
    const std::string counts = std::to_string(lines) + " resources stored (" + std::to_string(lines) + " created, 0 updated, 0 unchanged)";
    CHECK(imported.out.find(counts) != std::string::npos);
    CHECK(imported.out.find("resources/s") != std::string::npos);
    for (const char* type : {"Organization", "Patient", "Encounter", "Observation", "MedicationRequest", "Condition"})
        CHECK_MESSAGE(stored_count(f, type) == count_type(ndjson, type), type);
    CHECK(stored_count(f, "Patient") == 4);

    // One audit record for the whole file, by the ICS's integration service, naming the counts.
    const auto audit = newest_import_audit(f);
    CHECK(audit.action == "import");
    CHECK(audit.outcome == "success");
    CHECK(audit.organisation == "QZZ");
    CHECK(audit.role == "system");
    CHECK(audit.nhs_number.empty());
    CHECK(audit.detail.find(counts) != std::string::npos);
    CHECK(f.store->verify_audit()->first_broken == std::nullopt);

    // The imported citizens registered with A81001 are that practice's: its GP opens them under the
    // default policy, with their items.
    const auto at = ndjson.find(R"("generalPractitioner":[{"reference":"Organization/A81001"}])");
    REQUIRE(at != std::string::npos);
    const auto line_start = ndjson.rfind('\n', at) + 1;
    const std::string nhs = ndjson.substr(line_start + std::string(R"({"resourceType":"Patient","id":")").size(), 10);
    CHECK(f.call_as(gp_clinician(), "GET", "/Patient/" + nhs).status == 200);
    CHECK(f.call_as(gp_clinician(), "GET", "/Encounter/" + nhs + "-enc-0").status == 200);

    // Importing the same file again changes nothing.
    const auto again = caregate_import(f, "'" + file.string() + "'");
    REQUIRE_MESSAGE(again.exit_code == 0, again.err);
    CHECK(again.out.find("(0 created, 0 updated, " + std::to_string(lines) + " unchanged)") != std::string::npos);
}

TEST_CASE("import: the first invalid line stops the import with its number and diagnostics; nothing after it is stored") {
    application_fixture f;
    const fs::path file = f.dir / "bad.ndjson";
    // Line 4 is blank (and still counted); line 5 has an Observation.status outside its required binding.
    write_text(file, patient_line + "\n" + observation_line("obs-1", "9000000009") + "\n" +
                         observation_line("obs-2", "9000000009") + "\n\n" +
                         observation_line("obs-bad", "9000000009", "finito") + "\n" +
                         observation_line("obs-after", "9000000009") + "\n");
    const auto imported = caregate_import(f, "'" + file.string() + "'");
    CHECK(imported.exit_code == 1);
    CHECK(imported.err.find("line 5 of") != std::string::npos);
    CHECK(imported.err.find("(at Observation.status)") != std::string::npos);
    CHECK(imported.err.find("stopped at line 5: 3 resources from the lines before it are stored, nothing from line 5 on") !=
          std::string::npos);
    CHECK(f.store->read("Observation", "obs-2").ok());
    CHECK_FALSE(f.store->read("Observation", "obs-bad").ok());
    CHECK_FALSE(f.store->read("Observation", "obs-after").ok());
    const auto audit = newest_import_audit(f);
    CHECK(audit.outcome == "failed");
    CHECK(audit.detail.find("stopped at line 5") != std::string::npos);
}

TEST_CASE("import: a line naming a citizen neither the file nor the database holds stops the import there") {
    application_fixture f;
    const fs::path file = f.dir / "orphan.ndjson";
    write_text(file, patient_line + "\n" + observation_line("obs-1", "9000000017") + "\n" +
                         observation_line("obs-2", "9000000009") + "\n");
    const auto imported = caregate_import(f, "'" + file.string() + "'");
    CHECK(imported.exit_code == 1);
    CHECK(imported.err.find("line 2 of") != std::string::npos);
    CHECK(imported.err.find("does not name a citizen held by this server (at Observation.subject)") != std::string::npos);
    CHECK(f.store->read("Patient", "9000000009").ok());
    CHECK_FALSE(f.store->read("Observation", "obs-2").ok());

    // A citizen the database already holds is held for a later file.
    write_text(file, observation_line("obs-3", "9000000009") + "\n");
    CHECK(caregate_import(f, "'" + file.string() + "'").exit_code == 0);
    CHECK(f.store->read("Observation", "obs-3").ok());
}

TEST_CASE("import: lines the API would refuse are refused alike") {
    application_fixture f;
    const fs::path file = f.dir / "refused.ndjson";
    const std::pair<std::string, std::string> cases[] = {
        {R"({"id":)", "the line is not valid JSON"},
        {R"({"resourceType":"Patient",)", "the body is not valid JSON"}, // found its type: the validator's answer
        {R"({"id":"x"})", "the line has no resourceType"},
        {R"({"resourceType":"Widget","id":"x"})", "does not support the resource type"},
        {R"({"resourceType":"AuditEvent","id":"x"})", "does not accept writes of AuditEvent"},
        {R"({"resourceType":"Organization","name":"No id"})", "needs each resource's id: it is written as an update (at Organization.id)"},
        {R"({"resourceType":"Patient","id":"9000000017","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}]})",
         "a Patient's id must be the NHS number"},
    };
    for (const auto& [case_line, diagnostics] : cases) {
        const std::string& line = case_line; // clang before 16 captures no structured binding (CHECK_MESSAGE)
        write_text(file, line + "\n");
        const auto imported = caregate_import(f, "'" + file.string() + "'");
        CHECK_MESSAGE(imported.exit_code == 1, line);
        CHECK_MESSAGE(imported.err.find("line 1 of") != std::string::npos, line);
        CHECK_MESSAGE(imported.err.find(diagnostics) != std::string::npos, imported.err);
    }
}

TEST_CASE("import: usage errors exit 2 and --help names every option") {
    application_fixture f;
    CHECK(caregate_import(f, "").exit_code == 2);                            // no FILE
    CHECK(caregate_import(f, "a.ndjson b.ndjson").exit_code == 2);            // two
    CHECK(caregate_import(f, "a.ndjson --batch 0").exit_code == 2);
    CHECK(caregate_import(f, "a.ndjson --org a81001").exit_code == 2);
    CHECK(caregate_import(f, "a.ndjson --colour blue").exit_code == 2);
    CHECK(caregate_import(f, "'" + (f.dir / "absent.ndjson").string() + "'").exit_code == 1);
    const auto help = caregate_import(f, "--help");
    CHECK(help.exit_code == 0);
    for (const char* flag : {"--db", "--batch", "--org", "--user"})
        CHECK(help.out.find(flag) != std::string::npos);
}
