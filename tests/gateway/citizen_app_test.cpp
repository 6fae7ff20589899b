// The citizen app's files as caregate serves them on the patient-facing listener
// (gateway/citizen_app/citizen_app.hpp): its own files by exact name, everything else 404, GET and
// HEAD only, and on every answer the headers that keep it from being framed, sniffed or made to
// run anything but its own scripts. The app itself is driven in a real browser by tests/browser/.
#include "citizen_app/citizen_app.hpp"

#include <doctest/doctest.h>

using namespace caregate;

namespace {

http::response get(const citizen_app::server& app, const std::string& target, const std::string& method = "GET") {
    http::request req;
    req.method = method;
    req.target = target;
    return app.answer(req);
}

citizen_app::server make_app() {
    citizen_app::settings chosen;
    chosen.fhir_base_url = "https://localhost:9443/fhir";
    chosen.connect_origins = {"https://auth.login.nhs.uk"};
    return citizen_app::server(chosen);
}

} // namespace

TEST_CASE("citizen app: its own files, the FHIR base it is told, and nothing else") {
    const auto app = make_app();
    CHECK(citizen_app::server::owns("/app"));
    CHECK(citizen_app::server::owns("/app/app.js?v=1"));
    CHECK_FALSE(citizen_app::server::owns("/fhir/Patient"));
    CHECK_FALSE(citizen_app::server::owns("/application"));

    auto index = get(app, "/app/");
    CHECK(index.status == 200);
    CHECK(index.header("Content-Type") == "text/html; charset=utf-8");
    CHECK(index.body.find("<html lang=\"en-GB\">") != std::string::npos);
    CHECK(get(app, "/app/index.html").body == index.body);
    CHECK(get(app, "/app/?code=abc&state=xyz").body == index.body); // the login's redirect back
    auto script = get(app, "/app/fhir-client.js");
    CHECK(script.status == 200);
    CHECK(script.header("Content-Type") == "text/javascript; charset=utf-8");
    CHECK(script.body.find("oauth2") != std::string::npos);
    auto config = get(app, "/app/config.json");
    CHECK(config.body == R"({"fhirBaseUrl":"https://localhost:9443/fhir","clientId":"caregate-citizen-app"})");

    auto moved = get(app, "/app");
    CHECK(moved.status == 301);
    CHECK(moved.header("Location") == "/app/");
    for (const std::string target : {"/app/../../etc/passwd", "/app/%2e%2e/caregate.db", "/app/node_modules/fhirclient/LICENSE",
                                     "/app/citizen_app.cpp", "/app/app.js/"})
        CHECK_MESSAGE(get(app, target).status == 404, target);
    auto posted = get(app, "/app/", "POST");
    CHECK(posted.status == 405);
    CHECK(posted.header("Allow") == "GET, HEAD");
    auto head = get(app, "/app/app.css", "HEAD");
    CHECK(head.status == 200);
    CHECK(head.body.empty());
}

TEST_CASE("citizen app: every answer forbids framing and sniffing, and runs only its own scripts") {
    const auto app = make_app();
    for (const std::string target : {"/app/", "/app/app.js", "/app/missing", "/app"}) {
        auto answer = get(app, target);
        CAPTURE(target);
        CHECK(answer.header("X-Frame-Options") == "DENY");
        CHECK(answer.header("X-Content-Type-Options") == "nosniff");
        const std::string policy(answer.header("Content-Security-Policy"));
        CHECK(policy.find("script-src 'self';") != std::string::npos);
        CHECK(policy.find("frame-ancestors 'none'") != std::string::npos);
        CHECK(policy.find("connect-src 'self' https://auth.login.nhs.uk;") != std::string::npos);
        CHECK(policy.find("unsafe") == std::string::npos);
    }
}
