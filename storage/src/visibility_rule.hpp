// The visibility rule, written once: who may see a stored version, composed from a few facts. Every
// path takes it from here, through an evaluator that gives each fact its meaning:
//  - visibility_sql (storage/src/relational/visibility_sql.cpp) renders the rule as SQL, for every query
//    (search pages, totals, includes, chains, _has, $everything, history, the access log's names,
//    conditional matching);
//  - the in-memory evaluator (visibility_rule.cpp) decides it over one version the store has read and
//    the caller's standing with each citizen (store::standing, kept in memory until the next write),
//    for store::version_visible and store::citizen_open: a read, a vread, a write's check of what it
//    changes, whether a compartment or $everything may be opened.
// So changing the rule is changing this file; an evaluator only says what one fact is.
//
// The rule (search_visibility says who the caller is and what the policy grants them):
//  1. A version is visible when the caller's type grant (whole, or the facets a grant names) covers
//     it, none of its labels is hidden from the caller (owner-only labels unless the caller's
//     organisation owns it), and each citizen it links to is open to the caller with no objection
//     binding the caller against it.
//  2. A citizen is open: for a citizen's own view, that citizen only, if held (a live Patient);
//     otherwise by a rule for all citizens, or the citizen held and a relationship (active, or ended
//     since recent_since) or a break-glass grant for this user in this role.
//  3. An objection binds (search_visibility::objection_binds) unless the caller's organisation owns
//     the version; break-glass sets it aside, where the policy says so, only for a record opened by
//     break-glass alone (no relationship), never under a rule for all citizens. For a caller it
//     excludes (search_visibility::objection_excludes: an export) it hides every version, owned or not.
//  4. A version of a type that points at items (a Provenance, a Binary) is visible only when every item it points
//     at is stored and visible by 1 at its last live version, and points at nothing in turn.
//  5. For a caller the national data opt-out binds (search_visibility::opt_out_excludes: a
//     pseudonymised export, for planning), a citizen who has opted out is not open at all.
//  6. A version of a type that is its writer's alone when it points at nothing
//     (fhir::owner_only_when_pointing_at_nothing: a Binary without a securityContext) is visible,
//     when it points at no stored item, only to the organisation that owns it.
// What a path composes from this (a version seen only with the resource as it is now; a deletion
// judged by the version it removed) is stated in visibility_sql.hpp and store.hpp.
#pragma once

#include "storage/search.hpp"

#include "fhir_model/resource.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::storage::rule {

/// 2: whether `citizen` is open to the caller.
template <class Evaluator>
typename Evaluator::value citizen_open(Evaluator& e, const search_visibility& caller,
                                       const typename Evaluator::citizen& citizen) {
    if (!caller.only_citizen.empty())
        return e.all({e.is_citizen(citizen, caller.only_citizen), e.held(citizen)});
    if (caller.all_citizens)
        return e.truth();
    return e.all({e.held(citizen), e.any({e.relationship(citizen), e.break_glass(citizen)})});
}

/// 3: whether the citizen's objection, if any, lets the caller see `version`.
template <class Evaluator>
typename Evaluator::value objection_allows(Evaluator& e, const search_visibility& caller,
                                           const typename Evaluator::citizen& citizen,
                                           const typename Evaluator::version& version) {
    if (caller.objection_excludes)
        return e.negate(e.objection(citizen));
    if (!caller.objection_binds)
        return e.truth();
    std::vector<typename Evaluator::value> allowed{e.owned_by_caller(version), e.negate(e.objection(citizen))};
    if (caller.break_glass_overrides_objection && !caller.all_citizens)
        allowed.push_back(e.all({e.negate(e.relationship(citizen)), e.break_glass(citizen)}));
    return e.any(std::move(allowed));
}

/// 1, 4 and 6 for one version. `type` is the version's type where the path knows it (then the type
/// grant is decided for that type alone); `with_targets` false for a version pointed at, which may
/// point at nothing itself.
template <class Evaluator>
typename Evaluator::value version_visible(Evaluator& e, const search_visibility& caller,
                                          const typename Evaluator::version& version,
                                          std::optional<std::string_view> type, bool with_targets = true) {
    std::vector<typename Evaluator::value> parts;
    parts.push_back(e.type_grant(version, type));
    for (const std::string& label : caller.hidden_labels)
        parts.push_back(e.lacks_label(version, label));
    for (const std::string& label : caller.owner_only_labels)
        parts.push_back(e.any({e.owned_by_caller(version), e.lacks_label(version, label)}));
    parts.push_back(e.every_citizen(version, [&](const typename Evaluator::citizen& citizen) {
        std::vector<typename Evaluator::value> open{citizen_open(e, caller, citizen),
                                                    objection_allows(e, caller, citizen, version)};
        if (caller.opt_out_excludes) // 5
            open.push_back(e.negate(e.opted_out(citizen)));
        return e.all(std::move(open));
    }));
    if (e.may_point_at_items(version, type)) {
        if (with_targets)
            parts.push_back(e.every_target(version, [&](const typename Evaluator::version& item) {
                return version_visible(e, caller, item, std::nullopt, false);
            }));
        else
            parts.push_back(e.points_at_nothing(version));
    }
    if (e.may_be_owner_only(version, type)) // 6
        parts.push_back(e.any({e.negate(e.of_owner_only_type(version, type)), e.owned_by_caller(version),
                               e.negate(e.points_at_nothing(version))}));
    return e.all(std::move(parts));
}

} // namespace caregate::storage::rule
