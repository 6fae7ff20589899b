// The seam between the network and the application: a request and a response as plain values, and
// the handler signature. The network layer (gateway/net) fills a request from the wire and writes the
// response back; everything above it knows nothing of sockets, TLS or Beast.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::http {

struct header_field {
    std::string name;
    std::string value;
};

/// Case-insensitive lookup over a header list; empty when absent.
std::string_view find_header(const std::vector<header_field>& headers, std::string_view name) noexcept;

struct request {
    std::string method; ///< "GET", "POST", ...
    std::string target; ///< origin-form: path and query, as received
    std::vector<header_field> headers;
    std::string body;
    /// The ODS code from the verified client certificate, empty when none was presented.
    std::string client_ods;
    bool secure = false; ///< arrived over TLS

    std::string_view header(std::string_view name) const noexcept { return find_header(headers, name); }
};

struct response {
    unsigned status = 200;
    std::vector<header_field> headers;
    std::string body;

    std::string_view header(std::string_view name) const noexcept { return find_header(headers, name); }
    /// Replaces any header of that name.
    void set(std::string_view name, std::string value);
};

/// A response of `status` whose body is plain UTF-8 text (for the pages that are not FHIR: the admin
/// listener's, the citizen app's refusals).
response plain_text(unsigned status, std::string body);

/// A request target with the characters clients commonly leave unencoded in a query (`|` above
/// all, as in `identifier=system|value`) percent-encoded, so that a strict URL grammar reads it.
std::string encode_loose_target(std::string_view target);

/// Called exactly once with the response, on any thread.
using responder = std::function<void(response)>;
/// Handles one request. May answer before returning (reads) or later from another thread (writes,
/// which answer once their commit is durable).
using handler = std::function<void(request, responder)>;

} // namespace caregate::http
