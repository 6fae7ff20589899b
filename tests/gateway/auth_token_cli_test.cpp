// Tests of `caregate token` (gateway/cli/token.cpp): the built executable, run as a developer runs
// it, with keys made by certs/make-dev-certs.sh, and its tokens checked by the server's verifier.
// Needs `openssl` on the PATH (for the script) and the caregate executable built.
#include "auth/issuers.hpp"
#include "auth/token.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace auth = caregate::auth;
namespace fs = std::filesystem;

namespace {

constexpr const char* default_audience = "https://localhost:8443/fhir";

struct run_result {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::int64_t seconds_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// The development PKI in a temporary directory, made once per run by the real script.
struct dev_certs {
    fs::path dir;

    dev_certs() {
        std::random_device random;
        dir = fs::temp_directory_path() /
              ("caregate-token-cli-" + std::to_string(random()) + "-" + std::to_string(random()));
        const std::string command = std::string("'") + CAREGATE_SOURCE_DIR + "/certs/make-dev-certs.sh' --out '" +
                                    dir.string() + "' >/dev/null 2>&1";
        REQUIRE(std::system(command.c_str()) == 0);
    }
    ~dev_certs() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }

    static const dev_certs& get() {
        static const dev_certs certs;
        return certs;
    }
};

/// Runs `caregate token ARGS` (each argument single-quoted), capturing its output.
run_result caregate_token(const std::string& args) {
    const fs::path binary = fs::path(CAREGATE_BINARY_DIR) / "caregate";
    REQUIRE_MESSAGE(fs::exists(binary), "build the caregate executable first (ninja caregate)");
    const fs::path out = dev_certs::get().dir / "stdout";
    const fs::path err = dev_certs::get().dir / "stderr";
    const std::string command =
        "'" + binary.string() + "' token " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
    const int status = std::system(command.c_str());
    run_result result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_file(out);
    result.err = read_file(err);
    return result;
}

std::string certs_flag() { return "--certs '" + dev_certs::get().dir.string() + "'"; }

auth::token_verifier dev_verifier(const std::string& audience = default_audience,
                                  auth::token_kind kind = auth::token_kind::provider) {
    auth::verifier_settings settings;
    settings.audience = audience;
    settings.kind = kind;
    return auth::token_verifier({auth::dev_issuer(dev_certs::get().dir.string())}, settings);
}

/// The patient-facing endpoint's verifier, at its default base URL.
constexpr const char* patient_audience = "https://localhost:9443/fhir";
auth::token_verifier citizen_verifier() { return dev_verifier(patient_audience, auth::token_kind::citizen); }

/// 8-4-4-4-12 lower-case hex digits.
bool is_uuid(const std::string& text) {
    if (text.size() != 36)
        return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (text[i] == '-') || (!dash && !std::isxdigit(static_cast<unsigned char>(text[i]))) ||
            std::isupper(static_cast<unsigned char>(text[i])))
            return false;
    }
    return true;
}

/// The token printed, without its newline.
std::string printed_token(const run_result& run) {
    REQUIRE(run.exit_code == 0);
    REQUIRE(!run.out.empty());
    CHECK(run.out.back() == '\n');
    CHECK(run.out.find('\n') == run.out.size() - 1);
    return run.out.substr(0, run.out.size() - 1);
}

} // namespace

TEST_CASE("auth token cli: caregate token mints a token the server's verifier accepts") {
    const auto run = caregate_token(certs_flag() + " --role R8000 --org A81001 --user 123456789012");
    const std::string token = printed_token(run);
    CHECK(run.err.empty());
    const std::int64_t now = seconds_now();
    auto who = dev_verifier().verify(token, now);
    REQUIRE(who.ok());
    CHECK((*who)->issuer == "caregate-dev");
    CHECK((*who)->user == "123456789012");
    CHECK((*who)->organisation == "A81001");
    CHECK((*who)->role == "R8000");
    CHECK((*who)->scopes == std::vector<std::string>{"user/*.cruds"});
    CHECK((*who)->purpose == "TREAT");
    CHECK((*who)->expires >= now + 3590);
    CHECK((*who)->expires <= now + 3600);
    // The dev key is RSA: RS256.
    CHECK(token.rfind("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 0) == 0);
}

TEST_CASE("auth token cli: scopes, audience, issuer, purpose, reason and lifetime flags") {
    const auto run = caregate_token(certs_flag() +
                                    " --role S8000:G8000:R8001 --org RX1 --user nurse-7 --scope 'user/Patient.rs "
                                    "user/Observation.rs' --scope user/Observation.c --aud https://scr.example/fhir "
                                    "--purpose ETREAT --reason 'collapsed in clinic' --ttl 120");
    const std::string token = printed_token(run);
    const std::int64_t now = seconds_now();
    CHECK_FALSE(dev_verifier().verify(token, now).ok()); // another audience
    auto who = dev_verifier("https://scr.example/fhir").verify(token, now);
    REQUIRE(who.ok());
    CHECK((*who)->role == "R8001");
    CHECK((*who)->scopes == std::vector<std::string>{"user/Patient.rs", "user/Observation.rs", "user/Observation.c"});
    CHECK((*who)->purpose == "ETREAT");
    CHECK((*who)->reason == "collapsed in clinic");
    CHECK((*who)->expires <= now + 120);
    CHECK_FALSE(dev_verifier("https://scr.example/fhir").verify(token, now + 300).ok());

    // Another issuer name: the server that trusts only caregate-dev refuses it.
    const auto other = caregate_token(certs_flag() + " --role R8000 --org A81001 --user u --issuer someone-else");
    auto refused = dev_verifier().verify(printed_token(other), seconds_now());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().issues[0].diagnostics == "the token's issuer is not trusted");
}

TEST_CASE("auth token cli: --not-before and a negative --ttl make tokens for tests of time") {
    const std::string later = printed_token(caregate_token(certs_flag() + " --role R8000 --org A81001 --user u --not-before 600"));
    const std::int64_t now = seconds_now();
    auto early = dev_verifier().verify(later, now);
    REQUIRE_FALSE(early.ok());
    CHECK(early.failure().issues[0].diagnostics == "the token is not valid yet (nbf)");
    CHECK(dev_verifier().verify(later, now + 600).ok());

    const std::string expired = printed_token(caregate_token(certs_flag() + " --role R8000 --org A81001 --user u --ttl -120"));
    auto refused = dev_verifier().verify(expired, seconds_now());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.failure().issues[0].diagnostics == "the token has expired");
}

TEST_CASE("auth token cli: usage errors exit 2, a missing key exits 1, --help exits 0") {
    auto missing = caregate_token(certs_flag() + " --org A81001 --user u");
    CHECK(missing.exit_code == 2);
    CHECK(missing.out.empty());
    CHECK(missing.err.find("--role is required") != std::string::npos);

    CHECK(caregate_token(certs_flag() + " --role R8000 --org a81001 --user u").exit_code == 2);
    CHECK(caregate_token(certs_flag() + " --role R8000 --org A81001 --user u --ttl soon").exit_code == 2);
    CHECK(caregate_token(certs_flag() + " --role R8000 --org A81001 --user u --colour blue").exit_code == 2);

    auto no_key = caregate_token("--certs /nonexistent-caregate-certs --role R8000 --org A81001 --user u");
    CHECK(no_key.exit_code == 1);
    CHECK(no_key.err.find("token-signing.key") != std::string::npos);

    auto help = caregate_token("--help");
    CHECK(help.exit_code == 0);
    for (const char* flag : {"--role", "--org", "--user", "--scope", "--ttl", "--aud", "--certs", "--issuer",
                             "--purpose", "--reason", "--not-before"})
        CHECK(help.out.find(flag) != std::string::npos);
}

TEST_CASE("auth token cli: --citizen mints a citizen's token (NHS login's claims) for the patient-facing endpoint") {
    const auto run = caregate_token(certs_flag() + " --citizen 9000000009 --proofing P5 --vot P9.Cp.Cd "
                                                   "--scope 'patient/*.rs patient/Observation.cruds' --scope openid");
    const std::string token = printed_token(run);
    CHECK(run.err.empty());
    const std::int64_t now = seconds_now();
    auto who = citizen_verifier().verify(token, now);
    REQUIRE(who.ok());
    CHECK((*who)->is_citizen());
    CHECK((*who)->issuer == "caregate-dev");
    CHECK((*who)->nhs_number == "9000000009");
    CHECK((*who)->proofing_level == "P5");
    CHECK((*who)->vot == "P9.Cp.Cd");
    CHECK((*who)->scopes == std::vector<std::string>{"patient/*.rs", "patient/Observation.cruds", "openid"});
    CHECK((*who)->organisation.empty());
    CHECK((*who)->role.empty());
    // sub is pseudonymous, as NHS login's is: a UUID that does not carry the NHS number.
    CHECK(is_uuid((*who)->user));
    CHECK((*who)->user.find("9000000009") == std::string::npos);
    CHECK((*who)->expires >= now + 3590);

    // The provider endpoint's verifier refuses it, by audience and by kind.
    CHECK_FALSE(dev_verifier().verify(token, now).ok());
    auto at_provider = dev_verifier(patient_audience).verify(token, now);
    REQUIRE_FALSE(at_provider.ok());
    CHECK(at_provider.failure().issues[0].diagnostics == "a citizen's token is for the patient-facing endpoint");
}

TEST_CASE("auth token cli: a citizen's defaults are P9, patient/*.rs, the patient endpoint and a stable sub") {
    const std::string token = printed_token(caregate_token(certs_flag() + " --citizen 9000000017"));
    auto who = citizen_verifier().verify(token, seconds_now());
    REQUIRE(who.ok());
    CHECK((*who)->nhs_number == "9000000017");
    CHECK((*who)->proofing_level == "P9");
    CHECK((*who)->vot.empty());
    CHECK((*who)->scopes == std::vector<std::string>{"patient/*.rs"});
    CHECK((*who)->purpose.empty());
    CHECK(is_uuid((*who)->user));

    // The same NHS number gives the same sub every time; another gives another.
    auto same = citizen_verifier().verify(printed_token(caregate_token(certs_flag() + " --citizen 9000000017 --ttl 60")),
                                          seconds_now());
    REQUIRE(same.ok());
    CHECK((*same)->user == (*who)->user);
    auto other = citizen_verifier().verify(printed_token(caregate_token(certs_flag() + " --citizen 9000000025")),
                                           seconds_now());
    REQUIRE(other.ok());
    CHECK((*other)->user != (*who)->user);

    // --user and --aud still choose.
    auto chosen = dev_verifier("https://patients.example/fhir", auth::token_kind::citizen)
                      .verify(printed_token(caregate_token(certs_flag() + " --citizen 9000000017 --user app-user-1 "
                                                                          "--aud https://patients.example/fhir")),
                              seconds_now());
    REQUIRE(chosen.ok());
    CHECK((*chosen)->user == "app-user-1");
}

TEST_CASE("auth token cli: --citizen refuses a provider's flags, an invalid NHS number and proofing level") {
    for (const char* args : {" --citizen 9000000009 --org A81001", " --citizen 9000000009 --role R8000",
                             " --citizen 9000000009 --org A81001 --role R8000 --user u"}) {
        CAPTURE(args);
        auto refused = caregate_token(certs_flag() + args);
        CHECK(refused.exit_code == 2);
        CHECK(refused.out.empty());
        CHECK(refused.err.find("--org and --role") != std::string::npos);
    }
    auto purpose = caregate_token(certs_flag() + " --citizen 9000000009 --purpose ETREAT");
    CHECK(purpose.exit_code == 2);
    CHECK(purpose.err.find("--purpose") != std::string::npos);

    for (const char* nhs : {"9000000000", "9000000008", "900000000", "''"}) {
        CAPTURE(nhs);
        auto refused = caregate_token(certs_flag() + " --citizen " + nhs);
        CHECK(refused.exit_code == 2);
        CHECK(refused.err.find("valid NHS number") != std::string::npos);
    }
    auto level = caregate_token(certs_flag() + " --citizen 9000000009 --proofing P7");
    CHECK(level.exit_code == 2);
    CHECK(level.err.find("P0, P5 or P9") != std::string::npos);

    // A provider's token takes neither citizen flag.
    for (const char* args : {" --role R8000 --org A81001 --user u --proofing P9",
                             " --role R8000 --org A81001 --user u --vot P9.Cp.Cd"}) {
        CAPTURE(args);
        auto refused = caregate_token(certs_flag() + args);
        CHECK(refused.exit_code == 2);
        CHECK(refused.err.find("--citizen") != std::string::npos);
    }

    auto help = caregate_token("--help");
    for (const char* flag : {"--citizen", "--proofing", "--vot"})
        CHECK(help.out.find(flag) != std::string::npos);
}
