// The access decisions that need the store, in the order README's access model gives them:
// authentication (token, certificate, organisation), then per citizen the legitimate relationship or
// break-glass, then per item the objection, labels and the policy's part-of-type grants. Interactions
// ask the guard; nothing else decides who sees what.
//
// A caller who may not see a citizen or an item is told 404, exactly as if it did not exist.
#pragma once

#include "access/policy.hpp"
#include "auth/token.hpp"
#include "storage/search.hpp"
#include "storage/store.hpp"

#include <map>
#include <optional>
#include <string>

namespace caregate::access {

/// What a request presents to authenticate its caller, as the transport received it. Views into the
/// request, valid while it is.
struct credentials {
    std::string_view authorization; ///< the Authorization header
    std::string_view act_for;       ///< X-Act-For: the citizen a carer acts for
    std::string_view client_ods;    ///< the ODS code of a verified client certificate; empty when none
    bool secure = false;            ///< arrived over TLS
};

/// One caller's view of one citizen's record for the length of a request.
struct citizen_view {
    bool open = false;        ///< the caller may open the record
    bool break_glass = false; ///< opened by a break-glass grant this request made (queued, not yet committed)
};

/// What one request has learnt of its caller's view: the citizens it has opened (a map by NHS
/// number), and what the guard derives for the request from them and the store: the caller's
/// visibility by type, and the standings read, so that a request that checks several versions (a
/// vread checks the resource as it is now and the version) builds and reads each once. A citizen
/// added (opened by break-glass, say) or another `now` builds the visibilities afresh.
struct request_views : std::map<std::string, citizen_view> {
    /// By the type a check needs ("*": every type; "": none), built for `memo_now` and `memo_size`
    /// citizens.
    std::map<std::string, storage::search_visibility, std::less<>> visibility_by_type;
    storage::timestamp memo_now = 0;
    std::size_t memo_size = 0;
    storage::standing_memo standings;
};

class guard {
public:
    /// `tokens` verifies the callers of one listener: provider tokens (with client certificates) or,
    /// for the patient-facing endpoint, citizens' tokens (auth::token_kind::citizen), which make
    /// citizen profiles (profile::citizen).
    guard(const policy& rules, const organisation_register& organisations, const auth::token_verifier& tokens,
          storage::store& store);

    /// Authenticates a request: a Bearer token verified against the trusted issuers (401 with
    /// WWW-Authenticate otherwise), the organisation of a presented client certificate equal to the
    /// token's (401 otherwise), and the organisation known (403 otherwise).
    fhir::result<profile> authenticate(const credentials& presented, std::int64_t now_seconds) const;

    /// Opens a citizen's record for the caller: whether it is open (rules for all citizens, a
    /// legitimate relationship, an open break-glass grant; a citizen's own) is the store's decision
    /// by the one visibility rule (storage::store::citizen_open); if it is not, a new break-glass (ETREAT with a reason, by an allowed role): that
    /// grant is recorded (and audited) now. A new break-glass needs `may_break_glass`: only a request
    /// about one named record (read, vread, instance history, a write) may break the glass, never a
    /// request that walks many citizens (type or system history, search). `views` caches answers
    /// within one request.
    fhir::result<citizen_view> open_citizen(const profile& who, const std::string& nhs_number,
                                            const std::string& request_id, storage::timestamp now,
                                            request_views& views,
                                            bool may_break_glass) const;

    /// Whether a version the store holds is visible to the caller: the store decides it
    /// (storage::store::version_visible) by the one visibility rule, the rule every search, include
    /// and history page applies. Only breaking the glass happens here first: a request that asks for
    /// it, where `may_break_glass`, opens the record of each citizen the version links to.
    fhir::result<bool> can_read(const profile& who, const storage::stored_version& version,
                                const std::string& request_id, storage::timestamp now,
                                request_views& views, bool may_break_glass) const;

    /// The caller's visibility as data for the store's rule (storage/search.hpp). A search never
    /// breaks the glass; `break_glass_citizens` lists citizens this request opened by break-glass
    /// already. With `only_type`, the type grants of that type only (enough for one version's
    /// check); an empty one, none (whether a record is open needs no type).
    storage::search_visibility search_visibility(const profile& who, storage::timestamp now,
                                                 const request_views& views,
                                                 std::optional<std::string_view> only_type = std::nullopt) const;

    /// What a population health export of `kind` may take (README, "Population health exports"):
    /// the visibility of policy::export_profile, but a citizen's objection excludes their whole record
    /// (what the requester's organisation wrote too), an item with an owner-only label (very
    /// restricted, V) is shown to nobody (its owner's own export does not take it out either), and a
    /// pseudonymised export leaves out every citizen with the national data opt-out.
    storage::search_visibility export_visibility(const profile& who, export_kind kind, storage::timestamp now) const;
    /// Whether a Group may be exported by an export of `kind` (Group/[id]/$export): the Group
    /// visible to policy::export_profile as a read would find it, except that a member's objection
    /// does not hide the cohort itself (a GP's registered list with one objector is still the list);
    /// what each member's record gives is then export_visibility's to decide, which leaves the
    /// objector out.
    fhir::result<bool> may_export_group(const profile& who, export_kind kind, const storage::stored_version& group,
                                        storage::timestamp now) const;

    const policy& rules() const noexcept { return policy_; }
    storage::store& store() const noexcept { return store_; }
    /// The connected organisations, e.g. to name one by its ODS code in the audit trail.
    const organisation_register& organisations() const noexcept { return organisations_; }

    /// An audit record for this caller and request; the caller fills in the rest.
    static storage::audit_record audit_for(const profile& who, const std::string& request_id, storage::timestamp now,
                                           std::string action);

    /// A carer's active grant to act for a citizen (README, "Carers"): the scope and basis of the
    /// Consent that grants it and the RelatedPerson it names, or nullopt when none is active now; of
    /// several, the one whose scope the policy lists first (policy::proxy_scope_rank). Read from the
    /// citizen's record on every request, so a revocation takes effect on the next one.
    struct proxy_grant {
        std::string scope;
        std::string basis;
        std::string related_person;
    };
    fhir::result<std::optional<proxy_grant>> find_proxy_grant(const std::string& carer, const std::string& citizen,
                                                              storage::timestamp now) const;

private:
    /// search_visibility, built once a request for each `only_type` (request_views).
    const storage::search_visibility& visibility_for(const profile& who, storage::timestamp now, request_views& views,
                                                     std::optional<std::string_view> only_type) const;

    const policy& policy_;
    const organisation_register& organisations_;
    const auth::token_verifier& tokens_;
    storage::store& store_;
};

/// Microseconds since the epoch, now.
storage::timestamp now_micros() noexcept;

} // namespace caregate::access
