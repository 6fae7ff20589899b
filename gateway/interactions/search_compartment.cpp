// Patient compartment search: https://hl7.org/fhir/R4/http.html#vsearch, GET [base]/Patient/[nhs]/[type]?...
// (https://hl7.org/fhir/R4/compartmentdefinition-patient.html): a type search limited to what links
// to the citizen. A citizen the caller may not open answers 404, as a read of their Patient does; a
// search never breaks the glass.
#include "interactions/interactions.hpp"

#include "interactions/access_steps.hpp"
#include "interactions/search_steps.hpp"
#include "http/error_response.hpp"

namespace caregate::interactions {

void search_compartment(context& ctx, http::responder& done) {
    if (!detail::check_permitted(ctx, access::action::read, done))
        return;
    const std::string nhs = ctx.where.id;
    auto view = ctx.guard->open_citizen(*ctx.who, nhs, ctx.request_id, ctx.now, ctx.views, false);
    if (!view)
        return done(http::error_response(view.failure()));
    if (!view->open) {
        detail::audit_access(ctx, "search", {}, "not-found");
        return done(http::error_response(detail::not_found("Patient", nhs)));
    }
    detail::search_scope scope;
    scope.types = {ctx.where.type};
    scope.compartment = nhs;
    scope.path = ctx.config.base_url + "/Patient/" + nhs + "/" + ctx.where.type;
    detail::answer_search(ctx, done, scope);
}

} // namespace caregate::interactions
