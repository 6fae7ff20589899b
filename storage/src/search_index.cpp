// The search index rows of the current live versions (search_index.hpp): one row per value that
// fhir::extract_search_values finds, in the table of the parameter's type. What is absent is NULL
// (a token without a system, a reference without an identifier), never an empty string standing for
// it, except that a token system given as "" stays "" (FHIR tells "no system" from "empty system").
// Composite and special parameters are not indexed yet: the planner must refuse them.
#include "search_index.hpp"

#include "fhir_model/search_values.hpp"

#include <array>
#include <string>
#include <vector>

namespace caregate::storage::detail {
namespace {

const std::array<std::string, 7> remove_sql = {
    "DELETE FROM search_string WHERE type = ?1 AND id = ?2",
    "DELETE FROM search_token WHERE type = ?1 AND id = ?2",
    "DELETE FROM search_date WHERE type = ?1 AND id = ?2",
    "DELETE FROM search_reference WHERE type = ?1 AND id = ?2",
    "DELETE FROM search_quantity WHERE type = ?1 AND id = ?2",
    "DELETE FROM search_number WHERE type = ?1 AND id = ?2",
    "DELETE FROM search_uri WHERE type = ?1 AND id = ?2",
};

const std::string insert_string_sql =
    "INSERT INTO search_string (type, id, param, normalized, exact) VALUES (?1, ?2, ?3, ?4, ?5)";
const std::string insert_token_sql =
    "INSERT INTO search_token (type, id, param, system, code, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const std::string insert_date_sql = "INSERT INTO search_date (type, id, param, low, high) VALUES (?1, ?2, ?3, ?4, ?5)";
const std::string insert_reference_sql =
    "INSERT INTO search_reference (type, id, param, target_type, target_id, url, identifier_system, identifier_value) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const std::string insert_quantity_sql =
    "INSERT INTO search_quantity (type, id, param, value, value_text, system, code, unit) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const std::string insert_number_sql =
    "INSERT INTO search_number (type, id, param, value, value_text) VALUES (?1, ?2, ?3, ?4, ?5)";
const std::string insert_uri_sql = "INSERT INTO search_uri (type, id, param, uri) VALUES (?1, ?2, ?3, ?4)";

const std::string current_live_versions_sql =
    "SELECT r.type, r.id, v.json FROM resources r JOIN resource_versions v ON v.seq = r.seq WHERE r.deleted = 0";

constexpr std::string_view indexing = "indexing a resource for search";

fhir::error index_fault(std::string_view type, std::string_view id, std::string_view what) {
    std::string diagnostics = "the search index rows of ";
    diagnostics += type;
    diagnostics += '/';
    diagnostics += id;
    diagnostics += " could not be made: ";
    diagnostics += what;
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

/// Binds text, or leaves the parameter unbound (NULL) when `present` is false.
void bind_optional(statement& use, int index, std::string_view text, bool present) {
    if (present)
        use.bind(index, text);
}

/// Inserts the row of one value (none for a composite or special parameter: no table yet).
fhir::status insert_row(connection& db, std::string_view type, std::string_view id, const fhir::search_value& value) {
    const std::string* sql = nullptr;
    switch (value.type) {
    case fhir::search_param_type::string: sql = &insert_string_sql; break;
    case fhir::search_param_type::token: sql = &insert_token_sql; break;
    case fhir::search_param_type::date: sql = &insert_date_sql; break;
    case fhir::search_param_type::reference: sql = &insert_reference_sql; break;
    case fhir::search_param_type::quantity: sql = &insert_quantity_sql; break;
    case fhir::search_param_type::number: sql = &insert_number_sql; break;
    case fhir::search_param_type::uri: sql = &insert_uri_sql; break;
    case fhir::search_param_type::composite:
    case fhir::search_param_type::special: return {}; // not indexed yet (see the top of this file)
    }
    auto prepared = db.prepare(*sql, indexing);
    if (!prepared)
        return std::move(prepared).failure();
    statement insert(*prepared);
    insert.bind(1, type).bind(2, id).bind(3, value.code);
    switch (value.type) {
    case fhir::search_param_type::string:
        insert.bind(4, value.normalized).bind(5, value.text);
        break;
    case fhir::search_param_type::token:
        bind_optional(insert, 4, value.system, value.has_system);
        bind_optional(insert, 5, value.code_value, !value.code_value.empty());
        bind_optional(insert, 6, value.normalized, !value.normalized.empty());
        break;
    case fhir::search_param_type::date:
        insert.bind(4, value.range.begin).bind(5, value.range.end);
        break;
    case fhir::search_param_type::reference:
        bind_optional(insert, 4, value.target_type, !value.target_type.empty());
        bind_optional(insert, 5, value.id, !value.id.empty());
        bind_optional(insert, 6, value.url, !value.url.empty());
        bind_optional(insert, 7, value.system, value.has_system);
        bind_optional(insert, 8, value.code_value, !value.code_value.empty());
        break;
    case fhir::search_param_type::quantity:
        insert.bind_real(4, value.number).bind(5, value.text);
        bind_optional(insert, 6, value.system, value.has_system);
        bind_optional(insert, 7, value.code_value, !value.code_value.empty());
        bind_optional(insert, 8, value.unit, !value.unit.empty());
        break;
    case fhir::search_param_type::number:
        insert.bind_real(4, value.number).bind(5, value.text);
        break;
    case fhir::search_param_type::uri:
        insert.bind(4, value.text);
        break;
    default:
        break;
    }
    if (const int rc = insert.step(); rc != SQLITE_DONE)
        return sqlite_failure(rc, indexing);
    return {};
}

bool is_common(const fhir::search_parameter& parameter) {
    return parameter.base == "Resource" || parameter.base == "DomainResource";
}

} // namespace

fhir::status remove_search_rows(connection& db, std::string_view type, std::string_view id) {
    for (const auto& sql : remove_sql) {
        auto prepared = db.prepare(sql, indexing);
        if (!prepared)
            return std::move(prepared).failure();
        statement remove(*prepared);
        remove.bind(1, type).bind(2, id);
        if (const int rc = remove.step(); rc != SQLITE_DONE)
            return sqlite_failure(rc, indexing);
    }
    return {};
}

fhir::status replace_search_rows(connection& db, std::string_view type, std::string_view id,
                                 std::string_view stamped_json) {
    if (auto removed = remove_search_rows(db, type, id); !removed)
        return removed;
    if (fhir::search_parameters_for(type).empty())
        return {};
    std::vector<fhir::search_value> values;
    // The extraction's own diagnostics could quote content, so they are not passed on.
    if (auto extracted = fhir::extract_search_values(stamped_json, values); !extracted)
        return index_fault(type, id, "search value extraction failed");
    for (const auto& value : values) {
        if (value.parameter == nullptr || (value.parameter->base != type && !is_common(*value.parameter)))
            return index_fault(type, id, "the content is of another resource type");
        if (auto inserted = insert_row(db, type, id, value); !inserted)
            return inserted;
    }
    return {};
}

fhir::status index_current_versions(connection& db) {
    auto prepared = db.prepare(current_live_versions_sql, indexing);
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    int rc;
    while ((rc = query.step()) == SQLITE_ROW) {
        const std::string type = query.text(0);
        const std::string id = query.text(1);
        const std::string json = query.blob(2);
        if (auto indexed = replace_search_rows(db, type, id, json); !indexed)
            return indexed;
    }
    if (rc != SQLITE_DONE)
        return sqlite_failure(rc, indexing);
    return {};
}

} // namespace caregate::storage::detail
