// patch: https://hl7.org/fhir/R4/http.html#patch, with JSON Patch (application/json-patch+json,
// RFC 6902) or FHIRPath Patch (a Parameters resource, https://hl7.org/fhir/R4/fhirpatch.html), on an
// id or conditionally (PATCH [type]?criteria: none matches 404, several 412).
//
// A patch is computed on the current version as the caller may see it (404 when hidden or absent,
// 410 when deleted), and its result is then an update like any other: validated (422 when the patched
// resource is invalid; nothing changes), the id unchanged, a Patient's id still its NHS number, made
// only by the contributing organisation (the writer checks that in the write transaction: 403,
// audited as denied). The update is pinned to the version patched, so a patch is never applied to a
// version it was not computed on: a write that comes between is a 409 (or 412 when the client named
// the version with If-Match).
#include "interactions/interactions.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/write.hpp"

#include "fhir_model/patch.hpp"
#include "http/error_response.hpp"

namespace caregate::interactions {

namespace detail {

namespace {

using fhir::category;
using fhir::error;

enum class patch_format { json_patch, fhirpath_patch };

/// The patch format from Content-Type: JSON Patch, or a FHIRPath Patch Parameters resource in FHIR
/// JSON (also when no type is given, as JSON is the only format read); anything else 415.
fhir::result<patch_format> format_of(const http::request& req) {
    const std::string_view type = req.header("Content-Type");
    if (type.find("application/json-patch+json") != std::string_view::npos)
        return patch_format::json_patch;
    if (type.empty() || type.find("application/fhir+json") != std::string_view::npos ||
        type.find("application/json") != std::string_view::npos)
        return patch_format::fhirpath_patch;
    return error::make(category::unsupported_media_type, "not-supported",
                       "a PATCH body must be application/json-patch+json (JSON Patch) or application/fhir+json "
                       "(a FHIRPath Patch Parameters resource)");
}

/// The id of the one resource the criteria match among those the caller may see.
fhir::result<std::string> only_match(context& ctx, fhir::search_query query) {
    query.count = 2; // enough to tell one from several
    storage::search_request request;
    request.query = &query;
    request.visibility = ctx.guard->search_visibility(*ctx.who, ctx.now, ctx.views);
    auto page = ctx.store.search(request);
    if (!page)
        return std::move(page).failure();
    std::vector<const storage::stored_version*> matches;
    for (const storage::search_entry& entry : page->entries)
        if (!entry.include)
            matches.push_back(&entry.version);
    if (matches.empty()) {
        audit_access(ctx, "update", {}, "not-found", "conditional patch: " + criteria_text(query));
        return error::make(category::not_found, "not-found",
                           "no " + ctx.where.type + " matches the criteria, or you may not see it");
    }
    if (matches.size() > 1)
        return error::make(category::precondition_failed, "multiple-matches",
                           "the criteria match more than one " + ctx.where.type + "; a conditional patch changes exactly one");
    return matches.front()->id;
}

} // namespace

fhir::result<planned_write> plan_patch(context& ctx) {
    const bool conditional = ctx.where.id.empty();
    const criteria_list criteria = conditional ? route_criteria(ctx) : criteria_list{};
    if (!conditional)
        if (auto ok = ctx.only_params({}); !ok)
            return ok.failure();
    if (auto ok = check_may_ever(ctx, access::action::update); !ok)
        return ok.failure();
    auto format = format_of(ctx.req);
    if (!format)
        return std::move(format).failure();
    if (ctx.req.body.empty())
        return error::make(category::malformed, "required", "a PATCH needs a patch document in its body");
    auto expected = if_match(ctx);
    if (!expected)
        return std::move(expected).failure();
    const std::string& type = ctx.where.type;

    std::string id = ctx.where.id;
    std::string detail = *format == patch_format::json_patch ? "JSON Patch" : "FHIRPath Patch";
    if (conditional) {
        auto query = parse_criteria(ctx, criteria);
        if (!query)
            return std::move(query).failure();
        detail += "; criteria: " + criteria_text(*query);
        auto found = only_match(ctx, std::move(query.value()));
        if (!found)
            return std::move(found).failure();
        id = std::move(found.value());
    }
    auto current = visible_current(ctx, type, id);
    if (!current) {
        if (current.failure().kind == category::not_found)
            audit_access(ctx, "update", {}, "not-found");
        return std::move(current).failure();
    }
    if (*expected && **expected != current->version_id)
        return error::make(category::precondition_failed, "conflict",
                           "If-Match names version " + std::to_string(**expected) + ", but the current version is " +
                               std::to_string(current->version_id));

    auto patched = *format == patch_format::json_patch ? fhir::apply_json_patch(current->json, ctx.req.body)
                                                       : fhir::apply_fhirpath_patch(current->json, ctx.req.body);
    if (!patched)
        return std::move(patched).failure();
    // The result is an update body like any other (a contribution marked as one again).
    auto prepared = prepare_content(ctx, *patched, &*current);
    if (!prepared) {
        error failure = std::move(prepared).failure();
        failure.kind = category::invalid; // the patch applied, but its result is not a valid resource
        failure.issues.insert(failure.issues.begin(),
                              {"error", "processing", "the patched resource is not valid; nothing was changed", {}});
        return failure;
    }
    if (prepared->id != id)
        return error::make(category::invalid, "invariant", "a patch must not change or remove the resource's id",
                           type + ".id");
    if (type == "Patient" && prepared->nhs_number != id)
        return error::make(category::invalid, "invariant", "a Patient's id must be the NHS number in its identifier",
                           "Patient.identifier");
    if (auto allowed = check_write(ctx, access::action::update, *prepared); !allowed)
        return allowed.failure();

    planned_write plan;
    plan.interaction = write_interaction::patch;
    plan.pinned_by_server = !expected->has_value();
    storage::write_request& write = plan.write;
    write.kind = storage::write_kind::update;
    write.type = type;
    write.id = id;
    write.if_match = current->version_id;
    write.content = std::move(prepared->content);
    write.citizens = std::move(prepared->citizens);
    write.access = std::move(prepared->access);
    sign_write(ctx, write, "update", {}, "patch (" + detail + ")");
    return plan;
}

} // namespace detail

void patch(context& ctx, http::responder& done) {
    detail::submit_and_answer(ctx, detail::plan_patch(ctx), done);
}

} // namespace caregate::interactions
