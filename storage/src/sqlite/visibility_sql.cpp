// The visibility rule as SQL (visibility_sql.hpp); its design notes are there.
#include "visibility_sql.hpp"

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

std::string visibility_sql::version_visible(std::string_view v, std::optional<std::string_view> type) {
    if (visibility_.everything)
        return "1";
    return visible_version(std::string(v), type);
}

std::string visibility_sql::visible(std::string_view v, std::optional<std::string_view> type) {
    if (visibility_.everything)
        return "1";
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
        return "1";
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
        return "1";
    return last_live_visible(type_column, id_column, std::nullopt);
}

std::string visibility_sql::last_live_visible(std::string_view type_column, std::string_view id_column,
                                              std::optional<std::string_view> type, bool with_targets) {
    const std::string last = fresh_alias("last");
    const std::string newest = fresh_alias("newest");
    return "EXISTS (SELECT 1 FROM resource_versions " + last + " WHERE " + last + ".seq = (SELECT max(" + newest +
           ".seq) FROM resource_versions " + newest + " WHERE " + newest + ".type = " + std::string(type_column) +
           " AND " + newest + ".id = " + std::string(id_column) + " AND " + newest + ".deleted = 0) AND " +
           visible_version(last, type, with_targets) + ")";
}

std::string visibility_sql::visible_version(const std::string& a, std::optional<std::string_view> type,
                                            bool with_targets) {
    std::vector<std::string> parts;
    parts.push_back(type_grant(a, type));
    for (const std::string& label : visibility_.hidden_labels)
        parts.push_back("instr(char(10) || " + a + ".labels || char(10), " + sql_.text_arg("\n" + label + "\n") +
                        ") = 0");
    for (const std::string& label : visibility_.owner_only_labels)
        parts.push_back("(" + a + ".owner = " + sql_.text_arg(visibility_.organisation) + " OR instr(char(10) || " + a +
                        ".labels || char(10), " + sql_.text_arg("\n" + label + "\n") + ") = 0)");
    parts.push_back("NOT EXISTS (SELECT 1 FROM version_citizens c WHERE c.seq = " + a + ".seq AND NOT (" +
                    citizen_open("c") + " AND " + objection_allows("c", a) + "))");
    // Note 3: only where the version can point at items (the type is one that does, or is not known
    // here). One level deep: what a version points at may not point in turn (the write path refuses
    // it), so a target that does (stored before that rule) counts as hidden.
    if (!type || fhir::points_at_items(*type))
        parts.push_back(with_targets ? targets_visible(a)
                                     : "NOT EXISTS (SELECT 1 FROM version_targets t0 WHERE t0.seq = " + a + ".seq)");
    std::string text;
    for (const std::string& part : parts) {
        text += text.empty() ? "(" : " AND ";
        text += part;
    }
    return text + ")";
}

std::string visibility_sql::targets_visible(const std::string& a) {
    const std::string target = fresh_alias("target");
    return "NOT EXISTS (SELECT 1 FROM version_targets " + target + " WHERE " + target + ".seq = " + a +
           ".seq AND NOT " + last_live_visible(target + ".type", target + ".id", std::nullopt, false) + ")";
}

std::string visibility_sql::facets_satisfy(const std::string& v, const std::vector<std::string>& where) {
    const std::string lines = "(char(10) || " + v + ".facets || char(10))";
    std::string text;
    for (std::size_t i = 0; i < where.size(); ++i) {
        const auto equals = where[i].find('=');
        if (equals == std::string::npos)
            return "0";
        const std::string element = where[i].substr(0, equals + 1);
        if (std::any_of(where.begin(), where.begin() + static_cast<std::ptrdiff_t>(i),
                        [&](const std::string& earlier) { return earlier.starts_with(element); }))
            continue;
        std::string rest = lines;
        for (const std::string& allowed : where)
            if (allowed.starts_with(element))
                rest = "replace(" + rest + ", " + sql_.text_arg("\n" + allowed + "\n") + ", char(10))";
        const std::string line_start = sql_.text_arg("\n" + element);
        text += (text.empty() ? "(" : " AND ") + std::string("instr(") + lines + ", " + line_start +
                ") > 0 AND instr(" + rest + ", " + line_start + ") = 0";
    }
    return text.empty() ? "1" : text + ")";
}

std::string visibility_sql::type_grant(const std::string& v, std::optional<std::string_view> type) {
    std::vector<std::string> alternatives;
    for (const auto& grant : visibility_.readable) {
        if (type && grant.type != *type)
            continue;
        const std::string facets = grant.whole ? std::string() : facets_satisfy(v, grant.facets);
        if (type)
            alternatives.push_back(grant.whole ? "1" : facets);
        else
            alternatives.push_back("(" + v + ".type = " + sql_.text_arg(grant.type) +
                                   (grant.whole ? std::string() : " AND " + facets) + ")");
    }
    if (alternatives.empty())
        return "0";
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
                       " AND g.user = " + sql_.text_arg(visibility_.user) + " AND g.role = " +
                       sql_.text_arg(visibility_.role) + " AND g.until_time > " +
                       sql_.arg(visibility_.now) + " AND g.from_time <= " + sql_.arg(visibility_.now) + ")";
    for (const std::string& nhs : visibility_.break_glass_citizens)
        text += " OR " + c + ".nhs_number = " + sql_.text_arg(nhs);
    return text + ")";
}

/// The citizen of version_citizens row `c` is open to the caller (guard::open_citizen).
std::string visibility_sql::citizen_open(const std::string& c) {
    if (!visibility_.only_citizen.empty())
        return "(" + c + ".nhs_number = " + sql_.text_arg(visibility_.only_citizen) +
               " AND EXISTS (SELECT 1 FROM resources p WHERE p.type = 'Patient' AND p.id = " + c +
               ".nhs_number AND p.deleted = 0))";
    if (visibility_.all_citizens)
        return "1";
    return "(EXISTS (SELECT 1 FROM resources p WHERE p.type = 'Patient' AND p.id = " + c +
           ".nhs_number AND p.deleted = 0) AND (" + relationship(c) + " OR " + break_glass(c) + "))";
}

/// The citizen's objection, if any, lets the caller see version `v` (guard::can_read).
std::string visibility_sql::objection_allows(const std::string& c, const std::string& v) {
    if (!visibility_.objection_binds)
        return "1";
    std::string text = "(" + v + ".owner = " + sql_.text_arg(visibility_.organisation) +
                       " OR NOT EXISTS (SELECT 1 FROM objections o WHERE o.nhs_number = " + c + ".nhs_number)";
    // Break-glass sets an objection aside only when the record is open by it alone (no
    // relationship), and only if the policy says so; all-citizens rules never break the glass.
    if (visibility_.break_glass_overrides_objection && !visibility_.all_citizens)
        text += " OR (NOT " + relationship(c) + " AND " + break_glass(c) + ")";
    return text + ")";
}


} // namespace caregate::storage::detail
