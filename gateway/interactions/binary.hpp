// A Binary through the REST API (https://hl7.org/fhir/R4/binary.html#rest): written raw (the
// document's own bytes and Content-Type) or as FHIR JSON, read raw or as FHIR JSON by Accept. Its
// bytes are kept apart from its JSON (storage::store::binary_bytes), so every path but a read of the
// Binary itself serves it without them, marked SUBSETTED.
//
// Invariants:
//  1. A raw upload becomes the JSON fhir::raw_binary_json makes of its Content-Type and
//     X-Security-Context, validated and access-checked as any Binary written in JSON; its body is
//     moved into the write, never copied.
//  2. A read answers the bytes in the Binary's own contentType unless the client asks for FHIR
//     (`_format`, or an Accept naming a FHIR type or JSON; FHIR XML is the JSON converted at the edge,
//     rest/xml_format.hpp); either way the bytes are read a part at a
//     time into the response, which is the one whole copy held.
//  3. Raw content is served so that a browser never runs it as this origin's page: nosniff, a
//     sandboxing Content-Security-Policy, and as an attachment.
#pragma once

#include "fhir_model/resource.hpp"
#include "interactions/context.hpp"
#include "storage/records.hpp"

#include <functional>
#include <string_view>

namespace caregate::interactions::detail {

/// Whether this create or update of a Binary carries its raw bytes: a Content-Type that is not a
/// FHIR format (FHIR XML has become JSON before the interaction, rest/xml_format.hpp).
bool is_raw_binary_upload(const context& ctx);

/// The Binary a raw upload describes (invariant 1), prepared as prepare_content prepares a body.
fhir::result<fhir::prepared_resource> prepare_raw_binary(const context& ctx, const storage::stored_version* changing);

/// Puts a Binary's bytes into `write`: a raw upload's body (moved from the request), or what
/// `prepared` decoded of `data` (moved). Nothing for other types.
void take_binary_bytes(context& ctx, fhir::prepared_resource& prepared, storage::write_request& write);

/// The 200 answer to a read or vread of a Binary version the caller may see (invariants 2 and 3).
http::response binary_response(const context& ctx, const storage::stored_version& version);

/// For net::listener::takes_binary_body: whether a request line writes a Binary (POST [base]/Binary,
/// PUT [base]/Binary/{id}) under the FHIR base `base_url`.
std::function<bool(std::string_view method, std::string_view target)> binary_upload_lines(std::string_view base_url);

} // namespace caregate::interactions::detail
