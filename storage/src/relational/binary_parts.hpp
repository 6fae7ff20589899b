// A Binary's bytes in the table binary_parts (private to the relational engine): written by the
// writer with the version they belong to, read a part at a time, removed only with the version.
//
// Invariants:
//  1. A version's bytes are rows (seq, part) for part 0, 1, ... each of at most
//     store::binary_part_bytes, inserted in the version's own transaction: a Binary is committed
//     with all of its bytes or with none of them, and its versions keep theirs (immutable, as the
//     version is). A Binary without bytes has no rows.
//  2. Nothing is copied whole: a part is bound straight from the caller's bytes (SQLite) or as the
//     hex text of that part alone (PostgreSQL, whose bytea is filled by decode(..., 'hex')), and a
//     read holds one part at a time. On SQLite the writer's page cache is held to about a part while
//     the parts are written, so that their pages spill to the WAL rather than stay in it until the
//     commit (a second copy: measured, tests/crash/large_binary_test.py).
//  3. An erasure removes them with the version (erase_version_rows), so a Binary whose context is
//     erased (the version pointing at an erased item goes too, erasure.cpp) leaves no bytes behind.
#pragma once

#include "database.hpp"

#include <cstdint>
#include <functional>
#include <string_view>

namespace caregate::storage::detail {

/// Inserts `bytes` as the parts of version `seq` (invariant 1). `postgresql`: the database is
/// PostgreSQL (invariant 2's hex text).
fhir::status insert_binary_parts(connection& db, std::int64_t seq, std::string_view bytes, bool postgresql);

/// Gives the parts of the version of Binary `id` numbered `version_id` to `each`, in order, with the
/// size of them all. not_found when there is no such version.
fhir::status read_binary_parts(connection& db, std::string_view id, std::int64_t version_id, bool postgresql,
                               const std::function<fhir::status(std::string_view, std::size_t)>& each);

/// Removes the parts of version `seq` (an erasure's, invariant 3).
fhir::status erase_binary_parts(connection& db, std::int64_t seq);

} // namespace caregate::storage::detail
