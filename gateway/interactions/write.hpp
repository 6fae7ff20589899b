// What create, update and delete share: reading the body as a resource, If-Match, and handing a
// write to the store with the answer sent once the commit is durable.
#pragma once

#include "fhir_model/resource.hpp"
#include "rest/context.hpp"

namespace caregate::interactions::detail {

/// The body as a valid resource of the routed type: 400 (no body, bad JSON), 422 (invalid).
fhir::result<fhir::prepared_resource> prepare_body(const rest::context& ctx);

/// If-Match as a version: nullopt when absent; `malformed` when it is not an ETag.
fhir::result<std::optional<std::int64_t>> if_match(const rest::context& ctx);

/// Queues the write; answers with the version (status from the outcome: 201 when created, 200
/// otherwise, 204 for a delete) and Location for creates and updates, or with the error.
void submit_and_answer(rest::context& ctx, storage::write_request write, rest::responder& done);

} // namespace caregate::interactions::detail
