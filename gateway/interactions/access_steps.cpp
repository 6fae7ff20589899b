// Access steps shared by the interactions; see access_steps.hpp.
#include "interactions/access_steps.hpp"

#include "http/error_response.hpp"

#include <algorithm>
#include <set>

namespace caregate::interactions::detail {

using fhir::category;
using fhir::error;

error not_found(std::string_view type, std::string_view id) {
    return error::make(category::not_found, "not-found",
                       "there is no " + std::string(type) + " with that id here, or you may not see it");
}

bool check_permitted(context& ctx, access::action act, http::responder& done) {
    if (ctx.guard->rules().may_ever(*ctx.who, act, ctx.where.type))
        return true;
    audit_access(ctx, std::string(access::action_name(act)), {}, "denied",
                 "the role may not " + std::string(access::action_name(act)) + " " + ctx.where.type);
    done(http::error_response(error::make(category::forbidden, "forbidden",
                                          "your role may not " + std::string(access::action_name(act)) + " " +
                                              ctx.where.type + " resources")));
    return false;
}

fhir::result<storage::stored_version> visible_current(context& ctx, std::string_view type, std::string_view id,
                                                      bool may_break_glass) {
    return visible_current(ctx, type, id, ctx.store.read_current(type, id), may_break_glass);
}

fhir::result<storage::stored_version> visible_current(context& ctx, std::string_view type, std::string_view id,
                                                      fhir::result<storage::stored_version> current,
                                                      bool may_break_glass) {
    if (!current) {
        if (current.failure().kind == category::not_found)
            return not_found(type, id);
        return std::move(current).failure();
    }
    if (current->deleted) {
        // Say "deleted" only to a caller who could see what was deleted.
        if (current->version_id > 1) {
            auto before = ctx.store.vread(type, id, current->version_id - 1);
            if (before) {
                auto visible = ctx.guard->can_read(*ctx.who, *before, ctx.request_id, ctx.now, ctx.views, may_break_glass);
                if (!visible)
                    return std::move(visible).failure();
                if (*visible)
                    return error::make(category::deleted, "deleted", std::string(type) + " was deleted");
            }
        }
        return not_found(type, id);
    }
    auto visible = ctx.guard->can_read(*ctx.who, *current, ctx.request_id, ctx.now, ctx.views, may_break_glass);
    if (!visible)
        return std::move(visible).failure();
    if (!*visible)
        return not_found(type, id);
    return current;
}

namespace {

/// The citizens an access to `v` concerns: its own; or, for a version that names none but points at
/// items (a Binary and its securityContext), those of the items it points at, as they are now: reading
/// a letter's bytes is reading the citizen's record, and goes into their access log.
std::vector<std::string> citizens_of(context& ctx, const storage::stored_version& v) {
    if (!v.citizens.empty() || !fhir::points_at_items(v.type))
        return v.citizens;
    std::vector<std::string> out;
    for (const std::string& target : fhir::item_targets(v.type, v.json)) {
        const auto slash = target.find('/');
        auto item = ctx.store.read_current(target.substr(0, slash), target.substr(slash + 1));
        if (!item)
            continue; // not held: nobody's record
        for (const std::string& citizen : item->citizens)
            if (std::find(out.begin(), out.end(), citizen) == out.end())
                out.push_back(citizen);
    }
    return out;
}

} // namespace

void audit_access(context& ctx, std::string action, const std::vector<const storage::stored_version*>& versions,
                  std::string outcome, std::string detail) {
    // One record per citizen, listing what of theirs was touched, so that each citizen's access log
    // is complete; resources of no citizen go into one record without one.
    std::map<std::string, std::set<std::string>> by_citizen;
    std::string type = ctx.where.type;
    // System-level accesses span types: their ids are written Type/id.
    for (const storage::stored_version* v : versions) {
        const std::string id = type.empty() ? v->type + "/" + v->id : v->id;
        const std::vector<std::string> citizens = citizens_of(ctx, *v);
        if (citizens.empty())
            by_citizen[""].insert(id);
        for (const std::string& nhs : citizens)
            by_citizen[nhs].insert(id);
    }
    if (by_citizen.empty())
        by_citizen[""].insert(ctx.where.id);
    std::vector<storage::audit_record> records;
    for (const auto& [nhs, ids] : by_citizen) {
        storage::audit_record record = access::guard::audit_for(*ctx.who, ctx.request_id, ctx.now, action);
        record.nhs_number = nhs;
        record.resource_type = type;
        for (const auto& id : ids)
            record.resource_ids += (record.resource_ids.empty() ? "" : " ") + id;
        record.outcome = outcome;
        record.detail = detail;
        records.push_back(std::move(record));
    }
    ctx.store.append_audit(std::move(records));
}

storage::audit_record write_audit(const context& ctx, std::string action, std::string_view type,
                                  std::string_view id, const std::vector<fhir::citizen_link>& citizens) {
    storage::audit_record record = access::guard::audit_for(*ctx.who, ctx.request_id, ctx.now, std::move(action));
    record.resource_type = std::string(type);
    record.resource_ids = std::string(id);
    if (!citizens.empty())
        record.nhs_number = citizens.front().nhs_number;
    else if (type == "Patient")
        record.nhs_number = std::string(id);
    return record;
}

} // namespace caregate::interactions::detail
