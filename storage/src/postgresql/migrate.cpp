// Moving a SQLite database into PostgreSQL: see migrate.hpp. Rows go in through COPY (PostgreSQL's
// bulk path), a table at a time, in the order the foreign keys need.
#include "migrate.hpp"

#include "libpq.hpp"
#include "schema.hpp"

#include "../sqlite/sqlite.hpp"

#include "storage/postgresql_store.hpp"

#include <charconv>
#include <string_view>
#include <vector>

namespace caregate::storage::detail {
namespace {

constexpr std::string_view doing = "moving the database";

/// A table the engine reads, its columns as both schemas name them, and the order its rows are
/// read in (a rowid order where the engine reads in it).
struct table {
    const char* name;
    const char* columns;
    const char* order;
    /// What the source's SELECT reads for `columns`, where a column needs converting; else `columns`.
    const char* source = nullptr;
};

// Versions before what refers to them (resources, links); the erasure marker table `erasing` is
// never committed with rows, and search_horizon's one row is updated rather than copied.
const table tables[] = {
    {"resource_versions", "seq, type, id, version_id, last_updated, method, deleted, json, owner, citizens, labels, facets", "seq"},
    {"resources", "type, id, version_id, seq, deleted", "type, id"},
    {"organisation_links", "type, id, nhs_number, ods, kind, active, ended", "rowid"},
    {"objections", "type, id, nhs_number", "type, id, nhs_number"},
    {"opt_outs", "type, id, nhs_number", "type, id, nhs_number"},
    {"break_glass_grants", "seq, nhs_number, organisation, \"user\", reason, from_time, until_time, request_id, role", "seq"},
    {"audit_log",
     "sequence, time, request_id, \"user\", role, organisation, purpose, break_glass_reason, nhs_number, resource_type, "
     "resource_ids, action, outcome, detail, previous_hash, hash",
     "sequence"},
    {"search_string", "seq, until_seq, type, param, normalized, exact", "rowid"},
    {"search_token", "seq, until_seq, type, param, system, code, text", "rowid"},
    {"search_date", "seq, until_seq, type, param, low, high", "rowid"},
    {"search_reference", "seq, until_seq, type, param, target_type, target_id, url, identifier_system, identifier_value", "rowid"},
    {"search_quantity", "seq, until_seq, type, param, value, value_text, system, code, unit", "rowid"},
    {"search_number", "seq, until_seq, type, param, value, value_text", "rowid"},
    {"search_uri", "seq, until_seq, type, param, uri", "rowid"},
    {"search_composite", "seq, until_seq, type, param, c1_system, c1_code, c2_system, c2_code, c2_value, c2_low, c2_high, c2_text", "rowid"},
    {"version_citizens", "seq, nhs_number", "seq, nhs_number"},
    {"version_targets", "seq, type, id", "seq, type, id"},
    // bytea in COPY's text form: "\\x" and hex (the backslash is escaped as any other).
    {"binary_parts", "seq, part, bytes", "seq, part", "seq, part, '\\x' || hex(bytes)"},
};

/// Identity columns whose sequences must continue after the copied values.
const std::pair<const char*, const char*> identities[] = {
    {"resource_versions", "seq"},     {"break_glass_grants", "seq"},   {"organisation_links", "rowid"},
    {"search_string", "rowid"},       {"search_token", "rowid"},       {"search_date", "rowid"},
    {"search_reference", "rowid"},    {"search_quantity", "rowid"},    {"search_number", "rowid"},
    {"search_uri", "rowid"},          {"search_composite", "rowid"},
};

fhir::error move_failure(std::string why) {
    return fhir::error::make(fhir::category::fault, "exception", "storage failure while moving the database: " + why);
}

/// A value in COPY's text format: \N for NULL, backslash, tab, newline and carriage return escaped.
void append_copy_value(std::string& line, const sql_value& value) {
    if (std::holds_alternative<std::monostate>(value)) {
        line += "\\N";
    } else if (const auto* n = std::get_if<std::int64_t>(&value)) {
        line += std::to_string(*n);
    } else if (const auto* d = std::get_if<double>(&value)) {
        char buffer[32];
        line.append(buffer, std::to_chars(buffer, buffer + sizeof buffer, *d).ptr); // exact round trip
    } else {
        for (const char c : std::get<std::string>(value)) {
            switch (c) {
            case '\\': line += "\\\\"; break;
            case '\t': line += "\\t"; break;
            case '\n': line += "\\n"; break;
            case '\r': line += "\\r"; break;
            default: line += c;
            }
        }
    }
}

int column_count(const char* columns) {
    int count = 1;
    for (const char* c = columns; *c; ++c)
        count += *c == ',';
    return count;
}

/// Copies one table's rows; returns how many.
fhir::result<std::int64_t> copy_table(sqlite_connection& source, postgresql_connection& target, const table& t) {
    auto prepared = source.prepare(std::string("SELECT ") + (t.source ? t.source : t.columns) + " FROM " + t.name + " ORDER BY " + t.order, doing);
    if (!prepared)
        return std::move(prepared).failure();
    const std::string copy = std::string("COPY ") + t.name + " (" + t.columns + ") FROM STDIN";
    PGresult* started = PQexec(target.handle(), copy.c_str());
    const bool copying = PQresultStatus(started) == PGRES_COPY_IN;
    const int start_code = copying ? step_ok : postgresql_result_code(started, target.handle());
    PQclear(started);
    if (!copying)
        return storage_failure(start_code, doing);

    const int columns = column_count(t.columns);
    std::int64_t rows = 0;
    std::string buffer;
    bool sent = true;
    statement read(*prepared);
    int code;
    while ((code = read.step()) == step_row) {
        for (int c = 0; c < columns; ++c) {
            if (c > 0)
                buffer += '\t';
            append_copy_value(buffer, read.row().value(c));
        }
        buffer += '\n';
        ++rows;
        if (buffer.size() >= (1u << 20)) {
            sent = PQputCopyData(target.handle(), buffer.data(), static_cast<int>(buffer.size())) == 1;
            buffer.clear();
            if (!sent)
                break;
        }
    }
    if (sent && !buffer.empty())
        sent = PQputCopyData(target.handle(), buffer.data(), static_cast<int>(buffer.size())) == 1;
    const bool read_all = code == step_done;
    // Ending with an error message aborts the COPY, so that nothing of a half-read table stays.
    PQputCopyEnd(target.handle(), read_all && sent ? nullptr : "the source could not be read whole");
    int end_code = step_ok;
    while (PGresult* result = PQgetResult(target.handle())) {
        if (PQresultStatus(result) != PGRES_COMMAND_OK && end_code == step_ok)
            end_code = postgresql_result_code(result, target.handle());
        PQclear(result);
    }
    if (!read_all)
        return storage_failure(code, doing);
    if (!sent || end_code != step_ok)
        return storage_failure(end_code != step_ok ? end_code : postgresql_code("08006"), doing);
    return rows;
}

fhir::result<std::int64_t> count_rows(connection& db, const std::string& sql) {
    auto prepared = db.prepare(sql, doing);
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    if (const int code = query.step(); code != step_row)
        return storage_failure(code, doing);
    return query.integer(0);
}

} // namespace

fhir::result<migration_report> copy_sqlite_to_postgresql(const std::string& path, const std::string& conninfo) {
    auto source = sqlite_connection::open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, std::chrono::seconds(30));
    if (!source)
        return std::move(source).failure();
    auto target = postgresql_connection::open(conninfo);
    if (!target)
        return std::move(target).failure();
    sqlite_connection& from = **source;
    postgresql_connection& to = **target;

    if (auto begun = from.exec_script("BEGIN", doing); !begun) // one moment of the source
        return begun.failure();
    // Foreign keys are checked at each COPY's end, not queued for all the tables until COMMIT (schema
    // 5 defers them, for the writer's batches): a large database's queue of checks would fill memory.
    if (auto begun = to.exec_script("BEGIN; SET CONSTRAINTS ALL IMMEDIATE", doing); !begun)
        return begun.failure();
    auto rollback = [&](fhir::error failure) -> fhir::result<migration_report> {
        to.exec_script("ROLLBACK", doing);
        from.exec_script("ROLLBACK", doing);
        return failure;
    };

    auto held = count_rows(to, "SELECT (SELECT count(*) FROM resource_versions) + (SELECT count(*) FROM audit_log)");
    if (!held)
        return rollback(std::move(held).failure());
    if (*held != 0)
        return rollback(fhir::error::make(fhir::category::conflict, "conflict",
                                          "the target database already holds resources or audit records: a move "
                                          "goes into an empty caregate database only, never merges"));
    // The writers' lock, so that no caregate node writes the target while it fills.
    if (auto locked = to.exec_script("SELECT pg_advisory_xact_lock(" + std::to_string(writer_lock_key) + ")", doing);
        !locked)
        return rollback(locked.failure());

    migration_report report;
    for (const table& t : tables) {
        auto copied = copy_table(from, to, t);
        if (!copied)
            return rollback(std::move(copied).failure());
        report.rows += *copied;
        if (std::string_view(t.name) == "resource_versions")
            report.versions = *copied;
        else if (std::string_view(t.name) == "resources")
            report.resources = *copied;
        else if (std::string_view(t.name) == "audit_log")
            report.audit_records = *copied;
    }
    auto horizon = count_rows(from, "SELECT purged_through FROM search_horizon");
    if (!horizon)
        return rollback(std::move(horizon).failure());
    std::string finish = "UPDATE search_horizon SET purged_through = " + std::to_string(*horizon) + ";";
    for (const auto& [name, column] : identities)
        finish += std::string(" SELECT setval(pg_get_serial_sequence('") + name + "', '" + column + "'), coalesce(max(" +
                  column + "), 0) + 1, false) FROM " + name + ";";
    // The writer's state (the engine's invariant 26) from what was copied.
    finish += " UPDATE writer_state SET"
              " audit_sequence = coalesce((SELECT sequence FROM audit_log ORDER BY sequence DESC LIMIT 1), 0),"
              " audit_hash = coalesce((SELECT hash FROM audit_log ORDER BY sequence DESC LIMIT 1), repeat('0', 64)),"
              " newest_last_updated = coalesce((SELECT max(last_updated) FROM resource_versions), 0);";
    if (auto finished = to.exec_script(finish, doing); !finished)
        return rollback(finished.failure());
    if (auto committed = to.exec_script("COMMIT", doing); !committed)
        return rollback(committed.failure());
    from.exec_script("COMMIT", doing);
    // The planner's statistics of the filled tables at once, rather than when autovacuum comes by:
    // without them PostgreSQL plans the engine's index lookups as scans. And the vacuum the copy's
    // inserts would otherwise set off in autovacuum once the server is serving (every table at once,
    // competing with its first requests: writes ran at a third of their rate in the benchmark): the
    // visibility map set and the rows frozen now, while nothing else runs.
    if (auto analysed = to.exec_script("VACUUM (FREEZE, ANALYZE)", doing); !analysed)
        return analysed.failure();

    // The copy answers for itself: its chain verifies end to end, with every record there.
    postgresql_options options;
    options.conninfo = conninfo;
    auto opened = postgresql_store::open(options);
    if (!opened)
        return std::move(opened).failure();
    auto verified = (*opened)->verify_audit();
    if (!verified)
        return std::move(verified).failure();
    if (verified->first_broken || verified->records != report.audit_records)
        return move_failure("the copied audit chain does not verify: " + verified->problem);
    return report;
}

} // namespace caregate::storage::detail
