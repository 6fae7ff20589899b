// The route table and what reads it: matching a request to a row, the methods a path allows, and the
// table's description of itself. See routes.hpp for the invariants.
#include "rest/routes.hpp"

#include "fhir_model/binary.hpp"
#include "fhir_model/resource.hpp"
#include "interactions/interactions.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cassert>
#include <set>

namespace caregate::rest {

namespace {

using fhir::category;
using fhir::error;
using interactions::interaction;
namespace handlers = caregate::interactions;

constexpr route_row table[] = {
    // The whole system (https://hl7.org/fhir/R4/http.html).
    {"", "GET", interaction::search_system, handlers::search_system},
    {"", "POST", interaction::transaction, handlers::bundle},
    {"_search", "POST", interaction::search_system, handlers::search_system},
    {"metadata", "GET", interaction::capabilities, handlers::capabilities},
    {"_history", "GET", interaction::history_system, handlers::history},
    // The patient-facing endpoint's SMART discovery document; the handler answers 404 on the provider
    // endpoint.
    {".well-known/smart-configuration", "GET", interaction::smart_configuration, handlers::smart_configuration},
    // Bulk Data export (https://hl7.org/fhir/uv/bulkdata/STU2/export.html): the kick-offs, a job's
    // status URL and its files. `{id}` is the job's id; `{vid}` a file's number.
    {"$export", "GET", interaction::export_, handlers::bulk_export},
    {"$export", "POST", interaction::export_, handlers::bulk_export},
    {"$export-status/{id}", "GET", interaction::export_status, handlers::bulk_export_status},
    {"$export-status/{id}", "DELETE", interaction::export_status, handlers::bulk_export_status},
    {"$export-file/{id}/{vid}", "GET", interaction::export_file, handlers::bulk_export_file},

    // Every type of the record. PUT, DELETE and PATCH on the type are the conditional forms,
    // [type]?criteria, the criteria taken by the handler.
    {"{type}", "GET", interaction::search_type, handlers::search_type, handlers::describe_search_type},
    {"{type}", "POST", interaction::create, handlers::create},
    {"{type}", "PUT", interaction::update, handlers::update},
    {"{type}", "DELETE", interaction::delete_, handlers::delete_},
    {"{type}", "PATCH", interaction::patch, handlers::patch},
    {"{type}/_search", "POST", interaction::search_type, handlers::search_type},
    {"{type}/_history", "GET", interaction::history_type, handlers::history},
    {"{type}/{id}", "GET", interaction::read, handlers::read},
    {"{type}/{id}", "HEAD", interaction::read, handlers::read},
    {"{type}/{id}", "PUT", interaction::update, handlers::update},
    {"{type}/{id}", "DELETE", interaction::delete_, handlers::delete_},
    {"{type}/{id}", "PATCH", interaction::patch, handlers::patch},
    {"{type}/{id}/_history", "GET", interaction::history_instance, handlers::history},
    {"{type}/{id}/_history/{vid}", "GET", interaction::vread, handlers::vread},
    // The Patient compartment: a citizen's record as a whole, and by type.
    {"Patient/{id}/$everything", "GET", interaction::everything, handlers::everything},
    // A FHIR document assembled from a stored Composition.
    {"Composition/{id}/$document", "GET", interaction::document, handlers::document},
    {"Patient/{id}/{type}", "GET", interaction::search_compartment, handlers::search_compartment},
    {"Patient/$export", "GET", interaction::export_, handlers::bulk_export},
    {"Patient/$export", "POST", interaction::export_, handlers::bulk_export},
    {"Group/{id}/$export", "GET", interaction::export_, handlers::bulk_export},
    {"Group/{id}/$export", "POST", interaction::export_, handlers::bulk_export},

    // The audit log: read and searched, never written, never in a compartment or a system search.
    {"AuditEvent", "GET", interaction::search_type, handlers::audit_event_search, handlers::describe_audit_event_search},
    {"AuditEvent/_search", "POST", interaction::search_type, handlers::audit_event_search},
    {"AuditEvent/{id}", "GET", interaction::read, handlers::audit_event_read},
    {"AuditEvent/{id}", "HEAD", interaction::read, handlers::audit_event_read},
};

enum class segment_kind { literal, type, id, vid };

struct segment_pattern {
    segment_kind kind = segment_kind::literal;
    std::string_view text; ///< for a literal
};

/// A row with its pattern split into segments, once.
struct compiled_row {
    const route_row* row;
    std::vector<segment_pattern> segments;
};

std::vector<segment_pattern> split_pattern(std::string_view pattern) {
    std::vector<segment_pattern> out;
    while (!pattern.empty()) {
        const auto slash = pattern.find('/');
        const std::string_view text = pattern.substr(0, slash);
        if (text == "{type}")
            out.push_back({segment_kind::type, {}});
        else if (text == "{id}")
            out.push_back({segment_kind::id, {}});
        else if (text == "{vid}")
            out.push_back({segment_kind::vid, {}});
        else
            out.push_back({segment_kind::literal, text});
        pattern = slash == std::string_view::npos ? std::string_view{} : pattern.substr(slash + 1);
    }
    return out;
}

const std::vector<compiled_row>& compiled() {
    static const std::vector<compiled_row> rows = [] {
        std::vector<compiled_row> out;
        for (const route_row& row : table)
            out.push_back({&row, split_pattern(row.pattern)});
        return out;
    }();
    return rows;
}

/// Invariant 1: the types a row names alone, which `{type}` does not stand for.
bool has_own_rows(std::string_view type) {
    static const std::set<std::string_view, std::less<>> own = [] {
        std::set<std::string_view, std::less<>> out;
        for (const route_row& row : table)
            if (fhir::is_supported_type(row.pattern))
                out.insert(row.pattern);
        return out;
    }();
    return own.contains(type);
}

bool is_record_type(std::string_view type) { return fhir::is_supported_type(type) && !has_own_rows(type); }

/// A FHIR id: 1 to 64 of [A-Za-z0-9-.].
bool valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64)
        return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
            return false;
    return true;
}

/// A request path's segment, with what the placeholders ask of it decided once (a path is matched
/// against every row).
struct path_segment {
    explicit path_segment(const std::string& segment)
        : text(segment), record_type(is_record_type(segment)), id(valid_id(segment)) {}
    const std::string& text;
    bool record_type;
    bool id;
};

std::vector<path_segment> path_of(const std::vector<std::string>& segments) {
    return {segments.begin(), segments.end()};
}

bool segment_matches(const segment_pattern& pattern, const path_segment& segment) {
    switch (pattern.kind) {
    case segment_kind::literal: return segment.text == pattern.text;
    case segment_kind::type: return segment.record_type;
    case segment_kind::id: return segment.id;
    case segment_kind::vid: return true; // a version that is not one is a version not found, after the method
    }
    return false;
}

/// Invariant 4: PATCH changes a resource's stored JSON, which for a type stored in parts (a Binary,
/// whose bytes are apart) is not the resource.
bool takes_type(const route_row& row, std::string_view type) {
    return !(row.kind == interaction::patch && fhir::stored_in_parts(type));
}

bool path_matches(const compiled_row& row, const std::vector<path_segment>& path) {
    if (row.segments.size() != path.size())
        return false;
    if (!path.empty() && row.segments.front().kind == segment_kind::type && !takes_type(*row.row, path.front().text))
        return false;
    for (std::size_t i = 0; i < path.size(); ++i)
        if (!segment_matches(row.segments[i], path[i]))
            return false;
    return true;
}

error not_found_type(std::string_view type) {
    return error::make(category::not_found, "not-supported",
                       "the resource type '" + std::string(type) + "' is not served here");
}

/// Why no row matches a path: the row that matches it furthest decides. A type or id that a row
/// would take there names itself; anything else is no such path.
error no_such_path(const std::vector<std::string>& segments) {
    const std::vector<path_segment> path = path_of(segments);
    std::size_t deepest = 0;
    segment_kind failed = segment_kind::literal;
    for (const compiled_row& row : compiled()) {
        const std::size_t common = std::min(row.segments.size(), segments.size());
        std::size_t at = 0;
        while (at < common && segment_matches(row.segments[at], path[at]))
            ++at;
        // Where it fails: a placeholder that refused the segment, or a literal (or the path's length).
        const segment_kind kind = at < common ? row.segments[at].kind : segment_kind::literal;
        const bool placeholder = kind == segment_kind::type || kind == segment_kind::id;
        if (at > deepest || (at == deepest && placeholder && failed == segment_kind::literal)) {
            deepest = at;
            failed = placeholder ? kind : segment_kind::literal;
        }
    }
    if (failed == segment_kind::type)
        return not_found_type(segments[deepest]);
    if (failed == segment_kind::id)
        return error::make(category::not_found, "not-found", "'" + segments[0] + "/…' is not a valid id");
    return error::make(category::not_found, "not-found", "no such path");
}

/// `{vid}`: a version number from 1.
fhir::result<std::int64_t> parse_version(const std::string& text) {
    std::int64_t version = 0;
    for (char c : text) {
        if (c < '0' || c > '9' || version > 1'000'000'000'000LL)
            return error::make(category::not_found, "not-found", "no such version");
        version = version * 10 + (c - '0');
    }
    if (text.empty() || version < 1)
        return error::make(category::not_found, "not-found", "no such version");
    return version;
}

} // namespace

std::span<const route_row> route_table() noexcept { return table; }

fhir::result<matched_route> match_route(std::string_view method, const std::vector<std::string>& segments) {
    const std::vector<path_segment> path = path_of(segments);
    const compiled_row* found = nullptr;
    bool path_found = false;
    for (const compiled_row& row : compiled()) {
        if (!path_matches(row, path))
            continue;
        path_found = true;
        if (row.row->method == method) {
            assert(found == nullptr && "invariant 2: one row per path and method");
            found = &row;
        }
    }
    if (!path_found)
        return no_such_path(segments);
    if (!found)
        return error::make(category::method_not_allowed, "not-supported",
                           "the method " + std::string(method) + " is not allowed on this path");
    matched_route out;
    out.row = found->row;
    out.where.kind = found->row->kind;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        switch (found->segments[i].kind) {
        case segment_kind::type: out.where.type = segments[i]; break;
        case segment_kind::id: out.where.id = segments[i]; break;
        case segment_kind::vid: {
            auto version = parse_version(segments[i]);
            if (!version)
                return std::move(version).failure();
            out.where.version_id = *version;
            break;
        }
        case segment_kind::literal:
            // A literal type (the audit log's rows, Patient's compartment) is the routed type, unless
            // a `{type}` further on names the type searched.
            if (i == 0 && fhir::is_supported_type(segments[0]))
                out.where.type = segments[0];
            break;
        }
    }
    return out;
}

std::string allowed_methods(const std::vector<std::string>& segments) {
    const std::vector<path_segment> path = path_of(segments);
    std::vector<std::string_view> methods;
    for (const compiled_row& row : compiled())
        if (path_matches(row, path) && std::find(methods.begin(), methods.end(), row.row->method) == methods.end())
            methods.push_back(row.row->method);
    std::string text;
    for (std::string_view method : methods)
        text += (text.empty() ? "" : ", ") + std::string(method);
    return text;
}

fhir::result<interactions::routed_url> route_relative(std::string_view method, std::string_view url) {
    const std::string target = http::encode_loose_target(url.starts_with('/') ? url.substr(1) : url);
    auto parsed = boost::urls::parse_relative_ref(target);
    if (!parsed || parsed->has_authority())
        return error::make(category::malformed, "structure",
                           "the request url must be relative to the base, e.g. Observation/{id} or Observation?code=...");
    std::vector<std::string> segments;
    for (auto segment : parsed->segments())
        if (!segment.empty())
            segments.push_back(std::string(segment));
    auto routed = match_route(method, segments);
    if (!routed)
        return std::move(routed).failure();
    interactions::routed_url out;
    out.where = std::move(routed->where);
    for (auto p : parsed->params())
        out.params.emplace_back(std::string(p.key), std::string(p.has_value ? p.value : std::string_view{}));
    return out;
}

const interactions::service_description& served() noexcept {
    static const interactions::service_description description = [] {
        using interactions::served_type;
        // The type- and instance-level interactions a CapabilityStatement lists under a type.
        auto type_level = [](interaction kind) { return kind <= interaction::search_type; };
        std::vector<std::string_view> record_types;
        for (std::string_view type : fhir::supported_types())
            if (is_record_type(type))
                record_types.push_back(type);

        interactions::service_description out;
        for (std::string_view type : fhir::supported_types()) {
            served_type row{type, {}, {}, {}, {}, false, false, false, is_record_type(type)};
            for (const compiled_row& route : compiled()) {
                const segment_pattern* first = route.segments.empty() ? nullptr : &route.segments.front();
                const bool applies = first && (first->kind == segment_kind::type ? row.in_record && takes_type(*route.row, type)
                                                                                 : first->text == type);
                if (!applies)
                    continue;
                const interaction kind = route.row->kind;
                if (kind == interaction::everything)
                    row.everything = true;
                if (kind == interaction::document)
                    row.document = true;
                if (kind == interaction::export_)
                    row.bulk_export = true;
                if (type_level(kind) && !row.allows(kind))
                    row.interactions.push_back(kind);
                if (route.row->search)
                    route.row->search(row, record_types);
            }
            std::sort(row.interactions.begin(), row.interactions.end());
            if (!row.interactions.empty())
                out.types.push_back(std::move(row));
        }
        for (const compiled_row& route : compiled()) {
            const interaction kind = route.row->kind;
            if (kind == interaction::search_compartment)
                out.compartment = true;
            const bool bulk = kind == interaction::export_ || kind == interaction::export_status ||
                              kind == interaction::export_file;
            if (bulk && route.segments.size() == 1)
                out.bulk_export = true;
            const bool system = !type_level(kind) && !bulk && kind != interaction::search_compartment &&
                                kind != interaction::everything && kind != interaction::document &&
                                kind != interaction::smart_configuration;
            if (system && std::find(out.system.begin(), out.system.end(), kind) == out.system.end())
                out.system.push_back(kind);
        }
        std::sort(out.system.begin(), out.system.end());
        return out;
    }();
    return description;
}

} // namespace caregate::rest
