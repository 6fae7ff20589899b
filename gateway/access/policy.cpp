// Parsing the policy and organisations files, and the decisions that need only the policy.
#include "access/policy.hpp"

#include "fhir_model/resource.hpp"

#include <algorithm>
#include <stdexcept>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace caregate::access {

namespace {

using rapidjson::Value;

bool contains(const std::vector<std::string>& items, std::string_view item) {
    return std::find(items.begin(), items.end(), item) != items.end();
}

rapidjson::Document parse_document(std::string_view json, const char* what) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError())
        throw std::invalid_argument(std::string(what) + " is not valid JSON: " +
                                    rapidjson::GetParseError_En(doc.GetParseError()) + " at byte " +
                                    std::to_string(doc.GetErrorOffset()));
    return doc;
}

std::string text(const Value& object, const char* key, const std::string& where, bool required = true) {
    auto member = object.FindMember(key);
    if (member == object.MemberEnd()) {
        if (required)
            throw std::invalid_argument(where + " needs \"" + key + "\"");
        return {};
    }
    if (!member->value.IsString())
        throw std::invalid_argument(where + ": \"" + key + "\" must be a string");
    return member->value.GetString();
}

std::vector<std::string> texts(const Value& object, const char* key, const std::string& where) {
    std::vector<std::string> out;
    auto member = object.FindMember(key);
    if (member == object.MemberEnd())
        return out;
    if (!member->value.IsArray())
        throw std::invalid_argument(where + ": \"" + key + "\" must be an array of strings");
    for (const auto& item : member->value.GetArray()) {
        if (!item.IsString())
            throw std::invalid_argument(where + ": \"" + key + "\" must be an array of strings");
        out.emplace_back(item.GetString());
    }
    return out;
}

bool flag(const Value& object, const char* key, const std::string& where) {
    auto member = object.FindMember(key);
    if (member == object.MemberEnd())
        return false;
    if (!member->value.IsBool())
        throw std::invalid_argument(where + ": \"" + key + "\" must be true or false");
    return member->value.GetBool();
}

std::int64_t positive_number(const Value& object, const char* key, const std::string& where) {
    auto member = object.FindMember(key);
    if (member == object.MemberEnd() || !member->value.IsInt64() || member->value.GetInt64() <= 0)
        throw std::invalid_argument(where + " needs \"" + key + "\", a whole number above 0");
    return member->value.GetInt64();
}

const Value& object_member(const Value& object, const char* key, const std::string& where) {
    auto member = object.FindMember(key);
    if (member == object.MemberEnd() || !member->value.IsObject())
        throw std::invalid_argument(where + " needs \"" + key + "\", an object");
    return member->value;
}

const std::vector<std::string> known_sectors{"gp", "acute", "community", "mental-health", "adult-social-care", "ics"};

bool grant_matches(const type_grant& grant, std::string_view type, const std::vector<std::string>* facets) {
    // "*" is every type of the record; the audit trail (AuditEvent) is granted only by name.
    if (grant.type == "*" ? type == "AuditEvent" : grant.type != type)
        return false;
    return facets == nullptr || fhir::facets_satisfy(grant.where, *facets);
}

/// A `where` entry names an element, a code system and a code: "element=system|code". Anything else
/// (a bare code, as older policies wrote) would match no facet and silently narrow the grant.
void check_where(const std::vector<std::string>& where, const std::string& at) {
    for (const std::string& facet : where) {
        const auto equals = facet.find('=');
        const auto bar = facet.find('|', equals == std::string::npos ? 0 : equals);
        if (equals == std::string::npos || equals == 0 || bar == std::string::npos || bar == equals + 1 ||
            bar + 1 == facet.size())
            throw std::invalid_argument(at + ": \"" + facet +
                                        "\" in \"where\" must be element=system|code, e.g. "
                                        "category=http://terminology.hl7.org/CodeSystem/observation-category|survey");
    }
}

} // namespace

std::string_view action_name(action act) noexcept {
    switch (act) {
    case action::read: return "read";
    case action::create: return "create";
    case action::update: return "update";
    case action::delete_: return "delete";
    }
    return "";
}

organisation_register organisation_register::parse(std::string_view json) {
    auto doc = parse_document(json, "the organisations file");
    if (!doc.IsArray())
        throw std::invalid_argument("the organisations file must be a JSON array of {\"ods\", \"name\", \"sector\"}");
    organisation_register out;
    for (const auto& item : doc.GetArray()) {
        const std::string where = "organisation #" + std::to_string(out.organisations_.size() + 1);
        if (!item.IsObject())
            throw std::invalid_argument(where + " must be an object");
        organisation org{text(item, "ods", where), text(item, "name", where), text(item, "sector", where)};
        if (!contains(known_sectors, org.sector))
            throw std::invalid_argument(where + ": sector must be one of gp, acute, community, mental-health, "
                                                "adult-social-care, ics");
        if (out.find(org.ods))
            throw std::invalid_argument(where + ": the ODS code " + org.ods + " is listed twice");
        out.organisations_.push_back(std::move(org));
    }
    return out;
}

const organisation* organisation_register::find(std::string_view ods) const noexcept {
    for (const auto& org : organisations_)
        if (org.ods == ods)
            return &org;
    return nullptr;
}

bool profile::in_group(std::string_view group) const noexcept { return contains(role_groups, group); }

bool profile::break_glass_requested() const noexcept {
    return caller && caller->purpose == "ETREAT" && !caller->reason.empty();
}

namespace {

/// The read/create/update/delete lists of a rule (type names or {"type", "where"}).
void read_grants(const Value& item, const std::string& where, rule& r) {
    for (std::size_t a = 0; a < action_count; ++a) {
        const char* key = action_name(static_cast<action>(a)).data();
        auto list = item.FindMember(key);
        if (list == item.MemberEnd())
            continue;
        if (!list->value.IsArray())
            throw std::invalid_argument(where + ": \"" + key + "\" must be an array");
        for (const auto& grant : list->value.GetArray()) {
            if (grant.IsString())
                r.grants[a].push_back({grant.GetString(), {}});
            else if (grant.IsObject()) {
                r.grants[a].push_back({text(grant, "type", where + " " + key), texts(grant, "where", where + " " + key)});
                check_where(r.grants[a].back().where, where + " " + key);
            }
            else
                throw std::invalid_argument(where + ": \"" + key + "\" holds type names or {\"type\", \"where\"}");
        }
    }
}

/// A carer's grant to write (patients.proxies.scopes.X.create, update, delete) stays inside what the
/// citizen may write themselves (`citizens`, patients.verified's list for the same action): a type
/// named there, as narrow or narrower. Never the citizen's choices about who sees their record
/// (Consent) or who acts for them (RelatedPerson): those are theirs alone, whatever a grant says.
void check_carer_writes(const type_grant& grant, const std::vector<type_grant>& citizens, const std::string& where) {
    if (grant.type == "Consent" || grant.type == "RelatedPerson" || grant.type == "*")
        throw std::invalid_argument(where + ": a carer may not write " +
                                    (grant.type == "*" ? std::string("every type") : grant.type) +
                                    " (sharing choices and carers are the citizen's own; name each type a carer writes)");
    const bool within = std::any_of(citizens.begin(), citizens.end(), [&](const type_grant& own) {
        if (own.type != grant.type && own.type != "*")
            return false;
        if (own.where.empty())
            return true;
        return !grant.where.empty() && std::all_of(grant.where.begin(), grant.where.end(), [&](const std::string& w) {
            return contains(own.where, w);
        });
    });
    if (!within)
        throw std::invalid_argument(where + ": a carer may write only what the citizen may (patients.verified), and " +
                                    grant.type + " with these conditions is not among it");
}

} // namespace

policy policy::parse(std::string_view json) {
    auto doc = parse_document(json, "the policy file");
    if (!doc.IsObject())
        throw std::invalid_argument("the policy file must be a JSON object");
    policy out;

    const Value& groups = object_member(doc, "role_groups", "the policy");
    for (const auto& group : groups.GetObject()) {
        const std::string where = std::string("role group ") + group.name.GetString();
        if (!group.value.IsObject())
            throw std::invalid_argument(where + " must be an object");
        out.groups_.push_back({group.name.GetString(), texts(group.value, "roles", where)});
    }
    auto known_group = [&](const std::string& name) {
        return std::any_of(out.groups_.begin(), out.groups_.end(), [&](const role_group& g) { return g.name == name; });
    };
    auto check_groups = [&](const std::vector<std::string>& names, const std::string& where) {
        for (const auto& name : names)
            if (!known_group(name))
                throw std::invalid_argument(where + " names the role group '" + name + "', which is not defined");
    };

    out.recent_micros_ = positive_number(object_member(doc, "relationship", "the policy"), "recent_days",
                                         "the policy's relationship") * 86'400'000'000LL;
    const Value& glass = object_member(doc, "break_glass", "the policy");
    out.break_glass_micros_ = positive_number(glass, "minutes", "the policy's break_glass") * 60'000'000LL;
    out.break_glass_groups_ = texts(glass, "role_groups", "the policy's break_glass");
    check_groups(out.break_glass_groups_, "break_glass");
    out.break_glass_overrides_objection_ = flag(glass, "overrides_objection", "the policy's break_glass");

    const Value& labels = object_member(doc, "labels", "the policy");
    const Value& restricted = object_member(labels, "restricted", "the policy's labels");
    out.restricted_label_ = text(restricted, "label", "labels.restricted");
    out.restricted_groups_ = texts(restricted, "role_groups", "labels.restricted");
    check_groups(out.restricted_groups_, "labels.restricted");
    out.very_restricted_label_ = text(object_member(labels, "very_restricted", "the policy's labels"), "label",
                                      "labels.very_restricted");

    // The patient-facing endpoint: optional; without it no citizen may do anything.
    if (auto patients = doc.FindMember("patients"); patients != doc.MemberEnd()) {
        const Value& section = patients->value;
        if (!section.IsObject() || text(section, "comment", "the policy's patients", false).empty())
            throw std::invalid_argument("the policy's \"patients\" must be an object with a \"comment\"");
        out.patient_hidden_labels_ = texts(section, "hidden_labels", "the policy's patients");
        auto grants_of = [&](const char* key, rule& into) {
            const std::string where = std::string("patients.") + key;
            const Value& level = object_member(section, key, "the policy's patients");
            if (text(level, "comment", where, false).empty())
                throw std::invalid_argument(where + " needs a \"comment\" saying why it exists");
            read_grants(level, where, into);
        };
        grants_of("verified", out.patients_verified_);
        grants_of("demographics", out.patients_demographics_);
        if (auto proxies = section.FindMember("proxies"); proxies != section.MemberEnd()) {
            const Value& p = proxies->value;
            if (!p.IsObject() || text(p, "comment", "patients.proxies", false).empty())
                throw std::invalid_argument("the policy's patients.proxies must be an object with a \"comment\"");
            out.proxy_bases_ = texts(p, "bases", "patients.proxies");
            const Value& scopes = object_member(p, "scopes", "patients.proxies");
            for (const auto& scope : scopes.GetObject()) {
                const std::string where = "patients.proxies.scopes." + std::string(scope.name.GetString());
                if (!scope.value.IsObject() || text(scope.value, "comment", where, false).empty())
                    throw std::invalid_argument(where + " needs a \"comment\" saying why it exists");
                rule r;
                read_grants(scope.value, where, r);
                for (std::size_t a = 1; a < action_count; ++a)
                    for (const type_grant& grant : r.grants[a])
                        check_carer_writes(grant, out.patients_verified_.grants[a],
                                           where + "." + std::string(action_name(static_cast<action>(a))));
                out.proxy_scopes_.emplace_back(scope.name.GetString(), std::move(r));
            }
        }
    }

    // Population health exports: optional; without the section nobody may export.
    if (auto exports = doc.FindMember("exports"); exports != doc.MemberEnd()) {
        const Value& section = exports->value;
        if (!section.IsObject() || text(section, "comment", "the policy's exports", false).empty())
            throw std::invalid_argument("the policy's \"exports\" must be an object with a \"comment\"");
        for (const export_kind kind : {export_kind::identifiable, export_kind::pseudonymised}) {
            const std::string key(export_kind_name(kind));
            auto grants = section.FindMember(key.c_str());
            if (grants == section.MemberEnd())
                continue;
            if (!grants->value.IsArray())
                throw std::invalid_argument("exports." + key + " must be an array");
            for (const auto& item : grants->value.GetArray()) {
                const std::string where = "exports." + key + " #" + std::to_string(out.export_grants_.size() + 1);
                if (!item.IsObject() || text(item, "comment", where, false).empty())
                    throw std::invalid_argument(where + " must be an object with a \"comment\" saying why it exists");
                export_grant grant{kind, texts(item, "sectors", where), texts(item, "role_groups", where), {}};
                for (const auto& sector : grant.sectors)
                    if (!contains(known_sectors, sector))
                        throw std::invalid_argument(where + " names the unknown sector '" + sector + "'");
                check_groups(grant.role_groups, where);
                if (kind == export_kind::pseudonymised) {
                    read_grants(item, where, grant.reading);
                    for (std::size_t a = 1; a < action_count; ++a)
                        if (!grant.reading.grants[a].empty())
                            throw std::invalid_argument(where + ": an export grant reads only");
                    grant.reading.all_citizens = true;
                } else if (item.HasMember("read")) {
                    throw std::invalid_argument(where + ": an identifiable export reads as its requester's rules "
                                                        "allow; it has no \"read\" of its own");
                }
                out.export_grants_.push_back(std::move(grant));
            }
        }
    }

    auto rules = doc.FindMember("rules");
    if (rules == doc.MemberEnd() || !rules->value.IsArray())
        throw std::invalid_argument("the policy needs \"rules\", an array");
    for (const auto& item : rules->value.GetArray()) {
        const std::string where = "rule #" + std::to_string(out.rules_.size() + 1);
        if (!item.IsObject())
            throw std::invalid_argument(where + " must be an object");
        if (text(item, "comment", where, false).empty())
            throw std::invalid_argument(where + " needs a \"comment\" saying why it exists");
        rule r;
        r.sectors = texts(item, "sectors", where);
        for (const auto& sector : r.sectors)
            if (!contains(known_sectors, sector))
                throw std::invalid_argument(where + " names the unknown sector '" + sector + "'");
        r.role_groups = texts(item, "role_groups", where);
        check_groups(r.role_groups, where);
        read_grants(item, where, r);
        r.all_citizens = flag(item, "all_citizens", where);
        r.any_owner = flag(item, "any_owner", where);
        r.erase_record = flag(item, "erase_record", where);
        out.rules_.push_back(std::move(r));
    }
    return out;
}

profile policy::profile_for(std::shared_ptr<const auth::caller> caller, const organisation& org) const {
    profile out;
    out.org = &org;
    for (const auto& group : groups_)
        if (contains(group.roles, caller->role))
            out.role_groups.push_back(group.name);
    for (const auto& r : rules_) {
        const bool sector = contains(r.sectors, org.sector);
        const bool role = std::any_of(r.role_groups.begin(), r.role_groups.end(),
                                      [&](const std::string& g) { return out.in_group(g); });
        if (sector && role)
            out.rules.push_back(&r);
    }
    out.caller = std::move(caller);
    return out;
}

profile policy::citizen_profile(std::shared_ptr<const auth::caller> caller) const {
    profile out;
    out.citizen = caller->nhs_number;
    out.citizen_org = std::make_shared<const organisation>(
        organisation{"patient:" + caller->nhs_number, "the citizen (patient-facing endpoint)", "citizen"});
    out.org = out.citizen_org.get();
    if (caller->proofing_level == "P9")
        out.rules.push_back(&patients_verified_);
    else if (caller->proofing_level == "P5")
        out.rules.push_back(&patients_demographics_);
    out.caller = std::move(caller);
    return out;
}

std::optional<profile> policy::proxy_profile(std::shared_ptr<const auth::caller> caller, std::string citizen,
                                             std::string related_person, std::string_view scope,
                                             std::string_view basis) const {
    if (!contains(proxy_bases_, basis))
        return std::nullopt;
    const auto rank = proxy_scope_rank(scope);
    if (!rank)
        return std::nullopt;
    profile out;
    out.citizen = std::move(citizen);
    out.actor = caller->nhs_number;
    out.actor_related_person = std::move(related_person);
    out.proxy_scope = std::string(scope);
    out.proxy_basis = std::string(basis);
    out.citizen_org = std::make_shared<const organisation>(
        organisation{"patient:" + out.citizen + "/carer:" + out.actor,
                     "a carer acting for the citizen (patient-facing endpoint)", "citizen"});
    out.org = out.citizen_org.get();
    out.rules.push_back(&proxy_scopes_[*rank].second);
    out.caller = std::move(caller);
    return out;
}

std::optional<std::size_t> policy::proxy_scope_rank(std::string_view scope) const noexcept {
    for (std::size_t i = 0; i < proxy_scopes_.size(); ++i)
        if (proxy_scopes_[i].first == scope)
            return i;
    return std::nullopt;
}

std::vector<std::string> policy::patient_types(action act) const {
    std::vector<std::string> types;
    for (const auto& grant : patients_verified_.grants[static_cast<std::size_t>(act)]) {
        if (grant.type == "*") {
            for (std::string_view type : fhir::supported_types())
                if (type != "AuditEvent")
                    types.emplace_back(type);
        } else {
            types.push_back(grant.type);
        }
    }
    std::sort(types.begin(), types.end());
    types.erase(std::unique(types.begin(), types.end()), types.end());
    return types;
}

bool policy::scopes_permit(const profile& who, action act, std::string_view type) const noexcept {
    return scopes_allow(who.caller->scopes, who.caller->scope_claimed, act, type, who.is_citizen() ? "patient" : "user");
}

bool policy::may_ever(const profile& who, action act, std::string_view type) const noexcept {
    if (!scopes_permit(who, act, type))
        return false;
    for (const rule* r : who.rules)
        for (const auto& grant : r->grants[static_cast<std::size_t>(act)])
            if (grant_matches(grant, type, nullptr))
                return true;
    return false;
}

bool policy::may(const profile& who, action act, std::string_view type,
                 const std::vector<std::string>& facets) const noexcept {
    if (!scopes_permit(who, act, type))
        return false;
    for (const rule* r : who.rules)
        for (const auto& grant : r->grants[static_cast<std::size_t>(act)])
            if (grant_matches(grant, type, &facets))
                return true;
    return false;
}

bool policy::all_citizens(const profile& who) const noexcept {
    return std::any_of(who.rules.begin(), who.rules.end(), [](const rule* r) { return r->all_citizens; });
}

bool policy::any_owner(const profile& who) const noexcept {
    return std::any_of(who.rules.begin(), who.rules.end(), [](const rule* r) { return r->any_owner; });
}

bool policy::erase_record(const profile& who) const noexcept {
    return std::any_of(who.rules.begin(), who.rules.end(), [](const rule* r) { return r->erase_record; });
}

policy::read_scope policy::read_scope_for(const profile& who, std::string_view type) const {
    return scope_for(who, action::read, type);
}

policy::read_scope policy::scope_for(const profile& who, action act, std::string_view type) const {
    read_scope scope;
    if (!scopes_permit(who, act, type))
        return scope;
    for (const rule* r : who.rules)
        for (const auto& grant : r->grants[static_cast<std::size_t>(act)]) {
            if (!grant_matches(grant, type, nullptr))
                continue;
            scope.any = true;
            if (grant.where.empty())
                scope.whole = true;
            else if (std::find(scope.parts.begin(), scope.parts.end(), grant.where) == scope.parts.end())
                scope.parts.push_back(grant.where); // grants are alternatives: never merged into one
        }
    if (scope.whole)
        scope.parts.clear();
    return scope;
}

std::vector<std::string> policy::hidden_labels(const profile& who) const {
    if (who.is_citizen())
        return patient_hidden_labels_;
    const bool restricted_allowed = std::any_of(restricted_groups_.begin(), restricted_groups_.end(),
                                                [&](const std::string& g) { return who.in_group(g); });
    if (restricted_allowed || restricted_label_.empty())
        return {};
    return {restricted_label_};
}

std::vector<std::string> policy::owner_only_labels() const {
    if (very_restricted_label_.empty())
        return {};
    return {very_restricted_label_};
}

std::string_view export_kind_name(export_kind kind) noexcept {
    return kind == export_kind::identifiable ? "identifiable" : "pseudonymised";
}

bool policy::export_grant::matches(const profile& who) const noexcept {
    if (who.is_citizen() || who.org == nullptr)
        return false;
    return contains(sectors, who.org->sector) &&
           std::any_of(role_groups.begin(), role_groups.end(), [&](const std::string& g) { return who.in_group(g); });
}

std::optional<export_kind> policy::export_kind_for(const profile& who) const noexcept {
    std::optional<export_kind> found;
    for (const export_grant& grant : export_grants_)
        if (grant.matches(who) && (!found || grant.kind == export_kind::identifiable))
            found = grant.kind;
    return found;
}

profile policy::export_profile(const profile& who, export_kind kind) const {
    if (kind == export_kind::identifiable)
        return who;
    profile reading = who;
    reading.rules.clear();
    for (const export_grant& grant : export_grants_)
        if (grant.kind == kind && grant.matches(who))
            reading.rules.push_back(&grant.reading);
    return reading;
}

bool policy::break_glass_allowed(const profile& who) const noexcept {
    return std::any_of(break_glass_groups_.begin(), break_glass_groups_.end(),
                       [&](const std::string& g) { return who.in_group(g); });
}

bool scopes_allow(const std::vector<std::string>& scopes, bool claimed, action act, std::string_view type,
                  std::string_view context) noexcept {
    const bool patient = context == "patient";
    if (!claimed)
        return !patient; // a citizen's app gets only what its scopes name

    // SMART v2 permission letters for the action; v1 read/write words.
    const char letter = act == action::read ? 'r' : act == action::create ? 'c' : act == action::update ? 'u' : 'd';
    const bool reading = act == action::read;
    for (std::string_view scope : scopes) {
        if (patient ? !scope.starts_with("patient/") : !scope.starts_with("user/") && !scope.starts_with("system/"))
            continue;
        scope.remove_prefix(scope.find('/') + 1);
        const auto dot = scope.find('.');
        if (dot == std::string_view::npos)
            continue;
        const std::string_view scope_type = scope.substr(0, dot);
        std::string_view permissions = scope.substr(dot + 1);
        if (auto query = permissions.find('?'); query != std::string_view::npos)
            continue; // v2 scopes narrowed by a query are not supported: they grant nothing here
        if (scope_type != "*" && scope_type != type)
            continue;
        if (permissions == "*" || (permissions == "read" && reading) || (permissions == "write" && !reading))
            return true;
        if (permissions.find_first_not_of("cruds") == std::string_view::npos && permissions.find(letter) != std::string_view::npos)
            return true;
    }
    return false;
}

} // namespace caregate::access
