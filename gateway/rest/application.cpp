// Request ids, content negotiation and routing: https://hl7.org/fhir/R4/http.html
#include "rest/application.hpp"

#include "interactions/interactions.hpp"
#include "rest/error_response.hpp"

#include "fhir_model/date_time.hpp"

#include <openssl/rand.h>

#include <boost/url/parse.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <stdexcept>

namespace caregate::rest {

namespace {

using fhir::category;
using fhir::error;

constexpr std::size_t max_correlation_id = 200; ///< echoed back, so bounded

bool mentions(std::string_view text, std::string_view word) { return text.find(word) != std::string_view::npos; }

/// Accept and _format: JSON is served; a request that wants XML only gets 406.
fhir::status check_accept(const request& req, const std::optional<std::string>& format) {
    if (format) {
        const std::string& f = *format;
        if (f == "json" || f == "application/json" || f == "application/fhir+json")
            return {};
        if (mentions(f, "xml") || f == "turtle" || mentions(f, "ttl"))
            return error::make(category::not_acceptable, "not-supported",
                               "only JSON is served; _format=" + f + " is not available");
        return error::make(category::unsupported, "not-supported", "the _format value is not recognised");
    }
    const std::string_view accept = req.header("Accept");
    if (accept.empty() || mentions(accept, "json") || mentions(accept, "*/*") || mentions(accept, "application/*"))
        return {};
    return error::make(category::not_acceptable, "not-supported",
                       "only application/fhir+json and application/json are served");
}

/// Content-Type of a body: JSON is read (and a JSON Patch document, by PATCH only); anything else
/// gets 415.
fhir::status check_content_type(const request& req) {
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
                           ? "a PATCH body must be application/json-patch+json (JSON Patch) or application/fhir+json "
                             "(a FHIRPath Patch Parameters resource)"
                           : "request bodies must be application/fhir+json or application/json");
}

bool valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64)
        return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
            return false;
    return true;
}

error not_found_type(std::string_view type) {
    return error::make(category::not_found, "not-supported",
                       "the resource type '" + std::string(type) + "' is not served here");
}

error wrong_method(std::string_view method) {
    return error::make(category::method_not_allowed, "not-supported",
                       "the method " + std::string(method) + " is not allowed on this path");
}

/// The interaction for a method on a path below the base: segments are already decoded.
fhir::result<route> find_route(std::string_view method, const std::vector<std::string>& segments) {
    const std::size_t n = segments.size();
    auto on_type = [&](std::string_view type, interaction kind) -> fhir::result<route> {
        const type_capability* row = find_type(type);
        if (!row)
            return not_found_type(type);
        if (!row->allows(kind))
            return wrong_method(method);
        return route{kind, std::string(type), {}, 0};
    };
    if (n == 0) {
        if (method == "GET")
            return route{interaction::search_system, {}, {}, 0};
        if (method == "POST")
            return route{interaction::transaction, {}, {}, 0};
        return wrong_method(method);
    }
    if (n == 1 && segments[0] == "_search") {
        if (method != "POST")
            return wrong_method(method);
        return route{interaction::search_system, {}, {}, 0};
    }
    if (n == 1 && segments[0] == "metadata") {
        if (method != "GET")
            return wrong_method(method);
        return route{interaction::capabilities, {}, {}, 0};
    }
    if (n == 1 && segments[0] == "_history") {
        if (method != "GET")
            return wrong_method(method);
        return route{interaction::history_system, {}, {}, 0};
    }
    if (n == 2 && segments[0] == ".well-known" && segments[1] == "smart-configuration") {
        // The patient-facing endpoint's SMART discovery document; the interaction answers 404 on the
        // provider endpoint.
        if (method != "GET")
            return wrong_method(method);
        return route{interaction::smart_configuration, {}, {}, 0};
    }
    const std::string& type = segments[0];
    if (!find_type(type))
        return not_found_type(type);
    if (n == 1) {
        if (method == "POST")
            return on_type(type, interaction::create);
        if (method == "GET")
            return on_type(type, interaction::search_type);
        // Conditional update, delete and patch: [type]?criteria, the criteria taken by the interaction.
        if (method == "PUT")
            return on_type(type, interaction::update);
        if (method == "DELETE")
            return on_type(type, interaction::delete_);
        if (method == "PATCH")
            return on_type(type, interaction::patch);
        return wrong_method(method);
    }
    if (n == 2 && segments[1] == "_history") {
        if (method != "GET")
            return wrong_method(method);
        return on_type(type, interaction::history_type);
    }
    if (n == 2 && segments[1] == "_search") {
        if (method != "POST")
            return wrong_method(method);
        return on_type(type, interaction::search_type);
    }
    const std::string& id = segments[1];
    if (!valid_id(id))
        return error::make(category::not_found, "not-found", "'" + std::string(type) + "/…' is not a valid id");
    if (n == 2) {
        interaction kind;
        if (method == "GET" || method == "HEAD")
            kind = interaction::read;
        else if (method == "PUT")
            kind = interaction::update;
        else if (method == "DELETE")
            kind = interaction::delete_;
        else if (method == "PATCH")
            kind = interaction::patch;
        else
            return wrong_method(method);
        auto r = on_type(type, kind);
        if (r)
            r->id = id;
        return r;
    }
    if (n == 3 && type == "Patient" && segments[2] == "$everything") {
        if (method != "GET")
            return wrong_method(method);
        return route{interaction::everything, "Patient", id, 0};
    }
    if (n == 3 && type == "Patient" && segments[2] != "_history") {
        // The audit trail is searched at its own type only (AuditEvent?patient=...), never as a
        // compartment of the record.
        const type_capability* searched = find_type(segments[2]);
        if (!searched || !searched->allows(interaction::search_type) || segments[2] == "AuditEvent")
            return not_found_type(segments[2]);
        if (method != "GET")
            return wrong_method(method);
        return route{interaction::search_compartment, segments[2], id, 0};
    }
    if (segments[2] != "_history" || n > 4)
        return error::make(category::not_found, "not-found", "no such path");
    if (method != "GET")
        return wrong_method(method);
    if (n == 3) {
        auto r = on_type(type, interaction::history_instance);
        if (r)
            r->id = id;
        return r;
    }
    std::int64_t version = 0;
    for (char c : segments[3]) {
        if (c < '0' || c > '9' || version > 1'000'000'000'000LL)
            return error::make(category::not_found, "not-found", "no such version");
        version = version * 10 + (c - '0');
    }
    if (segments[3].empty() || version < 1)
        return error::make(category::not_found, "not-found", "no such version");
    auto r = on_type(type, interaction::vread);
    if (r) {
        r->id = id;
        r->version_id = version;
    }
    return r;
}

/// The methods a path allows, for the Allow header of a 405 (RFC 9110 section 15.5.6).
std::string allowed_methods(const std::vector<std::string>& segments) {
    std::vector<std::string_view> methods;
    auto add = [&](std::string_view method) { methods.push_back(method); };
    const std::size_t n = segments.size();
    const type_capability* row = n > 0 ? find_type(segments[0]) : nullptr;
    if (n == 0) {
        add("GET");
        add("POST");
    } else if (n == 1 && (segments[0] == "metadata" || segments[0] == "_history"))
        add("GET");
    else if (n == 2 && segments[0] == ".well-known" && segments[1] == "smart-configuration")
        add("GET");
    else if (n == 1 && segments[0] == "_search")
        add("POST");
    else if (row && n == 2 && segments[1] == "_search")
        add("POST");
    else if (row && n == 1) {
        if (row->allows(interaction::search_type))
            add("GET");
        if (row->allows(interaction::create))
            add("POST");
        if (row->allows(interaction::update))
            add("PUT");
        if (row->allows(interaction::delete_))
            add("DELETE");
        if (row->allows(interaction::patch))
            add("PATCH");
    }
    else if (row && n == 2 && segments[1] == "_history")
        add("GET");
    else if (row && n == 2) {
        if (row->allows(interaction::read)) {
            add("GET");
            add("HEAD");
        }
        if (row->allows(interaction::update))
            add("PUT");
        if (row->allows(interaction::delete_))
            add("DELETE");
        if (row->allows(interaction::patch))
            add("PATCH");
    } else if (row && (n == 3 || n == 4))
        add("GET");
    std::string text;
    for (auto m : methods)
        text += (text.empty() ? "" : ", ") + std::string(m);
    return text;
}

void dispatch(context& ctx, responder& done) {
    using namespace interactions;
    switch (ctx.where.kind) {
    case interaction::capabilities: return capabilities(ctx, done);
    case interaction::smart_configuration: return smart_configuration(ctx, done);
    case interaction::read: return ctx.where.type == "AuditEvent" ? audit_event_read(ctx, done) : read(ctx, done);
    case interaction::search_type:
        return ctx.where.type == "AuditEvent" ? audit_event_search(ctx, done) : search_type(ctx, done);
    case interaction::search_system: return search_system(ctx, done);
    case interaction::search_compartment: return search_compartment(ctx, done);
    case interaction::everything: return everything(ctx, done);
    case interaction::vread: return vread(ctx, done);
    case interaction::create: return create(ctx, done);
    case interaction::update: return update(ctx, done);
    case interaction::delete_: return delete_(ctx, done);
    case interaction::patch: return patch(ctx, done);
    case interaction::transaction: return bundle(ctx, done);
    case interaction::history_instance:
    case interaction::history_type:
    case interaction::history_system: return history(ctx, done);
    }
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

std::string random_uuid() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        throw std::runtime_error("RAND_bytes failed");
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    char text[37];
    std::snprintf(text, sizeof text, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                  bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
                  bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
    return text;
}

bool is_uuid(std::string_view text) noexcept {
    if (text.size() != 36)
        return false;
    for (std::size_t i = 0; i < 36; ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i])))
            return false;
    }
    return true;
}

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

std::string encode_loose_target(std::string_view target) {
    std::string out;
    out.reserve(target.size());
    for (const char c : target) {
        switch (c) {
        case '|': out += "%7C"; break;
        case '^': out += "%5E"; break;
        case '`': out += "%60"; break;
        case '{': out += "%7B"; break;
        case '}': out += "%7D"; break;
        case '"': out += "%22"; break;
        case '<': out += "%3C"; break;
        case '>': out += "%3E"; break;
        case '\\': out += "%5C"; break;
        case ' ': out += "%20"; break;
        default: out += c;
        }
    }
    return out;
}

fhir::result<std::pair<route, std::vector<std::pair<std::string, std::string>>>>
route_relative(std::string_view method, std::string_view url) {
    const std::string target = encode_loose_target(url.starts_with('/') ? url.substr(1) : url);
    auto parsed = boost::urls::parse_relative_ref(target);
    if (!parsed || parsed->has_authority())
        return error::make(category::malformed, "structure",
                           "the request url must be relative to the base, e.g. Observation/{id} or Observation?code=...");
    std::vector<std::string> segments;
    for (auto segment : parsed->segments())
        if (!segment.empty())
            segments.push_back(std::string(segment));
    auto routed = find_route(method, segments);
    if (!routed)
        return std::move(routed).failure();
    std::vector<std::pair<std::string, std::string>> params;
    for (auto p : parsed->params())
        params.emplace_back(std::string(p.key), std::string(p.has_value ? p.value : std::string_view{}));
    return std::pair{std::move(routed.value()), std::move(params)};
}

application::application(storage::store& store, const access::guard& guard, rest_config config)
    : store_(store), guard_(guard), config_(std::move(config)), deferred_(std::make_unique<work_queue>()) {
    auto parsed = boost::urls::parse_uri(config_.base_url);
    if (!parsed)
        throw std::invalid_argument("--base-url is not a URL: " + config_.base_url);
    base_path_ = std::string(parsed->encoded_path());
    for (auto segment : parsed->segments())
        if (!segment.empty())
            base_segments_.push_back(std::string(segment));
    while (!config_.base_url.empty() && config_.base_url.back() == '/')
        config_.base_url.pop_back();
}

void application::handle(request req, responder done) {
    // Request ids (as the NHS APIs do): a client's X-Request-ID must be a UUID and is echoed;
    // otherwise one is made. X-Correlation-ID is echoed as given.
    std::string request_id(req.header("X-Request-ID"));
    std::string correlation_id(req.header("X-Correlation-ID").substr(0, max_correlation_id));
    const bool bad_request_id = !request_id.empty() && !is_uuid(request_id);
    if (request_id.empty() || bad_request_id)
        request_id = random_uuid();
    responder answer = [request_id, correlation_id, done = std::move(done)](response out) {
        out.set("Date", http_date_now());
        out.set("X-Request-ID", request_id);
        if (!correlation_id.empty())
            out.set("X-Correlation-ID", correlation_id);
        done(std::move(out));
    };
    auto fail = [&](const error& failure) { answer(error_response(failure)); };
    if (bad_request_id)
        return fail(error::make(category::malformed, "value", "X-Request-ID must be a UUID"));

    const std::string target = encode_loose_target(req.target); // the url below views it
    auto url = boost::urls::parse_origin_form(target);
    if (!url)
        return fail(error::make(category::malformed, "structure", "the request target is not a valid URL"));
    // Path segments, percent-decoded; the first ones must be the base path's.
    std::vector<std::string> segments;
    for (auto segment : url->segments())
        if (!segment.empty())
            segments.push_back(std::string(segment));
    if (segments.size() < base_segments_.size() ||
        !std::equal(base_segments_.begin(), base_segments_.end(), segments.begin()))
        return fail(error::make(category::not_found, "not-found", "the FHIR base is " + base_path_));
    segments.erase(segments.begin(), segments.begin() + static_cast<std::ptrdiff_t>(base_segments_.size()));
    std::vector<std::pair<std::string, std::string>> params;
    for (auto p : url->params())
        params.emplace_back(std::string(p.key), std::string(p.has_value ? p.value : std::string_view{}));

    auto routed = find_route(req.method, segments);
    if (!routed) {
        response out = error_response(routed.failure());
        if (routed.failure().kind == category::method_not_allowed)
            out.set("Allow", allowed_methods(segments));
        return answer(std::move(out));
    }

    std::optional<std::string> format;
    for (const auto& [key, value] : params)
        if (key == "_format")
            format = value;
    if (auto ok = check_accept(req, format); !ok)
        return fail(ok.failure());
    const bool form_search = req.method == "POST" && (routed->kind == interaction::search_type ||
                                                      routed->kind == interaction::search_system);
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
    } else if (auto ok = check_content_type(req); !ok) {
        return fail(ok.failure());
    }

    context ctx{std::move(req),
                std::move(routed.value()),
                std::move(params),
                store_,
                config_,
                request_id,
                nullptr,
                std::nullopt,
                access::now_micros(),
                {},
                [this](request sub, responder sub_done) { handle(std::move(sub), std::move(sub_done)); },
                [this](std::function<void()> job) { deferred_->post(std::move(job)); }};
    if (ctx.where.kind != interaction::capabilities && ctx.where.kind != interaction::smart_configuration) {
        // Every interaction but /metadata and SMART discovery acts for an authenticated caller.
        auto who = guard_.authenticate(ctx.req, ctx.now / 1'000'000);
        if (!who) {
            response out = error_response(who.failure());
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
    dispatch(ctx, answer);
}

} // namespace caregate::rest
