// Cross-origin requests on the patient-facing endpoint, as SMART App Launch 2.2 asks of a server that
// browser apps call: the discovery documents (`.well-known/smart-configuration`, `metadata`) open to
// any origin; the rest of the FHIR API only to the origins the operator names (--cors-origins).
// The provider endpoint, which record systems call server to server, sends no CORS header at all.
//
// Invariants (tests/gateway/cors_test.cpp):
//  1. An origin not named gets no Access-Control-Allow-* header on any answer but discovery's, so a
//     browser hands it nothing the endpoint says, its preflights included (which are refused, 403).
//  2. `*` is sent only for the discovery documents, and Access-Control-Allow-Credentials never: the
//     API is called with a bearer token in `Authorization`, never with cookies.
//  3. A named origin is echoed exactly as the browser sent it, with `Vary: Origin` on every answer
//     of the API, so that a cache never serves one origin's answer to another.
//  4. A preflight is answered by what it asks for: a method the API has and request headers it reads;
//     anything else is refused (403) without CORS headers.
#pragma once

#include "fhir_model/error.hpp"
#include "http/message.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::rest {

/// The origins a browser app may call the API from: each `scheme://host[:port]`, as browsers send it.
struct cors_origins {
    std::vector<std::string> allowed;

    /// Reads a comma-separated list (--cors-origins). Errors: an entry that is not an http(s) origin
    /// (a path, a query, user info, a trailing slash), or `*`.
    static fhir::result<cors_origins> parse(std::string_view list);
    bool allows(std::string_view origin) const;
};

/// What CORS asks of one request on the patient-facing endpoint, whose FHIR base path is `base_path`.
class cors_answer {
public:
    cors_answer(const cors_origins& origins, std::string_view base_path, const http::request& req);

    /// The answer to a preflight (OPTIONS with Origin and Access-Control-Request-Method); nothing
    /// when the request is not one and goes on to the API.
    std::optional<http::response> preflight() const;
    /// Adds the headers the answer to an actual request carries.
    void decorate(http::response& out) const;

private:
    bool discovery_ = false;  ///< the target is one of the discovery documents
    bool preflight_ = false;
    bool allowed_ = false;    ///< the origin is named (or the target is discovery)
    std::string origin_;      ///< as the request sent it; empty when it sent none
    std::string method_;      ///< Access-Control-Request-Method
    std::string headers_;     ///< Access-Control-Request-Headers
};

} // namespace caregate::rest
