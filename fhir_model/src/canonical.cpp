// Canonical resource JSON; see canonical.hpp.
#include "canonical.hpp"
#include "json.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::fhir::detail {

namespace {
std::string_view name_of(const rapidjson::Value& name) { return {name.GetString(), name.GetStringLength()}; }

void write_text(rapidjson::Writer<rapidjson::StringBuffer>& out, std::string_view text) {
    out.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}
} // namespace

std::string write_canonical(const rapidjson::Value& resource, const server_stamp* stamp) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    out.StartObject();
    if (auto type = resource.FindMember("resourceType"); type != resource.MemberEnd()) {
        out.Key("resourceType");
        write_value(out, type->value);
    }
    if (stamp) {
        out.Key("id");
        write_text(out, stamp->id);
    } else if (auto id = resource.FindMember("id"); id != resource.MemberEnd()) {
        out.Key("id");
        write_value(out, id->value);
    }
    bool meta_started = false;
    auto start_meta = [&] {
        if (!meta_started) {
            out.Key("meta");
            out.StartObject();
            meta_started = true;
        }
    };
    if (stamp) {
        start_meta();
        out.Key("versionId");
        write_text(out, std::to_string(stamp->version_id));
        out.Key("lastUpdated");
        write_text(out, stamp->last_updated);
    }
    if (auto meta = resource.FindMember("meta"); meta != resource.MemberEnd() && meta->value.IsObject()) {
        for (auto& m : meta->value.GetObject()) {
            const std::string_view name = name_of(m.name);
            if (name == "versionId" || name == "lastUpdated")
                continue;
            start_meta();
            out.Key(m.name.GetString(), m.name.GetStringLength());
            write_value(out, m.value);
        }
    }
    if (meta_started)
        out.EndObject();
    for (auto& m : resource.GetObject()) {
        const std::string_view name = name_of(m.name);
        if (name == "resourceType" || name == "id" || name == "meta")
            continue;
        out.Key(m.name.GetString(), m.name.GetStringLength());
        write_value(out, m.value);
    }
    out.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

} // namespace caregate::fhir::detail
