// The FHIR REST application behind the network seam: one `handle(request, responder)` that checks
// formats, routes to an interaction (from the capability table) and stamps request ids. Knows
// nothing of sockets.
#pragma once

#include "rest/context.hpp"
#include "rest/http.hpp"
#include "storage/store.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace caregate::rest {

class application {
public:
    /// `guard` decides who may do what; it must outlive the application.
    application(storage::store& store, const access::guard& guard, rest_config config);
    ~application();
    application(const application&) = delete;
    application& operator=(const application&) = delete;

    /// Answers one request; `done` is called exactly once, maybe later from the writer thread.
    void handle(request req, responder done);

    const rest_config& config() const noexcept { return config_; }

private:
    storage::store& store_;
    const access::guard& guard_;
    rest_config config_;
    std::string base_path_;                  ///< the path part of config_.base_url, e.g. "/fhir"
    std::vector<std::string> base_segments_; ///< its segments, e.g. {"fhir"}
    class work_queue;
    std::unique_ptr<work_queue> deferred_; ///< context::defer's thread
};

/// Routes a request as handle() does, for `url` relative to the base (a Bundle entry's request.url,
/// e.g. "Observation?patient=9000000009"): the route and the decoded query parameters.
/// Errors: malformed (not a relative URL), not_found (unknown type), method_not_allowed.
fhir::result<std::pair<route, std::vector<std::pair<std::string, std::string>>>>
route_relative(std::string_view method, std::string_view url);

/// A request target with the characters clients commonly leave unencoded in a query (`|` above
/// all, as in `identifier=system|value`) percent-encoded, so that Boost.URL's strict grammar reads it.
std::string encode_loose_target(std::string_view target);

/// A random (version 4) UUID, from OpenSSL's RAND_bytes.
std::string random_uuid();
/// True for the 8-4-4-4-12 hex form.
bool is_uuid(std::string_view text) noexcept;

} // namespace caregate::rest
