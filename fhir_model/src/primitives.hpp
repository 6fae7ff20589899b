// The lexical rules of the R4 primitive types (private), hand-written from the regexes in the R4
// StructureDefinitions so that no regex is compiled or run on the write path. Not JSON-type checks:
// validate.cpp decides whether a value must be a JSON string, number or boolean.
#pragma once

#include "definitions.hpp"

#include <string_view>

namespace caregate::fhir::detail {

/// No control characters other than tab, CR and LF (the rule behind every string-based primitive;
/// it also guarantees that no client string carries json.hpp's number marker).
bool is_valid_string(std::string_view text) noexcept;
bool is_valid_id(std::string_view text) noexcept;           ///< [A-Za-z0-9\-\.]{1,64}
bool is_valid_code(std::string_view text) noexcept;         ///< [^\s]+(\s[^\s]+)*
bool is_valid_uri(std::string_view text) noexcept;          ///< \S+ (uri, url, canonical)
bool is_valid_oid(std::string_view text) noexcept;          ///< urn:oid:[0-2](\.(0|[1-9][0-9]*))+
bool is_valid_uuid(std::string_view text) noexcept;         ///< urn:uuid: and lower-case 8-4-4-4-12 hex
bool is_valid_date(std::string_view text) noexcept;         ///< YYYY, YYYY-MM or YYYY-MM-DD, a real day
bool is_valid_date_time(std::string_view text) noexcept;    ///< a date, or a full date, time and zone
bool is_valid_instant(std::string_view text) noexcept;      ///< full date, time with seconds, and zone
bool is_valid_time(std::string_view text) noexcept;         ///< hh:mm:ss(.fraction)
bool is_valid_decimal(std::string_view text) noexcept;      ///< the JSON number grammar
bool is_valid_integer(std::string_view text) noexcept;      ///< 32-bit signed, no fraction or exponent
bool is_valid_positive_int(std::string_view text) noexcept; ///< 1 .. 2^31-1
bool is_valid_unsigned_int(std::string_view text) noexcept; ///< 0 .. 2^31-1
bool is_valid_base64(std::string_view text) noexcept;       ///< groups of 4 base64 characters, white space allowed
bool is_valid_xhtml(std::string_view text) noexcept;        ///< a string that is a <div> element

/// The rule for `kind` applied to the text of a value of the right JSON type.
bool is_valid_primitive(primitive_kind kind, std::string_view text) noexcept;

} // namespace caregate::fhir::detail
