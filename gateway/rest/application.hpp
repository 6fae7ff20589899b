// The FHIR REST application behind the network seam: one `handle(request, responder)` that checks
// formats, routes to an interaction (by the route table, rest/routes.hpp), authenticates the caller
// and stamps request ids. Knows nothing of sockets.
#pragma once

#include "access/guard.hpp"
#include "http/message.hpp"
#include "interactions/context.hpp"
#include "storage/store.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace caregate::rest {

class application {
public:
    /// `guard` decides who may do what; it must outlive the application.
    application(storage::store& store, const access::guard& guard, interactions::rest_config config);
    ~application();
    application(const application&) = delete;
    application& operator=(const application&) = delete;

    /// Answers one request; `done` is called exactly once, maybe later from the writer thread.
    void handle(http::request req, http::responder done);

    const interactions::rest_config& config() const noexcept { return config_; }

private:
    storage::store& store_;
    const access::guard& guard_;
    interactions::rest_config config_;
    std::string base_path_;                  ///< the path part of config_.base_url, e.g. "/fhir"
    std::vector<std::string> base_segments_; ///< its segments, e.g. {"fhir"}
    class work_queue;
    std::unique_ptr<work_queue> deferred_; ///< context::defer's thread
};

/// What a request presents to authenticate its caller (access::guard::authenticate).
access::credentials credentials_of(const http::request& req) noexcept;

} // namespace caregate::rest
