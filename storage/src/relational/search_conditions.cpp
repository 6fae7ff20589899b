// The SQL of each search clause (planner members declared in search_planner.hpp): the condition a
// clause puts on a version, per parameter type (string, token, date, number, quantity, reference,
// uri, composite) and modifier, and the chains and _has whose steps become tables of the WITH clause
// (design note 7). Every value is bound through sql_text, never spliced (note 5); every index row a
// condition reads is taken at the snapshot (note 1). Choosing the driver is search_planner.cpp's.
#include "search_planner.hpp"

#include "search_index.hpp"

#include "fhir_model/date_time.hpp"
#include "fhir_model/search_values.hpp"
#include "fhir_model/ucum.hpp"

#include <cmath>

namespace caregate::storage::detail {

namespace {

using fhir::search_modifier;
using fhir::search_param_type;
using fhir::search_prefix;

/// The smallest string greater than every string starting with `prefix` (byte order), for a prefix
/// match as an index range; empty when there is none (a prefix of 0xFF bytes only).
std::string prefix_end(std::string prefix) {
    while (!prefix.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(prefix.back());
        if (last < 0xFF) {
            ++last;
            return prefix;
        }
        prefix.pop_back();
    }
    return prefix;
}

} // namespace

std::string planner::indexed_param(const fhir::search_parameter& p, const fhir::search_clause& clause) {
    return clause.modifier == search_modifier::of_type ? of_type_param(p.code) : p.code;
}

std::string planner::param_rows(const std::string& x, const fhir::search_parameter& p,
                                const fhir::search_clause& clause) {
    if (p.narrows)
        return x + ".param = " + sql_.text_arg(p.narrows->code) + " AND " + x + ".target_type = " +
               sql_.text_arg(p.narrowed_to);
    if (clause.modifier == search_modifier::of_type || p.union_of.empty())
        return x + ".param = " + sql_.text_arg(indexed_param(p, clause));
    std::vector<std::string> parts;
    for (const fhir::search_parameter* part : p.union_of)
        parts.push_back(part->code);
    return x + ".param IN (" + sql_.in_list(parts) + ")";
}

std::string planner::param_rows(const std::string& x, const fhir::search_parameter& p) {
    return param_rows(x, p, fhir::search_clause{});
}

fhir::result<std::string> planner::step_table(const clause_at& at) {
    const fhir::search_step& step = at.clause->path[at.step];
    auto inner = match(step.type, {clause_at{at.clause, at.step + 1}}, {});
    if (!inner)
        return std::move(inner).failure();
    const std::string name = "chain" + std::to_string(ctes_.size() + 1);
    ctes_.push_back(name + "(seq) AS (" + inner.value() + ")");
    return name;
}

fhir::result<std::string> planner::chain_driver_rows(std::string_view type, const clause_at& at) {
    const fhir::search_step& step = at.clause->path[at.step];
    auto table = step_table(at);
    if (!table)
        return std::move(table).failure();
    if (!step.reverse)
        return "SELECT x.seq FROM search_reference x WHERE x.type = " + sql_.text_arg(type) + " AND " +
               param_rows("x", *step.reference) + " AND x.target_type = " + sql_.text_arg(step.type) +
               " AND x.target_id IN (SELECT w.id FROM resource_versions w WHERE w.seq IN (SELECT seq FROM " +
               table.value() + ")) AND " + live("x");
    return "SELECT x.seq FROM search_token x WHERE x.type = " + sql_.text_arg(type) +
           " AND x.param = '_id' AND " + live("x") +
           " AND x.code IN (SELECT r.target_id FROM search_reference r WHERE r.type = " + sql_.text_arg(step.type) +
           " AND " + param_rows("r", *step.reference) + " AND r.target_type = " +
           sql_.text_arg(type) + " AND " + live("r") + " AND r.seq IN (SELECT seq FROM " + table.value() + "))";
}

fhir::result<std::string> planner::clause_condition(std::string_view type, const clause_at& at, const std::string& v) {
    const fhir::search_clause& clause = *at.clause;
    if (at.step < clause.path.size()) {
        const fhir::search_step& step = clause.path[at.step];
        auto table = step_table(at);
        if (!table)
            return std::move(table).failure();
        const std::string& step_table = table.value();
        const std::string x = "r" + std::to_string(++alias_counter_);
        if (!step.reverse)
            return "EXISTS (SELECT 1 FROM search_reference " + x + " WHERE " + x + ".seq = " + v + ".seq AND " +
                   param_rows(x, *step.reference) + " AND " + x + ".target_type = " + sql_.text_arg(step.type) +
                   " AND " + x + ".target_id IN (SELECT w.id FROM resource_versions w WHERE w.seq IN (SELECT seq FROM " +
                   step_table + ")))";
        return "EXISTS (SELECT 1 FROM search_reference " + x + " WHERE " + x + ".target_id = " + v + ".id AND " + x +
               ".target_type = " + v + ".type AND " + x + ".type = " + sql_.text_arg(step.type) + " AND " +
               param_rows(x, *step.reference) + " AND " + live(x) + " AND " + x + ".seq IN (SELECT seq FROM " +
               step_table + "))";
    }
    const fhir::search_parameter* p = parameter_on(type, clause);
    if (!p)
        return unsupported("the parameter " + clause.name + " is not defined for " + std::string(type));
    const char* table = table_of(p->type);
    if (!table)
        return unsupported("the parameter " + clause.name + " cannot be searched here");
    const std::string x = "x" + std::to_string(++alias_counter_);
    std::string rows = std::string("SELECT 1 FROM ") + table + " " + x + " WHERE " + x + ".seq = " + v +
                       ".seq AND " + param_rows(x, *p, clause);
    if (clause.modifier == search_modifier::missing) {
        // missing=true: no value; missing=false: some value (any_of holds one value).
        const bool missing = !clause.any_of.empty() && clause.any_of.front().missing;
        return std::string(missing ? "NOT EXISTS (" : "EXISTS (") + rows + ")";
    }
    auto values = alternatives(*p, clause, x);
    if (!values)
        return std::move(values).failure();
    return std::string(is_negative(clause) ? "NOT EXISTS (" : "EXISTS (") + rows + " AND " + values.value() + ")";
}

fhir::result<std::string> planner::alternatives(const fhir::search_parameter& p, const fhir::search_clause& clause,
                                                const std::string& x) {
    if (clause.any_of.empty())
        return unsupported("the parameter " + clause.name + " has no value");
    std::string text;
    for (const fhir::search_argument& argument : clause.any_of) {
        auto one = value_condition(p, clause, argument, x);
        if (!one)
            return std::move(one).failure();
        text += (text.empty() ? "(" : " OR ") + ("(" + one.value() + ")");
    }
    return text + ")";
}

std::string planner::contains_text(const std::string& column, const std::string& part) {
    // LIKE, not instr(): the same rows (both sides are folded by normalize_search_string, so
    // SQLite's LIKE ignoring ASCII case changes nothing), and on PostgreSQL a trigram index
    // (search_string_by_trigram) serves it. The part's own % _ and \ match only themselves.
    std::string pattern = "%";
    for (const char c : part) {
        if (c == '%' || c == '_' || c == '\\')
            pattern += '\\';
        pattern += c;
    }
    pattern += '%';
    return column + " LIKE " + sql_.text_arg(pattern) + " ESCAPE '\\'";
}

std::string planner::prefix_range(const std::string& column, const std::string& prefix) {
    const std::string end = prefix_end(prefix);
    std::string text = column + " >= " + sql_.text_arg(prefix);
    if (!end.empty())
        text += " AND " + column + " < " + sql_.text_arg(end);
    return text;
}

std::string planner::token_match(const std::string& system_col, const std::string& code_col,
                                 const std::optional<std::string>& system, const std::string& code) {
    std::string text;
    if (!code.empty())
        text = code_col + " = " + sql_.text_arg(code);
    if (system) {
        if (!text.empty())
            text += " AND ";
        text += system->empty() ? system_col + " IS NULL" : system_col + " = " + sql_.text_arg(*system);
    }
    return text.empty() ? "1 = 1" : text;
}

std::string planner::date_match(search_prefix prefix, const fhir::time_range& range, const std::string& low,
                                const std::string& high) {
    const std::string b = sql_.arg(range.begin);
    const std::string e = sql_.arg(range.end);
    const std::string within = "(" + low + " >= " + b + " AND " + high + " <= " + e + ")";
    // Each comparison leads with a bound on one column that it implies (within: low in [b, e);
    // ge: high > b; le: low < e), so an index on (type, param, low) or (type, param, high)
    // reads only the range that can match.
    switch (prefix) {
    case search_prefix::eq: return "(" + low + " >= " + b + " AND " + low + " < " + e + " AND " + high + " <= " + e + ")";
    case search_prefix::ne: return "NOT " + within;
    case search_prefix::gt: return high + " > " + e;
    case search_prefix::lt: return low + " < " + b;
    case search_prefix::ge: return "(" + high + " > " + b + " AND (" + high + " > " + e + " OR " + within + "))";
    case search_prefix::le: return "(" + low + " < " + e + " AND (" + low + " < " + b + " OR " + within + "))";
    case search_prefix::sa: return low + " >= " + e;
    case search_prefix::eb: return high + " <= " + b;
    case search_prefix::ap: {
        // Approximately: the value's range widened as fhir::approximately says (the audit log's
        // search widens it the same way).
        const fhir::time_range wide = fhir::approximately(range, visibility_.now);
        return "(" + low + " < " + sql_.arg(wide.end) + " AND " + high + " > " + sql_.arg(wide.begin) + ")";
    }
    }
    return "1 = 0";
}

std::string planner::number_match(search_prefix prefix, const fhir::search_argument& a, const std::string& value) {
    switch (prefix) {
    case search_prefix::eq:
        return "(" + value + " >= " + sql_.arg(a.number_low) + " AND " + value + " < " + sql_.arg(a.number_high) + ")";
    case search_prefix::ne:
        return "NOT (" + value + " >= " + sql_.arg(a.number_low) + " AND " + value + " < " +
               sql_.arg(a.number_high) + ")";
    case search_prefix::gt:
    case search_prefix::sa: return value + " > " + sql_.arg(a.number);
    case search_prefix::lt:
    case search_prefix::eb: return value + " < " + sql_.arg(a.number);
    case search_prefix::ge: return value + " >= " + sql_.arg(a.number);
    case search_prefix::le: return value + " <= " + sql_.arg(a.number);
    case search_prefix::ap: {
        const double margin = std::abs(a.number) * 0.1;
        return "(" + value + " >= " + sql_.arg(a.number - margin) + " AND " + value + " <= " +
               sql_.arg(a.number + margin) + ")";
    }
    }
    return "1 = 0";
}

std::string planner::quantity_units(const fhir::search_argument& a, const std::string& system_col,
                                    const std::string& code_col, const std::string& unit_col) {
    std::string text;
    if (!a.quantity_code.empty()) {
        const std::string code = sql_.text_arg(a.quantity_code);
        text = a.quantity_system ? code_col + " = " + code
                                 : "(" + code_col + " = " + code + " OR " + unit_col + " = " + code + ")";
    }
    if (a.quantity_system && !a.quantity_system->empty())
        text += (text.empty() ? "" : " AND ") + system_col + " = " + sql_.text_arg(*a.quantity_system);
    return text;
}

fhir::result<std::string> planner::value_condition(const fhir::search_parameter& p, const fhir::search_clause& clause,
                                                   const fhir::search_argument& a, const std::string& x) {
    switch (p.type) {
    case search_param_type::string:
        if (clause.modifier == search_modifier::exact)
            return x + ".exact = " + sql_.text_arg(a.text);
        if (clause.modifier == search_modifier::contains)
            return contains_text(x + ".normalized", fhir::normalize_search_string(a.text));
        return prefix_range(x + ".normalized", fhir::normalize_search_string(a.text));
    case search_param_type::token:
        switch (clause.modifier) {
        case search_modifier::text: {
            const std::string folded = fhir::normalize_search_string(a.text);
            return "(" + prefix_range(x + ".text", folded) + " OR instr(" + x + ".text, " +
                   sql_.text_arg(" " + folded) + ") > 0)";
        }
        case search_modifier::in:
        case search_modifier::not_in: {
            const auto* members = fhir::value_set_members(a.text);
            if (!members)
                return unsupported("the value set " + a.text + " is not one this server holds");
            std::string text;
            for (const auto& [system, code] : *members)
                text += (text.empty() ? "(" : " OR ") +
                        ("(" + x + ".code = " + sql_.text_arg(code) + " AND " + x +
                         ".system = " + sql_.text_arg(system) + ")");
            return text.empty() ? std::string("1 = 0") : text + ")";
        }
        case search_modifier::of_type: // the type's coding and the Identifier's value as written
            return x + ".system = " + sql_.text_arg(a.system.value_or("")) + " AND " + x +
                   ".code = " + sql_.text_arg(a.code) + " AND " + x + ".text = " + sql_.text_arg(a.of_type_value);
        default: return token_match(x + ".system", x + ".code", a.system, a.code);
        }
    case search_param_type::date: return date_match(a.prefix, a.range, x + ".low", x + ".high");
    case search_param_type::number: return number_match(a.prefix, a, x + ".value");
    case search_param_type::quantity: {
        // A UCUM unit that converts by a factor also finds values written in the units of its
        // kind (fhir/ucum.hpp): 5.4|http://unitsofmeasure.org|g finds 5400 mg.
        const auto commensurable = a.quantity_system == fhir::ucum_system
                                       ? fhir::ucum_commensurable(a.quantity_code)
                                       : std::vector<std::pair<std::string, double>>{};
        if (commensurable.size() > 1) {
            std::string text;
            for (const auto& [code, factor] : commensurable) {
                fhir::search_argument scaled = a; // the value in `code`: divide by its factor
                scaled.number /= factor;
                scaled.number_low /= factor;
                scaled.number_high /= factor;
                text += (text.empty() ? "(" : " OR ") + ("(" + x + ".code = " + sql_.text_arg(code) + " AND " +
                                                         number_match(a.prefix, scaled, x + ".value") + ")");
            }
            return text + ") AND " + x + ".system = " + sql_.text_arg(fhir::ucum_system);
        }
        std::string text = number_match(a.prefix, a, x + ".value");
        if (auto units = quantity_units(a, x + ".system", x + ".code", x + ".unit"); !units.empty())
            text += " AND " + units;
        return text;
    }
    case search_param_type::reference:
        if (clause.modifier == search_modifier::identifier)
            return token_match(x + ".identifier_system", x + ".identifier_value", a.system, a.code);
        if (!a.url.empty())
            return x + ".url = " + sql_.text_arg(a.url);
        {
            std::string text = x + ".target_id = " + sql_.text_arg(a.id);
            const std::string& target = !a.target_type.empty() ? a.target_type : clause.type_modifier;
            if (!target.empty())
                text += " AND " + x + ".target_type = " + sql_.text_arg(target);
            return text;
        }
    case search_param_type::uri:
        if (clause.modifier == search_modifier::below)
            return prefix_range(x + ".uri", a.text);
        if (clause.modifier == search_modifier::above) {
            const std::string value = sql_.text_arg(a.text);
            return "substr(" + value + ", 1, length(" + x + ".uri)) = " + x + ".uri";
        }
        return x + ".uri = " + sql_.text_arg(a.text);
    case search_param_type::composite: {
        if (a.components.size() != 2 || p.components.size() != 2)
            return unsupported("the composite parameter " + clause.name + " needs two components");
        const fhir::search_argument& first = a.components[0];
        const fhir::search_argument& second = a.components[1];
        std::string text;
        if (p.components[0].type == search_param_type::reference) {
            const std::string target =
                first.target_type.empty() ? first.id : first.target_type + "/" + first.id;
            text = x + ".c1_code = " + sql_.text_arg(first.url.empty() ? target : first.url);
        } else {
            text = token_match(x + ".c1_system", x + ".c1_code", first.system, first.code);
        }
        switch (p.components[1].type) {
        case search_param_type::token:
            text += " AND " + token_match(x + ".c2_system", x + ".c2_code", second.system, second.code);
            break;
        case search_param_type::quantity:
            text += " AND " + number_match(second.prefix, second, x + ".c2_value");
            if (auto units = quantity_units(second, x + ".c2_system", x + ".c2_code", x + ".c2_code"); !units.empty())
                text += " AND " + units;
            break;
        case search_param_type::date:
            text += " AND " + date_match(second.prefix, second.range, x + ".c2_low", x + ".c2_high");
            break;
        case search_param_type::string:
            text += " AND " + prefix_range(x + ".c2_text", fhir::normalize_search_string(second.text));
            break;
        default: return unsupported("the composite parameter " + clause.name + " is not supported");
        }
        return text;
    }
    case search_param_type::special: break;
    }
    return unsupported("the parameter " + clause.name + " cannot be searched here");
}

} // namespace caregate::storage::detail
