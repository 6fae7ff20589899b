// The national data opt-out's rows: see opt_outs.hpp.
#include "opt_outs.hpp"

#include "fhir_model/resource.hpp"

#include <string>
#include <tuple>
#include <vector>

namespace caregate::storage::detail {

fhir::status record_opt_outs_of_live_consents(connection& db) {
    constexpr std::string_view doing = "migrating the schema (opt-outs)";
    static const std::string live_consents =
        "SELECT r.id, v.json FROM resources r JOIN resource_versions v ON v.seq = r.seq "
        "WHERE r.type = 'Consent' AND r.deleted = 0";
    static const std::string insert =
        "INSERT INTO opt_outs (type, id, nhs_number) VALUES ('Consent', ?1, ?2) ON CONFLICT DO NOTHING";
    // Collected first: the inserts run on the same connection as the walk.
    std::vector<std::pair<std::string, std::string>> consents;
    {
        auto prepared = db.prepare(live_consents, doing);
        if (!prepared)
            return std::move(prepared).failure();
        statement query(*prepared);
        int rc;
        while ((rc = query.step()) == step_row)
            consents.emplace_back(query.text(0), query.blob(1));
        if (rc != step_done)
            return storage_failure(rc, doing);
    }
    for (const auto& [id, json] : consents) {
        auto prepared = fhir::prepare_resource(json, "Consent");
        if (!prepared || !prepared->access.research_opt_out)
            continue; // one that no longer validates records nothing: narrower, never wider
        for (const auto& citizen : prepared->citizens) {
            const std::string& consent_id = id; // a named copy: clang 14 cannot capture a structured binding
            if (auto inserted = execute(db, insert, doing,
                                        [&](statement& row) { row.bind(1, consent_id).bind(2, citizen.nhs_number); });
                !inserted)
                return inserted;
        }
    }
    return {};
}

} // namespace caregate::storage::detail
