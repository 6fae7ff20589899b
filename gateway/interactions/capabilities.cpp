// capabilities: https://hl7.org/fhir/R4/http.html#capabilities. The CapabilityStatement is written
// from the route table's description of itself (context::served), the table that also routes every
// request, so it claims exactly what is served. The
// patient-facing endpoint has its own: only what citizens may do in their own record (the policy's
// lists in rest_config), behind SMART-on-FHIR security.
#include "interactions/interactions.hpp"

#include "http/error_response.hpp"

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <utility>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::interactions {

namespace {

/// A RapidJSON writer with the few shapes a CapabilityStatement is made of.
class statement_writer {
public:
    void string(std::string_view value) { out.String(value.data(), static_cast<rapidjson::SizeType>(value.size())); }
    void text(const char* key, std::string_view value) {
        out.Key(key);
        string(value);
    }
    void flag(const char* key, bool value) {
        out.Key(key);
        out.Bool(value);
    }
    /// An array of strings; nothing at all when empty (FHIR JSON has no empty arrays).
    void list(const char* key, const std::vector<std::string>& values) {
        if (values.empty())
            return;
        out.Key(key);
        out.StartArray();
        for (const auto& value : values)
            string(value);
        out.EndArray();
    }
    /// `"interaction": [{"code": ...}, ...]`.
    void interactions(const std::vector<interaction>& kinds) {
        out.Key("interaction");
        out.StartArray();
        for (interaction kind : kinds) {
            out.StartObject();
            text("code", spec_code(kind));
            out.EndObject();
        }
        out.EndArray();
    }
    std::string finish() { return {buffer.GetString(), buffer.GetSize()}; }

    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out{buffer};
};

/// Everything before `rest`: what the statement describes, the software and the formats. Leaves the
/// statement's object open.
void write_opening(statement_writer& w, const rest_config& config, std::string_view description) {
    auto& out = w.out;
    out.StartObject();
    w.text("resourceType", "CapabilityStatement");
    w.text("status", "active");
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    w.text("date", storage::store::format_instant(now.count())); // describes this running instance
    w.text("publisher", "caregate");
    w.text("kind", "instance");
    out.Key("software");
    out.StartObject();
    w.text("name", "caregate");
    w.text("version", CAREGATE_VERSION);
    out.EndObject();
    out.Key("implementation");
    out.StartObject();
    w.text("description", description);
    w.text("url", config.base_url);
    out.EndObject();
    w.text("fhirVersion", "4.0.1");
    out.Key("format");
    out.StartArray();
    w.string("application/fhir+json");
    w.string("json");
    w.string("application/fhir+xml");
    w.string("xml");
    out.EndArray();
}

void write_search_params(statement_writer& w, const served_type& row) {
    if (row.search_parameters.empty())
        return;
    w.out.Key("searchParam");
    w.out.StartArray();
    for (const auto& param : row.search_parameters) {
        w.out.StartObject();
        w.text("name", param.name);
        w.text("type", param.type);
        w.text("documentation", param.documentation);
        w.out.EndObject();
    }
    w.out.EndArray();
}

/// One entry of an `operation` list.
void write_operation(statement_writer& w, std::string_view name, std::string_view definition) {
    w.out.StartObject();
    w.text("name", name);
    w.text("definition", definition);
    w.out.EndObject();
}

/// Patient/{nhs}/$everything (interactions/everything.cpp).
void write_everything_operation(statement_writer& w) {
    w.out.Key("operation");
    w.out.StartArray();
    write_operation(w, "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything");
    w.out.EndArray();
}

/// Composition/{id}/$document (interactions/document.cpp).
constexpr std::string_view document_definition = "http://hl7.org/fhir/OperationDefinition/Composition-document";

/// A type's operations: $everything, $document, and the Bulk Data kick-off of Patient/$export and
/// Group/[id]/$export (interactions/bulk_export.cpp).
void write_type_operations(statement_writer& w, const served_type& row) {
    if (!row.everything && !row.document && !row.bulk_export)
        return;
    w.out.Key("operation");
    w.out.StartArray();
    if (row.everything)
        write_operation(w, "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything");
    if (row.document)
        write_operation(w, "document", document_definition);
    if (row.bulk_export)
        write_operation(w, "export",
                        row.type == "Group" ? "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
                                            : "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export");
    w.out.EndArray();
}

std::string provider_statement(const rest_config& config, const service_description& served) {
    statement_writer w;
    auto& out = w.out;
    write_opening(w, config, "caregate shared care record gateway");
    if (served.bulk_export) { // the Bulk Data Access IG's server CapabilityStatement
        out.Key("instantiates");
        out.StartArray();
        w.string("http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data");
        out.EndArray();
    }
    out.Key("rest");
    out.StartArray();
    out.StartObject();
    w.text("mode", "server");
    out.Key("resource");
    out.StartArray();
    for (const served_type& row : served.types) {
        out.StartObject();
        w.text("type", row.type);
        w.interactions(row.interactions);
        write_search_params(w, row);
        w.text("versioning", "versioned-update");
        w.flag("readHistory", row.allows(interaction::vread));
        w.flag("updateCreate", row.allows(interaction::update));
        // Conditional create, update and delete: the criteria are run by the writer inside the write
        // transaction (interactions/create.cpp, update.cpp, delete.cpp).
        w.flag("conditionalCreate", row.allows(interaction::create));
        w.text("conditionalRead", row.allows(interaction::read) ? "full-support" : "not-supported");
        w.flag("conditionalUpdate", row.allows(interaction::update));
        w.text("conditionalDelete", !row.allows(interaction::delete_) ? "not-supported"
                                    : config.conditional_delete_multiple   ? "multiple"
                                                                           : "single");
        w.list("searchInclude", row.search_includes);
        w.list("searchRevInclude", row.search_revincludes);
        write_type_operations(w, row);
        out.EndObject();
    }
    out.EndArray();
    out.Key("interaction");
    out.StartArray();
    for (interaction kind : served.system) {
        if (kind == interaction::capabilities)
            continue; // not a CapabilityStatement system interaction code: /metadata is implied
        out.StartObject();
        w.text("code", spec_code(kind));
        out.EndObject();
        if (kind == interaction::transaction) { // POST [base] takes both kinds of Bundle
            out.StartObject();
            w.text("code", "batch");
            out.EndObject();
        }
    }
    out.EndArray();
    // The system-level Bulk Data kick-off, [base]/$export.
    if (served.bulk_export) {
        out.Key("operation");
        out.StartArray();
        write_operation(w, "export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export");
        out.EndArray();
    }
    // Patient compartment searches (GET /Patient/{nhs}/{type}) and $everything.
    if (served.compartment) {
        out.Key("compartment");
        out.StartArray();
        w.string("http://hl7.org/fhir/CompartmentDefinition/patient");
        out.EndArray();
    }
    out.EndObject();
    out.EndArray();
    out.EndObject();
    return w.finish();
}

/// rest.security of the patient-facing endpoint: SMART on FHIR, with the identity provider's endpoints
/// in the oauth-uris extension for clients that predate `.well-known/smart-configuration` (which is
/// the discovery SMART App Launch 2.0 requires; interactions/smart_configuration.cpp).
void write_smart_security(statement_writer& w, const smart_settings& smart) {
    auto& out = w.out;
    out.Key("security");
    out.StartObject();
    out.Key("extension");
    out.StartArray();
    out.StartObject();
    w.text("url", "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
    out.Key("extension");
    out.StartArray();
    for (const auto& [name, uri] : {std::pair{"authorize", &smart.authorization_endpoint},
                                    std::pair{"token", &smart.token_endpoint}}) {
        out.StartObject();
        w.text("url", name);
        w.text("valueUri", *uri);
        out.EndObject();
    }
    out.EndArray();
    out.EndObject();
    out.EndArray();
    out.Key("service");
    out.StartArray();
    out.StartObject();
    out.Key("coding");
    out.StartArray();
    out.StartObject();
    w.text("system", "http://terminology.hl7.org/CodeSystem/restful-security-service");
    w.text("code", "SMART-on-FHIR");
    w.text("display", "SMART-on-FHIR");
    out.EndObject();
    out.EndArray();
    out.EndObject();
    out.EndArray();
    w.text("description",
           "Bearer tokens from the identity provider named here (NHS login in production), carrying the "
           "citizen's nhs_number and identity_proofing_level, with SMART patient scopes (v2 patient/*.rs, "
           "v1 patient/*.read). Discovery: [base]/.well-known/smart-configuration.");
    out.EndObject();
}

bool listed(const std::vector<std::string>& types, std::string_view type) {
    return std::find(types.begin(), types.end(), type) != types.end();
}

/// What a citizen may do on this endpoint: read and search the types the policy lets them read in
/// their own record, create the types they may contribute, $everything on their Patient and $document on
/// their Compositions; no
/// system-level interactions (no transaction, history or whole-system search), and nothing the
/// capability table does not serve.
std::string patient_statement(const rest_config& config, const service_description& served) {
    statement_writer w;
    auto& out = w.out;
    write_opening(w, config, "caregate patient-facing endpoint: citizens and their carers");
    out.Key("rest");
    out.StartArray();
    out.StartObject();
    w.text("mode", "server");
    w.text("documentation", "Each caller sees one record: the one their token gives them (README, \"For app "
                            "developers\"). Another citizen's record answers 404.");
    write_smart_security(w, config.smart);
    std::vector<std::pair<const served_type*, std::vector<interaction>>> listed_types;
    for (const served_type& row : served.types) {
        std::vector<interaction> kinds;
        if (listed(config.patient_readable_types, row.type))
            for (interaction kind : {interaction::read, interaction::search_type})
                if (row.allows(kind))
                    kinds.push_back(kind);
        if (listed(config.patient_creatable_types, row.type) && row.allows(interaction::create))
            kinds.push_back(interaction::create);
        if (listed(config.patient_updatable_types, row.type))
            for (interaction kind : {interaction::update, interaction::patch})
                if (row.allows(kind))
                    kinds.push_back(kind);
        if (listed(config.patient_deletable_types, row.type) && row.allows(interaction::delete_))
            kinds.push_back(interaction::delete_);
        if (!kinds.empty())
            listed_types.emplace_back(&row, std::move(kinds));
    }
    if (!listed_types.empty()) { // FHIR JSON has no empty arrays
        out.Key("resource");
        out.StartArray();
        for (const auto& [row, kinds] : listed_types) {
            out.StartObject();
            w.text("type", row->type);
            w.interactions(kinds);
            if (std::ranges::find(kinds, interaction::search_type) != kinds.end())
                write_search_params(w, *row);
            if (row->everything && std::ranges::find(kinds, interaction::read) != kinds.end())
                write_everything_operation(w);
            if (row->document && std::ranges::find(kinds, interaction::read) != kinds.end()) {
                w.out.Key("operation");
                w.out.StartArray();
                write_operation(w, "document", document_definition);
                w.out.EndArray();
            }
            out.EndObject();
        }
        out.EndArray();
    }
    out.EndObject();
    out.EndArray();
    out.EndObject();
    return w.finish();
}

} // namespace

void capabilities(context& ctx, http::responder& done) {
    if (auto ok = ctx.only_params({"mode"}); !ok)
        return done(http::error_response(ok.failure()));
    done(json_response(ctx.config.patient_endpoint ? patient_statement(ctx.config, *ctx.served)
                                                   : provider_statement(ctx.config, *ctx.served)));
}

} // namespace caregate::interactions
