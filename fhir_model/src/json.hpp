// The JSON layer of fhir_model (private): parsing into a RapidJSON DOM that keeps every number's
// exact text (FHIR decimals must round-trip as written: 1.10 stays 1.10), rejects what FHIR JSON
// forbids (invalid UTF-8, duplicate keys, excessive nesting), and compact writing back.
//
// How numbers are kept: a number is stored in the DOM as a string whose first byte is
// number_marker (U+0001). FHIR strings may not contain control characters other than tab, CR and LF,
// and the validator rejects them, so a marked string is always a number we parsed.
#pragma once

#include "fhir_model/error.hpp"

#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include <cstddef>

namespace caregate::fhir::detail {

inline constexpr char number_marker = '\x01';
/// Deepest nesting accepted; FHIR resources nest far less (Questionnaire items ~15 deep).
inline constexpr unsigned max_json_depth = 64;
/// Most items in one JSON array: above any repeating element of a real resource, and above
/// --max-bundle-entries' default (10,000), so that a Bundle over that limit still gets its 413.
inline constexpr std::size_t max_json_array_items = 100'000;
/// Most values (keys, strings, numbers, literals, objects, arrays) in one document: the parsed form
/// takes 16 bytes a value and more, so this bounds what a body can cost in memory (a 16 MiB body of
/// `[0,0,...]` would be 8 million values). A real resource uses far fewer than one a 20 bytes.
inline constexpr std::size_t max_json_values = 1'000'000;

/// Parses `text` into `out`. Errors: malformed, with a diagnostic that names the position.
status parse_json(std::string_view text, rapidjson::Document& out);

/// The number's text if `value` is a number, else nullopt.
std::optional<std::string_view> number_text(const rapidjson::Value& value) noexcept;
/// A real string (not a number).
bool is_string(const rapidjson::Value& value) noexcept;
/// The string's text (for a marked number, its text without the marker).
std::string_view text_of(const rapidjson::Value& value) noexcept;

/// A string value's text (no check that it is one).
inline std::string_view view(const rapidjson::Value& value) noexcept { return {value.GetString(), value.GetStringLength()}; }

/// The member `name` of `object`, or nullptr (also when `object` is not an object).
inline const rapidjson::Value* find(const rapidjson::Value& object, std::string_view name) noexcept {
    if (!object.IsObject())
        return nullptr;
    auto found = object.FindMember(rapidjson::StringRef(name.data(), name.size()));
    return found == object.MemberEnd() ? nullptr : &found->value;
}

/// The string member `name` of `object`, if it is a real string (not a number).
inline std::optional<std::string_view> string_member(const rapidjson::Value& object, std::string_view name) noexcept {
    const rapidjson::Value* value = find(object, name);
    if (value == nullptr || !is_string(*value))
        return std::nullopt;
    return view(*value);
}

/// Compact JSON of `value`, numbers written as their original text.
std::string write_json(const rapidjson::Value& value);

/// A string value holding a copy of `text` (a real string: never a marked number).
inline rapidjson::Value string_value(std::string_view text, rapidjson::Document::AllocatorType& alloc) {
    return rapidjson::Value(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc);
}

/// Sets `object`'s member `name` to `value`: in its place if it has one, else added last. Returns the
/// member's value.
rapidjson::Value& set_member(rapidjson::Value& object, std::string_view name, rapidjson::Value value,
                             rapidjson::Document::AllocatorType& alloc);

/// Nesting depth as parse_json counts it (every object and array is a level): a document built or
/// changed in memory (a patch result) is held to max_json_depth as a parsed one is.
unsigned depth_of(const rapidjson::Value& value);

/// Why one operation of a patch failed: thrown inside the patch code (patch.cpp, fhirpath_patch.cpp)
/// and turned there into an `error` that names the operation.
struct operation_failure {
    category kind;
    std::string code;
    std::string message;
};

[[noreturn]] inline void fail(category kind, std::string code, std::string message) {
    throw operation_failure{kind, std::move(code), std::move(message)};
}

template <class Writer>
void write_value(Writer& out, const rapidjson::Value& value);

} // namespace caregate::fhir::detail

#include "json_write.ipp"
