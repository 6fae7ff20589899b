// delete: https://hl7.org/fhir/R4/http.html#delete. Makes a deletion version (history keeps every
// earlier one); a later read answers 410. Deleting what is already deleted answers 204; what does not
// exist, or what the caller may not see, 404. Only the contributing organisation may delete.
#include "interactions/interactions.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/write.hpp"

#include "rest/error_response.hpp"

namespace caregate::interactions {

using fhir::category;
using fhir::error;

void delete_(rest::context& ctx, rest::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(rest::error_response(ok.failure()));
    if (!detail::check_permitted(ctx, access::action::delete_, done))
        return;
    auto expected = detail::if_match(ctx);
    if (!expected)
        return done(rest::error_response(expected.failure()));
    auto current = detail::visible_current(ctx, ctx.where.type, ctx.where.id);
    if (!current && current.failure().kind != category::deleted) {
        detail::audit_access(ctx, "delete", {}, "not-found");
        return done(rest::error_response(current.failure()));
    }
    if (current) {
        if (!ctx.guard->rules().may(*ctx.who, access::action::delete_, ctx.where.type, current->facets))
            return done(rest::error_response(error::make(category::forbidden, "forbidden",
                                                         "your role may not delete this kind of " + ctx.where.type)));
        if (current->owner != ctx.who->org->ods && !ctx.guard->rules().any_owner(*ctx.who))
            return done(rest::error_response(error::make(category::forbidden, "forbidden",
                                                         "only the organisation that contributed this resource may delete it")));
    }
    storage::write_request write;
    write.kind = storage::write_kind::remove;
    write.type = ctx.where.type;
    write.id = ctx.where.id;
    write.if_match = *expected;
    // The deletion's audit record names the citizen whose item it was.
    std::string citizen = current && !current->citizens.empty() ? current->citizens.front() : std::string();
    detail::submit_and_answer(ctx, std::move(write), done, std::move(citizen));
}

} // namespace caregate::interactions
