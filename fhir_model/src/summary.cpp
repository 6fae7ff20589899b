// `_summary` and `_elements` on stored canonical JSON; see fhir_model/summary.hpp. Filters the parsed
// document in place by the R4 definitions (definitions.hpp: isSummary, min) and writes it back with the
// canonical writer, so numbers keep their text and element order stays canonical.
#include "fhir_model/summary.hpp"

#include "canonical.hpp"
#include "definitions.hpp"
#include "json.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

namespace caregate::fhir {

namespace {

using detail::member_def;
using detail::type_def;
using detail::type_kind;

error not_canonical(std::string diagnostics) {
    return error::make(category::malformed, "structure", "subset_resource: " + std::move(diagnostics));
}

bool reduce_object(rapidjson::Value& object, const type_def& type);

/// Reduces one kept element's value (an object, or an array of them) to its summary children; false
/// when nothing is left. Primitives, contained resources and Extensions are kept as they are.
bool reduce_value(rapidjson::Value& value, const type_def& type) {
    if ((type.kind != type_kind::complex && type.kind != type_kind::backbone) || type.name == "Extension")
        return true; // an extension's url and value are not isSummary, yet it means nothing without them
    if (!value.IsArray())
        return reduce_object(value, type);
    for (auto item = value.Begin(); item != value.End();)
        item = reduce_object(*item, type) ? item + 1 : value.Erase(item);
    return !value.Empty();
}

/// Keeps the members of `object` (of `type`) whose elements are isSummary, each reduced in turn; false
/// when nothing is left (FHIR JSON has no empty objects).
bool reduce_object(rapidjson::Value& object, const type_def& type) {
    if (!object.IsObject())
        return true; // not reached for validated content
    for (auto member = object.MemberBegin(); member != object.MemberEnd();) {
        const member_def* def = type.member(detail::view(member->name));
        const bool keep = def != nullptr && def->element->summary &&
                          (def->primitive_part || reduce_value(member->value, *def->type));
        member = keep ? member + 1 : object.EraseMember(member);
    }
    return object.MemberCount() > 0;
}

/// The element's name as `_elements` names it: "value[x]" -> "value".
std::string_view base_name(const detail::element_def& element) {
    std::string_view name = element.name;
    if (element.choice)
        name.remove_suffix(3);
    return name;
}

bool listed(const std::vector<std::string>& elements, std::string_view name) {
    return std::find(elements.begin(), elements.end(), name) != elements.end();
}

/// Whether `form` and `elements` keep the top-level member `json_name` (`def` null for a member the
/// definitions do not know, which validated content never has).
bool keep_top_level(std::string_view json_name, const member_def* def, summary_form form,
                    const std::vector<std::string>& elements) {
    if (def == nullptr)
        return elements.empty() && (form == summary_form::full || form == summary_form::data);
    const detail::element_def& element = *def->element;
    if (!elements.empty() && element.min == 0 && !listed(elements, base_name(element)) &&
        !listed(elements, json_name.starts_with('_') ? json_name.substr(1) : json_name))
        return false;
    switch (form) {
    case summary_form::full: return true;
    case summary_form::data: return element.name != "text";
    case summary_form::text: return element.name == "text" || element.min >= 1;
    case summary_form::summary: return element.summary;
    }
    return true;
}

/// Adds the SUBSETTED tag to meta.tag unless it is there; creates meta and tag as needed.
void add_subsetted_tag(rapidjson::Document& doc) {
    auto& allocator = doc.GetAllocator();
    if (!doc.HasMember("meta"))
        doc.AddMember("meta", rapidjson::Value(rapidjson::kObjectType), allocator); // the writer puts it after id
    rapidjson::Value& meta = doc["meta"];
    if (!meta.HasMember("tag"))
        meta.AddMember("tag", rapidjson::Value(rapidjson::kArrayType), allocator);
    rapidjson::Value& tags = meta["tag"];
    for (const auto& tag : tags.GetArray())
        if (detail::string_member(tag, "system") == subsetted_tag_system &&
            detail::string_member(tag, "code") == subsetted_tag_code)
            return;
    rapidjson::Value tag(rapidjson::kObjectType);
    tag.AddMember("system", rapidjson::StringRef(subsetted_tag_system.data(), subsetted_tag_system.size()), allocator);
    tag.AddMember("code", rapidjson::StringRef(subsetted_tag_code.data(), subsetted_tag_code.size()), allocator);
    tags.PushBack(tag, allocator);
}

/// The server stamp already in stored content. The canonical writer drops meta.versionId and
/// meta.lastUpdated unless given a stamp; handing it back the stored one keeps them, and their place.
result<std::optional<detail::server_stamp>> stored_stamp(const rapidjson::Document& doc) {
    const rapidjson::Value* meta = detail::find(doc, "meta");
    const rapidjson::Value* version = meta ? detail::find(*meta, "versionId") : nullptr;
    const rapidjson::Value* updated = meta ? detail::find(*meta, "lastUpdated") : nullptr;
    if (version == nullptr && updated == nullptr)
        return std::optional<detail::server_stamp>{};
    const auto id = detail::string_member(doc, "id");
    if (version == nullptr || updated == nullptr || !id || !detail::is_string(*version) ||
        !detail::is_string(*updated))
        return not_canonical("meta.versionId and meta.lastUpdated are not as the store writes them");
    const std::string_view version_text = detail::view(*version);
    detail::server_stamp stamp{*id, 0, detail::view(*updated)};
    const auto [end, failed] =
        std::from_chars(version_text.data(), version_text.data() + version_text.size(), stamp.version_id);
    if (failed != std::errc{} || end != version_text.data() + version_text.size() ||
        std::to_string(stamp.version_id) != version_text)
        return not_canonical("meta.versionId is not an integer as the store writes it");
    return std::optional<detail::server_stamp>{stamp};
}

} // namespace

result<std::string> subset_resource(std::string_view canonical_json, summary_form form,
                                    const std::vector<std::string>& elements) {
    if (form == summary_form::full && elements.empty())
        return std::string(canonical_json);
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(canonical_json, doc); !parsed)
        return std::move(parsed).failure();
    const auto resource_type = detail::string_member(doc, "resourceType");
    const type_def* type = resource_type ? detail::r4().type(*resource_type) : nullptr;
    if (type == nullptr || type->kind != type_kind::resource)
        return not_canonical("not a resource of a type in the R4 definitions");
    auto stamp = stored_stamp(doc);
    if (!stamp)
        return std::move(stamp).failure();

    for (auto member = doc.MemberBegin(); member != doc.MemberEnd();) {
        const std::string_view name = detail::view(member->name);
        if (name == "resourceType" || name == "id" || name == "meta") {
            ++member;
            continue;
        }
        const member_def* def = type->member(name);
        bool keep = keep_top_level(name, def, form, elements);
        if (keep && form == summary_form::summary && !def->primitive_part)
            keep = reduce_value(member->value, *def->type);
        member = keep ? member + 1 : doc.EraseMember(member);
    }
    add_subsetted_tag(doc);
    return detail::write_canonical(doc, stamp->has_value() ? &**stamp : nullptr);
}

} // namespace caregate::fhir
