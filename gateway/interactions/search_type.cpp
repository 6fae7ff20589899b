// search (type level): https://hl7.org/fhir/R4/http.html#search, GET [base]/[type]?... and
// POST [base]/[type]/_search. Only what the caller may see is found, counted or included; a role
// that may never read the type gets 403.
#include "interactions/interactions.hpp"

#include "interactions/access_steps.hpp"
#include "interactions/search_steps.hpp"

#include "fhir_model/resource.hpp"

namespace caregate::interactions {

void search_type(rest::context& ctx, rest::responder& done) {
    if (!detail::check_permitted(ctx, access::action::read, done))
        return;
    detail::search_scope scope;
    scope.types = {ctx.where.type};
    scope.path = ctx.config.base_url + "/" + ctx.where.type;
    // A citizen sees only what links to them and nothing that links to anyone else; for types every
    // resource of which names its citizen, that is their compartment, which the search then starts
    // from rather than from a code shared by the whole population (same results, found faster).
    if (ctx.who->is_citizen() && (ctx.where.type == "Patient" || fhir::requires_citizen(ctx.where.type)))
        scope.compartment = ctx.who->citizen;
    detail::answer_search(ctx, done, scope);
}

} // namespace caregate::interactions
