// What the storage interface (storage/store.hpp) defines whatever the engine: choosing the engine by
// the database's name, the audit chain's hash, and the instant text. The hash is the chain's one
// definition: every engine appends with it and verifies with it, and the anchors
// (audit_anchor.cpp) pin records by it.
#include "storage/postgresql_store.hpp"
#include "postgresql/migrate.hpp"
#include "storage/sqlite_store.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <thread>

namespace caregate::storage {
namespace {

constexpr std::string_view sqlite_scheme = "sqlite:";

/// The SQLite file a database name means, or nothing when it names another engine: `sqlite:PATH`,
/// or a bare path. A name with `://` (`postgresql://...`) is never taken for a file.
std::optional<std::string> sqlite_path(std::string_view database) {
    if (database.starts_with(sqlite_scheme))
        return std::string(database.substr(sqlite_scheme.size()));
    if (database.find("://") != std::string_view::npos)
        return std::nullopt;
    return std::string(database);
}

/// Whether the name is a PostgreSQL connection URI (libpq's two schemes).
bool is_postgresql(std::string_view database) {
    return database.starts_with("postgresql://") || database.starts_with("postgres://");
}

fhir::error unknown_engine(std::string_view database) {
    // Only the scheme is repeated: a URI can hold a password.
    const auto scheme_end = database.find("://");
    const std::string named = scheme_end == std::string_view::npos ? std::string(database)
                                                                   : std::string(database.substr(0, scheme_end + 3)) + "...";
    return fhir::error::make(fhir::category::invalid, "not-supported",
                             "no storage engine here takes '" + named +
                                 "': name a SQLite file, as PATH or sqlite:PATH, or a PostgreSQL database, as "
                                 "postgresql://USER@HOST:PORT/DATABASE");
}

} // namespace

unsigned default_request_threads(std::string_view database) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    return is_postgresql(database) ? 2 * cores : cores;
}

fhir::result<std::unique_ptr<store>> open_store(std::string_view database, const store_settings& settings) {
    if (is_postgresql(database)) {
        postgresql_options options;
        static_cast<store_settings&>(options) = settings;
        options.conninfo = std::string(database);
        auto opened = postgresql_store::open(options);
        if (!opened)
            return std::move(opened).failure();
        return std::unique_ptr<store>(std::move(*opened));
    }
    const std::optional<std::string> path = sqlite_path(database);
    if (!path || path->empty())
        return unknown_engine(database);
    auto opened = sqlite_store::open(sqlite_options::from(*path, settings));
    if (!opened)
        return std::move(opened).failure();
    return std::unique_ptr<store>(std::move(*opened));
}

fhir::result<backup_report> backup_store(std::string_view database, const std::string& to) {
    if (is_postgresql(database))
        return fhir::error::make(fhir::category::invalid, "not-supported",
                                 "caregate backup copies SQLite databases only: back up PostgreSQL with its own "
                                 "tools, pg_dump for a copy or pg_basebackup with WAL archiving for point-in-time "
                                 "recovery (docs/OPERATIONS.md)");
    const std::optional<std::string> path = sqlite_path(database);
    if (!path || path->empty())
        return unknown_engine(database);
    return backup_database(*path, to);
}

std::string printable_database_name(std::string_view database) {
    const auto scheme_end = database.find("://");
    if (scheme_end == std::string_view::npos)
        return std::string(database);
    const auto authority = scheme_end + 3;
    const auto at = database.find('@', authority);
    const auto slash = database.find('/', authority);
    if (at == std::string_view::npos || (slash != std::string_view::npos && at > slash))
        return std::string(database);
    const auto colon = database.find(':', authority);
    if (colon == std::string_view::npos || colon > at)
        return std::string(database);
    return std::string(database.substr(0, colon + 1)) + "***" + std::string(database.substr(at));
}

fhir::result<migration_report> migrate_store(std::string_view from, std::string_view to) {
    const std::optional<std::string> path = sqlite_path(from);
    if (!path || path->empty() || !is_postgresql(to))
        return fhir::error::make(fhir::category::invalid, "not-supported",
                                 "caregate migrate moves a SQLite database (PATH or sqlite:PATH) into a PostgreSQL "
                                 "one (postgresql://...)");
    if (!std::filesystem::exists(*path))
        return fhir::error::make(fhir::category::invalid, "not-found", "there is no database at " + *path);
    // Both at the current schema first: the source as serve would bring it, the target made.
    {
        auto source = sqlite_store::open(sqlite_options::from(*path, {}));
        if (!source)
            return std::move(source).failure();
    }
    {
        postgresql_options options;
        options.conninfo = std::string(to);
        auto target = postgresql_store::open(options);
        if (!target)
            return std::move(target).failure();
    }
    return detail::copy_sqlite_to_postgresql(*path, std::string(to));
}

std::string store::audit_hash(const audit_record& record) {
    // Each field is preceded by its length (8 bytes, big-endian), so no shift of bytes between
    // neighbouring fields gives the same input; numbers go in as decimal text.
    std::string input;
    auto add = [&input](std::string_view field) {
        const auto size = static_cast<std::uint64_t>(field.size());
        for (int shift = 56; shift >= 0; shift -= 8)
            input += static_cast<char>((size >> shift) & 0xff);
        input += field;
    };
    add(record.previous_hash);
    add(std::to_string(record.time));
    add(record.request_id);
    add(record.user);
    add(record.role);
    add(record.organisation);
    add(record.purpose);
    add(record.break_glass_reason);
    add(record.nhs_number);
    add(record.resource_type);
    add(record.resource_ids);
    add(record.action);
    add(record.outcome);
    add(record.detail);
    add(std::to_string(record.sequence));

    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed in OpenSSL");
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    text.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        text += hex[digest[i] >> 4];
        text += hex[digest[i] & 0x0f];
    }
    return text;
}

// ---- instants -----------------------------------------------------------------------------------

std::string store::format_instant(timestamp t) {
    using namespace std::chrono;
    const sys_time<microseconds> instant{microseconds{t}};
    const sys_days day = floor<days>(instant);
    const year_month_day date{day};
    const hh_mm_ss<microseconds> time{instant - day};
    char text[40];
    std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                  static_cast<int>(time.seconds().count()), static_cast<long long>(time.subseconds().count()));
    return text;
}

} // namespace caregate::storage
