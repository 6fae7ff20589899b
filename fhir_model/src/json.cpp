// Parsing and writing JSON with exact number text; see json.hpp.
#include "json.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::fhir::detail {

namespace {

/// Forwards SAX events to a Document, storing numbers as marked strings and bounding the depth, the
/// items of an array and the values of the whole document.
struct marking_handler {
    explicit marking_handler(rapidjson::Document& target) : doc(target) {}

    rapidjson::Document& doc;
    unsigned depth = 0;
    bool too_deep = false;
    bool forged_marker = false;
    std::string scratch;
    bool unpaired_surrogate = false;
    bool too_many_items = false;
    bool too_many_values = false;
    std::size_t values = 0;
    /// Per open object or array, innermost last: whether it is an array, and its items so far.
    std::vector<std::pair<bool, std::size_t>> open;

    /// Counts a value (or a key) before it is added; false when a bound is passed.
    bool counted() {
        if (++values > max_json_values) {
            too_many_values = true;
            return false;
        }
        if (!open.empty() && open.back().first && ++open.back().second > max_json_array_items) {
            too_many_items = true;
            return false;
        }
        return true;
    }

    bool Null() { return counted() && doc.Null(); }
    bool Bool(bool b) { return counted() && doc.Bool(b); }
    bool Int(int) { return false; } // not reached: numbers arrive as RawNumber
    bool Uint(unsigned) { return false; }
    bool Int64(int64_t) { return false; }
    bool Uint64(uint64_t) { return false; }
    bool Double(double) { return false; }
    bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
        if (!counted())
            return false;
        scratch.assign(1, number_marker);
        scratch.append(str, length);
        return doc.String(scratch.data(), static_cast<rapidjson::SizeType>(scratch.size()), true);
    }
    bool String(const char* str, rapidjson::SizeType length, bool copy) {
        if (!counted())
            return false;
        // The marker byte never comes from a client: FHIR strings have no control characters, and
        // refusing it here means a marked string in the DOM is always a number we parsed. A NUL
        // (written \u0000) is refused with it: it would cut a string short wherever C meets it.
        if (refused_character(str, length)) {
            forged_marker = true;
            return false;
        }
        if (has_surrogate(str, length)) {
            unpaired_surrogate = true;
            return false;
        }
        return doc.String(str, length, copy);
    }
    bool Key(const char* str, rapidjson::SizeType length, bool copy) {
        if (!counted())
            return false;
        if (refused_character(str, length)) {
            forged_marker = true;
            return false;
        }
        if (has_surrogate(str, length)) {
            unpaired_surrogate = true;
            return false;
        }
        return doc.Key(str, length, copy);
    }
    static bool refused_character(const char* str, rapidjson::SizeType length) {
        return std::memchr(str, number_marker, length) || std::memchr(str, '\0', length);
    }
    /// RapidJSON 1.1.0 decodes an unpaired low surrogate escape (\uDC00-\uDFFF) to the three bytes
    /// ED B0..BF xx, which are not UTF-8, and stored they would make every later read of the resource
    /// fail. Raw input is validated as UTF-8, so such bytes can only come from an escape: a lead byte
    /// ED followed by A0..BF is a surrogate, nothing else. (A paired surrogate decodes correctly, and
    /// an unpaired high one is refused by RapidJSON.) Found by tests/fuzz/fuzz_json.
    static bool has_surrogate(const char* str, rapidjson::SizeType length) {
        const char* end = str + length;
        for (const char* p = str; (p = static_cast<const char*>(std::memchr(p, '\xED', end - p))) != nullptr; ++p)
            if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xA0)
                return true;
        return false;
    }
    bool StartObject() { return enter(false) && doc.StartObject(); }
    bool EndObject(rapidjson::SizeType count) { leave(); return doc.EndObject(count); }
    bool StartArray() { return enter(true) && doc.StartArray(); }
    bool EndArray(rapidjson::SizeType count) { leave(); return doc.EndArray(count); }

    bool enter(bool array) {
        if (!counted())
            return false;
        if (++depth > max_json_depth) {
            too_deep = true;
            return false;
        }
        open.emplace_back(array, 0);
        return true;
    }
    void leave() {
        --depth;
        open.pop_back();
    }
};

/// The first duplicated key in any object under `value`, if there is one.
const rapidjson::Value* find_duplicate_key(const rapidjson::Value& value, std::vector<std::string_view>& names) {
    if (value.IsObject()) {
        const std::size_t start = names.size();
        for (auto& member : value.GetObject())
            names.emplace_back(member.name.GetString(), member.name.GetStringLength());
        std::sort(names.begin() + start, names.end());
        auto dup = std::adjacent_find(names.begin() + start, names.end());
        const bool found = dup != names.end();
        names.resize(start);
        if (found) {
            for (auto& member : value.GetObject())
                if (std::string_view(member.name.GetString(), member.name.GetStringLength()) == *dup)
                    return &member.name;
        }
        for (auto& member : value.GetObject())
            if (auto* inner = find_duplicate_key(member.value, names))
                return inner;
    } else if (value.IsArray()) {
        for (auto& item : value.GetArray())
            if (auto* inner = find_duplicate_key(item, names))
                return inner;
    }
    return nullptr;
}

/// Where `text` stops being well-formed UTF-8 (RFC 3629: no overlong form, no surrogate, nothing
/// above U+10FFFF), or npos. The whole text is checked in one pass before parsing, ASCII eight bytes
/// at a time, instead of each string's characters by the reader (kParseValidateEncodingFlag, which
/// was a tenth of a transaction's CPU); a byte above 0x7F outside a string is a syntax error either way.
std::size_t invalid_utf8_at(std::string_view text) noexcept {
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t size = text.size();
    std::size_t i = 0;
    while (i < size) {
        if (i + 8 <= size) {
            std::uint64_t word;
            std::memcpy(&word, bytes + i, sizeof word);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        const unsigned char lead = bytes[i];
        if (lead < 0x80) {
            ++i;
            continue;
        }
        // The length of the sequence, and the range its second byte must be in (RFC 3629, section 4).
        std::size_t length = 0;
        unsigned char low = 0x80, high = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF)
            length = 2;
        else if (lead == 0xE0)
            length = 3, low = 0xA0;
        else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF)
            length = 3;
        else if (lead == 0xED)
            length = 3, high = 0x9F; // not a surrogate
        else if (lead == 0xF0)
            length = 4, low = 0x90;
        else if (lead >= 0xF1 && lead <= 0xF3)
            length = 4;
        else if (lead == 0xF4)
            length = 4, high = 0x8F; // not above U+10FFFF
        else
            return i;
        if (size - i < length || bytes[i + 1] < low || bytes[i + 1] > high)
            return i;
        for (std::size_t k = 2; k < length; ++k)
            if (bytes[i + k] < 0x80 || bytes[i + k] > 0xBF)
                return i;
        i += length;
    }
    return std::string_view::npos;
}

} // namespace

status parse_json(std::string_view text, rapidjson::Document& out) {
    constexpr unsigned flags = rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;
    out.SetNull();
    if (const std::size_t invalid = invalid_utf8_at(text); invalid != std::string_view::npos)
        return error::make(category::malformed, "structure",
                           "the body is not valid JSON: it is not valid UTF-8 (at byte " + std::to_string(invalid) + ")");
    rapidjson::Reader reader;
    rapidjson::MemoryStream memory(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(memory);
    bool too_deep = false;
    bool forged_marker = false;
    bool unpaired_surrogate = false;
    bool too_many_items = false;
    bool too_many_values = false;
    rapidjson::ParseResult parsed;
    // The Document takes SAX events from the reader through the marking handler.
    auto generate = [&](rapidjson::Document& doc) {
        marking_handler handler(doc);
        parsed = reader.Parse<flags>(stream, handler);
        too_deep = handler.too_deep;
        forged_marker = handler.forged_marker;
        unpaired_surrogate = handler.unpaired_surrogate;
        too_many_items = handler.too_many_items;
        too_many_values = handler.too_many_values;
        return !parsed.IsError();
    };
    out.Populate(generate);
    if (too_deep)
        return error::make(category::malformed, "too-costly",
                           "the JSON nests deeper than " + std::to_string(max_json_depth) + " levels");
    if (too_many_items)
        return error::make(category::malformed, "too-costly",
                           "a JSON array has more than " + std::to_string(max_json_array_items) + " items");
    if (too_many_values)
        return error::make(category::malformed, "too-costly",
                           "the JSON has more than " + std::to_string(max_json_values) + " values");
    if (forged_marker)
        return error::make(category::malformed, "structure", "the JSON has a control character (U+0000 or U+0001) in a string");
    if (unpaired_surrogate)
        return error::make(category::malformed, "structure",
                           "the JSON has an unpaired surrogate (an escape \\uDC00 to \\uDFFF) in a string");
    if (!parsed)
        return error::make(category::malformed, "structure",
                           std::string("the body is not valid JSON: ") + rapidjson::GetParseError_En(parsed.Code()) +
                               " (at byte " + std::to_string(parsed.Offset()) + ")");
    // Anything but white space after the value is an error.
    for (std::size_t i = memory.Tell(); i < text.size(); ++i)
        if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t')
            return error::make(category::malformed, "structure",
                               "the body has more than one JSON value (at byte " + std::to_string(i) + ")");
    std::vector<std::string_view> names;
    if (auto* dup = find_duplicate_key(out, names))
        return error::make(category::malformed, "structure",
                           "the JSON repeats the key \"" + std::string(dup->GetString(), dup->GetStringLength()) +
                               "\" in one object");
    return {};
}

rapidjson::Value& set_member(rapidjson::Value& object, std::string_view name, rapidjson::Value value,
                             rapidjson::Document::AllocatorType& alloc) {
    if (auto found = object.FindMember(rapidjson::StringRef(name.data(), name.size())); found != object.MemberEnd()) {
        found->value = std::move(value);
        return found->value;
    }
    object.AddMember(string_value(name, alloc), value, alloc);
    return (object.MemberEnd() - 1)->value;
}

std::optional<std::string_view> number_text(const rapidjson::Value& value) noexcept {
    if (!value.IsString() || value.GetStringLength() == 0 || value.GetString()[0] != number_marker)
        return std::nullopt;
    return std::string_view(value.GetString() + 1, value.GetStringLength() - 1);
}

bool is_string(const rapidjson::Value& value) noexcept { return value.IsString() && !number_text(value); }

std::string_view text_of(const rapidjson::Value& value) noexcept {
    if (auto number = number_text(value))
        return *number;
    return {value.GetString(), value.GetStringLength()};
}

unsigned depth_of(const rapidjson::Value& value) {
    unsigned deepest = 0;
    if (value.IsObject())
        for (auto& member : value.GetObject())
            deepest = std::max(deepest, depth_of(member.value));
    else if (value.IsArray())
        for (auto& item : value.GetArray())
            deepest = std::max(deepest, depth_of(item));
    else
        return 0;
    return deepest + 1;
}

std::string write_json(const rapidjson::Value& value) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    write_value(out, value);
    return {buffer.GetString(), buffer.GetSize()};
}

} // namespace caregate::fhir::detail
