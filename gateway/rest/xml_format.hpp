// FHIR XML at the API's edge (https://hl7.org/fhir/R4/http.html#mime-type): a body sent as XML is
// converted to JSON before any interaction sees it, and an answer in FHIR JSON is converted to XML
// after, when the client asked for XML (fhir_model/xml.hpp does the converting). So every interaction
// reads and writes XML with no code of its own, and JSON stays the one form inside the server.
#pragma once

#include "http/message.hpp"
#include "fhir_model/error.hpp"

namespace caregate::rest {

/// The format a client asked its answer in (Accept, `_format`).
enum class answer_format { json, xml };

/// Whether the body is FHIR XML: `application/fhir+xml`, or for any type but Binary also
/// `application/xml` and `text/xml` (a Binary sent as `application/xml` is a document's own bytes,
/// a CDA document say).
bool is_xml_body(const http::request& req, bool binary);

/// Replaces an XML body by its JSON, with Content-Type application/fhir+json. Errors: as
/// fhir::xml_to_json (400).
fhir::status body_to_json(http::request& req);

/// An answer in FHIR JSON as XML (status and headers kept, Content-Type application/fhir+xml); any
/// other answer (a Binary's own bytes, NDJSON, an empty body) as it is. An answer that cannot be
/// written as XML (a bug) becomes a 500 in JSON.
http::response answer_in_xml(http::response out);

} // namespace caregate::rest
