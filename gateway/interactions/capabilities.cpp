// capabilities: https://hl7.org/fhir/R4/http.html#capabilities. The CapabilityStatement is written
// from the capability table that also drives the router, so it claims exactly what is served.
#include "interactions/interactions.hpp"

#include "rest/error_response.hpp"

#include <chrono>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::interactions {

namespace {

std::string capability_statement(const rest::rest_config& config) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    auto text = [&](const char* key, std::string_view value) {
        out.Key(key);
        out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    };
    out.StartObject();
    text("resourceType", "CapabilityStatement");
    text("status", "active");
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    text("date", storage::store::format_instant(now.count())); // describes this running instance
    text("publisher", "caregate");
    text("kind", "instance");
    out.Key("software");
    out.StartObject();
    text("name", "caregate");
    text("version", CAREGATE_VERSION);
    out.EndObject();
    out.Key("implementation");
    out.StartObject();
    text("description", "caregate shared care record gateway");
    text("url", config.base_url);
    out.EndObject();
    text("fhirVersion", "4.0.1");
    out.Key("format");
    out.StartArray();
    out.String("application/fhir+json");
    out.String("json");
    out.EndArray();
    out.Key("rest");
    out.StartArray();
    out.StartObject();
    text("mode", "server");
    out.Key("resource");
    out.StartArray();
    for (const rest::type_capability& row : rest::type_capabilities()) {
        out.StartObject();
        text("type", row.type);
        out.Key("interaction");
        out.StartArray();
        for (rest::interaction kind : row.interactions) {
            out.StartObject();
            text("code", rest::spec_code(kind));
            out.EndObject();
        }
        out.EndArray();
        if (!row.search_parameters.empty()) {
            out.Key("searchParam");
            out.StartArray();
            for (const auto& param : row.search_parameters) {
                out.StartObject();
                text("name", param.name);
                text("type", param.type);
                text("documentation", param.documentation);
                out.EndObject();
            }
            out.EndArray();
        }
        text("versioning", "versioned-update");
        out.Key("readHistory");
        out.Bool(row.allows(rest::interaction::vread));
        out.Key("updateCreate");
        out.Bool(row.allows(rest::interaction::update));
        // Conditional create, update and delete: the criteria are run by the writer inside the write
        // transaction (interactions/create.cpp, update.cpp, delete.cpp).
        out.Key("conditionalCreate");
        out.Bool(row.allows(rest::interaction::create));
        text("conditionalRead", row.allows(rest::interaction::read) ? "full-support" : "not-supported");
        out.Key("conditionalUpdate");
        out.Bool(row.allows(rest::interaction::update));
        text("conditionalDelete", !row.allows(rest::interaction::delete_)  ? "not-supported"
                                  : config.conditional_delete_multiple ? "multiple"
                                                                       : "single");
        auto list = [&](const char* key, const std::vector<std::string>& values) {
            if (values.empty())
                return; // FHIR JSON has no empty arrays
            out.Key(key);
            out.StartArray();
            for (const auto& value : values)
                out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
            out.EndArray();
        };
        list("searchInclude", row.search_includes);
        list("searchRevInclude", row.search_revincludes);
        if (row.type == "Patient") {
            out.Key("operation");
            out.StartArray();
            out.StartObject();
            text("name", "everything");
            text("definition", "http://hl7.org/fhir/OperationDefinition/Patient-everything");
            out.EndObject();
            out.EndArray();
        }
        out.EndObject();
    }
    out.EndArray();
    out.Key("interaction");
    out.StartArray();
    for (rest::interaction kind : rest::system_interactions()) {
        if (kind == rest::interaction::capabilities)
            continue; // not a CapabilityStatement system interaction code: /metadata is implied
        out.StartObject();
        text("code", rest::spec_code(kind));
        out.EndObject();
        if (kind == rest::interaction::transaction) { // POST [base] takes both kinds of Bundle
            out.StartObject();
            text("code", "batch");
            out.EndObject();
        }
    }
    out.EndArray();
    // Patient compartment searches (GET /Patient/{nhs}/{type}) and $everything.
    out.Key("compartment");
    out.StartArray();
    out.String("http://hl7.org/fhir/CompartmentDefinition/patient");
    out.EndArray();
    out.EndObject();
    out.EndArray();
    out.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

} // namespace

void capabilities(rest::context& ctx, rest::responder& done) {
    if (auto ok = ctx.only_params({"mode"}); !ok)
        return done(rest::error_response(ok.failure()));
    rest::response out = rest::json_response(capability_statement(ctx.config));
    done(std::move(out));
}

} // namespace caregate::interactions
