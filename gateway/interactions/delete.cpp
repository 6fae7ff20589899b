// delete: https://hl7.org/fhir/R4/http.html#delete. Makes a deletion version (history keeps every
// earlier one); a later read answers 410. Deleting what is already deleted answers 204; what does not
// exist, or what the caller may not see, 404. Only the contributing organisation may delete: the
// writer checks that inside the write transaction (403, audited as denied), so always after the 404.
//
// Conditional delete (DELETE [type]?criteria, https://hl7.org/fhir/R4/http.html#3.1.0.7.1): the
// writer runs the criteria inside the write transaction, over what the caller may see. No match:
// 204, nothing to delete; one: deleted; several: 412, unless the server is configured to delete
// them all (rest_config::conditional_delete_multiple).
//
// A citizen's Patient cannot be deleted while their record holds other items (the writer refuses,
// 409): deleting the Patient would orphan them. `DELETE /Patient/{nhs}?_cascade=delete` (HAPI FHIR's
// spelling) erases the whole record in one transaction, for callers the policy grants erase_record;
// it is audited as an "erase".
#include "interactions/interactions.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/write.hpp"

#include "http/error_response.hpp"

namespace caregate::interactions {

namespace detail {

using fhir::category;
using fhir::error;

fhir::result<planned_write> plan_delete(context& ctx) {
    const bool conditional = ctx.where.id.empty();
    const std::string& type = ctx.where.type;
    const criteria_list criteria = conditional ? route_criteria(ctx, {"_cascade"}) : criteria_list{};
    if (!conditional)
        if (auto ok = ctx.only_params({"_cascade"}); !ok)
            return ok.failure();
    const std::optional<std::string> cascade = ctx.param("_cascade");
    if (cascade && *cascade != "delete")
        return error::make(category::malformed, "value", "_cascade takes the value delete", "_cascade");
    if (cascade && type != "Patient")
        return error::make(category::unsupported, "not-supported",
                           "_cascade=delete applies to a Patient only: it erases the citizen's whole record", "_cascade");
    if (auto ok = check_may_ever(ctx, access::action::delete_); !ok)
        return ok.failure();
    const access::policy& rules = ctx.guard->rules();
    if (cascade && !rules.erase_record(*ctx.who)) {
        // In the citizen's own access log: an attempt to erase their record is worth seeing.
        storage::audit_record denied = access::guard::audit_for(*ctx.who, ctx.request_id, ctx.now, "erase");
        denied.nhs_number = ctx.where.id;
        denied.resource_type = type;
        denied.resource_ids = ctx.where.id;
        denied.outcome = "denied";
        denied.detail = "the role may not erase a citizen's record";
        ctx.store.append_audit({std::move(denied)});
        return error::make(category::forbidden, "forbidden", "your role may not erase a citizen's whole record");
    }
    auto expected = if_match(ctx);
    if (!expected)
        return std::move(expected).failure();

    planned_write plan;
    plan.interaction = write_interaction::remove;
    storage::write_request& write = plan.write;
    write.kind = storage::write_kind::remove;
    write.type = type;
    write.if_match = *expected;
    write.erase_record = cascade.has_value();
    const char* action = cascade ? "erase" : "delete";
    std::string citizen; // the deletion's audit record names the citizen whose item it was
    std::string detail;
    if (conditional) {
        auto query = parse_criteria(ctx, criteria);
        if (!query)
            return std::move(query).failure();
        detail = "criteria: " + criteria_text(*query);
        auto condition = make_condition(ctx, std::move(query.value()));
        access::policy::read_scope removable = rules.scope_for(*ctx.who, access::action::delete_, type);
        if (removable.whole)
            condition->removable.push_back({type, true, {}});
        for (auto& part : removable.parts)
            condition->removable.push_back({type, false, std::move(part)});
        condition->multiple = ctx.config.conditional_delete_multiple;
        condition->max_matches = ctx.config.max_conditional_deletes;
        write.condition = std::move(condition);
    } else {
        write.id = ctx.where.id;
        auto current = visible_current(ctx, type, ctx.where.id);
        if (!current && current.failure().kind != category::deleted) {
            audit_access(ctx, action, {}, "not-found");
            return std::move(current).failure();
        }
        if (current) {
            if (!rules.may(*ctx.who, access::action::delete_, type, current->facets))
                return error::make(category::forbidden, "forbidden", "your role may not delete this kind of " + type);
            if (!current->citizens.empty())
                citizen = current->citizens.front();
        }
    }
    sign_write(ctx, write, action, std::move(citizen), std::move(detail));
    return plan;
}

} // namespace detail

void delete_(context& ctx, http::responder& done) {
    detail::submit_and_answer(ctx, detail::plan_delete(ctx), done);
}

} // namespace caregate::interactions
