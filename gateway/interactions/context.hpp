// What an interaction handler is given: the request, where it was routed, its query parameters, the
// store, the configuration and what the server serves. Plus the helpers every interaction shares to
// answer. The router (gateway/rest) fills a context and calls a handler; nothing here knows routes.
#pragma once

#include "access/guard.hpp"
#include "fhir_model/error.hpp"
#include "http/message.hpp"
#include "interactions/served.hpp"
#include "storage/store.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace caregate::interactions {

/// What `/.well-known/smart-configuration` tells apps of the patient-facing endpoint
/// (https://hl7.org/fhir/smart-app-launch/conformance.html): the identity provider the citizens log in
/// with (NHS login in production; the development issuer's placeholders otherwise).
struct smart_settings {
    std::string issuer = "caregate-dev";
    std::string jwks_uri;
    std::string authorization_endpoint;
    std::string token_endpoint;
};

/// Settings of the FHIR REST layer, each with its reason.
struct rest_config {
    /// The URL the server calls itself in links and Location headers; its path is the FHIR base path.
    std::string base_url = "https://localhost:8443/fhir";
    /// Page size when a client gives no _count: large enough for a record's worth of history.
    unsigned default_count = 50;
    /// Largest page served; a larger _count is reduced to this and the `next` link carries on.
    unsigned max_count = 1000;
    /// DELETE [type]?criteria matching several resources: off (the spec's "single"), such a delete is
    /// 412 and nothing changes, so that a criteria mistake cannot remove a swathe of the record; on
    /// ("multiple"), every match is removed, up to `max_conditional_deletes`.
    bool conditional_delete_multiple = false;
    /// Most resources one conditional delete removes; more matches answer 412 and remove nothing.
    unsigned max_conditional_deletes = 100;
    /// Most entries in one transaction or batch Bundle; more answer 413 and nothing is done. A
    /// discharge is tens of entries, a citizen's whole record a few hundred; 10,000 bounds the work
    /// (and the writer's time) one request can ask for.
    std::size_t max_bundle_entries = 10000;
    /// This application is the patient-facing endpoint: callers are citizens and carers with NHS
    /// login-shaped tokens (auth::token_kind::citizen), it serves `.well-known/smart-configuration`
    /// and its own CapabilityStatement, and each caller sees one record (README, "For app developers").
    bool patient_endpoint = false;
    smart_settings smart;
    /// The patient-facing endpoint: the origins browser apps may call its API from (rest/cors.hpp,
    /// checked by rest::cors_origins::parse); the discovery documents answer any origin.
    std::vector<std::string> cors_origins;
    /// The patient-facing endpoint's CapabilityStatement: the types a P9 citizen may read, and
    /// create, in their own record (access::policy::patient_types).
    std::vector<std::string> patient_readable_types;
    std::vector<std::string> patient_creatable_types;
    /// ... and update (and patch), and delete: their own contributions only.
    std::vector<std::string> patient_updatable_types;
    std::vector<std::string> patient_deletable_types;
};

/// A request url relative to the base, routed: where it goes and its decoded query parameters.
struct routed_url {
    route where;
    std::vector<std::pair<std::string, std::string>> params;
};

/// Prefer: return=... (https://hl7.org/fhir/R4/http.html#ops)
enum class prefer_return { representation, minimal, operation_outcome };

struct context {
    http::request req;
    route where;
    std::vector<std::pair<std::string, std::string>> params; ///< decoded query parameters, in order
    storage::store& store;
    const rest_config& config;
    std::string request_id;
    const access::guard* guard = nullptr; ///< set for every interaction but capabilities
    std::optional<access::profile> who;   ///< the authenticated caller (absent for capabilities)
    storage::timestamp now = 0;           ///< when the request arrived, µs
    access::request_views views; ///< citizens opened in this request, and what the guard derived
    /// Runs another request as the application would, answering through its responder: a batch's
    /// entries, a transaction's reads after its commit. Set by the application.
    std::function<void(http::request, http::responder)> subrequest;
    /// Runs work later on a thread of the application's own (never the writer's): what a write's
    /// callback must do that reads the store. Set by the application.
    std::function<void(std::function<void()>)> defer;
    /// "Type/id" of every resource the transaction being planned writes, when this context plans one
    /// of its entries (null otherwise): what its entries may point at before it exists. The
    /// transaction owns the set and outlives every entry's context; each entry only looks it up.
    const std::set<std::string>* transaction_writes = nullptr;
    /// Routes a url relative to the base as the router does (a Bundle entry's request.url). Errors:
    /// malformed (not a relative URL), not_found (no such path or type), method_not_allowed. Set by
    /// the application.
    std::function<fhir::result<routed_url>(std::string_view method, std::string_view url)> route_url{};
    /// What the server serves (the route table's own description). Set by the application.
    const service_description* served = nullptr;

    /// The value of a parameter given once; nullopt if absent.
    std::optional<std::string> param(std::string_view name) const;
    /// Fails with `unsupported` (400) naming the first parameter not in `allowed` (besides _format and
    /// _pretty, which only shape the output). Never ignore a parameter: it could widen a result.
    fhir::status only_params(std::initializer_list<std::string_view> allowed) const;
    prefer_return prefer() const;
};

/// `W/"<n>"` for a version.
std::string etag(std::int64_t version_id);
/// Parses `W/"<n>"` (or `"<n>"`); nullopt if it is not one.
std::optional<std::int64_t> parse_etag(std::string_view text) noexcept;

/// A response carrying a stored version: status, Content-Type, ETag, Last-Modified, and the body as
/// `how` says (the stored bytes as they are, nothing, or an OperationOutcome). `location` adds
/// Location: {base}/{type}/{id}/_history/{vid} (creates and updates).
http::response version_response(const rest_config& config, unsigned status, const storage::stored_version& version,
                          prefer_return how, bool location);

/// A 200 response with already-serialised FHIR JSON (a Bundle, the CapabilityStatement).
http::response json_response(std::string body);

/// A random (version 4) UUID, from OpenSSL's RAND_bytes: new ids, request ids.
std::string random_uuid();
/// True for the 8-4-4-4-12 hex form.
bool is_uuid(std::string_view text) noexcept;

} // namespace caregate::interactions
