// What create, update and delete share: reading the body as a resource, If-Match, the access checks
// of a write, and handing a write to the store (with its audit record, committed in the same
// transaction) with the answer sent once the commit is durable.
#pragma once

#include "fhir_model/resource.hpp"
#include "rest/context.hpp"

namespace caregate::interactions::detail {

/// The body as a valid resource of the routed type: 400 (no body, bad JSON), 422 (invalid).
fhir::result<fhir::prepared_resource> prepare_body(const rest::context& ctx);

/// If-Match as a version: nullopt when absent; `malformed` when it is not an ETag.
fhir::result<std::optional<std::int64_t>> if_match(const rest::context& ctx);

/// The checks a write of `prepared` needs before it is queued: the policy allows this action on this
/// part of the type (403), and the caller may open every citizen it links to, or the resource itself
/// records the caller's organisation's relationship with them (else the same 422 as for a citizen the
/// server does not hold, so that a write cannot probe who is held).
fhir::status check_write(rest::context& ctx, access::action act, const fhir::prepared_resource& prepared);

/// Fills in who writes (owner rules) and the audit record, queues the write, and answers with the
/// version (201 when created, 200 otherwise, 204 for a delete) and Location for creates and
/// updates, or with the error. `audit_citizen`, when given, is the citizen the audit record names
/// (a delete has no content to find it in).
void submit_and_answer(rest::context& ctx, storage::write_request write, rest::responder& done,
                       std::string audit_citizen = {});

} // namespace caregate::interactions::detail
