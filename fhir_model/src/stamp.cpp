// Stamps the server-owned parts (id, meta.versionId, meta.lastUpdated) into canonical content.
#include "fhir_model/resource.hpp"
#include "json.hpp"

#include <stdexcept>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::fhir {

std::string stamp_resource(std::string_view content, std::string_view id, std::int64_t version_id,
                           std::string_view last_updated) {
    rapidjson::Document in;
    if (!detail::parse_json(content, in) || !in.IsObject() || !in.HasMember("resourceType"))
        throw std::invalid_argument("stamp_resource: content is not canonical resource JSON");

    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    out.StartObject();
    out.Key("resourceType");
    detail::write_value(out, in["resourceType"]);
    out.Key("id");
    out.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    out.Key("meta");
    out.StartObject();
    out.Key("versionId");
    const std::string version = std::to_string(version_id);
    out.String(version.data(), static_cast<rapidjson::SizeType>(version.size()));
    out.Key("lastUpdated");
    out.String(last_updated.data(), static_cast<rapidjson::SizeType>(last_updated.size()));
    if (auto meta = in.FindMember("meta"); meta != in.MemberEnd() && meta->value.IsObject()) {
        for (auto& m : meta->value.GetObject()) {
            std::string_view name(m.name.GetString(), m.name.GetStringLength());
            if (name == "versionId" || name == "lastUpdated")
                continue;
            out.Key(m.name.GetString(), m.name.GetStringLength());
            detail::write_value(out, m.value);
        }
    }
    out.EndObject();
    for (auto& m : in.GetObject()) {
        std::string_view name(m.name.GetString(), m.name.GetStringLength());
        if (name == "resourceType" || name == "id" || name == "meta")
            continue;
        out.Key(m.name.GetString(), m.name.GetStringLength());
        detail::write_value(out, m.value);
    }
    out.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

} // namespace caregate::fhir
