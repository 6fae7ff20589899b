// Cross-origin requests on the patient-facing endpoint (cors.hpp, where the invariants are).
#include "rest/cors.hpp"

#include "http/error_response.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <optional>

namespace caregate::rest {

namespace {

using fhir::category;
using fhir::error;

/// The methods of the API (rest/routes.hpp's rows), and the discovery documents' (reads only).
constexpr std::string_view api_methods = "GET, HEAD, POST, PUT, PATCH, DELETE";
constexpr std::string_view discovery_methods = "GET, HEAD";

/// The request headers the API reads (besides the CORS-safelisted ones), as a preflight is answered.
constexpr std::string_view api_request_headers = "Authorization, Content-Type, Accept, If-Match, If-None-Match, "
                                                 "If-None-Exist, If-Modified-Since, Prefer, X-Act-For, X-Request-ID, "
                                                 "X-Correlation-ID";

/// The response headers a browser app may read, beyond the safelisted ones: what the API sets.
constexpr std::string_view exposed_headers = "ETag, Location, Content-Location, Last-Modified, WWW-Authenticate, "
                                             "Retry-After, X-Request-ID, X-Correlation-ID";

/// How long a browser may keep a preflight's answer: ten minutes, so that a changed --cors-origins
/// reaches every browser soon after a restart.
constexpr std::string_view preflight_lifetime = "600";

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

/// Calls `each` with every item of a comma-separated list, trimmed; stops when it returns true.
template <class Each>
bool any_item(std::string_view list, Each&& each) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (const std::string_view item = trimmed(list.substr(0, comma)); !item.empty() && each(item))
            return true;
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return false;
}

/// Whether every header a preflight names is one the API reads (header names ignore case).
bool reads_every_header(std::string_view asked) {
    return !any_item(asked, [](std::string_view name) {
        return !any_item(api_request_headers, [&](std::string_view known) { return lower(known) == lower(name); });
    });
}

bool names_method(std::string_view methods, std::string_view method) {
    return any_item(methods, [&](std::string_view item) { return item == method; });
}

} // namespace

fhir::result<cors_origins> cors_origins::parse(std::string_view list) {
    cors_origins origins;
    std::optional<error> wrong;
    any_item(list, [&](std::string_view entry) {
        auto refuse = [&](std::string why) {
            wrong = error::make(category::malformed, "value", "--cors-origins: '" + std::string(entry) + "' " + std::move(why));
            return true;
        };
        if (entry == "*")
            return refuse("would open the API to every web page; name the apps' origins");
        auto url = boost::urls::parse_absolute_uri(entry);
        if (!url)
            return refuse("is not an origin like https://app.example.nhs.uk");
        if (url->scheme() != "https" && url->scheme() != "http")
            return refuse("is not an http or https origin");
        if (!url->has_authority() || url->host().empty() || url->has_userinfo())
            return refuse("names no host, or has user info");
        if (!url->encoded_path().empty() || url->has_query() || url->has_fragment())
            return refuse("has a path, a query or a fragment (an origin is scheme://host[:port], no trailing slash)");
        // Browsers send the scheme and host in lower case: so is the list, to compare exactly.
        origins.allowed.push_back(lower(entry));
        return false;
    });
    if (wrong)
        return std::move(*wrong);
    return origins;
}

bool cors_origins::allows(std::string_view origin) const {
    return std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
}

cors_answer::cors_answer(const cors_origins& origins, std::string_view base_path, const http::request& req)
    : origin_(req.header("Origin")) {
    std::string_view path = req.target;
    path = path.substr(0, path.find('?'));
    while (path.size() > 1 && path.back() == '/')
        path.remove_suffix(1);
    while (!base_path.empty() && base_path.back() == '/')
        base_path.remove_suffix(1);
    if (path.substr(0, base_path.size()) == base_path) {
        const std::string_view rest = path.substr(base_path.size());
        discovery_ = rest == "/metadata" || rest == "/.well-known/smart-configuration";
    }
    method_ = req.header("Access-Control-Request-Method");
    headers_ = req.header("Access-Control-Request-Headers");
    preflight_ = req.method == "OPTIONS" && !origin_.empty() && !method_.empty();
    allowed_ = !origin_.empty() && (discovery_ || origins.allows(origin_));
}

std::optional<http::response> cors_answer::preflight() const {
    if (!preflight_)
        return std::nullopt;
    const std::string_view methods = discovery_ ? discovery_methods : api_methods;
    // The discovery documents take any header a browser adds; the API only those it reads.
    if (!allowed_ || !names_method(methods, method_) || (!discovery_ && !reads_every_header(headers_))) {
        http::response refused = http::error_response(error::make(
            category::forbidden, "forbidden",
            allowed_ ? "a cross-origin request with this method or these headers is not served here"
                     : "this origin is not one the patient-facing endpoint serves (caregate serve --cors-origins)"));
        if (!discovery_)
            refused.set("Vary", "Origin");
        return refused;
    }
    http::response ok;
    ok.status = 204;
    ok.set("Access-Control-Allow-Origin", discovery_ ? "*" : origin_);
    ok.set("Access-Control-Allow-Methods", std::string(methods));
    if (discovery_) {
        if (!headers_.empty())
            ok.set("Access-Control-Allow-Headers", headers_);
    } else {
        ok.set("Access-Control-Allow-Headers", std::string(api_request_headers));
        ok.set("Vary", "Origin");
    }
    ok.set("Access-Control-Max-Age", std::string(preflight_lifetime));
    return ok;
}

void cors_answer::decorate(http::response& out) const {
    if (discovery_) {
        if (!origin_.empty())
            out.set("Access-Control-Allow-Origin", "*");
        return;
    }
    out.set("Vary", "Origin");
    if (!allowed_)
        return;
    out.set("Access-Control-Allow-Origin", origin_);
    out.set("Access-Control-Expose-Headers", std::string(exposed_headers));
}

} // namespace caregate::rest
