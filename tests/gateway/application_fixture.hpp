// A test fixture: a real store in a fresh temporary directory and the REST application over it, with
// the shipped default policy and organisations, called through the same handle() seam the network
// layer uses. Each call acts as an identity: a token signed by a test issuer, and a client
// certificate's ODS code, exactly as a provider system sends them.
#pragma once

#include "access/defaults.hpp"
#include "access/guard.hpp"
#include "access/policy.hpp"
#include "auth/token.hpp"
#include "rest/application.hpp"
#include "storage/sqlite_store.hpp"

#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

namespace caregate::testing {

inline std::filesystem::path fresh_directory(const std::string& name) {
    std::random_device random;
    auto dir = std::filesystem::temp_directory_path() /
               (name + "-" + std::to_string(random()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(dir);
    return dir;
}

/// Who a test request acts as.
struct identity {
    std::string ods = "QZZ";          ///< the organisation (token claim and client certificate)
    std::string role = "system";      ///< national RBAC job role code, or "system"
    std::string user = "test-system"; ///< SDS user id
    std::string purpose;              ///< e.g. ETREAT
    std::string reason;               ///< break-glass reason
    std::vector<std::string> scopes;
};

inline identity system_identity() { return {}; }
inline identity gp_clinician() { return {"A81001", "R8000", "gp-doctor-1", {}, {}, {}}; }
inline identity gp_nurse() { return {"A81001", "R8001", "gp-nurse-1", {}, {}, {}}; }
inline identity gp_admin() { return {"A81001", "R8008", "gp-admin-1", {}, {}, {}}; }
inline identity acute_clinician() { return {"RX1", "R8000", "acute-doctor-1", {}, {}, {}}; }
inline identity acute_admin() { return {"RX1", "R8008", "acute-admin-1", {}, {}, {}}; }
inline identity social_worker() { return {"8JK23", "R8014", "social-worker-1", {}, {}, {}}; }
inline identity ig_officer() { return {"QZZ", "R8012", "ig-officer-1", {}, {}, {}}; }

/// An RSA key pair made once per test run, as PEM.
struct test_keys {
    std::string private_pem;
    std::string public_pem;

    static const test_keys& get() {
        static const test_keys keys = [] {
            test_keys out;
            EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
            REQUIRE(key != nullptr);
            auto to_text = [](BIO* bio) {
                char* data = nullptr;
                long size = BIO_get_mem_data(bio, &data);
                std::string text(data, static_cast<std::size_t>(size));
                BIO_free(bio);
                return text;
            };
            BIO* priv = BIO_new(BIO_s_mem());
            PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
            out.private_pem = to_text(priv);
            BIO* pub = BIO_new(BIO_s_mem());
            PEM_write_bio_PUBKEY(pub, key);
            out.public_pem = to_text(pub);
            EVP_PKEY_free(key);
            return out;
        }();
        return keys;
    }
};

inline constexpr const char* test_base_url = "https://localhost:8443/fhir";
inline constexpr const char* test_issuer = "caregate-test";

inline std::string token_for(const identity& who, std::int64_t ttl = 3600) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    auth::token_claims claims;
    claims.issuer = test_issuer;
    claims.audience = test_base_url;
    claims.user = who.user;
    claims.organisation = who.ods;
    claims.role = who.role;
    claims.scopes = who.scopes;
    claims.purpose = who.purpose;
    claims.reason = who.reason;
    claims.issued_at = now;
    claims.not_before = now;
    claims.expires = now + ttl;
    return auth::mint_token(claims, test_keys::get().private_pem);
}

struct application_fixture {
    std::filesystem::path dir = fresh_directory("caregate-app");
    std::unique_ptr<storage::store> store;
    access::policy policy = access::policy::parse(access::default_policy_json);
    access::organisation_register organisations = access::organisation_register::parse(access::default_organisations_json);
    std::unique_ptr<auth::token_verifier> tokens;
    std::unique_ptr<access::guard> guard;
    std::unique_ptr<rest::application> app;

    application_fixture() { open(); }
    ~application_fixture() {
        app.reset();
        guard.reset();
        store.reset();
        std::filesystem::remove_all(dir);
    }

    /// How long the store waits for a lock another connection holds (sqlite_options::busy_timeout).
    std::chrono::milliseconds busy_timeout{5000};
    /// The SQLite VFS the store opens through (sqlite_options::vfs); the fault tests' is
    /// tests/support/fault_vfs.hpp.
    std::string vfs;
    std::size_t max_audit_backlog = storage::sqlite_options{}.max_audit_backlog;
    /// Where the application counts the requests it answers (none: not counted).
    rest::request_metrics* metrics = nullptr;

    void open() {
        storage::sqlite_options options;
        options.path = (dir / "test.db").string();
        options.busy_timeout = busy_timeout;
        options.vfs = vfs;
        options.max_audit_backlog = max_audit_backlog;
        auto opened = storage::sqlite_store::open(options);
        REQUIRE(opened.ok());
        store = std::move(opened.value());
        auth::verifier_settings settings;
        settings.audience = test_base_url;
        tokens = std::make_unique<auth::token_verifier>(
            std::vector<auth::trusted_issuer>{{test_issuer, {test_keys::get().public_pem}, {}}}, settings);
        guard = std::make_unique<access::guard>(policy, organisations, *tokens, *store);
        interactions::rest_config config;
        config.base_url = test_base_url;
        app = std::make_unique<rest::application>(*store, *guard, config, metrics);
    }
    /// Closes everything and opens the same database again, as a server restart does.
    void restart() {
        app.reset();
        guard.reset();
        store.reset();
        open();
    }

    /// A request as `who`, with their token and certificate; `headers` are added.
    http::response call_as(const identity& who, std::string method, std::string target, std::string body = {},
                           std::vector<http::header_field> headers = {}) {
        http::request req;
        req.method = std::move(method);
        req.target = "/fhir" + target;
        req.body = std::move(body);
        req.headers = std::move(headers);
        if (req.header("Authorization").empty())
            req.headers.push_back({"Authorization", "Bearer " + token_for(who)});
        if (!req.body.empty() && req.header("Content-Type").empty())
            req.headers.push_back({"Content-Type", "application/fhir+json"});
        req.secure = true;
        req.client_ods = who.ods;
        std::promise<http::response> answered;
        auto future = answered.get_future();
        app->handle(std::move(req), [&answered](http::response out) { answered.set_value(std::move(out)); });
        return future.get();
    }

    /// A request as the ICS's integration system, which the default policy lets do anything.
    http::response call(std::string method, std::string target, std::string body = {},
                        std::vector<http::header_field> headers = {}) {
        return call_as(system_identity(), std::move(method), std::move(target), std::move(body), std::move(headers));
    }

    /// Waits until the writer has committed what was queued before (reads' audit records).
    void flush() {
        std::promise<void> done;
        store->append_audit({}, [&done](fhir::status) { done.set_value(); });
        done.get_future().wait();
    }
};

inline std::string patient_json(const std::string& nhs, const std::string& extra = {}) {
    return R"({"resourceType":"Patient",)" + (extra.empty() ? "" : extra + ",") +
           R"("identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs +
           R"("}],"name":[{"family":"Test","given":["Tess"]}],"birthDate":"1970-01-01"})";
}

inline std::string observation_json(const std::string& subject_reference) {
    return R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":)" +
           subject_reference + R"(,"valueQuantity":{"value":72.10,"unit":"/min"}})";
}

/// A response's body as JSON (failing the test when it is not).
inline rapidjson::Document json_of(const http::response& r) {
    rapidjson::Document doc;
    doc.Parse(r.body.c_str());
    REQUIRE_MESSAGE(!doc.HasParseError(), r.body);
    return doc;
}

/// A response's body as an OperationOutcome with at least one issue, failing the test when it is
/// anything else, so that `["issue"][0]` of it is there (see `at` for why that matters).
inline rapidjson::Document outcome_of(const http::response& r) {
    rapidjson::Document doc = json_of(r);
    REQUIRE_MESSAGE((doc.IsObject() && doc.HasMember("resourceType") && doc["resourceType"] == "OperationOutcome"),
                    r.body);
    REQUIRE_MESSAGE((doc.HasMember("issue") && doc["issue"].IsArray() && !doc["issue"].Empty()), r.body);
    return doc;
}

/// The value at a path of member names and array indexes, e.g. `at(doc, "issue", 0, "expression", 0)`,
/// each step REQUIREd to be there. rapidjson checks neither a name nor an index in a release build:
/// `doc["issue"][0]` of a body without issues reads address 0 and ends the whole test runner.
template <class... Steps>
const rapidjson::Value& at(const rapidjson::Value& from, const Steps&... steps) {
    const rapidjson::Value* here = &from;
    auto step = [&here](const auto& next) {
        if constexpr (std::is_integral_v<std::decay_t<decltype(next)>>) {
            REQUIRE_MESSAGE((here->IsArray() && static_cast<long long>(next) >= 0 &&
                             static_cast<rapidjson::SizeType>(next) < here->Size()),
                            "no item [" << next << "]");
            here = &(*here)[static_cast<rapidjson::SizeType>(next)];
        } else {
            const std::string_view name(next);
            const rapidjson::Value key(rapidjson::StringRef(name.data(), static_cast<rapidjson::SizeType>(name.size())));
            const bool found = here->IsObject() && here->FindMember(key) != here->MemberEnd();
            REQUIRE_MESSAGE(found, "no member \"" << name << "\"");
            here = &here->FindMember(key)->value;
        }
    };
    (step(steps), ...);
    return *here;
}

/// The string at such a path, REQUIREd to be one.
template <class... Steps>
std::string text_at(const rapidjson::Value& from, const Steps&... steps) {
    const rapidjson::Value& value = at(from, steps...);
    REQUIRE(value.IsString());
    return {value.GetString(), value.GetStringLength()};
}

/// The `id` of the resource a response carries.
inline std::string id_of(const http::response& r) { return json_of(r)["id"].GetString(); }

} // namespace caregate::testing
