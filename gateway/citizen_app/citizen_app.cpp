// Serving the citizen app: see citizen_app.hpp.
#include "citizen_app/citizen_app.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

namespace caregate::citizen_app {

server::server(settings chosen) : settings_(std::move(chosen)) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    out.StartObject();
    out.Key("fhirBaseUrl");
    out.String(settings_.fhir_base_url.c_str(), static_cast<rapidjson::SizeType>(settings_.fhir_base_url.size()));
    out.Key("clientId");
    out.String("caregate-citizen-app");
    out.EndObject();
    config_json_.assign(buffer.GetString(), buffer.GetSize());

    std::string connect = "'self'";
    for (const std::string& origin : settings_.connect_origins)
        connect += " " + origin;
    security_policy_ = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src " +
                       connect + "; form-action 'self' " + connect +
                       "; base-uri 'none'; frame-ancestors 'none'";
}

bool server::owns(std::string_view target) noexcept {
    const std::string_view path = target.substr(0, target.find('?'));
    return path == "/app" || path.starts_with(path_prefix);
}

http::response server::answer(const http::request& req) const {
    http::response out;
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    if (req.method != "GET" && req.method != "HEAD") {
        out = http::plain_text(405, "the app is read with GET\n");
        out.set("Allow", "GET, HEAD");
    } else if (path == "/app") {
        out.status = 301;
        out.set("Location", std::string(path_prefix));
    } else {
        std::string_view name = path.substr(path_prefix.size());
        if (name.empty())
            name = "index.html";
        const auto& files = embedded_files();
        auto found = std::find_if(files.begin(), files.end(), [&](const embedded_file& f) { return f.name == name; });
        if (name == "config.json") {
            out.set("Content-Type", "application/json");
            out.body = config_json_;
        } else if (found != files.end()) {
            out.set("Content-Type", std::string(found->content_type));
            out.body = std::string(found->content);
        } else {
            out = http::plain_text(404, "the app has no file of that name\n");
        }
    }
    // Invariant 2, on every answer.
    out.set("Cache-Control", "no-cache");
    out.set("X-Content-Type-Options", "nosniff");
    out.set("X-Frame-Options", "DENY");
    out.set("Referrer-Policy", "no-referrer");
    out.set("Content-Security-Policy", security_policy_);
    if (req.method == "HEAD")
        out.body.clear();
    return out;
}

} // namespace caregate::citizen_app
