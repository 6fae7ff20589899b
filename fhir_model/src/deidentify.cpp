// De-identification of a stored resource: see fhir_model/deidentify.hpp for what it keeps.
#include "fhir_model/deidentify.hpp"

#include "fhir_model/nhs_number.hpp"
#include "json.hpp"

#include <algorithm>
#include <cctype>

namespace caregate::fhir {

namespace {

using detail::find;
using detail::is_string;
using detail::string_value;
using detail::view;
using rule = deidentification_profile::rule;
using allocator = rapidjson::Document::AllocatorType;

error bad_profile(std::string diagnostics) {
    return error::make(category::invalid, "invalid", "de-identification profile: " + std::move(diagnostics));
}

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> keys;
    while (!path.empty()) {
        const auto dot = path.find('.');
        keys.emplace_back(path.substr(0, dot));
        path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    }
    return keys;
}

result<rule> read_rule(const rapidjson::Value& item, const std::string& where, bool everywhere) {
    if (!item.IsObject())
        return bad_profile(where + " is not an object");
    auto comment = detail::string_member(item, "comment");
    if (!comment || comment->empty())
        return bad_profile(where + " needs a \"comment\" saying why");
    rule out;
    const auto path = detail::string_member(item, everywhere ? "key" : "path");
    if (!path || path->empty())
        return bad_profile(where + std::string(everywhere ? " needs a \"key\"" : " needs a \"path\""));
    out.path = everywhere ? std::vector<std::string>{std::string(*path)} : split_path(*path);
    if (auto within = detail::string_member(item, "within"))
        out.within = *within;
    const auto action = detail::string_member(item, "action").value_or("");
    if (action == "remove")
        out.what = deidentification_profile::action::remove;
    else if (action == "year-month")
        out.what = deidentification_profile::action::year_month;
    else if (action == "postcode-district")
        out.what = deidentification_profile::action::postcode_district;
    else if (action == "keep-systems")
        out.what = deidentification_profile::action::keep_systems;
    else
        return bad_profile(where + " has the unknown action '" + std::string(action) + "'");
    if (out.what == deidentification_profile::action::keep_systems) {
        const rapidjson::Value* systems = find(item, "systems");
        if (systems == nullptr || !systems->IsArray())
            return bad_profile(where + ": keep-systems needs \"systems\", an array");
        for (const auto& system : systems->GetArray())
            if (is_string(system))
                out.systems.emplace_back(view(system));
    }
    return out;
}

/// "Type/id" of a literal reference to an item, relative, versioned or absolute; nothing for a
/// fragment, or for what does not end in a type and an id.
std::optional<std::pair<std::string, std::string>> referenced_item(std::string_view reference) {
    if (reference.empty() || reference.front() == '#')
        return std::nullopt;
    if (const auto history = reference.find("/_history/"); history != std::string_view::npos)
        reference = reference.substr(0, history);
    const auto last = reference.rfind('/');
    if (last == std::string_view::npos || last == 0)
        return std::nullopt;
    const auto before = reference.rfind('/', last - 1);
    const std::string_view type = reference.substr(before == std::string_view::npos ? 0 : before + 1,
                                                   last - (before == std::string_view::npos ? 0 : before + 1));
    const std::string_view id = reference.substr(last + 1);
    if (type.empty() || id.empty() || !std::isupper(static_cast<unsigned char>(type.front())))
        return std::nullopt;
    return std::pair{std::string(type), std::string(id)};
}

class deidentifier {
public:
    deidentifier(const deidentification_profile& profile, const pseudonym_function& pseudonym, allocator& alloc)
        : profile_(profile), pseudonym_(pseudonym), alloc_(alloc) {}

    /// A resource: its contents, its id (not a contained one's: those are local), its type's rules.
    void resource(rapidjson::Value& object, bool contained) {
        walk(object, {});
        const auto type = detail::string_member(object, "resourceType");
        if (!type)
            return;
        const std::string type_name(*type);
        if (!contained)
            if (auto id = detail::string_member(object, "id"))
                detail::set_member(object, "id", string_value(pseudonym_(type_name, *id), alloc_), alloc_);
        for (const rule& r : profile_.for_type(type_name))
            along(object, r, 0);
        drop_emptied(object);
    }

private:
    /// Invariants 1 to 3 and the rules for everywhere, children first (so an identifier is already a
    /// pseudonym's when its array is filtered).
    void walk(rapidjson::Value& value, std::string_view key) {
        if (value.IsArray()) {
            for (auto& item : value.GetArray())
                walk(item, key);
            return;
        }
        if (!value.IsObject())
            return;
        for (auto& member : value.GetObject()) {
            const std::string_view name = view(member.name);
            if (name == "contained" && member.value.IsArray()) {
                for (auto& inner : member.value.GetArray())
                    if (inner.IsObject())
                        resource(inner, true);
                continue;
            }
            walk(member.value, name);
        }
        if (auto reference = detail::string_member(value, "reference")) {
            if (auto item = referenced_item(*reference))
                detail::set_member(value, "reference",
                                   string_value(item->first + "/" + pseudonym_(item->first, item->second), alloc_), alloc_);
            else if (reference->empty() || reference->front() != '#')
                value.RemoveMember("reference"); // not an item's: it could say anything
        }
        if (detail::string_member(value, "system") == nhs_number_system)
            if (auto nhs = detail::string_member(value, "value")) {
                detail::set_member(value, "value", string_value(pseudonym_("Patient", *nhs), alloc_), alloc_);
                detail::set_member(value, "system", string_value(pseudonym_system, alloc_), alloc_);
            }
        for (const rule& r : profile_.everywhere())
            if (r.within.empty() || r.within == key)
                apply(value, r.path.front(), r);
        drop_emptied(value);
    }

    /// What the rules emptied goes too (FHIR JSON has no empty objects or arrays): a Reference that
    /// held only a display, an array whose every element went.
    static void drop_emptied(rapidjson::Value& object) {
        for (auto member = object.MemberBegin(); member != object.MemberEnd();) {
            rapidjson::Value& value = member->value;
            if (value.IsArray())
                for (auto it = value.Begin(); it != value.End();)
                    it = it->IsObject() && it->ObjectEmpty() ? value.Erase(it) : it + 1;
            const bool empty = (value.IsObject() && value.ObjectEmpty()) || (value.IsArray() && value.Empty());
            member = empty ? object.EraseMember(member) : member + 1;
        }
    }

    /// A rule by path: follows `r.path` from `object`, through arrays, and applies it at its last key.
    void along(rapidjson::Value& value, const rule& r, std::size_t at) {
        if (value.IsArray()) {
            for (auto& item : value.GetArray())
                along(item, r, at);
            return;
        }
        if (!value.IsObject())
            return;
        if (at + 1 == r.path.size())
            return apply(value, r.path[at], r);
        if (auto next = value.FindMember(rapidjson::StringRef(r.path[at].data(), r.path[at].size()));
            next != value.MemberEnd())
            along(next->value, r, at + 1);
    }

    void apply(rapidjson::Value& object, const std::string& key, const rule& r) {
        auto member = object.FindMember(rapidjson::StringRef(key.data(), key.size()));
        if (member == object.MemberEnd())
            return;
        rapidjson::Value& value = member->value;
        switch (r.what) {
        case deidentification_profile::action::remove:
            object.EraseMember(member);
            return;
        case deidentification_profile::action::year_month:
            if (is_string(value) && value.GetStringLength() > 7)
                value = string_value(view(value).substr(0, 7), alloc_);
            return;
        case deidentification_profile::action::postcode_district: {
            if (!is_string(value))
                return object.EraseMember(member), void();
            std::string_view postcode = view(value);
            while (!postcode.empty() && postcode.front() == ' ')
                postcode.remove_prefix(1);
            const auto space = postcode.find(' ');
            std::string_view district = space != std::string_view::npos ? postcode.substr(0, space)
                                        : postcode.size() > 3       ? postcode.substr(0, postcode.size() - 3)
                                                                    : std::string_view{};
            value = string_value(district, alloc_);
            return;
        }
        case deidentification_profile::action::keep_systems:
            if (value.IsObject()) { // one Identifier (a Reference's)
                const auto system = detail::string_member(value, "system");
                if (!system || std::find(r.systems.begin(), r.systems.end(), *system) == r.systems.end())
                    object.EraseMember(member);
                return;
            }
            if (!value.IsArray())
                return object.EraseMember(member), void();
            for (auto it = value.Begin(); it != value.End();) {
                const auto system = detail::string_member(*it, "system");
                const bool kept = system && std::find(r.systems.begin(), r.systems.end(), *system) != r.systems.end();
                it = kept ? it + 1 : value.Erase(it);
            }
            if (value.Empty())
                object.EraseMember(member);
            return;
        }
    }

    const deidentification_profile& profile_;
    const pseudonym_function& pseudonym_;
    allocator& alloc_;
};

} // namespace

result<deidentification_profile> deidentification_profile::parse(std::string_view json) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(json, doc); !parsed)
        return bad_profile("not valid JSON: " + parsed.failure().issues.front().diagnostics);
    if (!doc.IsObject())
        return bad_profile("not a JSON object");
    deidentification_profile out;
    if (const rapidjson::Value* everywhere = find(doc, "everywhere")) {
        if (!everywhere->IsArray())
            return bad_profile("\"everywhere\" is not an array");
        for (const auto& item : everywhere->GetArray()) {
            auto read = read_rule(item, "everywhere #" + std::to_string(out.everywhere_.size() + 1), true);
            if (!read)
                return std::move(read).failure();
            out.everywhere_.push_back(std::move(*read));
        }
    }
    if (const rapidjson::Value* types = find(doc, "types")) {
        if (!types->IsObject())
            return bad_profile("\"types\" is not an object");
        for (const auto& type : types->GetObject()) {
            const std::string name(view(type.name));
            if (!type.value.IsArray())
                return bad_profile("types." + name + " is not an array");
            std::vector<rule> rules;
            for (const auto& item : type.value.GetArray()) {
                auto read = read_rule(item, "types." + name + " #" + std::to_string(rules.size() + 1), false);
                if (!read)
                    return std::move(read).failure();
                rules.push_back(std::move(*read));
            }
            out.types_.emplace(name, std::move(rules));
        }
    }
    return out;
}

const std::vector<deidentification_profile::rule>& deidentification_profile::for_type(std::string_view type) const {
    static const std::vector<rule> none;
    auto found = types_.find(type);
    return found == types_.end() ? none : found->second;
}

result<std::string> deidentify_resource(std::string_view canonical_json, const deidentification_profile& profile,
                                        const pseudonym_function& pseudonym) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(canonical_json, doc); !parsed || !doc.IsObject() ||
                                                                 !detail::string_member(doc, "resourceType"))
        return error::make(category::malformed, "invalid", "a stored resource is not a JSON resource");
    deidentifier(profile, pseudonym, doc.GetAllocator()).resource(doc, false);
    return detail::write_json(doc);
}

} // namespace caregate::fhir
