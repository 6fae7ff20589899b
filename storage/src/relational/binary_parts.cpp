// A Binary's bytes in binary_parts, a part at a time: see binary_parts.hpp.
#include "binary_parts.hpp"

#include "engine.hpp"

#include "storage/store.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

namespace caregate::storage::detail {

namespace {

constexpr std::string_view storing = "storing a Binary's bytes";
constexpr std::string_view reading = "reading a Binary's bytes";

const std::string insert_sql = "INSERT INTO binary_parts (seq, part, bytes) VALUES (?1, ?2, ?3)";
const std::string insert_hex_sql = "INSERT INTO binary_parts (seq, part, bytes) VALUES (?1, ?2, decode(?3, 'hex'))";
const std::string seq_sql = "SELECT seq FROM resource_versions WHERE type = 'Binary' AND id = ?1 AND version_id = ?2";
const std::string part_sql = "SELECT bytes FROM binary_parts WHERE seq = ?1 AND part = ?2";
const std::string part_hex_sql = "SELECT encode(bytes, 'hex') FROM binary_parts WHERE seq = ?1 AND part = ?2";
const std::string size_sql = "SELECT coalesce(sum(length(bytes)), 0) FROM binary_parts WHERE seq = ?1";
const std::string erase_sql = "DELETE FROM binary_parts WHERE seq = ?1";

/// Bytes above which a Binary's parts are written with the writer's page cache held small (more than one
/// part: one part's copy in the cache is as much as a read holds), and that size: about one part.
constexpr std::size_t spilled_above = store::binary_part_bytes;
constexpr std::size_t cache_kib_while_writing = 1024;

/// The writer's page cache size as PRAGMA cache_size gives it (always a row).
fhir::result<std::string> cache_size_now(connection& db) {
    auto found = query_one<std::string>(
        db, "PRAGMA cache_size", storing, [](statement&) {}, [](const statement& row) { return row.text(0); });
    if (!found)
        return std::move(found).failure();
    return found->value_or(std::string());
}

fhir::error fault(std::string_view doing) {
    return fhir::error::make(fhir::category::fault, "exception", "storage failure while " + std::string(doing));
}

/// Lower-case hex of `bytes`, without separators (OpenSSL's).
std::string hex_of(std::string_view bytes) {
    std::string out(bytes.size() * 2 + 1, '\0');
    std::size_t written = 0;
    if (!bytes.empty() && OPENSSL_buf2hexstr_ex(out.data(), out.size(), &written,
                                                reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                                                '\0') != 1)
        return {};
    out.resize(bytes.empty() ? 0 : written - 1); // written counts the terminating NUL
    return out;
}

bool bytes_of_hex(const std::string& hex, std::string& out) {
    out.assign(hex.size() / 2, '\0');
    std::size_t length = 0;
    if (!hex.empty() && OPENSSL_hexstr2buf_ex(reinterpret_cast<unsigned char*>(out.data()), out.size(), &length,
                                              hex.c_str(), '\0') != 1)
        return false;
    out.resize(length);
    return true;
}

/// The parts themselves (invariant 1), an INSERT each.
fhir::status insert_parts(connection& db, std::int64_t seq, std::string_view bytes, bool postgresql) {
    std::int64_t part = 0;
    for (std::size_t at = 0; at < bytes.size(); at += store::binary_part_bytes, ++part) {
        const std::string_view piece = bytes.substr(at, store::binary_part_bytes);
        const std::string hex = postgresql ? hex_of(piece) : std::string();
        if (postgresql && hex.empty())
            return fault(storing);
        auto inserted = execute(db, postgresql ? insert_hex_sql : insert_sql, storing, [&](statement& insert) {
            insert.bind(1, seq).bind(2, part);
            if (postgresql)
                insert.bind(3, std::string_view(hex));
            else
                insert.bind_blob(3, piece);
        });
        if (!inserted)
            return inserted;
        if (postgresql) // one part's hex waits to be sent, never all of them (invariant 2)
            if (auto sent = db.settle(storing); !sent)
                return sent;
    }
    return {};
}

} // namespace

fhir::status insert_binary_parts(connection& db, std::int64_t seq, std::string_view bytes, bool postgresql) {
    // SQLite: the parts' pages would stay in the writer's page cache (64 MiB) until the commit, a second
    // copy of the bytes. Held to a few parts while they are written, the cache spills them to the WAL
    // instead (invariant 2), and is given its size back after.
    std::optional<std::string> cache_size;
    if (!postgresql && bytes.size() > spilled_above) {
        auto current = cache_size_now(db);
        if (!current)
            return std::move(current).failure();
        if (auto held = db.exec_script("PRAGMA cache_size = -" + std::to_string(cache_kib_while_writing), storing); !held)
            return held;
        cache_size = std::move(*current);
    }
    auto inserted = insert_parts(db, seq, bytes, postgresql);
    if (cache_size)
        if (auto restored = db.exec_script("PRAGMA cache_size = " + *cache_size, storing); !restored && inserted)
            return restored;
    return inserted;
}


fhir::status read_binary_parts(connection& db, std::string_view id, std::int64_t version_id, bool postgresql,
                               const std::function<fhir::status(std::string_view, std::size_t)>& each) {
    auto integer = [](const statement& row) { return row.integer(0); };
    auto seq = query_one<std::int64_t>(
        db, seq_sql, reading, [&](statement& q) { q.bind(1, id).bind(2, version_id); }, integer);
    if (!seq)
        return std::move(seq).failure();
    if (!*seq)
        return fhir::error::make(fhir::category::not_found, "not-found",
                                 "Binary/" + std::string(id) + " has no version " + std::to_string(version_id));
    // The sizes from the parts' headers, without reading their bytes (SQLite's length() of a blob,
    // PostgreSQL's of a bytea kept out of line). sum() gives a row always.
    auto whole = query_one<std::int64_t>(db, size_sql, reading, [&](statement& q) { q.bind(1, **seq); }, integer);
    if (!whole)
        return std::move(whole).failure();
    std::string bytes;
    for (std::int64_t part = 0;; ++part) {
        auto prepared = db.prepare(postgresql ? part_hex_sql : part_sql, reading);
        if (!prepared)
            return std::move(prepared).failure();
        {
            statement query(*prepared);
            query.bind(1, **seq).bind(2, part);
            const int rc = query.step();
            if (rc == step_done)
                return {};
            if (rc != step_row)
                return storage_failure(rc, reading);
            if (!postgresql)
                bytes = query.blob(0);
            else if (!bytes_of_hex(query.text(0), bytes))
                return fault(reading);
        }
        if (auto given = each(bytes, static_cast<std::size_t>(whole->value_or(0))); !given)
            return given;
    }
}

fhir::status erase_binary_parts(connection& db, std::int64_t seq) {
    return execute(db, erase_sql, "erasing a Binary's bytes", [&](statement& remove) { remove.bind(1, seq); });
}

} // namespace caregate::storage::detail
