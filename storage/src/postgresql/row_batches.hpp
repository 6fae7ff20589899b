// The rows of the writer's INSERTs, held back and sent a table at a time (postgresql_connection, in
// libpq.hpp, decides when). A transaction Bundle of a hundred resources runs about a thousand
// one-to-a-few-row INSERTs into a dozen tables; the server's work per statement (executor start-up,
// locks, a protocol message each way) was most of the single writer's backend time, so the rows of
// each table travel in a few statements of up to max_rows_per_statement rows instead.
//
// Invariants:
//  - only an INSERT whose VALUES are tuples of bare placeholders numbered in order, with nothing after
//    them or ON CONFLICT DO NOTHING, is batched (a DO UPDATE could meet its own row twice in one
//    statement, which PostgreSQL refuses); its rows are sent in the order they were added;
//  - rows of one shape (table, columns, conflict clause) are sent in the order they were added; rows of
//    different shapes may be sent in another order than they were added (foreign keys are checked at
//    COMMIT: postgresql/schema.hpp); every row is sent before any later statement that is not a
//    batched INSERT (the connection sends the batches before it sends anything else), so a read, an
//    UPDATE or a savepoint's end sees or covers it;
//  - a statement carries at most max_rows_per_statement rows and fewer than 65,536 values (the
//    protocol's limit), cut into a few fixed sizes so that each size of each shape is prepared once.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::storage::detail {

/// "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING" has head
/// "INSERT INTO t (a, b) VALUES ", width 2 and tail " ON CONFLICT DO NOTHING".
struct insert_shape {
    std::string head;
    std::size_t width = 0;
    std::string tail;
};

/// The shape of `sql` (PostgreSQL's dialect, as translate_to_postgresql gives it) when it may be
/// batched (the first invariant above); nothing otherwise.
std::optional<insert_shape> batchable_insert(std::string_view sql);

/// The INSERT of `rows` rows of `shape`, placeholders numbered $1 on, row by row.
std::string insert_rows_sql(const insert_shape& shape, std::size_t rows);

/// Most rows one batched INSERT carries; the sizes a run of rows is cut into, largest first.
inline constexpr std::size_t max_rows_per_statement = 256;
inline constexpr std::size_t statement_sizes[] = {256, 64, 16, 4, 1};

/// The rows of one shape not yet sent: width values a row, NULLs marked.
struct row_batch {
    const insert_shape* shape = nullptr;
    std::vector<std::string> values;
    std::vector<char> nulls; ///< one a value: 1 when NULL
    std::size_t rows() const noexcept { return shape->width ? values.size() / shape->width : 0; }
};

/// The batches of one connection, in the order their shapes were first added since the last take.
class row_batches {
public:
    /// The connection's one copy of `shape`, which a statement keeps for its life.
    const insert_shape* intern(insert_shape shape);
    /// Appends the rows a statement of `shape` bound (values.size() a multiple of its width); the
    /// strings are moved from. Returns whether the shape's batch now holds a statement's worth.
    bool add(const insert_shape* shape, std::vector<std::string>& values, const std::vector<bool>& nulls);
    bool empty() const noexcept { return batches_.empty(); }
    /// Every batch, leaving none.
    std::vector<row_batch> take();

private:
    std::map<std::string, std::unique_ptr<insert_shape>> shapes_;
    std::vector<row_batch> batches_;
};

} // namespace caregate::storage::detail
