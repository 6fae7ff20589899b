// Request ids, content negotiation and routing: https://hl7.org/fhir/R4/http.html
#include "rest/application.hpp"

#include "fhir_model/date_time.hpp"
#include "http/error_response.hpp"
#include "http/log.hpp"
#include "rest/routes.hpp"
#include "rest/xml_format.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <variant>

namespace caregate::rest {

namespace {

using fhir::category;
using fhir::error;

constexpr std::size_t max_correlation_id = 200; ///< echoed back, so bounded

bool mentions(std::string_view text, std::string_view word) { return text.find(word) != std::string_view::npos; }

/// Accept and _format: JSON or XML (rest/xml_format.hpp); anything else (Turtle) gets 406.
fhir::result<answer_format> check_accept(const http::request& req, const std::optional<std::string>& format) {
    if (format) {
        const std::string& f = *format;
        if (f == "json" || f == "application/json" || f == "application/fhir+json")
            return answer_format::json;
        if (f == "xml" || f == "text/xml" || f == "application/xml" || f == "application/fhir+xml")
            return answer_format::xml;
        if (f == "turtle" || mentions(f, "ttl"))
            return error::make(category::not_acceptable, "not-supported",
                               "JSON and XML are served; _format=" + f + " is not available");
        return error::make(category::unsupported, "not-supported", "the _format value is not recognised");
    }
    const std::string_view accept = req.header("Accept");
    if (accept.empty())
        return answer_format::json;
    // The media ranges in order, each with its weight (RFC 9110 section 12.5.1): the most wanted of
    // JSON and XML, the first listed on a tie (a HAPI client lists XML and JSON at q=1.0, XML first).
    std::optional<answer_format> chosen;
    double best = 0;
    for (std::string_view rest = accept; !rest.empty();) {
        const auto comma = rest.find(',');
        std::string_view range = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        double weight = 1;
        if (const auto q = range.find(";q="); q != std::string_view::npos) {
            const std::string value(range.substr(q + 3, range.find(';', q + 3) - q - 3));
            char* end = nullptr;
            weight = std::strtod(value.c_str(), &end);
            if (end == value.c_str())
                weight = 1;
        }
        range = range.substr(0, range.find(';'));
        std::optional<answer_format> format;
        if (mentions(range, "json") || mentions(range, "*/*") || mentions(range, "application/*"))
            format = answer_format::json;
        else if (mentions(range, "xml"))
            format = answer_format::xml;
        if (format && weight > best) {
            chosen = format;
            best = weight;
        }
    }
    if (chosen)
        return *chosen;
    return error::make(category::not_acceptable, "not-supported",
                       "application/fhir+json, application/json, application/fhir+xml and application/xml are served");
}

/// Content-Type of a body: JSON is read (and a JSON Patch document, by PATCH only), XML converted to
/// JSON before it (rest/xml_format.hpp); anything else gets 415.
fhir::status check_content_type(const http::request& req) {
    if (req.body.empty())
        return {};
    std::string_view type = req.header("Content-Type");
    if (type.empty())
        return {}; // taken as JSON, the only format read
    if (mentions(type, "application/json-patch+json")) {
        if (req.method == "PATCH")
            return {};
        return error::make(category::unsupported_media_type, "not-supported",
                           "application/json-patch+json is the body of a PATCH only");
    }
    if (mentions(type, "application/fhir+json") || mentions(type, "application/json"))
        return {};
    return error::make(category::unsupported_media_type, "not-supported",
                       req.method == "PATCH"
                           ? "a PATCH body must be application/json-patch+json (JSON Patch), or application/fhir+json "
                             "or application/fhir+xml (a FHIRPath Patch Parameters resource)"
                           : "request bodies must be application/fhir+json, application/json, application/fhir+xml "
                             "or application/xml");
}

/// The Date header's value (RFC 9110 section 6.6.1), formatted once a second per thread.
std::string http_date_now() {
    thread_local std::int64_t second = -1;
    thread_local std::string text;
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    if (now / 1'000'000 != second) {
        second = now / 1'000'000;
        text = fhir::format_http_date(now);
    }
    return text;
}

} // namespace

/// One thread running deferred work in order (context::defer); drains its queue before it stops.
class application::work_queue {
public:
    work_queue() : thread_([this] { run(); }) {}
    ~work_queue() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        filled_.notify_all();
        thread_.join();
    }
    void post(std::function<void()> job) {
        // Notified under the lock: once the job is queued, the worker may run it, answer its request
        // and let the application (and this queue) be destroyed; the poster (often the store's writer
        // thread) must not touch `filled_` after the mutex is free (ThreadSanitizer saw that race).
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
        filled_.notify_one();
    }

private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                filled_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
                if (jobs_.empty())
                    return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            try {
                job();
            } catch (...) {
                // A job's failure is its own (it answers its request); the queue goes on.
            }
        }
    }
    std::mutex mutex_;
    std::condition_variable filled_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::thread thread_; // last: starts once the rest is ready
};

application::~application() = default;

access::credentials credentials_of(const http::request& req) noexcept {
    return {req.header("Authorization"), req.header("X-Act-For"), req.client_ods, req.secure};
}

application::application(storage::store& store, const access::guard& guard, interactions::rest_config config,
                         request_metrics* metrics)
    : store_(store), guard_(guard), config_(std::move(config)), deferred_(std::make_unique<work_queue>()),
      metrics_(metrics) {
    auto parsed = boost::urls::parse_uri(config_.base_url);
    if (!parsed)
        throw std::invalid_argument("--base-url is not a URL: " + config_.base_url);
    base_path_ = std::string(parsed->encoded_path());
    for (auto segment : parsed->segments())
        if (!segment.empty())
            base_segments_.push_back(std::string(segment));
    while (!config_.base_url.empty() && config_.base_url.back() == '/')
        config_.base_url.pop_back();
    cors_.allowed = config_.cors_origins;
}

void application::handle(http::request req, http::responder done) {
    std::optional<std::chrono::steady_clock::time_point> received;
    if (metrics_)
        received = std::chrono::steady_clock::now();
    if (config_.patient_endpoint) {
        cors_answer cors(cors_, base_path_, req);
        if (auto preflight = cors.preflight()) {
            preflight->set("Date", http_date_now());
            return done(std::move(*preflight));
        }
        done = [cors = std::move(cors), done = std::move(done)](http::response out) {
            cors.decorate(out);
            done(std::move(out));
        };
    }
    serve(std::move(req), std::move(done), received);
}

std::variant<application::routed_request, http::response> application::route(const http::request& req) const {
    const std::string target = http::encode_loose_target(req.target); // the url below views it
    auto url = boost::urls::parse_origin_form(target);
    if (!url)
        return http::error_response(
            error::make(category::malformed, "structure", "the request target is not a valid URL"));
    // Path segments, percent-decoded; the first ones must be the base path's.
    std::vector<std::string> segments;
    for (auto segment : url->segments())
        if (!segment.empty())
            segments.push_back(std::string(segment));
    if (segments.size() < base_segments_.size() ||
        !std::equal(base_segments_.begin(), base_segments_.end(), segments.begin()))
        return http::error_response(error::make(category::not_found, "not-found", "the FHIR base is " + base_path_));
    segments.erase(segments.begin(), segments.begin() + static_cast<std::ptrdiff_t>(base_segments_.size()));
    routed_request routed;
    for (auto p : url->params())
        routed.params.emplace_back(std::string(p.key), std::string(p.has_value ? p.value : std::string_view{}));

    auto matched = match_route(req.method, segments);
    if (!matched) {
        http::response out = http::error_response(matched.failure());
        if (matched.failure().kind == category::method_not_allowed)
            out.set("Allow", allowed_methods(segments));
        return out;
    }
    routed.route = std::move(*matched);
    return routed;
}

void application::serve(http::request req, http::responder done,
                        std::optional<std::chrono::steady_clock::time_point> received) {
    // Request ids (as the NHS APIs do): a client's X-Request-ID must be a UUID and is echoed;
    // otherwise one is made. X-Correlation-ID is echoed as given.
    std::string request_id(req.header("X-Request-ID"));
    std::string correlation_id(req.header("X-Correlation-ID").substr(0, max_correlation_id));
    const bool bad_request_id = !request_id.empty() && !interactions::is_uuid(request_id);
    if (request_id.empty() || bad_request_id)
        request_id = interactions::random_uuid();
    std::variant<routed_request, http::response> routing = route(req);
    if (bad_request_id)
        routing = http::error_response(error::make(category::malformed, "value", "X-Request-ID must be a UUID"));
    auto* routed = std::get_if<routed_request>(&routing);

    // A 5xx is the server's failure (a database gone, a bug): the operator finds it in the log by the
    // request id the client was given, with the interaction and the status, and nothing else of the
    // request (a path or a query can name a citizen).
    std::string_view interaction_code = "unrouted";
    if (const auto* routed = std::get_if<routed_request>(&routing))
        interaction_code = interactions::spec_code(routed->route.where.kind);
    http::responder answer = [request_id, correlation_id, interaction_code, done = std::move(done)](http::response out) {
        if (out.status >= 500)
            http::log_line("request " + request_id + " (" + std::string(interaction_code) + ") answered " +
                           std::to_string(out.status));
        out.set("Date", http_date_now());
        out.set("X-Request-ID", request_id);
        if (!correlation_id.empty())
            out.set("X-Correlation-ID", correlation_id);
        done(std::move(out));
    };
    if (received) {
        // Counted once, when answered, by the interaction of the row that took it (request_metrics.hpp).
        std::optional<interactions::interaction> kind;
        if (routed)
            kind = routed->route.where.kind;
        answer = [metrics = metrics_, where = config_.patient_endpoint ? endpoint::patient : endpoint::provider,
                  kind, received = *received, stamped = std::move(answer)](http::response out) {
            metrics->count(where, kind, out.status, std::chrono::steady_clock::now() - received);
            stamped(std::move(out));
        };
    }
    if (!routed)
        return answer(std::move(std::get<http::response>(routing)));
    auto fail = [&](const error& failure) { answer(http::error_response(failure)); };
    auto& params = routed->params;

    std::optional<std::string> format;
    for (const auto& [key, value] : params)
        if (key == "_format")
            format = value;
    using interactions::interaction;
    const interaction kind = routed->route.where.kind;
    // A Binary is read in any format its bytes have, and written raw with any Content-Type
    // (interactions/binary.hpp); FHIR's own formats are held to what is served and read.
    const bool binary = routed->route.where.type == "Binary";
    const bool binary_bytes_read = binary && (kind == interaction::read || kind == interaction::vread) && !format &&
                                   !mentions(req.header("Accept"), "fhir+");
    const bool binary_bytes_write = binary && (kind == interaction::create || kind == interaction::update) &&
                                    !is_xml_body(req, true);
    if (!binary_bytes_read) {
        auto wanted = check_accept(req, format);
        if (!wanted)
            return fail(wanted.failure());
        if (*wanted == answer_format::xml) // every answer from here on, errors included
            answer = [in_json = std::move(answer)](http::response out) { in_json(answer_in_xml(std::move(out))); };
    }
    if (is_xml_body(req, binary))
        if (auto converted = body_to_json(req); !converted)
            return fail(converted.failure());
    const bool form_search =
        req.method == "POST" && (kind == interaction::search_type || kind == interaction::search_system);
    if (form_search) {
        // POST [base]/[type]/_search: the parameters come as a form body, and the URL's too
        // (https://hl7.org/fhir/R4/http.html#search).
        if (!req.body.empty() && !mentions(req.header("Content-Type"), "application/x-www-form-urlencoded"))
            return fail(error::make(category::unsupported_media_type, "not-supported",
                                    "a search by POST takes an application/x-www-form-urlencoded body"));
        auto form = boost::urls::parse_query(req.body);
        if (!form)
            return fail(error::make(category::malformed, "structure", "the form body is not valid form encoding"));
        for (auto p : boost::urls::params_view(*form))
            params.emplace_back(std::string(p.key), std::string(p.has_value ? p.value : std::string_view{}));
    } else if (!binary_bytes_write) {
        if (auto ok = check_content_type(req); !ok)
            return fail(ok.failure());
    }

    const route_row* row = routed->route.row;
    interactions::context ctx{std::move(req),
                              std::move(routed->route.where),
                              std::move(params),
                              store_,
                              config_,
                              request_id,
                              nullptr,
                              std::nullopt,
                              access::now_micros(),
                              {},
                              [this](http::request sub, http::responder sub_done) {
                                  serve(std::move(sub), std::move(sub_done), {});
                              },
                              [this](std::function<void()> job) { deferred_->post(std::move(job)); },
                              {},
                              route_relative,
                              &served()};
    if (kind != interaction::capabilities && kind != interaction::smart_configuration) {
        // Every interaction but /metadata and SMART discovery acts for an authenticated caller.
        auto who = guard_.authenticate(credentials_of(ctx.req), ctx.now / 1'000'000);
        if (!who) {
            http::response out = http::error_response(who.failure());
            // RFC 6750 section 3: no error attribute when the request carried no token at all.
            if (who.failure().kind == category::unauthorised)
                out.set("WWW-Authenticate", ctx.req.header("Authorization").empty()
                                                ? "Bearer realm=\"caregate\""
                                                : "Bearer realm=\"caregate\", error=\"invalid_token\"");
            return answer(std::move(out));
        }
        ctx.guard = &guard_;
        ctx.who = std::move(who.value());
        // Fail closed: while the audit log cannot be written (the database locked, the disk full)
        // and reads' records have piled up to the bound, nothing is served that it might not keep.
        if (store_.audit_backlog_full())
            return fail(error::make(category::busy, "transient",
                                    "storage temporarily unavailable: the audit log cannot be written at the "
                                    "moment, and nothing is served that it would not record"));
    }
    row->handler(ctx, answer);
}

} // namespace caregate::rest
