// FHIR's XML format (https://hl7.org/fhir/R4/xml.html), converted from and to the JSON the server
// stores, by the same R4 definitions that drive validation: no code per type. JSON stays the stored
// form; XML is what a client may send and ask for.
//
// Invariants:
//  1. One resource, two spellings: xml_to_json(json_to_xml(r)) is r for every valid resource r, up to
//     the order of its members (XML's is the definitions' order); numbers keep their exact text;
//     the narrative's XHTML is carried as the text it is.
//  2. What the two formats spell differently is converted by the definitions' types: a primitive is
//     an element with a `value` attribute (its `_name` object's id and extensions beside it); an
//     element's `id` and an Extension's `url` are attributes; a resource inside a resource
//     (`contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`) is an element named
//     by its type; repeated elements are JSON arrays.
//  3. The XML read is bounded before it is parsed: no DTD, no entity declaration, no processing
//     instruction but the XML declaration, nesting at most max_xml_depth, at most max_xml_elements
//     elements; so no entity expansion
//     (a billion laughs) and no external entity (a file or a URL read) can happen.
//  4. Errors name elements by their path, never a value.
#pragma once

#include "fhir_model/error.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace caregate::fhir {

/// The deepest element nesting an XML body may have (as JSON's max_json_depth).
inline constexpr unsigned max_xml_depth = 64;
/// The most elements an XML body may hold: the parsed tree takes a node for each element and each
/// attribute, so this bounds what a body can cost in memory, as JSON's value limit does (a 16 MiB body
/// of `<a/>` would be four million elements).
inline constexpr std::size_t max_xml_elements = 1'000'000;

/// The XML of a JSON resource the server holds or makes (a stored version, a Bundle, an
/// OperationOutcome, the CapabilityStatement). Errors: malformed, when `json` is not a resource the
/// definitions know (a bug in the caller: every resource it is given has been validated or built).
result<std::string> json_to_xml(std::string_view json);

/// The JSON of an XML resource a client sent, to be prepared (validated) as any JSON body.
/// Errors: malformed (not well-formed XML, a DTD or an entity declaration, nested too deep, not in
/// the FHIR namespace, an element the definitions do not know, or out of their order).
result<std::string> xml_to_json(std::string_view xml);

} // namespace caregate::fhir
