// CORS on the patient-facing endpoint (rest/cors.hpp, its invariants 1 to 4), through the handle()
// seam: preflights and actual requests from the origin the endpoint names, from another origin, and
// to the discovery documents, which answer any origin; the provider endpoint answers none.
#include "patient_fixture.hpp"

#include "rest/cors.hpp"

using namespace caregate::testing;
namespace http = caregate::http;
namespace rest = caregate::rest;

namespace {

const std::string other_origin = "https://evil.example.com";

std::vector<http::header_field> preflight_headers(const std::string& origin, const std::string& method,
                                                  const std::string& headers) {
    std::vector<http::header_field> out{{"Origin", origin}, {"Access-Control-Request-Method", method}};
    if (!headers.empty())
        out.push_back({"Access-Control-Request-Headers", headers});
    return out;
}

http::response preflight(patient_fixture& f, const std::string& target, const std::string& origin,
                         const std::string& method, const std::string& headers = "authorization") {
    http::request req;
    req.method = "OPTIONS";
    req.target = "/fhir" + target;
    req.headers = preflight_headers(origin, method, headers);
    req.secure = true;
    std::promise<http::response> answered;
    auto future = answered.get_future();
    f.patient_app->handle(std::move(req), [&answered](http::response out) { answered.set_value(std::move(out)); });
    return future.get();
}

/// Every Access-Control-* header of a response.
std::vector<std::string> cors_headers(const http::response& r) {
    std::vector<std::string> names;
    for (const auto& h : r.headers)
        if (h.name.rfind("Access-Control-", 0) == 0)
            names.push_back(h.name);
    return names;
}

} // namespace

TEST_CASE("CORS: a preflight from the named origin gets the API's methods and headers; another origin gets none") {
    patient_fixture f;
    auto ok = preflight(f, "/Observation", patient_fixture::app_origin, "POST",
                        "Authorization, Content-Type, If-Match, Prefer, X-Act-For");
    CHECK(ok.status == 204);
    CHECK(ok.header("Access-Control-Allow-Origin") == patient_fixture::app_origin);
    for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"})
        CHECK(ok.header("Access-Control-Allow-Methods").find(method) != std::string_view::npos);
    for (const char* header : {"Authorization", "Content-Type", "If-Match", "Prefer", "X-Act-For"})
        CHECK(ok.header("Access-Control-Allow-Headers").find(header) != std::string_view::npos);
    CHECK(ok.header("Vary") == "Origin");
    CHECK_FALSE(ok.header("Access-Control-Max-Age").empty());
    CHECK(ok.header("Access-Control-Allow-Credentials").empty()); // invariant 2

    auto refused = preflight(f, "/Observation", other_origin, "POST", "Authorization");
    CHECK(refused.status == 403);
    CHECK(cors_headers(refused).empty()); // invariant 1
    CHECK(refused.body.find("evil") == std::string::npos);

    // An origin that differs only in its scheme, its port or a suffix is another origin.
    for (const std::string origin : {"http://app.example.nhs.uk", "https://app.example.nhs.uk:8443",
                                     "https://app.example.nhs.uk.evil.example.com", "null"})
        CHECK(cors_headers(preflight(f, "/Patient/9000000009", origin, "GET")).empty());

    // Invariant 4: a method the API has not, or a header it does not read, is refused even from the origin.
    auto odd_method = preflight(f, "/Observation", patient_fixture::app_origin, "TRACE");
    CHECK(odd_method.status == 403);
    CHECK(cors_headers(odd_method).empty());
    auto odd_header = preflight(f, "/Observation", patient_fixture::app_origin, "GET", "Authorization, X-Forwarded-For");
    CHECK(odd_header.status == 403);
    CHECK(cors_headers(odd_header).empty());
}

TEST_CASE("CORS: answers to the named origin carry its headers, errors included; another origin's carry none") {
    patient_fixture f;
    const std::string tom_token = citizen_token(tom);
    const std::vector<http::header_field> from_app{{"Origin", patient_fixture::app_origin}};
    auto read = f.as_citizen(tom_token, "GET", "/Observation/" + f.tom_observation, {}, from_app);
    REQUIRE(read.status == 200);
    CHECK(read.header("Access-Control-Allow-Origin") == patient_fixture::app_origin);
    CHECK(read.header("Access-Control-Expose-Headers").find("ETag") != std::string_view::npos);
    CHECK(read.header("Access-Control-Expose-Headers").find("Location") != std::string_view::npos);
    CHECK(read.header("Vary") == "Origin");

    // An error reaches the app too, so it can say what went wrong (here another citizen's record: 404).
    auto missing = f.as_citizen(tom_token, "GET", "/Patient/" + std::string(bunmi), {}, from_app);
    CHECK(missing.status == 404);
    CHECK(missing.header("Access-Control-Allow-Origin") == patient_fixture::app_origin);

    // The same read from a page of another origin: answered (a browser has sent it), but with nothing
    // that lets that page read the answer.
    auto elsewhere = f.as_citizen(tom_token, "GET", "/Observation/" + f.tom_observation, {}, {{"Origin", other_origin}});
    CHECK(elsewhere.status == 200);
    CHECK(cors_headers(elsewhere).empty());
    CHECK(elsewhere.header("Vary") == "Origin");
}

TEST_CASE("CORS: the SMART discovery documents answer any origin, without credentials") {
    patient_fixture f;
    for (const std::string target : {"/.well-known/smart-configuration", "/metadata"}) {
        CAPTURE(target);
        auto pre = preflight(f, target, other_origin, "GET", "");
        CHECK(pre.status == 204);
        CHECK(pre.header("Access-Control-Allow-Origin") == "*");
        CHECK(pre.header("Access-Control-Allow-Credentials").empty());
        auto get = f.as_citizen("", "GET", target, {}, {{"Origin", other_origin}});
        CHECK(get.status == 200);
        CHECK(get.header("Access-Control-Allow-Origin") == "*");
        CHECK(get.header("Access-Control-Allow-Credentials").empty());
        // Not a write, even there.
        CHECK(preflight(f, target, other_origin, "POST", "").status == 403);
    }
}

TEST_CASE("CORS: the provider endpoint, called server to server, answers no origin") {
    patient_fixture f;
    auto read = f.call("GET", "/Patient/9000000009", {}, {{"Origin", patient_fixture::app_origin}});
    CHECK(read.status == 200);
    CHECK(cors_headers(read).empty());
    http::request req;
    req.method = "OPTIONS";
    req.target = "/fhir/Patient";
    req.headers = preflight_headers(patient_fixture::app_origin, "GET", "authorization");
    std::promise<http::response> answered;
    auto future = answered.get_future();
    f.app->handle(std::move(req), [&answered](http::response out) { answered.set_value(std::move(out)); });
    auto provider_preflight = future.get();
    CHECK(provider_preflight.status == 405);
    CHECK(cors_headers(provider_preflight).empty());
}

TEST_CASE("CORS: --cors-origins takes origins only") {
    auto parsed = rest::cors_origins::parse("https://App.Example.nhs.uk, http://localhost:5173");
    REQUIRE(parsed.ok());
    CHECK(parsed->allowed == std::vector<std::string>{"https://app.example.nhs.uk", "http://localhost:5173"});
    for (const char* wrong : {"*", "https://app.example.nhs.uk/", "https://app.example.nhs.uk/app", "app.example.nhs.uk",
                              "ftp://app.example.nhs.uk", "https://user@app.example.nhs.uk", "https://a.example?x=1"}) {
        CAPTURE(wrong);
        CHECK_FALSE(rest::cors_origins::parse(wrong).ok());
    }
}
