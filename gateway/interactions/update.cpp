// update: https://hl7.org/fhir/R4/http.html#update, including update-as-create with the client's id
// and If-Match (https://hl7.org/fhir/R4/http.html#concurrency). Unchanged content makes no version.
// Only the organisation that contributed a resource may change it (DESIGN.md section 4, rule 6).
#include "interactions/interactions.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/write.hpp"

#include "rest/error_response.hpp"

namespace caregate::interactions {

using fhir::category;
using fhir::error;

void update(rest::context& ctx, rest::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(rest::error_response(ok.failure()));
    if (!detail::check_permitted(ctx, access::action::update, done))
        return;
    auto prepared = detail::prepare_body(ctx);
    if (!prepared)
        return done(rest::error_response(prepared.failure()));
    const std::string& type = ctx.where.type;
    if (prepared->id.empty())
        return done(rest::error_response(
            error::make(category::malformed, "required", "an update needs the resource's id in the body", type + ".id")));
    if (prepared->id != ctx.where.id)
        return done(rest::error_response(
            error::make(category::malformed, "invalid", "the id in the body differs from the id in the URL", type + ".id")));
    if (type == "Patient" && prepared->nhs_number != ctx.where.id)
        return done(rest::error_response(error::make(
            category::invalid, "invariant", "a Patient's id must be the NHS number in its identifier", "Patient.identifier")));
    auto expected = detail::if_match(ctx);
    if (!expected)
        return done(rest::error_response(expected.failure()));

    // Changing what exists needs it visible (else 404, as if absent) and owned (else 403).
    auto current = ctx.store.read_current(type, ctx.where.id);
    if (current && !current->deleted) {
        auto visible = detail::visible_current(ctx, type, ctx.where.id, std::move(current));
        if (!visible) {
            detail::audit_access(ctx, "update", {}, "not-found");
            return done(rest::error_response(visible.failure()));
        }
        if (visible->owner != ctx.who->org->ods && !ctx.guard->rules().any_owner(*ctx.who))
            return done(rest::error_response(error::make(category::forbidden, "forbidden",
                                                         "only the organisation that contributed this resource may change it")));
    } else if (!current && current.failure().kind != category::not_found) {
        return done(rest::error_response(current.failure()));
    }
    if (auto allowed = detail::check_write(ctx, access::action::update, *prepared); !allowed)
        return done(rest::error_response(allowed.failure()));

    storage::write_request write;
    write.kind = storage::write_kind::update;
    write.type = type;
    write.id = ctx.where.id;
    write.if_match = *expected;
    write.content = std::move(prepared->content);
    write.citizens = std::move(prepared->citizens);
    write.access = std::move(prepared->access);
    detail::submit_and_answer(ctx, std::move(write), done);
}

} // namespace caregate::interactions
