// The FHIR REST application behind the network seam: one `handle(request, responder)` that checks
// formats, routes to an interaction (by the route table, rest/routes.hpp), authenticates the caller
// and stamps request ids. Knows nothing of sockets.
#pragma once

#include "access/guard.hpp"
#include "http/message.hpp"
#include "interactions/context.hpp"
#include "rest/cors.hpp"
#include "rest/request_metrics.hpp"
#include "rest/routes.hpp"
#include "storage/store.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace caregate::rest {

class application {
public:
    /// `guard` decides who may do what; it must outlive the application, and so must `metrics`,
    /// which counts every request answered (not a Bundle's entries), when given.
    application(storage::store& store, const access::guard& guard, interactions::rest_config config,
                request_metrics* metrics = nullptr);
    ~application();
    application(const application&) = delete;
    application& operator=(const application&) = delete;

    /// Answers one request; `done` is called exactly once, maybe later from the writer thread.
    void handle(http::request req, http::responder done);

    const interactions::rest_config& config() const noexcept { return config_; }

private:
    /// A request's row of the route table and its query parameters.
    struct routed_request {
        matched_route route;
        std::vector<std::pair<std::string, std::string>> params;
    };
    /// Routes by the route table; or the answer when no row takes the request (404, 405 with Allow,
    /// 400 for a target that is not a URL).
    std::variant<routed_request, http::response> route(const http::request& req) const;
    /// handle(), counting the request as arrived at `received`, or not at all (a Bundle's entries).
    void serve(http::request req, http::responder done, std::optional<std::chrono::steady_clock::time_point> received);

    storage::store& store_;
    const access::guard& guard_;
    interactions::rest_config config_;
    std::string base_path_;                  ///< the path part of config_.base_url, e.g. "/fhir"
    std::vector<std::string> base_segments_; ///< its segments, e.g. {"fhir"}
    class work_queue;
    std::unique_ptr<work_queue> deferred_; ///< context::defer's thread
    request_metrics* metrics_;             ///< null: requests are not counted
    cors_origins cors_;                    ///< the patient-facing endpoint's (config_.cors_origins)
};

/// What a request presents to authenticate its caller (access::guard::authenticate).
access::credentials credentials_of(const http::request& req) noexcept;

} // namespace caregate::rest
