// What an export job was asked for, as the kick-off decided it and the runner reads it back, maybe
// after a restart, maybe on another node: kept in the store as JSON (storage::export_job::request).
// The requester is kept as the verified claims the policy needs to make their profile again, never
// the token itself; the types to export are fixed at kick-off, and so are the passes over them, so
// the runner's cursor (a pass's index) means the same on every resume.
#pragma once

#include "access/policy.hpp"
#include "auth/token.hpp"
#include "fhir_model/error.hpp"
#include "fhir_model/search_query.hpp"
#include "storage/records.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace caregate::exports {

/// Where an export was asked for (https://hl7.org/fhir/uv/bulkdata/STU2/export.html).
enum class export_level { system, patient, group };

struct job_request {
    export_level level = export_level::system;
    access::export_kind kind = access::export_kind::identifiable;
    std::string group_id;             ///< Group/[id]/$export
    std::vector<std::string> members; ///< the Group's members' NHS numbers at kick-off, sorted, distinct
    std::vector<std::string> types;   ///< in the order exported
    std::optional<storage::timestamp> since; ///< _since: changed after this
    /// _typeFilter: a type's search criteria as a query string (at most one a type).
    std::vector<std::pair<std::string, std::string>> type_filters;
    std::vector<std::string> elements; ///< _elements as given: "element" or "Type.element"
    std::string request_url;           ///< the kick-off request, for the manifest's `request`
    auth::caller caller;               ///< the verified claims of the requester's token (no signature)
};

std::string to_json(const job_request& request);
/// Errors: fault (what is stored is not a job request this build writes).
fhir::result<job_request> job_request_from_json(std::string_view json);

/// The search the runner pages through for `type`: its _typeFilter criteria (percent-decoded, as a
/// query string's), _lastUpdated after _since, and a page of up to `page_count`. The one reading of
/// a job's criteria, at kick-off (to refuse a bad filter with 400) and at each page. Errors: as
/// fhir::parse_search_query's; unsupported for a result parameter in a filter (_count, _sort,
/// _include, ...), which says nothing about which resources match.
fhir::result<fhir::search_query> query_for(const job_request& request, std::string_view type, unsigned page_count);

/// The _typeFilter criteria of `type`, or nullptr.
const std::string* type_filter_of(const job_request& request, std::string_view type);
/// The _elements that apply to `type`: those without a type and those of `type`, without it.
std::vector<std::string> elements_of(const job_request& request, std::string_view type);

/// One walk of a job through the store, in the order the job takes them: several types at once
/// (every type without a _typeFilter, when there is no _since: one walk through the stored versions
/// in their order, rather than one per type), or one type (with its _typeFilter or _since; every
/// type of a Group export, member by member). Fixed by the request, so the runner's cursor (a
/// pass's index) means the same on every resume.
struct job_pass {
    std::vector<std::string> types;
};
std::vector<job_pass> passes_of(const job_request& request);

/// The search a pass of several types pages through: every version of them, a page of up to
/// `page_count` (a pass of one type: query_for). Errors: as fhir::parse_search_query's.
fhir::result<fhir::search_query> query_for_types(const std::vector<std::string>& types, unsigned page_count);

/// A file a job is filling: its number, and the bytes committed to it so far. A pass of several
/// types fills a file of each at once, committing a part of each with the cursor.
struct open_file {
    std::int64_t number = 0;
    std::size_t bytes = 0;
};

/// Where the runner is: the pass's index, the member's index (Group exports), the search's cursor
/// within them (encoded; empty at the first page), and the files it is filling, by type.
struct job_cursor {
    std::size_t pass = 0;
    std::size_t member = 0;
    std::int64_t last_number = 0; ///< the highest file number given so far
    std::map<std::string, open_file> open_files;
    std::string page;
};
std::string to_text(const job_cursor& cursor);
/// An empty text is the start. Errors: fault (also for a cursor a build before passes wrote: its
/// job cannot be resumed exactly, and fails saying so).
fhir::result<job_cursor> job_cursor_from_text(std::string_view text);

} // namespace caregate::exports
