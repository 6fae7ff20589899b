// The steps the write plans (write_plan.hpp) share: reading the body as a resource, If-Match, the
// access checks of a write, the criteria of a conditional interaction, filling in who writes and the
// audit record, and queueing one planned write with its answer sent once the commit is durable.
#pragma once

#include "fhir_model/resource.hpp"
#include "fhir_model/search_query.hpp"
#include "interactions/write_plan.hpp"
#include "interactions/context.hpp"
#include "storage/search.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace caregate::interactions::detail {

using criteria_list = std::vector<std::pair<std::string, std::string>>;

/// The body as a valid resource of the routed type: 400 (no body, bad JSON), 422 (invalid); with the
/// server's provenance marks (prepare_content) for a new resource, or for `changing`.
fhir::result<fhir::prepared_resource> prepare_body(const context& ctx,
                                                   const storage::stored_version* changing = nullptr);

/// Whose contribution what the caller writes is, and so which of the server's marks it carries: a
/// carer's (a carer writing for the citizen, or a change to what a carer contributed, owned by
/// `patient:{nhs}/carer:{nhs}`), a citizen's (their own writing, or a change to what they
/// contributed, owned by `patient:{nhs}`; the ICS's services correcting one), or nobody's.
/// `changing`: the current version, if known.
fhir::contributed_by contribution_of(const context& ctx, const storage::stored_version* changing);

/// `text` (a body, or a patch's result) as a valid resource of the routed type, with the server's
/// provenance marks set first (fhir::mark_provenance, in the same parse: fhir::provenance_marks),
/// for every writer: look-alikes of the marks a client sent are taken out, and a contribution
/// (contribution_of) gets its tag and meta.source, and, when a citizen writes, themselves as
/// performer, author, source or sender (when a carer writes for them, the carer's RelatedPerson);
/// all before validation, so the marks are validated, indexed and stored like the rest. Content
/// naming someone else in those elements is 422.
fhir::result<fhir::prepared_resource> prepare_content(const context& ctx, std::string_view text,
                                                      const storage::stored_version* changing = nullptr);

/// For a carer's writes (`writes`, as queued): a Provenance of each, naming the carer's RelatedPerson
/// acting for the citizen (agent.who, agent.onBehalfOf) and the item written (target, activity
/// CREATE, UPDATE or DELETE), owned and marked as the carer's, to commit in the same transaction
/// after them; none for anyone else. A carer's conditional write is refused (400): its Provenance
/// must name exactly what was written, which only the writer would learn.
fhir::result<std::vector<storage::write_request>> carer_provenances(context& ctx,
                                                                    const std::vector<storage::write_request>& writes);

/// If-Match as a version: nullopt when absent; `malformed` when it is not an ETag.
fhir::result<std::optional<std::int64_t>> if_match(const context& ctx);

/// The policy's 403 for an interaction the caller's role may never perform on the routed type,
/// audited as a denial.
fhir::status check_may_ever(context& ctx, access::action act);

/// The checks a write of `prepared` needs before it is queued: the policy allows this action on this
/// part of the type (403), and the caller may open every citizen it links to, or the resource itself
/// records the caller's organisation's relationship with them (else the same 422 as for a citizen the
/// server does not hold, so that a write cannot probe who is held).
fhir::status check_write(context& ctx, access::action act, const fhir::prepared_resource& prepared);

/// What a resource of a type that points at items (a Provenance) points at (fhir::item_targets): each
/// item a resource the caller may see now (or one `ctx.transaction_writes` names), and none of a
/// type that points at items in turn; else the same 422 as for a citizen not held, naming the
/// element, so that a write cannot probe what exists. Never breaks the glass.
fhir::status check_targets(context& ctx, std::string_view type, std::string_view content);

/// The resource an update by id changes, if it exists: visible to the caller (else 404, audited,
/// exactly as for one that does not exist). nullopt when there is no live resource with that id.
/// Whether the caller's organisation may change it is the writer's check (invariant 10 of
/// storage/src/relational/engine.hpp), made inside the write transaction, so a hidden resource is 404 before
/// anyone asks whose it is.
fhir::result<std::optional<storage::stored_version>> check_target(context& ctx, std::string_view id,
                                                                  const char* action);

/// The criteria of PUT/DELETE/PATCH [type]?criteria: the query parameters but _format, _pretty and
/// those in `own` (the interaction's own parameters, e.g. _cascade).
criteria_list route_criteria(const context& ctx, std::initializer_list<std::string_view> own = {});

/// Parses the criteria of a conditional interaction on the routed type, strictly (never lenient: a
/// dropped parameter would widen what a write matches). 400 when there are none, or when they hold
/// result parameters (_sort, _count, _include, ...), which mean nothing to a write and, ignored,
/// could make a client believe it narrowed a delete.
fhir::result<fhir::search_query> parse_criteria(const context& ctx, const criteria_list& criteria);

/// The condition for the writer: the criteria, and the caller's visibility, so that a resource the
/// caller may not see neither counts as a match nor is changed.
std::shared_ptr<storage::write_condition> make_condition(context& ctx, fhir::search_query query);

/// The criteria as text for the audit record's detail.
std::string criteria_text(const fhir::search_query& query);

/// Fills in who writes (owner rules) and the audit record (`action`; the citizen from the content,
/// or `audit_citizen` when given, e.g. for a delete, which has no content).
void sign_write(context& ctx, storage::write_request& write, std::string action,
                std::string audit_citizen = {}, std::string audit_detail = {});

/// Queues a planned write (or answers its planning error) and answers once the commit is durable.
void submit_and_answer(context& ctx, fhir::result<planned_write> plan, http::responder& done);

} // namespace caregate::interactions::detail
