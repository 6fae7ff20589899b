// vread: https://hl7.org/fhir/R4/http.html#vread. A version that is a deletion answers 410. The
// resource must be visible to the caller as it is now, and the version itself too (labels can change
// between versions); otherwise 404.
#include "interactions/interactions.hpp"

#include "interactions/access_steps.hpp"
#include "interactions/binary.hpp"
#include "http/error_response.hpp"

namespace caregate::interactions {

void vread(context& ctx, http::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(http::error_response(ok.failure()));
    if (!detail::check_permitted(ctx, access::action::read, done))
        return;
    auto fail = [&](const fhir::error& failure) {
        detail::audit_access(ctx, "vread", {}, "not-found");
        done(http::error_response(failure));
    };
    auto current = detail::visible_current(ctx, ctx.where.type, ctx.where.id);
    if (!current && current.failure().kind != fhir::category::deleted)
        return fail(current.failure());
    auto found = ctx.store.vread(ctx.where.type, ctx.where.id, ctx.where.version_id);
    if (!found) {
        if (found.failure().kind == fhir::category::deleted)
            return fail(found.failure());
        return fail(detail::not_found(ctx.where.type, ctx.where.id));
    }
    auto visible = ctx.guard->can_read(*ctx.who, *found, ctx.request_id, ctx.now, ctx.views, true);
    if (!visible)
        return done(http::error_response(visible.failure()));
    if (!*visible)
        return fail(detail::not_found(ctx.where.type, ctx.where.id));
    detail::audit_access(ctx, "vread", {&*found}, "success");
    if (found->type == "Binary")
        return done(detail::binary_response(ctx, *found));
    done(version_response(ctx.config, 200, *found, prefer_return::representation, false));
}

} // namespace caregate::interactions
