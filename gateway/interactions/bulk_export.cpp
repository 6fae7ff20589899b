// Bulk Data Access v2.0.0 (https://hl7.org/fhir/uv/bulkdata/STU2/export.html): the kick-off of
// `[base]/$export`, `Patient/$export` and `Group/[id]/$export` (GET, or POST with a Parameters body),
// the status URL (polling, and DELETE to cancel) and the output files. The job itself is run by
// gateway/export/runner.hpp; what a job may take is the policy's "exports" section and
// access::guard::export_visibility.
//
// Only the organisation that asked, presenting the same client certificate, learns anything of a job:
// its status, its manifest and its files answer 404 to anyone else, as for a job that does not exist.
#include "interactions/interactions.hpp"

#include "export/job_request.hpp"
#include "fhir_model/date_time.hpp"
#include "fhir_model/nhs_number.hpp"
#include "fhir_model/resource.hpp"
#include "http/error_response.hpp"
#include "interactions/access_steps.hpp"

#include <boost/url/parse.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <ctime>
#include <set>

namespace caregate::interactions {

namespace {

using fhir::category;
using fhir::error;

constexpr std::string_view status_path = "$export-status";
constexpr std::string_view file_path = "$export-file";

error bad_request(std::string diagnostics, std::string expression = {}) {
    return error::make(category::malformed, "invalid", std::move(diagnostics), std::move(expression));
}

std::vector<std::string> split_commas(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        std::string_view part = text.substr(0, comma);
        while (!part.empty() && part.front() == ' ')
            part.remove_prefix(1);
        while (!part.empty() && part.back() == ' ')
            part.remove_suffix(1);
        if (!part.empty())
            out.emplace_back(part);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    }
    return out;
}

/// The kick-off's parameters: the query's, or a POST's Parameters body's (each value as text).
fhir::result<std::vector<std::pair<std::string, std::string>>> kickoff_parameters(const context& ctx) {
    std::vector<std::pair<std::string, std::string>> params = ctx.params;
    if (ctx.req.method != "POST" || ctx.req.body.empty())
        return params;
    rapidjson::Document doc;
    doc.Parse(ctx.req.body.data(), ctx.req.body.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("resourceType") || !doc["resourceType"].IsString() ||
        std::string_view(doc["resourceType"].GetString()) != "Parameters")
        return bad_request("a POST kick-off's body is a Parameters resource");
    auto parameters = doc.FindMember("parameter");
    if (parameters == doc.MemberEnd())
        return params;
    if (!parameters->value.IsArray())
        return bad_request("Parameters.parameter is an array", "Parameters.parameter");
    for (const auto& parameter : parameters->value.GetArray()) {
        if (!parameter.IsObject() || !parameter.HasMember("name") || !parameter["name"].IsString())
            return bad_request("every parameter has a name", "Parameters.parameter.name");
        std::string name = parameter["name"].GetString();
        std::optional<std::string> value;
        for (const auto& member : parameter.GetObject()) {
            const std::string_view key(member.name.GetString(), member.name.GetStringLength());
            if (key.starts_with("value") && member.value.IsString())
                value.emplace(member.value.GetString(), member.value.GetStringLength());
        }
        if (!value) // a parameter whose value is not text (patient: a Reference) is one this server does not take
            return error::make(category::unsupported, "not-supported",
                               "the parameter " + name + " is not supported by this server's $export", name);
        params.emplace_back(std::move(name), std::move(*value));
    }
    return params;
}

/// The types an export of `level` may hold at all: every type of the record but the audit trail (a
/// system export), or those of the Patient compartment (a Patient or Group export).
std::vector<std::string> exportable_types(exports::export_level level, const service_description& served) {
    std::vector<std::string> out;
    for (const served_type& row : served.types) {
        if (!row.in_record)
            continue;
        if (level != exports::export_level::system && !fhir::in_patient_compartment(row.type))
            continue;
        out.emplace_back(row.type);
    }
    return out;
}

/// The kick-off's request, read and checked: 400 naming what is wrong, 403 for a type the
/// requester may never read.
fhir::result<exports::job_request> read_kickoff(context& ctx, exports::export_level level,
                                                const storage::search_visibility& visibility) {
    auto params = kickoff_parameters(ctx);
    if (!params)
        return std::move(params).failure();
    exports::job_request request;
    request.level = level;
    std::vector<std::string> asked_types;
    std::vector<std::string> filters;
    for (const auto& [name, value] : *params) {
        if (name == "_outputFormat") {
            if (value != "application/fhir+ndjson" && value != "application/ndjson" && value != "ndjson")
                return error::make(category::unsupported, "not-supported",
                                   "_outputFormat " + value + " is not supported: application/fhir+ndjson is",
                                   "_outputFormat");
        } else if (name == "_since") {
            auto range = fhir::parse_date_time(value);
            if (!range || value.find('T') == std::string::npos)
                return bad_request("_since must be an instant, e.g. 2026-01-01T00:00:00Z", "_since");
            request.since = range->begin;
        } else if (name == "_type") {
            for (auto& type : split_commas(value))
                asked_types.push_back(std::move(type));
        } else if (name == "_typeFilter") {
            for (auto& filter : split_commas(value))
                filters.push_back(std::move(filter));
        } else if (name == "_elements") {
            for (auto& element : split_commas(value)) {
                const auto dot = element.find('.');
                if (dot != std::string::npos && !fhir::is_supported_type(std::string_view(element).substr(0, dot)))
                    return bad_request("_elements names " + element + ", of a type this server does not hold",
                                       "_elements");
                request.elements.push_back(std::move(element));
            }
        } else if (name != "_format" && name != "_pretty") {
            return error::make(category::unsupported, "not-supported",
                               "the parameter " + name + " is not supported by this server's $export", name);
        }
    }

    const std::vector<std::string> exportable = exportable_types(level, *ctx.served);
    auto readable = [&](const std::string& type) {
        return std::any_of(visibility.readable.begin(), visibility.readable.end(),
                           [&](const auto& grant) { return grant.type == type; });
    };
    if (asked_types.empty()) {
        for (const std::string& type : exportable)
            if (readable(type))
                request.types.push_back(type);
    } else {
        for (const std::string& type : asked_types) {
            if (std::find(exportable.begin(), exportable.end(), type) == exportable.end())
                return error::make(category::unsupported, "not-supported",
                                   "_type names " + type + ", which this export does not hold" +
                                       (level == exports::export_level::system ? "" : " (not in the Patient compartment)"),
                                   "_type");
            if (!readable(type))
                return error::make(category::forbidden, "forbidden", "this export may not take " + type, "_type");
            if (std::find(request.types.begin(), request.types.end(), type) == request.types.end())
                request.types.push_back(type);
        }
    }
    for (const std::string& filter : filters) {
        const auto question = filter.find('?');
        const std::string type = filter.substr(0, question);
        if (question == std::string::npos || !fhir::is_supported_type(type))
            return bad_request("_typeFilter " + filter + " is not of the form Type?criteria", "_typeFilter");
        if (std::find(request.types.begin(), request.types.end(), type) == request.types.end())
            return bad_request("_typeFilter names " + type + ", which this export does not take", "_typeFilter");
        if (exports::type_filter_of(request, type))
            return error::make(category::unsupported, "not-supported",
                               "one _typeFilter for each type is supported; " + type + " has two", "_typeFilter");
        request.type_filters.emplace_back(type, filter.substr(question + 1));
    }
    for (const auto& [type, criteria] : request.type_filters)
        if (auto checked = exports::query_for(request, type, 1); !checked)
            return std::move(checked).failure();
    return request;
}

/// The Group's members now, as NHS numbers (active ones: a member marked inactive is left out).
fhir::result<std::vector<std::string>> members_of(const storage::stored_version& group) {
    rapidjson::Document doc;
    doc.Parse(group.json.data(), group.json.size());
    std::set<std::string> members;
    if (auto listed = doc.FindMember("member"); !doc.HasParseError() && listed != doc.MemberEnd() && listed->value.IsArray())
        for (const auto& member : listed->value.GetArray()) {
            if (!member.IsObject())
                continue;
            if (auto inactive = member.FindMember("inactive");
                inactive != member.MemberEnd() && inactive->value.IsBool() && inactive->value.GetBool())
                continue;
            auto entity = member.FindMember("entity");
            if (entity == member.MemberEnd() || !entity->value.IsObject())
                continue;
            auto reference = entity->value.FindMember("reference");
            if (reference == entity->value.MemberEnd() || !reference->value.IsString())
                continue;
            const std::string_view text = reference->value.GetString();
            if (text.starts_with("Patient/") && fhir::is_valid_nhs_number(text.substr(8)))
                members.emplace(text.substr(8));
        }
    return std::vector<std::string>(members.begin(), members.end());
}

/// The kick-off's URL as the client sent it (the manifest's `request`).
std::string request_url(const context& ctx) {
    auto base = boost::urls::parse_uri(ctx.config.base_url);
    if (!base)
        return ctx.req.target;
    return std::string(base->scheme()) + "://" + std::string(base->encoded_authority()) + ctx.req.target;
}

/// The job, when it is the caller's: its organisation and its client certificate both (404 otherwise).
fhir::result<storage::export_job> callers_job(context& ctx) {
    auto job = ctx.store.find_export(ctx.where.id);
    if (!job)
        return std::move(job).failure();
    if (!*job || (*job)->organisation != ctx.who->org->ods || (*job)->client != ctx.req.client_ods)
        return error::make(category::not_found, "not-found", "there is no export job " + ctx.where.id);
    return std::move(**job);
}

std::string http_date(storage::timestamp micros) {
    const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[64];
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
    return text;
}

/// The completed job's manifest.
std::string manifest(const context& ctx, const storage::export_job& job, const exports::job_request& request,
                     const std::vector<storage::export_file_summary>& files) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    auto text = [&](const char* key, std::string_view value) {
        out.Key(key);
        out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    };
    out.StartObject();
    text("transactionTime", storage::store::format_instant(job.transaction_time));
    text("request", request.request_url);
    out.Key("requiresAccessToken");
    out.Bool(true);
    // `output` lists the files of resources, `error` those of OperationOutcomes.
    for (const bool errors : {false, true}) {
        out.Key(errors ? "error" : "output");
        out.StartArray();
        for (const auto& file : files) {
            if ((file.type == "OperationOutcome") != errors)
                continue;
            out.StartObject();
            text("type", file.type);
            text("url", ctx.config.base_url + "/" + std::string(file_path) + "/" + job.id + "/" +
                            std::to_string(file.number));
            out.Key("count");
            out.Int64(file.count);
            out.EndObject();
        }
        out.EndArray();
    }
    out.EndObject();
    return buffer.GetString();
}

} // namespace

void bulk_export(context& ctx, http::responder& done) {
    const exports::export_level level = ctx.where.type == "Group"     ? exports::export_level::group
                                        : ctx.where.type == "Patient" ? exports::export_level::patient
                                                                      : exports::export_level::system;
    const access::policy& policy = ctx.guard->rules();
    const auto kind = policy.export_kind_for(*ctx.who);
    if (!kind) {
        detail::audit_access(ctx, "export", {}, "denied");
        return done(http::error_response(
            error::make(category::forbidden, "forbidden", "this client may not take population health exports")));
    }
    if (ctx.req.header("Prefer").find("respond-async") == std::string_view::npos)
        return done(http::error_response(bad_request("a Bulk Data kick-off needs the header Prefer: respond-async")));
    const storage::search_visibility visibility = ctx.guard->export_visibility(*ctx.who, *kind, ctx.now);
    auto request = read_kickoff(ctx, level, visibility);
    if (!request)
        return done(http::error_response(request.failure()));
    request->kind = *kind;
    request->request_url = request_url(ctx);
    request->caller = *ctx.who->caller;
    if (level == exports::export_level::group) {
        // The Group as this export may see it (access::guard::may_export_group): hidden or absent,
        // it is not found.
        auto group = ctx.store.read_current("Group", ctx.where.id);
        if (!group && group.failure().kind != category::not_found)
            return done(http::error_response(group.failure()));
        auto visible = group ? ctx.guard->may_export_group(*ctx.who, *kind, *group, ctx.now) : fhir::result<bool>(false);
        if (!visible)
            return done(http::error_response(visible.failure()));
        if (!*visible) {
            detail::audit_access(ctx, "export", {}, "not-found");
            return done(http::error_response(detail::not_found("Group", ctx.where.id)));
        }
        auto members = members_of(*group);
        if (!members)
            return done(http::error_response(members.failure()));
        request->group_id = ctx.where.id;
        request->members = std::move(*members);
    }

    storage::export_job job;
    job.id = random_uuid();
    job.request = exports::to_json(*request);
    job.organisation = ctx.who->org->ods;
    job.client = ctx.req.client_ods;
    detail::audit_access(ctx, "export", {}, "success",
                         "kick-off of export " + job.id + " (" + std::string(access::export_kind_name(*kind)) + ")");
    const std::string status_url = ctx.config.base_url + "/" + std::string(status_path) + "/" + job.id;
    ctx.store.create_export(std::move(job), [done, status_url](fhir::result<storage::export_job> created) {
        if (!created)
            return done(http::error_response(created.failure()));
        http::response accepted;
        accepted.status = 202;
        accepted.set("Content-Location", status_url);
        done(std::move(accepted));
    });
}

void bulk_export_status(context& ctx, http::responder& done) {
    auto job = callers_job(ctx);
    if (!job)
        return done(http::error_response(job.failure()));
    if (ctx.req.method == "DELETE") {
        ctx.store.cancel_export(job->id, [done](fhir::result<bool> cancelled) {
            if (!cancelled)
                return done(http::error_response(cancelled.failure()));
            http::response accepted;
            accepted.status = 202;
            done(std::move(accepted));
        });
        detail::audit_access(ctx, "export-cancel", {}, "success", "export " + job->id);
        return;
    }
    auto request = exports::job_request_from_json(job->request);
    if (!request)
        return done(http::error_response(request.failure()));
    switch (job->status) {
    case storage::export_status::accepted:
    case storage::export_status::in_progress: {
        auto cursor = exports::job_cursor_from_text(job->cursor);
        const std::size_t passes = exports::passes_of(*request).size();
        const std::size_t at = cursor ? std::min(cursor->pass, passes) : 0;
        http::response waiting;
        waiting.status = 202;
        waiting.set("X-Progress", std::to_string(job->written) + " resources written; pass " +
                                      std::to_string(std::min(at + 1, passes)) + " of " + std::to_string(passes));
        waiting.set("Retry-After", "1");
        return done(std::move(waiting));
    }
    case storage::export_status::failed:
        return done(http::error_response(error::make(category::fault, "exception", "the export failed: " + job->error)));
    case storage::export_status::completed:
        break;
    }
    auto files = ctx.store.export_files(job->id);
    if (!files)
        return done(http::error_response(files.failure()));
    http::response answer;
    answer.status = 200;
    answer.set("Content-Type", "application/json");
    if (job->expires)
        answer.set("Expires", http_date(*job->expires));
    answer.body = manifest(ctx, *job, *request, *files);
    done(std::move(answer));
}

void bulk_export_file(context& ctx, http::responder& done) {
    auto job = callers_job(ctx);
    if (!job)
        return done(http::error_response(job.failure()));
    if (job->status != storage::export_status::completed) // a manifest names the files once it is
        return done(http::error_response(
            error::make(category::not_found, "not-found", "export " + job->id + " has no such file")));
    auto content = ctx.store.export_file_content(job->id, ctx.where.version_id);
    if (!content)
        return done(http::error_response(content.failure()));
    if (!*content)
        return done(http::error_response(
            error::make(category::not_found, "not-found", "export " + job->id + " has no such file")));
    detail::audit_access(ctx, "export-download", {}, "success",
                         "file " + std::to_string(ctx.where.version_id) + " of export " + job->id);
    http::response answer;
    answer.status = 200;
    answer.set("Content-Type", "application/fhir+ndjson");
    answer.body = std::move(**content);
    done(std::move(answer));
}

} // namespace caregate::interactions
