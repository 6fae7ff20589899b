// Validation of a resource against the R4 element tables; see validate.hpp.
//
// Design notes:
// 1. One walk over the DOM; each object is checked against its type's member table (hash lookup by
//    JSON name), so the cost is linear in the size of the resource.
// 2. `path_` is the FHIRPath of the value being checked (e.g. "Observation.component[1].code"); it is
//    extended and truncated in place, and copied only into an issue.
// 3. Issue diagnostics are built from element names, type names and value-set URLs, never from values.
#include "validate.hpp"

#include "fhir_model/nhs_number.hpp"
#include "json.hpp"
#include "primitives.hpp"

#include <array>

namespace caregate::fhir::detail {

namespace {

/// What a Reference.reference string names.
struct reference_target {
    bool well_formed = false;
    bool relative = false;
    std::string_view type; ///< the resource type named, if the form says
    std::string_view id;
};

/// `Type/id` or `Type/id/_history/vid` at the end of `text` (a relative reference, or an absolute URL's path).
reference_target parse_type_and_id(std::string_view text, bool whole) {
    std::array<std::string_view, 4> last{}; // the last up to four segments, in order
    std::size_t count = 0;
    std::string_view rest = text;
    while (count < 5) {
        const auto slash = rest.rfind('/');
        const std::string_view segment = slash == std::string_view::npos ? rest : rest.substr(slash + 1);
        if (count < 4)
            last[3 - count] = segment;
        ++count;
        if (slash == std::string_view::npos)
            break;
        rest = rest.substr(0, slash);
    }
    // `count` segments were read (5 means "more than 4").
    const auto& types = r4().resource_types;
    auto accept = [&](std::string_view type, std::string_view id) {
        return types.find(type) != types.end() && is_valid_id(id);
    };
    reference_target out;
    if ((!whole || count == 2) && accept(last[2], last[3])) {
        out = {true, whole, last[2], last[3]};
    } else if ((!whole || count == 4) && last[2] == "_history" && accept(last[0], last[1]) && is_valid_id(last[3])) {
        out = {true, whole, last[0], last[1]};
    }
    return out;
}

bool is_absolute_url(std::string_view text) {
    const auto colon = text.find("://");
    if (colon == std::string_view::npos || colon == 0)
        return false;
    for (char c : text.substr(0, colon))
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
              c == '.'))
            return false;
    return colon + 3 < text.size();
}

/// "FHIR strings SHALL NOT exceed 1MB in size" (string.value maxLength 1048576, in characters): for
/// string and every type derived from it or from uri. base64Binary and the narrative's xhtml have no
/// such bound (the body's size bounds them).
constexpr std::size_t max_string_characters = 1'048'576;

/// Unicode characters in UTF-8 text (already validated): the bytes that do not continue one.
std::size_t characters(std::string_view text) {
    std::size_t n = 0;
    for (const char c : text)
        n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
}

std::string_view primitive_json_kind(primitive_kind kind) {
    switch (kind) {
    case primitive_kind::boolean: return "boolean";
    case primitive_kind::integer:
    case primitive_kind::decimal:
    case primitive_kind::positiveInt:
    case primitive_kind::unsignedInt: return "number";
    default: return "string";
    }
}

enum class coding_match { in_value_set, not_in_value_set, other_system };

coding_match match_coding(const rapidjson::Value& coding, const value_set_def& value_set) {
    const auto code = string_member(coding, "code");
    if (const auto system = string_member(coding, "system")) {
        if (!value_set.has_system(*system))
            return coding_match::other_system;
        return code && value_set.contains(*system, *code) ? coding_match::in_value_set : coding_match::not_in_value_set;
    }
    return code && value_set.contains_code(*code) ? coding_match::in_value_set : coding_match::not_in_value_set;
}

class validator {
public:
    explicit validator(validation& out) : out_(out) {}

    void root(rapidjson::Value& resource, const type_def& type) {
        path_ = type.name;
        const auto& compartment = r4().compartment;
        collect_citizens_ = type.name != "Patient" && compartment.find(type.name) != compartment.end();
        if (resource.IsObject())
            if (const rapidjson::Value* contained = find(resource, "contained"); contained && contained->IsArray())
                for (auto& item : contained->GetArray())
                    if (item.IsObject())
                        if (auto id = string_member(item, "id"))
                            contained_ids_.emplace(*id);
        object(resource, type);
    }

private:
    void fail(std::string code, std::string diagnostics) { fail_at(path_, std::move(code), std::move(diagnostics)); }

    void fail_at(std::string expression, std::string code, std::string diagnostics) {
        if (out_.issues.size() < max_issues)
            out_.issues.push_back(issue{"error", std::move(code), std::move(diagnostics), std::move(expression)});
    }

    /// Appends `.name` or `[index]` to the path for the life of the object.
    class path_scope {
    public:
        path_scope(std::string& path, std::string_view name) : path_(path), mark_(path.size()) {
            path_ += '.';
            path_ += name;
        }
        path_scope(std::string& path, std::size_t index) : path_(path), mark_(path.size()) {
            path_ += '[';
            path_ += std::to_string(index);
            path_ += ']';
        }
        ~path_scope() { path_.resize(mark_); }
        path_scope(const path_scope&) = delete;
        path_scope& operator=(const path_scope&) = delete;

    private:
        std::string& path_;
        std::size_t mark_;
    };

    void object(rapidjson::Value& value, const type_def& type) {
        if (!value.IsObject()) {
            fail("structure", "expected a JSON object (" + type.name + ")");
            return;
        }
        if (value.MemberCount() == 0) {
            fail("structure", "an empty object is not allowed in FHIR JSON");
            return;
        }
        const std::size_t n = type.elements.size();
        constexpr std::size_t inline_slots = 64;
        std::array<std::uint32_t, inline_slots> inline_counts{};
        std::array<const type_def*, inline_slots> inline_chosen{};
        std::vector<std::uint32_t> heap_counts;
        std::vector<const type_def*> heap_chosen;
        std::uint32_t* counts = inline_counts.data();
        const type_def** chosen = inline_chosen.data();
        if (n > inline_slots) {
            heap_counts.assign(n, 0);
            heap_chosen.assign(n, nullptr);
            counts = heap_counts.data();
            chosen = heap_chosen.data();
        }

        for (auto& member : value.GetObject()) {
            const std::string_view name = view(member.name);
            if (name == "resourceType" && type.kind == type_kind::resource)
                continue; // the caller checked it
            path_scope scope(path_, name);
            const member_def* def = type.member(name);
            if (def == nullptr) {
                fail("structure", "unknown element for " + type.name);
                continue;
            }
            const element_def& element = *def->element;
            if (element.choice) {
                if (chosen[element.index] != nullptr && chosen[element.index] != def->type)
                    fail("structure", "more than one type given for " + element.name);
                chosen[element.index] = def->type;
            }
            const std::uint32_t items = member.value.IsArray() ? member.value.Size() : 1;
            if (def->primitive_part) {
                // Counted with the value unless the value is absent (an extension-only primitive).
                if (find(value, name.substr(1)) == nullptr)
                    counts[element.index] += items;
                primitive_part(member.value, element, value, name);
            } else {
                counts[element.index] += items;
                element_value(member.value, *def, value, name);
            }
        }

        for (const element_def& element : type.elements) {
            const std::uint32_t count = counts[element.index];
            if (count < element.min) {
                path_scope scope(path_, element.name);
                fail("required", "missing required element " + element.name + " (minimum " +
                                     std::to_string(element.min) + ")");
            } else if (element.max != unbounded && count > element.max) {
                path_scope scope(path_, element.name);
                fail("structure", "too many values for " + element.name + " (maximum " + std::to_string(element.max) +
                                      ")");
            }
        }
    }

    /// The value of a member that is not a `_name` primitive part: one item, or an array of them.
    void element_value(rapidjson::Value& value, const member_def& def, const rapidjson::Value& parent,
                       std::string_view name) {
        const element_def& element = *def.element;
        if (!element.repeats()) {
            if (value.IsArray())
                fail("structure", "element " + element.name + " does not repeat: expected a single value, not an array");
            else
                item(value, def);
            return;
        }
        if (!value.IsArray()) {
            fail("structure", "element " + element.name + " repeats: expected a JSON array");
            return;
        }
        if (value.Empty()) {
            fail("structure", "an empty array is not allowed in FHIR JSON");
            return;
        }
        const rapidjson::Value* parts = nullptr;
        if (def.type->kind == type_kind::primitive) {
            std::string part_name(1, '_');
            part_name.append(name);
            parts = find(parent, part_name);
        }
        for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
            path_scope scope(path_, i);
            if (value[i].IsNull()) {
                // A primitive array may hold null where the `_name` array has the item's extensions.
                if (!(parts && parts->IsArray() && i < parts->Size() && !(*parts)[i].IsNull()))
                    fail("structure", "null is allowed in an array only where the primitive has extensions");
                continue;
            }
            item(value[i], def);
        }
    }

    /// `_name`: the id and extensions of a primitive (an array of them, with nulls, for a repeating one).
    void primitive_part(rapidjson::Value& value, const element_def& element, const rapidjson::Value& parent,
                        std::string_view name) {
        const type_def& part_type = *r4().type("Element");
        if (!element.repeats()) {
            object(value, part_type);
            return;
        }
        if (!value.IsArray() || value.Empty()) {
            fail("structure", "element " + element.name + " repeats: expected a non-empty JSON array");
            return;
        }
        const rapidjson::Value* values = find(parent, name.substr(1));
        if (values && values->IsArray() && values->Size() != value.Size())
            fail("structure", "the arrays of a primitive's values and of its extensions differ in length");
        for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
            if (value[i].IsNull())
                continue;
            path_scope scope(path_, i);
            object(value[i], part_type);
        }
    }

    void item(rapidjson::Value& value, const member_def& def) {
        const type_def& type = *def.type;
        switch (type.kind) {
        case type_kind::primitive:
            primitive(value, type);
            if (def.element->binding && type.primitive == primitive_kind::code && is_string(value) &&
                !def.element->binding->contains_code(view(value)))
                fail("code-invalid", "the code is not in the required value set " + def.element->binding->url);
            return;
        case type_kind::any_resource: contained(value); return;
        case type_kind::complex:
        case type_kind::backbone:
        case type_kind::element:
        case type_kind::resource: break;
        }
        object(value, type);
        if (!value.IsObject() || value.ObjectEmpty())
            return;
        if (type.name == "Reference")
            reference(value, *def.element);
        else if (type.name == "Extension")
            extension(value);
        else if (def.element->binding && type.name == "Coding")
            coding(value, *def.element->binding);
        else if (def.element->binding && type.name == "CodeableConcept")
            codeable_concept(value, *def.element->binding);
    }

    void primitive(const rapidjson::Value& value, const type_def& type) {
        const primitive_kind kind = type.primitive;
        const std::string_view json_kind = primitive_json_kind(kind);
        if (json_kind == "boolean") {
            if (!value.IsBool())
                fail("structure", "expected a JSON boolean (" + type.name + ")");
            return;
        }
        if (json_kind == "number") {
            const auto number = number_text(value);
            if (!number)
                fail("structure", "expected a JSON number (" + type.name + ")");
            else if (!is_valid_primitive(kind, *number))
                fail("value", "not a valid " + type.name);
            return;
        }
        if (!is_string(value)) {
            fail("structure", "expected a JSON string (" + type.name + ")");
            return;
        }
        if (value.GetStringLength() == 0)
            fail("structure", "an empty string is not allowed in FHIR JSON");
        else if (kind != primitive_kind::base64Binary && kind != primitive_kind::xhtml &&
                 value.GetStringLength() > max_string_characters && characters(view(value)) > max_string_characters)
            fail("too-long", "a FHIR " + type.name + " may have at most " + std::to_string(max_string_characters) +
                                 " characters (1 MiB; https://hl7.org/fhir/R4/datatypes.html#string)");
        else if (!is_valid_primitive(kind, view(value)))
            fail("value", "not a valid " + type.name);
    }

    void contained(rapidjson::Value& value) {
        if (!value.IsObject()) {
            fail("structure", "expected a JSON object (a contained resource)");
            return;
        }
        const auto resource_type = string_member(value, "resourceType");
        if (!resource_type) {
            fail("required", "a contained resource needs a resourceType");
            return;
        }
        const type_def* type = r4().is_containable(*resource_type) ? r4().type(*resource_type) : nullptr;
        if (type == nullptr) {
            fail("not-supported", "this server does not support the contained resource's type");
            return;
        }
        if (find(value, "contained") != nullptr) {
            path_scope scope(path_, "contained");
            fail("structure", "a contained resource cannot contain resources (dom-2)");
        }
        const bool was_root = in_root_;
        in_root_ = false;
        object(value, *type);
        in_root_ = was_root;
    }

    void extension(const rapidjson::Value& value) {
        bool has_value = false, has_extensions = false;
        for (auto& member : value.GetObject()) {
            const std::string_view name = view(member.name);
            has_value = has_value || name.starts_with("value") || name.starts_with("_value");
            has_extensions = has_extensions || name == "extension";
        }
        if (has_value && has_extensions)
            fail("structure", "an extension has a value[x] or nested extensions, not both (ext-1)");
        else if (!has_value && !has_extensions)
            fail("required", "an extension needs a value[x] or nested extensions (ext-1)");
    }

    void coding(const rapidjson::Value& value, const value_set_def& value_set) {
        if (match_coding(value, value_set) != coding_match::in_value_set)
            fail("code-invalid", "the coding is not in the required value set " + value_set.url);
    }

    void codeable_concept(const rapidjson::Value& value, const value_set_def& value_set) {
        const rapidjson::Value* codings = find(value, "coding");
        if (codings == nullptr || !codings->IsArray())
            return; // text only: nothing to check against the value set
        bool any_in = false, any_bad = false;
        path_scope scope(path_, "coding");
        for (rapidjson::SizeType i = 0; i < codings->Size(); ++i) {
            const rapidjson::Value& item = (*codings)[i];
            if (!item.IsObject())
                continue;
            const coding_match match = match_coding(item, value_set);
            any_in = any_in || match == coding_match::in_value_set;
            if (match == coding_match::not_in_value_set) {
                any_bad = true;
                path_scope index(path_, i);
                fail("code-invalid", "the coding is not in the required value set " + value_set.url);
            }
        }
        if (!any_in && !any_bad)
            fail("code-invalid", "no coding is from the required value set " + value_set.url);
    }

    void reference(rapidjson::Value& value, const element_def& element) {
        reference_target target;
        const auto text = string_member(value, "reference");
        if (text) {
            if (text->starts_with('#')) {
                const std::string_view id = text->substr(1);
                target.well_formed = id.empty() || contained_ids_.find(id) != contained_ids_.end();
                if (!target.well_formed) {
                    path_scope scope(path_, "reference");
                    fail("value", "the local reference names no contained resource");
                }
            } else if (text->starts_with("urn:uuid:")) {
                target.well_formed = is_valid_uuid(*text);
                if (!target.well_formed) {
                    path_scope scope(path_, "reference");
                    fail("value", "not a valid urn:uuid reference");
                }
            } else if (is_absolute_url(*text)) {
                target = parse_type_and_id(*text, false);
                target.well_formed = true;
            } else {
                target = parse_type_and_id(*text, true);
                if (!target.well_formed) {
                    path_scope scope(path_, "reference");
                    fail("value", "a reference must be a relative Type/id (with a known resource type), an "
                                  "absolute URL, #id of a contained resource or urn:uuid:");
                }
            }
        }
        if (const auto type = string_member(value, "type")) {
            if (r4().resource_types.find(*type) == r4().resource_types.end()) {
                path_scope scope(path_, "type");
                fail("value", "Reference.type is not a resource type");
            } else if (!target.type.empty() && target.type != *type) {
                path_scope scope(path_, "type");
                fail("value", "Reference.type disagrees with the type in Reference.reference");
            } else {
                target.type = *type;
            }
        }
        if (!target.type.empty() && !element.targets.empty() && element.targets.find("Resource") == element.targets.end() &&
            element.targets.find(target.type) == element.targets.end())
            fail("value", "a reference to a " + std::string(target.type) + " is not allowed at " + element.name);

        if (in_root_ && collect_citizens_ && element.compartment)
            citizen(value, target);
    }

    /// A reference at a Patient-compartment element: `Patient/{nhs}`, or the NHS number as identifier.
    void citizen(rapidjson::Value& value, const reference_target& target) {
        std::optional<std::string_view> logical;
        if (const rapidjson::Value* identifier = find(value, "identifier"); identifier && identifier->IsObject())
            if (string_member(*identifier, "system") == nhs_number_system)
                logical = string_member(*identifier, "value");
        const auto type = string_member(value, "type");
        if (target.relative && target.type == "Patient") {
            if (!is_valid_nhs_number(target.id)) {
                fail("value", "a reference to a citizen must use the NHS number as the Patient id");
                return;
            }
            if (logical && *logical != target.id) {
                fail("value", "the reference and its NHS-number identifier name different citizens");
                return;
            }
            out_.citizens.push_back(citizen_link{std::string(target.id), path_});
        } else if (!string_member(value, "reference") && logical && (!type || *type == "Patient")) {
            if (!is_valid_nhs_number(*logical)) {
                fail("value", "a reference to a citizen must use a valid NHS number");
                return;
            }
            out_.citizens.push_back(citizen_link{std::string(*logical), path_});
            out_.logical_references.push_back(logical_citizen_reference{&value, std::string(*logical)});
        }
    }

    validation& out_;
    std::string path_;
    string_set contained_ids_;
    bool in_root_ = true;
    bool collect_citizens_ = false;
};

} // namespace

void validate_resource(rapidjson::Value& resource, const type_def& type, validation& out) {
    validator(out).root(resource, type);
}

} // namespace caregate::fhir::detail
