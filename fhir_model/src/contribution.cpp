// Marking a patient contribution (contribution.hpp), on the json layer's DOM (json.hpp) so that numbers
// keep their text and members their order, as patch.cpp does. Not the decision whether the caller may
// write, nor validation: the result goes through prepare_resource like any other body.
//
// Design notes:
// 1. All or nothing: the checks that refuse (someone else named) run over the DOM before anything is
//    changed, and a refusal returns no text.
// 2. Only the root resource is marked: a contained resource is part of the contribution, not another.
// 3. A value of the wrong JSON shape is neither marked nor refused here: validation refuses it with
//    the expression the client expects, and a refused body is never stored.
#include "fhir_model/contribution.hpp"

#include "fhir_model/nhs_number.hpp"
#include "json.hpp"

#include <algorithm>

namespace caregate::fhir {

namespace {

using detail::find;
using detail::string_member;
using rapidjson::Value;
using allocator = rapidjson::Document::AllocatorType;

/// The elements of each type that say who made it: `list` ones are arrays that must include the
/// citizen (and name nobody else); the others are single References set to the citizen when absent.
struct maker_element {
    std::string_view type;
    std::string_view name;
    bool list;
};

constexpr maker_element maker_elements[] = {
    {"Observation", "performer", true},
    {"Consent", "performer", true},
    {"Communication", "sender", false},
    {"QuestionnaireResponse", "author", false},
    {"QuestionnaireResponse", "source", false},
};

/// Whether a Reference names the citizen: `reference` "Patient/{nhs}", or, without one, an identifier
/// of the NHS number system with their number. Both given must both name them.
bool names_citizen(const Value& reference, std::string_view nhs_number) {
    if (!reference.IsObject())
        return false;
    if (auto type = string_member(reference, "type"); type && *type != "Patient")
        return false;
    const auto literal = string_member(reference, "reference");
    const Value* identifier = find(reference, "identifier");
    if (!literal && identifier == nullptr)
        return false;
    constexpr std::string_view patient_prefix = "Patient/";
    if (literal && (!literal->starts_with(patient_prefix) || literal->substr(patient_prefix.size()) != nhs_number))
        return false;
    if (identifier != nullptr && (string_member(*identifier, "system") != nhs_number_system ||
                                  string_member(*identifier, "value") != nhs_number))
        return false;
    return true;
}

Value text_value(std::string_view text, allocator& alloc) {
    return Value(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc);
}

Value citizen_reference(std::string_view nhs_number, allocator& alloc) {
    Value reference(rapidjson::kObjectType);
    reference.AddMember("reference", text_value("Patient/" + std::string(nhs_number), alloc), alloc);
    return reference;
}

error someone_else(std::string_view type, std::string_view name, std::string expression) {
    return error::make(category::invalid, "business-rule",
                       "a citizen contributes in their own name: " + std::string(type) + "." + std::string(name) +
                           " may name only the citizen (Patient/{NHS number}); the server fills it in when absent",
                       std::move(expression));
}

/// Refuses a maker element that names someone else (design note 1); nothing is changed.
status check_maker(const Value& resource, const maker_element& element, std::string_view nhs_number) {
    const Value* value = find(resource, element.name);
    if (value == nullptr)
        return {};
    const std::string path = std::string(element.type) + "." + std::string(element.name);
    if (!element.list) {
        if (value->IsObject() && !names_citizen(*value, nhs_number))
            return someone_else(element.type, element.name, path);
        return {};
    }
    if (!value->IsArray())
        return {};
    for (rapidjson::SizeType i = 0; i < value->Size(); ++i)
        if ((*value)[i].IsObject() && !names_citizen((*value)[i], nhs_number))
            return someone_else(element.type, element.name, path + "[" + std::to_string(i) + "]");
    return {};
}

/// Names the citizen in a maker element that does not yet name them.
void fill_maker(Value& resource, const maker_element& element, std::string_view nhs_number, allocator& alloc) {
    auto member = resource.FindMember(rapidjson::StringRef(element.name.data(), element.name.size()));
    if (member == resource.MemberEnd()) {
        Value added = citizen_reference(nhs_number, alloc);
        if (element.list) {
            Value list(rapidjson::kArrayType);
            list.PushBack(added, alloc);
            added = std::move(list);
        }
        resource.AddMember(text_value(element.name, alloc), added, alloc);
        return;
    }
    if (!element.list || !member->value.IsArray())
        return;
    Value& list = member->value;
    if (std::none_of(list.Begin(), list.End(), [&](const Value& item) { return names_citizen(item, nhs_number); }))
        list.PushBack(citizen_reference(nhs_number, alloc), alloc);
}

bool is_contribution_tag(const Value& coding) {
    return string_member(coding, "system") == provenance_tag_system &&
           string_member(coding, "code") == patient_contributed_code;
}

/// meta.tag with the patient-contributed tag once, and meta.source the patient endpoint.
void mark_meta(Value& resource, allocator& alloc) {
    auto meta = resource.FindMember("meta");
    if (meta == resource.MemberEnd()) {
        resource.AddMember("meta", Value(rapidjson::kObjectType), alloc);
        meta = resource.FindMember("meta");
    }
    if (!meta->value.IsObject())
        return;
    Value& m = meta->value;

    auto tags = m.FindMember("tag");
    if (tags == m.MemberEnd()) {
        m.AddMember("tag", Value(rapidjson::kArrayType), alloc);
        tags = m.FindMember("tag");
    }
    if (tags->value.IsArray() && std::none_of(tags->value.Begin(), tags->value.End(), is_contribution_tag)) {
        Value tag(rapidjson::kObjectType);
        tag.AddMember("system", text_value(provenance_tag_system, alloc), alloc);
        tag.AddMember("code", text_value(patient_contributed_code, alloc), alloc);
        tag.AddMember("display", text_value(patient_contributed_display, alloc), alloc);
        tags->value.PushBack(tag, alloc);
    }

    if (auto source = m.FindMember("source"); source != m.MemberEnd())
        source->value = text_value(patient_endpoint_source, alloc);
    else
        m.AddMember("source", text_value(patient_endpoint_source, alloc), alloc);
}

} // namespace

result<std::string> mark_contribution(std::string_view resource, std::string_view nhs_number) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(resource, doc); !parsed)
        return std::move(parsed).failure();
    const auto type = string_member(doc, "resourceType");
    if (!doc.IsObject() || !type)
        return std::string(resource); // not a resource: prepare_resource says so
    const std::string type_name(*type); // the DOM changes below
    for (const maker_element& element : maker_elements)
        if (element.type == type_name)
            if (auto checked = check_maker(doc, element, nhs_number); !checked)
                return std::move(checked).failure();
    auto& alloc = doc.GetAllocator();
    for (const maker_element& element : maker_elements)
        if (element.type == type_name)
            fill_maker(doc, element, nhs_number, alloc);
    mark_meta(doc, alloc);
    return detail::write_json(doc);
}

bool carries_contribution_tag(std::string_view resource) {
    // Without the code's text, or an escape that could spell it, the tag cannot be there.
    if (resource.find(patient_contributed_code) == std::string_view::npos &&
        resource.find("\\u") == std::string_view::npos)
        return false;
    rapidjson::Document doc;
    if (!detail::parse_json(resource, doc))
        return false;
    const Value* meta = find(doc, "meta");
    const Value* tags = meta ? find(*meta, "tag") : nullptr;
    return tags != nullptr && tags->IsArray() && std::any_of(tags->Begin(), tags->End(), is_contribution_tag);
}

} // namespace caregate::fhir
