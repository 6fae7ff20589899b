// See relink_citizens.hpp.
#include "relink_citizens.hpp"

#include "list_column.hpp"
#include "search_index.hpp"

#include "fhir_model/resource.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace caregate::storage::detail {

namespace {

constexpr std::string_view relinking = "migrating the schema (citizens of a type)";

/// A version that no longer validates: the NHS number of its `patient` reference, if it has one.
std::vector<std::string> patient_of(const std::string& json) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsObject())
        return {};
    auto patient = doc.FindMember("patient");
    if (patient == doc.MemberEnd() || !patient->value.IsObject())
        return {};
    auto reference = patient->value.FindMember("reference");
    if (reference == patient->value.MemberEnd() || !reference->value.IsString())
        return {};
    const std::string_view text(reference->value.GetString(), reference->value.GetStringLength());
    if (!text.starts_with("Patient/") || text.size() == 8)
        return {};
    return {std::string(text.substr(8))};
}

} // namespace

fhir::status relink_citizens_of_type(connection& db, std::string_view type) {
    const std::string batch_sql = "SELECT seq, deleted, json FROM resource_versions WHERE type = ?1 AND seq > ?2 "
                                  "ORDER BY seq LIMIT 1000";
    const std::string update_sql = "UPDATE resource_versions SET citizens = ?2 WHERE seq = ?1";
    const std::string type_text(type); // bound by reference: it must outlive each statement's steps
    std::int64_t after = 0;
    for (;;) {
        std::vector<std::tuple<std::int64_t, bool, std::string>> batch;
        {
            auto prepared = db.prepare(batch_sql, relinking);
            if (!prepared)
                return std::move(prepared).failure();
            statement query(*prepared);
            query.bind(1, type_text).bind(2, after);
            int rc;
            while ((rc = query.step()) == step_row)
                batch.emplace_back(query.integer(0), query.integer(1) != 0, query.blob(2));
            if (rc != step_done)
                return storage_failure(rc, relinking);
        }
        if (batch.empty())
            break;
        for (const auto& row : batch) {
            const std::int64_t seq = std::get<0>(row);
            if (std::get<1>(row))
                continue; // a deletion marker: below, from the version it deletes
            const std::string& json = std::get<2>(row);
            std::vector<std::string> citizens;
            if (auto prepared = fhir::prepare_resource(json, type); prepared.ok()) {
                for (const auto& link : prepared->citizens)
                    citizens.push_back(link.nhs_number);
            } else {
                citizens = patient_of(json);
            }
            const std::string joined = join_lines(citizens);
            if (auto updated = execute(db, update_sql, relinking,
                                       [&](statement& update) { update.bind(1, seq).bind(2, joined); });
                !updated)
                return updated;
            if (auto recorded = insert_version_citizens(db, seq, citizens); !recorded)
                return recorded;
        }
        after = std::get<0>(batch.back());
    }
    // Deletion markers take the citizens of the version each deletes.
    return execute(db,
                   "UPDATE resource_versions SET citizens = coalesce((SELECT p.citizens FROM resource_versions p "
                   "WHERE p.type = resource_versions.type AND p.id = resource_versions.id "
                   "AND p.version_id = resource_versions.version_id - 1), '') WHERE type = ?1 AND deleted = 1",
                   relinking, [&](statement& update) { update.bind(1, type_text); });
}

} // namespace caregate::storage::detail
