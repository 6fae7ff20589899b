// The search index rows of each version (search_index.hpp): one row per value that
// fhir::extract_search_values finds, in the table of the parameter's type, keyed by the version's
// seq and open (until_seq NULL) until a later version closes it. What is absent is NULL (a token
// without a system, a reference without an identifier), never an empty string standing for it,
// except that a token system given as "" stays "" (FHIR tells "no system" from "empty system").
// Composite parameters go to search_composite (two components); special parameters are not
// indexed: the planner must refuse them. A token value from an Identifier with a typed coding also
// gets one search_token row per coding for :of-type (migration 5): param "<code>:of-type", the
// coding's system and code, and the Identifier's value as written in `text`.
#include "search_index.hpp"

#include "binary_parts.hpp"

#include "list_column.hpp"

#include "fhir_model/resource.hpp"
#include "fhir_model/search_values.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace caregate::storage::detail {
namespace {

/// How a table's rows are keyed: as migration 3 made the tables (by the resource, current versions
/// only; its frozen fill alone writes them) or as migration 4 makes them (by the version's seq).
enum class layout { by_resource, by_version };

/// Which of a version's rows to insert. The writer inserts all of them; a migration's fill inserts
/// the rows its migration brought, so the fills of migrations 3 and 4 stay as released and
/// migration 5's adds the :of-type rows alone.
enum class row_kinds { all, before_of_type, of_type_only };

/// One index table: the parameter type it holds and the columns that follow (key, key, param).
struct index_table {
    fhir::search_param_type type;
    const char* name;
    const char* value_columns;
    int value_count;
};

const std::array<index_table, 8> tables = {{
    {fhir::search_param_type::string, "search_string", "normalized, exact", 2},
    {fhir::search_param_type::token, "search_token", "system, code, text", 3},
    {fhir::search_param_type::date, "search_date", "low, high", 2},
    {fhir::search_param_type::reference, "search_reference",
     "target_type, target_id, url, identifier_system, identifier_value", 5},
    {fhir::search_param_type::quantity, "search_quantity", "value, value_text, system, code, unit", 5},
    {fhir::search_param_type::number, "search_number", "value, value_text", 2},
    {fhir::search_param_type::uri, "search_uri", "uri", 1},
    // Migration 4 only.
    {fhir::search_param_type::composite, "search_composite",
     "c1_system, c1_code, c2_system, c2_code, c2_value, c2_low, c2_high, c2_text", 8},
}};

/// The SQL of each table, made once from `tables` (so the statement cache sees the same text).
struct table_sql {
    std::string insert_by_resource; ///< migration 3's layout: ?1 type, ?2 id, ?3 param, values
    std::string insert_by_version;  ///< ?1 seq, ?2 type, ?3 param, values
    std::string close;              ///< ?1 the superseded version's seq, ?2 the closing version's
    std::string largest_purgeable;  ///< ?1 horizon: the until_seq of the purge_batch_rows-th oldest closed row
    std::string purge;              ///< ?1 largest_purgeable's answer: every closed row up to it
    std::string erase;              ///< ?1 an erased version's seq: all its rows, open or closed
    /// [n - 1]: n rows at once, by version, each row's parameters numbered on from the row before's
    /// (the writer's insert_version_rows).
    std::vector<std::string> insert_rows_by_version;
};

/// Most rows one INSERT of the writer carries: one statement's work (cursors opened on the table and
/// its indexes, a step, a reset) for many rows; 32 rows of the widest table bind 352 parameters.
constexpr std::size_t rows_per_insert = 32;

std::array<table_sql, tables.size()> make_sql() {
    std::array<table_sql, tables.size()> all;
    for (std::size_t i = 0; i < tables.size(); ++i) {
        const std::string name = tables[i].name;
        std::string values = std::string(", param, ") + tables[i].value_columns + ") VALUES (?1, ?2, ?3";
        for (int column = 0; column < tables[i].value_count; ++column)
            values += ", ?" + std::to_string(4 + column);
        values += ")";
        // OR FAIL: a failing one-row insert changes nothing either way, and unlike the default (ABORT)
        // it needs no statement journal, which inside the writer's savepoints was a fifth of its time.
        all[i].insert_by_resource = "INSERT OR FAIL INTO " + name + " (type, id" + values;
        all[i].insert_by_version = "INSERT OR FAIL INTO " + name + " (seq, type" + values;
        // OR FAIL as above: no statement journal; a row that fails fails the write (its savepoint).
        const int columns = 3 + tables[i].value_count;
        std::string rows = "INSERT OR FAIL INTO " + name + " (seq, type, param, " + tables[i].value_columns + ") VALUES ";
        for (std::size_t n = 1; n <= rows_per_insert; ++n) {
            rows += n == 1 ? "(" : ", (";
            for (int column = 0; column < columns; ++column)
                rows += (column == 0 ? "?" : ", ?") + std::to_string(static_cast<int>(n - 1) * columns + column + 1);
            rows += ")";
            all[i].insert_rows_by_version.push_back(rows);
        }
        // The _by_version index: one seek to the version's rows.
        all[i].close = "UPDATE OR FAIL " + name + " SET until_seq = ?2 WHERE seq = ?1 AND until_seq IS NULL";
        // The partial _closed index: a range scan from the oldest closed row.
        const std::string oldest_closed = "SELECT {} FROM " + name +
                                          " WHERE until_seq IS NOT NULL AND until_seq <= ?1 ORDER BY until_seq LIMIT " +
                                          std::to_string(purge_batch_rows);
        auto selecting = [&](const std::string& what) {
            std::string sql = oldest_closed;
            return sql.replace(sql.find("{}"), 2, what);
        };
        all[i].largest_purgeable = "SELECT max(until_seq) FROM (" + selecting("until_seq") + ") purgeable";
        // By until_seq, not by row identity: the same range of the _closed index on both engines,
        // with no index on a row id to keep up (PostgreSQL has none since its schema 6). The rows
        // of the last closing version go together, so a purge may pass purge_batch_rows by the rest
        // of one version's rows.
        all[i].purge = "DELETE FROM " + name + " WHERE until_seq IS NOT NULL AND until_seq <= ?1";
        all[i].erase = "DELETE FROM " + name + " WHERE seq = ?1";
    }
    return all;
}

const std::array<table_sql, tables.size()> sql_of_table = make_sql();

/// The place in `tables` of the table holding parameters of `type`; tables.size() for none (special).
std::size_t table_of(fhir::search_param_type type) {
    for (std::size_t i = 0; i < tables.size(); ++i)
        if (tables[i].type == type)
            return i;
    return tables.size();
}

const std::string current_live_versions_sql =
    "SELECT r.type, r.id, r.seq, v.json FROM resources r JOIN resource_versions v ON v.seq = r.seq "
    "WHERE r.deleted = 0";
const std::string live_version_citizens_sql =
    "SELECT seq, citizens FROM resource_versions WHERE deleted = 0 AND citizens <> ''";
const std::string insert_version_citizen_sql =
    "INSERT OR IGNORE INTO version_citizens (seq, nhs_number) VALUES (?1, ?2)";
const std::string insert_version_target_sql =
    "INSERT OR IGNORE INTO version_targets (seq, type, id) VALUES (?1, ?2, ?3)";
const std::string live_versions_of_type_sql = "SELECT seq, json FROM resource_versions WHERE type = ?1 AND deleted = 0";
const std::string raise_horizon_sql = "UPDATE search_horizon SET purged_through = max(purged_through, ?1)";

constexpr std::string_view indexing = "indexing a resource for search";
constexpr std::string_view closing = "closing a version's search index rows";
constexpr std::string_view purging = "purging closed search index rows";
constexpr std::string_view citing = "recording a version's citizens";

fhir::error index_fault(std::string_view type, std::string_view id, std::string_view what) {
    std::string diagnostics = "the search index rows of ";
    diagnostics += type;
    diagnostics += '/';
    diagnostics += id;
    diagnostics += " could not be made: ";
    diagnostics += what;
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

/// Whose rows are being written: the key columns of the layout.
struct row_owner {
    layout keyed = layout::by_version;
    std::int64_t seq = 0; ///< by_version only
    std::string_view type;
    std::string_view id;
};


/// Binds text, or leaves the parameter unbound (NULL) when `present` is false.
void bind_optional(statement& use, int index, std::string_view text, bool present) {
    if (present)
        use.bind(index, text);
}

/// The first component of a composite as search_composite holds it in c1_code: a token's code, or
/// for a reference "Type/id" (its URL when it names no type and id). Empty: NULL.
std::string first_component_code(const fhir::search_value& first) {
    if (first.type == fhir::search_param_type::token)
        return first.code_value;
    if (!first.target_type.empty() && !first.id.empty())
        return first.target_type + "/" + first.id;
    return first.url;
}

/// True for the composites search_composite can hold: two components, the first a token or a
/// reference, the second a token, quantity, date or string.
bool fits_composite_table(const fhir::search_value& value) {
    if (value.components.size() != 2)
        return false;
    const auto first = value.components[0].type;
    const auto second = value.components[1].type;
    return (first == fhir::search_param_type::token || first == fhir::search_param_type::reference) &&
           (second == fhir::search_param_type::token || second == fhir::search_param_type::quantity ||
            second == fhir::search_param_type::date || second == fhir::search_param_type::string);
}

/// Binds the value columns of `value`'s row (parameters at + 4 on; the key columns and param are
/// at + 1 to at + 3). `c1_code` holds bound text and must outlive the step.
void bind_value_columns(statement& insert, int at, const fhir::search_value& value, std::string& c1_code) {
    switch (value.type) {
    case fhir::search_param_type::string:
        insert.bind(at + 4, value.normalized).bind(at + 5, value.text);
        break;
    case fhir::search_param_type::token:
        bind_optional(insert, at + 4, value.system, value.has_system);
        bind_optional(insert, at + 5, value.code_value, !value.code_value.empty());
        bind_optional(insert, at + 6, value.normalized, !value.normalized.empty());
        break;
    case fhir::search_param_type::date:
        insert.bind(at + 4, value.range.begin).bind(at + 5, value.range.end);
        break;
    case fhir::search_param_type::reference:
        bind_optional(insert, at + 4, value.target_type, !value.target_type.empty());
        bind_optional(insert, at + 5, value.id, !value.id.empty());
        bind_optional(insert, at + 6, value.url, !value.url.empty());
        bind_optional(insert, at + 7, value.system, value.has_system);
        bind_optional(insert, at + 8, value.code_value, !value.code_value.empty());
        break;
    case fhir::search_param_type::quantity:
        insert.bind_real(at + 4, value.number).bind(at + 5, value.text);
        bind_optional(insert, at + 6, value.system, value.has_system);
        bind_optional(insert, at + 7, value.code_value, !value.code_value.empty());
        bind_optional(insert, at + 8, value.unit, !value.unit.empty());
        break;
    case fhir::search_param_type::number:
        insert.bind_real(at + 4, value.number).bind(at + 5, value.text);
        break;
    case fhir::search_param_type::uri:
        insert.bind(at + 4, value.text);
        break;
    case fhir::search_param_type::composite: {
        const fhir::search_value& first = value.components[0];
        const fhir::search_value& second = value.components[1];
        // A reference has no system: c1_system stays NULL for it.
        if (first.type == fhir::search_param_type::token)
            bind_optional(insert, at + 4, first.system, first.has_system);
        c1_code = first_component_code(first);
        bind_optional(insert, at + 5, c1_code, !c1_code.empty());
        switch (second.type) {
        case fhir::search_param_type::token:
            bind_optional(insert, at + 6, second.system, second.has_system);
            bind_optional(insert, at + 7, second.code_value, !second.code_value.empty());
            break;
        case fhir::search_param_type::quantity: {
            // One column for the unit's code: a value with no code (an age range's "a" written only
            // as its unit) is found by its unit, as a plain quantity parameter finds it.
            const std::string& unit_code = second.code_value.empty() ? second.unit : second.code_value;
            bind_optional(insert, at + 6, second.system, second.has_system);
            bind_optional(insert, at + 7, unit_code, !unit_code.empty());
            insert.bind_real(at + 8, second.number);
            break;
        }
        case fhir::search_param_type::date:
            insert.bind(at + 9, second.range.begin).bind(at + 10, second.range.end);
            break;
        default: // string (fits_composite_table allows no other)
            insert.bind(at + 11, second.normalized);
            break;
        }
        break;
    }
    case fhir::search_param_type::special:
        break;
    }
}

/// Inserts the row of one value (none for a special parameter, nor for a composite in migration
/// 3's layout, which had no table for it).
fhir::status insert_row(connection& db, const row_owner& owner, const fhir::search_value& value) {
    const std::size_t table = table_of(value.type);
    if (table == tables.size())
        return {}; // special: not indexed (see the top of this file)
    if (value.type == fhir::search_param_type::composite) {
        if (owner.keyed == layout::by_resource)
            return {};
        if (!fits_composite_table(value))
            return index_fault(owner.type, owner.id, "a composite parameter of a shape the index cannot hold");
    }
    const std::string& sql = owner.keyed == layout::by_version ? sql_of_table[table].insert_by_version
                                                               : sql_of_table[table].insert_by_resource;
    auto prepared = db.prepare(sql, indexing);
    if (!prepared)
        return std::move(prepared).failure();
    statement insert(*prepared);
    if (owner.keyed == layout::by_version)
        insert.bind(1, owner.seq).bind(2, owner.type);
    else
        insert.bind(1, owner.type).bind(2, owner.id);
    insert.bind(3, value.code);
    std::string c1_code; // bound text must outlive the step
    bind_value_columns(insert, 0, value, c1_code);
    if (const int rc = insert.step(); rc != step_done)
        return storage_failure(rc, indexing);
    return {};
}

/// The :of-type rows of a token value from an Identifier (see the top of this file); none for other
/// values. Keyed by version only: migration 3's layout never had them.
fhir::status insert_of_type_rows(connection& db, const row_owner& owner, const fhir::search_value& value) {
    if (value.type != fhir::search_param_type::token || value.identifier_types.empty())
        return {};
    if (owner.keyed != layout::by_version)
        return index_fault(owner.type, owner.id, ":of-type rows asked for in migration 3's layout");
    const std::string& sql = sql_of_table[table_of(fhir::search_param_type::token)].insert_by_version;
    const std::string param = of_type_param(value.code);
    for (const auto& coding : value.identifier_types)
        if (auto inserted = execute(db, sql, indexing,
                                    [&](statement& insert) {
                                        insert.bind(1, owner.seq).bind(2, owner.type).bind(3, param);
                                        insert.bind(4, coding.system).bind(5, coding.code).bind(6, value.code_value);
                                    });
            !inserted)
            return inserted;
    return {};
}

bool is_common(const fhir::search_parameter& parameter) {
    return parameter.base == "Resource" || parameter.base == "DomainResource";
}

/// Which values the index keeps: a union's or a narrowing's are other parameters' rows
/// (fhir::search_parameter::has_own_values), which the planner reads. The fills of migrations 3 to 5
/// leave them out too: migration 10 removes them anyway.
constexpr fhir::search_values_of indexed_values = fhir::search_values_of::own_values_only;

/// Checks that `values`, extracted for the index of type/id, are of that type's parameters.
fhir::status check_values_type(std::string_view type, std::string_view id, const std::vector<fhir::search_value>& values) {
    for (const auto& value : values)
        if (value.parameter == nullptr || (value.parameter->base != type && !is_common(*value.parameter)))
            return index_fault(type, id, "the content is of another resource type");
    return {};
}

/// The values `stamped_json` gives for the index of type/id (none for a type without search
/// parameters), checked to be of that type.
fhir::status extract_values(std::string_view type, std::string_view id, std::string_view stamped_json,
                            std::vector<fhir::search_value>& values) {
    if (fhir::search_parameters_for(type).empty())
        return {};
    // The extraction's own diagnostics could quote content, so they are not passed on.
    if (auto extracted = fhir::extract_search_values(stamped_json, values, indexed_values); !extracted)
        return index_fault(type, id, "search value extraction failed");
    return check_values_type(type, id, values);
}

/// Inserts the rows of `kinds` that `values` (checked by extract_values) give, keyed as `owner` says.
fhir::status insert_values(connection& db, const row_owner& owner, const std::vector<fhir::search_value>& values,
                           row_kinds kinds) {
    for (const auto& value : values) {
        if (kinds != row_kinds::of_type_only)
            if (auto inserted = insert_row(db, owner, value); !inserted)
                return inserted;
        if (kinds != row_kinds::before_of_type)
            if (auto inserted = insert_of_type_rows(db, owner, value); !inserted)
                return inserted;
    }
    return {};
}

/// The writer's insert of a version's rows (row_kinds::all, by version): the rows insert_values
/// would insert, each table's in the same order (so with the same rowids), up to rows_per_insert a
/// statement.
fhir::status insert_version_rows(connection& db, const row_owner& owner,
                                 const std::vector<const fhir::search_value*>& values) {
    struct planned_row {
        const fhir::search_value* value;
        const fhir::identifier_type_coding* coding; ///< an :of-type row: this coding, param *of_type
        const std::string* of_type;
    };
    std::array<std::vector<planned_row>, tables.size()> rows;
    std::vector<std::string> of_type_params;
    of_type_params.reserve(values.size()); // at most one a value: the rows point into it
    const std::size_t token_table = table_of(fhir::search_param_type::token);
    for (const fhir::search_value* value : values) {
        if (const std::size_t table = table_of(value->type); table != tables.size()) { // special: not indexed
            if (value->type == fhir::search_param_type::composite && !fits_composite_table(*value))
                return index_fault(owner.type, owner.id, "a composite parameter of a shape the index cannot hold");
            rows[table].push_back({value, nullptr, nullptr});
        }
        if (value->type == fhir::search_param_type::token && !value->identifier_types.empty()) {
            of_type_params.push_back(of_type_param(value->code));
            for (const auto& coding : value->identifier_types)
                rows[token_table].push_back({value, &coding, &of_type_params.back()});
        }
    }
    std::array<std::string, rows_per_insert> c1_codes; // bound text must outlive the step
    for (std::size_t table = 0; table < tables.size(); ++table) {
        const int columns = 3 + tables[table].value_count;
        for (std::size_t first = 0; first < rows[table].size(); first += rows_per_insert) {
            const std::size_t count = std::min(rows_per_insert, rows[table].size() - first);
            auto prepared = db.prepare(sql_of_table[table].insert_rows_by_version[count - 1], indexing);
            if (!prepared)
                return std::move(prepared).failure();
            statement insert(*prepared);
            for (std::size_t r = 0; r < count; ++r) {
                const planned_row& row = rows[table][first + r];
                const int at = static_cast<int>(r) * columns;
                insert.bind(at + 1, owner.seq).bind(at + 2, owner.type);
                if (row.coding) {
                    insert.bind(at + 3, *row.of_type).bind(at + 4, row.coding->system).bind(at + 5, row.coding->code);
                    insert.bind(at + 6, row.value->code_value);
                } else {
                    insert.bind(at + 3, row.value->code);
                    bind_value_columns(insert, at, *row.value, c1_codes[r]);
                }
            }
            if (const int rc = insert.step(); rc != step_done)
                return storage_failure(rc, indexing);
        }
    }
    return {};
}

/// Inserts the rows of `kinds` that `stamped_json` gives, keyed as `owner` says.
fhir::status insert_rows(connection& db, const row_owner& owner, std::string_view stamped_json, row_kinds kinds) {
    std::vector<fhir::search_value> values;
    if (auto extracted = extract_values(owner.type, owner.id, stamped_json, values); !extracted)
        return extracted;
    return insert_values(db, owner, values, kinds);
}

/// Indexes every current live version: the rows of `kinds`, keyed as `keyed` says.
fhir::status index_current(connection& db, layout keyed, row_kinds kinds) {
    auto prepared = db.prepare(current_live_versions_sql, indexing);
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    int rc;
    while ((rc = query.step()) == step_row) {
        const std::string type = query.text(0);
        const std::string id = query.text(1);
        const std::string json = query.blob(3);
        if (auto indexed = insert_rows(db, row_owner{keyed, query.integer(2), type, id}, json, kinds); !indexed)
            return indexed;
    }
    if (rc != step_done)
        return storage_failure(rc, indexing);
    return {};
}


/// The lastUpdated a version's content is stamped with to extract its values ahead of the writer:
/// any instant would do, as only the _lastUpdated value depends on it (prepare_search_values).
constexpr std::string_view placeholder_last_updated = "1970-01-01T00:00:00.000000Z";

/// True for the value of _lastUpdated (Resource.meta.lastUpdated): the only parameter whose value
/// depends on what the writer stamps (meta.versionId is no parameter's, and `id` is the request's).
bool is_last_updated(const fhir::search_value& value) {
    return value.parameter != nullptr && is_common(*value.parameter) && value.code == "_lastUpdated";
}

} // namespace

std::string of_type_param(std::string_view code) { return std::string(code) + ":of-type"; }

fhir::status insert_search_rows(connection& db, std::int64_t seq, std::string_view type, std::string_view id,
                                std::string_view stamped_json) {
    std::vector<fhir::search_value> values;
    if (auto extracted = extract_values(type, id, stamped_json, values); !extracted)
        return extracted;
    std::vector<const fhir::search_value*> rows;
    rows.reserve(values.size());
    for (const auto& value : values)
        rows.push_back(&value);
    return insert_version_rows(db, row_owner{layout::by_version, seq, type, id}, rows);
}

fhir::result<prepared_index> prepare_search_values(std::string_view type, std::string_view id, std::string content) {
    prepared_index prepared;
    prepared.type = type;
    prepared.id = id;
    prepared.content = std::move(content);
    if (fhir::search_parameters_for(type).empty()) {
        prepared.stamped = fhir::stamp_resource(prepared.content, id, 1, placeholder_last_updated);
    } else {
        // One parse for the stamp and the values (as extract_values would give them from the stamp).
        auto made = fhir::stamp_and_extract(prepared.content, id, 1, placeholder_last_updated, indexed_values);
        if (!made) // its diagnostics could quote content, so they are not passed on
            return index_fault(type, id, "search value extraction failed");
        prepared.stamped = std::move(made->stamped);
        prepared.values = std::move(made->values);
        if (auto checked = check_values_type(type, id, prepared.values); !checked)
            return std::move(checked).failure();
    }
    // The stamp comes first in the stamped JSON, after resourceType and id (fhir::stamp_resource).
    const std::string stamp_prefix = "\"meta\":{\"versionId\":\"";
    const std::string stamp = stamp_prefix + "1\",\"lastUpdated\":\"" + std::string(placeholder_last_updated) + "\"";
    if (const auto at = prepared.stamped.find(stamp); at != std::string::npos) {
        prepared.stamp_begin = at + stamp_prefix.size();
        prepared.stamp_end = at + stamp.size() - 1; // before the closing quote
    }
    prepared.last_updated_at = prepared.values.size();
    for (std::size_t i = 0; i < prepared.values.size(); ++i)
        if (is_last_updated(prepared.values[i])) {
            if (prepared.last_updated_at != prepared.values.size())
                return index_fault(type, id, "meta.lastUpdated gave more than one value");
            prepared.last_updated_at = i;
        }
    return prepared;
}

std::optional<std::string> stamp_prepared(const prepared_index& prepared, std::int64_t version_id,
                                          std::string_view last_updated) {
    if (prepared.stamp_end == 0)
        return std::nullopt;
    // What stamp_resource writes between them; an instant and a number need no escaping.
    const std::string version = std::to_string(version_id);
    constexpr std::string_view between = "\",\"lastUpdated\":\"";
    std::string json;
    json.reserve(prepared.stamped.size() + version.size() + last_updated.size());
    json.append(prepared.stamped, 0, prepared.stamp_begin);
    json += version;
    json += between;
    json += last_updated;
    json.append(prepared.stamped, prepared.stamp_end);
    return json;
}

fhir::status insert_search_rows(connection& db, std::int64_t seq, const prepared_index& prepared,
                                std::string_view last_updated) {
    std::vector<const fhir::search_value*> rows;
    rows.reserve(prepared.values.size());
    for (const auto& value : prepared.values)
        rows.push_back(&value);
    // The one value that depends on the stamp: _lastUpdated, as the stamped JSON would give it.
    fhir::search_value stamped;
    if (prepared.last_updated_at < prepared.values.size()) {
        const auto range = fhir::parse_date_time(last_updated);
        if (!range)
            return index_fault(prepared.type, prepared.id, "the version's lastUpdated is not an instant");
        stamped = prepared.values[prepared.last_updated_at];
        stamped.range = *range;
        stamped.text = std::string(last_updated);
        rows[prepared.last_updated_at] = &stamped;
    }
    return insert_version_rows(db, row_owner{layout::by_version, seq, prepared.type, prepared.id}, rows);
}

fhir::status close_search_rows(connection& db, std::int64_t superseded_seq, std::int64_t closing_seq) {
    for (const auto& sql : sql_of_table)
        if (auto closed = execute(db, sql.close, closing,
                                  [&](statement& update) { update.bind(1, superseded_seq).bind(2, closing_seq); });
            !closed)
            return closed;
    return {};
}

fhir::status erase_version_rows(connection& db, std::int64_t seq) {
    static const std::string erase_citizens_sql = "DELETE FROM version_citizens WHERE seq = ?1";
    static const std::string erase_targets_sql = "DELETE FROM version_targets WHERE seq = ?1";
    constexpr std::string_view erasing = "erasing a version's rows";
    for (const auto& sql : sql_of_table)
        if (auto erased = execute(db, sql.erase, erasing, [&](statement& remove) { remove.bind(1, seq); }); !erased)
            return erased;
    for (const std::string* sql : {&erase_citizens_sql, &erase_targets_sql})
        if (auto erased = execute(db, *sql, erasing, [&](statement& remove) { remove.bind(1, seq); }); !erased)
            return erased;
    return erase_binary_parts(db, seq);
}

fhir::result<purge_outcome> purge_closed_rows(connection& db, std::int64_t horizon) {
    purge_outcome outcome;
    std::int64_t largest_deleted = 0;
    for (const auto& sql : sql_of_table) {
        std::int64_t largest = 0;
        {
            auto prepared = db.prepare(sql.largest_purgeable, purging);
            if (!prepared)
                return std::move(prepared).failure();
            statement query(*prepared);
            query.bind(1, horizon);
            if (const int rc = query.step(); rc != step_row)
                return storage_failure(rc, purging);
            if (query.is_null(0))
                continue; // max() over no rows: nothing to purge here
            largest = query.integer(0);
        }
        largest_deleted = std::max(largest_deleted, largest);
        if (auto purged = execute(db, sql.purge, purging, [&](statement& remove) { remove.bind(1, largest); }); !purged)
            return std::move(purged).failure();
        outcome.rows += db.changes();
    }
    if (outcome.rows > 0)
        if (auto raised =
                execute(db, raise_horizon_sql, purging, [&](statement& update) { update.bind(1, largest_deleted); });
            !raised)
            return std::move(raised).failure();
    return outcome;
}

fhir::status insert_version_citizens(connection& db, std::int64_t seq, const std::vector<std::string>& citizens) {
    for (const auto& citizen : citizens)
        if (auto inserted = execute(db, insert_version_citizen_sql, citing,
                                    [&](statement& insert) { insert.bind(1, seq).bind(2, citizen); });
            !inserted)
            return inserted;
    return {};
}

fhir::status insert_version_targets(connection& db, std::int64_t seq, std::string_view type, std::string_view json) {
    for (const std::string& target : fhir::item_targets(type, json)) {
        const auto slash = target.find('/');
        if (auto inserted = execute(db, insert_version_target_sql, citing,
                                    [&](statement& insert) {
                                        insert.bind(1, seq)
                                            .bind(2, std::string_view(target).substr(0, slash))
                                            .bind(3, std::string_view(target).substr(slash + 1));
                                    });
            !inserted)
            return inserted;
    }
    return {};
}

fhir::status record_targets_of_live_versions(connection& db) {
    for (std::string_view type : fhir::supported_types()) {
        if (!fhir::points_at_items(type))
            continue;
        // Collected first: the insert runs on the same connection as the walk.
        std::vector<std::pair<std::int64_t, std::string>> versions;
        auto prepared = db.prepare(live_versions_of_type_sql, citing);
        if (!prepared)
            return std::move(prepared).failure();
        {
            statement query(*prepared);
            query.bind(1, type);
            int rc;
            while ((rc = query.step()) == step_row)
                versions.emplace_back(query.integer(0), query.blob(1));
            if (rc != step_done)
                return storage_failure(rc, citing);
        }
        for (const auto& [seq, json] : versions)
            if (auto recorded = insert_version_targets(db, seq, type, json); !recorded)
                return recorded;
    }
    return {};
}

fhir::status index_current_versions(connection& db) {
    return index_current(db, layout::by_resource, row_kinds::before_of_type);
}

fhir::status index_current_versions_with_seq(connection& db) {
    return index_current(db, layout::by_version, row_kinds::before_of_type);
}

fhir::status index_of_type_rows_of_current_versions(connection& db) {
    return index_current(db, layout::by_version, row_kinds::of_type_only);
}

fhir::status remove_derived_rows(connection& db) {
    constexpr std::string_view doing = "migrating the schema (rows of unions and narrowings)";
    auto run = [&](const std::string& sql, const fhir::search_parameter& p, bool narrowed) -> fhir::status {
        auto prepared = db.prepare(sql, doing);
        if (!prepared)
            return std::move(prepared).failure();
        statement step(*prepared);
        step.bind(1, p.base).bind(2, p.code);
        if (narrowed)
            step.bind(3, p.narrows->code).bind(4, p.narrowed_to);
        if (const int rc = step.step(); rc != step_done)
            return storage_failure(rc, doing);
        return {};
    };
    for (const fhir::search_parameter& p : fhir::all_search_parameters()) {
        const auto table = std::find_if(tables.begin(), tables.end(), [&](const index_table& t) { return t.type == p.type; });
        if (p.has_own_values() || table == tables.end())
            continue;
        // A narrowing's rows name the references of its parameter that resolve to its type; where
        // the reference was not a relative Type/id (a contained resource, an absolute URL), the
        // parameter's own row did not record that type before: it does now, as a new row would.
        if (p.narrows)
            if (auto typed = run("UPDATE search_reference SET target_type = ?4 WHERE type = ?1 AND param = ?3 "
                                 "AND target_type IS NULL AND EXISTS (SELECT 1 FROM search_reference n "
                                 "WHERE n.seq = search_reference.seq AND n.type = ?1 AND n.param = ?2 "
                                 "AND n.url IS NOT DISTINCT FROM search_reference.url "
                                 "AND n.identifier_system IS NOT DISTINCT FROM search_reference.identifier_system "
                                 "AND n.identifier_value IS NOT DISTINCT FROM search_reference.identifier_value)",
                                 p, true);
                !typed)
                return typed;
        if (auto removed = run(std::string("DELETE FROM ") + table->name + " WHERE type = ?1 AND param = ?2", p, false);
            !removed)
            return removed;
    }
    return {};
}

fhir::status record_citizens_of_live_versions(connection& db) {
    auto prepared = db.prepare(live_version_citizens_sql, citing);
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    int rc;
    while ((rc = query.step()) == step_row)
        if (auto recorded = insert_version_citizens(db, query.integer(0), split_lines(query.text(1))); !recorded)
            return recorded;
    if (rc != step_done)
        return storage_failure(rc, citing);
    return {};
}

} // namespace caregate::storage::detail
