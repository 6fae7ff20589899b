// The PostgreSQL engine's schema: its own ordered list of migrations (PostgreSQL's DDL, not SQLite's),
// holding the same tables, columns and indexes the engine's SQL reads and writes, and the one
// function that brings a database up to date at open.
//
// Invariants:
//  - every text column compares and sorts bytewise (COLLATE "C"), as SQLite's do, whatever the
//    database's locale: page cursors and :above/:below bounds must order the same on both engines;
//  - the append-only rules of the SQLite schema hold here by triggers too (versions, grants, the
//    audit log; versions and grants removable only while an erasure's `erasing` row exists);
//  - the SQLite functions the engine's SQL calls (instr, two-argument max and min) exist, with
//    SQLite's meaning;
//  - several nodes opening one database at once migrate it once (an advisory lock around it);
//  - every foreign key is checked at COMMIT (migration 5), so INSERTs into different tables may reach
//    the server in any order within a transaction (the writer batches them per table: row_batches.hpp).
#pragma once

#include "../relational/database.hpp"

namespace caregate::storage::detail {

/// The schema version this build writes (caregate_schema.version after migrating).
int current_postgresql_schema_version() noexcept;

/// Applies, in one transaction and under an advisory lock, every migration the database has not had
/// yet. Errors: fault when the database's schema is newer than this build knows, or a migration fails
/// (then nothing changes); busy when the database cannot be reached.
fhir::status migrate_postgresql(connection& db);

/// The key of the advisory lock a write transaction takes first (pg_advisory_xact_lock), so that the
/// nodes' writers take turns: one writer at a time across the nodes, as on SQLite.
inline constexpr long long writer_lock_key = 0x63617265676174; // "caregat"

} // namespace caregate::storage::detail
