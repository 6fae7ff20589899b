// history: https://hl7.org/fhir/R4/http.html#history, at instance, type and system level, with
// _count (0: no entries), _since, _at and `next` links. Entries are newest first; pages are keyed on
// the store's write order, so later writes never shift them. Resources are spliced in as stored bytes.
// Access: instance history needs the resource visible as it is now (and may break the glass into
// that one record); at every level an entry is shown only if the caller may see its version (a
// deletion: the version it removed) and the resource as it is now (its last live version), decided
// by the store in the query (storage/src/relational/visibility_sql.hpp), so pages hold _count entries whenever
// there are as many.
#include "fhir_model/binary.hpp"
#include "interactions/interactions.hpp"

#include "fhir_model/date_time.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/bundle_writer.hpp"
#include "interactions/paging.hpp"
#include "http/error_response.hpp"
#include "storage/search.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>


namespace caregate::interactions {

namespace {

using fhir::category;
using fhir::error;

std::string encode(std::string_view text) { return boost::urls::encode(text, boost::urls::unreserved_chars); }

/// The status a version's entry reports, from how it came about.
const char* entry_status(const storage::stored_version& v) {
    if (v.deleted)
        return "204";
    return v.version_id == 1 ? "201" : "200";
}

} // namespace

void history(context& ctx, http::responder& done) {
    if (auto ok = ctx.only_params({"_count", "_since", "_at", "_page"}); !ok)
        return done(http::error_response(ok.failure()));
    if (!ctx.where.type.empty() && !detail::check_permitted(ctx, access::action::read, done))
        return;

    storage::history_query query;
    query.type = ctx.where.type;
    query.id = ctx.where.id;
    auto count = page_count(ctx.config, ctx.param("_count"));
    if (!count)
        return done(http::error_response(count.failure()));
    query.count = *count; // 0: a Bundle with no entries (history has no total to give)
    std::string applied; // the parameters as applied, for the self and next links
    auto add_applied = [&](std::string_view key, std::string_view value) {
        applied += (applied.empty() ? "" : "&") + std::string(key) + "=" + encode(value);
    };
    add_applied("_count", std::to_string(query.count));
    if (auto since = ctx.param("_since")) {
        auto range = fhir::parse_date_time(*since);
        if (!range || since->find('T') == std::string::npos)
            return done(http::error_response(
                error::make(category::malformed, "value", "_since must be an instant, e.g. 2026-01-01T00:00:00Z")));
        query.since = range->begin;
        add_applied("_since", *since);
    }
    if (auto at = ctx.param("_at")) {
        auto range = fhir::parse_date_time(*at);
        if (!range)
            return done(http::error_response(
                error::make(category::malformed, "value", "_at must be a date or dateTime")));
        query.at = std::pair{range->begin, range->end};
        add_applied("_at", *at);
    }
    if (auto page = ctx.param("_page")) {
        auto cursor = page_cursor(*page);
        if (!cursor)
            return done(http::error_response(cursor.failure()));
        query.before = *cursor;
    }

    if (!query.id.empty()) {
        // No history for what never existed, or what the caller may not see: 404, as a read says.
        auto current = detail::visible_current(ctx, query.type, query.id);
        if (!current && current.failure().kind != fhir::category::deleted) {
            detail::audit_access(ctx, "history", {}, "not-found");
            return done(http::error_response(current.failure()));
        }
    }
    // The store decides which entries the caller sees, by the one visibility rule, in the query.
    const storage::search_visibility visibility = ctx.guard->search_visibility(*ctx.who, ctx.now, ctx.views);
    query.visibility = &visibility;
    auto page = ctx.store.history(query);
    if (!page)
        return done(http::error_response(page.failure()));
    std::vector<const storage::stored_version*> shown;
    for (const storage::stored_version& v : page->entries)
        shown.push_back(&v);
    detail::audit_access(ctx, "history", shown, "success", applied);

    std::string path = ctx.config.base_url;
    if (!query.type.empty())
        path += "/" + query.type;
    if (!query.id.empty())
        path += "/" + query.id;
    path += "/_history";

    bundle_writer bundle("history");
    bundle.link("self", path + "?" + applied + (query.before ? "&_page=" + std::to_string(*query.before) : ""));
    if (page->next)
        bundle.link("next", path + "?" + applied + "&_page=" + std::to_string(*page->next));
    for (const storage::stored_version* shown_version : shown) {
        const storage::stored_version& v = *shown_version;
        const std::string full_url = ctx.config.base_url + "/" + v.type + "/" + v.id;
        const std::string url = v.method == "POST" ? v.type : v.type + "/" + v.id;
        const std::string tag = etag(v.version_id);
        const std::string modified = storage::store::format_instant(v.last_updated);
        std::string binary_shown; // a Binary without its bytes (interactions/binary.hpp)
        if (!v.deleted && fhir::stored_in_parts(v.type)) {
            auto shown = fhir::listed_form(v.type, v.json);
            if (!shown)
                return done(http::error_response(shown.failure()));
            binary_shown = std::move(*shown);
        }
        bundle.entry({.full_url = full_url,
                      .resource = v.deleted ? std::string_view{} : binary_shown.empty() ? std::string_view(v.json)
                                                                                         : std::string_view(binary_shown),
                      .request = bundle_entry_request{v.method, url},
                      .response = bundle_entry_response{.status = entry_status(v), .etag = tag, .last_modified = modified}});
    }
    done(json_response(bundle.finish()));
}

} // namespace caregate::interactions
