// update: https://hl7.org/fhir/R4/http.html#update, including update-as-create with the client's id
// and If-Match (https://hl7.org/fhir/R4/http.html#concurrency). Unchanged content makes no version.
// Only the organisation that contributed a resource may change it (README, the access model:
// ownership); the writer checks that inside the write transaction (403, audited as denied).
//
// Conditional update (PUT [type]?criteria, https://hl7.org/fhir/R4/http.html#cond-update): the
// writer runs the criteria inside the write transaction. No match: create (with the body's id if it
// has one, else a new one); one: update it (a body id must be the match's, else 400); several: 412.
// As for conditional create, only resources the caller may see count, and none is revealed.
#include "interactions/interactions.hpp"
#include "interactions/write.hpp"
#include "interactions/binary.hpp"

#include "http/error_response.hpp"

namespace caregate::interactions {

namespace detail {

using fhir::category;
using fhir::error;

fhir::result<planned_write> plan_update(context& ctx) {
    const bool conditional = ctx.where.id.empty();
    const criteria_list criteria = conditional ? route_criteria(ctx) : criteria_list{};
    if (!conditional)
        if (auto ok = ctx.only_params({}); !ok)
            return ok.failure();
    if (auto ok = check_may_ever(ctx, access::action::update); !ok)
        return ok.failure();
    std::optional<fhir::search_query> query;
    if (conditional) {
        auto parsed = parse_criteria(ctx, criteria);
        if (!parsed)
            return std::move(parsed).failure();
        query = std::move(parsed.value());
    }
    auto prepared = prepare_body(ctx);
    if (!prepared)
        return std::move(prepared).failure();
    const std::string& type = ctx.where.type;
    if (!conditional) {
        if (prepared->id.empty())
            return error::make(category::malformed, "required", "an update needs the resource's id in the body", type + ".id");
        if (prepared->id != ctx.where.id)
            return error::make(category::malformed, "invalid", "the id in the body differs from the id in the URL", type + ".id");
    }
    // A Patient's id is its NHS number, whichever way it is addressed.
    const std::string id = !conditional          ? ctx.where.id
                            : !prepared->id.empty() ? prepared->id
                            : type == "Patient"     ? prepared->nhs_number
                                                    : std::string();
    if (type == "Patient" && prepared->nhs_number != id)
        return error::make(category::invalid, "invariant", "a Patient's id must be the NHS number in its identifier",
                           "Patient.identifier");
    auto expected = if_match(ctx);
    if (!expected)
        return std::move(expected).failure();

    // Changing what exists needs it visible (else 404, as if absent). A conditional update's matches
    // are only those the caller may see (the writer's search); the id a body names is checked here,
    // as it may be written to when nothing matches. Ownership is the writer's check, for both.
    std::optional<storage::stored_version> target;
    if (!id.empty()) {
        auto found = check_target(ctx, id, "update");
        if (!found)
            return std::move(found).failure();
        target = std::move(found.value());
    }
    // The marks follow what is changed (prepare_content): the ICS's services correcting a citizen's
    // contribution keep it marked as one. Known only now that the body has named the id.
    if (target && contribution_of(ctx, &*target) != contribution_of(ctx, nullptr)) {
        prepared = prepare_body(ctx, &*target);
        if (!prepared)
            return std::move(prepared).failure();
    }
    if (auto allowed = check_write(ctx, access::action::update, *prepared); !allowed)
        return allowed.failure();

    planned_write plan;
    plan.interaction = write_interaction::update;
    storage::write_request& write = plan.write;
    write.kind = storage::write_kind::update;
    write.type = type;
    write.id = id.empty() ? random_uuid() : id;
    write.if_match = *expected;
    write.content = std::move(prepared->content);
    write.citizens = std::move(prepared->citizens);
    write.access = std::move(prepared->access);
    take_binary_bytes(ctx, *prepared, write);
    std::string detail;
    if (query) {
        detail = "criteria: " + criteria_text(*query);
        auto condition = make_condition(ctx, std::move(*query));
        condition->client_id = id;
        write.condition = std::move(condition);
    }
    sign_write(ctx, write, "update", {}, std::move(detail));
    return plan;
}

} // namespace detail

void update(context& ctx, http::responder& done) {
    detail::submit_and_answer(ctx, detail::plan_update(ctx), done);
}

} // namespace caregate::interactions
