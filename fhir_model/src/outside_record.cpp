// See outside_record.hpp for the rule.
#include "outside_record.hpp"

#include "definitions.hpp"
#include "json.hpp"

#include "fhir_model/nhs_number.hpp"
#include "fhir_model/resource.hpp"

#include <algorithm>
#include <string>

namespace caregate::fhir::detail {

namespace {

/// Compartment types that may name no citizen; one that names none is a directory item (resource.cpp).
constexpr std::string_view directory_compartment_types[] = {"Device", "Group", "Schedule"};

/// 1: whether `type` is a citizen's or holds a citizen's item.
bool is_citizen_item_type(std::string_view type) {
    if (type == "Patient" || type == "Task")
        return true;
    if (!in_patient_compartment(type))
        return false;
    return std::find(std::begin(directory_compartment_types), std::end(directory_compartment_types), type) ==
           std::end(directory_compartment_types);
}

/// The type a literal reference names ("Type/id", "Type/id/_history/n", an absolute URL ending so),
/// or empty.
std::string_view referenced_type(std::string_view text) {
    if (const auto history = text.find("/_history/"); history != std::string_view::npos)
        text = text.substr(0, history);
    const auto slash = text.rfind('/');
    if (slash == std::string_view::npos || slash == 0)
        return {};
    const auto start = text.rfind('/', slash - 1);
    return text.substr(start == std::string_view::npos ? 0 : start + 1,
                       slash - (start == std::string_view::npos ? 0 : start + 1));
}

/// A Reference (not a resource, nor another element with a `type`): its `reference`, an
/// `identifier` object, or a `display` beside the `type`.
bool looks_like_reference(const rapidjson::Value& v) {
    if (v.HasMember("resourceType"))
        return false;
    auto member = [&](const char* name) {
        auto found = v.FindMember(name);
        return found == v.MemberEnd() ? nullptr : &found->value;
    };
    const rapidjson::Value* reference = member("reference");
    const rapidjson::Value* identifier = member("identifier");
    const rapidjson::Value* display = member("display");
    return (reference && is_string(*reference)) || (identifier && identifier->IsObject()) ||
           (display && is_string(*display));
}

struct walker {
    std::string_view root_type;
    std::vector<issue> issues;
    /// A member of the root resource not walked.
    std::string_view skipped_root_member;

    void refuse(const std::string& path, std::string_view what) {
        issues.push_back({"error", "business-rule",
                          std::string(root_type) +
                              " resources are outside every citizen's record and shown to every role that reads them, so "
                              "one may not name a citizen or a citizen's item; found: " + std::string(what),
                          path});
    }

    void value(const rapidjson::Value& v, const std::string& path) {
        if (v.IsArray()) {
            for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
                value(v[i], path + "[" + std::to_string(i) + "]");
            return;
        }
        if (!v.IsObject())
            return;
        if (auto system = v.FindMember("system");
            system != v.MemberEnd() && is_string(system->value) && text_of(system->value) == nhs_number_system)
            refuse(path, "an NHS number");
        if (auto reference = v.FindMember("reference"); reference != v.MemberEnd() && is_string(reference->value)) {
            const std::string_view type = referenced_type(text_of(reference->value));
            if (!type.empty() && is_citizen_item_type(type))
                refuse(path, "a reference to " + std::string(type));
        }
        if (auto type = v.FindMember("type");
            type != v.MemberEnd() && is_string(type->value) && looks_like_reference(v) &&
            is_citizen_item_type(text_of(type->value)))
            refuse(path, "a reference to " + std::string(text_of(type->value)));
        for (const auto& member : v.GetObject()) {
            const std::string_view name(member.name.GetString(), member.name.GetStringLength());
            if (name == skipped_root_member && path == root_type)
                continue;
            if (name == "contained" && member.value.IsArray()) {
                for (rapidjson::SizeType i = 0; i < member.value.Size(); ++i) {
                    const rapidjson::Value& inner = member.value[i];
                    const std::string at = path + ".contained[" + std::to_string(i) + "]";
                    if (auto kind = inner.IsObject() ? inner.FindMember("resourceType") : rapidjson::Value::ConstMemberIterator();
                        inner.IsObject() && kind != inner.MemberEnd() && is_string(kind->value) &&
                        is_citizen_item_type(text_of(kind->value)))
                        refuse(at, "a contained " + std::string(text_of(kind->value)));
                    value(inner, at);
                }
                continue;
            }
            value(member.value, path + "." + std::string(name));
        }
    }
};

} // namespace

std::vector<issue> names_of_citizens_outside_record(const rapidjson::Value& resource, std::string_view type) {
    if (in_patient_compartment(type))
        return {};
    walker w{type, {}};
    // A Binary's securityContext names the item it is seen with (any item, a citizen's too): the rule
    // does not apply to it; the rest of the Binary is held to the rule.
    if (points_at_items(type))
        w.skipped_root_member = "securityContext";
    w.value(resource, std::string(type));
    return std::move(w.issues);
}

} // namespace caregate::fhir::detail
