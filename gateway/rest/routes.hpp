// The one route table: each row a path pattern, a method, the FHIR interaction and its handler. The
// router, the Allow header of a 405, dispatch and the CapabilityStatement (through the table's
// description of itself) all come from it, so what is routed, allowed, run and claimed cannot differ.
//
// Invariants:
//  1. A pattern is segments below the base: literals, `{type}`, `{id}`, `{vid}`. `{type}` is a type of
//     the record: a supported type that no row names alone as its pattern. A type named so (the audit
//     log) is served by the rows that name it and by no `{type}` row: nothing else reaches it.
//  2. At most one row matches a path and method; the rows matching a path list its methods in the
//     order of the table, which is the order of Allow.
//  3. A path that matches no row is 404; a path that matches rows, none of them for the method, 405.
//  4. A PATCH row does not take a type stored in parts (fhir::stored_in_parts: a Binary, whose bytes
//     are not in the JSON a patch would change): PATCH Binary/{id} is 405, and not claimed.
#pragma once

#include "fhir_model/error.hpp"
#include "http/message.hpp"
#include "interactions/context.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::rest {

/// Answers one routed request (an interaction in gateway/interactions).
using handler_function = void (*)(interactions::context&, http::responder&);
/// Fills in what a search-type row answers for a type (its parameters, _include and _revinclude),
/// given the types of the record.
using search_description = void (*)(interactions::served_type&, const std::vector<std::string_view>& record_types);

struct route_row {
    std::string_view pattern; ///< e.g. "{type}/{id}/_history/{vid}"; "" is the base itself
    std::string_view method;  ///< "GET", "HEAD", "POST", ...
    interactions::interaction kind;
    handler_function handler;
    search_description search = nullptr; ///< search-type rows: what the search answers (/metadata)
};

/// The table, in the order Allow lists methods.
std::span<const route_row> route_table() noexcept;

struct matched_route {
    interactions::route where;
    const route_row* row = nullptr;
};

/// The row for a method on a path below the base (segments already percent-decoded).
/// Errors: not_found (no such path, type, id or version), method_not_allowed.
fhir::result<matched_route> match_route(std::string_view method, const std::vector<std::string>& segments);

/// The methods a path allows, comma-separated, for the Allow header of a 405 (RFC 9110 section 15.5.6).
std::string allowed_methods(const std::vector<std::string>& segments);

/// Routes `url` relative to the base (a Bundle entry's request.url, e.g. "Observation?patient=9000000009")
/// as a request is routed: the route and the decoded query parameters.
/// Errors: malformed (not a relative URL), not_found, method_not_allowed.
fhir::result<interactions::routed_url> route_relative(std::string_view method, std::string_view url);

/// What the table serves: each type's interactions and search, the system's interactions.
const interactions::service_description& served() noexcept;

} // namespace caregate::rest
