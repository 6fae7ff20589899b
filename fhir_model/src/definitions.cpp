// Builds the definitions index (definitions.hpp) from the generated JSON, once.
#include "definitions.hpp"
#include "json.hpp"

#include <algorithm>
#include <stdexcept>

#include <rapidjson/document.h>

namespace caregate::fhir::detail {

extern const std::string_view generated_definition_chunks[];
extern const unsigned generated_definition_chunk_count;

namespace {

primitive_kind primitive_of(std::string_view name) {
    static const std::pair<std::string_view, primitive_kind> table[] = {
        {"base64Binary", primitive_kind::base64Binary}, {"boolean", primitive_kind::boolean},
        {"canonical", primitive_kind::canonical},       {"code", primitive_kind::code},
        {"date", primitive_kind::date},                 {"dateTime", primitive_kind::dateTime},
        {"decimal", primitive_kind::decimal},           {"id", primitive_kind::id},
        {"instant", primitive_kind::instant},           {"integer", primitive_kind::integer},
        {"markdown", primitive_kind::markdown},         {"oid", primitive_kind::oid},
        {"positiveInt", primitive_kind::positiveInt},   {"string", primitive_kind::string},
        {"time", primitive_kind::time},                 {"unsignedInt", primitive_kind::unsignedInt},
        {"uri", primitive_kind::uri},                   {"url", primitive_kind::url},
        {"uuid", primitive_kind::uuid},                 {"xhtml", primitive_kind::xhtml},
    };
    for (auto& [text, kind] : table)
        if (text == name)
            return kind;
    throw std::logic_error("generated definitions: unknown primitive type");
}

/// "Quantity" -> "Quantity", "string" -> "String": the suffix of a choice element's JSON name.
std::string type_suffix(std::string_view type) {
    std::string out(type);
    if (!out.empty() && out[0] >= 'a' && out[0] <= 'z')
        out[0] = static_cast<char>(out[0] - 'a' + 'A');
    return out;
}

definitions build() {
    std::string text;
    for (unsigned i = 0; i < generated_definition_chunk_count; ++i)
        text.append(generated_definition_chunks[i]);
    rapidjson::Document doc;
    if (doc.Parse(text.data(), text.size()).HasParseError())
        throw std::logic_error("generated definitions: not JSON");

    definitions out;
    for (auto& name : doc["resourceTypes"].GetArray())
        out.resource_types.emplace(view(name));
    for (auto& name : doc["supported"].GetArray())
        out.supported.emplace_back(view(name));
    std::sort(out.supported.begin(), out.supported.end());
    for (auto& name : out.supported)
        out.supported_views.emplace_back(name);
    for (auto& name : doc["containable"].GetArray())
        out.containable.emplace_back(view(name));
    std::sort(out.containable.begin(), out.containable.end());

    out.value_sets.reserve(doc["valueSets"].Size()); // elements point into it
    for (auto& vs : doc["valueSets"].GetArray()) {
        value_set_def def;
        def.url = view(vs["url"]);
        for (auto& include : vs["include"].GetArray()) {
            auto& codes = def.codes_by_system[std::string(view(include[0]))];
            for (auto& code : include[1].GetArray()) {
                codes.emplace(view(code));
                def.all_codes.emplace(view(code));
            }
        }
        out.value_sets.push_back(std::move(def));
    }

    // First the types with their kinds, so that elements can point at them.
    auto& types = doc["types"];
    for (auto& entry : types.GetObject()) {
        type_def def;
        def.name = view(entry.name);
        const std::string_view kind = view(entry.value["kind"]);
        def.kind = kind == "primitive" ? type_kind::primitive
                   : kind == "complex"  ? type_kind::complex
                   : kind == "backbone" ? type_kind::backbone
                                        : type_kind::resource;
        if (def.kind == type_kind::primitive)
            def.primitive = primitive_of(def.name);
        out.types.emplace(def.name, std::move(def));
    }
    type_def any_resource;
    any_resource.name = "Resource";
    any_resource.kind = type_kind::any_resource;
    out.types.emplace("Resource", std::move(any_resource));

    // The `_name` object beside a primitive: Element's id and extension.
    type_def element;
    element.name = "Element";
    element.kind = type_kind::element;
    element.elements.resize(2);
    element.elements[0].name = "id";
    element.elements[0].types = {&out.types.at("string")};
    element.elements[1].name = "extension";
    element.elements[1].index = 1;
    element.elements[1].max = unbounded;
    element.elements[1].types = {&out.types.at("Extension")};
    for (auto& e : element.elements)
        element.members.emplace(e.name, member_def{&e, e.types[0], false});
    out.types.emplace("Element", std::move(element));

    for (auto& entry : types.GetObject()) {
        if (!entry.value.HasMember("elements"))
            continue;
        type_def& def = out.types.at(std::string(view(entry.name)));
        const auto rows = entry.value["elements"].GetArray();
        def.elements.resize(rows.Size());
        // A row: [name, min, max (-1 for *), [types], isSummary, [reference targets]?, value set index?].
        for (rapidjson::SizeType i = 0; i < rows.Size(); ++i) {
            const auto& row = rows[i];
            element_def& e = def.elements[i];
            e.name = view(row[0]);
            e.index = i;
            e.min = row[1].GetUint();
            e.max = row[2].GetInt() < 0 ? unbounded : static_cast<std::uint32_t>(row[2].GetInt());
            e.choice = e.name.ends_with("[x]");
            for (auto& t : row[3].GetArray())
                e.types.push_back(&out.types.at(std::string(view(t))));
            e.summary = row[4].GetBool();
            if (row.Size() > 5)
                for (auto& t : row[5].GetArray())
                    e.targets.emplace(view(t));
            if (row.Size() > 6)
                e.binding = &out.value_sets.at(row[6].GetUint());
        }
        for (auto& e : def.elements) {
            const std::string base = e.choice ? e.name.substr(0, e.name.size() - 3) : e.name;
            for (const type_def* t : e.types) {
                const std::string json_name = e.choice ? base + type_suffix(t->name) : base;
                def.members.emplace(json_name, member_def{&e, t, false});
                if (t->kind == type_kind::primitive)
                    def.members.emplace("_" + json_name, member_def{&e, t, true});
            }
        }
    }

    for (auto& entry : doc["compartment"].GetObject()) {
        auto& paths = out.compartment[std::string(view(entry.name))];
        for (auto& path : entry.value.GetArray()) {
            const std::string p(view(path));
            paths.push_back(p);
            const auto dot = p.rfind('.');
            type_def& owner = out.types.at(p.substr(0, dot));
            for (auto& e : owner.elements)
                if (e.name == p.substr(dot + 1))
                    e.compartment = true;
        }
    }
    return out;
}

} // namespace

bool definitions::is_supported(std::string_view type) const {
    return std::binary_search(supported.begin(), supported.end(), type,
                              [](std::string_view a, std::string_view b) { return a < b; });
}

bool definitions::is_containable(std::string_view type) const {
    return std::binary_search(containable.begin(), containable.end(), type,
                              [](std::string_view a, std::string_view b) { return a < b; });
}

const definitions& r4() {
    static const definitions instance = build();
    return instance;
}

} // namespace caregate::fhir::detail
