// create: https://hl7.org/fhir/R4/http.html#create. The server assigns the id: for a Patient it is
// the NHS number (DESIGN.md section 3), and a second Patient with the same number is a 409. The
// creating organisation owns the resource.
#include "interactions/interactions.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/write.hpp"

#include "rest/application.hpp"
#include "rest/error_response.hpp"

namespace caregate::interactions {

void create(rest::context& ctx, rest::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(rest::error_response(ok.failure()));
    if (!ctx.req.header("If-None-Exist").empty())
        return done(rest::error_response(fhir::error::make(
            fhir::category::unsupported, "not-supported", "conditional create (If-None-Exist) is not supported yet")));
    if (!detail::check_permitted(ctx, access::action::create, done))
        return;
    auto prepared = detail::prepare_body(ctx);
    if (!prepared)
        return done(rest::error_response(prepared.failure()));
    if (auto allowed = detail::check_write(ctx, access::action::create, *prepared); !allowed)
        return done(rest::error_response(allowed.failure()));

    storage::write_request write;
    write.kind = storage::write_kind::create;
    write.type = ctx.where.type;
    write.id = write.type == "Patient" ? prepared->nhs_number : rest::random_uuid();
    write.fail_if_exists = true;
    write.content = std::move(prepared->content);
    write.citizens = std::move(prepared->citizens);
    write.access = std::move(prepared->access);
    detail::submit_and_answer(ctx, std::move(write), done);
}

} // namespace caregate::interactions
