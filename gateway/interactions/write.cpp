// Shared steps of the write interactions; see write.hpp.
#include "interactions/write.hpp"

#include "interactions/access_steps.hpp"
#include "rest/error_response.hpp"

#include <algorithm>

namespace caregate::interactions::detail {

using fhir::category;
using fhir::error;

fhir::result<fhir::prepared_resource> prepare_body(const rest::context& ctx) {
    if (ctx.req.body.empty())
        return error::make(category::malformed, "required", "the request needs a resource in its body");
    return fhir::prepare_resource(ctx.req.body, ctx.where.type);
}

fhir::result<std::optional<std::int64_t>> if_match(const rest::context& ctx) {
    const std::string_view header = ctx.req.header("If-Match");
    if (header.empty())
        return std::optional<std::int64_t>{};
    auto version = rest::parse_etag(header);
    if (!version)
        return error::make(category::malformed, "value", "If-Match must be a version ETag such as W/\"1\"");
    return std::optional<std::int64_t>{*version};
}

fhir::status check_write(rest::context& ctx, access::action act, const fhir::prepared_resource& prepared) {
    const access::policy& rules = ctx.guard->rules();
    if (!rules.may(*ctx.who, act, ctx.where.type, prepared.access.facets))
        return error::make(category::forbidden, "forbidden",
                           "your role may not " + std::string(access::action_name(act)) + " this kind of " +
                               ctx.where.type);
    const std::string& ods = ctx.who->org->ods;
    const bool records_own_relationship =
        std::any_of(prepared.access.organisations.begin(), prepared.access.organisations.end(),
                    [&](const fhir::organisation_link& link) { return link.ods == ods && link.active; });
    error unknown;
    unknown.kind = category::invalid;
    for (const fhir::citizen_link& link : prepared.citizens) {
        auto view = ctx.guard->open_citizen(*ctx.who, link.nhs_number, ctx.request_id, ctx.now, ctx.views, true);
        if (!view)
            return std::move(view).failure();
        if (!view->open && !records_own_relationship)
            unknown.issues.push_back(
                {"error", "invalid", "the reference does not name a citizen held by this server", link.expression});
    }
    if (!unknown.issues.empty())
        return unknown;
    return {};
}

void submit_and_answer(rest::context& ctx, storage::write_request write, rest::responder& done,
                       std::string audit_citizen) {
    const bool is_remove = write.kind == storage::write_kind::remove;
    const rest::prefer_return how = ctx.prefer();
    write.writer = ctx.who->org->ods;
    write.any_owner = ctx.guard->rules().any_owner(*ctx.who);
    const char* action = is_remove ? "delete" : write.kind == storage::write_kind::create ? "create" : "update";
    write.audit = write_audit(ctx, action, write.type, write.id, write.citizens);
    if (!audit_citizen.empty())
        write.audit->nhs_number = std::move(audit_citizen);
    // The callback runs on the writer thread after the commit; it must not touch `ctx`.
    ctx.store.submit(std::move(write), [config = &ctx.config, how, is_remove,
                                        done = std::move(done)](fhir::result<storage::write_outcome> outcome) {
        if (!outcome)
            return done(rest::error_response(outcome.failure()));
        const storage::write_outcome& result = *outcome;
        if (is_remove) {
            rest::response out;
            if (how == rest::prefer_return::operation_outcome) {
                error note;
                note.issues.push_back({"information", "informational",
                                       result.removed_nothing ? "there was nothing to delete" : "deleted", {}});
                out.status = 200;
                out.set("Content-Type", "application/fhir+json; charset=utf-8");
                out.body = fhir::operation_outcome_json(note);
            } else {
                out.status = 204;
            }
            if (!result.removed_nothing)
                out.set("ETag", rest::etag(result.version.version_id));
            return done(std::move(out));
        }
        done(rest::version_response(*config, result.created ? 201 : 200, result.version, how, true));
    });
}

} // namespace caregate::interactions::detail
