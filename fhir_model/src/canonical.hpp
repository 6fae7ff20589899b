// Canonical resource JSON (private): resourceType, id, meta, then the other elements in the order
// received. One writer for both the content a write stores and the stamped version the store keeps.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace caregate::fhir::detail {

/// The server-owned parts of a stored version.
struct server_stamp {
    std::string_view id;
    std::int64_t version_id = 0;
    std::string_view last_updated;
};

/// Compact canonical JSON of `resource`. meta.versionId and meta.lastUpdated from the client are
/// always dropped; with a `stamp`, the id and those two are the server's. meta is left out if empty.
std::string write_canonical(const rapidjson::Value& resource, const server_stamp* stamp);

} // namespace caregate::fhir::detail
