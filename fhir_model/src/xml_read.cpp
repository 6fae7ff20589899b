// FHIR XML to JSON (xml.hpp): bounded first (invariant 3), then parsed by Boost.PropertyTree's XML
// reader (RapidXML: no DTD processing, no entity but XML's own five and character references), then
// walked by the definitions, writing JSON as it goes.
#include "fhir_model/xml.hpp"

#include "definitions.hpp"
#include "json.hpp"
#include "primitives.hpp"

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <set>
#include <sstream>
#include <vector>

namespace caregate::fhir {

namespace {

using boost::property_tree::ptree;
using detail::member_def;
using detail::primitive_kind;
using detail::type_def;
using detail::type_kind;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::string_view fhir_namespace = "http://hl7.org/fhir";
constexpr const char* attributes_key = "<xmlattr>";
constexpr const char* text_key = "<xmltext>";

struct refusal {
    std::string diagnostics;
    std::string where;
};

/// Invariant 3, before any parsing: what a parser could expand, fetch or recurse on is refused. On
/// the way, the text of each narrative (a `div` inside a `text` element), in document order: it is
/// carried into JSON as the text it was sent as, entities and all (invariant 1).
std::vector<std::string_view> check_bounds(std::string_view xml) {
    std::vector<std::string_view> narratives;
    std::vector<std::string_view> open; // the names of the elements open at this point
    std::size_t narrative_start = 0, narrative_depth = 0; // depth 0: not in a narrative
    std::size_t elements = 0;
    for (std::size_t at = 0; at < xml.size(); ++at) {
        if (xml[at] != '<')
            continue;
        const std::string_view rest = xml.substr(at);
        if (rest.starts_with("<!--")) {
            const auto end = xml.find("-->", at + 4);
            if (end == std::string_view::npos)
                throw refusal{"a comment is not closed", {}};
            at = end + 2;
        } else if (rest.starts_with("<![CDATA[")) {
            const auto end = xml.find("]]>", at + 9);
            if (end == std::string_view::npos)
                throw refusal{"a CDATA section is not closed", {}};
            at = end + 2;
        } else if (rest.starts_with("<!")) {
            throw refusal{"a DTD or a declaration (<!DOCTYPE, <!ENTITY, ...) is not accepted: FHIR XML has none", {}};
        } else if (rest.starts_with("<?")) {
            if (at != 0 && xml.substr(0, at).find_first_not_of(" \t\r\n\xEF\xBB\xBF") != std::string_view::npos)
                throw refusal{"a processing instruction is not accepted", {}};
            if (!rest.starts_with("<?xml ") && !rest.starts_with("<?xml?"))
                throw refusal{"a processing instruction is not accepted", {}};
            const auto end = xml.find("?>", at);
            if (end == std::string_view::npos)
                throw refusal{"the XML declaration is not closed", {}};
            at = end + 1;
        } else {
            // A start or end tag: to its end, past quoted attribute values (which may hold '>').
            const bool closing = rest.starts_with("</");
            char quote = 0;
            std::size_t end = at + 1;
            for (; end < xml.size(); ++end) {
                const char c = xml[end];
                if (quote) {
                    if (c == quote)
                        quote = 0;
                } else if (c == '"' || c == '\'') {
                    quote = c;
                } else if (c == '>') {
                    break;
                }
            }
            if (end == xml.size())
                throw refusal{"a tag is not closed", {}};
            const std::size_t name_start = at + (closing ? 2 : 1);
            const std::size_t name_end = std::min(end, xml.find_first_of(" \t\r\n/>", name_start));
            const std::string_view name = xml.substr(name_start, name_end - name_start);
            const bool empty = !closing && xml[end - 1] == '/';
            if (closing) {
                if (!open.empty())
                    open.pop_back();
                if (narrative_depth != 0 && open.size() + 1 == narrative_depth) {
                    narratives.push_back(xml.substr(narrative_start, end + 1 - narrative_start));
                    narrative_depth = 0;
                }
            } else {
                if (open.size() + 1 > max_xml_depth)
                    throw refusal{"elements are nested more than " + std::to_string(max_xml_depth) + " deep", {}};
                if (++elements > max_xml_elements)
                    throw refusal{"more than " + std::to_string(max_xml_elements) + " elements", {}};
                const bool narrative = narrative_depth == 0 && name == "div" && !open.empty() && open.back() == "text";
                if (narrative && empty)
                    narratives.push_back(xml.substr(at, end + 1 - at));
                else if (narrative) {
                    narrative_start = at;
                    narrative_depth = open.size() + 1;
                }
                if (!empty)
                    open.push_back(name);
            }
            at = end;
        }
    }
    return narratives;
}

std::string attribute(const ptree& node, const char* name) {
    if (auto attributes = node.get_child_optional(attributes_key))
        if (auto value = attributes->get_optional<std::string>(name))
            return *value;
    return {};
}

bool has_attribute(const ptree& node, const char* name) {
    auto attributes = node.get_child_optional(attributes_key);
    return attributes && attributes->get_child_optional(name);
}

bool is_number_kind(primitive_kind kind) {
    return kind == primitive_kind::decimal || kind == primitive_kind::integer || kind == primitive_kind::positiveInt ||
           kind == primitive_kind::unsignedInt;
}

class json_builder {
public:
    json_builder(json_writer& out, std::vector<std::string_view> narratives)
        : out_(out), narratives_(std::move(narratives)) {}

    void resource(const std::string& type_name, const ptree& node, const std::string& path) {
        const type_def* type = detail::r4().type(type_name);
        if (type == nullptr || type->kind != type_kind::resource)
            throw refusal{"'" + type_name + "' is not a resource type", path};
        out_.StartObject();
        out_.Key("resourceType");
        out_.String(type_name.c_str(), static_cast<rapidjson::SizeType>(type_name.size()));
        members(node, *type, path.empty() ? type_name : path, {});
        out_.EndObject();
    }

private:
    /// The child elements of `node` as members of a JSON object of `type`, which the caller has
    /// started; `attributes` are the attributes to write as members first (id, url).
    void members(const ptree& node, const type_def& type, const std::string& path,
                 std::initializer_list<const char*> attributes) {
        for (const char* name : attributes)
            if (has_attribute(node, name)) {
                out_.Key(name);
                const std::string value = attribute(node, name);
                out_.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
            }
        // Runs of elements of one name, in order: a repeated element is one JSON array.
        std::vector<std::pair<std::string, std::vector<const ptree*>>> runs;
        std::set<std::string> seen;
        for (const auto& [key, child] : node) {
            if (key == text_key && child.data().find_first_not_of(" \t\r\n") != std::string::npos)
                throw refusal{"text outside a value attribute (only the narrative's div holds text)", path};
            if (key == attributes_key || key == text_key || key == "<xmlcomment>")
                continue;
            if (!runs.empty() && runs.back().first == key) {
                runs.back().second.push_back(&child);
                continue;
            }
            if (!seen.insert(key).second)
                throw refusal{"the element '" + key + "' repeats apart from its other occurrences", path + "." + key};
            runs.push_back({key, {&child}});
        }
        for (const auto& [name, items] : runs)
            element(type, name, items, path + "." + name);
    }

    void element(const type_def& owner, const std::string& name, const std::vector<const ptree*>& items,
                 const std::string& path) {
        const member_def* def = owner.member(name);
        if (def == nullptr || def->element == nullptr || def->primitive_part)
            throw refusal{"unknown element '" + name + "'", path};
        const bool array = def->element->repeats();
        if (!array && items.size() > 1)
            throw refusal{"the element '" + name + "' may appear once", path};
        const type_def& type = *def->type;
        if (type.kind == type_kind::primitive && type.primitive != primitive_kind::xhtml) {
            primitives(name, type, items, array, path);
            return;
        }
        out_.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
        if (array)
            out_.StartArray();
        for (std::size_t i = 0; i < items.size(); ++i) {
            const std::string at = array ? path + "[" + std::to_string(i) + "]" : path;
            one(name, type, *items[i], at);
        }
        if (array)
            out_.EndArray();
    }

    void one(const std::string& name, const type_def& type, const ptree& node, const std::string& path) {
        if (type.kind == type_kind::primitive) { // the narrative's div, as it was sent
            if (next_narrative_ == narratives_.size())
                throw refusal{"a narrative is not an XHTML div inside a text element", path};
            const std::string_view xhtml = narratives_[next_narrative_++];
            out_.String(xhtml.data(), static_cast<rapidjson::SizeType>(xhtml.size()));
            return;
        }
        if (type.kind == type_kind::any_resource) {
            const ptree* inner = nullptr;
            std::string inner_name;
            for (const auto& [key, child] : node) {
                if (key == attributes_key || key == text_key || key == "<xmlcomment>")
                    continue;
                if (inner != nullptr)
                    throw refusal{"a resource element holds one resource", path};
                inner = &child;
                inner_name = key;
            }
            if (inner == nullptr)
                throw refusal{"a resource element holds a resource", path};
            resource(inner_name, *inner, path);
            return;
        }
        out_.StartObject();
        if (type.name == "Extension")
            members(node, type, path, {"id", "url"});
        else
            members(node, type, path, {"id"});
        out_.EndObject();
    }

    /// A primitive element (or a run of them): the values, then the `_name` parts (id, extensions).
    void primitives(const std::string& name, const type_def& type, const std::vector<const ptree*>& items,
                    bool array, const std::string& path) {
        bool any_part = false, any_value = false;
        for (const ptree* item : items) {
            any_part = any_part || has_attribute(*item, "id") || item->get_child_optional("extension");
            any_value = any_value || has_attribute(*item, "value");
        }
        if (any_value)
            values(name, type, items, array);
        if (any_part)
            parts(name, items, array, path);
    }

    /// The values of a run of primitives, typed by the definitions (null where one has none).
    void values(const std::string& name, const type_def& type, const std::vector<const ptree*>& items, bool array) {
        out_.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
        if (array)
            out_.StartArray();
        for (const ptree* item : items) {
            if (!has_attribute(*item, "value")) {
                out_.Null();
                continue;
            }
            const std::string text = attribute(*item, "value");
            if (type.primitive == primitive_kind::boolean && (text == "true" || text == "false"))
                out_.Bool(text == "true");
            else if (is_number_kind(type.primitive) && detail::is_valid_decimal(text))
                out_.RawValue(text.c_str(), text.size(), rapidjson::kNumberType);
            else
                out_.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
        }
        if (array)
            out_.EndArray();
    }

    /// The parts of a run of primitives (their ids and extensions), as `_name`.
    void parts(const std::string& name, const std::vector<const ptree*>& items, bool array, const std::string& path) {
        const std::string part_name = "_" + name;
        out_.Key(part_name.c_str(), static_cast<rapidjson::SizeType>(part_name.size()));
        const type_def& element_type = *detail::r4().type("Element");
        if (array)
            out_.StartArray();
        for (std::size_t i = 0; i < items.size(); ++i) {
            const ptree& item = *items[i];
            if (!has_attribute(item, "id") && !item.get_child_optional("extension")) {
                out_.Null();
                continue;
            }
            out_.StartObject();
            members(item, element_type, array ? path + "[" + std::to_string(i) + "]" : path, {"id"});
            out_.EndObject();
        }
        if (array)
            out_.EndArray();
    }

    json_writer& out_;
    /// check_bounds's narratives, taken in document order as the walk meets them.
    std::vector<std::string_view> narratives_;
    std::size_t next_narrative_ = 0;
};

} // namespace

result<std::string> xml_to_json(std::string_view xml) {
    try {
        std::vector<std::string_view> narratives = check_bounds(xml);
        ptree document;
        {
            std::istringstream in{std::string(xml)};
            boost::property_tree::read_xml(in, document, boost::property_tree::xml_parser::no_concat_text |
                                                             boost::property_tree::xml_parser::no_comments);
        }
        const ptree* root = nullptr;
        std::string root_name;
        for (const auto& [key, child] : document) {
            if (key == "<xmlcomment>" || key == text_key)
                continue;
            if (root != nullptr)
                throw refusal{"an XML document holds one resource", {}};
            root = &child;
            root_name = key;
        }
        if (root == nullptr)
            throw refusal{"the XML holds no resource", {}};
        if (attribute(*root, "xmlns") != fhir_namespace)
            throw refusal{"the resource is not in the FHIR namespace (xmlns=\"http://hl7.org/fhir\")", root_name};
        rapidjson::StringBuffer buffer;
        json_writer out(buffer);
        json_builder(out, std::move(narratives)).resource(root_name, *root, {});
        return std::string(buffer.GetString(), buffer.GetSize());
    } catch (const refusal& refused) {
        return error::make(category::malformed, "structure", "the XML is not a FHIR resource: " + refused.diagnostics,
                           refused.where);
    } catch (const boost::property_tree::xml_parser_error& failed) {
        return error::make(category::malformed, "structure",
                           "the body is not well-formed XML (line " + std::to_string(failed.line()) + ")");
    }
}

} // namespace caregate::fhir
