// The store's schema and its migrations, in order. A migration is never edited once released: a
// change to the schema is a new entry at the end of `migrations`.
#include "schema.hpp"

#include <array>
#include <string>

namespace caregate::storage::detail {
namespace {

// Migration n takes the database from user_version n to n + 1.
constexpr std::array<const char*, 2> migrations = {
    // 1: versioned resources, the current-version pointer, citizen links.
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
)sql",
    // 2: access control and audit: who owns each version and what it is about (owner, citizens,
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
)sql",
};

} // namespace

int current_schema_version() noexcept { return static_cast<int>(migrations.size()); }

fhir::status migrate(connection& db) {
    if (auto begun = db.exec_script("BEGIN IMMEDIATE", "migrating the schema"); !begun)
        return begun;
    auto rollback = [&db](fhir::error failure) -> fhir::status {
        db.exec_script("ROLLBACK", "migrating the schema");
        return failure;
    };

    auto found = db.pragma("PRAGMA user_version");
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

    for (int next = version; next < current_schema_version(); ++next)
        if (auto applied = db.exec_script(migrations[static_cast<std::size_t>(next)], "migrating the schema");
            !applied)
            return rollback(std::move(applied).failure());
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
