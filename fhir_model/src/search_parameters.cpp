// Builds the search parameter table (search_parameters.hpp) from the generated JSON, once; a generated
// expression that does not parse is a bug in the generator's mirror of the grammar, so it throws.
#include "fhir_model/search_parameters.hpp"

#include "fhir_model/resource.hpp"
#include "json.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

namespace caregate::fhir {
namespace detail {
extern const std::string_view generated_search_parameter_chunks[];
extern const unsigned generated_search_parameter_chunk_count;
}

namespace {

search_param_type type_of(std::string_view name) {
    static constexpr std::pair<std::string_view, search_param_type> table[] = {
        {"number", search_param_type::number}, {"date", search_param_type::date},
        {"string", search_param_type::string}, {"token", search_param_type::token},
        {"reference", search_param_type::reference}, {"composite", search_param_type::composite},
        {"quantity", search_param_type::quantity}, {"uri", search_param_type::uri},
        {"special", search_param_type::special},
    };
    for (auto& [text, type] : table)
        if (text == name)
            return type;
    throw std::logic_error("generated search parameters: unknown type");
}

fhirpath_expression compile(std::string_view text) {
    std::string error;
    auto out = fhirpath_expression::parse(text, error);
    if (!out)
        throw std::logic_error("generated search parameter does not parse: " + std::string(text) + ": " + error);
    return std::move(*out);
}

bool is_common(const search_parameter& p) { return p.base == "Resource" || p.base == "DomainResource"; }

/// The top-level `|` alternatives of an expression, trimmed (none inside parentheses or strings).
std::set<std::string> alternatives(std::string_view expression) {
    std::set<std::string> out;
    int depth = 0;
    bool quoted = false;
    std::size_t start = 0;
    auto add = [&](std::size_t end) {
        std::string_view one = expression.substr(start, end - start);
        while (!one.empty() && one.front() == ' ')
            one.remove_prefix(1);
        while (!one.empty() && one.back() == ' ')
            one.remove_suffix(1);
        out.emplace(one);
    };
    for (std::size_t i = 0; i < expression.size(); ++i) {
        const char c = expression[i];
        if (quoted) {
            if (c == '\\')
                ++i;
            else if (c == '\'')
                quoted = false;
        } else if (c == '\'') {
            quoted = true;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')') {
            --depth;
        } else if (c == '|' && depth == 0) {
            add(i);
            start = i + 1;
        }
    }
    add(expression.size());
    return out;
}

bool same_components(const search_parameter& a, const search_parameter& b) {
    if (a.components.size() != b.components.size())
        return false;
    for (std::size_t i = 0; i < a.components.size(); ++i)
        if (a.components[i].type != b.components[i].type ||
            a.components[i].expression.text() != b.components[i].expression.text())
            return false;
    return true;
}

/// Sets each parameter's union_of (search_parameters.hpp): the other parameters of its base and type
/// whose alternatives are among its own, when together they are all of them. Of two parameters with
/// the same expression, the one whose code sorts first keeps its values and the other is its union.
void find_unions(std::vector<search_parameter>& parameters) {
    std::vector<std::set<std::string>> alts;
    for (const search_parameter& p : parameters)
        alts.push_back(alternatives(p.expression.text()));
    auto parts_of = [&](std::size_t i) {
        std::vector<std::size_t> parts;
        const search_parameter& p = parameters[i];
        if (p.type == search_param_type::reference || p.type == search_param_type::special || is_common(p))
            return parts;
        std::set<std::string> covered;
        for (std::size_t j = 0; j < parameters.size(); ++j) {
            const search_parameter& q = parameters[j];
            if (j == i || q.base != p.base || q.type != p.type || !same_components(p, q) ||
                !std::includes(alts[i].begin(), alts[i].end(), alts[j].begin(), alts[j].end()) ||
                (alts[j] == alts[i] && q.code > p.code))
                continue;
            parts.push_back(j);
            covered.insert(alts[j].begin(), alts[j].end());
        }
        if (covered != alts[i])
            parts.clear();
        return parts;
    };
    std::vector<std::vector<std::size_t>> parts(parameters.size());
    for (std::size_t i = 0; i < parameters.size(); ++i)
        parts[i] = parts_of(i);
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        // Only parameters that keep their own values: a part that is itself a union is covered by
        // its own parts, which are among this one's too.
        std::set<std::string> covered;
        for (std::size_t j : parts[i])
            if (parts[j].empty()) {
                parameters[i].union_of.push_back(&parameters[j]);
                covered.insert(alts[j].begin(), alts[j].end());
            }
        if (!parts[i].empty() && covered != alts[i])
            throw std::logic_error("search parameter " + parameters[i].code + ": its parts do not cover it");
    }
}

/// Sets `narrows` and `narrowed_to` (search_parameters.hpp): a reference parameter each of whose
/// alternatives is `X.where(resolve() is T)`, one T for all, where the X are exactly the alternatives
/// of another reference parameter of the same base.
void find_narrowings(std::vector<search_parameter>& parameters) {
    constexpr std::string_view where = ".where(resolve() is ";
    for (search_parameter& p : parameters) {
        if (p.type != search_param_type::reference || is_common(p))
            continue;
        std::set<std::string> narrowed;
        std::string type;
        bool all = true;
        for (const std::string& alternative : alternatives(p.expression.text())) {
            const std::size_t at = alternative.rfind(where);
            if (at == std::string::npos || alternative.back() != ')') {
                all = false;
                break;
            }
            const std::string t = alternative.substr(at + where.size(), alternative.size() - 1 - at - where.size());
            if (!type.empty() && t != type) {
                all = false;
                break;
            }
            type = t;
            narrowed.insert(alternative.substr(0, at));
        }
        if (!all || type.empty())
            continue;
        for (const search_parameter& q : parameters)
            if (&q != &p && q.base == p.base && q.type == search_param_type::reference &&
                alternatives(q.expression.text()) == narrowed) {
                p.narrows = &q;
                p.narrowed_to = type;
                break;
            }
    }
}

struct table {
    std::vector<search_parameter> parameters;
    std::vector<unsupported_search_parameter> unsupported;
    /// Each type's parameters as search_parameters_for gives them, made once: every search clause
    /// and every index extraction asks.
    std::map<std::string, std::vector<const search_parameter*>, std::less<>> by_type;
};

const table& the_table() {
    static const table built = [] {
        std::string text;
        for (unsigned i = 0; i < detail::generated_search_parameter_chunk_count; ++i)
            text.append(detail::generated_search_parameter_chunks[i]);
        rapidjson::Document doc;
        if (doc.Parse(text.data(), text.size()).HasParseError())
            throw std::logic_error("generated search parameters: not JSON");
        table out;
        for (auto& p : doc["parameters"].GetArray()) {
            search_parameter param;
            param.base = detail::view(p["base"]);
            param.code = detail::view(p["code"]);
            param.type = type_of(detail::view(p["type"]));
            param.expression = compile(detail::view(p["expression"]));
            if (auto* targets = detail::find(p, "targets"))
                for (auto& t : targets->GetArray())
                    param.targets.emplace_back(detail::view(t));
            if (auto* components = detail::find(p, "components"))
                for (auto& c : components->GetArray())
                    param.components.push_back({std::string(detail::view(c["definition"])),
                                                std::string(detail::view(c["code"])),
                                                type_of(detail::view(c["type"])),
                                                compile(detail::view(c["expression"]))});
            out.parameters.push_back(std::move(param));
        }
        find_unions(out.parameters);
        find_narrowings(out.parameters);
        std::vector<const search_parameter*> common;
        for (const search_parameter& p : out.parameters)
            if (is_common(p))
                common.push_back(&p);
            else
                out.by_type[p.base].push_back(&p);
        // A type R4 gives no parameters of its own (BiologicallyDerivedProduct, CatalogEntry, ...)
        // still has the common ones.
        for (std::string_view type : supported_types())
            out.by_type.try_emplace(std::string(type));
        for (auto& [type, own] : out.by_type)
            own.insert(own.end(), common.begin(), common.end());
        for (auto& p : doc["unsupported"].GetArray())
            out.unsupported.push_back({std::string(detail::view(p["base"])), std::string(detail::view(p["code"])),
                                       std::string(detail::view(p["type"])),
                                       std::string(detail::view(p["expression"])),
                                       std::string(detail::view(p["reason"]))});
        return out;
    }();
    return built;
}

} // namespace

std::string_view to_string(search_param_type type) noexcept {
    static constexpr std::string_view names[] = {"number", "date", "string", "token", "reference",
                                                 "composite", "quantity", "uri", "special"};
    return names[static_cast<int>(type)];
}

const std::vector<search_parameter>& all_search_parameters() { return the_table().parameters; }
const std::vector<unsupported_search_parameter>& unsupported_search_parameters() { return the_table().unsupported; }

const std::vector<const search_parameter*>& search_parameters_for(std::string_view resource_type) {
    static const std::vector<const search_parameter*> none;
    const auto& by_type = the_table().by_type;
    const auto found = by_type.find(resource_type);
    return found == by_type.end() ? none : found->second;
}

const search_parameter* find_search_parameter(std::string_view resource_type, std::string_view code) {
    for (const search_parameter* p : search_parameters_for(resource_type))
        if (p->code == code)
            return p;
    return nullptr;
}

} // namespace caregate::fhir
