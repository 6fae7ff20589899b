// vread: https://hl7.org/fhir/R4/http.html#vread. A version that is a deletion answers 410.
#include "interactions/interactions.hpp"

#include "rest/error_response.hpp"

namespace caregate::interactions {

void vread(rest::context& ctx, rest::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(rest::error_response(ok.failure()));
    auto found = ctx.store.vread(ctx.where.type, ctx.where.id, ctx.where.version_id);
    if (!found)
        return done(rest::error_response(found.failure()));
    done(rest::version_response(ctx.config, 200, *found, rest::prefer_return::representation, false));
}

} // namespace caregate::interactions
