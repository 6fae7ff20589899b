// The store's schema and its migrations, in order. A migration is never edited once released: a
// change to the schema is a new entry at the end of `migrations`.
#include "schema.hpp"

#include <array>
#include <string>

namespace caregate::storage::detail {
namespace {

// Migration n takes the database from user_version n to n + 1.
constexpr std::array<const char*, 1> migrations = {
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
