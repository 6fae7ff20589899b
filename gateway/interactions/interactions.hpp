// The FHIR interactions, one per file, each named after the spec. Each answers through `done`
// exactly once; writes answer from the writer thread once their commit is durable.
#pragma once

#include "rest/context.hpp"

namespace caregate::interactions {

/// GET [base]/metadata: the provider endpoint's CapabilityStatement, or the patient-facing endpoint's
/// (rest_config::patient_endpoint): the types citizens may read and contribute, with SMART security.
void capabilities(rest::context& ctx, rest::responder& done);
/// GET [base]/.well-known/smart-configuration (SMART App Launch 2.0), on the patient-facing endpoint
/// only: 404 on the provider endpoint.
void smart_configuration(rest::context& ctx, rest::responder& done);
void read(rest::context& ctx, rest::responder& done);
void vread(rest::context& ctx, rest::responder& done);
/// Create, update and delete, each also conditionally (by If-None-Exist, or [type]?criteria).
void create(rest::context& ctx, rest::responder& done);
void update(rest::context& ctx, rest::responder& done);
void delete_(rest::context& ctx, rest::responder& done);
/// POST [base] with a transaction or batch Bundle (https://hl7.org/fhir/R4/http.html#transaction).
void bundle(rest::context& ctx, rest::responder& done);
/// JSON Patch and FHIRPath Patch, on an id or conditionally.
void patch(rest::context& ctx, rest::responder& done);
/// Instance, type and system history: the route says which.
void history(rest::context& ctx, rest::responder& done);
/// Search (https://hl7.org/fhir/R4/search.html): type level (GET and POST _search), system level,
/// Patient compartment, and Patient/{nhs}/$everything.
void search_type(rest::context& ctx, rest::responder& done);
void search_system(rest::context& ctx, rest::responder& done);
void search_compartment(rest::context& ctx, rest::responder& done);
void everything(rest::context& ctx, rest::responder& done);
/// The audit log as AuditEvent resources: read by id, and search by patient, agent and date.
void audit_event_read(rest::context& ctx, rest::responder& done);
void audit_event_search(rest::context& ctx, rest::responder& done);

} // namespace caregate::interactions
