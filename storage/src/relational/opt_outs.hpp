// The national data opt-out as the store records it: for the current live version of a Consent that
// records a citizen's opt-out from the use of their data for planning and research
// (fhir::access_facts::research_opt_out), one opt_outs row per citizen it names, replaced with each
// version and removed with a deletion or an erasure (engine.hpp, invariant 11, as for objections).
// A pseudonymised export leaves those citizens out (storage/src/visibility_rule.hpp, 5).
#pragma once

#include "database.hpp"

namespace caregate::storage::detail {

/// The migration's fill (SQLite schema 12, PostgreSQL schema 9): the rows of the Consents live when
/// it runs, read again from their stored JSON. Idempotent: a row already there stays as it is.
fhir::status record_opt_outs_of_live_consents(connection& db);

} // namespace caregate::storage::detail
