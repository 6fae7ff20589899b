// Category -> HTTP status, and the OperationOutcome response: the one place an error becomes an answer.
#include "http/error_response.hpp"

namespace caregate::http {

unsigned http_status(fhir::category kind) noexcept {
    using fhir::category;
    switch (kind) {
    case category::malformed: return 400;
    case category::invalid: return 422;
    case category::not_found: return 404;
    case category::deleted: return 410;
    case category::conflict: return 409;
    case category::precondition_failed: return 412;
    case category::method_not_allowed: return 405;
    case category::not_acceptable: return 406;
    case category::unsupported_media_type: return 415;
    case category::unsupported: return 400;
    case category::unauthorised: return 401;
    case category::forbidden: return 403;
    case category::too_large: return 413;
    case category::headers_too_large: return 431;
    case category::timeout: return 408;
    case category::busy: return 503;
    case category::fault: return 500;
    }
    return 500;
}

response error_response(const fhir::error& failure) {
    response out;
    out.status = http_status(failure.kind);
    out.set("Content-Type", "application/fhir+json; charset=utf-8");
    if (failure.kind == fhir::category::busy)
        out.set("Retry-After", "1");
    out.body = fhir::operation_outcome_json(failure);
    return out;
}

} // namespace caregate::http
