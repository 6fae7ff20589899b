// The write interactions split in two, so that a transaction Bundle runs exactly the checks a single
// request runs: plan (parse, validate, access checks, the condition, the audit record) and answer
// (from the store's outcome, as https://hl7.org/fhir/R4/http.html says). Between them the caller
// queues the write: alone (store::submit) or with others as one transaction (store::submit_transaction).
// Not the place for HTTP routing or for the store's own checks (ownership, citizens held, conditions),
// which the writer makes inside its transaction.
#pragma once

#include "interactions/context.hpp"
#include "storage/store.hpp"

namespace caregate::interactions::detail {

/// Which interaction a planned write is: it decides the answer's status and some errors' wording.
enum class write_interaction { create, update, patch, remove };

/// A write an interaction has parsed, validated and access-checked, with writer, any_owner, audit
/// record and condition filled in, not yet queued.
struct planned_write {
    storage::write_request write;
    write_interaction interaction = write_interaction::create;
    /// patch: `write.if_match` is the version the patch was computed on, and the client did not name
    /// it (no If-Match): a write that came between the read and the commit is a 409, not a 412.
    bool pinned_by_server = false;
};

/// POST [type], with If-None-Exist for a conditional create (https://hl7.org/fhir/R4/http.html#ccreate).
fhir::result<planned_write> plan_create(context& ctx);
/// PUT [type]/[id], and PUT [type]?criteria (https://hl7.org/fhir/R4/http.html#cond-update).
fhir::result<planned_write> plan_update(context& ctx);
/// DELETE [type]/[id], and DELETE [type]?criteria (https://hl7.org/fhir/R4/http.html#3.1.0.7.1);
/// `_cascade=delete` on a Patient erases the citizen's whole record where the policy allows it.
fhir::result<planned_write> plan_delete(context& ctx);
/// PATCH [type]/[id], and PATCH [type]?criteria (https://hl7.org/fhir/R4/http.html#patch).
fhir::result<planned_write> plan_patch(context& ctx);

/// The answer to one write from its outcome, as the spec says: 201 (created) or 200 with Location,
/// ETag, Last-Modified and the body per Prefer; 200 with the existing resource for a conditional
/// create that matched; 204 (or 200 with an OperationOutcome) for a delete.
http::response write_response(const rest_config& config, const planned_write& plan,
                              const storage::write_outcome& outcome, prefer_return how);

/// The error to answer for a write the store refused, in the interaction's terms: a patch whose
/// version changed under it is a 409 saying so; a Patient that cannot be deleted while its record
/// holds items says what to do instead.
fhir::error write_failure(const planned_write& plan, fhir::error failure);

} // namespace caregate::interactions::detail
