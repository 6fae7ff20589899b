// Builds the search parameter table (search_parameters.hpp) from the generated JSON, once; a generated
// expression that does not parse is a bug in the generator's mirror of the grammar, so it throws.
#include "fhir_model/search_parameters.hpp"

#include "json.hpp"

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

struct table {
    std::vector<search_parameter> parameters;
    std::vector<unsupported_search_parameter> unsupported;
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
        for (auto& p : doc["unsupported"].GetArray())
            out.unsupported.push_back({std::string(detail::view(p["base"])), std::string(detail::view(p["code"])),
                                       std::string(detail::view(p["type"])),
                                       std::string(detail::view(p["expression"])),
                                       std::string(detail::view(p["reason"]))});
        return out;
    }();
    return built;
}

bool is_common(const search_parameter& p) { return p.base == "Resource" || p.base == "DomainResource"; }

} // namespace

std::string_view to_string(search_param_type type) noexcept {
    static constexpr std::string_view names[] = {"number", "date", "string", "token", "reference",
                                                 "composite", "quantity", "uri", "special"};
    return names[static_cast<int>(type)];
}

const std::vector<search_parameter>& all_search_parameters() { return the_table().parameters; }
const std::vector<unsupported_search_parameter>& unsupported_search_parameters() { return the_table().unsupported; }

std::vector<const search_parameter*> search_parameters_for(std::string_view resource_type) {
    std::vector<const search_parameter*> own, common;
    for (auto& p : all_search_parameters()) {
        if (p.base == resource_type)
            own.push_back(&p);
        else if (is_common(p))
            common.push_back(&p);
    }
    if (own.empty())
        return {};
    own.insert(own.end(), common.begin(), common.end());
    return own;
}

const search_parameter* find_search_parameter(std::string_view resource_type, std::string_view code) {
    for (const search_parameter* p : search_parameters_for(resource_type))
        if (p->code == code)
            return p;
    return nullptr;
}

} // namespace caregate::fhir
