// The write rules, written once for every engine: what a write may do and what it makes, decided
// inside the engine's open write transaction through the few operations an engine provides
// (write_transaction), so that a check and its write cannot race. What they keep (the numbers are
// the invariants of storage/src/relational/engine.hpp, which every engine keeps):
//  - a create with fail_if_exists of a live resource is a conflict; a remove of what is not live
//    removes nothing; a create of an id the gateway has just made (id_is_new) reads no current version;
//  - only the owner (or any_owner, or a tool with no ODS code) makes a new version of a live resource,
//    checked before If-Match so that another organisation learns nothing of the version (10);
//  - every citizen a create or update names is held (a live Patient), but a Patient naming itself;
//  - an update whose content and access facts are those of the current version makes no version;
//  - a Patient is removed only with its whole record, by a full erasure, which is final (21, 25);
//  - a condition is decided by a search in the transaction, counting only what the caller may see,
//    and a conditional delete removes only what the caller's role may delete (19);
//  - a transaction applies its removes and conditions first, in order, replaces a gateway-assigned
//    UUID a condition chose another id for in every other write's content, then its creates and
//    updates, Patients first; its first failure undoes all of it (20);
//  - a write's audit record says "denied" when the access rules refused it, "failed" when anything
//    else undid it (14).
#pragma once

#include "storage/search.hpp"
#include "storage/store.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace caregate::storage {

/// A resource named by type and id.
using resource_name = std::pair<std::string, std::string>;

/// What the write rules need of an engine, inside its open write transaction (on its writer).
class write_transaction {
public:
    virtual ~write_transaction() = default;
    /// The current version of type/id (live or a deletion marker), or nothing if it never existed.
    virtual fhir::result<std::optional<stored_version>> current(std::string_view type, std::string_view id) = 0;
    /// The live resources of `condition`'s search the caller may see, at most `limit`.
    virtual fhir::result<std::vector<stored_version>> matches(const write_condition& condition, unsigned limit) = 0;
    /// The live resources other than the Patient that link to a citizen.
    virtual fhir::result<std::vector<resource_name>> record_items(std::string_view nhs_number) = 0;
    /// Whether the citizen is held: a live Patient.
    virtual fhir::result<bool> citizen_held(std::string_view nhs_number) = 0;
    /// Whether `request` would record for access control (organisation links, objection) exactly
    /// what `current` does now.
    virtual fhir::result<bool> same_access(const write_request& request, const stored_version& current) = 0;
    /// Makes the version `request` asks for, after `current`: version current + 1 (or 1), a
    /// lastUpdated after every other, the owner kept (or the writer's for a new resource), the
    /// citizens, labels and facets (a deletion keeps those of the version it deletes), its index
    /// rows and access rows.
    virtual fhir::result<write_outcome> write_version(const write_request& request,
                                                      const std::optional<stored_version>& current) = 0;
    /// Removes every trace of the citizen's record, `record` and the Patient among it (an erasure
    /// is final), after each has been marked deleted.
    virtual fhir::status erase_citizen(std::string_view nhs_number, const std::vector<resource_name>& record) = 0;
};

class write_rules {
public:
    explicit write_rules(write_transaction& engine) : engine_(engine) {}

    /// A write with its condition, if any: resolved by a search inside the open transaction, then applied.
    fhir::result<write_outcome> apply_request(const write_request& request);
    /// The writes of a transaction, all or none (store.hpp, submit_transaction); `failed` is set to
    /// the index of the write being applied, so that on error it names the one that failed.
    fhir::result<std::vector<write_outcome>> apply_transaction(const std::vector<write_request>& writes,
                                                               std::size_t& failed);

private:
    /// A write's condition resolved: the unconditional writes to make, or the match a conditional
    /// create found (nothing to write).
    struct resolution {
        std::vector<write_request> writes;
        std::optional<stored_version> matched;
    };
    fhir::result<resolution> resolve(const write_request& request);
    /// apply, with an exception (a bug) turned into a fault that names no content.
    fhir::result<write_outcome> apply_guarded(const write_request& request);
    fhir::result<write_outcome> apply(const write_request& request);
    fhir::status check_citizens(const write_request& request);

    write_transaction& engine_;
};

/// A write's audit record once it has succeeded: the ids it wrote (a condition can choose another
/// than the request's, a conditional delete or an erasure several), and a conditional create that
/// wrote nothing says so.
audit_record success_record(audit_record record, const write_outcome& outcome);
/// A write's audit record once it has been undone. `cause` is the write's own failure, or null when
/// it was undone only because another write of its transaction failed. A refusal by the access rules
/// (the owner rule, a role that may not delete what a condition matched) is a denial; anything else
/// (a conflict, a stale If-Match, a storage fault) a failure.
audit_record undone_record(audit_record record, const fhir::error* cause);

} // namespace caregate::storage
