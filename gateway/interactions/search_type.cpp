// search (type level): https://hl7.org/fhir/R4/http.html#search, GET [base]/[type]?... and
// POST [base]/[type]/_search. Only what the caller may see is found, counted or included; a role
// that may never read the type gets 403.
#include "interactions/interactions.hpp"

#include "interactions/access_steps.hpp"
#include "interactions/search_steps.hpp"

namespace caregate::interactions {

void search_type(rest::context& ctx, rest::responder& done) {
    if (!detail::check_permitted(ctx, access::action::read, done))
        return;
    detail::search_scope scope;
    scope.types = {ctx.where.type};
    scope.path = ctx.config.base_url + "/" + ctx.where.type;
    detail::answer_search(ctx, done, scope);
}

} // namespace caregate::interactions
