// read: https://hl7.org/fhir/R4/http.html#read, with conditional read (If-None-Match,
// If-Modified-Since: https://hl7.org/fhir/R4/http.html#cread). Serves the stored bytes as they are.
#include "interactions/interactions.hpp"

#include "fhir_model/date_time.hpp"
#include "rest/error_response.hpp"

namespace caregate::interactions {

void read(rest::context& ctx, rest::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(rest::error_response(ok.failure()));
    auto found = ctx.store.read(ctx.where.type, ctx.where.id);
    if (!found)
        return done(rest::error_response(found.failure()));
    const storage::stored_version& version = *found;

    bool not_modified = false;
    if (auto tag = ctx.req.header("If-None-Match"); !tag.empty())
        not_modified = rest::parse_etag(tag) == version.version_id;
    else if (auto since = fhir::parse_http_date(ctx.req.header("If-Modified-Since")))
        not_modified = version.last_updated / 1'000'000 <= *since / 1'000'000; // HTTP dates have seconds
    if (not_modified) {
        rest::response out = rest::version_response(ctx.config, 304, version, rest::prefer_return::minimal, false);
        return done(std::move(out));
    }
    done(rest::version_response(ctx.config, 200, version, rest::prefer_return::representation, false));
}

} // namespace caregate::interactions
