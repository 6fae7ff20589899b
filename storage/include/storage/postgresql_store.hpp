// The engine beyond one machine: the relational store (storage/relational_store.hpp) on a PostgreSQL
// database that several caregate nodes share. Each node keeps its own reader pool and its own writer
// committing in groups; the writers take turns through one advisory lock held for each group's
// transaction, so that what SQLite's single writer guarantees (one audit chain, lastUpdated that only
// grows, conditions decided with no write between check and write) holds across the nodes. Nothing a
// node keeps in memory can make an answer stale: a standing is served from memory only to a request
// that read, from the database, the access generation it was cached at (every group that changes
// anything but the audit log raises it). The gateway opens it through open_store with a
// `postgresql://` name.
#pragma once

#include "storage/relational_store.hpp"

#include <memory>
#include <string>

namespace caregate::storage {

struct postgresql_options : store_settings {
    /// libpq's connection string: a `postgresql://user@host:port/database?...` URI or key=value words.
    std::string conninfo;
    /// Read connections kept open for readers; a reader beyond this opens a fresh one.
    unsigned reader_connections = 8;
    /// Threads that run the batches of current-version reads (store::read_current_async), each with
    /// one batch in the database at a time and answering its batch's reads when it is back; 0: one a
    /// core. More batches at once would share fewer round trips; fewer would leave a core idle while
    /// the one batch waits on the database (bench/README.md, docs/BENCHMARKS.md: read batches).
    unsigned read_batch_threads = 0;
};

class postgresql_store final : public relational_store {
public:
    /// Connects, migrates the schema (once, whichever node comes first) and starts the writer.
    /// Errors: busy (the database cannot be reached), fault (a newer schema than this build).
    static fhir::result<std::unique_ptr<postgresql_store>> open(const postgresql_options& options);
    ~postgresql_store() override;

    /// Nothing to do: every commit is durable (synchronous_commit) when it is acknowledged.
    fhir::status make_durable() override;

private:
    explicit postgresql_store(std::unique_ptr<relational_engine> engine);
};

} // namespace caregate::storage
