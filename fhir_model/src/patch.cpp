// JSON Patch (RFC 6902, https://www.rfc-editor.org/rfc/rfc6902, with JSON Pointer, RFC 6901) of
// patch.hpp, and the reference work of transactions (https://hl7.org/fhir/R4/http.html#trules):
// finding a resource's references and rewriting them. FHIRPath Patch is in fhirpath_patch.cpp.
// Everything runs on the json layer's DOM (json.hpp), so numbers keep their text and members their order.
#include "fhir_model/patch.hpp"

#include "definitions.hpp"
#include "json.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace caregate::fhir {

namespace {

using detail::member_def;
using detail::r4;
using detail::type_def;
using detail::type_kind;
using detail::fail;
using detail::operation_failure;
using rapidjson::SizeType;
using allocator = rapidjson::Document::AllocatorType;

// --- JSON Patch ---------------------------------------------------------------------------------------


/// The reference tokens of an RFC 6901 pointer, unescaped (~1 is '/', ~0 is '~', in one left-to-right
/// pass, so "~01" is "~1"); "" is the whole document.
std::vector<std::string> parse_pointer(std::string_view pointer, std::string_view member) {
    std::vector<std::string> tokens;
    if (pointer.empty())
        return tokens;
    if (pointer.front() != '/')
        fail(category::malformed, "structure", "'" + std::string(member) + "' is not a JSON Pointer (no leading '/')");
    for (std::size_t i = 1; i <= pointer.size(); ++i) {
        if (i == 1 || pointer[i - 1] == '/')
            tokens.emplace_back();
        if (i == pointer.size() || pointer[i] == '/')
            continue;
        if (pointer[i] != '~') {
            tokens.back() += pointer[i];
        } else if (i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
            tokens.back() += pointer[++i] == '0' ? '~' : '/';
        } else {
            fail(category::malformed, "structure", "'" + std::string(member) + "' has a '~' not followed by 0 or 1");
        }
    }
    return tokens;
}

/// The array index a token names (RFC 6901 section 4: "0", or digits without a leading zero).
std::optional<SizeType> array_index(std::string_view token) {
    SizeType out = 0;
    if (token.empty() || (token.size() > 1 && token[0] == '0') ||
        !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::from_chars(token.data(), token.data() + token.size(), out).ec != std::errc())
        return std::nullopt;
    return out;
}

/// The value `tokens[0, count)` points at, or nullptr.
rapidjson::Value* resolve(rapidjson::Value& root, const std::vector<std::string>& tokens, std::size_t count) {
    rapidjson::Value* at = &root;
    for (std::size_t i = 0; i < count && at != nullptr; ++i) {
        const std::string& token = tokens[i];
        if (at->IsObject()) {
            auto found = at->FindMember(rapidjson::StringRef(token.data(), token.size()));
            at = found == at->MemberEnd() ? nullptr : &found->value;
        } else if (at->IsArray()) {
            auto index = array_index(token);
            at = index && *index < at->Size() ? &(*at)[*index] : nullptr;
        } else {
            at = nullptr;
        }
    }
    return at;
}

/// Exact decimal value of a JSON number's text: digits x 10^exponent, without leading or trailing
/// zeros (zero has no digits), so two numbers are equal when their forms are.
struct decimal_form {
    bool negative = false;
    std::string digits;
    long long exponent = 0;
    bool operator==(const decimal_form&) const = default;
};

std::optional<decimal_form> decimal_of(std::string_view text) {
    decimal_form out;
    std::size_t i = 0;
    if (i < text.size() && text[i] == '-') {
        out.negative = true;
        ++i;
    }
    long long fraction_digits = 0;
    bool in_fraction = false;
    for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
        if (text[i] == '.')
            in_fraction = true;
        else {
            out.digits += text[i];
            fraction_digits += in_fraction;
        }
    }
    if (i < text.size()) { // the exponent; one past ±10^15 is no JSON a FHIR server keeps
        std::string_view exponent = text.substr(i + 1);
        if (!exponent.empty() && exponent[0] == '+')
            exponent.remove_prefix(1);
        if (exponent.size() > 16 ||
            std::from_chars(exponent.data(), exponent.data() + exponent.size(), out.exponent).ec != std::errc())
            return std::nullopt;
    }
    out.exponent -= fraction_digits;
    out.digits.erase(0, std::min(out.digits.find_first_not_of('0'), out.digits.size()));
    while (!out.digits.empty() && out.digits.back() == '0') {
        out.digits.pop_back();
        ++out.exponent;
    }
    if (out.digits.empty())
        return decimal_form{};
    return out;
}

/// RFC 6902 section 4.6 equality: same type; numbers by value (1, 1.0 and 10E-1 are equal; compared
/// as exact decimals, never through a double); strings by their characters; arrays item by item;
/// objects by the same members with equal values, in any order.
bool json_equal(const rapidjson::Value& a, const rapidjson::Value& b) {
    auto a_number = detail::number_text(a), b_number = detail::number_text(b);
    if (a_number || b_number) {
        if (!a_number || !b_number)
            return false;
        auto a_value = decimal_of(*a_number), b_value = decimal_of(*b_number);
        return a_value && b_value ? *a_value == *b_value : *a_number == *b_number;
    }
    if (a.GetType() != b.GetType())
        return false;
    if (a.IsString())
        return detail::view(a) == detail::view(b);
    if (a.IsArray()) {
        if (a.Size() != b.Size())
            return false;
        for (SizeType i = 0; i < a.Size(); ++i)
            if (!json_equal(a[i], b[i]))
                return false;
        return true;
    }
    if (a.IsObject()) {
        if (a.MemberCount() != b.MemberCount())
            return false;
        for (auto& member : a.GetObject()) {
            auto other = b.FindMember(member.name);
            if (other == b.MemberEnd() || !json_equal(member.value, other->value))
                return false;
        }
        return true;
    }
    return a == b; // null, or a Boolean (the type says which)
}

/// The operations of RFC 6902 section 4 on one document.
class json_patcher {
public:
    explicit json_patcher(rapidjson::Document& doc) : doc_(doc), alloc_(doc.GetAllocator()) {}

    void apply(const rapidjson::Value& operation, std::string_view op) {
        const auto path = parse_pointer(text_member(operation, "path"), "path");
        if (op == "add") {
            add(path, copy(value_member(operation)));
        } else if (op == "remove") {
            take(path);
        } else if (op == "replace") {
            *existing(path) = copy(value_member(operation));
        } else if (op == "move") {
            const auto from = parse_pointer(text_member(operation, "from"), "from");
            if (from.size() < path.size() && std::equal(from.begin(), from.end(), path.begin()))
                fail(category::invalid, "processing",
                     "'from' is a proper prefix of 'path': a value cannot move into itself");
            if (from == path)
                existing(from);
            else
                add(path, take(from));
        } else if (op == "copy") {
            const auto from = parse_pointer(text_member(operation, "from"), "from");
            add(path, copy(*existing(from)));
        } else { // test
            if (!json_equal(*existing(path), value_member(operation)))
                fail(category::invalid, "processing", "the test failed: the value at the path is not the one given");
        }
    }

private:
    static std::string_view text_member(const rapidjson::Value& operation, std::string_view name) {
        auto text = detail::string_member(operation, name);
        if (!text)
            fail(category::malformed, "required", "the operation has no '" + std::string(name) + "' string");
        return *text;
    }
    static const rapidjson::Value& value_member(const rapidjson::Value& operation) {
        const rapidjson::Value* value = detail::find(operation, "value");
        if (value == nullptr)
            fail(category::malformed, "required", "the operation has no 'value'");
        return *value;
    }
    rapidjson::Value copy(const rapidjson::Value& value) { return rapidjson::Value(value, alloc_); }

    /// The value the path points at, which must exist.
    rapidjson::Value* existing(const std::vector<std::string>& path) {
        rapidjson::Value* at = resolve(doc_, path, path.size());
        if (at == nullptr)
            fail(category::invalid, "not-found", "nothing is at the path");
        return at;
    }

    /// The object or array that holds the path's last token.
    rapidjson::Value& container(const std::vector<std::string>& path) {
        rapidjson::Value* parent = resolve(doc_, path, path.size() - 1);
        if (parent == nullptr || !(parent->IsObject() || parent->IsArray()))
            fail(category::invalid, "not-found", "the path's parent does not exist or holds no members");
        return *parent;
    }

    void add(const std::vector<std::string>& path, rapidjson::Value value) {
        if (path.empty()) {
            static_cast<rapidjson::Value&>(doc_) = std::move(value);
            return;
        }
        rapidjson::Value& parent = container(path);
        const std::string& token = path.back();
        if (parent.IsObject()) {
            auto found = parent.FindMember(rapidjson::StringRef(token.data(), token.size()));
            if (found != parent.MemberEnd())
                found->value = std::move(value); // replaced where it is: members keep their order
            else
                parent.AddMember(rapidjson::Value(token.data(), static_cast<SizeType>(token.size()), alloc_), value,
                                 alloc_);
            return;
        }
        auto index = token == "-" ? std::optional<SizeType>(parent.Size()) : array_index(token);
        if (!index || *index > parent.Size())
            fail(category::invalid, "not-found", "the array index is not '-' or one from 0 to the array's size");
        parent.PushBack(value, alloc_);
        for (SizeType i = parent.Size() - 1; i > *index; --i)
            parent[i].Swap(parent[i - 1]);
    }

    /// Removes the value at the path and returns it.
    rapidjson::Value take(const std::vector<std::string>& path) {
        if (path.empty())
            fail(category::invalid, "processing", "the whole document cannot be removed");
        rapidjson::Value& parent = container(path);
        rapidjson::Value out;
        const std::string& token = path.back();
        if (parent.IsObject()) {
            auto found = parent.FindMember(rapidjson::StringRef(token.data(), token.size()));
            if (found == parent.MemberEnd())
                fail(category::invalid, "not-found", "nothing is at the path");
            out.Swap(found->value);
            parent.EraseMember(found); // keeps the order of the others; RemoveMember would not
        } else {
            auto index = array_index(token);
            if (!index || *index >= parent.Size())
                fail(category::invalid, "not-found", "nothing is at the path");
            out.Swap(parent[*index]);
            parent.Erase(parent.Begin() + *index);
        }
        return out;
    }

    rapidjson::Document& doc_;
    allocator& alloc_;
};

// --- references ----------------------------------------------------------------------------------

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
        return r4().type("Element"); // `_name`: its extensions may hold a valueReference
    if (def->type->kind == type_kind::any_resource)
        return resource_type(child);
    return def->type;
}

/// An Attachment.url that points at a stored Binary (binary.html#rest: a DocumentReference's document
/// is a Binary of the same server): "Binary/{id}", a server's ".../Binary/{id}", or a transaction's
/// "urn:uuid:..." that will become one. Any other URL is a document elsewhere.
bool names_binary(std::string_view url) {
    return url.starts_with("Binary/") || url.starts_with("urn:uuid:") ||
           (url.find("://") != std::string_view::npos && url.find("/Binary/") != std::string_view::npos);
}

/// Collects the Reference.reference strings under `value` (of `type`, nullptr when unknown), `path` being
/// where `value` is. Where the definitions give the type, only a Reference's `reference` counts (R4
/// has other elements named `reference`: Expression.reference and Immunization.education.reference
/// are uris); where they do not, any object's string `reference` does.
void collect_references(const rapidjson::Value& value, const type_def* type, std::string& path,
                        std::vector<found_reference>& out) {
    if (!value.IsObject())
        return;
    const bool reference = type == nullptr || type->name == "Reference";
    for (auto& member : value.GetObject()) {
        const std::string_view name = detail::view(member.name);
        const std::size_t length = path.size();
        path.append(".").append(name.starts_with('_') ? name.substr(1) : name); // `_status` is status's element
        if (reference && name == "reference" && detail::is_string(member.value))
            out.push_back({std::string(detail::view(member.value)), path});
        else if (type != nullptr && type->name == "Attachment" && name == "url" && detail::is_string(member.value) &&
                 names_binary(detail::view(member.value)))
            out.push_back({std::string(detail::view(member.value)), path});
        const member_def* def = type != nullptr ? type->member(name) : nullptr;
        if (member.value.IsArray()) {
            for (SizeType i = 0; i < member.value.Size(); ++i) {
                const std::size_t item_length = path.size();
                path.append("[").append(std::to_string(i)).append("]");
                collect_references(member.value[i], type_of_child(def, member.value[i]), path, out);
                path.resize(item_length);
            }
        } else {
            collect_references(member.value, type_of_child(def, member.value), path, out);
        }
        path.resize(length);
    }
}

/// XML-escapes `text` for an attribute value quoted with `quote`.
std::string xml_attribute(std::string_view text, char quote) {
    std::string out;
    for (char c : text) {
        if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == quote)
            out += quote == '"' ? "&quot;" : "&apos;";
        else
            out += c;
    }
    return out;
}

/// An attribute value's text: the five predefined XML entities decoded (character references are
/// left as written, so a key written that way is not found).
std::string xml_text(std::string_view value) {
    static constexpr std::pair<std::string_view, char> entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        bool decoded = false;
        for (auto [entity, c] : entities)
            if (value.substr(i, entity.size()) == entity) {
                out += c;
                i += entity.size() - 1;
                decoded = true;
                break;
            }
        if (!decoded)
            out += value[i];
    }
    return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// The narrative `div` with each href and src attribute whose value is a key replaced by its value;
/// everything else as written. A small scanner of tags and quoted attributes, not an XML parser:
/// the validator has already checked that the narrative is well-formed XHTML.
std::string rewrite_narrative(std::string_view div, const std::unordered_map<std::string, std::string>& replacements) {
    std::string out;
    out.reserve(div.size());
    std::size_t i = 0;
    auto copy_while = [&](auto keep) {
        while (i < div.size() && keep(div[i]))
            out += div[i++];
    };
    while (i < div.size()) {
        if (div.compare(i, 4, "<!--") == 0) {
            const std::size_t end = std::min(div.find("-->", i + 4), div.size());
            out.append(div.substr(i, std::min(end + 3, div.size()) - i));
            i = std::min(end + 3, div.size());
            continue;
        }
        if (div[i] != '<' || i + 1 >= div.size() || !std::isalpha(static_cast<unsigned char>(div[i + 1]))) {
            out += div[i++];
            continue;
        }
        out += div[i++];
        copy_while([](char c) { return !is_space(c) && c != '>' && c != '/'; }); // the tag's name
        for (;;) {
            copy_while(is_space);
            if (i >= div.size() || div[i] == '>' || div[i] == '/')
                break;
            const std::size_t name_start = i;
            copy_while([](char c) { return !is_space(c) && c != '=' && c != '>' && c != '/'; });
            const std::string_view name = div.substr(name_start, i - name_start);
            copy_while(is_space);
            if (i >= div.size() || div[i] != '=')
                continue;
            out += div[i++];
            copy_while(is_space);
            if (i >= div.size() || (div[i] != '"' && div[i] != '\'')) {
                copy_while([](char c) { return !is_space(c) && c != '>'; }); // unquoted: not XHTML; kept
                continue;
            }
            const char quote = div[i];
            const std::size_t end = std::min(div.find(quote, i + 1), div.size());
            const std::string_view value = div.substr(i + 1, end - i - 1);
            auto replacement =
                name == "href" || name == "src" ? replacements.find(xml_text(value)) : replacements.end();
            out += quote;
            out += replacement != replacements.end() ? xml_attribute(replacement->second, quote) : std::string(value);
            if (end < div.size())
                out += quote;
            i = end + 1;
        }
    }
    return out;
}

/// Replaces every string under `value` equal to a key, and the href/src links of the narrative of
/// every resource there (the root and its contained resources: objects with a resourceType).
void replace_strings(rapidjson::Value& value, const std::unordered_map<std::string, std::string>& replacements,
                     allocator& alloc) {
    if (detail::is_string(value)) {
        auto found = replacements.find(std::string(detail::view(value)));
        if (found != replacements.end())
            value.SetString(found->second.data(), static_cast<SizeType>(found->second.size()), alloc);
    } else if (value.IsArray()) {
        for (auto& item : value.GetArray())
            replace_strings(item, replacements, alloc);
    } else if (value.IsObject()) {
        for (auto& member : value.GetObject())
            replace_strings(member.value, replacements, alloc);
        rapidjson::Value* text = value.HasMember("resourceType") && value.HasMember("text") ? &value["text"] : nullptr;
        if (text != nullptr && text->IsObject() && text->HasMember("div") && detail::is_string((*text)["div"])) {
            rapidjson::Value& div = (*text)["div"];
            const std::string rewritten = rewrite_narrative(detail::view(div), replacements);
            div.SetString(rewritten.data(), static_cast<SizeType>(rewritten.size()), alloc);
        }
    }
}

} // namespace

result<std::string> apply_json_patch(std::string_view resource, std::string_view patch) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(resource, doc); !parsed)
        return std::move(parsed).failure();
    rapidjson::Document operations;
    if (auto parsed = detail::parse_json(patch, operations); !parsed)
        return std::move(parsed).failure();
    if (!operations.IsArray())
        return error::make(category::malformed, "structure", "JSON Patch: the patch is not an array of operations");

    static constexpr std::string_view known[] = {"add", "remove", "replace", "move", "copy", "test"};
    json_patcher patcher(doc);
    for (SizeType i = 0; i < operations.Size(); ++i) {
        const rapidjson::Value& operation = operations[i];
        auto op = operation.IsObject() ? detail::string_member(operation, "op") : std::nullopt;
        auto path = op ? detail::string_member(operation, "path") : std::nullopt;
        // Names the operation by its place, its op and its path (the client's text), never a value.
        std::string what = "JSON Patch operation " + std::to_string(i);
        if (op && path)
            what += " (" + std::string(*op) + " " + std::string(*path) + ")";
        if (!op || std::find(std::begin(known), std::end(known), *op) == std::end(known))
            return error::make(category::malformed, "structure",
                               what + ": 'op' is not one of add, remove, replace, move, copy, test");
        try {
            patcher.apply(operation, *op);
        } catch (const operation_failure& failure) {
            return error::make(failure.kind, failure.code, what + ": " + failure.message);
        }
    }
    if (detail::depth_of(doc) > detail::max_json_depth)
        return error::make(category::invalid, "too-costly",
                           "JSON Patch: the patched document nests deeper than " +
                               std::to_string(detail::max_json_depth) + " levels");
    return detail::write_json(doc);
}

result<std::vector<found_reference>> find_references(std::string_view resource) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(resource, doc); !parsed)
        return std::move(parsed).failure();
    std::vector<found_reference> out;
    std::string path(detail::string_member(doc, "resourceType").value_or("Resource"));
    collect_references(doc, resource_type(doc), path, out);
    return out;
}

result<std::string> replace_references(std::string_view resource,
                                       const std::unordered_map<std::string, std::string>& replacements) {
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(resource, doc); !parsed)
        return std::move(parsed).failure();
    replace_strings(doc, replacements, doc.GetAllocator());
    return detail::write_json(doc);
}

} // namespace caregate::fhir
