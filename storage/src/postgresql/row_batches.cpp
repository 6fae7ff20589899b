// The writer's INSERT rows, batched per shape: see row_batches.hpp.
#include "row_batches.hpp"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <utility>

namespace caregate::storage::detail {
namespace {

void skip_spaces(std::string_view sql, std::size_t& at) {
    while (at < sql.size() && sql[at] == ' ')
        ++at;
}

/// Reads "$N" at `at` (N the expected number), moving past it.
bool placeholder(std::string_view sql, std::size_t& at, std::size_t expected) {
    if (at >= sql.size() || sql[at] != '$')
        return false;
    std::size_t end = at + 1, number = 0;
    while (end < sql.size() && std::isdigit(static_cast<unsigned char>(sql[end])))
        number = number * 10 + static_cast<std::size_t>(sql[end++] - '0');
    if (end == at + 1 || number != expected)
        return false;
    at = end;
    return true;
}

} // namespace

std::optional<insert_shape> batchable_insert(std::string_view sql) {
    constexpr std::string_view insert_into = "INSERT INTO ", values = " VALUES (";
    if (sql.substr(0, insert_into.size()) != insert_into)
        return std::nullopt;
    const std::size_t values_at = sql.find(values);
    if (values_at == std::string_view::npos)
        return std::nullopt;
    insert_shape shape;
    shape.head = std::string(sql.substr(0, values_at + values.size() - 1));
    if (shape.head.find('$') != std::string::npos)
        return std::nullopt;
    std::size_t at = values_at + values.size() - 1, next = 1;
    for (bool first_tuple = true;; first_tuple = false) { // "($a, $b), ($c, $d)"
        if (at >= sql.size() || sql[at] != '(')
            return std::nullopt;
        ++at;
        std::size_t in_tuple = 0;
        for (;;) {
            skip_spaces(sql, at);
            if (!placeholder(sql, at, next++))
                return std::nullopt;
            ++in_tuple;
            skip_spaces(sql, at);
            if (at < sql.size() && sql[at] == ',') {
                ++at;
                continue;
            }
            if (at < sql.size() && sql[at] == ')') {
                ++at;
                break;
            }
            return std::nullopt;
        }
        if (first_tuple)
            shape.width = in_tuple;
        else if (in_tuple != shape.width)
            return std::nullopt;
        std::size_t after = at;
        skip_spaces(sql, after);
        if (after < sql.size() && sql[after] == ',') {
            at = after + 1;
            skip_spaces(sql, at);
            continue;
        }
        break;
    }
    shape.tail = std::string(sql.substr(at));
    if (shape.tail != "" && shape.tail != " ON CONFLICT DO NOTHING")
        return std::nullopt;
    return shape;
}

std::string insert_rows_sql(const insert_shape& shape, std::size_t rows) {
    std::string sql = shape.head;
    std::size_t number = 0;
    for (std::size_t row = 0; row < rows; ++row) {
        sql += row ? ", (" : "(";
        for (std::size_t column = 0; column < shape.width; ++column)
            sql += (column ? ", $" : "$") + std::to_string(++number);
        sql += ')';
    }
    return sql + shape.tail;
}

const insert_shape* row_batches::intern(insert_shape shape) {
    std::string key = shape.head + '\n' + std::to_string(shape.width) + '\n' + shape.tail;
    auto& kept = shapes_[std::move(key)];
    if (!kept)
        kept = std::make_unique<insert_shape>(std::move(shape));
    return kept.get();
}

bool row_batches::add(const insert_shape* shape, std::vector<std::string>& values, const std::vector<bool>& nulls) {
    assert(shape->width > 0 && values.size() % shape->width == 0 && nulls.size() == values.size());
    row_batch* batch = nullptr;
    for (row_batch& candidate : batches_) // a dozen shapes at most: a scan is the cheapest lookup
        if (candidate.shape == shape)
            batch = &candidate;
    if (!batch)
        batch = &batches_.emplace_back(row_batch{shape, {}, {}});
    for (std::size_t i = 0; i < values.size(); ++i) {
        batch->values.push_back(std::move(values[i]));
        batch->nulls.push_back(nulls[i] ? 1 : 0);
    }
    const std::size_t per_statement = std::min(max_rows_per_statement, 65535 / shape->width);
    return batch->rows() >= per_statement;
}

std::vector<row_batch> row_batches::take() { return std::exchange(batches_, {}); }

} // namespace caregate::storage::detail
