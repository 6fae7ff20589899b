// The versioned resource store on SQLite: immutable versions, current-version reads served as stored
// bytes, history, and one writer thread that commits queued writes in groups. Knows nothing of HTTP,
// TLS or tokens; errors are fhir::error values (never HTTP statuses).
#pragma once

#include "fhir_model/error.hpp"
#include "fhir_model/resource.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace caregate::storage {

/// Microseconds since the Unix epoch, UTC: the resolution of meta.lastUpdated.
using timestamp = std::int64_t;

struct store_options {
    std::string path = "caregate.db"; ///< a file; SQLite WAL needs a real file, so no :memory:
    /// Read connections kept open for readers; a reader beyond this opens a fresh one.
    unsigned reader_connections = 8;
    /// Most writes committed in one transaction; more wait for the next group.
    unsigned max_group_size = 512;
    /// `synchronous=FULL`: a commit is on disk before it is acknowledged. Off only for benchmarks
    /// that measure what durability costs.
    bool synchronous_full = true;
    /// How long a connection waits for a lock held by another connection (a backup, a second
    /// process) before the write or read fails with `busy`.
    std::chrono::milliseconds busy_timeout{5000};
};

/// One stored version of a resource.
struct stored_version {
    std::string type;
    std::string id;
    std::int64_t version_id = 0;
    timestamp last_updated = 0;
    bool deleted = false;   ///< a deletion marker: no content
    std::string json;       ///< the canonical JSON with id and meta stamped; empty when deleted
    std::string method;     ///< "POST", "PUT" or "DELETE": how this version came about (for history)
};

enum class write_kind { create, update, remove };

/// A write to queue. The gateway has validated the content; the writer checks everything that
/// depends on the database's state inside the write transaction, so checks and write cannot race.
struct write_request {
    write_kind kind = write_kind::create;
    std::string type;
    std::string id;      ///< always set: the gateway assigns ids for creates
    std::string content; ///< canonical JSON (fhir::prepared_resource::content); empty for remove
    /// create: fail with `conflict` if a live (not deleted) resource with this id exists.
    bool fail_if_exists = false;
    /// If set, the current version must be this one (If-Match), else `precondition_failed`.
    std::optional<std::int64_t> if_match;
    /// Citizens the content links to: each must be a live Patient, else `invalid` naming the element.
    std::vector<fhir::citizen_link> citizens;
};

struct write_outcome {
    stored_version version; ///< the version now current (the existing one when unchanged)
    bool created = false;   ///< there was no live resource before this write
    bool unchanged = false; ///< an update with the same content: no new version was made
    bool removed_nothing = false; ///< a remove of a resource that did not exist or was already deleted
};

/// What the writer has done since open: for tests and metrics.
struct store_statistics {
    std::uint64_t groups = 0;        ///< transactions the writer ran (committed or not)
    std::uint64_t writes = 0;        ///< write requests those transactions held
    std::uint64_t largest_group = 0; ///< most write requests in one transaction
};

using write_callback = std::function<void(fhir::result<write_outcome>)>;

/// Which history: all resources (type empty), one type (id empty), or one resource.
struct history_query {
    std::string type;
    std::string id;
    std::optional<timestamp> since; ///< only versions with last_updated >= since
    /// `_at`: only versions current at some point in [at_begin, at_end).
    std::optional<std::pair<timestamp, timestamp>> at;
    unsigned count = 50;
    std::optional<std::int64_t> before; ///< page cursor: only entries older than this position
};

struct history_page {
    std::vector<stored_version> entries; ///< newest first
    /// Cursor for the next (older) page, if there is one. Stable: later writes never shift pages.
    std::optional<std::int64_t> next;
};

class store {
public:
    /// Opens (creating if absent) the database, checks the schema version and runs migrations,
    /// and starts the writer thread. Errors: fault (cannot open, newer schema than this build).
    static fhir::result<std::unique_ptr<store>> open(const store_options& options);

    /// Stops accepting writes, finishes the queued ones, stops the writer, closes every connection.
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    /// The current version. Errors: not_found; deleted (the error's diagnostics carry no content).
    fhir::result<stored_version> read(std::string_view type, std::string_view id) const;
    /// Like read, but also returns a deletion marker instead of a `deleted` error.
    fhir::result<stored_version> read_current(std::string_view type, std::string_view id) const;
    /// A given version. Errors: not_found (no such resource or version); deleted (that version is one).
    fhir::result<stored_version> vread(std::string_view type, std::string_view id,
                                       std::int64_t version_id) const;
    /// History, newest first, in pages.
    fhir::result<history_page> history(const history_query& query) const;

    /// Queues a write. `done` runs on the writer thread once the group holding the write has
    /// committed durably (or with the write's error; a failed write changes nothing). Must not block.
    void submit(write_request request, write_callback done);
    /// submit() and wait: for tools and tests.
    fhir::result<write_outcome> write(write_request request);

    /// Counters of the writer's groups since open.
    store_statistics statistics() const;

    /// The instant text for a timestamp, e.g. "2026-11-23T19:02:03.123456Z".
    static std::string format_instant(timestamp t);

private:
    struct impl;
    explicit store(std::unique_ptr<impl> state);
    std::unique_ptr<impl> impl_;
};

} // namespace caregate::storage
