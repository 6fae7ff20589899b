// The admin listener's application, for operators and load balancers: `/health` (the process
// answers), `/ready` (the database answers and takes a commit: HAProxy's check) and `/metrics` (the
// Prometheus text format). Plain text, no authentication, nothing of FHIR: it serves no record and
// takes no credential, so every other path is 404, and a method other than GET or HEAD is 405.
// Behind the same `handle(request, responder)` seam as the FHIR applications; knows nothing of sockets.
#pragma once

#include "admin/readiness.hpp"
#include "http/message.hpp"
#include "rest/request_metrics.hpp"
#include "storage/store.hpp"

namespace caregate::admin {

class admin_endpoint {
public:
    /// `store` and `requests` (what the FHIR applications count) must outlive it.
    admin_endpoint(storage::store& store, const rest::request_metrics& requests, readiness_settings settings = {});

    /// Answers one request; /ready and /metrics may answer later, from the readiness check's threads
    /// (readiness.hpp, invariant 1), never after the readiness deadline.
    void handle(http::request req, http::responder done);

    /// The metrics page as /metrics serves it, with the database's state as `database` last read.
    std::string metrics_page(const readiness::state& database) const;

private:
    storage::store& store_;
    const rest::request_metrics& requests_;
    readiness readiness_; // last: its threads call back into the members above until it is gone
};

} // namespace caregate::admin
