// Parses a FHIR search's (name, value) pairs into a search_query (search_query.hpp), against the R4
// search parameter definitions: names (chains, _has, modifiers), values for each parameter type,
// and the result parameters. Rules from https://hl7.org/fhir/R4/search.html. Not SQL, not matching.
//
// Diagnostics name the parameter and, at most, the piece at fault that is not a value (a modifier, a
// type, a parameter code, a prefix, a value set URL); search values themselves (a name, a birth date,
// an NHS number) are never echoed, because error texts end up in logs.
#include "fhir_model/search_query.hpp"

#include "definitions.hpp"
#include "fhir_model/resource.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

namespace caregate::fhir {

namespace {

using value_set_pairs = std::vector<std::pair<std::string, std::string>>;

// ---- errors ------------------------------------------------------------------------------------

/// A piece of the request for a diagnostic, quoted and cut short.
std::string quoted(std::string_view text) {
    constexpr std::size_t longest = 64;
    if (text.size() > longest)
        return "'" + std::string(text.substr(0, longest)) + "...'";
    return "'" + std::string(text) + "'";
}

error unsupported(std::string_view name, const std::string& what) {
    return error::make(category::unsupported, "not-supported", "search parameter " + quoted(name) + ": " + what,
                       std::string(name));
}

/// `code` is "value" for a value that does not parse, "invalid" for a name or structure that does not.
error malformed(std::string_view name, const std::string& what, std::string code = "value") {
    return error::make(category::malformed, std::move(code), "search parameter " + quoted(name) + ": " + what,
                       std::string(name));
}

// ---- escapes -----------------------------------------------------------------------------------

/// Splits `text` on each `separator` not escaped by a backslash; the pieces keep their escapes.
std::vector<std::string_view> split_unescaped(std::string_view text, char separator) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\') {
            ++i; // the next character is escaped, whatever it is
        } else if (text[i] == separator) {
            out.push_back(text.substr(start, i - start));
            start = i + 1;
        }
    }
    out.push_back(text.substr(start));
    return out;
}

/// Resolves `\,` `\|` `\$` `\\`; a backslash before anything else stays as written.
std::string unescape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size() && std::string_view(",|$\\").find(text[i + 1]) != std::string_view::npos)
            out += text[++i];
        else
            out += text[i];
    }
    return out;
}

// ---- types and parameters ----------------------------------------------------------------------

bool is_resource_type(std::string_view type) { return detail::r4().resource_types.contains(type); }

/// True when reference parameter `p` may point at `type` (any resource type when it names no targets).
bool has_target(const search_parameter& p, std::string_view type) {
    if (p.targets.empty())
        return is_resource_type(type);
    return std::find(p.targets.begin(), p.targets.end(), type) != p.targets.end();
}

/// The types this server holds that reference parameter `p` can reach.
std::vector<std::string> reachable_types(const search_parameter& p) {
    std::vector<std::string> out;
    if (p.targets.empty()) {
        for (std::string_view type : supported_types())
            out.emplace_back(type);
    } else {
        for (const std::string& type : p.targets)
            if (is_supported_type(type))
                out.push_back(type);
    }
    return out;
}

/// The error for a parameter code that `type` does not have, with the reason if R4 defines it but
/// this server cannot evaluate it (Location.near, _text, _content, _query).
error unknown_parameter(std::string_view name, std::string_view type, std::string_view code) {
    for (const unsupported_search_parameter& u : unsupported_search_parameters())
        if (u.code == code && (u.base == type || u.base == "Resource" || u.base == "DomainResource"))
            return unsupported(name, quoted(code) + " is not supported (" + u.reason + ")");
    return unsupported(name, "unknown search parameter " + quoted(code) + " for " + std::string(type));
}

/// Search features of R4 this server does not implement; each is an error (or dropped when lenient).
bool is_unsupported_feature(std::string_view code) {
    static constexpr std::string_view features[] = {"_contained", "_containedType", "_text", "_content",
                                                    "_query",     "_filter",        "_list", "_score"};
    return std::find(std::begin(features), std::end(features), code) != std::end(features);
}

/// A FHIR id: 1 to 64 of [A-Za-z0-9-.].
bool is_id(std::string_view text) {
    if (text.empty() || text.size() > 64)
        return false;
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
}

bool is_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ---- names: chains, _has, the parameter, the modifier ------------------------------------------

/// For a forward chain step from reference parameter `ref`: the type named by `:Type` (`given`), or
/// the one type it can reach that defines the next parameter of the chain (the start of `rest`).
result<std::string> chain_target(std::string_view name, const search_parameter& ref, std::string_view given,
                                 std::string_view rest) {
    if (!given.empty()) {
        if (!has_target(ref, given))
            return unsupported(name, quoted(given) + " is not a target type of " + quoted(ref.code));
        if (!is_supported_type(given))
            return unsupported(name, quoted(given) + " is not a type this server holds");
        return std::string(given);
    }
    const std::string_view next_code = rest.substr(0, rest.find_first_of(":."));
    std::vector<std::string> candidates;
    for (std::string& type : reachable_types(ref))
        if (find_search_parameter(type, next_code) != nullptr)
            candidates.push_back(std::move(type));
    if (candidates.size() == 1)
        return std::move(candidates.front());
    if (candidates.empty())
        return unsupported(name, "no target type of " + quoted(ref.code) + " has a search parameter " + quoted(next_code));
    std::string types;
    for (const std::string& type : candidates)
        types += (types.empty() ? "" : ", ") + type;
    return unsupported(name, "ambiguous chain: " + quoted(ref.code) + " may refer to " + types + "; name the type, e.g. " +
                                 ref.code + ":" + candidates.front() + "." + std::string(next_code));
}

/// Follows the chain and _has steps of `name` from `start`, filling `clause.path` and `clause.type`;
/// returns the last segment, `code` or `code:modifier`.
result<std::string_view> resolve_path(std::string_view name, const std::string& start, unsigned max_chain,
                                      search_clause& clause) {
    std::string current = start;
    std::string_view rest = name;
    for (;;) {
        search_step step;
        if (rest.starts_with("_has:")) {
            // _has:Type:reference:rest
            const std::string_view parts = rest.substr(5);
            const auto first = parts.find(':');
            const auto second = first == std::string_view::npos ? first : parts.find(':', first + 1);
            if (second == std::string_view::npos || second + 1 == parts.size())
                return malformed(name, "_has needs _has:Type:parameter:parameter", "invalid");
            const std::string_view type = parts.substr(0, first);
            const std::string_view code = parts.substr(first + 1, second - first - 1);
            rest = parts.substr(second + 1);
            if (!is_supported_type(type))
                return unsupported(name, "_has: " + quoted(type) + " is not a type this server holds");
            const search_parameter* ref = find_search_parameter(type, code);
            if (ref == nullptr || ref->type != search_param_type::reference)
                return unsupported(name, "_has: " + quoted(code) + " is not a reference parameter of " + std::string(type));
            if (!has_target(*ref, current))
                return unsupported(name, "_has: " + std::string(type) + "." + ref->code + " does not refer to " + current);
            step = {true, std::string(type), ref};
        } else {
            const auto dot = rest.find('.');
            if (dot == std::string_view::npos)
                break;
            const std::string_view head = rest.substr(0, dot);
            rest = rest.substr(dot + 1);
            const auto colon = head.find(':');
            const std::string_view code = head.substr(0, colon);
            const std::string_view given = colon == std::string_view::npos ? std::string_view() : head.substr(colon + 1);
            const search_parameter* ref = find_search_parameter(current, code);
            if (ref == nullptr)
                return unknown_parameter(name, current, code);
            if (ref->type != search_param_type::reference)
                return unsupported(name, quoted(code) + " is not a reference parameter, so it cannot be chained");
            auto next = chain_target(name, *ref, given, rest);
            if (!next)
                return std::move(next).failure();
            step = {false, std::move(next.value()), ref};
        }
        current = step.type;
        clause.path.push_back(std::move(step));
        if (clause.path.size() > max_chain)
            return unsupported(name, "a chain may have at most " + std::to_string(max_chain) + " steps");
    }
    clause.type = current;
    return rest;
}

/// True when a token parameter indexes an Identifier, the only kind :of-type applies to. Decided from
/// the expression's text (every such R4 parameter of the supported types ends in `.identifier`
/// or `.masterIdentifier`), as the definitions carry no element type for a parameter.
bool is_identifier_parameter(const search_parameter& p) {
    std::string text = p.expression.text();
    std::transform(text.begin(), text.end(), text.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; });
    return text.find("identifier") != std::string::npos;
}

/// The modifier text after the parameter code (`exact`, `Patient`, ...), checked against what the
/// parameter's type allows; `type_modifier` gets the type of a reference's `:Type`.
result<search_modifier> parse_modifier(std::string_view name, const search_parameter& p, std::string_view text,
                                       std::string& type_modifier) {
    using t = search_param_type;
    if (text.empty())
        return search_modifier::none;
    if (p.type == t::reference && text[0] >= 'A' && text[0] <= 'Z') {
        if (!has_target(p, text))
            return unsupported(name, quoted(text) + " is not a target type of " + quoted(p.code));
        type_modifier = std::string(text);
        return search_modifier::type;
    }
    static constexpr std::pair<std::string_view, search_modifier> names[] = {
        {"exact", search_modifier::exact},   {"contains", search_modifier::contains},
        {"missing", search_modifier::missing}, {"not", search_modifier::not_},
        {"text", search_modifier::text},     {"of-type", search_modifier::of_type},
        {"in", search_modifier::in},         {"not-in", search_modifier::not_in},
        {"identifier", search_modifier::identifier}, {"above", search_modifier::above},
        {"below", search_modifier::below},
    };
    const auto found = std::find_if(std::begin(names), std::end(names), [&](auto& entry) { return entry.first == text; });
    if (found == std::end(names))
        return unsupported(name, "unknown modifier " + quoted(text));
    const search_modifier m = found->second;
    bool allowed = m == search_modifier::missing;
    switch (p.type) {
    case t::string: allowed = allowed || m == search_modifier::exact || m == search_modifier::contains; break;
    case t::token:
        allowed = allowed || m == search_modifier::not_ || m == search_modifier::text || m == search_modifier::in ||
                  m == search_modifier::not_in || (m == search_modifier::of_type && is_identifier_parameter(p));
        break;
    case t::reference: allowed = allowed || m == search_modifier::identifier; break;
    case t::uri: allowed = allowed || m == search_modifier::above || m == search_modifier::below; break;
    default: break; // date, number, quantity, composite: :missing only
    }
    if (!allowed)
        return unsupported(name, "modifier " + quoted(text) + " is not supported for " + quoted(p.code) + " (" +
                                     std::string(to_string(p.type)) + ")");
    return m;
}

// ---- values ------------------------------------------------------------------------------------

/// A FHIR decimal, or an exponent form ("1e2"), with the interval its precision implies: half a unit
/// of the last digit written either side ("100" -> [99.5, 100.5), "100.0" -> [99.95, 100.05), "1e2" ->
/// [50, 150)). The spec's own example gives [95, 105) for 1e2, which contradicts its rule of
/// significant figures; this follows the rule, as HAPI does.
bool parse_number(std::string_view text, search_argument& arg) {
    std::size_t i = 0;
    const auto digits = [&] {
        const std::size_t from = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9')
            ++i;
        return i - from;
    };
    if (i < text.size() && (text[i] == '-' || text[i] == '+'))
        ++i;
    if (digits() == 0)
        return false;
    long decimals = 0;
    if (i < text.size() && text[i] == '.') {
        ++i;
        decimals = static_cast<long>(digits());
        if (decimals == 0)
            return false;
    }
    long exponent = 0;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        const bool negative = i < text.size() && text[i] == '-';
        if (i < text.size() && (text[i] == '-' || text[i] == '+'))
            ++i;
        const std::size_t from = i;
        if (digits() == 0 || i - from > 4)
            return false;
        std::from_chars(text.data() + from, text.data() + i, exponent);
        exponent = negative ? -exponent : exponent;
    }
    if (i != text.size())
        return false;
    const std::size_t sign = text[0] == '+' ? 1 : 0; // from_chars takes '-' but not '+'
    double value = 0;
    auto [end, status] = std::from_chars(text.data() + sign, text.data() + text.size(), value);
    if (status != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
        return false;
    const double half = 0.5 * std::pow(10.0, static_cast<double>(exponent - decimals));
    arg.number = value;
    arg.number_low = value - half;
    arg.number_high = value + half;
    return true;
}

/// Takes a comparison prefix (`ge2020`) off a date, number or quantity value.
result<std::string_view> take_prefix(std::string_view name, std::string_view raw, search_argument& arg) {
    const auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
    if (raw.size() < 2 || !lower(raw[0]) || !lower(raw[1]))
        return raw;
    static constexpr std::pair<std::string_view, search_prefix> prefixes[] = {
        {"eq", search_prefix::eq}, {"ne", search_prefix::ne}, {"gt", search_prefix::gt},
        {"lt", search_prefix::lt}, {"ge", search_prefix::ge}, {"le", search_prefix::le},
        {"sa", search_prefix::sa}, {"eb", search_prefix::eb}, {"ap", search_prefix::ap},
    };
    for (auto& [text, prefix] : prefixes)
        if (raw.starts_with(text)) {
            if (raw.size() == 2)
                return malformed(name, "no value after the prefix " + quoted(text));
            arg.prefix = prefix;
            return raw.substr(2);
        }
    return malformed(name, "unknown prefix " + quoted(raw.substr(0, 2)));
}

/// `code`, `system|code`, `|code` or `system|`.
status parse_token(std::string_view name, std::string_view raw, search_argument& arg) {
    const auto parts = split_unescaped(raw, '|');
    if (parts.size() > 2 || (parts.size() == 2 && parts[0].empty() && parts[1].empty()))
        return malformed(name, "a token is code, system|code, |code or system|");
    if (parts.size() == 2) {
        arg.system = unescape(parts[0]);
        arg.code = unescape(parts[1]);
    } else {
        arg.code = unescape(parts[0]);
    }
    arg.text = unescape(raw);
    return {};
}

/// `Type/id`, `id` (of the `:Type` given, if any) or an absolute URL. `ref` is the reference
/// parameter, whose targets a `Type/` must be among; nullptr for a composite's component.
status parse_reference(std::string_view name, const search_parameter* ref, std::string_view type_modifier,
                       std::string_view raw, search_argument& arg) {
    arg.text = unescape(raw);
    const std::string_view text = arg.text;
    if (text.starts_with("urn:") || text.find("://") != std::string_view::npos) {
        arg.url = arg.text;
        return {};
    }
    std::string_view type = type_modifier;
    std::string_view id = text;
    if (const auto slash = text.find('/'); slash != std::string_view::npos) {
        type = text.substr(0, slash);
        id = text.substr(slash + 1);
        if (!is_resource_type(type))
            return malformed(name, quoted(type) + " is not a resource type");
        if (ref != nullptr && !has_target(*ref, type))
            return malformed(name, quoted(type) + " is not a target type of " + quoted(ref->code));
        if (!type_modifier.empty() && type != type_modifier)
            return malformed(name, "the reference's type is not the modifier's " + quoted(type_modifier));
    }
    if (!is_id(id))
        return malformed(name, "a reference is Type/id, id or an absolute URL");
    arg.target_type = std::string(type);
    arg.id = std::string(id);
    return {};
}

/// A value with no modifier, parsed for `type` (a parameter's, or a composite component's).
status parse_plain(std::string_view name, search_param_type type, const search_parameter* ref,
                   std::string_view type_modifier, std::string_view raw, search_argument& arg) {
    using t = search_param_type;
    if (raw.empty())
        return malformed(name, "empty value");
    switch (type) {
    case t::string:
    case t::uri: arg.text = unescape(raw); return {};
    case t::token: return parse_token(name, raw, arg);
    case t::reference: return parse_reference(name, ref, type_modifier, raw, arg);
    case t::date: {
        auto rest = take_prefix(name, raw, arg);
        if (!rest)
            return std::move(rest).failure();
        auto range = parse_date_time(*rest);
        if (!range)
            return malformed(name, "not a valid date, dateTime or instant");
        arg.range = *range;
        arg.text = std::string(*rest);
        return {};
    }
    case t::number: {
        auto rest = take_prefix(name, raw, arg);
        if (!rest)
            return std::move(rest).failure();
        if (!parse_number(*rest, arg))
            return malformed(name, "not a valid number");
        arg.text = std::string(*rest);
        return {};
    }
    case t::quantity: {
        auto rest = take_prefix(name, raw, arg);
        if (!rest)
            return std::move(rest).failure();
        const auto parts = split_unescaped(*rest, '|');
        if (parts.size() != 1 && parts.size() != 3)
            return malformed(name, "a quantity is number, number|system|code or number||code");
        if (!parse_number(parts[0], arg))
            return malformed(name, "not a valid number");
        arg.text = std::string(parts[0]); // the number as written, as the index keeps it
        if (parts.size() == 3) {
            if (!parts[1].empty())
                arg.quantity_system = unescape(parts[1]);
            arg.quantity_code = unescape(parts[2]);
        }
        return {};
    }
    case t::composite:
    case t::special: break;
    }
    return unsupported(name, "parameters of type " + std::string(to_string(type)) + " are not supported");
}

/// One comma alternative of a clause's value, parsed for the clause's parameter and modifier.
result<search_argument> parse_argument(std::string_view name, const search_clause& clause, std::string_view raw) {
    const search_parameter& p = *clause.parameter;
    search_argument arg;
    if (raw.empty())
        return malformed(name, "empty value");
    switch (clause.modifier) {
    case search_modifier::missing:
        if (raw != "true" && raw != "false")
            return malformed(name, ":missing takes true or false");
        arg.missing = raw == "true";
        arg.text = std::string(raw);
        return arg;
    case search_modifier::text:
    case search_modifier::exact:
    case search_modifier::contains:
    case search_modifier::above:
    case search_modifier::below: arg.text = unescape(raw); return arg;
    case search_modifier::in:
    case search_modifier::not_in:
        arg.text = unescape(raw);
        if (value_set_members(arg.text) == nullptr)
            return unsupported(name, "value set " + quoted(arg.text) + " is not one this server holds");
        return arg;
    case search_modifier::of_type: {
        const auto parts = split_unescaped(raw, '|');
        if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty())
            return malformed(name, ":of-type takes type-system|type-code|value");
        arg.system = unescape(parts[0]);
        arg.code = unescape(parts[1]);
        arg.of_type_value = unescape(parts[2]);
        arg.text = unescape(raw);
        return arg;
    }
    case search_modifier::identifier:
        if (auto parsed = parse_token(name, raw, arg); !parsed)
            return std::move(parsed).failure();
        return arg;
    case search_modifier::none:
    case search_modifier::not_:
    case search_modifier::type: break;
    }
    if (p.type != search_param_type::composite) {
        if (auto parsed = parse_plain(name, p.type, &p, clause.type_modifier, raw, arg); !parsed)
            return std::move(parsed).failure();
        return arg;
    }
    const auto parts = split_unescaped(raw, '$');
    if (parts.size() != p.components.size())
        return malformed(name, "a value of " + quoted(p.code) + " has " + std::to_string(p.components.size()) +
                                   " parts separated by $");
    arg.text = unescape(raw);
    for (std::size_t i = 0; i < parts.size(); ++i) {
        search_argument component;
        if (auto parsed = parse_plain(name, p.components[i].type, nullptr, {}, parts[i], component); !parsed)
            return std::move(parsed).failure();
        arg.components.push_back(std::move(component));
    }
    return arg;
}

// ---- clauses -----------------------------------------------------------------------------------

/// A search parameter (not a result parameter): its path, parameter, modifier and values.
result<search_clause> parse_clause(const std::vector<std::string>& types, std::string_view name,
                                   std::string_view value, const search_query_options& options) {
    search_clause clause;
    clause.name = std::string(name);
    const bool chained = name.find('.') != std::string_view::npos || name.starts_with("_has:");
    if (chained && types.size() != 1)
        return unsupported(name, "chains and _has need a search on a single resource type");
    auto last = resolve_path(name, types.front(), options.max_chain, clause);
    if (!last)
        return std::move(last).failure();
    const auto colon = last->find(':');
    const std::string_view code = last->substr(0, colon);
    const std::string_view modifier = colon == std::string_view::npos ? std::string_view() : last->substr(colon + 1);

    if (clause.path.empty()) {
        // A system search: the parameter must mean the same on every type; the planner re-resolves
        // it per type by code, so `parameter` and `type` are the first type's.
        for (const std::string& type : types) {
            const search_parameter* p = find_search_parameter(type, code);
            if (p == nullptr)
                return unknown_parameter(name, type, code);
            if (clause.parameter == nullptr)
                clause.parameter = p;
            else if (p->type != clause.parameter->type)
                return unsupported(name, quoted(code) + " is not of the same type on " + types.front() + " and " + type);
        }
    } else {
        clause.parameter = find_search_parameter(clause.type, code);
        if (clause.parameter == nullptr)
            return unknown_parameter(name, clause.type, code);
    }
    if (clause.parameter->type == search_param_type::special)
        return unsupported(name, "special parameters are not supported");

    auto parsed_modifier = parse_modifier(name, *clause.parameter, modifier, clause.type_modifier);
    if (!parsed_modifier)
        return std::move(parsed_modifier).failure();
    clause.modifier = *parsed_modifier;

    for (std::string_view raw : split_unescaped(value, ',')) {
        auto argument = parse_argument(name, clause, raw);
        if (!argument)
            return std::move(argument).failure();
        clause.any_of.push_back(std::move(argument.value()));
    }
    return clause;
}

// ---- result parameters -------------------------------------------------------------------------

/// `_sort=a,-b`: each a parameter (not composite or special) of every type searched.
result<std::vector<search_sort_key>> parse_sort(const std::vector<std::string>& types, std::string_view value) {
    std::vector<search_sort_key> out;
    for (std::string_view item : split_unescaped(value, ',')) {
        search_sort_key key;
        if (item.starts_with('-')) {
            key.descending = true;
            item.remove_prefix(1);
        }
        if (item.empty())
            return malformed("_sort", "empty sort key");
        if (item == "_score")
            return unsupported("_sort", "sorting by _score is not supported");
        for (const std::string& type : types) {
            const search_parameter* p = find_search_parameter(type, item);
            if (p == nullptr)
                return unknown_parameter("_sort", type, item);
            if (p->type == search_param_type::composite || p->type == search_param_type::special)
                return unsupported("_sort", "cannot sort by " + quoted(item) + " (" + std::string(to_string(p->type)) + ")");
            if (key.parameter == nullptr)
                key.parameter = p;
            else if (p->type != key.parameter->type)
                return unsupported("_sort", quoted(item) + " is not of the same type on " + types.front() + " and " + type);
        }
        out.push_back(key);
    }
    return out;
}

/// `_include[:iterate]` or `_revinclude[:iterate]` = `*`, `Type:*`, `Type:param` or `Type:param:Target`.
result<search_include> parse_include(const std::vector<std::string>& types, std::string_view name,
                                     std::string_view value, bool reverse) {
    search_include include;
    include.reverse = reverse;
    const auto colon = name.find(':');
    if (colon != std::string_view::npos) {
        const std::string_view modifier = name.substr(colon + 1);
        if (modifier != "iterate" && modifier != "recurse")
            return unsupported(name, "unknown modifier " + quoted(modifier));
        include.iterate = true;
    }
    if (value == "*") {
        include.source_type = "*";
        return include;
    }
    const auto parts = split_unescaped(value, ':');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
        return malformed(name, "takes Type:parameter, Type:parameter:Target, Type:* or *", "invalid");
    if (!is_supported_type(parts[0]))
        return unsupported(name, quoted(parts[0]) + " is not a type this server holds");
    include.source_type = std::string(parts[0]);
    if (!reverse && !include.iterate && std::find(types.begin(), types.end(), parts[0]) == types.end())
        return malformed(name, quoted(parts[0]) + " is not a type searched (use :iterate for included ones)", "invalid");
    if (parts[1] == "*") {
        if (parts.size() == 3)
            return malformed(name, "Type:* takes no target type", "invalid");
        return include;
    }
    include.parameter = find_search_parameter(parts[0], parts[1]);
    if (include.parameter == nullptr)
        return unknown_parameter(name, parts[0], parts[1]);
    if (include.parameter->type != search_param_type::reference)
        return malformed(name, quoted(parts[1]) + " is not a reference parameter", "invalid");
    if (parts.size() == 3) {
        if (!has_target(*include.parameter, parts[2]))
            return malformed(name, quoted(parts[2]) + " is not a target type of " + quoted(parts[1]), "invalid");
        include.target_type = std::string(parts[2]);
    }
    return include;
}

/// One word of a fixed set, for _summary and _total.
template <class T, std::size_t n>
result<T> parse_choice(std::string_view name, std::string_view value, const std::pair<std::string_view, T> (&choices)[n]) {
    for (auto& [text, choice] : choices)
        if (text == value)
            return choice;
    std::string list;
    for (auto& choice : choices)
        list += (list.empty() ? "" : ", ") + std::string(choice.first);
    return malformed(name, "takes one of " + list);
}

/// `_elements=a,b`: top-level element names.
result<std::vector<std::string>> parse_elements(std::string_view value) {
    std::vector<std::string> out;
    for (std::string_view item : split_unescaped(value, ',')) {
        const bool plain = !item.empty() && std::all_of(item.begin(), item.end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        });
        if (!plain)
            return malformed("_elements", "_elements takes element names (letters and digits), comma-separated");
        out.emplace_back(item);
    }
    return out;
}

/// Applies one parameter to `query`, changing it only on success; returns the value for `applied`.
result<std::string> apply_parameter(const std::vector<std::string>& types, std::string_view name,
                                    std::string_view value, const search_query_options& options,
                                    std::set<std::string, std::less<>>& seen, search_query& query) {
    const std::string_view code = name.substr(0, name.find_first_of(":."));
    if (!options.parameters.empty() &&
        std::find(options.parameters.begin(), options.parameters.end(), code) == options.parameters.end()) {
        std::string taken;
        for (std::string_view allowed : options.parameters)
            taken += (taken.empty() ? "" : ", ") + std::string(allowed);
        return unsupported(name, quoted(code) + " is not supported here; this search takes " + taken);
    }
    if (is_unsupported_feature(code))
        return unsupported(name, quoted(code) + " is not supported");
    if (code == "_include" || code == "_revinclude") {
        if (value.empty())
            return malformed(name, "empty value");
        if (query.includes.size() >= options.max_includes)
            return unsupported(name, "at most " + std::to_string(options.max_includes) + " _include and _revinclude");
        auto include = parse_include(types, name, value, code == "_revinclude");
        if (!include)
            return std::move(include).failure();
        query.includes.push_back(std::move(include.value()));
        return std::string(value);
    }
    static constexpr std::string_view once[] = {"_sort", "_count", "_summary", "_total", "_elements"};
    if (std::find(std::begin(once), std::end(once), code) == std::end(once)) {
        auto clause = parse_clause(types, name, value, options);
        if (!clause)
            return std::move(clause).failure();
        query.clauses.push_back(std::move(clause.value()));
        return std::string(value);
    }

    if (name != code)
        return unsupported(name, "unknown modifier " + quoted(name.substr(code.size() + 1)));
    if (seen.contains(code))
        return malformed(name, "given more than once", "invalid");
    if (value.empty())
        return malformed(name, "empty value");
    std::string applied(value);
    if (code == "_sort") {
        auto sort = parse_sort(types, value);
        if (!sort)
            return std::move(sort).failure();
        query.sort = std::move(sort.value());
    } else if (code == "_count") {
        auto count = parse_count(value, options.max_count);
        if (!count)
            return std::move(count).failure();
        query.count = *count;
        applied = std::to_string(*count);
    } else if (code == "_summary") {
        static constexpr std::pair<std::string_view, search_summary> choices[] = {
            {"true", search_summary::true_}, {"false", search_summary::false_}, {"text", search_summary::text},
            {"data", search_summary::data},  {"count", search_summary::count},
        };
        auto summary = parse_choice(name, value, choices);
        if (!summary)
            return std::move(summary).failure();
        query.summary = *summary;
    } else if (code == "_total") {
        static constexpr std::pair<std::string_view, search_total> choices[] = {
            {"none", search_total::none}, {"estimate", search_total::estimate}, {"accurate", search_total::accurate},
        };
        auto total = parse_choice(name, value, choices);
        if (!total)
            return std::move(total).failure();
        query.total = *total;
    } else {
        auto elements = parse_elements(value);
        if (!elements)
            return std::move(elements).failure();
        query.elements = std::move(elements.value());
    }
    seen.emplace(code);
    return applied;
}

} // namespace

result<unsigned> parse_count(std::string_view value, unsigned max_count) {
    if (!is_digits(value))
        return malformed("_count", "_count takes a non-negative integer");
    if (value.size() > 9) // more than any cap; and keeps from_chars in range
        return max_count;
    unsigned count = 0;
    std::from_chars(value.data(), value.data() + value.size(), count);
    return std::min(count, max_count);
}

const std::vector<std::pair<std::string, std::string>>* value_set_members(std::string_view url) {
    static const std::map<std::string, value_set_pairs, std::less<>> by_url = [] {
        std::map<std::string, value_set_pairs, std::less<>> out;
        for (const detail::value_set_def& set : detail::r4().value_sets) {
            value_set_pairs& pairs = out[set.url];
            for (const auto& [system, codes] : set.codes_by_system)
                for (const std::string& code : codes)
                    pairs.emplace_back(system, code);
            std::sort(pairs.begin(), pairs.end());
        }
        return out;
    }();
    const auto found = by_url.find(url.substr(0, url.find('|')));
    return found == by_url.end() ? nullptr : &found->second;
}

result<search_query> parse_search_query(const std::vector<std::string>& types,
                                        const std::vector<std::pair<std::string, std::string>>& parameters,
                                        const search_query_options& options) {
    search_query query;
    if (types.empty()) {
        for (std::string_view type : supported_types())
            query.types.emplace_back(type);
    } else {
        for (const std::string& type : types)
            if (!is_supported_type(type))
                return error::make(category::unsupported, "not-supported",
                                   "resource type " + quoted(type) + " is not one this server holds", "_type");
        query.types = types;
    }
    query.count = std::min(options.default_count, options.max_count);
    if (parameters.size() > options.max_clauses)
        return error::make(category::unsupported, "too-costly",
                           "too many search parameters: at most " + std::to_string(options.max_clauses));

    std::set<std::string, std::less<>> seen; // result parameters that may appear once
    for (const auto& [name, value] : parameters) {
        auto applied = apply_parameter(query.types, name, value, options, seen, query);
        if (applied) {
            query.applied.emplace_back(name, std::move(applied.value()));
            continue;
        }
        // Lenient handling drops what this server does not know or support; a malformed value of a
        // parameter it does support is still an error, since the client plainly meant that parameter.
        if (!options.lenient || applied.failure().kind != category::unsupported)
            return std::move(applied).failure();
        issue dropped = applied.failure().issues.front();
        dropped.severity = "warning";
        query.ignored.push_back(std::move(dropped));
    }
    return query;
}

} // namespace caregate::fhir
