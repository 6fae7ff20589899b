// Access decisions that need the store; see guard.hpp.
#include "access/guard.hpp"

#include "fhir_model/resource.hpp"

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

fhir::result<profile> guard::authenticate(const rest::request& req, std::int64_t now_seconds) const {
    std::string_view header = req.header("Authorization");
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
    if ((*caller)->is_citizen())
        return policy_.citizen_profile(std::move(caller.value()));
    // With a client certificate (the provider listener over TLS), the token must speak for the same
    // organisation: a token stolen from one organisation is useless over another's connection.
    if (!req.client_ods.empty() && req.client_ods != (*caller)->organisation)
        return unauthorised("the token's organisation is not the organisation of the client certificate");
    if (req.secure && req.client_ods.empty())
        return unauthorised("the provider listener needs a client certificate");
    const organisation* org = organisations_.find((*caller)->organisation);
    if (!org)
        return error::make(category::forbidden, "forbidden", "the organisation is not connected to this record");
    return policy_.profile_for(std::move(caller.value()), *org);
}

fhir::result<citizen_view> guard::open_citizen(const profile& who, const std::string& nhs_number,
                                               const std::string& request_id, storage::timestamp now,
                                               std::map<std::string, citizen_view>& views,
                                               bool may_break_glass) const {
    if (auto cached = views.find(nhs_number); cached != views.end())
        return cached->second;
    if (who.is_citizen()) {
        // A citizen opens their own record, if held, and nothing else; their own objection is about
        // sharing with organisations, not with them.
        citizen_view view;
        if (nhs_number == who.citizen) {
            auto standing = store_.standing(nhs_number, who.org->ods, who.caller->user, now, now);
            if (!standing)
                return std::move(standing).failure();
            view.open = standing->held;
        }
        views.emplace(nhs_number, view);
        return view;
    }
    auto standing = store_.standing(nhs_number, who.org->ods, who.caller->user, now - policy_.recent_micros(), now);
    if (!standing)
        return std::move(standing).failure();
    citizen_view view;
    view.objection = standing->objection;
    // Rules for all citizens (the ICS's services, IG review) open any record, even one whose Patient
    // was deleted; everyone else needs the citizen held and a relationship or break-glass.
    if (policy_.all_citizens(who)) {
        view.open = true;
    } else if (!standing->held) {
        view.open = false;
    } else if (standing->relationship) {
        view.open = true;
    } else if (standing->break_glass_until) {
        view.open = true;
        view.break_glass = true;
    } else if (may_break_glass && who.break_glass_requested() && policy_.break_glass_allowed(who)) {
        storage::break_glass_grant grant{nhs_number, who.org->ods, who.caller->user, who.caller->reason, now,
                                         now + policy_.break_glass_micros(), request_id};
        storage::audit_record record = audit_for(who, request_id, now, "break-glass");
        record.nhs_number = nhs_number;
        record.detail = "break-glass access granted until " + storage::store::format_instant(grant.until);
        store_.grant_break_glass(std::move(grant), std::move(record));
        view.open = true;
        view.break_glass = true;
    }
    views.emplace(nhs_number, view);
    return view;
}

fhir::result<bool> guard::can_read(const profile& who, const storage::stored_version& version,
                                   const std::string& request_id, storage::timestamp now,
                                   std::map<std::string, citizen_view>& views, bool may_break_glass) const {
    if (!policy_.may(who, action::read, version.type, version.facets))
        return false;
    if (!policy_.labels_allow(who, version.labels, version.owner))
        return false;
    const bool own = version.owner == who.org->ods;
    for (const std::string& nhs : version.citizens) {
        auto view = open_citizen(who, nhs, request_id, now, views, may_break_glass);
        if (!view)
            return std::move(view).failure();
        if (!view->open)
            return false;
        // An objection limits the record to what each organisation wrote itself. The ICS's own
        // integration services (any_owner) keep the record whole; break-glass overrides only if the
        // policy says so.
        const bool objection_binds = view->objection && !policy_.any_owner(who) &&
                                     !(view->break_glass && policy_.break_glass_overrides_objection());
        if (objection_binds && !own)
            return false;
    }
    return true;
}

storage::search_visibility guard::search_visibility(const profile& who, storage::timestamp now,
                                                    const std::map<std::string, citizen_view>& views) const {
    storage::search_visibility out;
    if (who.is_citizen()) {
        out.only_citizen = who.citizen;
        out.objection_binds = false;
    }
    out.all_citizens = policy_.all_citizens(who);
    out.organisation = who.org->ods;
    out.user = who.caller->user;
    out.now = now;
    out.recent_since = now - policy_.recent_micros();
    out.objection_binds = !policy_.any_owner(who) && !who.is_citizen();
    out.break_glass_overrides_objection = policy_.break_glass_overrides_objection();
    for (std::string_view type : fhir::supported_types()) {
        auto scope = policy_.read_scope_for(who, type);
        if (scope.any)
            out.readable.push_back({std::string(type), scope.whole, std::move(scope.facets)});
    }
    out.hidden_labels = policy_.hidden_labels(who);
    if (!who.is_citizen()) // a citizen's hidden labels are all in hidden_labels
        out.owner_only_labels = policy_.owner_only_labels();
    for (const auto& [nhs, view] : views)
        if (view.open && view.break_glass)
            out.break_glass_citizens.push_back(nhs);
    return out;
}

storage::audit_record guard::audit_for(const profile& who, const std::string& request_id, storage::timestamp now,
                                       std::string action) {
    storage::audit_record record;
    record.time = now;
    record.request_id = request_id;
    record.user = who.caller->user;
    record.role = who.caller->role;
    record.organisation = who.org->ods;
    // A citizen's own access is patient-requested (HL7 PurposeOfUse PATRQT).
    record.purpose = who.is_citizen() ? "PATRQT" : who.caller->purpose.empty() ? "TREAT" : who.caller->purpose;
    if (who.is_citizen())
        record.role = "citizen";
    record.break_glass_reason = who.caller->reason;
    record.action = std::move(action);
    return record;
}

} // namespace caregate::access
