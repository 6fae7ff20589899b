// A test fixture: a real store in a fresh temporary directory and the REST application over it,
// called through the same handle() seam the network layer uses.
#pragma once

#include "rest/application.hpp"
#include "storage/store.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <future>
#include <random>
#include <string>

namespace caregate::testing {

inline std::filesystem::path fresh_directory(const std::string& name) {
    std::random_device random;
    auto dir = std::filesystem::temp_directory_path() /
               (name + "-" + std::to_string(random()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(dir);
    return dir;
}

struct application_fixture {
    std::filesystem::path dir = fresh_directory("caregate-app");
    std::unique_ptr<storage::store> store;
    std::unique_ptr<rest::application> app;

    application_fixture() { open(); }
    ~application_fixture() {
        app.reset();
        store.reset();
        std::filesystem::remove_all(dir);
    }

    void open() {
        storage::store_options options;
        options.path = (dir / "test.db").string();
        auto opened = storage::store::open(options);
        REQUIRE(opened.ok());
        store = std::move(opened.value());
        rest::rest_config config;
        config.base_url = "https://localhost:8443/fhir";
        app = std::make_unique<rest::application>(*store, config);
    }
    /// Closes everything and opens the same database again, as a server restart does.
    void restart() {
        app.reset();
        store.reset();
        open();
    }

    rest::response call(std::string method, std::string target, std::string body = {},
                        std::vector<rest::header_field> headers = {}) {
        rest::request req;
        req.method = std::move(method);
        req.target = "/fhir" + target;
        req.body = std::move(body);
        req.headers = std::move(headers);
        if (!req.body.empty() && req.header("Content-Type").empty())
            req.headers.push_back({"Content-Type", "application/fhir+json"});
        req.secure = true;
        std::promise<rest::response> answered;
        auto future = answered.get_future();
        app->handle(std::move(req), [&answered](rest::response out) { answered.set_value(std::move(out)); });
        return future.get();
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

} // namespace caregate::testing
