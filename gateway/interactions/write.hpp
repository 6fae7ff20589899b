// The steps the write plans (write_plan.hpp) share: reading the body as a resource, If-Match, the
// access checks of a write, the criteria of a conditional interaction, filling in who writes and the
// audit record, and queueing one planned write with its answer sent once the commit is durable.
#pragma once

#include "fhir_model/resource.hpp"
#include "fhir_model/search_query.hpp"
#include "interactions/write_plan.hpp"
#include "rest/context.hpp"
#include "storage/search.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace caregate::interactions::detail {

using criteria_list = std::vector<std::pair<std::string, std::string>>;

/// The body as a valid resource of the routed type: 400 (no body, bad JSON), 422 (invalid); a
/// citizen's marked as their contribution first (prepare_content).
fhir::result<fhir::prepared_resource> prepare_body(const rest::context& ctx);

/// `text` (a body, or a patch's result) as a valid resource of the routed type. When the caller is a
/// citizen, it is first marked as their contribution (fhir::mark_contribution: the patient-contributed
/// tag, meta.source, themselves as performer, author, source or sender), before validation, so the
/// marks are validated, indexed and stored like the rest; content naming someone else in those
/// elements is 422.
fhir::result<fhir::prepared_resource> prepare_content(const rest::context& ctx, std::string_view text);

/// If-Match as a version: nullopt when absent; `malformed` when it is not an ETag.
fhir::result<std::optional<std::int64_t>> if_match(const rest::context& ctx);

/// The policy's 403 for an interaction the caller's role may never perform on the routed type,
/// audited as a denial.
fhir::status check_may_ever(rest::context& ctx, access::action act);

/// The checks a write of `prepared` needs before it is queued: the policy allows this action on this
/// part of the type (403), only the server marks a patient contribution (a provider's write carrying
/// the patient-contributed tag is 422, unless it changes `changing`, the current version, and that is
/// a citizen's contribution, as when the ICS's services correct one), and the caller may open every
/// citizen it links to, or the resource itself records the caller's organisation's relationship with
/// them (else the same 422 as for a citizen the server does not hold, so that a write cannot probe who
/// is held).
fhir::status check_write(rest::context& ctx, access::action act, const fhir::prepared_resource& prepared,
                         const storage::stored_version* changing = nullptr);

/// What a resource of a type that points at items (a Provenance) points at (fhir::item_targets): each
/// item a resource the caller may see now (or one `ctx.transaction_writes` names), and none of a
/// type that points at items in turn; else the same 422 as for a citizen not held, naming the
/// element, so that a write cannot probe what exists. Never breaks the glass.
fhir::status check_targets(rest::context& ctx, std::string_view type, std::string_view content);

/// The resource an update or delete by id changes, if it exists: visible to the caller (else 404,
/// audited, exactly as for one that does not exist) and contributed by the caller's organisation
/// (else 403, unless the policy lets the caller change any organisation's). nullopt when there is
/// no live resource with that id.
fhir::result<std::optional<storage::stored_version>> check_target(rest::context& ctx, std::string_view id,
                                                                  const char* action);

/// The criteria of PUT/DELETE/PATCH [type]?criteria: the query parameters but _format, _pretty and
/// those in `own` (the interaction's own parameters, e.g. _cascade).
criteria_list route_criteria(const rest::context& ctx, std::initializer_list<std::string_view> own = {});

/// Parses the criteria of a conditional interaction on the routed type, strictly (never lenient: a
/// dropped parameter would widen what a write matches). 400 when there are none, or when they hold
/// result parameters (_sort, _count, _include, ...), which mean nothing to a write and, ignored,
/// could make a client believe it narrowed a delete.
fhir::result<fhir::search_query> parse_criteria(const rest::context& ctx, const criteria_list& criteria);

/// The condition for the writer: the criteria, and the caller's visibility, so that a resource the
/// caller may not see neither counts as a match nor is changed.
std::shared_ptr<storage::write_condition> make_condition(rest::context& ctx, fhir::search_query query);

/// The criteria as text for the audit record's detail.
std::string criteria_text(const fhir::search_query& query);

/// Fills in who writes (owner rules) and the audit record (`action`; the citizen from the content,
/// or `audit_citizen` when given, e.g. for a delete, which has no content).
void sign_write(rest::context& ctx, storage::write_request& write, std::string action,
                std::string audit_citizen = {}, std::string audit_detail = {});

/// Queues a planned write (or answers its planning error) and answers once the commit is durable.
void submit_and_answer(rest::context& ctx, fhir::result<planned_write> plan, rest::responder& done);

} // namespace caregate::interactions::detail
