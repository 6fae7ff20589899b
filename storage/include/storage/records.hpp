// The records the storage interface speaks in (storage/store.hpp): stored versions, audit records,
// break-glass grants, a citizen's standing, writes and their outcomes, history pages. Plain data,
// the same whatever engine keeps them; errors are fhir::error values (never HTTP statuses).
#pragma once

#include "fhir_model/error.hpp"
#include "fhir_model/resource.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace caregate::storage {

/// Microseconds since the Unix epoch, UTC: the resolution of meta.lastUpdated.
using timestamp = std::int64_t;

struct search_visibility; // storage/search.hpp
struct write_condition;
struct prepared_index; // store::prepare_index


/// One stored version of a resource.
struct stored_version {
    std::string type;
    std::string id;
    std::int64_t version_id = 0;
    timestamp last_updated = 0;
    bool deleted = false;   ///< a deletion marker: no content
    std::string json;       ///< the canonical JSON with id and meta stamped; empty when deleted
    std::string method;     ///< "POST", "PUT" or "DELETE": how this version came about (for history)
    /// ODS code of the organisation that created the resource (its owner; every version keeps it).
    std::string owner;
    /// The citizens (NHS numbers) the version links to; for a Patient, its own NHS number.
    std::vector<std::string> citizens;
    std::vector<std::string> labels; ///< fhir::access_facts::labels of this version
    std::vector<std::string> facets; ///< fhir::access_facts::facets of this version
    /// The database's access generation, read in the statement that read this version, where several
    /// nodes write one database (PostgreSQL); 0 where there is none to read and for versions read
    /// otherwise (a vread, a search page). store::standing serves a standing from memory for this
    /// version only if it was read at this same generation.
    std::uint64_t access_generation = 0;
};

/// One audit record: who did what to whose record, when, why, and how it ended.
/// Never holds resource content.
struct audit_record {
    std::int64_t sequence = 0;  ///< assigned by the store: the record's place in the chain (1, 2, ...)
    timestamp time = 0;         ///< when the access happened (set by the caller)
    std::string request_id;
    std::string user;           ///< SDS user id (or system id) from the token
    std::string role;           ///< national RBAC job role code, e.g. R8000
    std::string organisation;   ///< ODS code
    std::string purpose;        ///< purpose of use, e.g. TREAT, ETREAT
    std::string break_glass_reason; ///< the stated reason when purpose is ETREAT
    std::string nhs_number;     ///< the citizen, empty when none
    std::string resource_type;
    std::string resource_ids;   ///< space-separated ids (a search lists what it returned)
    std::string action;         ///< read, vread, history, create, update, delete, search, export, ...
    std::string outcome;        ///< "success", "denied", "not-found", "failed"
    std::string detail;         ///< e.g. the applied search parameters; never values of hidden items
    std::string previous_hash;  ///< set by the store: hex SHA-256 of the record before (64 zeros for the first)
    std::string hash;           ///< set by the store: hex SHA-256 over previous_hash and this record's fields
};

/// A break-glass grant: the organisation's user, acting in the role that opened it, may open the
/// citizen's record until `until`. The same user in another role (another token) is not covered.
struct break_glass_grant {
    std::string nhs_number;
    std::string organisation;
    std::string user;
    std::string role; ///< the national RBAC job role of the token that opened it
    std::string reason;
    timestamp from = 0;
    timestamp until = 0;
    std::string request_id;
};

/// What the store knows about one organisation's (and user's) standing with one citizen.
struct citizen_standing {
    bool held = false;          ///< the citizen is a live Patient here
    bool relationship = false;  ///< an organisation link for the ODS code, active or ended at or after `recent_since`
    bool objection = false;     ///< a live Consent of the citizen records an objection (access_facts::objection)
    bool opted_out = false;     ///< a live Consent of the citizen records the national data opt-out (access_facts::research_opt_out)
    std::optional<timestamp> break_glass_until; ///< the latest grant for (citizen, organisation, user, role) still open at `now`
};

enum class write_kind { create, update, remove };

/// A write to queue. The gateway has validated the content; the writer checks everything that
/// depends on the database's state inside the write transaction, so checks and write cannot race.
struct write_request {
    write_kind kind = write_kind::create;
    std::string type;
    std::string id;      ///< always set: the gateway assigns ids for creates
    std::string content; ///< canonical JSON (fhir::prepared_resource::content); empty for remove
    /// A Binary's bytes (fhir::prepared_resource::binary_bytes, or a raw upload's body, moved in),
    /// which `content` leaves out: stored in parts with the version (store::binary_bytes). Shared, so
    /// that a write passed between threads never copies megabytes. Null for no bytes.
    std::shared_ptr<const std::string> binary_bytes;
    /// create: fail with `conflict` if a live (not deleted) resource with this id exists.
    bool fail_if_exists = false;
    /// create: `id` is a random UUID the gateway made for this write (122 random bits), which no
    /// resource can hold yet, so the writer reads no current version for it (were it held, the
    /// resources' primary key would fail the write, changing nothing).
    bool id_is_new = false;
    /// If set, the current version must be this one (If-Match), else `precondition_failed`.
    std::optional<std::int64_t> if_match;
    /// Citizens the content links to: each must be a live Patient, else `invalid` naming the element.
    std::vector<fhir::citizen_link> citizens;
    /// The organisation writing. On create it becomes the owner; update and remove fail with
    /// `forbidden` unless it is the owner (or `any_owner`). Checked inside the write transaction.
    std::string writer;
    bool any_owner = false;
    /// Labels, facets, organisation links and objection of the content, kept with the version and
    /// (organisation links, objection) for the citizen while this version is current.
    fhir::access_facts access;
    /// Appended in the same transaction as the write, with `outcome` set by the store: "success", or
    /// "failed" when the write fails (then the audit record alone is committed). Its resource_ids is
    /// set by the store to the id written (a condition can choose another than `id`).
    std::optional<audit_record> audit;
    /// Conditional create, update and delete (storage/search.hpp): the writer runs the condition's
    /// search inside the write transaction, so no other write comes between the check and the write.
    ///  - create: no match: create `id`; one match: nothing is written and the outcome is that match
    ///    (`matched`); several: precondition_failed.
    ///  - update: no match: create `id` (the client's, or a new one); one match: update it (its id
    ///    must equal write_condition::client_id when that is set, else malformed); several:
    ///    precondition_failed.
    ///  - remove: no match: nothing (removed_nothing); one: remove it; several: remove each when
    ///    write_condition::multiple, else precondition_failed.
    std::shared_ptr<const write_condition> condition;
    /// remove of a Patient: refused with `conflict` while other live resources link to the citizen,
    /// unless this is set (the policy allows a full erasure): then each of them is removed too, in
    /// the same transaction, before the Patient (outcome.also_removed lists them).
    bool erase_record = false;
    /// The search index values of `content`, extracted ahead of the writer by store::prepare_index,
    /// so that the writer thread only inserts them. Used only for a version of this very type, id and
    /// content (a transaction or a condition can change them): otherwise the writer extracts them.
    std::shared_ptr<const prepared_index> index;
};

struct write_outcome {
    stored_version version; ///< the version now current (the existing one when unchanged)
    bool created = false;   ///< there was no live resource before this write
    bool unchanged = false; ///< an update with the same content: no new version was made
    bool removed_nothing = false; ///< a remove of a resource that did not exist or was already deleted
    bool matched = false;   ///< a conditional create found one match: nothing was written
    /// A conditional remove of several matches, or an erasure: the deletion markers made besides
    /// `version` (in the order made).
    std::vector<stored_version> also_removed;
};

/// Where a transaction failed: the write at `index` (in the order given) and why.
struct transaction_failure {
    std::size_t index = 0;
    fhir::error failure;
};
/// A transaction's outcomes in the order of its writes, or its failure. A failure that is no one
/// write's fault (busy, fault) has index SIZE_MAX.
using transaction_callback =
    std::function<void(std::variant<std::vector<write_outcome>, transaction_failure>)>;

/// Upper bounds, in microseconds, of the buckets store_statistics::commits_within counts commits in:
/// from half a millisecond (a commit with nothing to sync) to 2.5 s (a lock another process held).
inline constexpr std::array<std::uint64_t, 12> commit_bucket_bounds_us = {
    500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000};

/// What the writer has done since open: for tests and metrics.
struct store_statistics {
    std::uint64_t groups = 0;        ///< transactions the writer ran (committed or not)
    std::uint64_t writes = 0;        ///< write requests those transactions held
    std::uint64_t largest_group = 0; ///< most write requests in one transaction
    std::uint64_t checkpoints = 0;   ///< checkpoints the checkpointer thread ran
    std::uint64_t queued_jobs = 0;   ///< jobs (writes, transactions, audit appends, grants) queued now
    std::uint64_t commits = 0;       ///< groups that committed
    std::uint64_t commit_micros = 0; ///< their time from the start of the transaction to COMMIT returning, summed
    /// commits_within[i]: commits that took at most commit_bucket_bounds_us[i] (not cumulative).
    std::array<std::uint64_t, commit_bucket_bounds_us.size()> commits_within{};
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
    /// Whose history: only the entries this caller may see, decided in the query (a page holds
    /// `count` of them whenever there are as many). A version is an entry only when the caller may
    /// see it (a deletion: the version it removed) and the resource as it is now (its last live
    /// version): visibility_sql.hpp. Required: a query without it fails (`fault`); tools and tests
    /// that mean every version say so with search_visibility::everything.
    const search_visibility* visibility = nullptr;
};

struct history_page {
    std::vector<stored_version> entries; ///< newest first
    /// Cursor for the next (older) page, if there is one. Stable: later writes never shift pages.
    std::optional<std::int64_t> next;
};

/// What backup_database copied.
struct backup_report {
    std::int64_t pages = 0;
    std::int64_t bytes = 0;
    std::int64_t schema_version = 0;
    std::int64_t audit_records = 0; ///< in the copy (its newest record is the copy's moment)
};

/// What a move of a database to another engine copied (storage::migrate_store).
struct migration_report {
    std::int64_t versions = 0;      ///< resource versions, deletion markers included
    std::int64_t resources = 0;     ///< resources (type and id), live or deleted
    std::int64_t audit_records = 0; ///< the whole chain, verified in the copy
    std::int64_t rows = 0;          ///< rows of every table copied, index rows and access facts included
};

} // namespace caregate::storage
