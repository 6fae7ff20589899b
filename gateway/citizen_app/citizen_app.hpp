// The citizen app (gateway/citizen_app/*.html, *.js, *.css): a small web app for citizens and their
// carers, written with SMART's JavaScript client (fhirclient), served by caregate on the
// patient-facing listener under `/app/`. Its files are compiled in (gateway/CMakeLists.txt), so the
// app a server serves is the one it was built with.
//
// Invariants (tests/gateway/citizen_app_test.cpp; the journey in a real browser: tests/browser/):
//  1. Only the app's own files are served, by exact name: nothing a request names reaches the file
//     system, and an unknown name is 404.
//  2. Every answer forbids framing and content sniffing and carries a Content-Security-Policy that
//     lets the app run its own scripts only and talk to this origin and the login's token
//     endpoint only (`connect_origins`).
//  3. The app learns where the FHIR API is from /app/config.json (the patient endpoint's base URL),
//     not from anything a request sends.
#pragma once

#include "http/message.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace caregate::citizen_app {

/// The path the app is served under.
inline constexpr std::string_view path_prefix = "/app/";

struct settings {
    std::string fhir_base_url;                ///< the patient-facing endpoint (--patient-base-url)
    std::vector<std::string> connect_origins; ///< origins besides this one the app calls (the token endpoint's)
};

class server {
public:
    explicit server(settings chosen);

    /// Whether the request is for the app: `/app` or a target under path_prefix.
    static bool owns(std::string_view target) noexcept;
    /// Answers a request for the app (GET or HEAD; any other method is 405).
    http::response answer(const http::request& req) const;

private:
    settings settings_;
    std::string config_json_;
    std::string security_policy_;
};

/// One file of the app as compiled in (embedded_citizen_app.cpp, generated).
struct embedded_file {
    std::string_view name; ///< under path_prefix, e.g. "app.js"
    std::string_view content_type;
    std::string_view content;
};
/// Every file of the app, index.html first.
const std::vector<embedded_file>& embedded_files();

} // namespace caregate::citizen_app
