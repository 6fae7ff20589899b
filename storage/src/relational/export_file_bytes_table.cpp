// Export files' bytes in the table export_file_bytes, on connections of their own (PostgreSQL;
// export_file_bytes.hpp, where the invariants are): a small pool of connections for puts, gets and
// deletions, each put its own transaction.
#include "export_file_bytes.hpp"

#include "engine.hpp"

namespace caregate::storage::detail {

namespace {

constexpr std::string_view keeping = "keeping an export file";

/// A connection the pool may keep: at most this many idle (one per export worker and download).
constexpr std::size_t idle_kept = 4;

/// Rows deleted to a transaction (invariant 2): a deletion holds a bounded part of the table.
constexpr std::size_t files_removed_at_once = 8;

/// Runs `work()` in a transaction of its own on `db`: committed when it succeeds (a failed COMMIT
/// is its failure), rolled back when it fails.
template <class T, class Work>
fhir::result<T> in_transaction(connection& db, Work&& work) {
    static const std::string begin = "BEGIN", commit = "COMMIT", rollback = "ROLLBACK";
    if (auto begun = db.run(begin, keeping); !begun)
        return std::move(begun).failure();
    auto done = work();
    if (done)
        if (auto committed = db.run(commit, keeping); !committed)
            done = std::move(committed).failure();
    if (!done && db.in_transaction())
        (void)db.run(rollback, keeping);
    return done;
}

} // namespace

class bytes_in_table final : public export_file_bytes {
public:
    explicit bytes_in_table(connection_opener open) : open_(std::move(open)) {}

    fhir::result<std::vector<stored_piece>> put(std::string_view job_id,
                                                std::span<const std::string_view> pieces) override;
    fhir::result<std::optional<std::string>> get(std::string_view job_id, const stored_piece& piece) override;
    fhir::result<std::vector<std::string>> jobs() override;
    fhir::result<std::vector<std::int64_t>> ids_of(std::string_view job_id) override;
    fhir::status remove(std::string_view job_id, std::span<const std::int64_t> ids) override;

private:
    template <class T, class Use>
    fhir::result<T> with_connection(Use&& use);

    connection_opener open_;
    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<connection>> idle_;
};

template <class T, class Use>
fhir::result<T> bytes_in_table::with_connection(Use&& use) {
    std::unique_ptr<connection> db;
    {
        std::lock_guard lock(pool_mutex_);
        if (!idle_.empty()) {
            db = std::move(idle_.back());
            idle_.pop_back();
        }
    }
    if (!db) {
        auto opened = open_();
        if (!opened)
            return std::move(opened).failure();
        db = std::move(*opened);
    }
    auto result = use(*db);
    if (db->usable() && !db->in_transaction()) {
        std::lock_guard lock(pool_mutex_);
        if (idle_.size() < idle_kept)
            idle_.push_back(std::move(db));
    }
    return result;
}

fhir::result<std::vector<stored_piece>> bytes_in_table::put(std::string_view job_id,
                                                            std::span<const std::string_view> pieces) {
    return with_connection<std::vector<stored_piece>>([&](connection& db) {
        return in_transaction<std::vector<stored_piece>>(db, [&]() -> fhir::result<std::vector<stored_piece>> {
            static const std::string insert =
                "INSERT INTO export_file_bytes (job_id, ndjson) VALUES (?1, ?2) RETURNING id";
            std::vector<stored_piece> stored;
            for (const std::string_view piece : pieces) {
                auto prepared = db.prepare(insert, keeping);
                if (!prepared)
                    return std::move(prepared).failure();
                statement query(*prepared);
                query.bind(1, job_id).bind(2, piece);
                if (const int rc = query.step(); rc != step_row)
                    return storage_failure(rc, keeping);
                stored.push_back({query.integer(0), 0, -1});
                // Stepped to its end, so that the insert is done before COMMIT (a statement with
                // RETURNING finishes its work only then).
                if (const int rc = query.step(); rc != step_done)
                    return storage_failure(rc, keeping);
            }
            return stored;
        });
    });
}

fhir::result<std::optional<std::string>> bytes_in_table::get(std::string_view job_id, const stored_piece& piece) {
    // A row holds a whole piece (put gives start 0, length -1).
    return with_connection<std::optional<std::string>>([&](connection& db) {
        static const std::string sql = "SELECT ndjson FROM export_file_bytes WHERE id = ?1 AND job_id = ?2";
        return query_one<std::string>(
            db, sql, keeping, [&](statement& q) { q.bind(1, piece.id).bind(2, job_id); },
            [](const statement& row) { return row.blob(0); });
    });
}

namespace {

template <class T, class Bind, class Read>
fhir::result<std::vector<T>> all_rows(connection& db, const std::string& sql, Bind&& bind, Read&& read) {
    auto prepared = db.prepare(sql, keeping);
    if (!prepared)
        return std::move(prepared).failure();
    statement query(*prepared);
    bind(query);
    std::vector<T> rows;
    int rc;
    while ((rc = query.step()) == step_row)
        rows.push_back(read(query));
    if (rc != step_done)
        return storage_failure(rc, keeping);
    return rows;
}

} // namespace

fhir::result<std::vector<std::string>> bytes_in_table::jobs() {
    return with_connection<std::vector<std::string>>([](connection& db) {
        static const std::string sql = "SELECT DISTINCT job_id FROM export_file_bytes";
        return all_rows<std::string>(db, sql, [](statement&) {}, [](const statement& row) { return row.text(0); });
    });
}

fhir::result<std::vector<std::int64_t>> bytes_in_table::ids_of(std::string_view job_id) {
    return with_connection<std::vector<std::int64_t>>([&](connection& db) {
        static const std::string sql = "SELECT id FROM export_file_bytes WHERE job_id = ?1 ORDER BY id";
        return all_rows<std::int64_t>(
            db, sql, [&](statement& q) { q.bind(1, job_id); }, [](const statement& row) { return row.integer(0); });
    });
}

fhir::status bytes_in_table::remove(std::string_view job_id, std::span<const std::int64_t> ids) {
    static const std::string sql = "DELETE FROM export_file_bytes WHERE id = ?1 AND job_id = ?2";
    while (!ids.empty()) {
        const auto step = ids.first(std::min<std::size_t>(ids.size(), files_removed_at_once));
        ids = ids.subspan(step.size());
        auto removed = with_connection<bool>([&](connection& db) {
            return in_transaction<bool>(db, [&]() -> fhir::result<bool> {
                for (const std::int64_t id : step)
                    if (auto gone = execute(db, sql, keeping, [&](statement& q) { q.bind(1, id).bind(2, job_id); }); !gone)
                        return std::move(gone).failure();
                return true;
            });
        });
        if (!removed)
            return std::move(removed).failure();
    }
    return {};
}

std::unique_ptr<export_file_bytes> export_file_bytes_in_table(connection_opener open) {
    return std::make_unique<bytes_in_table>(std::move(open));
}

} // namespace caregate::storage::detail
