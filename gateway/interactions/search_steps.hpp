// What the search interactions share (https://hl7.org/fhir/R4/search.html): parsing the parameters,
// asking the store with the caller's visibility in the query, the searchset Bundle with its self,
// next and previous links, _summary and _elements, and the audit records of the search.
#pragma once

#include "interactions/context.hpp"

#include <optional>
#include <string>
#include <vector>

namespace caregate::interactions::detail {

struct search_scope {
    std::vector<std::string> types; ///< the types searched; empty: every type the caller may read
    std::string compartment;        ///< a citizen's NHS number: Patient compartment search, $everything
    bool everything = false;        ///< Patient/{nhs}/$everything
    std::string path;               ///< the URL the links start from, e.g. {base}/Observation
    /// Parameters the interaction has taken itself (e.g. _type), to keep in the links as given.
    std::vector<std::pair<std::string, std::string>> taken;
    std::optional<storage::timestamp> since; ///< $everything's _since
};

/// Runs the search of `scope` with the request's parameters and answers with a searchset Bundle,
/// or an OperationOutcome. Parameters in `scope.taken` must be taken out of ctx.params by the caller.
void answer_search(context& ctx, http::responder& done, const search_scope& scope);

/// Takes parameter `name` out of ctx.params into `scope.taken`; its value, if it was given (once).
/// Errors: malformed when it is given more than once.
fhir::result<std::optional<std::string>> take_param(context& ctx, search_scope& scope, std::string_view name);

/// Takes `_type` (comma-separated) out of ctx.params into `scope.types`: each type must be served
/// and searchable; one the caller may never read is forbidden (403). Errors name the type. Returns
/// whether `_type` was given.
fhir::result<bool> take_types(context& ctx, search_scope& scope);

/// `name=value&...`, each percent-encoded: the parameters of a self or next link.
std::string query_string(const std::vector<std::pair<std::string, std::string>>& pairs);

/// Whether the request asks for lenient handling (Prefer: handling=lenient).
bool lenient(const context& ctx);

} // namespace caregate::interactions::detail
