// The search steps the search interactions share; see search_steps.hpp. The Bundle splices stored
// JSON in as it is (or subsetted for _summary/_elements); links carry the parameters as applied, so
// the self link says exactly what was searched.
#include "fhir_model/binary.hpp"
#include "interactions/search_steps.hpp"

#include "fhir_model/summary.hpp"
#include "http/error_response.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/binary.hpp"
#include "interactions/bundle_writer.hpp"
#include "interactions/paging.hpp"
#include "storage/search.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>


namespace caregate::interactions::detail {

namespace {

using fhir::category;
using fhir::error;

std::string encode(std::string_view text) { return boost::urls::encode(text, boost::urls::unreserved_chars); }

fhir::summary_form form_of(fhir::search_summary summary) {
    switch (summary) {
    case fhir::search_summary::true_: return fhir::summary_form::summary;
    case fhir::search_summary::text: return fhir::summary_form::text;
    case fhir::search_summary::data: return fhir::summary_form::data;
    default: return fhir::summary_form::full;
    }
}

/// $everything's own parameters: _count only (the interaction takes _since and _type).
fhir::result<fhir::search_query> everything_query(const context& ctx, const search_scope& scope,
                                                  const std::vector<std::pair<std::string, std::string>>& params) {
    fhir::search_query query;
    query.types = scope.types;
    query.count = std::min(ctx.config.default_count, ctx.config.max_count);
    for (const auto& [key, value] : params) {
        if (key != "_count") {
            if (!lenient(ctx))
                return error::make(category::unsupported, "not-supported",
                                   "the parameter '" + key + "' is not supported by $everything", key);
            query.ignored.push_back(
                {"warning", "not-supported", "the parameter '" + key + "' is not supported by $everything; it was ignored", key});
            continue;
        }
        auto count = page_count(ctx.config, value);
        if (!count)
            return std::move(count).failure();
        query.count = *count;
        query.applied.emplace_back("_count", std::to_string(query.count));
    }
    return query;
}

/// A reference given as an absolute URL of this server (`{base}/Patient/9000000009`) is the same
/// reference as `Patient/9000000009`: the index holds our own references by type and id.
void resolve_own_urls(fhir::search_query& query, const std::string& base_url) {
    const std::string prefix = base_url + "/";
    auto resolve = [&](fhir::search_argument& a) {
        if (!a.url.starts_with(prefix))
            return;
        const std::string_view rest = std::string_view(a.url).substr(prefix.size());
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size() ||
            rest.find('/', slash + 1) != std::string_view::npos)
            return;
        a.target_type = std::string(rest.substr(0, slash));
        a.id = std::string(rest.substr(slash + 1));
        a.url.clear();
    };
    for (fhir::search_clause& clause : query.clauses) {
        if (!clause.parameter)
            continue;
        for (fhir::search_argument& a : clause.any_of) {
            if (clause.parameter->type == fhir::search_param_type::reference &&
                clause.modifier != fhir::search_modifier::identifier)
                resolve(a);
            for (fhir::search_argument& component : a.components)
                resolve(component);
        }
    }
}

} // namespace

std::string query_string(const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::string text;
    for (const auto& [key, value] : pairs)
        text += (text.empty() ? "" : "&") + encode(key) + "=" + encode(value);
    return text;
}

fhir::result<std::optional<std::string>> take_param(context& ctx, search_scope& scope, std::string_view name) {
    std::optional<std::string> value;
    auto& params = ctx.params;
    for (auto it = params.begin(); it != params.end();) {
        if (it->first != name) {
            ++it;
            continue;
        }
        if (value)
            return error::make(category::malformed, "value", "the parameter " + std::string(name) + " is given twice",
                               std::string(name));
        value = it->second;
        scope.taken.push_back(*it);
        it = params.erase(it);
    }
    return value;
}

fhir::result<bool> take_types(context& ctx, search_scope& scope) {
    auto given = take_param(ctx, scope, "_type");
    if (!given)
        return std::move(given).failure();
    if (!*given)
        return false;
    std::string_view list = **given;
    std::vector<std::string>& types = scope.types;
    types.clear();
    while (true) {
        const auto comma = list.find(',');
        const std::string type(list.substr(0, comma));
        const served_type* row = ctx.served->find(type);
        if (!row || !row->in_record || !row->allows(interaction::search_type))
            return error::make(category::unsupported, "not-supported",
                               "_type: '" + type + "' is not a type searched here", "_type");
        if (!ctx.guard->rules().may_ever(*ctx.who, access::action::read, type))
            return error::make(category::forbidden, "forbidden", "your role may not read " + type + " resources",
                               "_type");
        if (std::find(types.begin(), types.end(), type) == types.end())
            types.push_back(type);
        if (comma == std::string_view::npos)
            return true;
        list.remove_prefix(comma + 1);
    }
}

bool lenient(const context& ctx) {
    return ctx.req.header("Prefer").find("handling=lenient") != std::string_view::npos;
}

void answer_search(context& ctx, http::responder& done, const search_scope& scope) {
    std::vector<std::pair<std::string, std::string>> params;
    std::optional<std::string> cursor_text;
    for (const auto& [key, value] : ctx.params) {
        if (key == "_format" || key == "_pretty")
            continue; // they shape the output only
        if (key == "_cursor") {
            cursor_text = value;
            continue;
        }
        params.emplace_back(key, value);
    }

    storage::search_visibility visibility = ctx.guard->search_visibility(*ctx.who, ctx.now, ctx.views);
    // A system search without _type searches every type of the record the caller may read (a type
    // with routes of its own, the audit trail, only at its own type).
    std::vector<std::string> types = scope.types;
    if (types.empty() && !scope.everything)
        for (const auto& grant : visibility.readable)
            if (const served_type* row = ctx.served->find(grant.type); row && row->in_record)
                types.push_back(grant.type);

    fhir::result<fhir::search_query> parsed = [&]() -> fhir::result<fhir::search_query> {
        if (scope.everything)
            return everything_query(ctx, scope, params);
        fhir::search_query_options options;
        options.lenient = lenient(ctx);
        options.default_count = ctx.config.default_count;
        options.max_count = ctx.config.max_count;
        return fhir::parse_search_query(types, params, options);
    }();
    if (!parsed) {
        audit_access(ctx, "search", {}, "failed", query_string(params));
        return done(http::error_response(parsed.failure()));
    }
    fhir::search_query& query = parsed.value();
    resolve_own_urls(query, ctx.config.base_url);
    if (query.summary == fhir::search_summary::count) {
        query.count = 0;
        query.total = fhir::search_total::accurate;
    }

    storage::search_request request;
    request.query = &query;
    request.compartment = scope.compartment;
    request.everything = scope.everything;
    request.visibility = std::move(visibility);
    request.since = scope.since;
    if (cursor_text) {
        auto cursor = storage::decode_cursor(*cursor_text);
        if (!cursor)
            return done(http::error_response(cursor.failure()));
        request.cursor = std::move(cursor.value());
    }

    auto page = ctx.store.search(request);
    if (!page) {
        audit_access(ctx, "search", {}, "failed", query_string(query.applied));
        return done(http::error_response(page.failure()));
    }

    std::vector<std::pair<std::string, std::string>> link_params = scope.taken;
    link_params.insert(link_params.end(), query.applied.begin(), query.applied.end());
    const std::string applied = query_string(link_params);
    std::vector<const storage::stored_version*> shown;
    for (const storage::search_entry& entry : page->entries)
        shown.push_back(&entry.version);
    audit_access(ctx, scope.everything ? "everything" : "search", shown, "success", applied);

    bundle_writer bundle("searchset");
    if (page->total)
        bundle.total(*page->total);
    auto link = [&](const char* relation, const std::optional<storage::search_cursor>& cursor) {
        std::string url = scope.path + "?" + applied;
        if (cursor)
            url += (applied.empty() ? "" : "&") + std::string("_cursor=") + storage::encode_cursor(*cursor);
        bundle.link(relation, url);
    };
    link("self", request.cursor);
    if (page->next)
        link("next", page->next);
    if (page->previous)
        link("previous", page->previous);

    const fhir::summary_form form = form_of(query.summary);
    for (const storage::search_entry& entry : page->entries) {
        const storage::stored_version& v = entry.version;
        const std::string full_url = ctx.config.base_url + "/" + v.type + "/" + v.id;
        const char* mode = entry.include ? "include" : "match";
        // _elements applies to matches; _summary to every entry.
        const bool subset = form != fhir::summary_form::full || (!entry.include && !query.elements.empty());
        if (!subset && !fhir::stored_in_parts(v.type)) {
            bundle.entry({.full_url = full_url, .resource = v.json, .search_mode = mode});
            continue;
        }
        if (!subset) {
            auto shown = fhir::listed_form(v.type, v.json); // a Binary without its bytes
            if (!shown)
                return done(http::error_response(shown.failure()));
            bundle.entry({.full_url = full_url, .resource = *shown, .search_mode = mode});
            continue;
        }
        static const std::vector<std::string> no_elements;
        auto shaped = fhir::subset_resource(v.json, form, entry.include ? no_elements : query.elements);
        if (!shaped)
            return done(http::error_response(shaped.failure()));
        bundle.entry({.full_url = full_url, .resource = *shaped, .search_mode = mode});
    }
    if (!query.ignored.empty()) {
        // What lenient handling dropped, as the spec suggests: an OperationOutcome in mode "outcome".
        fhir::error note;
        note.issues = query.ignored;
        bundle.entry({.resource = fhir::operation_outcome_json(note), .search_mode = "outcome"});
    }
    done(json_response(bundle.finish()));
}

} // namespace caregate::interactions::detail
