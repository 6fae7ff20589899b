// Stamps the server-owned parts (id, meta.versionId, meta.lastUpdated) into canonical content.
#include "fhir_model/resource.hpp"

#include "canonical.hpp"
#include "json.hpp"

#include <stdexcept>

namespace caregate::fhir {

std::string stamp_resource(std::string_view content, std::string_view id, std::int64_t version_id,
                           std::string_view last_updated) {
    rapidjson::Document in;
    if (!detail::parse_json(content, in) || !in.IsObject() || !in.HasMember("resourceType"))
        throw std::invalid_argument("stamp_resource: content is not canonical resource JSON");
    const detail::server_stamp stamp{id, version_id, last_updated};
    return detail::write_canonical(in, &stamp);
}

} // namespace caregate::fhir
