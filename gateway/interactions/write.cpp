// Shared steps of the write interactions (write.hpp), and the answer to a planned write
// (write_plan.hpp).
#include "fhir_model/binary.hpp"
#include "interactions/write.hpp"
#include "interactions/binary.hpp"

#include "interactions/access_steps.hpp"
#include "http/error_response.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <iterator>

namespace caregate::interactions::detail {

using fhir::category;
using fhir::error;

namespace {

/// Search result parameters (https://hl7.org/fhir/R4/search.html#return): they shape a search's
/// answer and mean nothing to a write.
constexpr std::string_view result_parameters[] = {"_sort",    "_count",     "_include", "_revinclude",   "_summary",
                                                  "_elements", "_total",    "_contained", "_containedType", "_cursor"};

bool is_result_parameter(std::string_view name) {
    return std::any_of(std::begin(result_parameters), std::end(result_parameters), [&](std::string_view p) {
        return name == p || (name.starts_with(p) && name.size() > p.size() && name[p.size()] == ':');
    });
}

/// The Provenance of a carer's write (carer_provenances): `target` "Type/id", `activity` a
/// v3-DataOperation code.
std::string carer_provenance_json(const std::string& target, std::string_view activity, const std::string& recorded,
                                  const std::string& related_person, const std::string& citizen) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    auto text = [&](const char* key, std::string_view value) {
        out.Key(key);
        out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    };
    auto reference = [&](const char* key, const std::string& value) {
        out.Key(key);
        out.StartObject();
        text("reference", value);
        out.EndObject();
    };
    auto codeable = [&](const char* key, std::string_view system, std::string_view code) {
        out.Key(key);
        out.StartObject();
        out.Key("coding");
        out.StartArray();
        out.StartObject();
        text("system", system);
        text("code", code);
        out.EndObject();
        out.EndArray();
        out.EndObject();
    };
    out.StartObject();
    text("resourceType", "Provenance");
    out.Key("target");
    out.StartArray();
    out.StartObject();
    text("reference", target);
    out.EndObject();
    out.EndArray();
    text("recorded", recorded);
    codeable("activity", "http://terminology.hl7.org/CodeSystem/v3-DataOperation", activity);
    out.Key("agent");
    out.StartArray();
    out.StartObject();
    codeable("type", "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author");
    reference("who", "RelatedPerson/" + related_person);
    reference("onBehalfOf", "Patient/" + citizen);
    out.EndObject();
    out.EndArray();
    out.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

http::response delete_response(const planned_write& plan, const storage::write_outcome& outcome,
                               prefer_return how) {
    const std::size_t removed = (outcome.removed_nothing ? 0 : 1) + outcome.also_removed.size();
    std::string said;
    if (removed == 0)
        said = plan.write.condition ? "no resource matched the criteria: there was nothing to delete"
                                    : "there was nothing to delete";
    else if (plan.write.erase_record)
        said = "the citizen's record was erased: the Patient and " + std::to_string(outcome.also_removed.size()) +
               " resources linked to it were deleted";
    else if (removed == 1)
        said = "deleted";
    else
        said = "deleted " + std::to_string(removed) + " resources that matched the criteria";
    http::response out;
    if (how == prefer_return::operation_outcome) {
        error note;
        note.issues.push_back({"information", "informational", said, {}});
        out.status = 200;
        out.set("Content-Type", "application/fhir+json; charset=utf-8");
        out.body = fhir::operation_outcome_json(note);
    } else {
        out.status = 204;
    }
    // The ETag of the deletion names one resource's version: not given for several.
    if (!outcome.removed_nothing && (outcome.also_removed.empty() || plan.write.erase_record))
        out.set("ETag", etag(outcome.version.version_id));
    return out;
}

} // namespace

fhir::result<fhir::prepared_resource> prepare_body(const context& ctx, const storage::stored_version* changing) {
    if (is_raw_binary_upload(ctx))
        return prepare_raw_binary(ctx, changing);
    if (ctx.req.body.empty())
        return error::make(category::malformed, "required", "the request needs a resource in its body");
    return prepare_content(ctx, ctx.req.body, changing);
}

fhir::contributed_by contribution_of(const context& ctx, const storage::stored_version* changing) {
    if (ctx.who->is_proxy())
        return fhir::contributed_by::carer;
    if (ctx.who->is_citizen())
        return fhir::contributed_by::patient;
    // Citizens own what they contribute (organisation patient:{nhs}) and carers what they contribute
    // for them (patient:{nhs}/carer:{nhs}: access::profile::citizen_org), so a version owned so is
    // one the server marked.
    if (changing == nullptr || !changing->owner.starts_with("patient:"))
        return fhir::contributed_by::nobody;
    return changing->owner.find("/carer:") != std::string::npos ? fhir::contributed_by::carer
                                                                 : fhir::contributed_by::patient;
}

fhir::result<fhir::prepared_resource> prepare_content(const context& ctx, std::string_view text,
                                                      const storage::stored_version* changing) {
    // Every writer's content passes here: a professional's system can neither pass its own writing off
    // as the patient's or a carer's nor strip the marks from a contribution it corrects.
    const fhir::provenance_marks marks{ctx.who->is_citizen() ? std::string_view(ctx.who->citizen) : std::string_view(),
                                       contribution_of(ctx, changing),
                                       ctx.who->is_proxy() ? std::string_view(ctx.who->actor_related_person)
                                                           : std::string_view()};
    return fhir::prepare_resource(text, ctx.where.type, marks);
}

fhir::result<std::vector<storage::write_request>> carer_provenances(context& ctx,
                                                                    const std::vector<storage::write_request>& writes) {
    std::vector<storage::write_request> out;
    if (!ctx.who->is_proxy())
        return out;
    for (const storage::write_request& write : writes) {
        if (write.condition)
            return error::make(category::malformed, "not-supported",
                               "a carer's write cannot be conditional: its Provenance names exactly what was written; "
                               "send the write by id");
        const char* activity = write.kind == storage::write_kind::create   ? "CREATE"
                               : write.kind == storage::write_kind::update ? "UPDATE"
                                                                           : "DELETE";
        const std::string json = carer_provenance_json(write.type + "/" + write.id, activity,
                                                       storage::store::format_instant(ctx.now),
                                                       ctx.who->actor_related_person, ctx.who->citizen);
        const fhir::provenance_marks marks{{}, fhir::contributed_by::carer, {}};
        auto prepared = fhir::prepare_resource(json, "Provenance", marks);
        if (!prepared)
            return std::move(prepared).failure();
        storage::write_request provenance;
        provenance.kind = storage::write_kind::create;
        provenance.type = "Provenance";
        provenance.id = random_uuid();
        provenance.id_is_new = true;
        provenance.fail_if_exists = true;
        provenance.content = std::move(prepared->content);
        provenance.citizens = std::move(prepared->citizens);
        provenance.access = std::move(prepared->access);
        sign_write(ctx, provenance, "create", ctx.who->citizen,
                   std::string("a carer's ") + activity + " of " + write.type + "/" + write.id);
        out.push_back(std::move(provenance));
    }
    return out;
}

fhir::result<std::optional<std::int64_t>> if_match(const context& ctx) {
    const std::string_view header = ctx.req.header("If-Match");
    if (header.empty())
        return std::optional<std::int64_t>{};
    auto version = parse_etag(header);
    if (!version)
        return error::make(category::malformed, "value", "If-Match must be a version ETag such as W/\"1\"");
    return std::optional<std::int64_t>{*version};
}

fhir::status check_may_ever(context& ctx, access::action act) {
    if (ctx.guard->rules().may_ever(*ctx.who, act, ctx.where.type))
        return {};
    const std::string name(access::action_name(act));
    audit_access(ctx, name, {}, "denied", "the role may not " + name + " " + ctx.where.type);
    return error::make(category::forbidden, "forbidden",
                       "your role may not " + name + " " + ctx.where.type + " resources");
}

fhir::status check_write(context& ctx, access::action act, const fhir::prepared_resource& prepared) {
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
    return check_targets(ctx, ctx.where.type, prepared.content);
}

fhir::status check_targets(context& ctx, std::string_view type, std::string_view content) {
    error unknown;
    unknown.kind = category::invalid;
    for (const std::string& item : fhir::item_targets(type, content)) {
        if (ctx.transaction_writes != nullptr && ctx.transaction_writes->contains(item))
            continue;
        const auto slash = item.find('/');
        const std::string item_type = item.substr(0, slash);
        bool seen = false;
        if (!fhir::points_at_items(item_type)) {
            auto visible = visible_current(ctx, item_type, item.substr(slash + 1), false);
            if (!visible && visible.failure().kind != category::not_found && visible.failure().kind != category::deleted)
                return std::move(visible).failure();
            seen = visible.ok();
        }
        if (!seen)
            unknown.issues.push_back({"error", "invalid",
                                      "the reference does not name a resource held by this server that a " +
                                          std::string(type) + " may point at",
                                      std::string(type) + (type == "Binary" ? ".securityContext" : ".target")});
    }
    if (!unknown.issues.empty())
        return unknown;
    return {};
}

fhir::result<std::optional<storage::stored_version>> check_target(context& ctx, std::string_view id,
                                                                  const char* action) {
    const std::string& type = ctx.where.type;
    auto current = ctx.store.read_current(type, id);
    if (!current) {
        if (current.failure().kind == category::not_found)
            return std::optional<storage::stored_version>{};
        return std::move(current).failure();
    }
    if (current->deleted)
        return std::optional<storage::stored_version>{};
    auto visible = visible_current(ctx, type, id, std::move(current));
    if (!visible) {
        audit_access(ctx, action, {}, "not-found");
        return std::move(visible).failure();
    }
    return std::optional<storage::stored_version>{std::move(visible.value())};
}

criteria_list route_criteria(const context& ctx, std::initializer_list<std::string_view> own) {
    criteria_list out;
    for (const auto& [key, value] : ctx.params) {
        if (key == "_format" || key == "_pretty" || std::find(own.begin(), own.end(), key) != own.end())
            continue;
        out.emplace_back(key, value);
    }
    return out;
}

fhir::result<fhir::search_query> parse_criteria(const context& ctx, const criteria_list& criteria) {
    for (const auto& [name, value] : criteria)
        if (is_result_parameter(name))
            return error::make(category::unsupported, "not-supported",
                               "the parameter '" + name +
                                   "' shapes a search's answer; a conditional interaction takes search criteria only",
                               name);
    auto parsed = fhir::parse_search_query({ctx.where.type}, criteria, fhir::search_query_options{});
    if (!parsed)
        return parsed;
    if (parsed->clauses.empty())
        return error::make(category::malformed, "required",
                           "a conditional interaction needs search criteria that select the resource, for example "
                           "identifier=system|value");
    return parsed;
}

std::shared_ptr<storage::write_condition> make_condition(context& ctx, fhir::search_query query) {
    auto condition = std::make_shared<storage::write_condition>();
    condition->query = std::move(query);
    condition->visibility = ctx.guard->search_visibility(*ctx.who, ctx.now, ctx.views);
    return condition;
}

std::string criteria_text(const fhir::search_query& query) {
    std::string text;
    for (const auto& [key, value] : query.applied)
        text += (text.empty() ? "" : "&") + key + "=" + value;
    return text;
}

void sign_write(context& ctx, storage::write_request& write, std::string action, std::string audit_citizen,
                std::string audit_detail) {
    write.writer = ctx.who->org->ods;
    write.any_owner = ctx.guard->rules().any_owner(*ctx.who);
    write.audit = write_audit(ctx, std::move(action), write.type, write.id, write.citizens);
    if (!audit_citizen.empty())
        write.audit->nhs_number = std::move(audit_citizen);
    write.audit->detail = std::move(audit_detail);
}

http::response write_response(const rest_config& config, const planned_write& plan,
                              const storage::write_outcome& outcome, prefer_return how) {
    if (plan.interaction == write_interaction::remove)
        return delete_response(plan, outcome, how);
    // A conditional create that matched answers with the match as it is: no new version.
    const unsigned status = outcome.created && !outcome.matched ? 201 : 200;
    if (how == prefer_return::representation && fhir::stored_in_parts(outcome.version.type)) {
        // Its bytes are not sent back: the client has them, and GET Binary/{id} reads them.
        storage::stored_version answered = outcome.version;
        auto shown = fhir::listed_form(answered.type, answered.json);
        if (!shown)
            return http::error_response(shown.failure());
        answered.json = std::move(*shown);
        return version_response(config, status, answered, how, true);
    }
    return version_response(config, status, outcome.version, how, true);
}

fhir::error write_failure(const planned_write& plan, fhir::error failure) {
    if (plan.interaction == write_interaction::patch && plan.pinned_by_server &&
        failure.kind == category::precondition_failed)
        return error::make(category::conflict, "conflict",
                           "the resource changed while the patch was being applied (another write came first); "
                           "nothing was changed: read it again and send the patch again");
    if (plan.interaction == write_interaction::remove && plan.write.type == "Patient" && !plan.write.erase_record &&
        failure.kind == category::conflict)
        failure.issues.push_back(
            {"information", "informational",
             "a citizen's Patient can be deleted only when their record holds no other items: delete those first "
             "(each by the organisation that contributed it), or, if the access policy lets your role erase a whole "
             "record, send the same DELETE with ?_cascade=delete, which deletes the Patient and every item linked to "
             "it in one transaction and is audited as an erasure",
             "Patient"});
    return failure;
}

void submit_and_answer(context& ctx, fhir::result<planned_write> plan, http::responder& done) {
    if (!plan)
        return done(http::error_response(plan.failure()));
    // What the answer needs of the plan; the content went to the store.
    planned_write shape = *plan;
    shape.write.content.clear();
    if (ctx.who->is_proxy()) {
        // A carer's write and its Provenance commit together or not at all.
        auto provenances = carer_provenances(ctx, {plan->write});
        if (!provenances)
            return done(http::error_response(provenances.failure()));
        std::vector<storage::write_request> writes{std::move(plan->write)};
        std::move(provenances->begin(), provenances->end(), std::back_inserter(writes));
        ctx.store.submit_transaction(
            std::move(writes), [config = &ctx.config, how = ctx.prefer(), shape = std::move(shape), done = std::move(done)](
                                   std::variant<std::vector<storage::write_outcome>, storage::transaction_failure> result) {
                if (auto* failed = std::get_if<storage::transaction_failure>(&result))
                    return done(http::error_response(failed->index == 0 ? write_failure(shape, std::move(failed->failure))
                                                                        : std::move(failed->failure)));
                done(write_response(*config, shape, std::get<std::vector<storage::write_outcome>>(result).front(), how));
            });
        return;
    }
    // The callback runs on the writer thread after the commit; it must not touch `ctx`.
    ctx.store.submit(std::move(plan->write),
                     [config = &ctx.config, how = ctx.prefer(), shape = std::move(shape),
                      done = std::move(done)](fhir::result<storage::write_outcome> outcome) {
                         if (!outcome)
                             return done(http::error_response(write_failure(shape, outcome.failure())));
                         done(write_response(*config, shape, *outcome, how));
                     });
}

} // namespace caregate::interactions::detail
