// The FHIRPath subset of fhirpath.hpp: a recursive-descent parser to a small AST and its evaluator over
// the RapidJSON DOM, typed from the R4 definitions (definitions.hpp) so that choice elements
// (Observation.value -> valueQuantity) and as/ofType/is work. The grammar is mirrored by
// fhir_model/generator/search_parameters.py (check), which decides which parameters are supported.
#include "fhir_model/fhirpath.hpp"

#include "definitions.hpp"
#include "json.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace caregate::fhir {
namespace detail {

struct fhirpath_ast {
    enum class op : std::uint8_t {
        identifier, function, string_literal, number_literal, boolean_literal,
        child, index, union_of, equal, not_equal, and_of, or_of, is, as,
    };
    op kind = op::identifier;
    std::string text;                 ///< name, literal, index or type
    std::vector<fhirpath_ast> args;   ///< operands; for child: source, invocation
};

namespace {

using ast = fhirpath_ast;
using op = fhirpath_ast::op;

struct token {
    enum class kind : std::uint8_t { name, string, number, symbol, end } type = kind::end;
    std::string text;
};

constexpr std::array<std::pair<std::string_view, int>, 10> functions = {{
    {"where", 1}, {"resolve", 0}, {"as", 1}, {"ofType", 1}, {"is", 1}, {"exists", -1}, {"first", 0},
    {"extension", 1}, {"empty", 0}, {"not", 0},
}};

/// Most tokens in one expression. The parser, the evaluator and the tree's destructor recurse once per
/// nesting level and per path step, and FHIRPath Patch (fhirpath_patch.cpp) parses paths a client
/// sends: unbounded, a path of some thousands of `(` overflowed the stack and killed the server.
/// The longest supported R4 search parameter expression has 35 tokens.
constexpr std::size_t max_tokens = 1000;

class parser {
public:
    explicit parser(std::string_view text) : text_(text) {}

    ast parse() {
        advance();
        ast out = expression();
        if (current_.type != token::kind::end)
            fail("unsupported syntax at '" + current_.text + "'");
        return out;
    }

private:
    struct parse_error { std::string message; };
    [[noreturn]] static void fail(std::string message) { throw parse_error{std::move(message)}; }

    void advance() {
        if (++tokens_ > max_tokens)
            fail("the expression is too long (more than " + std::to_string(max_tokens) + " tokens)");
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])))
            ++pos_;
        if (pos_ >= text_.size()) {
            current_ = {token::kind::end, ""};
            return;
        }
        char c = text_[pos_];
        if (c == '\'') {
            std::string out;
            for (++pos_; pos_ < text_.size() && text_[pos_] != '\''; ++pos_) {
                if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) {
                    char e = text_[++pos_];
                    if (e == 'u')
                        append_utf8(out, unicode_escape());
                    else
                        out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'f' ? '\f' : e;
                } else {
                    out += text_[pos_];
                }
            }
            if (pos_ >= text_.size())
                fail("unterminated string literal");
            ++pos_;
            current_ = {token::kind::string, std::move(out)};
        } else if (std::isdigit(static_cast<unsigned char>(c))) {
            std::size_t start = pos_;
            while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])))
                ++pos_;
            if (pos_ < text_.size() && text_[pos_] == '.' && pos_ + 1 < text_.size() &&
                std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])))
                fail("decimal literals are not supported");
            current_ = {token::kind::number, std::string(text_.substr(start, pos_ - start))};
        } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            std::size_t start = pos_;
            while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_'))
                ++pos_;
            current_ = {token::kind::name, std::string(text_.substr(start, pos_ - start))};
        } else if (c == '`') {
            std::size_t end = text_.find('`', pos_ + 1);
            if (end == std::string_view::npos)
                fail("unterminated delimited identifier");
            current_ = {token::kind::name, std::string(text_.substr(pos_ + 1, end - pos_ - 1))};
            pos_ = end + 1;
        } else if (text_.substr(pos_, 2) == "!=") {
            current_ = {token::kind::symbol, "!="};
            pos_ += 2;
        } else if (std::string_view(".()[]|=,").find(c) != std::string_view::npos) {
            current_ = {token::kind::symbol, std::string(1, c)};
            ++pos_;
        } else {
            fail("unsupported syntax at '" + std::string(text_.substr(pos_, 10)) + "'");
        }
    }

    /// The four hex digits after the `u` at pos_, left on the last one consumed; a surrogate pair
    /// (\uD83D\uDE00) is one code point.
    char32_t unicode_escape() {
        auto hex4 = [&](std::size_t at) {
            unsigned value = 0;
            auto digits = text_.substr(std::min(at, text_.size()), 4);
            auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, 16);
            if (digits.size() != 4 || ec != std::errc() || end != digits.data() + 4)
                fail("invalid \\u escape in a string literal");
            return static_cast<char32_t>(value);
        };
        char32_t code = hex4(pos_ + 1);
        pos_ += 4;
        if (code >= 0xD800 && code <= 0xDBFF && text_.substr(pos_ + 1, 2) == "\\u") {
            char32_t low = hex4(pos_ + 3);
            if (low >= 0xDC00 && low <= 0xDFFF) {
                pos_ += 6;
                return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            }
        }
        if (code >= 0xD800 && code <= 0xDFFF)
            fail("unpaired surrogate in a \\u escape");
        return code;
    }

    static void append_utf8(std::string& out, char32_t code) {
        if (code < 0x80) {
            out += static_cast<char>(code);
        } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
        } else if (code < 0x10000) {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (code >> 18));
            out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        }
    }

    bool at(std::string_view symbol) const {
        return (current_.type == token::kind::symbol || current_.type == token::kind::name) && current_.text == symbol;
    }
    void expect(std::string_view symbol) {
        if (!at(symbol))
            fail("expected '" + std::string(symbol) + "' at '" + current_.text + "'");
        advance();
    }

    std::string type_name() {
        if (current_.type != token::kind::name)
            fail("expected a type name at '" + current_.text + "'");
        std::string name = current_.text;
        advance();
        if (at(".")) { // FHIR.Quantity, System.String: kept, it narrows the match (see type_matches)
            advance();
            std::string inner = type_name();
            return name == "FHIR" || name == "System" ? name + "." + inner : inner;
        }
        return name;
    }

    ast binary(op kind, ast left, ast right) {
        ast out{kind, "", {}};
        out.args.push_back(std::move(left));
        out.args.push_back(std::move(right));
        return out;
    }

    ast expression() {
        ast left = conjunction();
        while (at("or")) {
            advance();
            left = binary(op::or_of, std::move(left), conjunction());
        }
        return left;
    }
    ast conjunction() {
        ast left = equality();
        while (at("and")) {
            advance();
            left = binary(op::and_of, std::move(left), equality());
        }
        return left;
    }
    ast equality() {
        ast left = union_of();
        if (at("=") || at("!=")) {
            op kind = at("=") ? op::equal : op::not_equal;
            advance();
            left = binary(kind, std::move(left), union_of());
        }
        return left;
    }
    ast union_of() {
        ast left = type_expression();
        while (at("|")) {
            advance();
            left = binary(op::union_of, std::move(left), type_expression());
        }
        return left;
    }
    ast type_expression() {
        ast left = postfix();
        while (at("is") || at("as")) {
            op kind = at("is") ? op::is : op::as;
            advance();
            ast out{kind, type_name(), {}};
            out.args.push_back(std::move(left));
            left = std::move(out);
        }
        return left;
    }
    ast postfix() {
        ast left = term();
        for (;;) {
            if (at(".")) {
                advance();
                left = binary(op::child, std::move(left), invocation());
            } else if (at("[")) {
                advance();
                if (current_.type != token::kind::number)
                    fail("only integer indexers are supported");
                ast out{op::index, current_.text, {}};
                advance();
                expect("]");
                out.args.push_back(std::move(left));
                left = std::move(out);
            } else {
                return left;
            }
        }
    }
    ast term() {
        switch (current_.type) {
        case token::kind::end: fail("unexpected end of expression");
        case token::kind::string: {
            ast out{op::string_literal, current_.text, {}};
            advance();
            return out;
        }
        case token::kind::number: {
            ast out{op::number_literal, current_.text, {}};
            advance();
            return out;
        }
        case token::kind::symbol:
            if (at("(")) {
                advance();
                ast inner = expression();
                expect(")");
                return inner;
            }
            fail("unsupported syntax at '" + current_.text + "'");
        case token::kind::name:
            if (at("true") || at("false")) {
                ast out{op::boolean_literal, current_.text, {}};
                advance();
                return out;
            }
            return invocation();
        }
        fail("unsupported syntax");
    }
    ast invocation() {
        if (current_.type != token::kind::name)
            fail("expected a name at '" + current_.text + "'");
        std::string name = current_.text;
        if (name == "and" || name == "or" || name == "true" || name == "false")
            fail("expected a name at '" + name + "'");
        advance();
        if (!at("("))
            return ast{op::identifier, std::move(name), {}};
        advance();
        int arity = -2;
        for (auto& [fn, n] : functions)
            if (fn == name)
                arity = n;
        if (arity == -2)
            fail("unsupported function " + name + "()");
        ast out{op::function, name, {}};
        if (!at(")")) {
            if (name == "as" || name == "ofType" || name == "is")
                out.args.push_back(ast{op::identifier, type_name(), {}});
            else
                out.args.push_back(expression());
            if (at(","))
                fail("too many arguments to " + name + "()");
        }
        expect(")");
        int given = static_cast<int>(out.args.size());
        if (arity >= 0 ? given != arity : given > 1)
            fail("wrong number of arguments to " + name + "()");
        return out;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::size_t tokens_ = 0;
    token current_;

public:
    static std::optional<std::string> try_parse(std::string_view text, ast& out) {
        try {
            out = parser(text).parse();
            return std::nullopt;
        } catch (const parse_error& e) {
            return e.message;
        }
    }
};

// --- evaluation ----------------------------------------------------------------------------------

struct context {
    const rapidjson::Value& root;
};

bool is_resource_type(std::string_view name) { return r4().resource_types.contains(name); }

std::string_view resource_type_of(const rapidjson::Value& value) {
    auto type = string_member(value, "resourceType");
    if (!type)
        return {};
    const type_def* def = r4().type(*type);
    return def != nullptr ? std::string_view(def->name) : std::string_view();
}

/// `type` names `node`'s type or a supertype of it (Age is a Quantity; every resource is a Resource).
bool is_of_type(const fhirpath_node& node, std::string_view type) {
    if (node.type.empty())
        return false;
    if (node.type == type)
        return true;
    if (type == "Quantity")
        for (std::string_view sub : {"Age", "Count", "Distance", "Duration", "MoneyQuantity", "SimpleQuantity"})
            if (node.type == sub)
                return true;
    if ((type == "Resource" || type == "DomainResource") && is_resource_type(node.type))
        return true;
    return false;
}

void add_value(fhirpath_result& out, const rapidjson::Value& value, std::string_view type) {
    if (value.IsArray()) {
        for (auto& item : value.GetArray())
            add_value(out, item, type);
        return;
    }
    if (value.IsNull())
        return;
    if (value.IsObject()) {
        if (const type_def* def = r4().type(type); def != nullptr && def->kind == type_kind::any_resource)
            type = resource_type_of(value);
    }
    out.push_back(fhirpath_node{&value, type, {}, {}, {}});
}

/// The `_name` object that carries a primitive's id and extensions in FHIR JSON
/// (https://hl7.org/fhir/R4/json.html#primitive), searched for from `within` (the resource), since a
/// node keeps no parent. nullptr when the primitive has none.
const rapidjson::Value* primitive_element(const rapidjson::Value& within, const rapidjson::Value& primitive) {
    auto sibling = [&](const rapidjson::Value& member_name) {
        return find(within, "_" + std::string(view(member_name)));
    };
    if (within.IsArray()) {
        for (auto& item : within.GetArray())
            if (const rapidjson::Value* found = primitive_element(item, primitive))
                return found;
        return nullptr;
    }
    if (!within.IsObject())
        return nullptr;
    for (auto& member : within.GetObject()) {
        if (&member.value == &primitive)
            return sibling(member.name);
        if (member.value.IsArray()) { // `given: [...]` pairs item by item with `_given: [...]`
            for (rapidjson::SizeType i = 0; i < member.value.Size(); ++i) {
                if (&member.value[i] != &primitive)
                    continue;
                const rapidjson::Value* siblings = sibling(member.name);
                return siblings != nullptr && siblings->IsArray() && i < siblings->Size() ? &(*siblings)[i] : nullptr;
            }
        }
        if (const rapidjson::Value* found = primitive_element(member.value, primitive))
            return found;
    }
    return nullptr;
}

void navigate(const fhirpath_node& item, std::string_view name, fhirpath_result& out, const context& ctx) {
    if (item.value == nullptr)
        return;
    if (!item.value->IsObject()) {
        if ((name == "extension" || name == "id") && !item.value->IsArray())
            if (const rapidjson::Value* element = primitive_element(ctx.root, *item.value))
                navigate(fhirpath_node{element, "Element", {}, {}, {}}, name, out, ctx);
        return;
    }
    const type_def* def = item.type.empty() ? nullptr : r4().type(item.type);
    if (def == nullptr || def->members.empty()) {
        if (const rapidjson::Value* child = find(*item.value, name))
            add_value(out, *child, {});
        return;
    }
    // An element that is no choice has one JSON name, its own: one lookup, not one per member.
    if (const member_def* m = def->member(name); m != nullptr && !m->primitive_part && !m->element->choice) {
        if (const rapidjson::Value* child = find(*item.value, name))
            add_value(out, *child, m->type->name);
        return;
    }
    for (auto& member : item.value->GetObject()) {
        const member_def* m = def->member(view(member.name));
        if (m == nullptr || m->primitive_part)
            continue;
        const std::string& element = m->element->name;
        bool match = m->element->choice
            ? element.size() == name.size() + 3 && element.starts_with(name)
            : element == name;
        if (match)
            add_value(out, member.value, m->type->name);
    }
}

/// The resource type a Reference points to: by its reference text (relative, absolute or #contained),
/// else by Reference.type.
std::string_view referenced_type(const rapidjson::Value& reference, const context& ctx) {
    if (auto text = string_member(reference, "reference")) {
        std::string_view ref = *text;
        if (ref.starts_with("#")) {
            if (const rapidjson::Value* contained = find(ctx.root, "contained"); contained && contained->IsArray())
                for (auto& c : contained->GetArray())
                    if (string_member(c, "id") == ref.substr(1))
                        return resource_type_of(c);
        } else if (!ref.starts_with("urn:")) {
            if (auto history = ref.find("/_history/"); history != std::string_view::npos)
                ref = ref.substr(0, history);
            auto last = ref.rfind('/');
            if (last != std::string_view::npos) {
                auto before = ref.substr(0, last);
                auto type = before.substr(before.rfind('/') + 1);
                if (is_resource_type(type))
                    return type;
            }
        }
    }
    if (auto type = string_member(reference, "type"); type && is_resource_type(*type))
        return *type;
    return {};
}

/// A computed Boolean; like a literal (typed String or Integer), it has a System type.
fhirpath_node boolean_node(bool value) { return fhirpath_node{nullptr, "Boolean", {}, value, {}}; }

/// FHIRPath singleton evaluation of a collection as a Boolean: empty is unknown.
std::optional<bool> truth(const fhirpath_result& items) {
    if (items.size() != 1)
        return std::nullopt;
    if (items[0].boolean)
        return items[0].boolean;
    if (items[0].value != nullptr && items[0].value->IsBool())
        return items[0].value->GetBool();
    return true;
}

enum class scalar_kind : std::uint8_t { boolean, string, number, other };
std::pair<scalar_kind, std::string_view> scalar(const fhirpath_node& node) {
    if (node.boolean)
        return {scalar_kind::boolean, *node.boolean ? "true" : "false"};
    if (node.value == nullptr) // a literal, typed System.Integer or System.String
        return {node.type == "Integer" ? scalar_kind::number : scalar_kind::string, node.literal};
    if (node.value->IsBool())
        return {scalar_kind::boolean, node.value->GetBool() ? "true" : "false"};
    if (auto number = number_text(*node.value))
        return {scalar_kind::number, *number};
    if (is_string(*node.value))
        return {scalar_kind::string, view(*node.value)};
    return {scalar_kind::other, {}};
}

/// FHIRPath `=` of two items: primitives by kind and text (a decimal by its text, so 1.10 is not 1.1
/// here), complex values child by child (RapidJSON's deep ==, member order aside).
bool items_equal(const fhirpath_node& a, const fhirpath_node& b) {
    auto [a_kind, a_text] = scalar(a);
    auto [b_kind, b_text] = scalar(b);
    if (a_kind != scalar_kind::other || b_kind != scalar_kind::other)
        return a_kind == b_kind && a_text == b_text;
    return a.value != nullptr && b.value != nullptr && a.value->IsObject() && *a.value == *b.value;
}

fhirpath_result evaluate(const ast& node, const fhirpath_result& focus, const context& ctx);

/// True when `node` is a FHIR primitive whose value FHIRPath converts to the System type `type`
/// (the mapping of the FHIR specification's "Using FHIR types in expressions": FHIR.dateTime ->
/// System.DateTime, FHIR.code -> System.String, ...). `type` is a System type's name without its
/// namespace: upper-case, which no FHIR primitive's is.
bool converts_to_system_type(const fhirpath_node& node, std::string_view type) {
    static constexpr std::pair<std::string_view, std::string_view> conversions[] = {
        {"boolean", "Boolean"}, {"string", "String"},   {"uri", "String"},       {"code", "String"},
        {"oid", "String"},      {"id", "String"},       {"uuid", "String"},      {"markdown", "String"},
        {"base64Binary", "String"}, {"integer", "Integer"}, {"unsignedInt", "Integer"}, {"positiveInt", "Integer"},
        {"decimal", "Decimal"}, {"date", "DateTime"},   {"dateTime", "DateTime"}, {"instant", "DateTime"},
        {"time", "Time"},
    };
    for (auto [primitive, system] : conversions)
        if (node.type == primitive && type == system)
            return true;
    return false;
}

/// Whether `node` is of the type `specifier` names, as the parser keeps it: `FHIR.X` a FHIR type only,
/// `System.X` a System type only (a literal's or a computed Boolean's; for a cast, also a FHIR
/// primitive that converts to it), a bare name either. So `Patient.is(System.Patient)` is false.
bool type_matches(const fhirpath_node& node, std::string_view specifier, bool cast) {
    bool system_value = node.value == nullptr; // a literal or a computed value
    if (specifier.starts_with("FHIR."))
        return !system_value && is_of_type(node, specifier.substr(5));
    if (specifier.starts_with("System.")) {
        std::string_view type = specifier.substr(7);
        return system_value ? node.type == type : cast && converts_to_system_type(node, type);
    }
    return is_of_type(node, specifier) || (cast && converts_to_system_type(node, specifier));
}

/// The casts: as() and the `as` operator, and ofType(). Unlike `is`, which tells FHIR.dateTime from
/// System.DateTime, a cast to a System type also takes the FHIR primitives that convert to it: the
/// FHIR specification lets ofType() name a primitive either way ("ofType() does not have such
/// restrictions"), and R4's own definitions cast so (Observation code-value-date's
/// `value.as(DateTime) | value.as(Period)`).
fhirpath_result filter_type(const fhirpath_result& items, std::string_view type) {
    fhirpath_result out;
    for (auto& item : items)
        if (type_matches(item, type, true))
            out.push_back(item);
    return out;
}

fhirpath_result is_type(const fhirpath_result& items, std::string_view type) {
    if (items.size() != 1)
        return {};
    const fhirpath_node& item = items[0];
    if (!item.resolved_type.empty()) {
        if (type.starts_with("FHIR."))
            type.remove_prefix(5);
        return {boolean_node(item.resolved_type == type)};
    }
    return {boolean_node(type_matches(item, type, false))};
}

fhirpath_result call(const ast& fn, const fhirpath_result& focus, const context& ctx) {
    const std::string& name = fn.text;
    fhirpath_result out;
    if (name == "where" || (name == "exists" && !fn.args.empty())) {
        for (auto& item : focus)
            if (truth(evaluate(fn.args[0], {item}, ctx)) == true)
                out.push_back(item);
        if (name == "exists")
            return {boolean_node(!out.empty())};
    } else if (name == "exists") {
        out.push_back(boolean_node(!focus.empty()));
    } else if (name == "empty") {
        out.push_back(boolean_node(focus.empty()));
    } else if (name == "not") {
        if (auto value = truth(focus))
            out.push_back(boolean_node(!*value));
    } else if (name == "first") {
        if (!focus.empty())
            out.push_back(focus.front());
    } else if (name == "as" || name == "ofType") {
        out = filter_type(focus, fn.args[0].text);
    } else if (name == "is") {
        out = is_type(focus, fn.args[0].text);
    } else if (name == "resolve") {
        for (auto& item : focus)
            if (item.value != nullptr)
                if (auto type = referenced_type(*item.value, ctx); !type.empty())
                    out.push_back(fhirpath_node{item.value, {}, type, {}, {}});
    } else if (name == "extension") {
        fhirpath_result url = evaluate(fn.args[0], focus, ctx);
        if (url.size() != 1 || url[0].literal.empty())
            return {};
        fhirpath_result extensions;
        for (auto& item : focus)
            navigate(item, "extension", extensions, ctx);
        for (auto& ext : extensions)
            if (ext.value != nullptr && string_member(*ext.value, "url") == url[0].literal)
                out.push_back(ext);
    }
    return out;
}

fhirpath_result evaluate(const ast& node, const fhirpath_result& focus, const context& ctx) {
    switch (node.kind) {
    case op::identifier: {
        fhirpath_result out;
        bool type_like = !node.text.empty() && std::isupper(static_cast<unsigned char>(node.text[0]));
        for (auto& item : focus) {
            bool resource = item.value == &ctx.root || (item.value != nullptr && is_resource_type(item.type));
            if (type_like && resource) {
                if (is_of_type(item, node.text))
                    out.push_back(item);
                continue;
            }
            navigate(item, node.text, out, ctx);
        }
        return out;
    }
    case op::function: return call(node, focus, ctx);
    case op::string_literal: return {fhirpath_node{nullptr, "String", {}, {}, node.text}};
    case op::number_literal: return {fhirpath_node{nullptr, "Integer", {}, {}, node.text}};
    case op::boolean_literal: return {boolean_node(node.text == "true")};
    case op::child: return evaluate(node.args[1], evaluate(node.args[0], focus, ctx), ctx);
    case op::index: {
        fhirpath_result items = evaluate(node.args[0], focus, ctx);
        std::size_t index = 0;
        std::from_chars(node.text.data(), node.text.data() + node.text.size(), index);
        if (index < items.size())
            return {items[index]};
        return {};
    }
    case op::union_of: {
        fhirpath_result out = evaluate(node.args[0], focus, ctx);
        for (auto& item : evaluate(node.args[1], focus, ctx)) {
            bool seen = false;
            for (auto& have : out)
                seen = seen || (item.value != nullptr && have.value == item.value);
            if (!seen)
                out.push_back(item);
        }
        return out;
    }
    case op::equal:
    case op::not_equal: {
        // Collections are equal when they have the same size and are equal item by item, in order.
        fhirpath_result left = evaluate(node.args[0], focus, ctx), right = evaluate(node.args[1], focus, ctx);
        if (left.empty() || right.empty())
            return {};
        bool equal = left.size() == right.size();
        for (std::size_t i = 0; equal && i < left.size(); ++i)
            equal = items_equal(left[i], right[i]);
        return {boolean_node(node.kind == op::equal ? equal : !equal)};
    }
    case op::and_of:
    case op::or_of: {
        auto left = truth(evaluate(node.args[0], focus, ctx));
        auto right = truth(evaluate(node.args[1], focus, ctx));
        bool deciding = node.kind == op::or_of; // true decides an or, false an and
        if (left == deciding || right == deciding)
            return {boolean_node(deciding)};
        if (left && right)
            return {boolean_node(!deciding)};
        return {};
    }
    case op::is: return is_type(evaluate(node.args[0], focus, ctx), node.text);
    case op::as: return filter_type(evaluate(node.args[0], focus, ctx), node.text);
    }
    return {};
}

} // namespace
} // namespace detail

std::optional<fhirpath_expression> fhirpath_expression::parse(std::string_view text, std::string& error) {
    auto tree = std::make_shared<detail::fhirpath_ast>();
    if (auto failure = detail::parser::try_parse(text, *tree)) {
        error = std::move(*failure);
        return std::nullopt;
    }
    fhirpath_expression out;
    out.text_ = std::string(text);
    out.ast_ = std::move(tree);
    return out;
}

fhirpath_result fhirpath_expression::evaluate(const rapidjson::Value& resource) const {
    if (ast_ == nullptr)
        return {};
    detail::context ctx{resource};
    fhirpath_node root{&resource, detail::resource_type_of(resource), {}, {}, {}};
    return detail::evaluate(*ast_, {root}, ctx);
}

fhirpath_result fhirpath_expression::evaluate(const fhirpath_node& focus, const rapidjson::Value& resource) const {
    if (ast_ == nullptr)
        return {};
    detail::context ctx{resource};
    return detail::evaluate(*ast_, {focus}, ctx);
}

std::string_view resolved_type(const rapidjson::Value& reference, const rapidjson::Value& resource) {
    return detail::referenced_type(reference, detail::context{resource});
}

} // namespace caregate::fhir
