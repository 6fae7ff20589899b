// The server's provenance marks set on a parsed resource (private to fhir_model): what
// fhir::mark_provenance does to JSON text, done to the DOM that prepare_resource validates, so that a
// write is parsed once.
#pragma once

#include "fhir_model/contribution.hpp"
#include "fhir_model/error.hpp"

#include <string_view>

#include <rapidjson/document.h>

namespace caregate::fhir::detail {

/// Sets the marks on `doc` as mark_provenance(text, marks) does on its text: the refusals first,
/// nothing changed when one refuses. A document that is not a resource (no object, no resourceType
/// string) is left for validation to refuse.
status set_provenance_marks(rapidjson::Document& doc, const provenance_marks& marks);

} // namespace caregate::fhir::detail
