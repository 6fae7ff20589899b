// The store's schema and its migrations, in order. A migration is never edited once released: a
// change to the schema is a new entry at the end of `migrations`.
#include "schema.hpp"

#include "../relational/list_column.hpp"
#include "../relational/opt_outs.hpp"
#include "../relational/relink_citizens.hpp"
#include "../relational/search_index.hpp"

#include "fhir_model/resource.hpp"

#include <array>
#include <string>
#include <tuple>
#include <vector>

namespace caregate::storage::detail {
namespace {

/// Migration n takes the database from user_version n to n + 1: its SQL, then (if any) a step in
/// C++ that fills what the SQL made from what is already stored, in the same transaction.
struct migration {
    const char* sql;
    fhir::status (*fill)(connection& db) = nullptr;
};

/// Migration 4's fill: the index rows of the current live versions, the citizens of every live
/// version, and the purge horizon. Migration 3 kept the rows of current versions only, so those of
/// versions superseded before now are not there to be made: the horizon starts at the newest seq,
/// as if they had been purged (engine.hpp, invariant 18), and no snapshot older than that is read.
fhir::status fill_snapshot_index(connection& db) {
    if (auto indexed = index_current_versions_with_seq(db); !indexed)
        return indexed;
    if (auto recorded = record_citizens_of_live_versions(db); !recorded)
        return recorded;
    return db.exec_script(
        "UPDATE search_horizon SET purged_through = (SELECT coalesce(max(seq), 0) FROM resource_versions)",
        "migrating the schema");
}

/// Migration 9's fill: every version's facets again, as "element=system|code" (the form
/// fhir::access_facts::facets now takes; before, a facet named a code without its system, and policy
/// rules could not tell a code of one system from the same code of another). Live versions are read
/// again from their stored JSON, in batches; a deletion marker takes the facets of the version it
/// deletes (engine.hpp, invariant 12). A version that no longer validates keeps its old facets, which
/// no rule now names: it becomes narrower to see, never wider. Versions are otherwise immutable: the
/// migration's SQL lifts the trigger that guards them, and this puts it back.
fhir::status refill_facets(connection& db) {
    constexpr std::string_view doing = "migrating the schema (facets)";
    const std::string batch_sql =
        "SELECT seq, type, json FROM resource_versions WHERE deleted = 0 AND seq > ?1 ORDER BY seq LIMIT 1000";
    const std::string update_sql = "UPDATE resource_versions SET facets = ?2 WHERE seq = ?1";
    std::int64_t after = 0;
    for (;;) {
        std::vector<std::tuple<std::int64_t, std::string, std::string>> batch;
        {
            auto prepared = db.prepare(batch_sql, doing);
            if (!prepared)
                return std::move(prepared).failure();
            statement query(*prepared);
            query.bind(1, after);
            int rc;
            while ((rc = query.step()) == step_row)
                batch.emplace_back(query.integer(0), query.text(1), query.blob(2));
            if (rc != step_done)
                return storage_failure(rc, doing);
        }
        if (batch.empty())
            break;
        for (const auto& [seq, type, json] : batch) {
            auto prepared = fhir::prepare_resource(json, type);
            if (!prepared)
                continue;
            const std::string facets = join_lines(prepared->access.facets);
            const std::int64_t version = seq; // a named copy: clang 14 cannot capture a structured binding
            if (auto updated = execute(db, update_sql, doing,
                                       [&](statement& update) { update.bind(1, version).bind(2, facets); });
                !updated)
                return updated;
        }
        after = std::get<0>(batch.back());
    }
    return db.exec_script(R"sql(
UPDATE resource_versions
   SET facets = coalesce((SELECT p.facets FROM resource_versions p
                           WHERE p.type = resource_versions.type AND p.id = resource_versions.id
                             AND p.version_id = resource_versions.version_id - 1), '')
 WHERE deleted = 1;
CREATE TRIGGER resource_versions_never_change BEFORE UPDATE ON resource_versions
BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;
)sql",
                          doing);
}

/// Migration 16's fill: every Device version's citizens again (relational/relink_citizens.hpp), and
/// the trigger that keeps versions immutable back, which the migration's SQL lifted for it.
fhir::status relink_devices(connection& db) {
    if (auto relinked = relink_citizens_of_type(db, "Device"); !relinked)
        return relinked;
    return db.exec_script(R"sql(
CREATE TRIGGER resource_versions_never_change BEFORE UPDATE ON resource_versions
BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;
)sql",
                          "migrating the schema (citizens of a type)");
}

const std::array<migration, 17> migrations = {{
    {// 1: versioned resources, the current-version pointer, citizen links.
    R"sql(
CREATE TABLE resource_versions (
    seq          INTEGER PRIMARY KEY,   -- global order of writes: the history cursor
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version_id   INTEGER NOT NULL CHECK (version_id >= 1),
    last_updated INTEGER NOT NULL,      -- microseconds since the epoch, UTC
    method       TEXT    NOT NULL CHECK (method IN ('POST', 'PUT', 'DELETE')),
    deleted      INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    json         BLOB    NOT NULL,      -- stamped canonical JSON; empty for a deletion
    UNIQUE (type, id, version_id)
);
CREATE INDEX resource_versions_by_type ON resource_versions (type, seq);
CREATE INDEX resource_versions_by_resource ON resource_versions (type, id, seq);
-- last_updated grows with seq, so this turns _since and _at bounds into seq ranges.
CREATE INDEX resource_versions_by_last_updated ON resource_versions (last_updated);

-- Versions are history: never changed, never removed.
CREATE TRIGGER resource_versions_never_change BEFORE UPDATE ON resource_versions
BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;
CREATE TRIGGER resource_versions_never_go BEFORE DELETE ON resource_versions
BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;

CREATE TABLE resources (
    type       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL UNIQUE REFERENCES resource_versions (seq),
    deleted    INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    PRIMARY KEY (type, id)
) WITHOUT ROWID;

CREATE TABLE citizen_links (
    type       TEXT NOT NULL,
    id         TEXT NOT NULL,
    nhs_number TEXT NOT NULL,
    PRIMARY KEY (type, id, nhs_number),
    FOREIGN KEY (type, id) REFERENCES resources (type, id)
) WITHOUT ROWID;
CREATE INDEX citizen_links_by_nhs_number ON citizen_links (nhs_number);
)sql"},
    {// 2: access control and audit: who owns each version and what it is about (owner, citizens,
    // labels, facets), the organisation links and objections of current versions, break-glass
    // grants, and the append-only, hash-chained audit log. List columns hold values joined by '\n'
    // (none of the values, FHIR codes, ODS codes and NHS numbers, can hold a line break); versions
    // written before this migration get empty values.
    R"sql(
ALTER TABLE resource_versions ADD COLUMN owner    TEXT NOT NULL DEFAULT '';
ALTER TABLE resource_versions ADD COLUMN citizens TEXT NOT NULL DEFAULT '';
ALTER TABLE resource_versions ADD COLUMN labels   TEXT NOT NULL DEFAULT '';
ALTER TABLE resource_versions ADD COLUMN facets   TEXT NOT NULL DEFAULT '';

-- For the current live version only: one row per (citizen, organisation link) it records.
CREATE TABLE organisation_links (
    type       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    nhs_number TEXT    NOT NULL,
    ods        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    active     INTEGER NOT NULL CHECK (active IN (0, 1)),
    ended      INTEGER,              -- microseconds since the epoch, when the link ended; NULL if not
    FOREIGN KEY (type, id) REFERENCES resources (type, id)
);
CREATE INDEX organisation_links_by_citizen ON organisation_links (nhs_number, ods);
CREATE INDEX organisation_links_by_resource ON organisation_links (type, id);

-- For the current live version of a Consent that records the citizen's objection to sharing.
CREATE TABLE objections (
    type       TEXT NOT NULL,
    id         TEXT NOT NULL,
    nhs_number TEXT NOT NULL,
    PRIMARY KEY (type, id, nhs_number),
    FOREIGN KEY (type, id) REFERENCES resources (type, id)
) WITHOUT ROWID;
CREATE INDEX objections_by_nhs_number ON objections (nhs_number);

CREATE TABLE break_glass_grants (
    seq          INTEGER PRIMARY KEY,
    nhs_number   TEXT    NOT NULL,
    organisation TEXT    NOT NULL,
    user         TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    from_time    INTEGER NOT NULL,   -- microseconds since the epoch; open from, inclusive
    until_time   INTEGER NOT NULL,   -- open until, exclusive
    request_id   TEXT    NOT NULL
);
CREATE INDEX break_glass_grants_by_caller ON break_glass_grants (nhs_number, organisation, user, until_time);
-- Grants are evidence of an emergency access: never changed, never removed.
CREATE TRIGGER break_glass_grants_never_change BEFORE UPDATE ON break_glass_grants
BEGIN SELECT RAISE(ABORT, 'break-glass grants are immutable'); END;
CREATE TRIGGER break_glass_grants_never_go BEFORE DELETE ON break_glass_grants
BEGIN SELECT RAISE(ABORT, 'break-glass grants are immutable'); END;

-- The audit log: sequence 1, 2, 3, ... each record's previous_hash is the hash of the one before.
CREATE TABLE audit_log (
    sequence           INTEGER PRIMARY KEY,
    time               INTEGER NOT NULL,
    request_id         TEXT    NOT NULL,
    user               TEXT    NOT NULL,
    role               TEXT    NOT NULL,
    organisation       TEXT    NOT NULL,
    purpose            TEXT    NOT NULL,
    break_glass_reason TEXT    NOT NULL,
    nhs_number         TEXT    NOT NULL,
    resource_type      TEXT    NOT NULL,
    resource_ids       TEXT    NOT NULL,
    action             TEXT    NOT NULL,
    outcome            TEXT    NOT NULL,
    detail             TEXT    NOT NULL,
    previous_hash      TEXT    NOT NULL,
    hash               TEXT    NOT NULL
);
CREATE INDEX audit_log_by_nhs_number ON audit_log (nhs_number, sequence);
CREATE INDEX audit_log_by_user ON audit_log (user, sequence);
CREATE INDEX audit_log_by_organisation ON audit_log (organisation, sequence);
CREATE INDEX audit_log_by_time ON audit_log (time);
-- Append-only: the hash chain detects what these triggers cannot stop (a hand edit of the file).
CREATE TRIGGER audit_log_never_changes BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are immutable'); END;
CREATE TRIGGER audit_log_never_goes BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are immutable'); END;
)sql"},
    // 3: search index tables, one per parameter type, holding the values of current live versions only
    // (rows per value as fhir::extract_search_values gives them; see search_index.cpp), and filled
    // here from every current live version already stored. Rows are keyed by the resource's
    // (type, id), the primary key of `resources`, so a join to it is one seek. Absent is NULL.
    // Every table has a _by_resource index (type, id) for the writer's delete-and-reinsert; the
    // other indexes serve the queries named beside them, and end in id to cover them.
    // Composite and special parameters are not indexed yet.
    {R"sql(
CREATE TABLE search_string (
    type       TEXT NOT NULL,
    id         TEXT NOT NULL,
    param      TEXT NOT NULL,
    normalized TEXT NOT NULL,   -- fhir::normalize_search_string: case- and accent-folded
    exact      TEXT NOT NULL    -- as written, for :exact
);
CREATE INDEX search_string_by_resource ON search_string (type, id);
-- name=smi: type = ? AND param = ? AND normalized >= 'smi' AND normalized < 'smj' (and = for :exact's
-- candidates, then exact = ?).
CREATE INDEX search_string_by_value ON search_string (type, param, normalized, id);

CREATE TABLE search_token (
    type   TEXT NOT NULL,
    id     TEXT NOT NULL,
    param  TEXT NOT NULL,
    system TEXT,             -- NULL: no system ("" is a system given as empty)
    code   TEXT,             -- NULL: none (a CodeableConcept with text only)
    text   TEXT              -- display or CodeableConcept.text, normalised as strings are, for :text
);
CREATE INDEX search_token_by_resource ON search_token (type, id);
-- code=system|code, code=code, _id, status, identifier: type = ? AND param = ? AND code = ? [AND system = ?].
CREATE INDEX search_token_by_code ON search_token (type, param, code, system, id);
-- Searches across types (_tag, _security at the system level): param = ? AND code = ?.
CREATE INDEX search_token_by_code_any_type ON search_token (param, code);

CREATE TABLE search_date (
    type  TEXT    NOT NULL,
    id    TEXT    NOT NULL,
    param TEXT    NOT NULL,
    low   INTEGER NOT NULL,  -- [low, high) in microseconds since the epoch, UTC; an open end is
    high  INTEGER NOT NULL   -- -9223372036854775808 or 9223372036854775807 (fhir::unbounded_low/high)
);
CREATE INDEX search_date_by_resource ON search_date (type, id);
-- date=ge2026-01-01, _lastUpdated=lt...: type = ? AND param = ? AND low/high compared with the bounds.
CREATE INDEX search_date_by_range ON search_date (type, param, low, high, id);

CREATE TABLE search_reference (
    type              TEXT NOT NULL,
    id                TEXT NOT NULL,
    param             TEXT NOT NULL,
    target_type       TEXT,  -- the referenced resource, for a relative (or our own absolute) reference
    target_id         TEXT,
    url               TEXT,  -- an absolute or other reference as written
    identifier_system TEXT,  -- a logical reference's identifier, for :identifier
    identifier_value  TEXT
);
CREATE INDEX search_reference_by_resource ON search_reference (type, id);
-- subject=Patient/x, patient=x: [type = ? AND] param = ? AND target_type = ? AND target_id = ?.
CREATE INDEX search_reference_by_target ON search_reference (param, target_type, target_id, type, id);
-- Everything that refers to a resource (compartment searches, _revinclude): target_type = ? AND target_id = ?.
CREATE INDEX search_reference_by_target_any_param ON search_reference (target_type, target_id);

CREATE TABLE search_quantity (
    type       TEXT NOT NULL,
    id         TEXT NOT NULL,
    param      TEXT NOT NULL,
    value      REAL NOT NULL,  -- for comparisons; value_text keeps the exact decimal and its precision
    value_text TEXT NOT NULL,
    system     TEXT,
    code       TEXT,
    unit       TEXT
);
CREATE INDEX search_quantity_by_resource ON search_quantity (type, id);
-- value-quantity=gt5.4|http://unitsofmeasure.org|mg: type = ? AND param = ? AND code = ? AND value > ?.
CREATE INDEX search_quantity_by_value ON search_quantity (type, param, code, value, id);

CREATE TABLE search_number (
    type       TEXT NOT NULL,
    id         TEXT NOT NULL,
    param      TEXT NOT NULL,
    value      REAL NOT NULL,
    value_text TEXT NOT NULL
);
CREATE INDEX search_number_by_resource ON search_number (type, id);
-- type = ? AND param = ? AND value compared with the bounds.
CREATE INDEX search_number_by_value ON search_number (type, param, value, id);

CREATE TABLE search_uri (
    type  TEXT NOT NULL,
    id    TEXT NOT NULL,
    param TEXT NOT NULL,
    uri   TEXT NOT NULL
);
CREATE INDEX search_uri_by_resource ON search_uri (type, id);
-- _profile=url, url=...: type = ? AND param = ? AND uri = ? (or a prefix range for :below).
CREATE INDEX search_uri_by_value ON search_uri (type, param, uri, id);
)sql",
     &index_current_versions},
    // 4: search on a snapshot; the SQL's comments are the design. Filled from the current live
    // versions (fill_snapshot_index).
    {R"sql(
-- 4: search on a snapshot. Index rows belong to a version (seq) and are closed (until_seq) when the
-- version is superseded or deleted, instead of being removed, so a search's later pages can read
-- the index as it was at the first page (seq <= S AND (until_seq IS NULL OR until_seq > S)).
-- The writer purges rows closed longer ago than the snapshot lifetime and records how far it has
-- purged in search_horizon. version_citizens: the citizens of each live version (immutable, like
-- the version). search_composite: composite parameters (two components).
DROP TABLE search_string;  DROP TABLE search_token; DROP TABLE search_date; DROP TABLE search_reference;
DROP TABLE search_quantity; DROP TABLE search_number; DROP TABLE search_uri;

CREATE TABLE search_string (
    seq INTEGER NOT NULL, until_seq INTEGER, type TEXT NOT NULL, param TEXT NOT NULL,
    normalized TEXT NOT NULL, exact TEXT NOT NULL);
CREATE INDEX search_string_by_value ON search_string (type, param, normalized, seq, until_seq);
CREATE INDEX search_string_by_version ON search_string (seq, param, normalized);

CREATE TABLE search_token (
    seq INTEGER NOT NULL, until_seq INTEGER, type TEXT NOT NULL, param TEXT NOT NULL,
    system TEXT, code TEXT, text TEXT);
CREATE INDEX search_token_by_code ON search_token (type, param, code, system, seq, until_seq);
CREATE INDEX search_token_by_version ON search_token (seq, param, code, system);

CREATE TABLE search_date (
    seq INTEGER NOT NULL, until_seq INTEGER, type TEXT NOT NULL, param TEXT NOT NULL,
    low INTEGER NOT NULL, high INTEGER NOT NULL);
CREATE INDEX search_date_by_range ON search_date (type, param, low, high, seq, until_seq);
CREATE INDEX search_date_by_version ON search_date (seq, param, low, high);

CREATE TABLE search_reference (
    seq INTEGER NOT NULL, until_seq INTEGER, type TEXT NOT NULL, param TEXT NOT NULL,
    target_type TEXT, target_id TEXT, url TEXT, identifier_system TEXT, identifier_value TEXT);
CREATE INDEX search_reference_by_target ON search_reference (type, param, target_id, target_type, seq, until_seq);
CREATE INDEX search_reference_by_target_any_source ON search_reference (target_id, target_type, type, param, seq, until_seq);
CREATE INDEX search_reference_by_version ON search_reference (seq, param, target_type, target_id);

CREATE TABLE search_quantity (
    seq INTEGER NOT NULL, until_seq INTEGER, type TEXT NOT NULL, param TEXT NOT NULL,
    value REAL NOT NULL, value_text TEXT NOT NULL, system TEXT, code TEXT, unit TEXT);
CREATE INDEX search_quantity_by_value ON search_quantity (type, param, code, value, seq, until_seq);
CREATE INDEX search_quantity_by_version ON search_quantity (seq, param, value);

CREATE TABLE search_number (
    seq INTEGER NOT NULL, until_seq INTEGER, type TEXT NOT NULL, param TEXT NOT NULL,
    value REAL NOT NULL, value_text TEXT NOT NULL);
CREATE INDEX search_number_by_value ON search_number (type, param, value, seq, until_seq);
CREATE INDEX search_number_by_version ON search_number (seq, param, value);

CREATE TABLE search_uri (
    seq INTEGER NOT NULL, until_seq INTEGER, type TEXT NOT NULL, param TEXT NOT NULL, uri TEXT NOT NULL);
CREATE INDEX search_uri_by_value ON search_uri (type, param, uri, seq, until_seq);
CREATE INDEX search_uri_by_version ON search_uri (seq, param, uri);

-- Composite parameters of R4's supported types all have two components; the first is a token (or,
-- for DocumentReference.relationship, a reference: c1_code holds "Type/id", c1_system NULL). The
-- second is stored in the columns of its type: token c2_system/c2_code; quantity c2_value, c2_system,
-- c2_code; date c2_low/c2_high; string c2_text (normalised).
CREATE TABLE search_composite (
    seq INTEGER NOT NULL, until_seq INTEGER, type TEXT NOT NULL, param TEXT NOT NULL,
    c1_system TEXT, c1_code TEXT,
    c2_system TEXT, c2_code TEXT, c2_value REAL, c2_low INTEGER, c2_high INTEGER, c2_text TEXT);
CREATE INDEX search_composite_by_first ON search_composite (type, param, c1_code, c1_system, seq, until_seq);
CREATE INDEX search_composite_by_version ON search_composite (seq, param);

-- Rows closed (until_seq set) wait here to be purged: partial indexes keep the purge a range scan.
CREATE INDEX search_string_closed ON search_string (until_seq) WHERE until_seq IS NOT NULL;
CREATE INDEX search_token_closed ON search_token (until_seq) WHERE until_seq IS NOT NULL;
CREATE INDEX search_date_closed ON search_date (until_seq) WHERE until_seq IS NOT NULL;
CREATE INDEX search_reference_closed ON search_reference (until_seq) WHERE until_seq IS NOT NULL;
CREATE INDEX search_quantity_closed ON search_quantity (until_seq) WHERE until_seq IS NOT NULL;
CREATE INDEX search_number_closed ON search_number (until_seq) WHERE until_seq IS NOT NULL;
CREATE INDEX search_uri_closed ON search_uri (until_seq) WHERE until_seq IS NOT NULL;
CREATE INDEX search_composite_closed ON search_composite (until_seq) WHERE until_seq IS NOT NULL;

-- Every row with until_seq <= purged_through has been removed: a snapshot S < purged_through can
-- no longer be read (its cursor answers 410). One row.
CREATE TABLE search_horizon (purged_through INTEGER NOT NULL);
INSERT INTO search_horizon VALUES (0);

-- The citizens each live version links to (fhir::prepared_resource::citizens), for search's
-- visibility and compartments; immutable like the version. (citizen_links stays: current only.)
CREATE TABLE version_citizens (
    seq INTEGER NOT NULL, nhs_number TEXT NOT NULL, PRIMARY KEY (seq, nhs_number)) WITHOUT ROWID;
CREATE INDEX version_citizens_by_citizen ON version_citizens (nhs_number, seq);
)sql",
     &fill_snapshot_index},
    // 5: the token modifier :of-type. Filled from the current live versions
    // (index_of_type_rows_of_current_versions).
    {R"sql(
-- 5: :of-type. search_token gets, for each token value from an Identifier, one row per coding of the
-- Identifier's type: param '<code>:of-type' (e.g. 'identifier:of-type'), system and code the
-- coding's, text the Identifier's value as written. search_token_by_code serves them as it is. The
-- fill makes them for the current live versions only, not for the versions superseded before this
-- migration, so, as migration 4 did, the horizon moves to the newest seq: no snapshot older than
-- this migration is read (engine.hpp, invariants 16 and 18).
UPDATE search_horizon
   SET purged_through = max(purged_through, (SELECT coalesce(max(seq), 0) FROM resource_versions));
)sql",
     &index_of_type_rows_of_current_versions},
    // 6: dates by their end, for the comparisons bounded by it (ge, gt, eb: search_plan.cpp).
    {R"sql(
-- date=ge2026-11-01, gt, eb: type = ? AND param = ? AND high > ? (or <=); search_date_by_range
-- leads with low, which these leave open.
CREATE INDEX search_date_by_high ON search_date (type, param, high, low, seq, until_seq);
)sql"},
    // 7: the date indexes with seq right after the date they are ordered by.
    {R"sql(
-- A page sorted by a date reads its rows from these indexes in order (search_plan.cpp, design note
-- 6); with seq next, resources whose dates tie (encounters still in progress all end at the open
-- end) come in version order too, so the page stops at its LIMIT instead of sorting the whole tie.
DROP INDEX search_date_by_range;
CREATE INDEX search_date_by_range ON search_date (type, param, low, seq, high, until_seq);
DROP INDEX search_date_by_high;
CREATE INDEX search_date_by_high ON search_date (type, param, high, seq, low, until_seq);
)sql"},
    // 8: erasure that is final, and the items a Provenance points at. Filled from the live versions
    // of the types that point at items (record_targets_of_live_versions).
    {R"sql(
-- An erasure (engine.hpp, invariant 25) removes a citizen's versions, their index rows and their
-- break-glass grants for good. Versions and grants stay immutable otherwise: the triggers refuse to
-- delete them unless the erasing table names a citizen, which only an erasure's savepoint does
-- (it inserts the row first and deletes it last, so it is never seen committed). UPDATE stays
-- refused always.
CREATE TABLE erasing (nhs_number TEXT NOT NULL);
DROP TRIGGER resource_versions_never_go;
CREATE TRIGGER resource_versions_never_go BEFORE DELETE ON resource_versions
WHEN NOT EXISTS (SELECT 1 FROM erasing)
BEGIN SELECT RAISE(ABORT, 'resource versions are removed only by an erasure'); END;
DROP TRIGGER break_glass_grants_never_go;
CREATE TRIGGER break_glass_grants_never_go BEFORE DELETE ON break_glass_grants
WHEN NOT EXISTS (SELECT 1 FROM erasing)
BEGIN SELECT RAISE(ABORT, 'break-glass grants are removed only by an erasure'); END;

-- The stored items each live version of a pointing type (a Provenance's target and entity.what)
-- points at (fhir::item_targets): its visibility follows theirs (visibility_sql.hpp, note 3).
-- Immutable like the version, removed only with it by an erasure.
CREATE TABLE version_targets (
    seq INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (seq, type, id)) WITHOUT ROWID;
CREATE INDEX version_targets_by_item ON version_targets (type, id, seq);
)sql",
     &record_targets_of_live_versions},
    // 9: break-glass grants bound to the role that opened them; facets with their code system.
    {R"sql(
-- A break-glass grant opens the record for the user, organisation and role that opened it (engine.hpp,
-- invariant 15): the same user's token for another role does not inherit it. Grants made before
-- this have no role, match no caller, and stay as evidence; a clinician breaks the glass again.
ALTER TABLE break_glass_grants ADD COLUMN role TEXT NOT NULL DEFAULT '';
DROP INDEX break_glass_grants_by_caller;
CREATE INDEX break_glass_grants_by_caller ON break_glass_grants (nhs_number, organisation, user, role, until_time);
-- Facets become "element=system|code" (refill_facets), the one change ever made to a stored version;
-- the trigger that refuses changes is lifted for it and put back by the fill, in this transaction.
DROP TRIGGER resource_versions_never_change;
)sql",
     &refill_facets},
    // 10: fewer index entries for every version written (docs/BENCHMARKS.md, the write path). A
    // resource's versions are found by (type, id, version_id), the unique key, whose order is
    // theirs; references to an item, whatever holds them, by naming each (type, param) that may
    // (search_includes.cpp): neither needs an index of its own. A union parameter (Observation's
    // combo-code: code | component-code) is searched through its parts' rows, and a narrowing
    // (Observation's patient: subject.where(resolve() is Patient)) through its parameter's rows of
    // that target type; their own go (remove_derived_rows). A
    // citizen's record is read from version_citizens and resources (engine.hpp, invariant 5), so
    // citizen_links, which repeated it, goes.
    {R"sql(
DROP TABLE IF EXISTS citizen_links;
DROP INDEX IF EXISTS resource_versions_by_resource;
DROP INDEX IF EXISTS search_reference_by_target_any_source;
)sql",
     &remove_derived_rows},
    // 11: Bulk Data export jobs (storage/exports.hpp).
    {R"sql(
-- A job: who asked (the only organisation and client certificate that may poll and download), what
-- (request: the gateway's JSON), the snapshot it reads, and where its worker is. A worker holds it
-- while lease_until has not passed; status accepted, in-progress, completed or failed.
CREATE TABLE IF NOT EXISTS export_jobs (
    id               TEXT    PRIMARY KEY,
    status           TEXT    NOT NULL CHECK (status IN ('accepted', 'in-progress', 'completed', 'failed')),
    request          TEXT    NOT NULL,
    organisation     TEXT    NOT NULL,
    client           TEXT    NOT NULL,
    snapshot         INTEGER NOT NULL,
    transaction_time INTEGER NOT NULL,
    created          INTEGER NOT NULL,
    cursor           TEXT    NOT NULL,
    written          INTEGER NOT NULL,
    worker           TEXT,
    lease_until      INTEGER,
    finished         INTEGER,
    expires          INTEGER,
    error            TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS export_jobs_by_status ON export_jobs (status, created);
-- Its output: NDJSON files of one type each, numbered in the order written.
CREATE TABLE IF NOT EXISTS export_files (
    job_id TEXT NOT NULL, number INTEGER NOT NULL, type TEXT NOT NULL, count INTEGER NOT NULL,
    ndjson BLOB NOT NULL, PRIMARY KEY (job_id, number));
-- The citizens an identifiable export has written to its access log: once each per job.
CREATE TABLE IF NOT EXISTS export_citizens (
    job_id TEXT NOT NULL, nhs_number TEXT NOT NULL, PRIMARY KEY (job_id, nhs_number)) WITHOUT ROWID;
)sql"},
    // 12: the national data opt-out (relational/opt_outs.hpp), filled from the live Consents.
    {R"sql(
-- For the current live version of a Consent that records a citizen's opt-out from the use of their
-- data for planning and research (scope research, provision deny): pseudonymised exports leave them out.
CREATE TABLE IF NOT EXISTS opt_outs (
    type       TEXT NOT NULL,
    id         TEXT NOT NULL,
    nhs_number TEXT NOT NULL,
    PRIMARY KEY (type, id, nhs_number),
    FOREIGN KEY (type, id) REFERENCES resources (type, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS opt_outs_by_nhs_number ON opt_outs (nhs_number);
)sql",
     &record_opt_outs_of_live_consents},
    // 13: an export file's bytes move to a database of their own (relational/export_file_bytes.hpp),
    // and its row here references them. The files written before are not moved: every job made
    // before fails, saying why, and expires at once (its citizens' access-log entries stay).
    {R"sql(
UPDATE export_jobs SET status = 'failed', worker = NULL, lease_until = NULL,
    finished = coalesce(finished, unixepoch() * 1000000), expires = unixepoch() * 1000000,
    error = CASE WHEN status = 'failed' THEN error
                 ELSE 'made before an upgrade of caregate that moved export files; export again' END;
DROP TABLE export_files;
CREATE TABLE export_files (
    job_id TEXT NOT NULL, number INTEGER NOT NULL, type TEXT NOT NULL, count INTEGER NOT NULL,
    content INTEGER NOT NULL, PRIMARY KEY (job_id, number)) WITHOUT ROWID;
)sql"},
    // 14: an export file's bytes move again, from that database to a file of their own in a directory
    // beside the store's (relational/export_file_bytes.hpp), as deleting gigabytes from a database
    // reads them all. Every job made before fails, saying why, and expires at once; its rows go, and
    // the database they referenced is deleted once the store opens.
    {R"sql(
UPDATE export_jobs SET status = 'failed', worker = NULL, lease_until = NULL,
    finished = coalesce(finished, unixepoch() * 1000000), expires = unixepoch() * 1000000,
    error = CASE WHEN status = 'failed' THEN error
                 ELSE 'made before an upgrade of caregate that moved export files; export again' END;
DELETE FROM export_files;
)sql"},
    // 15: a file of an export written in parts (an export of every type at once fills a file of
    // each type, committed a part at a time): a row per part, each a piece of stored bytes.
    {R"sql(
CREATE TABLE export_file_parts (
    job_id TEXT NOT NULL, number INTEGER NOT NULL, part INTEGER NOT NULL, type TEXT NOT NULL,
    count INTEGER NOT NULL, content INTEGER NOT NULL, start INTEGER NOT NULL, length INTEGER NOT NULL,
    PRIMARY KEY (job_id, number, part)) WITHOUT ROWID;
INSERT INTO export_file_parts SELECT job_id, number, 0, type, count, content, 0, -1 FROM export_files;
DROP TABLE export_files;
ALTER TABLE export_file_parts RENAME TO export_files;
)sql"},
    // 16: a Device is its patient's item (the Patient compartment places it by Device.patient), so
    // the Devices stored before link to their citizens too, as the versions written from now on do;
    // until then one naming a citizen was seen by every role that reads Devices. The trigger that
    // refuses changes to versions is lifted for the fill (relink_devices) and put back by it.
    {R"sql(
DROP TRIGGER resource_versions_never_change;
)sql",
     &relink_devices},
    // 17: a Binary's bytes, apart from its JSON (stored without `data`), in parts of at most 1 MiB
    // (relational/binary_parts.hpp): a read or a write holds one part at a time, and a version's
    // JSON stays small enough to parse on every read. Immutable as the versions are, removed only with
    // one by an erasure. A rowid table: its rows are large, which WITHOUT ROWID tables are not for.
    // Written to apply over a database that has the table already (one a test took back to an
    // earlier schema by undoing other migrations).
    {R"sql(
CREATE TABLE IF NOT EXISTS binary_parts (
    seq INTEGER NOT NULL, part INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (seq, part));
CREATE TRIGGER IF NOT EXISTS binary_parts_never_change BEFORE UPDATE ON binary_parts
BEGIN SELECT RAISE(ABORT, 'a Binary''s bytes are immutable'); END;
CREATE TRIGGER IF NOT EXISTS binary_parts_never_go BEFORE DELETE ON binary_parts
WHEN NOT EXISTS (SELECT 1 FROM erasing)
BEGIN SELECT RAISE(ABORT, 'a Binary''s bytes are removed only by an erasure'); END;
)sql"},
}};

} // namespace

int current_schema_version() noexcept { return static_cast<int>(migrations.size()); }

fhir::status migrate(connection& db) {
    if (auto begun = db.exec_script("BEGIN IMMEDIATE", "migrating the schema"); !begun)
        return begun;
    auto rollback = [&db](fhir::error failure) -> fhir::status {
        db.exec_script("ROLLBACK", "migrating the schema");
        return failure;
    };

    auto found = detail::as_sqlite(db).pragma("PRAGMA user_version");
    if (!found)
        return rollback(std::move(found).failure());
    const int version = std::stoi(found->empty() ? std::string("0") : *found);
    if (version > current_schema_version())
        return rollback(fhir::error::make(
            fhir::category::fault, "exception",
            "the database schema is version " + std::to_string(version) +
                ", newer than this build of caregate knows (" + std::to_string(current_schema_version()) +
                "); run a newer caregate or restore a matching backup"));
    if (version < 0)
        return rollback(fhir::error::make(fhir::category::fault, "exception",
                                          "the database schema version is negative: not a caregate database"));

    for (int next = version; next < current_schema_version(); ++next) {
        const migration& step = migrations[static_cast<std::size_t>(next)];
        if (auto applied = db.exec_script(step.sql, "migrating the schema"); !applied)
            return rollback(std::move(applied).failure());
        if (step.fill)
            if (auto filled = step.fill(db); !filled)
                return rollback(std::move(filled).failure());
    }
    if (version != current_schema_version())
        if (auto set = db.exec_script("PRAGMA user_version = " + std::to_string(current_schema_version()),
                                      "migrating the schema");
            !set)
            return rollback(std::move(set).failure());

    if (auto committed = db.exec_script("COMMIT", "migrating the schema"); !committed)
        return rollback(std::move(committed).failure());
    return {};
}

} // namespace caregate::storage::detail
