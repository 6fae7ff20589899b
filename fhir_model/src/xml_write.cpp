// JSON to FHIR XML (xml.hpp): each object's members in its type's element order, by the definitions.
#include "fhir_model/xml.hpp"

#include "definitions.hpp"
#include "json.hpp"

#include <algorithm>
#include <vector>

namespace caregate::fhir {

namespace {

using detail::member_def;
using detail::type_def;
using detail::type_kind;

constexpr std::string_view fhir_namespace = "http://hl7.org/fhir";

struct bad_json {
    std::string where;
};

/// `text` as an attribute value between double quotes: markup escaped, and the white space XML would
/// otherwise normalise to spaces kept as character references.
void append_attribute_value(std::string& out, std::string_view text) {
    for (const char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\t': out += "&#x9;"; break;
        case '\n': out += "&#xA;"; break;
        case '\r': out += "&#xD;"; break;
        default: out += c;
        }
    }
}

/// A primitive's JSON value as the text of its `value` attribute.
std::string primitive_text(const rapidjson::Value& value, const std::string& path) {
    if (auto number = detail::number_text(value))
        return std::string(*number);
    if (value.IsBool())
        return value.GetBool() ? "true" : "false";
    if (value.IsString())
        return std::string(value.GetString(), value.GetStringLength());
    throw bad_json{path};
}

/// One element of an object: its JSON name (without `_`), its definition, its value and its `_name` object.
struct element_group {
    std::uint32_t index = 0;
    std::string_view name;
    const member_def* member = nullptr;
    const rapidjson::Value* value = nullptr;
    const rapidjson::Value* part = nullptr; ///< the `_name` object (or array of them)
};

class xml_writer {
public:
    explicit xml_writer(std::string& out) : out_(out) {}

    void resource(const rapidjson::Value& object, const std::string& path, bool root) {
        const rapidjson::Value* kind = detail::find(object, "resourceType");
        if (kind == nullptr || !detail::is_string(*kind))
            throw bad_json{path};
        const std::string_view type_name = detail::view(*kind);
        const type_def* type = detail::r4().type(type_name);
        if (type == nullptr || type->kind != type_kind::resource)
            throw bad_json{path};
        out_.append("<").append(type_name);
        if (root)
            out_.append(" xmlns=\"").append(fhir_namespace).append("\"");
        out_ += '>';
        children(object, *type, path.empty() ? std::string(type_name) : path);
        out_.append("</").append(type_name).append(">");
    }

private:
    /// The members of `object` (of `type`) as elements, in the definitions' order; `skip` names the
    /// members written as attributes already.
    void children(const rapidjson::Value& object, const type_def& type, const std::string& path,
                  std::initializer_list<std::string_view> skip = {}) {
        std::vector<element_group> groups;
        for (const auto& member : object.GetObject()) {
            const std::string_view json_name = detail::view(member.name);
            if ((type.kind == type_kind::resource && json_name == "resourceType") ||
                std::find(skip.begin(), skip.end(), json_name) != skip.end())
                continue;
            const member_def* def = type.member(json_name);
            if (def == nullptr || def->element == nullptr)
                throw bad_json{path + "." + std::string(json_name)};
            const std::string_view name = def->primitive_part ? json_name.substr(1) : json_name;
            auto group = std::find_if(groups.begin(), groups.end(), [&](const element_group& g) { return g.name == name; });
            if (group == groups.end()) {
                groups.push_back({def->element->index, name, nullptr, nullptr, nullptr});
                group = groups.end() - 1;
            }
            if (def->primitive_part) {
                group->part = &member.value;
            } else {
                group->value = &member.value;
                group->member = def;
            }
            if (group->member == nullptr)
                group->member = type.member(name); // a `_name` alone: its primitive's definition
        }
        std::stable_sort(groups.begin(), groups.end(),
                         [](const element_group& a, const element_group& b) { return a.index < b.index; });
        for (const element_group& group : groups) {
            if (group.member == nullptr)
                throw bad_json{path + "." + std::string(group.name)};
            const std::string at = path + "." + std::string(group.name);
            const rapidjson::Value* value = group.value;
            const rapidjson::Value* part = group.part;
            const bool array = (value && value->IsArray()) || (part && part->IsArray());
            if (!array) {
                element(group.name, *group.member, value, part, at);
                continue;
            }
            const rapidjson::SizeType count = std::max(value && value->IsArray() ? value->Size() : 0u,
                                                       part && part->IsArray() ? part->Size() : 0u);
            for (rapidjson::SizeType i = 0; i < count; ++i) {
                const rapidjson::Value* item = value && value->IsArray() && i < value->Size() ? &(*value)[i] : nullptr;
                const rapidjson::Value* item_part = part && part->IsArray() && i < part->Size() ? &(*part)[i] : nullptr;
                if (item && item->IsNull())
                    item = nullptr;
                if (item_part && item_part->IsNull())
                    item_part = nullptr;
                element(group.name, *group.member, item, item_part, at + "[" + std::to_string(i) + "]");
            }
        }
    }

    void element(std::string_view name, const member_def& def, const rapidjson::Value* value,
                 const rapidjson::Value* part, const std::string& path) {
        const type_def& type = *def.type;
        if (type.kind == type_kind::primitive) {
            if (type.primitive == detail::primitive_kind::xhtml) {
                if (value == nullptr || !value->IsString())
                    throw bad_json{path};
                out_.append(value->GetString(), value->GetStringLength()); // the narrative: XHTML already
                return;
            }
            out_.append("<").append(name);
            if (part != nullptr)
                if (const rapidjson::Value* id = detail::find(*part, "id"))
                    attribute("id", primitive_text(*id, path));
            if (value != nullptr)
                attribute("value", primitive_text(*value, path));
            const rapidjson::Value* extensions = part ? detail::find(*part, "extension") : nullptr;
            if (extensions == nullptr) {
                out_ += "/>";
                return;
            }
            out_ += '>';
            const type_def* element_type = detail::r4().type("Element");
            children(*part, *element_type, path, {"id"});
            out_.append("</").append(name).append(">");
            return;
        }
        if (value == nullptr || !value->IsObject())
            throw bad_json{path};
        if (type.kind == type_kind::any_resource) {
            out_.append("<").append(name).append(">");
            resource(*value, path, false);
            out_.append("</").append(name).append(">");
            return;
        }
        // A data type or a backbone element: its id, and an Extension's url, are attributes.
        out_.append("<").append(name);
        std::vector<std::string_view> as_attributes;
        if (const rapidjson::Value* id = detail::find(*value, "id")) {
            attribute("id", primitive_text(*id, path + ".id"));
            as_attributes.push_back("id");
        }
        if (type.name == "Extension")
            if (const rapidjson::Value* url = detail::find(*value, "url")) {
                attribute("url", primitive_text(*url, path + ".url"));
                as_attributes.push_back("url");
            }
        if (value->MemberCount() == as_attributes.size()) {
            out_ += "/>";
            return;
        }
        out_ += '>';
        if (as_attributes.size() == 2)
            children(*value, type, path, {"id", "url"});
        else if (as_attributes.size() == 1)
            children(*value, type, path, {as_attributes.front()});
        else
            children(*value, type, path);
        out_.append("</").append(name).append(">");
    }

    void attribute(std::string_view name, std::string_view value) {
        out_.append(" ").append(name).append("=\"");
        append_attribute_value(out_, value);
        out_ += '"';
    }

    std::string& out_;
};

} // namespace

result<std::string> json_to_xml(std::string_view json) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(json, doc); !parsed)
        return std::move(parsed).failure();
    if (!doc.IsObject())
        return error::make(category::malformed, "structure", "not a resource: a JSON object is needed");
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    out.reserve(json.size() * 2);
    try {
        xml_writer(out).resource(doc, {}, true);
    } catch (const bad_json& bad) {
        return error::make(category::malformed, "structure", "the resource could not be written as XML", bad.where);
    }
    return out;
}

} // namespace caregate::fhir
