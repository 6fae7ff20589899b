// Search value extraction: for each search parameter of a resource's type, the values its expression
// finds, normalised per parameter type, ready to be written to the index tables. Not the tables, not
// query planning and not matching.
#pragma once

#include "fhir_model/date_time.hpp"
#include "fhir_model/error.hpp"
#include "fhir_model/search_parameters.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::fhir {

/// Bounds of an open-ended date range (a Period without start or end).
inline constexpr std::int64_t unbounded_low = std::numeric_limits<std::int64_t>::min();
inline constexpr std::int64_t unbounded_high = std::numeric_limits<std::int64_t>::max();

/// One coding of an Identifier's type (Identifier.type.coding), for the token modifier :of-type.
struct identifier_type_coding {
    std::string system;
    std::string code;
};

/// One value of one parameter. Which fields are set depends on `type`:
/// - string: `text` exact, `normalized` case- and accent-folded with whitespace collapsed;
/// - token: `system`, `code`, `text` (display or CodeableConcept.text, for :text); `has_system` tells
///   "no system" from "empty system"; from an Identifier with a value, `identifier_types` too (for
///   :of-type: the Identifier's value is `code_value`, as written);
/// - date: `range` [begin, end) in µs (unbounded_low/high for open ends), `text` as written;
/// - reference: `target_type` + `id` (relative or absolute to a FHIR type), `url` for an absolute or
///   other reference, `system`/`code` for a logical reference's identifier;
/// - quantity: `text` the exact decimal, `number` the value as double, `system`, `code`, `unit`;
/// - number: `text` the exact decimal and `number`; uri: `text`;
/// - composite: `components`, one value per component, in the parameter's component order.
struct search_value {
    const search_parameter* parameter = nullptr;
    std::string_view code;   ///< the parameter's code
    search_param_type type = search_param_type::token;
    std::string text;
    std::string normalized;
    std::string system;
    bool has_system = false;
    std::string code_value;
    std::string unit;
    time_range range;
    std::string target_type;
    std::string id;
    std::string url;
    double number = 0;
    std::vector<search_value> components;
    /// token from an Identifier: one per coding of its type that has both a system and a code (only
    /// those can meet `type-system|type-code|value`); empty when the Identifier has no value.
    std::vector<identifier_type_coding> identifier_types;
};

/// Case-folds (ASCII and Latin-1 letters), strips accents of Latin-1 letters, collapses whitespace.
std::string normalize_search_string(std::string_view text);

/// Which parameters' values: all, or those with values of their own (a union's are its parts':
/// search_parameter::union_of), which is what an index stores.
enum class search_values_of : std::uint8_t { every_parameter, own_values_only };

/// Parses `canonical_json` and extracts the values of every supported parameter of its type (or,
/// with own_values_only, of every one that is not a union).
/// Errors: malformed JSON, no resourceType, or a type without search parameters (unsupported).
status extract_search_values(std::string_view canonical_json, std::vector<search_value>& out,
                             search_values_of which = search_values_of::every_parameter);
/// As above; throws std::invalid_argument on an error.
std::vector<search_value> extract_search_values(std::string_view canonical_json);

/// Canonical content stamped with the server's parts, and the search values of what was stamped.
struct stamped_values {
    std::string stamped;               ///< exactly what fhir::stamp_resource makes of the content
    std::vector<search_value> values;  ///< what extract_search_values(stamped, ..., which) gives
};
/// stamp_resource(content, id, version_id, last_updated) and the values of the result, from one
/// parse of `content` (the index is made so ahead of the writer: parsing is most of its cost).
/// Errors: as extract_search_values; malformed when `content` is not a resource's JSON.
result<stamped_values> stamp_and_extract(std::string_view content, std::string_view id, std::int64_t version_id,
                                         std::string_view last_updated,
                                         search_values_of which = search_values_of::every_parameter);

/// The values of one parameter against a parsed resource.
std::vector<search_value> extract_search_values(const search_parameter& parameter, const rapidjson::Value& resource);

} // namespace caregate::fhir
