// FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html) of patch.hpp: a Parameters resource of
// add / insert / delete / replace / move operations whose paths fhir_model's FHIRPath evaluator
// (fhirpath.hpp) selects, applied to the resource's DOM. Not JSON Patch, not the reference rewriting
// of transactions (both in patch.cpp).
//
// Design notes:
//  1. The evaluator answers with pointers into the DOM; a walk of the resource that follows the R4
//     definitions (definitions.hpp) turns a pointer into its location: the chain of (object, member,
//     array index) from the resource down, the node's type, its owner's type and its element. So the
//     patch never guesses a parent from the path's text, except for an insert into a list that does
//     not exist yet, whose parent is the path without its last `.name`.
//  2. A primitive's id and extensions live beside it in `_name` (https://hl7.org/fhir/R4/json.html#primitive).
//     They belong to the element: delete removes them with it, replace replaces them (with the
//     value part's `_value[x]` if it has one), and insert, move and delete keep a `_name` array
//     aligned item by item with its `name` array.
//  3. FHIR JSON has no empty objects or arrays: a delete that leaves its parent empty removes the parent
//     too, up to the resource (the official case "Delete Nested Primitive #2").
//  4. Every value is type-checked against the definitions where they know the place: a complex value
//     must be of the element's type (any Quantity for a Quantity), a backbone element takes `part`s,
//     `contained` takes a `resource`; primitives are taken in any primitive value[x] (the spec's own
//     case sends a valueString for Narrative.div, an xhtml), their lexical rules left to the validator
//     that checks the patched resource.
//  5. All or nothing: operations run in order on one copy; the first failure fails the patch.
#include "fhir_model/patch.hpp"

#include "fhir_model/fhirpath.hpp"

#include "definitions.hpp"
#include "json.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace caregate::fhir {

namespace {

using detail::element_def;
using detail::member_def;
using detail::r4;
using detail::type_def;
using detail::type_kind;
using detail::fail;
using detail::operation_failure;
using detail::set_member;
using rapidjson::SizeType;
using allocator = rapidjson::Document::AllocatorType;

constexpr std::string_view operation_types[] = {"add", "insert", "delete", "replace", "move"};
constexpr std::string_view part_names[] = {"type", "path", "name", "value", "index", "source", "destination"};

/// One operation, as its parameter's parts give it.
struct patch_operation {
    std::string type;
    std::string path;
    std::string name;
    const rapidjson::Value* value = nullptr; ///< the `value` part
    std::optional<SizeType> index, source, destination;
};

[[noreturn]] void fail_malformed(std::string message) { fail(category::malformed, "structure", std::move(message)); }
[[noreturn]] void fail_past_end(SizeType index, SizeType size) {
    fail(category::invalid, "value",
         "index " + std::to_string(index) + " is past the end of the list (" + std::to_string(size) + " items)");
}

// --- reading the Parameters ----------------------------------------------------------------------

/// The part's value[x] member (`valueString`, `valueHumanName`, ...), or nullptr.
const rapidjson::Value::Member* value_x(const rapidjson::Value& part) {
    for (auto& member : part.GetObject()) {
        std::string_view name = detail::view(member.name);
        if (name.size() > 5 && name.starts_with("value") && std::isupper(static_cast<unsigned char>(name[5])))
            return &member;
    }
    return nullptr;
}

std::string text_part(const rapidjson::Value& part, std::string_view name) {
    const auto* value = value_x(part);
    if (value == nullptr || !detail::is_string(value->value))
        fail_malformed("the part '" + std::string(name) + "' has no string value");
    return std::string(detail::view(value->value));
}

SizeType integer_part(const rapidjson::Value& part, std::string_view name) {
    const auto* value = value_x(part);
    auto text = value != nullptr ? detail::number_text(value->value) : std::nullopt;
    SizeType out = 0;
    if (!text || text->empty() ||
        !std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::from_chars(text->data(), text->data() + text->size(), out).ec != std::errc())
        fail_malformed("the part '" + std::string(name) + "' is not a valueInteger of zero or more");
    return out;
}

/// Reads one parameter as an operation, checking that it has the parts its type needs and no others
/// (a part this server ignored could change what the client meant).
patch_operation read_operation(const rapidjson::Value& parameter) {
    patch_operation op;
    if (!parameter.IsObject() || detail::string_member(parameter, "name") != "operation")
        fail_malformed("the parameter is not named 'operation'");
    const rapidjson::Value* parts = detail::find(parameter, "part");
    if (parts == nullptr || !parts->IsArray())
        fail_malformed("the operation has no parts");
    std::vector<std::string_view> seen;
    for (auto& part : parts->GetArray()) {
        auto name = part.IsObject() ? detail::string_member(part, "name") : std::nullopt;
        if (!name)
            fail_malformed("a part has no name");
        if (std::find(std::begin(part_names), std::end(part_names), *name) == std::end(part_names))
            fail_malformed("unknown part '" + std::string(*name) + "'");
        if (std::find(seen.begin(), seen.end(), *name) != seen.end())
            fail_malformed("the part '" + std::string(*name) + "' is given twice");
        seen.push_back(*name);
        if (*name == "type")
            op.type = text_part(part, *name);
        else if (*name == "path")
            op.path = text_part(part, *name);
        else if (*name == "name")
            op.name = text_part(part, *name);
        else if (*name == "value")
            op.value = &part;
        else if (*name == "index")
            op.index = integer_part(part, *name);
        else if (*name == "source")
            op.source = integer_part(part, *name);
        else
            op.destination = integer_part(part, *name);
    }
    if (std::find(seen.begin(), seen.end(), "type") == seen.end())
        fail(category::malformed, "required", "the operation has no type part");
    if (std::find(std::begin(operation_types), std::end(operation_types), op.type) == std::end(operation_types))
        fail(category::malformed, "code-invalid", "unknown operation type (add | insert | delete | replace | move)");
    // The parts each type takes (https://hl7.org/fhir/R4/fhirpatch.html#operations).
    std::vector<std::string_view> needed = {"type", "path"};
    if (op.type == "add")
        needed.insert(needed.end(), {"name", "value"});
    else if (op.type == "insert")
        needed.insert(needed.end(), {"value", "index"});
    else if (op.type == "replace")
        needed.push_back("value");
    else if (op.type == "move")
        needed.insert(needed.end(), {"source", "destination"});
    for (std::string_view want : needed)
        if (std::find(seen.begin(), seen.end(), want) == seen.end())
            fail(category::malformed, "required", op.type + " needs the part '" + std::string(want) + "'");
    for (std::string_view have : seen)
        if (std::find(needed.begin(), needed.end(), have) == needed.end())
            fail_malformed(op.type + " takes no part '" + std::string(have) + "'");
    return op;
}

// --- where a selected node is -----------------------------------------------------------------------

/// One step down from an object: its member `name`, and the item `index` when the member is an array.
struct step {
    rapidjson::Value* object = nullptr;
    std::string name;
    std::optional<SizeType> index;
};

/// Where a node of the resource is (design note 1).
struct location {
    std::vector<step> steps; ///< from the resource down; empty for the resource itself
    rapidjson::Value* node = nullptr;
    const type_def* type = nullptr;       ///< the node's type, when the definitions know it
    const type_def* owner = nullptr;      ///< the type of the object holding it
    const element_def* element = nullptr; ///< its element in the owner
};

const type_def* resource_type(const rapidjson::Value& value) {
    auto name = detail::string_member(value, "resourceType");
    const type_def* type = name ? r4().type(*name) : nullptr;
    return type != nullptr && type->kind == type_kind::resource ? type : nullptr;
}

/// The type of a member's value (or of one item of it) by the owner's definition of the member.
const type_def* type_of_child(const member_def* def, const rapidjson::Value& child) {
    if (def == nullptr)
        return resource_type(child); // untyped, unless it is a resource
    if (def->primitive_part)
        return r4().type("Element");
    if (def->type->kind == type_kind::any_resource)
        return resource_type(child);
    return def->type;
}

/// Searches `object` (of `type`) for `target`; on success fills `out`, its steps deepest first.
bool find_node(rapidjson::Value& object, const type_def* type, const rapidjson::Value* target, location& out) {
    if (!object.IsObject())
        return false;
    for (auto& member : object.GetObject()) {
        const member_def* def = type != nullptr ? type->member(detail::view(member.name)) : nullptr;
        const bool list = member.value.IsArray();
        const SizeType count = list ? member.value.Size() : 1;
        for (SizeType i = 0; i < count; ++i) {
            rapidjson::Value& child = list ? member.value[i] : member.value;
            const type_def* child_type = type_of_child(def, child);
            bool found = false;
            if (&child == target) {
                out.node = &child;
                out.type = child_type;
                out.owner = type;
                out.element = def != nullptr && !def->primitive_part ? def->element : nullptr;
                found = true;
            } else {
                found = find_node(child, child_type, target, out);
            }
            if (found) {
                out.steps.push_back({&object, std::string(detail::view(member.name)),
                                     list ? std::optional<SizeType>(i) : std::nullopt});
                return true;
            }
        }
    }
    return false;
}

// --- changing the DOM, keeping `_name` arrays aligned (design note 2) -------------------------------

rapidjson::Value* member_of(rapidjson::Value& object, std::string_view name) {
    auto found = object.FindMember(rapidjson::StringRef(name.data(), name.size()));
    return found == object.MemberEnd() ? nullptr : &found->value;
}

void erase_member(rapidjson::Value& object, std::string_view name) {
    auto found = object.FindMember(rapidjson::StringRef(name.data(), name.size()));
    if (found != object.MemberEnd())
        object.EraseMember(found); // EraseMember keeps the order of the others; RemoveMember would not
}

void insert_item(rapidjson::Value& array, SizeType index, rapidjson::Value value, allocator& alloc) {
    array.PushBack(value, alloc);
    for (SizeType i = array.Size() - 1; i > index; --i)
        array[i].Swap(array[i - 1]);
}

/// Drops `_name` when none of its items carries anything any more.
void tidy_primitive_parts(rapidjson::Value& object, std::string_view name) {
    const std::string part_name = "_" + std::string(name);
    rapidjson::Value* parts = member_of(object, part_name);
    if (parts == nullptr)
        return;
    bool empty = parts->IsArray() ? std::all_of(parts->Begin(), parts->End(), [](auto& p) { return p.IsNull(); })
                                  : parts->IsObject() && parts->ObjectEmpty();
    if (empty)
        erase_member(object, part_name);
}

/// Inserts `value` (with its primitive part, or null) at `index` of the list `object.name`, creating it.
void list_insert(rapidjson::Value& object, std::string_view name, SizeType index, rapidjson::Value value,
                 rapidjson::Value part, allocator& alloc) {
    rapidjson::Value* list = member_of(object, name);
    if (list == nullptr)
        list = &set_member(object, name, rapidjson::Value(rapidjson::kArrayType), alloc);
    insert_item(*list, index, std::move(value), alloc);
    const std::string part_name = "_" + std::string(name);
    rapidjson::Value* parts = member_of(object, part_name);
    if (parts != nullptr && parts->IsArray()) {
        while (parts->Size() + 1 < list->Size())
            parts->PushBack(rapidjson::Value(), alloc);
        insert_item(*parts, std::min(index, parts->Size()), std::move(part), alloc);
    } else if (!part.IsNull()) {
        rapidjson::Value aligned(rapidjson::kArrayType);
        for (SizeType i = 0; i < list->Size(); ++i)
            aligned.PushBack(rapidjson::Value(), alloc);
        aligned[index] = std::move(part);
        set_member(object, part_name, std::move(aligned), alloc);
    }
}

/// Removes the item `index` of the list `object.name` (and of `_name`); the list goes when empty.
void list_erase(rapidjson::Value& object, std::string_view name, SizeType index) {
    rapidjson::Value& list = *member_of(object, name);
    list.Erase(list.Begin() + index);
    rapidjson::Value* parts = member_of(object, "_" + std::string(name));
    if (parts != nullptr && parts->IsArray() && index < parts->Size())
        parts->Erase(parts->Begin() + index);
    if (list.Empty())
        erase_member(object, name);
    tidy_primitive_parts(object, name);
}

void move_item(rapidjson::Value& array, SizeType from, SizeType to, allocator& alloc) {
    rapidjson::Value item;
    item.Swap(array[from]);
    array.Erase(array.Begin() + from);
    insert_item(array, to, std::move(item), alloc);
}

/// Removes what one step leads to. An item of a `_name` array becomes null instead, keeping it aligned.
void remove_at(const step& at) {
    rapidjson::Value& object = *at.object;
    const bool primitive_part = at.name.starts_with("_");
    if (!at.index) {
        erase_member(object, at.name);
        if (!primitive_part)
            erase_member(object, "_" + at.name);
    } else if (primitive_part) {
        (*member_of(object, at.name))[*at.index].SetNull();
        tidy_primitive_parts(object, at.name.substr(1));
    } else {
        list_erase(object, at.name, *at.index);
    }
}

/// The object beside the primitive at `at` that carries its id and extensions (`_birthDate`, or the
/// item of `_given`), created when it has none.
rapidjson::Value& primitive_element(const location& at, allocator& alloc) {
    const step& last = at.steps.back();
    rapidjson::Value& object = *last.object;
    const std::string part_name = "_" + last.name;
    rapidjson::Value* part = member_of(object, part_name);
    if (!last.index) {
        if (part == nullptr || part->IsNull())
            part = &set_member(object, part_name, rapidjson::Value(rapidjson::kObjectType), alloc);
        return *part;
    }
    if (part == nullptr)
        part = &set_member(object, part_name, rapidjson::Value(rapidjson::kArrayType), alloc);
    if (!part->IsArray())
        fail(category::invalid, "structure", "the resource's " + part_name + " is not an array");
    for (SizeType size = member_of(object, last.name)->Size(); part->Size() < size;)
        part->PushBack(rapidjson::Value(), alloc);
    rapidjson::Value& item = (*part)[*last.index];
    if (item.IsNull())
        item.SetObject();
    return item;
}

// --- values from the value part (design note 4) -----------------------------------------------------

/// A value ready to store: the JSON name it goes under, the value, and a primitive's `_name` part (or null).
struct new_value {
    std::string json_name;
    rapidjson::Value value;
    rapidjson::Value primitive_part;
};

std::string element_base(const element_def& element) {
    return element.choice ? element.name.substr(0, element.name.size() - 3) : element.name;
}

/// The element of `owner` that `name` names: by element name ("birthDate"; "deceased" for
/// deceased[x]) or by a choice's JSON name ("deceasedBoolean").
const element_def* element_named(const type_def& owner, std::string_view name) {
    for (auto& element : owner.elements)
        if (element_base(element) == name)
            return &element;
    const member_def* member = owner.member(name);
    return member != nullptr && !member->primitive_part ? member->element : nullptr;
}

/// The FHIR type a value[x] suffix names: "Date" -> date, "HumanName" -> HumanName; nullptr if unknown.
const type_def* type_of_suffix(std::string_view suffix) {
    std::string primitive(suffix);
    primitive[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(primitive[0])));
    if (const type_def* type = r4().type(primitive); type != nullptr && type->kind == type_kind::primitive)
        return type;
    const type_def* type = r4().type(suffix);
    return type != nullptr && type->kind == type_kind::complex ? type : nullptr;
}

bool is_quantity(std::string_view type) {
    for (std::string_view q : {"Quantity", "Age", "Count", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity"})
        if (type == q)
            return true;
    return false;
}

rapidjson::Value object_from_parts(const rapidjson::Value& parts, const type_def* type, allocator& alloc);

/// Builds the value that `part` (the operation's `value` part, or one of its nested parts) carries, for
/// the element `name` of `owner` (`element` is that element, when the definitions know it).
new_value build_value(const rapidjson::Value& part, const type_def* owner, const element_def* element,
                      std::string_view name, allocator& alloc) {
    const auto* typed = value_x(part);
    const rapidjson::Value* parts = detail::find(part, "part");
    const rapidjson::Value* resource = detail::find(part, "resource");
    if ((typed != nullptr) + (parts != nullptr) + (resource != nullptr) != 1)
        fail_malformed("the value of '" + std::string(name) + "' needs exactly one of value[x], part or resource");
    const std::string where = (owner != nullptr ? owner->name + "." : std::string()) + std::string(name);
    const type_def* element_type = element != nullptr && !element->choice ? element->types.front() : nullptr;

    new_value out;
    out.json_name = element != nullptr ? element_base(*element) : std::string(name);
    if (typed != nullptr) {
        const std::string_view suffix = detail::view(typed->name).substr(5);
        const type_def* given = type_of_suffix(suffix);
        if (element != nullptr && element->choice) {
            out.json_name += suffix;
            if (owner->member(out.json_name) == nullptr)
                fail(category::invalid, "value", "a value" + std::string(suffix) + " is not allowed in " + where);
        } else if (element_type != nullptr) {
            const bool fits =
                given != nullptr &&
                (element_type->kind == type_kind::primitive
                     ? given->kind == type_kind::primitive
                     : given == element_type || (is_quantity(given->name) && is_quantity(element_type->name)));
            if (!fits)
                fail(category::invalid, "value",
                     "a value" + std::string(suffix) + " is not allowed in " + where + " (" + element_type->name + ")");
        }
        out.value.CopyFrom(typed->value, alloc);
        if (const rapidjson::Value* extra = detail::find(part, "_" + std::string(detail::view(typed->name))))
            out.primitive_part.CopyFrom(*extra, alloc);
    } else if (parts != nullptr) {
        if (!parts->IsArray())
            fail_malformed("the parts of '" + std::string(name) + "' are not an array");
        if (element != nullptr && (element->choice || (element_type->kind != type_kind::complex &&
                                                       element_type->kind != type_kind::backbone)))
            fail(category::invalid, "value", "parts cannot give a value for " + where + "; use value[x]");
        out.value = object_from_parts(*parts, element_type, alloc);
    } else {
        if (element != nullptr && (element_type == nullptr || element_type->kind != type_kind::any_resource))
            fail(category::invalid, "value", "a resource is not allowed in " + where);
        if (!resource->IsObject())
            fail_malformed("the resource of '" + std::string(name) + "' is not an object");
        out.value.CopyFrom(*resource, alloc);
    }
    return out;
}

/// An anonymous (backbone) value from a list of parts, each naming an element (the spec's "part" form).
rapidjson::Value object_from_parts(const rapidjson::Value& parts, const type_def* type, allocator& alloc) {
    rapidjson::Value object(rapidjson::kObjectType);
    for (auto& part : parts.GetArray()) {
        auto name = part.IsObject() ? detail::string_member(part, "name") : std::nullopt;
        if (!name)
            fail_malformed("a value part has no name");
        const element_def* element = type != nullptr ? element_named(*type, *name) : nullptr;
        if (type != nullptr && element == nullptr)
            fail(category::invalid, "value", type->name + " has no element '" + std::string(*name) + "'");
        new_value value = build_value(part, type, element, *name, alloc);
        rapidjson::Value* existing = member_of(object, value.json_name);
        const bool repeats = element != nullptr ? element->repeats() : existing != nullptr;
        if (repeats) {
            if (existing != nullptr && !existing->IsArray()) { // untyped: a second part makes a list
                rapidjson::Value first(std::move(*existing));
                existing->SetArray().PushBack(first, alloc);
            }
            SizeType at = existing != nullptr ? existing->Size() : 0;
            list_insert(object, value.json_name, at, std::move(value.value), std::move(value.primitive_part), alloc);
        } else {
            if (existing != nullptr)
                fail(category::invalid, "value",
                     "the part '" + std::string(*name) + "' is given twice for a single element");
            set_member(object, value.json_name, std::move(value.value), alloc);
            if (!value.primitive_part.IsNull())
                set_member(object, "_" + value.json_name, std::move(value.primitive_part), alloc);
        }
    }
    return object;
}

// --- the operations ---------------------------------------------------------------------------------

/// True when `path` calls resolve() outside its string literals.
bool calls_resolve(std::string_view path) {
    for (std::size_t i = 0; i < path.size();) {
        const char c = path[i];
        if (c == '\'' || c == '`') {
            for (++i; i < path.size() && path[i] != c; ++i)
                if (path[i] == '\\')
                    ++i;
            ++i;
        } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            const std::size_t start = i;
            while (i < path.size() && (std::isalnum(static_cast<unsigned char>(path[i])) || path[i] == '_'))
                ++i;
            std::size_t next = i;
            while (next < path.size() && std::isspace(static_cast<unsigned char>(path[next])))
                ++next;
            if (path.substr(start, i - start) == "resolve" && next < path.size() && path[next] == '(')
                return true;
        } else {
            ++i;
        }
    }
    return false;
}

/// `Patient.name[0].given` -> {"Patient.name[0]", "given"}; nullopt when the path does not end in `.name`.
std::optional<std::pair<std::string_view, std::string_view>> split_last_step(std::string_view path) {
    while (!path.empty() && std::isspace(static_cast<unsigned char>(path.back())))
        path.remove_suffix(1);
    std::size_t start = path.size();
    while (start > 0 && (std::isalnum(static_cast<unsigned char>(path[start - 1])) || path[start - 1] == '_'))
        --start;
    if (start == path.size() || start < 2 || path[start - 1] != '.' ||
        std::isdigit(static_cast<unsigned char>(path[start])))
        return std::nullopt;
    return std::pair{path.substr(0, start - 1), path.substr(start)};
}

class patcher {
public:
    explicit patcher(rapidjson::Document& doc) : doc_(doc), alloc_(doc.GetAllocator()) {}

    void apply(const patch_operation& op) {
        if (op.type == "add")
            add(op);
        else if (op.type == "insert")
            insert(op);
        else if (op.type == "delete")
            remove(op);
        else if (op.type == "replace")
            replace(op);
        else
            move(op);
    }

private:
    std::vector<location> select(std::string_view path) {
        if (calls_resolve(path))
            fail(category::unsupported, "not-supported", "resolve() is not supported in a patch path");
        std::string problem;
        auto expression = fhirpath_expression::parse(path, problem);
        if (!expression) {
            const bool unsupported = problem.find("support") != std::string::npos; // valid FHIRPath, not our subset
            fail(unsupported ? category::unsupported : category::malformed, unsupported ? "not-supported" : "invalid",
                 "the path does not parse: " + problem);
        }
        std::vector<location> out;
        for (const fhirpath_node& node : expression->evaluate(doc_)) {
            location at;
            if (node.value == &doc_) {
                at.node = &doc_;
                at.type = resource_type(doc_);
            } else if (node.value == nullptr || !find_node(doc_, resource_type(doc_), node.value, at)) {
                fail(category::invalid, "processing",
                     "the path selects a value that is not an element of the resource");
            }
            std::reverse(at.steps.begin(), at.steps.end());
            out.push_back(std::move(at));
        }
        return out;
    }

    location select_one(std::string_view path, std::string_view why) {
        std::vector<location> found = select(path);
        if (found.empty())
            fail(category::invalid, "not-found", "the path selects nothing; " + std::string(why));
        if (found.size() > 1)
            fail(category::invalid, "processing",
                 "the path selects " + std::to_string(found.size()) + " elements; " + std::string(why));
        return std::move(found.front());
    }

    /// The list that `path` selects, as (the object holding it, its member name): every item of one
    /// array, in order. An empty selection is a list that does not exist yet (nullopt).
    struct list_location {
        rapidjson::Value* object = nullptr;
        std::string name;
        SizeType size = 0;
        const type_def* owner = nullptr;
        const element_def* element = nullptr;
    };
    std::optional<list_location> select_list(std::string_view path) {
        std::vector<location> items = select(path);
        if (items.empty())
            return std::nullopt;
        const step& first = items.front().steps.empty() ? step{} : items.front().steps.back();
        list_location out{first.object, first.name, 0, items.front().owner, items.front().element};
        const rapidjson::Value* list = out.object != nullptr ? member_of(*out.object, out.name) : nullptr;
        bool whole = list != nullptr && list->IsArray() && list->Size() == items.size();
        for (std::size_t i = 0; whole && i < items.size(); ++i) {
            const step& s = items[i].steps.back();
            whole = s.object == out.object && s.name == out.name && s.index == i;
        }
        if (!whole)
            fail(category::invalid, "processing", "the path does not select a whole list");
        out.size = list->Size();
        return out;
    }

    void add(const patch_operation& op) {
        location at = select_one(op.path, "add needs exactly one element to add to");
        rapidjson::Value* parent = at.node;
        const type_def* owner = at.type;
        if (!parent->IsObject()) { // a primitive: its id and extensions go in `_name`
            if (at.steps.empty() || (op.name != "extension" && op.name != "id"))
                fail(category::invalid, "processing", "a primitive takes only an id or an extension");
            parent = &primitive_element(at, alloc_);
            owner = r4().type("Element");
        }
        const element_def* element = owner != nullptr ? element_named(*owner, op.name) : nullptr;
        if (owner != nullptr && element == nullptr)
            fail(category::invalid, "processing", owner->name + " has no element '" + op.name + "'");
        new_value value = build_value(*op.value, owner, element, op.name, alloc_);
        if (element != nullptr && element->choice && op.name != element_base(*element) && op.name != value.json_name)
            fail(category::invalid, "value", "the name '" + op.name + "' does not match the value's type");
        rapidjson::Value* existing = member_of(*parent, value.json_name);
        if (element != nullptr ? element->repeats() : existing != nullptr && existing->IsArray()) {
            if (existing != nullptr && !existing->IsArray())
                fail(category::invalid, "structure", "the resource's " + value.json_name + " is not a list");
            list_insert(*parent, value.json_name, existing != nullptr ? existing->Size() : 0, std::move(value.value),
                        std::move(value.primitive_part), alloc_);
            return;
        }
        if (existing != nullptr || (element != nullptr && has_element(*parent, *owner, *element)))
            fail(category::invalid, "processing", "the element already has a value; add is for one that has none");
        set_member(*parent, value.json_name, std::move(value.value), alloc_);
        if (!value.primitive_part.IsNull())
            set_member(*parent, "_" + value.json_name, std::move(value.primitive_part), alloc_);
    }

    /// Whether `object` has a value of `element` under any of its JSON names (a choice has several).
    static bool has_element(const rapidjson::Value& object, const type_def& owner, const element_def& element) {
        for (auto& member : object.GetObject()) {
            const member_def* def = owner.member(detail::view(member.name));
            if (def != nullptr && !def->primitive_part && def->element == &element)
                return true;
        }
        return false;
    }

    void insert(const patch_operation& op) {
        std::optional<list_location> list = select_list(op.path);
        if (!list) { // no list yet: its parent is the path without its last step
            auto split = split_last_step(op.path);
            if (!split)
                fail(category::invalid, "not-found", "the path selects nothing and does not end in an element name");
            location parent = select_one(split->first, "insert into a new list needs exactly one parent");
            if (!parent.node->IsObject())
                fail(category::invalid, "processing", "the list's parent is not an element with children");
            list = list_location{parent.node, std::string(split->second), 0, parent.type, nullptr};
            if (parent.type != nullptr) {
                list->element = element_named(*parent.type, list->name);
                if (list->element == nullptr)
                    fail(category::invalid, "processing", parent.type->name + " has no element '" + list->name + "'");
            }
        }
        if (list->element != nullptr && !list->element->repeats())
            fail(category::invalid, "processing", "the element is not a list");
        if (*op.index > list->size)
            fail_past_end(*op.index, list->size);
        new_value value = build_value(*op.value, list->owner, list->element, list->name, alloc_);
        list_insert(*list->object, list->name, *op.index, std::move(value.value), std::move(value.primitive_part),
                    alloc_);
    }

    void remove(const patch_operation& op) {
        std::vector<location> found = select(op.path);
        if (found.empty())
            return; // "delete: path of the element to delete (if found)"
        if (found.size() > 1)
            fail(category::invalid, "processing",
                 "the path selects " + std::to_string(found.size()) + " elements; delete removes only one");
        const location& at = found.front();
        if (at.steps.empty())
            fail(category::invalid, "processing", "the path selects the resource itself");
        remove_at(at.steps.back());
        // Design note 3: an object left empty goes too, up to (not including) the resource.
        for (std::size_t k = at.steps.size() - 1; k > 0 && at.steps[k].object->ObjectEmpty(); --k)
            remove_at(at.steps[k - 1]);
    }

    void replace(const patch_operation& op) {
        location at = select_one(op.path, "replace needs exactly one element");
        if (at.steps.empty())
            fail(category::invalid, "processing", "the path selects the resource itself");
        const step& last = at.steps.back();
        if (last.name.starts_with("_"))
            fail(category::invalid, "processing", "the path selects part of a primitive's extension holder");
        const std::string name = at.element != nullptr ? element_base(*at.element) : last.name;
        new_value value = build_value(*op.value, at.owner, at.element, name, alloc_);
        rapidjson::Value& object = *last.object;
        if (last.index) {
            (*member_of(object, last.name))[*last.index] = std::move(value.value);
            rapidjson::Value* parts = member_of(object, "_" + last.name);
            if (parts != nullptr && parts->IsArray() && *last.index < parts->Size())
                (*parts)[*last.index] = std::move(value.primitive_part);
            else if (!value.primitive_part.IsNull())
                primitive_element(at, alloc_) = std::move(value.primitive_part);
            tidy_primitive_parts(object, last.name);
            return;
        }
        // The whole element goes, its `_name` with it; a choice may change its JSON name, in place.
        erase_member(object, "_" + last.name);
        auto member = object.FindMember(rapidjson::StringRef(last.name.data(), last.name.size()));
        member->value = std::move(value.value);
        if (value.json_name != last.name)
            member->name.SetString(value.json_name.data(), static_cast<SizeType>(value.json_name.size()), alloc_);
        if (!value.primitive_part.IsNull())
            set_member(object, "_" + value.json_name, std::move(value.primitive_part), alloc_);
    }

    void move(const patch_operation& op) {
        std::optional<list_location> list = select_list(op.path);
        if (!list)
            fail(category::invalid, "not-found", "the path selects no list");
        for (SizeType index : {*op.source, *op.destination})
            if (index >= list->size)
                fail_past_end(index, list->size);
        move_item(*member_of(*list->object, list->name), *op.source, *op.destination, alloc_);
        rapidjson::Value* parts = member_of(*list->object, "_" + list->name);
        if (parts != nullptr && parts->IsArray() && parts->Size() == list->size)
            move_item(*parts, *op.source, *op.destination, alloc_);
    }

    rapidjson::Document& doc_;
    allocator& alloc_;
};

} // namespace

result<std::string> apply_fhirpath_patch(std::string_view resource, std::string_view parameters) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(resource, doc); !parsed)
        return std::move(parsed).failure();
    if (resource_type(doc) == nullptr)
        return error::make(category::invalid, "not-supported",
                           "FHIRPath Patch: the target is not a resource of a known type");
    rapidjson::Document patch;
    if (auto parsed = detail::parse_json(parameters, patch); !parsed)
        return std::move(parsed).failure();
    if (detail::string_member(patch, "resourceType") != "Parameters")
        return error::make(category::malformed, "structure", "FHIRPath Patch: the body is not a Parameters resource");
    const rapidjson::Value* list = detail::find(patch, "parameter");
    if (list != nullptr && !list->IsArray())
        return error::make(category::malformed, "structure", "FHIRPath Patch: Parameters.parameter is not an array");

    patcher apply(doc);
    const SizeType count = list != nullptr ? list->Size() : 0;
    for (SizeType i = 0; i < count; ++i) {
        patch_operation op;
        try {
            op = read_operation((*list)[i]);
            apply.apply(op);
        } catch (const operation_failure& failure) {
            // Names the operation by its place and its path (the client's text), never resource content.
            std::string what = "FHIRPath Patch operation " + std::to_string(i);
            if (!op.type.empty())
                what += " (" + op.type + (op.path.empty() ? "" : " " + op.path) + ")";
            return error::make(failure.kind, failure.code, what + ": " + failure.message,
                               "Parameters.parameter[" + std::to_string(i) + "]");
        }
    }
    if (detail::depth_of(doc) > detail::max_json_depth)
        return error::make(category::invalid, "too-costly",
                           "FHIRPath Patch: the patched resource nests deeper than " +
                               std::to_string(detail::max_json_depth) + " levels");
    return detail::write_json(doc);
}

} // namespace caregate::fhir
