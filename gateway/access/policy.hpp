// The access policy: a declarative file, not code, saying which roles of which
// sectors may read, create, update or delete which resource types (or which part of a type), how long
// a relationship and a break-glass grant last, and who sees labelled items. The shipped default is
// gateway/access/default-policy.json; each rule there carries the reason for it.
//
// This file holds the decisions that need only the policy; gateway/access/guard.hpp adds what needs
// the store (relationships, objections, break-glass grants, ownership).
#pragma once

#include "auth/token.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::access {

enum class action { read, create, update, delete_ };
inline constexpr std::size_t action_count = 4;
std::string_view action_name(action act) noexcept;

/// A connected organisation (the organisations file: `caregate serve --orgs FILE`).
struct organisation {
    std::string ods;
    std::string name;
    std::string sector; ///< gp, acute, community, mental-health, adult-social-care, ics
};

class organisation_register {
public:
    /// Parses a JSON array of {"ods", "name", "sector"}. Throws std::invalid_argument naming the fault.
    static organisation_register parse(std::string_view json);
    const organisation* find(std::string_view ods) const noexcept;
    std::size_t size() const noexcept { return organisations_.size(); }

private:
    std::vector<organisation> organisations_;
};

/// A type a rule grants, wholly or in part: with `where`, only resources whose facets satisfy it
/// (fhir::facets_satisfy): each entry "element=system|code" (see fhir::access_facts::facets), and for
/// each element named, every value the resource carries must be among the entries, for reads and
/// writes alike.
struct type_grant {
    std::string type; ///< a resource type, or "*" for every type
    std::vector<std::string> where;
};

struct rule {
    std::vector<std::string> sectors;
    std::vector<std::string> role_groups;
    std::array<std::vector<type_grant>, action_count> grants;
    bool all_citizens = false; ///< no relationship needed (the ICS's own services, IG review)
    bool any_owner = false;    ///< may change other organisations' contributions
    /// May erase a citizen's whole record: delete their Patient together with every live item linked
    /// to it, in one transaction (DELETE /Patient/{nhs}?_cascade=delete). Without it, a Patient whose
    /// record holds items cannot be deleted.
    bool erase_record = false;
};

/// The acting person or system as the policy sees them: the verified token, the organisation, and
/// the rules that apply to their sector and role.
struct profile {
    std::shared_ptr<const auth::caller> caller;
    const organisation* org = nullptr;
    std::vector<std::string> role_groups;
    std::vector<const rule*> rules;
    /// On the patient-facing endpoint: the NHS number of the one record this caller may open (a
    /// citizen's own). Empty for providers.
    std::string citizen;
    /// A citizen's organisation as the rest of the server sees it: `patient:{nhs}`, sector "citizen",
    /// which owns what the citizen contributes; for a carer acting for them,
    /// `patient:{nhs}/carer:{carer's nhs}`, which owns what the carer contributes (the citizen, as
    /// `patient:{nhs}`, may withdraw it: storage's owner rule). `org` points at it.
    std::shared_ptr<const organisation> citizen_org;

    /// A carer acting for `citizen` (a proxy): the carer's own NHS number, the RelatedPerson in the
    /// citizen's record that names them, the grant's scope (a name in the policy's
    /// `patients.proxies.scopes`) and its basis. Empty when citizens act for themselves.
    std::string actor;
    std::string actor_related_person;
    std::string proxy_scope;
    std::string proxy_basis;

    bool is_citizen() const noexcept { return !citizen.empty(); }
    bool is_proxy() const noexcept { return !actor.empty(); }

    bool in_group(std::string_view group) const noexcept;
    bool break_glass_requested() const noexcept; ///< purpose of use ETREAT with a reason
};

/// The kinds of population health export (README, "Population health exports"): identifiable, for
/// direct care, each citizen's record as the requester may read it; pseudonymised, for planning,
/// with keyed pseudonyms for citizens and direct identifiers and free text removed.
enum class export_kind { identifiable, pseudonymised };
std::string_view export_kind_name(export_kind kind) noexcept;

class policy {
public:
    /// Parses the policy JSON. Throws std::invalid_argument naming the fault, so a bad policy file
    /// stops the server at start rather than granting something by accident.
    static policy parse(std::string_view json);

    /// The caller's profile: role groups and applicable rules.
    profile profile_for(std::shared_ptr<const auth::caller> caller, const organisation& org) const;
    /// A citizen's profile on the patient-facing endpoint, from a verified citizen token: the
    /// "patients" section's rules for their identity proofing level (P9: `verified`; P5:
    /// `demographics`; P0: none, so every interaction is 403), their own record only.
    profile citizen_profile(std::shared_ptr<const auth::caller> caller) const;
    /// A carer's profile: the caller (a P9 citizen), named in the citizen's record by the
    /// RelatedPerson `related_person`, acting for `citizen` under a grant with this scope and basis.
    /// nullopt when the policy does not know the scope or the basis.
    std::optional<profile> proxy_profile(std::shared_ptr<const auth::caller> caller, std::string citizen,
                                         std::string related_person, std::string_view scope,
                                         std::string_view basis) const;
    /// Where a carer's grant scope stands in the policy's patients.proxies.scopes, listed widest
    /// first: of a carer's several active grants, the first listed applies. nullopt: a scope the
    /// policy does not know, which grants nothing.
    std::optional<std::size_t> proxy_scope_rank(std::string_view scope) const noexcept;

    /// Whether any rule lets the profile do `act` on some or all resources of `type`. When false the
    /// interaction is never allowed: 403.
    bool may_ever(const profile& who, action act, std::string_view type) const noexcept;
    /// Whether a rule lets the profile do `act` on a resource of `type` with these facets.
    bool may(const profile& who, action act, std::string_view type, const std::vector<std::string>& facets) const noexcept;
    bool all_citizens(const profile& who) const noexcept;
    bool any_owner(const profile& who) const noexcept;
    bool erase_record(const profile& who) const noexcept;

    /// How far the profile may read a type: not at all (`any` false), wholly, or only versions whose
    /// facets satisfy one of `parts` (each a grant's `where`; the same decision as `may`, as data for a
    /// search's query).
    struct read_scope {
        bool any = false;
        bool whole = false;
        std::vector<std::vector<std::string>> parts;
    };
    read_scope read_scope_for(const profile& who, std::string_view type) const;
    /// The same for any action: e.g. which resources of a type a conditional delete may remove.
    read_scope scope_for(const profile& who, action act, std::string_view type) const;
    /// The labels that hide a version from the profile whoever owns it, and those that hide it unless
    /// the profile's organisation owns it: the label rules, as data for the store's visibility rule.
    std::vector<std::string> hidden_labels(const profile& who) const;
    std::vector<std::string> owner_only_labels() const;

    /// Whether the token's SMART scopes allow `act` on `type`: providers' `user/` and `system/`
    /// scopes (none given: the policy decides alone), citizens' `patient/` scopes (none: nothing).
    bool scopes_permit(const profile& who, action act, std::string_view type) const noexcept;

    /// The kind of population health export the profile may take (the policy's "exports" section),
    /// identifiable before pseudonymised when it may take both; nullopt: none, and `$export` is 403.
    std::optional<export_kind> export_kind_for(const profile& who) const noexcept;
    /// The profile an export of `kind` reads with: an identifiable export reads as its requester
    /// reads (the same rules, the same visibility); a pseudonymised one by its grant's own `read`
    /// list, for all citizens (planning covers the population; who is left out is decided by the
    /// opt-out, not by relationships). `who` must be allowed `kind` (export_kind_for).
    profile export_profile(const profile& who, export_kind kind) const;

    bool break_glass_allowed(const profile& who) const noexcept;
    bool break_glass_overrides_objection() const noexcept { return break_glass_overrides_objection_; }
    std::int64_t break_glass_micros() const noexcept { return break_glass_micros_; }
    /// How long after it ends a relationship still counts.
    std::int64_t recent_micros() const noexcept { return recent_micros_; }

    const std::vector<rule>& rules() const noexcept { return rules_; }

    /// The patient-facing endpoint (the policy's "patients" section): the types a fully verified (P9)
    /// citizen may `act` on in their own record, for its CapabilityStatement ("*" expanded to the
    /// served types), sorted.
    std::vector<std::string> patient_types(action act) const;

private:
    struct role_group {
        std::string name;
        std::vector<std::string> roles;
    };
    std::vector<role_group> groups_;
    std::vector<rule> rules_;
    std::int64_t recent_micros_ = 0;
    std::int64_t break_glass_micros_ = 0;
    std::vector<std::string> break_glass_groups_;
    bool break_glass_overrides_objection_ = false;
    std::string restricted_label_;
    std::vector<std::string> restricted_groups_;
    std::string very_restricted_label_;
    // The "patients" section: rules for citizens by proofing level, and the labels hidden from them.
    rule patients_verified_;
    rule patients_demographics_;
    std::vector<std::string> patient_hidden_labels_;
    // patients.proxies: what a carer's grant may open, by scope name, and the bases a grant may have.
    std::vector<std::pair<std::string, rule>> proxy_scopes_;
    std::vector<std::string> proxy_bases_;
    // exports: who may take which kind (sectors and role groups, as a rule names them).
    struct export_grant {
        export_kind kind;
        std::vector<std::string> sectors;
        std::vector<std::string> role_groups;
        rule reading; ///< pseudonymised: what it reads (its `read`, all citizens)
        bool matches(const profile& who) const noexcept;
    };
    std::vector<export_grant> export_grants_;
};

/// Whether SMART scopes allow `act` on `type`: v2 `user/Observation.rs`, `user/*.cruds`; v1
/// `user/*.read`, `user/*.write`, `user/*.*`. `claimed` false (the token has no scope claim): a
/// provider's access is left to the policy, a citizen's app gets nothing. A claim that names no scope
/// ("", " ", []) grants nothing.
/// `context` "user" (providers: `user/` and `system/` scopes) or "patient" (citizens: `patient/`).
bool scopes_allow(const std::vector<std::string>& scopes, bool claimed, action act, std::string_view type,
                  std::string_view context = "user") noexcept;

} // namespace caregate::access
