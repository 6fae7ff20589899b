// Search value extraction (search_values.hpp): evaluates each parameter's expression and turns the
// nodes found into index values according to the parameter type and the node's FHIR type, as the R4
// search page says for each combination (https://hl7.org/fhir/R4/search.html#table).
#include "fhir_model/search_values.hpp"

#include "canonical.hpp"
#include "json.hpp"

#include <cstdlib>
#include <stdexcept>

namespace caregate::fhir {
namespace {

using detail::find;
using detail::string_member;

/// Folded forms of U+00C0..U+00FF (empty: keep the character as it is).
constexpr std::string_view latin1_folded[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y",
};

bool is_quantity_type(std::string_view type) {
    for (std::string_view t : {"Quantity", "Age", "Count", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity"})
        if (type == t)
            return true;
    return false;
}

std::string text_or_empty(const rapidjson::Value* value) {
    if (value == nullptr)
        return {};
    if (value->IsBool())
        return value->GetBool() ? "true" : "false";
    if (value->IsString())
        return std::string(detail::text_of(*value));
    return {};
}

search_value make(const search_parameter& p, search_param_type type) {
    search_value v;
    v.parameter = &p;
    v.code = p.code;
    v.type = type;
    return v;
}

void add_string(const search_parameter& p, search_param_type type, std::string_view text, std::vector<search_value>& out) {
    if (text.empty())
        return;
    search_value v = make(p, type);
    v.text = std::string(text);
    v.normalized = normalize_search_string(text);
    out.push_back(std::move(v));
}

void strings(const search_parameter& p, search_param_type type, const fhirpath_node& node, std::vector<search_value>& out) {
    const rapidjson::Value& value = *node.value;
    auto parts = [&](std::initializer_list<std::string_view> names) {
        for (std::string_view name : names)
            if (const rapidjson::Value* part = find(value, name)) {
                if (part->IsArray()) {
                    for (auto& item : part->GetArray())
                        if (detail::is_string(item))
                            add_string(p, type, detail::view(item), out);
                } else if (detail::is_string(*part)) {
                    add_string(p, type, detail::view(*part), out);
                }
            }
    };
    if (node.type == "HumanName")
        parts({"text", "family", "given", "prefix", "suffix"});
    else if (node.type == "Address")
        parts({"text", "line", "city", "district", "state", "postalCode", "country"});
    else if (value.IsString())
        add_string(p, type, detail::text_of(value), out);
}

void add_token(const search_parameter& p, search_param_type type, const rapidjson::Value* system,
               std::string code, std::string text, std::vector<search_value>& out) {
    if (code.empty() && text.empty())
        return;
    search_value v = make(p, type);
    v.has_system = system != nullptr && detail::is_string(*system);
    v.system = v.has_system ? std::string(detail::view(*system)) : std::string();
    v.code_value = std::move(code);
    v.text = std::move(text);
    v.normalized = normalize_search_string(v.text);
    out.push_back(std::move(v));
}

/// The codings of an Identifier.type (a CodeableConcept) that have both a system and a code.
std::vector<identifier_type_coding> identifier_types(const rapidjson::Value& id_type) {
    std::vector<identifier_type_coding> out;
    if (const rapidjson::Value* codings = find(id_type, "coding"); codings && codings->IsArray())
        for (auto& c : codings->GetArray()) {
            const rapidjson::Value* system = find(c, "system");
            const rapidjson::Value* code = find(c, "code");
            if (system && code && detail::is_string(*system) && detail::is_string(*code))
                out.push_back({std::string(detail::view(*system)), std::string(detail::view(*code))});
        }
    return out;
}

void tokens(const search_parameter& p, search_param_type type, const fhirpath_node& node, std::vector<search_value>& out) {
    if (node.boolean) {
        add_token(p, type, nullptr, *node.boolean ? "true" : "false", {}, out);
        return;
    }
    const rapidjson::Value& value = *node.value;
    if (node.type == "Coding") {
        add_token(p, type, find(value, "system"), text_or_empty(find(value, "code")), text_or_empty(find(value, "display")), out);
    } else if (node.type == "CodeableConcept") {
        std::string text = text_or_empty(find(value, "text"));
        std::size_t before = out.size();
        if (const rapidjson::Value* codings = find(value, "coding"); codings && codings->IsArray())
            for (auto& c : codings->GetArray()) {
                std::string display = text_or_empty(find(c, "display"));
                add_token(p, type, find(c, "system"), text_or_empty(find(c, "code")), display.empty() ? text : display, out);
            }
        if (out.size() == before)
            add_token(p, type, nullptr, {}, text, out);
    } else if (node.type == "Identifier") {
        const rapidjson::Value* id_type = find(value, "type");
        const std::size_t before = out.size();
        add_token(p, type, find(value, "system"), text_or_empty(find(value, "value")),
                  id_type ? text_or_empty(find(*id_type, "text")) : std::string(), out);
        if (out.size() > before && !out.back().code_value.empty() && id_type != nullptr)
            out.back().identifier_types = identifier_types(*id_type);
    } else if (node.type == "ContactPoint") {
        add_token(p, type, nullptr, text_or_empty(find(value, "value")), {}, out);
    } else if (value.IsBool() || value.IsString()) {
        add_token(p, type, nullptr, text_or_empty(&value), {}, out);
    }
}

void dates(const search_parameter& p, search_param_type type, const fhirpath_node& node, std::vector<search_value>& out) {
    const rapidjson::Value& value = *node.value;
    if (node.type == "Period") {
        auto start = string_member(value, "start");
        auto end = string_member(value, "end");
        if (!start && !end)
            return;
        search_value v = make(p, type);
        v.range = {unbounded_low, unbounded_high};
        if (start) {
            auto r = parse_date_time(*start);
            if (!r)
                return;
            v.range.begin = r->begin;
        }
        if (end) {
            auto r = parse_date_time(*end);
            if (!r)
                return;
            v.range.end = r->end;
        }
        v.text = std::string(start ? *start : *end);
        out.push_back(std::move(v));
    } else if (node.type == "Timing") {
        if (const rapidjson::Value* events = find(value, "event"); events && events->IsArray())
            for (auto& e : events->GetArray())
                if (detail::is_string(e))
                    if (auto r = parse_date_time(detail::view(e))) {
                        search_value v = make(p, type);
                        v.range = *r;
                        v.text = std::string(detail::view(e));
                        out.push_back(std::move(v));
                    }
    } else if (detail::is_string(value)) {
        if (auto r = parse_date_time(detail::view(value))) {
            search_value v = make(p, type);
            v.range = *r;
            v.text = std::string(detail::view(value));
            out.push_back(std::move(v));
        }
    }
}

/// "Patient/123", ".../Patient/123/_history/2" -> type and id, when the last segments look like that.
bool split_reference(std::string_view ref, std::string& type, std::string& id) {
    if (auto history = ref.find("/_history/"); history != std::string_view::npos)
        ref = ref.substr(0, history);
    auto slash = ref.rfind('/');
    if (slash == std::string_view::npos || slash + 1 == ref.size())
        return false;
    std::string_view before = ref.substr(0, slash);
    std::string_view t = before.substr(before.rfind('/') + 1);
    if (t.empty() || !(t[0] >= 'A' && t[0] <= 'Z'))
        return false;
    type = std::string(t);
    id = std::string(ref.substr(slash + 1));
    return true;
}

void references(const search_parameter& p, search_param_type type, const fhirpath_node& node,
                const rapidjson::Value& resource, std::vector<search_value>& out) {
    const rapidjson::Value& value = *node.value;
    search_value v = make(p, type);
    // Only a relative reference ("Patient/123") names a resource of this server by type and id; an
    // absolute one names another server's (http://other/fhir/Patient/123 is not our Patient/123) and
    // is matched by its URL alone.
    auto is_absolute = [](std::string_view ref) {
        return ref.find("://") != std::string_view::npos || ref.starts_with("urn:") || ref.starts_with("#");
    };
    if (value.IsString()) { // canonical or uri; a relative canonical ("Questionnaire/gcs") names ours too
        const std::string_view text = detail::view(value);
        v.url = std::string(text);
        if (!is_absolute(text))
            split_reference(text.substr(0, text.find('|')), v.target_type, v.id);
        out.push_back(std::move(v));
        return;
    }
    bool found = false;
    if (auto ref = string_member(value, "reference")) {
        if (is_absolute(*ref))
            v.url = std::string(*ref);
        else
            split_reference(*ref, v.target_type, v.id);
        found = !v.url.empty() || !v.id.empty();
    }
    if (const rapidjson::Value* identifier = find(value, "identifier")) {
        const rapidjson::Value* system = find(*identifier, "system");
        v.has_system = system != nullptr && detail::is_string(*system);
        v.system = v.has_system ? std::string(detail::view(*system)) : std::string();
        v.code_value = text_or_empty(find(*identifier, "value"));
        found = found || !v.code_value.empty();
    }
    // The type resolve() gives (a contained resource's, an absolute URL's, Reference.type), where
    // the reference is not a relative Type/id: so a parameter narrowed to a type (Observation's
    // patient, subject.where(resolve() is Patient)) is its parameter's rows of that target type.
    if (v.target_type.empty())
        v.target_type = std::string(resolved_type(value, resource));
    if (found)
        out.push_back(std::move(v));
}

/// ISO 4217, the code system of a Money's currency: `Invoice?totalnet=100|urn:iso:std:iso:4217|GBP`.
constexpr std::string_view currency_system = "urn:iso:std:iso:4217";

/// A Quantity's value (or a Money's: its currency is then the code, in ISO 4217).
void add_quantity(const search_parameter& p, search_param_type type, const rapidjson::Value& q, bool money,
                  std::vector<search_value>& out) {
    const rapidjson::Value* value = find(q, "value");
    std::optional<std::string_view> number = value ? detail::number_text(*value) : std::nullopt;
    if (!number)
        return;
    search_value v = make(p, type);
    v.text = std::string(*number);
    v.number = std::strtod(v.text.c_str(), nullptr);
    if (money) {
        v.code_value = text_or_empty(find(q, "currency"));
        v.has_system = !v.code_value.empty();
        v.system = v.has_system ? std::string(currency_system) : std::string();
    } else {
        const rapidjson::Value* system = find(q, "system");
        v.has_system = system != nullptr && detail::is_string(*system);
        v.system = v.has_system ? std::string(detail::view(*system)) : std::string();
        v.code_value = text_or_empty(find(q, "code"));
        v.unit = text_or_empty(find(q, "unit"));
    }
    out.push_back(std::move(v));
}

void quantities(const search_parameter& p, search_param_type type, const fhirpath_node& node, std::vector<search_value>& out) {
    if (is_quantity_type(node.type) || node.type == "Money") {
        add_quantity(p, type, *node.value, node.type == "Money", out);
    } else if (node.type == "Range") { // each bound is indexed as a value of its own
        for (std::string_view bound : {"low", "high"})
            if (const rapidjson::Value* q = find(*node.value, bound))
                add_quantity(p, type, *q, false, out);
    }
}

void numbers(const search_parameter& p, search_param_type type, const fhirpath_node& node, std::vector<search_value>& out) {
    if (auto number = detail::number_text(*node.value)) {
        search_value v = make(p, type);
        v.text = std::string(*number);
        v.number = std::strtod(v.text.c_str(), nullptr);
        out.push_back(std::move(v));
    }
}

void values_of(const search_parameter& p, search_param_type type, const fhirpath_node& node,
               const rapidjson::Value& resource, std::vector<search_value>& out) {
    if (node.value == nullptr && !node.boolean)
        return;
    switch (type) {
    case search_param_type::string: strings(p, type, node, out); break;
    case search_param_type::token: tokens(p, type, node, out); break;
    case search_param_type::date: dates(p, type, node, out); break;
    case search_param_type::reference: references(p, type, node, resource, out); break;
    case search_param_type::quantity: quantities(p, type, node, out); break;
    case search_param_type::number: numbers(p, type, node, out); break;
    case search_param_type::uri:
        if (detail::is_string(*node.value)) {
            search_value v = make(p, type);
            v.text = std::string(detail::view(*node.value));
            out.push_back(std::move(v));
        }
        break;
    case search_param_type::composite:
    case search_param_type::special: break;
    }
}

} // namespace

std::string normalize_search_string(std::string_view text) {
    std::string out;
    bool space = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = !out.empty();
            continue;
        }
        if (space) {
            out += ' ';
            space = false;
        }
        if (c < 0x80) {
            out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        } else if ((c == 0xC3) && i + 1 < text.size()) { // U+00C0..U+00FF
            unsigned code = 0xC0 + (static_cast<unsigned char>(text[i + 1]) & 0x3F);
            std::string_view folded = latin1_folded[code - 0xC0];
            if (folded.empty())
                out.append(text.substr(i, 2));
            else
                out.append(folded);
            ++i;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::vector<search_value> extract_search_values(const search_parameter& parameter, const rapidjson::Value& resource) {
    std::vector<search_value> out;
    fhirpath_result nodes = parameter.expression.evaluate(resource);
    if (parameter.type != search_param_type::composite) {
        for (auto& node : nodes)
            values_of(parameter, parameter.type, node, resource, out);
        return out;
    }
    for (auto& node : nodes) {
        // The combinations of one value per component, all from the same focus node.
        std::vector<std::vector<search_value>> combinations{{}};
        for (auto& component : parameter.components) {
            std::vector<search_value> values;
            for (auto& found : component.expression.evaluate(node, resource))
                values_of(parameter, component.type, found, resource, values);
            std::vector<std::vector<search_value>> next;
            for (auto& partial : combinations)
                for (auto& value : values) {
                    next.push_back(partial);
                    next.back().push_back(value);
                }
            combinations = std::move(next);
        }
        for (auto& combination : combinations) {
            if (combination.size() != parameter.components.size() || combination.empty())
                continue;
            search_value v = make(parameter, search_param_type::composite);
            v.components = std::move(combination);
            out.push_back(std::move(v));
        }
    }
    return out;
}

namespace {

/// The values of `doc`'s parameters (every one, or those with values of their own) into `out`.
status extract_from(const rapidjson::Value& doc, std::vector<search_value>& out, search_values_of which) {
    auto type = string_member(doc, "resourceType");
    if (!type)
        return error::make(category::invalid, "required", "resourceType is missing", "resourceType");
    const auto& parameters = search_parameters_for(*type);
    if (parameters.empty())
        return error::make(category::unsupported, "not-supported", "no search parameters for this resource type");
    for (const search_parameter* p : parameters) {
        if (which == search_values_of::own_values_only && !p->has_own_values())
            continue;
        auto values = extract_search_values(*p, doc);
        for (auto& v : values)
            out.push_back(std::move(v));
    }
    return {};
}

} // namespace

status extract_search_values(std::string_view canonical_json, std::vector<search_value>& out, search_values_of which) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(canonical_json, doc); !parsed)
        return std::move(parsed).failure();
    return extract_from(doc, out, which);
}

result<stamped_values> stamp_and_extract(std::string_view content, std::string_view id, std::int64_t version_id,
                                         std::string_view last_updated, search_values_of which) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(content, doc); !parsed)
        return std::move(parsed).failure();
    if (!doc.IsObject() || !doc.HasMember("resourceType"))
        return error::make(category::malformed, "structure", "the content is not canonical resource JSON");
    stamped_values made;
    const detail::server_stamp stamp{id, version_id, last_updated};
    made.stamped = detail::write_canonical(doc, &stamp);
    // The document becomes what parsing `made.stamped` would give, but for member order, which no
    // parameter's expression sees: the server's id, and meta (an object, as write_canonical writes
    // it) with the server's versionId and lastUpdated.
    using detail::set_member, detail::string_value;
    auto& alloc = doc.GetAllocator();
    set_member(doc, "id", string_value(id, alloc), alloc);
    rapidjson::Value* meta = detail::find(doc, "meta") != nullptr && doc["meta"].IsObject()
                                 ? &doc["meta"]
                                 : &set_member(doc, "meta", rapidjson::Value(rapidjson::kObjectType), alloc);
    set_member(*meta, "versionId", string_value(std::to_string(version_id), alloc), alloc);
    set_member(*meta, "lastUpdated", string_value(last_updated, alloc), alloc);
    if (auto extracted = extract_from(doc, made.values, which); !extracted)
        return std::move(extracted).failure();
    return made;
}

std::vector<search_value> extract_search_values(std::string_view canonical_json) {
    std::vector<search_value> out;
    if (auto done = extract_search_values(canonical_json, out); !done)
        throw std::invalid_argument(done.failure().issues.empty() ? "search value extraction failed"
                                                                  : done.failure().issues[0].diagnostics);
    return out;
}

} // namespace caregate::fhir
