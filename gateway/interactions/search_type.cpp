// search (type level): https://hl7.org/fhir/R4/http.html#search, GET [base]/[type]?... and
// POST [base]/[type]/_search. Only what the caller may see is found, counted or included; a role
// that may never read the type gets 403.
#include "interactions/interactions.hpp"

#include "interactions/access_steps.hpp"
#include "interactions/search_steps.hpp"

#include "fhir_model/resource.hpp"
#include "fhir_model/search_parameters.hpp"

#include <algorithm>

namespace caregate::interactions {

namespace {

/// What the official definition says a parameter is for, kept short: its expression.
std::string_view documentation_of(const fhir::search_parameter& p) {
    if (p.code == "_id")
        return "The logical id of the resource";
    if (p.code == "_lastUpdated")
        return "When the resource version last changed";
    return p.code;
}

} // namespace

void describe_search_type(served_type& row, const std::vector<std::string_view>& record_types) {
    for (const fhir::search_parameter* p : fhir::search_parameters_for(row.type)) {
        row.search_parameters.push_back({p->code, fhir::to_string(p->type), documentation_of(*p)});
        if (p->type == fhir::search_param_type::reference && p->base != "Resource")
            row.search_includes.push_back(std::string(row.type) + ":" + p->code);
    }
    for (std::string_view source : record_types) {
        for (const fhir::search_parameter* p : fhir::search_parameters_for(source)) {
            if (p->type != fhir::search_param_type::reference || p->base == "Resource")
                continue;
            const bool targets = p->targets.empty() ||
                                 std::find(p->targets.begin(), p->targets.end(), row.type) != p->targets.end();
            if (targets)
                row.search_revincludes.push_back(std::string(source) + ":" + p->code);
        }
    }
}

void search_type(context& ctx, http::responder& done) {
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
