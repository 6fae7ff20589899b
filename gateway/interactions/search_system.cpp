// search (system level): https://hl7.org/fhir/R4/http.html#search, GET [base]?_type=...&... and
// POST [base]/_search. Without _type, every type the caller may read; a listed type the caller may
// never read is 403. Types of the record only: the audit log, which the route table serves by rows of
// its own, is searched only at its own type.
#include "interactions/interactions.hpp"

#include "interactions/search_steps.hpp"
#include "http/error_response.hpp"

namespace caregate::interactions {

void search_system(context& ctx, http::responder& done) {
    detail::search_scope scope;
    scope.path = ctx.config.base_url;
    // Without _type, scope.types stays empty: every type the caller may read.
    if (auto typed = detail::take_types(ctx, scope); !typed)
        return done(http::error_response(typed.failure()));
    detail::answer_search(ctx, done, scope);
}

} // namespace caregate::interactions
