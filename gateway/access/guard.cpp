// Access decisions that need the store; see guard.hpp.
#include "access/guard.hpp"

#include "fhir_model/date_time.hpp"
#include "fhir_model/nhs_number.hpp"
#include "fhir_model/resource.hpp"
#include "fhir_model/search_query.hpp"
#include "storage/search.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>

namespace caregate::access {

namespace {

using fhir::category;
using fhir::error;

error unauthorised(std::string diagnostics) {
    return error::make(category::unauthorised, "login", std::move(diagnostics));
}

} // namespace

storage::timestamp now_micros() noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

guard::guard(const policy& rules, const organisation_register& organisations, const auth::token_verifier& tokens,
             storage::store& store)
    : policy_(rules), organisations_(organisations), tokens_(tokens), store_(store) {}

fhir::result<profile> guard::authenticate(const credentials& presented, std::int64_t now_seconds) const {
    std::string_view header = presented.authorization;
    if (header.empty())
        return unauthorised("this request needs an Authorization: Bearer token");
    constexpr std::string_view scheme = "Bearer ";
    if (header.size() <= scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), header.begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); }))
        return unauthorised("the Authorization header must be a Bearer token");
    auto caller = tokens_.verify(header.substr(scheme.size()), now_seconds);
    if (!caller)
        return std::move(caller).failure();
    // The patient-facing listener's verifier takes citizens' tokens only (and the provider's none).
    if ((*caller)->is_citizen()) {
        const std::string_view act_for = presented.act_for;
        if (act_for.empty() || act_for == (*caller)->nhs_number)
            return policy_.citizen_profile(std::move(caller.value()));
        // A carer acting for someone: an active grant in that citizen's record, and P9. The same 403
        // whether or not the citizen exists, so that it reveals nothing.
        if (!fhir::is_valid_nhs_number(act_for))
            return error::make(category::malformed, "value", "X-Act-For must be the NHS number of the citizen you act for");
        const error no_grant = error::make(category::forbidden, "forbidden",
                                           "no active grant lets you act for this citizen");
        if ((*caller)->proofing_level != "P9")
            return error::make(category::forbidden, "forbidden",
                               "acting for someone else needs your identity verified to P9");
        auto grant = find_proxy_grant((*caller)->nhs_number, std::string(act_for), now_seconds * 1'000'000);
        if (!grant)
            return std::move(grant).failure();
        if (!*grant)
            return no_grant;
        auto proxy = policy_.proxy_profile(std::move(caller.value()), std::string(act_for), (*grant)->related_person,
                                           (*grant)->scope, (*grant)->basis);
        if (!proxy)
            return no_grant;
        return std::move(*proxy);
    }
    // With a client certificate (the provider listener over TLS), the token must speak for the same
    // organisation: a token stolen from one organisation is useless over another's connection.
    if (!presented.client_ods.empty() && presented.client_ods != (*caller)->organisation)
        return unauthorised("the token's organisation is not the organisation of the client certificate");
    if (presented.secure && presented.client_ods.empty())
        return unauthorised("the provider listener needs a client certificate");
    const organisation* org = organisations_.find((*caller)->organisation);
    if (!org)
        return error::make(category::forbidden, "forbidden", "the organisation is not connected to this record");
    return policy_.profile_for(std::move(caller.value()), *org);
}

fhir::result<citizen_view> guard::open_citizen(const profile& who, const std::string& nhs_number,
                                               const std::string& request_id, storage::timestamp now,
                                               request_views& views,
                                               bool may_break_glass) const {
    if (auto cached = views.find(nhs_number); cached != views.end())
        return cached->second;
    // Whether the record is open is the store's to decide, by the citizen part of the one visibility
    // rule: a citizen's own record, if held; for anyone else a rule for all citizens, or the citizen
    // held and a relationship or an open break-glass grant.
    citizen_view view;
    auto open = store_.citizen_open(visibility_for(who, now, views, std::string_view{}), nhs_number, &views.standings);
    if (!open)
        return std::move(open).failure();
    view.open = *open;
    if (!view.open && may_break_glass && !who.is_citizen() && who.break_glass_requested() &&
        policy_.break_glass_allowed(who)) {
        auto standing = store_.standing(nhs_number, who.org->ods, who.caller->user, who.caller->role,
                                        now - policy_.recent_micros(), now);
        if (!standing)
            return std::move(standing).failure();
        if (standing->held) {
            // Bound to the user, organisation and role that opened it: the same user's token for
            // another role (an admin one, say) does not inherit the emergency access.
            storage::break_glass_grant grant{nhs_number,         who.org->ods, who.caller->user,
                                             who.caller->role,   who.caller->reason, now,
                                             now + policy_.break_glass_micros(), request_id};
            storage::audit_record record = audit_for(who, request_id, now, "break-glass");
            record.nhs_number = nhs_number;
            record.detail = "break-glass access granted until " + storage::store::format_instant(grant.until);
            record.outcome = "success"; // committed with the grant or not at all (store invariant 15)
            store_.grant_break_glass(std::move(grant), std::move(record));
            view.open = true;
            view.break_glass = true; // queued, not committed: search_visibility names it
        }
    }
    views.emplace(nhs_number, view);
    return view;
}

fhir::result<bool> guard::can_read(const profile& who, const storage::stored_version& version,
                                   const std::string& request_id, storage::timestamp now,
                                   request_views& views, bool may_break_glass) const {
    // Breaking the glass is the one thing decided here: a request that asks for it, where it may,
    // opens (and records) the record of each citizen the version links to before the rule is
    // applied. Who may see the version is the store's to decide, by the same rule a search applies.
    if (may_break_glass && who.break_glass_requested())
        for (const std::string& nhs : version.citizens)
            if (auto view = open_citizen(who, nhs, request_id, now, views, true); !view)
                return std::move(view).failure();
    // The grants of the version's type are enough, but for a version that points at items, whose
    // visibility is theirs too.
    const bool points = fhir::points_at_items(version.type);
    return store_.version_visible(
        visibility_for(who, now, views, points ? std::nullopt : std::optional<std::string_view>(version.type)), version,
        &views.standings);
}

const storage::search_visibility& guard::visibility_for(const profile& who, storage::timestamp now,
                                                       request_views& views,
                                                       std::optional<std::string_view> only_type) const {
    if (views.memo_now != now || views.memo_size != views.size()) {
        views.visibility_by_type.clear();
        views.memo_now = now;
        views.memo_size = views.size();
    }
    const std::string_view key = only_type ? *only_type : std::string_view("*");
    auto known = views.visibility_by_type.find(key);
    if (known == views.visibility_by_type.end())
        known = views.visibility_by_type.emplace(std::string(key), search_visibility(who, now, views, only_type)).first;
    return known->second;
}

storage::search_visibility guard::search_visibility(const profile& who, storage::timestamp now,
                                                    const request_views& views,
                                                    std::optional<std::string_view> only_type) const {
    storage::search_visibility out;
    if (who.is_citizen()) {
        out.only_citizen = who.citizen;
        out.objection_binds = false;
    }
    out.all_citizens = policy_.all_citizens(who);
    out.organisation = who.org->ods;
    out.user = who.caller->user;
    out.role = who.caller->role;
    out.now = now;
    out.recent_since = now - policy_.recent_micros();
    out.objection_binds = !policy_.any_owner(who) && !who.is_citizen();
    out.break_glass_overrides_objection = policy_.break_glass_overrides_objection();
    for (std::string_view type : fhir::supported_types()) {
        if (only_type && type != *only_type)
            continue; // an empty only_type: none
        auto scope = policy_.read_scope_for(who, type);
        if (scope.whole)
            out.readable.push_back({std::string(type), true, {}});
        for (auto& part : scope.parts) // each grant of part of the type, an alternative
            out.readable.push_back({std::string(type), false, std::move(part)});
    }
    out.hidden_labels = policy_.hidden_labels(who);
    if (!who.is_citizen()) // a citizen's hidden labels are all in hidden_labels
        out.owner_only_labels = policy_.owner_only_labels();
    for (const auto& [nhs, view] : views)
        if (view.open && view.break_glass)
            out.break_glass_citizens.push_back(nhs);
    return out;
}

storage::search_visibility guard::export_visibility(const profile& who, export_kind kind,
                                                    storage::timestamp now) const {
    storage::search_visibility out = search_visibility(policy_.export_profile(who, kind), now, request_views{});
    out.objection_excludes = true;
    out.opt_out_excludes = kind == export_kind::pseudonymised;
    out.hidden_labels.insert(out.hidden_labels.end(), out.owner_only_labels.begin(), out.owner_only_labels.end());
    out.owner_only_labels.clear();
    std::erase_if(out.readable, [](const storage::search_visibility::type_grant& grant) {
        return grant.type == "AuditEvent"; // the audit trail is read through its own rows, never exported
    });
    return out;
}

fhir::result<bool> guard::may_export_group(const profile& who, export_kind kind, const storage::stored_version& group,
                                           storage::timestamp now) const {
    storage::search_visibility cohort = search_visibility(policy_.export_profile(who, kind), now, request_views{}, "Group");
    cohort.objection_binds = false;
    return store_.version_visible(cohort, group);
}

namespace {

constexpr std::string_view nhs_number_system = "https://fhir.nhs.uk/Id/nhs-number";
constexpr std::string_view proxy_scope_system = "https://fhir.caregate.nhs.uk/CodeSystem/proxy-access";
constexpr std::string_view proxy_basis_system = "https://fhir.caregate.nhs.uk/CodeSystem/proxy-basis";

/// The live resources a search finds, seen by the server itself (the decision is not shown).
fhir::result<std::vector<storage::stored_version>> find_all(storage::store& store, const std::string& type,
                                                            std::vector<std::pair<std::string, std::string>> criteria) {
    fhir::search_query_options options;
    options.max_count = 100;
    auto query = fhir::parse_search_query({type}, criteria, options);
    if (!query)
        return std::move(query).failure();
    query->count = 100;
    storage::search_request request;
    request.query = &*query;
    request.visibility.everything = true;
    auto page = store.search(request);
    if (!page)
        return std::move(page).failure();
    std::vector<storage::stored_version> found;
    for (auto& entry : page->entries)
        if (!entry.include)
            found.push_back(std::move(entry.version));
    return found;
}

/// The code of `system` among an element's codings (a CodeableConcept or an array of them).
std::string code_in(const rapidjson::Value& codeables, std::string_view system) {
    auto in_concept = [&](const rapidjson::Value& codeable) -> std::string {
        if (!codeable.IsObject() || !codeable.HasMember("coding") || !codeable["coding"].IsArray())
            return {};
        for (const auto& coding : codeable["coding"].GetArray())
            if (coding.IsObject() && coding.HasMember("system") && coding["system"].IsString() &&
                coding["system"].GetString() == system && coding.HasMember("code") && coding["code"].IsString())
                return coding["code"].GetString();
        return {};
    };
    if (codeables.IsArray()) {
        for (const auto& codeable : codeables.GetArray())
            if (auto code = in_concept(codeable); !code.empty())
                return code;
        return {};
    }
    return in_concept(codeables);
}

} // namespace

fhir::result<std::optional<guard::proxy_grant>> guard::find_proxy_grant(const std::string& carer, const std::string& citizen,
                                                                       storage::timestamp now) const {
    // The carer as the citizen's record names them: a RelatedPerson with the carer's NHS number.
    auto people = find_all(store_, "RelatedPerson",
                           {{"patient", "Patient/" + citizen}, {"identifier", std::string(nhs_number_system) + "|" + carer}});
    if (!people)
        return std::move(people).failure();
    std::optional<proxy_grant> best;
    std::size_t best_rank = 0; // best's place in the policy's list of scopes
    for (const auto& person : *people) {
        rapidjson::Document related;
        related.Parse(person.json.data(), person.json.size());
        if (related.HasParseError() || (related.HasMember("active") && related["active"].IsFalse()))
            continue;
        // Their grants: active Consents of the citizen that permit this RelatedPerson.
        auto consents = find_all(store_, "Consent",
                                 {{"patient", "Patient/" + citizen}, {"actor", "RelatedPerson/" + person.id}, {"status", "active"}});
        if (!consents)
            return std::move(consents).failure();
        for (const auto& version : *consents) {
            rapidjson::Document consent;
            consent.Parse(version.json.data(), version.json.size());
            if (consent.HasParseError() || !consent.HasMember("provision") || !consent["provision"].IsObject())
                continue;
            const auto& provision = consent["provision"];
            if (!provision.HasMember("type") || !provision["type"].IsString() || std::string_view(provision["type"].GetString()) != "permit")
                continue;
            if (provision.HasMember("period") && provision["period"].IsObject()) {
                const auto& period = provision["period"];
                auto bound = [&](const char* key) -> std::optional<fhir::time_range> {
                    if (!period.HasMember(key) || !period[key].IsString())
                        return std::nullopt;
                    return fhir::parse_date_time(period[key].GetString());
                };
                if (auto start = bound("start"); start && now < start->begin)
                    continue;
                if (auto end = bound("end"); end && now >= end->end)
                    continue;
            }
            const std::string scope = consent.HasMember("category") ? code_in(consent["category"], proxy_scope_system) : "";
            const std::string basis = consent.HasMember("policyRule") ? code_in(consent["policyRule"], proxy_basis_system) : "";
            const auto rank = policy_.proxy_scope_rank(scope);
            if (!rank || basis.empty())
                continue;
            if (!best || *rank < best_rank) {
                best = proxy_grant{scope, basis, person.id};
                best_rank = *rank;
            }
        }
    }
    return best;
}

storage::audit_record guard::audit_for(const profile& who, const std::string& request_id, storage::timestamp now,
                                       std::string action) {
    storage::audit_record record;
    record.time = now;
    record.request_id = request_id;
    record.user = who.caller->user;
    record.role = who.caller->role;
    record.organisation = who.org->ods;
    // A citizen's own access is patient-requested (HL7 PurposeOfUse PATRQT); a carer's is family-
    // requested (FAMRQT) or, under a lasting power of attorney, PWATRNY. The audit names the carer
    // by their NHS number, so that the citizen's access log says who acted for them.
    record.purpose = who.is_citizen() ? "PATRQT" : who.caller->purpose.empty() ? "TREAT" : who.caller->purpose;
    if (who.is_citizen())
        record.role = "citizen";
    if (who.is_proxy()) {
        record.user = "nhs:" + who.actor;
        record.role = "proxy:" + who.proxy_basis;
        record.purpose = who.proxy_basis == "lasting-power-of-attorney" ? "PWATRNY" : "FAMRQT";
    }
    record.break_glass_reason = who.caller->reason;
    record.action = std::move(action);
    return record;
}

} // namespace caregate::access
