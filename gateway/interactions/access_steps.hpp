// Access steps the interactions share: the policy's 403 for interactions a role may never perform,
// reading a resource only as far as the caller may see it (404 otherwise, the same answer as for a
// resource that does not exist), and the audit records of reads.
#pragma once

#include "access/policy.hpp"
#include "interactions/context.hpp"

#include <string>
#include <vector>

namespace caregate::interactions::detail {

/// The one not-found answer, for what does not exist and for what the caller may not see alike.
fhir::error not_found(std::string_view type, std::string_view id);

/// Answers 403 (and audits the denial) unless the policy could ever allow `act` on the routed type.
/// Returns false when it has answered.
bool check_permitted(context& ctx, access::action act, http::responder& done);

/// The current version, if the caller may see it: not_found when absent or hidden; `deleted` when it
/// is a deletion and the caller could see the version before it (else not_found).
/// `may_break_glass` false: a check that must not open a record by break-glass as a side effect (a
/// transaction's reference check), only see what is open already.
fhir::result<storage::stored_version> visible_current(context& ctx, std::string_view type, std::string_view id,
                                                      bool may_break_glass = true);
/// The same decision for a current version already read (`store.read_current`'s result).
fhir::result<storage::stored_version> visible_current(context& ctx, std::string_view type, std::string_view id,
                                                      fhir::result<storage::stored_version> current,
                                                      bool may_break_glass = true);

/// Audits an access that returned (or was refused) these versions: one record per citizen whose
/// data it touched, or one without a citizen. Appended by the writer within its next commit.
void audit_access(context& ctx, std::string action, const std::vector<const storage::stored_version*>& versions,
                  std::string outcome, std::string detail = {});

/// The audit record a write carries into its transaction.
storage::audit_record write_audit(const context& ctx, std::string action, std::string_view type,
                                  std::string_view id, const std::vector<fhir::citizen_link>& citizens);

} // namespace caregate::interactions::detail
