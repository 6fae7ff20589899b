// Patient/$everything: https://hl7.org/fhir/R4/patient-operation-everything.html, with _since, _type
// and _count, paged. Everything the caller may see of the citizen's record: the Patient, every item
// linked to the citizen, and what those items reference (marked include). It names one record, so a
// clinician in an emergency may break the glass for it (ETREAT with a reason), as for a read.
#include "interactions/interactions.hpp"

#include "fhir_model/date_time.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/search_steps.hpp"
#include "http/error_response.hpp"

namespace caregate::interactions {

void everything(context& ctx, http::responder& done) {
    const std::string nhs = ctx.where.id;
    detail::search_scope scope;
    scope.everything = true;
    scope.compartment = nhs;
    scope.path = ctx.config.base_url + "/Patient/" + nhs + "/$everything";
    auto since = detail::take_param(ctx, scope, "_since");
    if (!since)
        return done(http::error_response(since.failure()));
    if (*since) {
        auto range = fhir::parse_date_time(**since);
        if (!range || (*since)->find('T') == std::string::npos)
            return done(http::error_response(fhir::error::make(
                fhir::category::malformed, "value", "_since must be an instant, e.g. 2026-01-01T00:00:00Z", "_since")));
        scope.since = range->begin;
    }
    if (auto typed = detail::take_types(ctx, scope); !typed)
        return done(http::error_response(typed.failure()));

    auto view = ctx.guard->open_citizen(*ctx.who, nhs, ctx.request_id, ctx.now, ctx.views, true);
    if (!view)
        return done(http::error_response(view.failure()));
    if (!view->open) {
        detail::audit_access(ctx, "everything", {}, "not-found");
        return done(http::error_response(detail::not_found("Patient", nhs)));
    }
    ctx.where.type.clear(); // the audit names each item Type/id: the record spans types
    detail::answer_search(ctx, done, scope);
}

} // namespace caregate::interactions
