// Reading a transaction or batch Bundle sent to the base URL (https://hl7.org/fhir/R4/http.html#transaction):
// its entries' requests and resources, the resources kept as exact JSON text (numbers as written),
// for the gateway to run each entry as the interaction it names. Knows nothing of HTTP or storage.
#pragma once

#include "fhir_model/error.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::fhir {

/// One Bundle.entry of a transaction or batch.
struct bundle_entry_request {
    std::string full_url;           ///< entry.fullUrl, empty if none
    std::string method;             ///< entry.request.method: GET, HEAD, POST, PUT, DELETE or PATCH
    std::string url;                ///< entry.request.url, relative to the base, e.g. "Patient?identifier=..."
    std::string if_none_exist;      ///< entry.request.ifNoneExist (a query string)
    std::string if_match;           ///< entry.request.ifMatch (an ETag)
    std::string if_none_match;      ///< entry.request.ifNoneMatch
    std::string if_modified_since;  ///< entry.request.ifModifiedSince (an instant)
    std::optional<std::string> resource; ///< entry.resource as compact JSON, numbers as written
};

struct bundle_request {
    std::string type; ///< "transaction" or "batch"
    std::vector<bundle_entry_request> entries;
};

/// Reads `body` as a Bundle of type transaction or batch.
/// Errors: malformed (not JSON, not a Bundle, another Bundle.type, an entry without request.method
/// or request.url, an unknown method, a resource that is not a JSON object, a POST or PUT without a
/// resource), each issue naming the element, e.g. "Bundle.entry[3].request.method"; too_large when
/// the Bundle has more than `max_entries` entries.
result<bundle_request> read_bundle_request(std::string_view body, std::size_t max_entries);

/// "Bundle.entry[i]": the FHIRPath of an entry, for errors that name it.
std::string entry_path(std::size_t index);

} // namespace caregate::fhir
