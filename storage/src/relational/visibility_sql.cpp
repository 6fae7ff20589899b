// The visibility rule (visibility_rule.hpp) rendered as SQL (visibility_sql.hpp); its design notes
// are there.
#include "visibility_sql.hpp"

#include "../visibility_rule.hpp"

#include "fhir_model/resource.hpp"

#include <algorithm>
#include <vector>

namespace caregate::storage::detail {

bool visibility_sql::readable(std::string_view type) const {
    if (visibility_.everything)
        return true;
    return std::any_of(visibility_.readable.begin(), visibility_.readable.end(),
                       [&](const search_visibility::type_grant& g) { return g.type == type; });
}

std::string visibility_sql::visible(std::string_view v, std::optional<std::string_view> type) {
    if (visibility_.everything)
        return "1 = 1";
    const std::string a(v);
    // A version of an earlier snapshot is shown only while the resource is live and its current
    // version carries the same access facts (owner, citizens, labels, facets), so that it is
    // visible now as well (as vread needs): an item deleted or restricted since the first page
    // leaves the later pages. For the current version the first test settles it. (Comparing
    // the facts, rather than checking the current version's visibility again, keeps the SQL
    // shallow enough for SQLite's parser in chains.)
    const std::string now = fresh_alias("c");
    return "(" + visible_version(a, type) + " AND EXISTS (SELECT 1 FROM resources r" + now +
           " JOIN resource_versions " + now + " ON " + now + ".seq = r" + now + ".seq WHERE r" + now +
           ".type = " + a + ".type AND r" + now + ".id = " + a + ".id AND r" + now + ".deleted = 0 AND (" + now +
           ".seq = " + a + ".seq OR (" + now + ".owner = " + a + ".owner AND " + now + ".citizens = " + a +
           ".citizens AND " + now + ".labels = " + a + ".labels AND " + now + ".facets = " + a + ".facets))))";
}

std::string visibility_sql::visible_in_history(std::string_view v, std::optional<std::string_view> type) {
    if (visibility_.everything)
        return "1 = 1";
    const std::string a(v);
    // A deletion marker has no version_citizens rows (the citizens are those of the version it
    // removed), so the entry is judged by the version it removed: the one before it.
    const std::string entry = fresh_alias("entry");
    return "(EXISTS (SELECT 1 FROM resource_versions " + entry + " WHERE " + entry + ".type = " + a + ".type AND " +
           entry + ".id = " + a + ".id AND " + entry + ".version_id = " + a + ".version_id - " + a + ".deleted AND " +
           entry + ".deleted = 0 AND " + visible_version(entry, type) + ") AND " +
           last_live_visible(a + ".type", a + ".id", type) + ")";
}

std::string visibility_sql::resource_visible(std::string_view type_column, std::string_view id_column) {
    if (visibility_.everything)
        return "1 = 1";
    return last_live_visible(type_column, id_column, std::nullopt);
}

/// The rule's facts (visibility_rule.hpp) as SQL conditions on resource_versions rows (a version is
/// an alias) and version_citizens rows (a citizen is an alias with an nhs_number column).
class visibility_sql::evaluator {
public:
    using value = std::string;
    using version = std::string;
    using citizen = std::string;

    explicit evaluator(visibility_sql& sql) : sql_(sql) {}

    std::string truth() const { return "1 = 1"; }
    std::string all(const std::vector<std::string>& parts) const { return joined(parts, " AND "); }
    std::string any(const std::vector<std::string>& parts) const { return joined(parts, " OR "); }
    std::string negate(const std::string& part) const { return "NOT " + part; }

    std::string type_grant(const version& v, std::optional<std::string_view> type) { return sql_.type_grant(v, type); }
    std::string lacks_label(const version& v, const std::string& label) {
        return "(" + v + ".labels = '' OR instr('\n' || " + v + ".labels || '\n', " +
               sql_.sql_.text_arg("\n" + label + "\n") + ") < 1)"; // note 6
    }
    std::string owned_by_caller(const version& v) {
        return v + ".owner = " + sql_.sql_.text_arg(sql_.visibility_.organisation);
    }

    template <class Each>
    std::string every_citizen(const version& v, Each&& each) {
        return "NOT EXISTS (SELECT 1 FROM version_citizens c WHERE c.seq = " + v + ".seq AND NOT " + each("c") + ")";
    }
    std::string is_citizen(const citizen& c, const std::string& nhs_number) {
        return c + ".nhs_number = " + sql_.sql_.text_arg(nhs_number);
    }
    std::string held(const citizen& c) const {
        return "EXISTS (SELECT 1 FROM resources p WHERE p.type = 'Patient' AND p.id = " + c +
               ".nhs_number AND p.deleted = 0)";
    }
    std::string relationship(const citizen& c) { return sql_.relationship(c); }
    std::string break_glass(const citizen& c) { return sql_.break_glass(c); }
    std::string objection(const citizen& c) const {
        return "EXISTS (SELECT 1 FROM objections o WHERE o.nhs_number = " + c + ".nhs_number)";
    }
    std::string opted_out(const citizen& c) const {
        return "EXISTS (SELECT 1 FROM opt_outs p WHERE p.nhs_number = " + c + ".nhs_number)";
    }

    bool may_point_at_items(const version&, std::optional<std::string_view> type) const {
        return !type || fhir::points_at_items(*type);
    }
    std::string points_at_nothing(const version& v) const {
        return "NOT EXISTS (SELECT 1 FROM version_targets t0 WHERE t0.seq = " + v + ".seq)";
    }
    bool may_be_owner_only(const version&, std::optional<std::string_view> type) const {
        return !type || fhir::owner_only_when_pointing_at_nothing(*type);
    }
    /// Where the path does not know the type, the types fhir::owner_only_when_pointing_at_nothing names.
    std::string of_owner_only_type(const version& v, std::optional<std::string_view> type) const {
        if (type)
            return truth(); // may_be_owner_only has decided it
        std::string types;
        for (std::string_view each : fhir::supported_types())
            if (fhir::owner_only_when_pointing_at_nothing(each))
                types += (types.empty() ? "'" : ", '") + std::string(each) + "'";
        return "(" + v + ".type || '') IN (" + types + ")"; // note 5
    }
    /// Each item `v` points at (version_targets), at its last live version.
    template <class Each>
    std::string every_target(const version& v, Each&& each) {
        const std::string target = sql_.fresh_alias("target");
        return "NOT EXISTS (SELECT 1 FROM version_targets " + target + " WHERE " + target + ".seq = " + v +
               ".seq AND NOT " + sql_.last_live(target + ".type", target + ".id", each) + ")";
    }

private:
    static std::string joined(const std::vector<std::string>& parts, std::string_view separator) {
        std::string text;
        for (const std::string& part : parts) {
            text += text.empty() ? "(" : separator;
            text += part;
        }
        return text + ")";
    }

    visibility_sql& sql_;
};

template <class Condition>
std::string visibility_sql::last_live(std::string_view type_column, std::string_view id_column, Condition&& condition) {
    const std::string last = fresh_alias("last");
    const std::string newest = fresh_alias("newest");
    return "EXISTS (SELECT 1 FROM resource_versions " + last + " WHERE " + last + ".seq = (SELECT max(" + newest +
           ".seq) FROM resource_versions " + newest + " WHERE " + newest + ".type = " + std::string(type_column) +
           " AND " + newest + ".id = " + std::string(id_column) + " AND " + newest + ".deleted = 0) AND " +
           condition(last) + ")";
}

std::string visibility_sql::last_live_visible(std::string_view type_column, std::string_view id_column,
                                              std::optional<std::string_view> type, bool with_targets) {
    return last_live(type_column, id_column,
                     [&](const std::string& last) { return visible_version(last, type, with_targets); });
}

std::string visibility_sql::visible_version(const std::string& a, std::optional<std::string_view> type,
                                            bool with_targets) {
    evaluator render(*this);
    return rule::version_visible(render, visibility_, a, type, with_targets);
}

std::string visibility_sql::facets_satisfy(const std::string& v, const std::vector<std::string>& where) {
    const std::string lines = "('\n' || " + v + ".facets || '\n')";
    std::string text;
    for (std::size_t i = 0; i < where.size(); ++i) {
        const auto equals = where[i].find('=');
        if (equals == std::string::npos)
            return "1 = 0";
        const std::string element = where[i].substr(0, equals + 1);
        if (std::any_of(where.begin(), where.begin() + static_cast<std::ptrdiff_t>(i),
                        [&](const std::string& earlier) { return earlier.starts_with(element); }))
            continue;
        std::string rest = lines;
        for (const std::string& allowed : where)
            if (allowed.starts_with(element))
                rest = "replace(" + rest + ", " + sql_.text_arg("\n" + allowed + "\n") + ", '\n')";
        const std::string line_start = sql_.text_arg("\n" + element);
        text += (text.empty() ? "(" : " AND ") + std::string("instr(") + lines + ", " + line_start +
                ") > 0 AND instr(" + rest + ", " + line_start + ") < 1"; // note 6
    }
    return text.empty() ? "1 = 1" : text + ")";
}

std::string visibility_sql::type_grant(const std::string& v, std::optional<std::string_view> type) {
    std::vector<std::string> alternatives;
    if (type) {
        for (const auto& grant : visibility_.readable)
            if (grant.type == *type)
                alternatives.push_back(grant.whole ? "1 = 1" : facets_satisfy(v, grant.facets));
    } else {
        // The version's type, as an expression no index serves (note 5): the types wholly readable
        // in one list, each type readable in part with its facets.
        const std::string type_of = "(" + v + ".type || '')";
        std::vector<std::string> whole;
        for (const auto& grant : visibility_.readable)
            if (grant.whole)
                whole.push_back(grant.type);
            else
                alternatives.push_back("(" + type_of + " = " + sql_.text_arg(grant.type) + " AND " +
                                       facets_satisfy(v, grant.facets) + ")");
        if (!whole.empty())
            alternatives.insert(alternatives.begin(), type_of + " IN (" + sql_.in_list(whole) + ")");
    }
    if (alternatives.empty())
        return "1 = 0";
    std::string text;
    for (const std::string& alternative : alternatives)
        text += (text.empty() ? "(" : " OR ") + alternative;
    return text + ")";
}

std::string visibility_sql::relationship(const std::string& c) {
    return "EXISTS (SELECT 1 FROM organisation_links l WHERE l.nhs_number = " + c +
           ".nhs_number AND l.ods = " + sql_.text_arg(visibility_.organisation) +
           " AND ((l.active = 1 AND l.ended IS NULL) OR l.ended >= " + sql_.arg(visibility_.recent_since) + "))";
}

std::string visibility_sql::break_glass(const std::string& c) {
    std::string text = "(EXISTS (SELECT 1 FROM break_glass_grants g WHERE g.nhs_number = " + c +
                       ".nhs_number AND g.organisation = " + sql_.text_arg(visibility_.organisation) +
                       " AND g.\"user\" = " + sql_.text_arg(visibility_.user) + " AND g.role = " +
                       sql_.text_arg(visibility_.role) + " AND g.until_time > " +
                       sql_.arg(visibility_.now) + " AND g.from_time <= " + sql_.arg(visibility_.now) + ")";
    for (const std::string& nhs : visibility_.break_glass_citizens)
        text += " OR " + c + ".nhs_number = " + sql_.text_arg(nhs);
    return text + ")";
}


} // namespace caregate::storage::detail
