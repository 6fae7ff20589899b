// The one place where an error's category becomes an HTTP status and an OperationOutcome body.
#pragma once

#include "fhir_model/error.hpp"
#include "http/message.hpp"

namespace caregate::http {

/// The HTTP status for a category.
unsigned http_status(fhir::category kind) noexcept;

/// A complete error response: status, `Content-Type: application/fhir+json`, the OperationOutcome.
response error_response(const fhir::error& failure);

} // namespace caregate::http
