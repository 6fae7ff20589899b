// The visibility rule (visibility_rule.hpp) decided in memory, for one version the store has read or
// one citizen: store::version_visible and store::citizen_open, whatever the engine. The facts about a
// citizen come from store::standing (served from memory until the next write commits, engine.hpp
// invariant 22, so a decision is never older than the last acknowledged write); the items a
// Provenance points at are read at their last live version.
#include "visibility_rule.hpp"

#include <algorithm>
#include <map>

namespace caregate::storage {
namespace {

/// Gives each fact of the rule its meaning over stored versions and the caller's standings.
class memory_evaluator {
public:
    using value = bool;
    using version = stored_version;
    using citizen = std::string;

    /// `seen_generation`: the access generation read with the version to decide, if any (store::standing).
    memory_evaluator(const store& source, const search_visibility& caller, standing_memo* memo,
                     std::uint64_t seen_generation = 0)
        : store_(source), caller_(caller), standings_(memo ? *memo : own_standings_), seen_generation_(seen_generation) {}

    /// The first failure met (a standing or an item that could not be read), if any: the decision
    /// is then not to be trusted.
    const std::optional<fhir::error>& failure() const noexcept { return failure_; }

    bool truth() const { return true; }
    bool all(const std::vector<bool>& parts) const { return std::all_of(parts.begin(), parts.end(), [](bool b) { return b; }); }
    bool any(const std::vector<bool>& parts) const { return std::any_of(parts.begin(), parts.end(), [](bool b) { return b; }); }
    bool negate(bool part) const { return !part; }

    bool type_grant(const version& v, std::optional<std::string_view>) const {
        return std::any_of(caller_.readable.begin(), caller_.readable.end(), [&](const search_visibility::type_grant& g) {
            return g.type == v.type && (g.whole || fhir::facets_satisfy(g.facets, v.facets));
        });
    }
    bool lacks_label(const version& v, const std::string& label) const {
        return std::find(v.labels.begin(), v.labels.end(), label) == v.labels.end();
    }
    bool owned_by_caller(const version& v) const { return v.owner == caller_.organisation; }

    template <class Each>
    bool every_citizen(const version& v, Each&& each) {
        return std::all_of(v.citizens.begin(), v.citizens.end(), [&](const citizen& c) { return each(c); });
    }
    bool is_citizen(const citizen& c, const std::string& nhs_number) const { return c == nhs_number; }
    bool held(const citizen& c) { return standing(c).held; }
    bool relationship(const citizen& c) { return standing(c).relationship; }
    bool objection(const citizen& c) { return standing(c).objection; }
    bool opted_out(const citizen& c) { return standing(c).opted_out; }
    bool break_glass(const citizen& c) {
        return standing(c).break_glass_until.has_value() ||
               std::find(caller_.break_glass_citizens.begin(), caller_.break_glass_citizens.end(), c) !=
                   caller_.break_glass_citizens.end();
    }

    bool may_point_at_items(const version& v, std::optional<std::string_view>) const {
        return fhir::points_at_items(v.type);
    }
    bool points_at_nothing(const version& v) const { return fhir::item_targets(v.type, v.json).empty(); }
    bool may_be_owner_only(const version& v, std::optional<std::string_view>) const {
        return fhir::owner_only_when_pointing_at_nothing(v.type);
    }
    bool of_owner_only_type(const version&, std::optional<std::string_view>) const { return true; }
    /// Each item `v` points at, at its last live version: none stored (or erased) is not visible.
    template <class Each>
    bool every_target(const version& v, Each&& each) {
        for (const std::string& target : fhir::item_targets(v.type, v.json)) {
            const auto slash = target.find('/');
            const std::string type = target.substr(0, slash);
            const std::string id = target.substr(slash + 1);
            auto item = store_.read_current(type, id);
            if (item && item->deleted)
                item = item->version_id > 1 ? store_.vread(type, id, item->version_id - 1)
                                            : fhir::result<stored_version>(fhir::error::make(fhir::category::not_found,
                                                                                            "not-found", "no live version"));
            if (!item) {
                if (item.failure().kind != fhir::category::not_found && item.failure().kind != fhir::category::deleted)
                    failure_ = item.failure();
                return false;
            }
            if (!each(*item))
                return false;
        }
        return true;
    }

private:
    const citizen_standing& standing(const citizen& c) {
        auto known = standings_.find(c);
        if (known != standings_.end())
            return known->second;
        auto read = store_.standing(c, caller_.organisation, caller_.user, caller_.role, caller_.recent_since, caller_.now,
                                    seen_generation_);
        if (!read) {
            failure_ = read.failure();
            static const citizen_standing nothing; // nothing held, nothing open; never memoised
            return nothing;
        }
        return standings_.emplace(c, *read).first->second;
    }

    const store& store_;
    const search_visibility& caller_;
    standing_memo own_standings_;
    standing_memo& standings_;
    std::uint64_t seen_generation_;
    std::optional<fhir::error> failure_;
};

} // namespace

fhir::result<bool> store::version_visible(const search_visibility& visibility, const stored_version& version,
                                          standing_memo* memo) const {
    if (version.deleted)
        return false;
    if (visibility.everything)
        return true;
    memory_evaluator decide(*this, visibility, memo, version.access_generation);
    const bool visible = rule::version_visible(decide, visibility, version, version.type);
    if (decide.failure())
        return *decide.failure();
    return visible;
}

fhir::result<bool> store::citizen_open(const search_visibility& visibility, std::string_view nhs_number,
                                       standing_memo* memo) const {
    if (visibility.everything)
        return true;
    memory_evaluator decide(*this, visibility, memo);
    const bool open = rule::citizen_open(decide, visibility, std::string(nhs_number));
    if (decide.failure())
        return *decide.failure();
    return open;
}

} // namespace caregate::storage
