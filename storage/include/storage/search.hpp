// Search over the index tables (storage/src/relational/search_index.cpp keeps them): what a caller may see is
// part of the query, so a page, a total, an include or a chain never counts or shows a hidden item;
// and every page of a search reads the same snapshot of the data, so paging while others write gives
// each result exactly once. The query itself comes parsed (fhir::search_query); the access rules
// come as data (search_visibility), built by the gateway from the policy. No client string ever
// becomes SQL text: values are bound, parameter codes and types come from the official definitions.
#pragma once

#include "fhir_model/search_query.hpp"
#include "storage/store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace caregate::storage {

/// What one caller may see, as the policy and the caller's token say (README, "Who may see what"), for the
/// store to put into the query. Relationships, objections, break-glass grants and each version's
/// owner, citizens, labels and facets come from the database at the time of the query.
struct search_visibility {
    /// No filtering at all: tools and tests only, never a network caller.
    bool everything = false;
    /// A rule for all citizens applies (the ICS's own services, IG review): no relationship needed.
    bool all_citizens = false;
    std::string organisation; ///< the caller's ODS code
    std::string user;         ///< the caller's user id, for break-glass grants
    std::string role;         ///< the caller's job role: a break-glass grant opens for the role that opened it
    timestamp now = 0;
    timestamp recent_since = 0; ///< a relationship that ended at or after this still counts
    /// A citizen's objection limits their record to what the caller's organisation wrote (false for
    /// callers who may change any organisation's contributions).
    bool objection_binds = true;
    /// An open break-glass grant (without a relationship) sets the objection aside.
    bool break_glass_overrides_objection = false;
    /// A citizen's objection hides their whole record, what the caller's organisation wrote too,
    /// whatever objection_binds says: a population health export takes nobody who objects to sharing.
    bool objection_excludes = false;
    /// A citizen who has opted out of the use of their data for planning and research (the national
    /// data opt-out) is not open at all: a pseudonymised export leaves them out.
    bool opt_out_excludes = false;

    /// A type the caller may read: wholly, or only versions whose facets satisfy `facets` (a policy
    /// rule's `where`, as fhir::facets_satisfy decides).
    struct type_grant {
        std::string type;
        bool whole = true;
        std::vector<std::string> facets;
    };
    /// Types not listed are hidden; a type listed several times (several rules grant parts of it)
    /// is readable where any of its grants allows.
    std::vector<type_grant> readable;
    std::vector<std::string> hidden_labels;     ///< a version with one of these labels is hidden
    std::vector<std::string> owner_only_labels; ///< ... hidden unless its owner is `organisation`
    /// Citizens this request has just opened by break-glass (the grant is queued, not yet
    /// committed): treated as open by a break-glass grant.
    std::vector<std::string> break_glass_citizens;
    /// A citizen's own view (the patient-facing endpoint): the only record open is this citizen's
    /// (held: a live Patient), whatever `all_citizens` and the relationships say; a version that also
    /// links to anyone else is hidden. Versions linking to no citizen are decided by the type grants.
    std::string only_citizen;
};

/// Where the next or previous page starts: opaque to clients (the gateway encodes it into the link).
struct search_cursor {
    std::int64_t snapshot = 0;  ///< the newest version seq the search sees
    bool backwards = false;     ///< a `previous` cursor: the page before `after`
    std::string after;          ///< the key of the last (or, backwards, first) entry of the page before
};

struct search_request {
    const fhir::search_query* query = nullptr;
    /// Patient compartment search (`Patient/{nhs}/Observation`) and $everything: only versions
    /// linked to this citizen.
    std::string compartment;
    search_visibility visibility;
    /// Paging: absent for the first page (the snapshot is then the newest version at the time).
    std::optional<search_cursor> cursor;
    /// The first page's snapshot, when it is not to be the newest: a reader that took its snapshot
    /// earlier (an export job, storage/exports.hpp). Errors as an expired cursor's when it is older
    /// than what the index still holds.
    std::optional<std::int64_t> snapshot;
    /// $everything: every type of the compartment, the Patient itself, and what those reference.
    bool everything = false;
    std::optional<timestamp> since; ///< $everything's _since: versions last updated at or after
    /// When not 0, the page also ends after the entry that brings its JSON to this many bytes (at
    /// least one entry; `next` then starts after it): a page bounded by size, not only by count, for
    /// readers that must keep their memory bounded whatever the resources weigh (exports). Such a
    /// page carries no includes.
    std::size_t max_bytes = 0;
};

struct search_entry {
    stored_version version;
    bool include = false; ///< there because of _include/_revinclude (or referenced, in $everything)
};

struct search_page {
    std::vector<search_entry> entries;   ///< matches in order, then the includes of those matches
    std::optional<std::int64_t> total;   ///< with _total=accurate (or estimate): the matches visible
    std::int64_t snapshot = 0;
    std::optional<search_cursor> next;
    std::optional<search_cursor> previous;
};

/// The search of a conditional write (store.hpp, write_request::condition), run by the writer inside
/// the write transaction over the data as committed plus the transaction's earlier writes.
struct write_condition {
    /// One type and its criteria (search_query::types has exactly one entry); sort, count, includes,
    /// _summary and _total are ignored.
    fhir::search_query query;
    /// Only matches the caller may see count: a hidden resource neither blocks a create nor is
    /// changed, so a conditional write cannot reveal it.
    search_visibility visibility;
    /// remove: the matches the caller may delete (by facets, as policy::may decides: any of these
    /// grants); a visible match outside them fails the write with `forbidden`.
    std::vector<search_visibility::type_grant> removable;
    /// remove: several matches are all removed (up to max_matches; more fail precondition_failed).
    bool multiple = false;
    unsigned max_matches = 100;
    /// update: the id the client's body carried, if any; a match with another id fails `malformed`.
    std::string client_id;
};

/// Encodes a cursor as opaque text for a link (URL-safe), and back. Errors: malformed.
std::string encode_cursor(const search_cursor& cursor);
fhir::result<search_cursor> decode_cursor(std::string_view text);

} // namespace caregate::storage
