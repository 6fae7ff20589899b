// The FHIR interactions, one per file, each named after the spec. Each answers through `done`
// exactly once; writes answer from the writer thread once their commit is durable.
#pragma once

#include "interactions/context.hpp"

#include <string_view>
#include <vector>

namespace caregate::interactions {

/// GET [base]/metadata: the provider endpoint's CapabilityStatement, or the patient-facing endpoint's
/// (rest_config::patient_endpoint): the types citizens may read and contribute, with SMART security.
void capabilities(context& ctx, http::responder& done);
/// GET [base]/.well-known/smart-configuration (SMART App Launch 2.0), on the patient-facing endpoint
/// only: 404 on the provider endpoint.
void smart_configuration(context& ctx, http::responder& done);
void read(context& ctx, http::responder& done);
void vread(context& ctx, http::responder& done);
/// Create, update and delete, each also conditionally (by If-None-Exist, or [type]?criteria).
void create(context& ctx, http::responder& done);
void update(context& ctx, http::responder& done);
void delete_(context& ctx, http::responder& done);
/// POST [base] with a transaction or batch Bundle (https://hl7.org/fhir/R4/http.html#transaction).
void bundle(context& ctx, http::responder& done);
/// JSON Patch and FHIRPath Patch, on an id or conditionally.
void patch(context& ctx, http::responder& done);
/// Instance, type and system history: the route says which.
void history(context& ctx, http::responder& done);
/// Search (https://hl7.org/fhir/R4/search.html): type level (GET and POST _search), system level,
/// Patient compartment, and Patient/{nhs}/$everything.
void search_type(context& ctx, http::responder& done);
void search_system(context& ctx, http::responder& done);
void search_compartment(context& ctx, http::responder& done);
void everything(context& ctx, http::responder& done);
/// Composition/{id}/$document: a document Bundle from a stored Composition (interactions/document.cpp).
void document(context& ctx, http::responder& done);
/// Bulk Data export (interactions/bulk_export.cpp): the kick-off at the system, Patient and Group
/// levels, the job's status URL (GET polls, DELETE cancels), and its output files.
void bulk_export(context& ctx, http::responder& done);
void bulk_export_status(context& ctx, http::responder& done);
void bulk_export_file(context& ctx, http::responder& done);
/// The audit log as AuditEvent resources: read by id, and search by patient, agent and date.
void audit_event_read(context& ctx, http::responder& done);
void audit_event_search(context& ctx, http::responder& done);

/// What search_type answers for a type of the record, for /metadata: the official R4 parameters the
/// planner can answer, the _include values of its references, and the _revinclude values of the
/// record's types that point at it.
void describe_search_type(served_type& row, const std::vector<std::string_view>& record_types);
/// What audit_event_search answers: the audit log's own parameters, the only ones it takes.
void describe_audit_event_search(served_type& row, const std::vector<std::string_view>& record_types);

} // namespace caregate::interactions
