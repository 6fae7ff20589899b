// The admin listener's three pages and what /metrics shows: the requests the FHIR applications
// counted, the store's writer, the audit backlog and the database's state. Every figure is measured;
// docs/OPERATIONS.md ("Health, readiness and metrics") lists each with its meaning.
#include "admin/admin_endpoint.hpp"

#include "admin/prometheus_text.hpp"

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace caregate::admin {

namespace {

http::response text_response(unsigned status, std::string body) {
    http::response out = http::plain_text(status, std::move(body));
    out.set("Cache-Control", "no-store");
    return out;
}

/// Bounds in microseconds, as the family's unit (seconds).
template <std::size_t N>
std::array<double, N> in_seconds(const std::array<std::uint64_t, N>& micros) {
    std::array<double, N> out{};
    for (std::size_t i = 0; i < N; ++i)
        out[i] = static_cast<double>(micros[i]) / 1e6;
    return out;
}

double seconds(std::uint64_t micros) { return static_cast<double>(micros) / 1e6; }

void write_requests(prometheus_text& page, const std::vector<rest::request_metrics::series>& requests) {
    using label = std::pair<std::string_view, std::string_view>;
    page.family("caregate_http_requests_total", "counter",
                "FHIR requests answered, by endpoint, interaction (the route table's; unrouted: no row took "
                "it) and HTTP status. A Bundle's entries are not counted apart from their Bundle.");
    for (const auto& s : requests)
        for (const auto& [status, count] : s.by_status) {
            const std::string code = std::to_string(status);
            const std::array<label, 3> with{{{"endpoint", rest::endpoint_name(s.where)},
                                             {"interaction", s.interaction},
                                             {"status", code}}};
            page.sample("caregate_http_requests_total", with, count);
        }

    static const auto bounds = in_seconds(rest::request_metrics::latency_bounds_us);
    page.family("caregate_http_request_duration_seconds", "histogram",
                "Time from a FHIR request reaching the application to its answer, by endpoint and interaction.");
    for (const auto& s : requests) {
        const std::array<label, 2> with{{{"endpoint", rest::endpoint_name(s.where)}, {"interaction", s.interaction}}};
        page.histogram("caregate_http_request_duration_seconds", with, bounds, s.within, s.beyond, seconds(s.micros));
    }
}

void write_store(prometheus_text& page, const storage::store& store) {
    const storage::store_statistics counts = store.statistics();
    page.family("caregate_store_write_queue_jobs", "gauge",
                "Jobs waiting for the writer now: writes, transactions, audit appends and break-glass grants.");
    page.sample("caregate_store_write_queue_jobs", {}, counts.queued_jobs);
    page.family("caregate_store_groups_total", "counter",
                "Transactions the writer has run (group commit), committed or not.");
    page.sample("caregate_store_groups_total", {}, counts.groups);
    page.family("caregate_store_group_writes_total", "counter",
                "Write requests those transactions held (a transaction Bundle counts its entries); divided by "
                "caregate_store_groups_total, the mean group size.");
    page.sample("caregate_store_group_writes_total", {}, counts.writes);
    page.family("caregate_store_largest_group", "gauge", "The most write requests one transaction has held since start.");
    page.sample("caregate_store_largest_group", {}, counts.largest_group);

    static const auto bounds = in_seconds(storage::commit_bucket_bounds_us);
    std::uint64_t within = 0;
    for (const std::uint64_t n : counts.commits_within)
        within += n;
    page.family("caregate_store_commit_duration_seconds", "histogram",
                "Time from the start of the writer's transaction (taking the write lock) to COMMIT returning, "
                "for each transaction that committed.");
    page.histogram("caregate_store_commit_duration_seconds", {}, bounds, counts.commits_within,
                   counts.commits >= within ? counts.commits - within : 0, seconds(counts.commit_micros));
    page.family("caregate_store_checkpoints_total", "counter", "Checkpoints of the write-ahead log run since start.");
    page.sample("caregate_store_checkpoints_total", {}, counts.checkpoints);

    page.family("caregate_audit_backlog", "gauge",
                "Audit records of reads queued and not yet committed (they wait while the database refuses them).");
    page.sample("caregate_audit_backlog", {}, static_cast<std::uint64_t>(store.audit_backlog()));
    page.family("caregate_audit_backlog_full", "gauge",
                "1 while the audit backlog is at its bound and every FHIR request is refused (fail closed), else 0.");
    page.sample("caregate_audit_backlog_full", {}, std::uint64_t{store.audit_backlog_full() ? 1u : 0u});
}

void write_database(prometheus_text& page, const readiness::state& database) {
    page.family("caregate_database_up", "gauge",
                "1 when the last readiness check found the database answering and taking a commit, else 0.");
    page.sample("caregate_database_up", {}, std::uint64_t{database.ready ? 1u : 0u});
    page.family("caregate_database_failovers_total", "counter",
                "Times the database came back: a readiness check ready after one that was not, when one before "
                "that had been ready.");
    page.sample("caregate_database_failovers_total", {}, database.failovers);
}

} // namespace

admin_endpoint::admin_endpoint(storage::store& store, const rest::request_metrics& requests,
                               readiness_settings settings)
    : store_(store), requests_(requests), readiness_(store, settings) {}

std::string admin_endpoint::metrics_page(const readiness::state& database) const {
    prometheus_text page;
    write_requests(page, requests_.read());
    write_store(page, store_);
    if (database.checked)
        write_database(page, database);
    return page.text();
}

void admin_endpoint::handle(http::request req, http::responder done) {
    const std::string_view target = req.target;
    const std::string_view path = target.substr(0, target.find('?'));
    if (path != "/health" && path != "/ready" && path != "/metrics")
        return done(text_response(404, "not found: this is the admin listener, which serves /health, /ready and "
                                       "/metrics; FHIR is served on the provider and patient-facing listeners\n"));
    if (req.method != "GET" && req.method != "HEAD") {
        http::response out = text_response(405, "only GET and HEAD\n");
        out.set("Allow", "GET, HEAD");
        return done(std::move(out));
    }
    if (path == "/health")
        return done(text_response(200, "ok\n"));
    if (path == "/ready")
        return readiness_.check([done = std::move(done)](const readiness_result& result) {
            done(result.ready ? text_response(200, "ready\n") : text_response(503, "not ready: " + result.reason + "\n"));
        });
    // /metrics: after a readiness check (or a fresh result), so that the database's state is current.
    readiness_.check([this, done = std::move(done)](const readiness_result&) {
        http::response out = text_response(200, metrics_page(readiness_.last()));
        out.set("Content-Type", std::string(prometheus_content_type));
        done(std::move(out));
    });
}

} // namespace caregate::admin
