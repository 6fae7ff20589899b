// An export job's request as JSON and its cursor as text: see job_request.hpp.
#include "export/job_request.hpp"

#include "storage/store.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/url_view.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>

namespace caregate::exports {

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void key_text(json_writer& out, const char* key, std::string_view value) {
    out.Key(key);
    out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void key_texts(json_writer& out, const char* key, const std::vector<std::string>& values) {
    out.Key(key);
    out.StartArray();
    for (const auto& value : values)
        out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    out.EndArray();
}

std::string_view level_name(export_level level) {
    switch (level) {
    case export_level::system: return "system";
    case export_level::patient: return "patient";
    case export_level::group: return "group";
    }
    return "system";
}

fhir::error not_a_request(std::string what) {
    return fhir::error::make(fhir::category::fault, "exception", "a stored export job is not readable: " + what);
}

} // namespace

std::string to_json(const job_request& request) {
    rapidjson::StringBuffer buffer;
    json_writer out(buffer);
    out.StartObject();
    key_text(out, "level", level_name(request.level));
    key_text(out, "kind", access::export_kind_name(request.kind));
    key_text(out, "group", request.group_id);
    key_texts(out, "members", request.members);
    key_texts(out, "types", request.types);
    if (request.since) {
        out.Key("since");
        out.Int64(*request.since);
    }
    out.Key("type_filters");
    out.StartArray();
    for (const auto& [type, criteria] : request.type_filters) {
        out.StartArray();
        out.String(type.c_str());
        out.String(criteria.c_str());
        out.EndArray();
    }
    out.EndArray();
    key_texts(out, "elements", request.elements);
    key_text(out, "request", request.request_url);
    out.Key("caller");
    out.StartObject();
    key_text(out, "issuer", request.caller.issuer);
    key_text(out, "user", request.caller.user);
    key_text(out, "organisation", request.caller.organisation);
    key_text(out, "role", request.caller.role);
    key_texts(out, "scopes", request.caller.scopes);
    out.Key("scope_claimed");
    out.Bool(request.caller.scope_claimed);
    key_text(out, "purpose", request.caller.purpose);
    out.EndObject();
    out.EndObject();
    return buffer.GetString();
}

fhir::result<job_request> job_request_from_json(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsObject())
        return not_a_request("not a JSON object");
    auto text = [&](const rapidjson::Value& object, const char* key) -> std::optional<std::string> {
        auto found = object.FindMember(key);
        if (found == object.MemberEnd() || !found->value.IsString())
            return std::nullopt;
        return std::string(found->value.GetString(), found->value.GetStringLength());
    };
    auto texts = [&](const rapidjson::Value& object, const char* key) -> std::optional<std::vector<std::string>> {
        auto found = object.FindMember(key);
        if (found == object.MemberEnd() || !found->value.IsArray())
            return std::nullopt;
        std::vector<std::string> out;
        for (const auto& item : found->value.GetArray()) {
            if (!item.IsString())
                return std::nullopt;
            out.emplace_back(item.GetString(), item.GetStringLength());
        }
        return out;
    };
    job_request request;
    const auto level = text(doc, "level");
    const auto kind = text(doc, "kind");
    const auto group = text(doc, "group");
    const auto members = texts(doc, "members");
    const auto types = texts(doc, "types");
    const auto elements = texts(doc, "elements");
    const auto url = text(doc, "request");
    auto caller = doc.FindMember("caller");
    auto filters = doc.FindMember("type_filters");
    if (!level || !kind || !group || !members || !types || !elements || !url || caller == doc.MemberEnd() ||
        !caller->value.IsObject() || filters == doc.MemberEnd() || !filters->value.IsArray())
        return not_a_request("a field is missing");
    if (*level == "system")
        request.level = export_level::system;
    else if (*level == "patient")
        request.level = export_level::patient;
    else if (*level == "group")
        request.level = export_level::group;
    else
        return not_a_request("level " + *level);
    if (*kind == access::export_kind_name(access::export_kind::identifiable))
        request.kind = access::export_kind::identifiable;
    else if (*kind == access::export_kind_name(access::export_kind::pseudonymised))
        request.kind = access::export_kind::pseudonymised;
    else
        return not_a_request("kind " + *kind);
    request.group_id = *group;
    request.members = *members;
    request.types = *types;
    request.elements = *elements;
    request.request_url = *url;
    if (auto since = doc.FindMember("since"); since != doc.MemberEnd()) {
        if (!since->value.IsInt64())
            return not_a_request("since");
        request.since = since->value.GetInt64();
    }
    for (const auto& filter : filters->value.GetArray()) {
        if (!filter.IsArray() || filter.Size() != 2 || !filter[0].IsString() || !filter[1].IsString())
            return not_a_request("type_filters");
        request.type_filters.emplace_back(filter[0].GetString(), filter[1].GetString());
    }
    const rapidjson::Value& who = caller->value;
    const auto issuer = text(who, "issuer");
    const auto user = text(who, "user");
    const auto organisation = text(who, "organisation");
    const auto role = text(who, "role");
    const auto scopes = texts(who, "scopes");
    const auto purpose = text(who, "purpose");
    auto claimed = who.FindMember("scope_claimed");
    if (!issuer || !user || !organisation || !role || !scopes || !purpose || claimed == who.MemberEnd() ||
        !claimed->value.IsBool())
        return not_a_request("the caller");
    request.caller.issuer = *issuer;
    request.caller.user = *user;
    request.caller.organisation = *organisation;
    request.caller.role = *role;
    request.caller.scopes = *scopes;
    request.caller.scope_claimed = claimed->value.GetBool();
    request.caller.purpose = *purpose;
    return request;
}

fhir::result<fhir::search_query> query_for(const job_request& request, std::string_view type, unsigned page_count) {
    std::vector<std::pair<std::string, std::string>> params;
    if (const std::string* criteria = type_filter_of(request, type)) {
        auto parsed = boost::urls::parse_query(*criteria);
        if (!parsed)
            return fhir::error::make(fhir::category::malformed, "invalid",
                                     "_typeFilter for " + std::string(type) + " is not a query string", "_typeFilter");
        for (const auto& param : boost::urls::params_view(*parsed)) {
            if (param.key.starts_with("_") && param.key != "_id" && param.key != "_lastUpdated" &&
                param.key != "_tag" && param.key != "_profile" && param.key != "_security" && param.key != "_source" &&
                param.key != "_has")
                return fhir::error::make(fhir::category::unsupported, "not-supported",
                                         "_typeFilter for " + std::string(type) + " may only hold search criteria, not " +
                                             std::string(param.key),
                                         "_typeFilter");
            params.emplace_back(param.key, param.value);
        }
    }
    if (request.since)
        params.emplace_back("_lastUpdated", "gt" + storage::store::format_instant(*request.since));
    params.emplace_back("_count", std::to_string(page_count));
    fhir::search_query_options options;
    options.max_count = page_count;
    auto query = fhir::parse_search_query({std::string(type)}, params, options);
    if (!query) {
        fhir::error failure = std::move(query).failure();
        for (auto& issue : failure.issues)
            issue.diagnostics = "_typeFilter for " + std::string(type) + ": " + issue.diagnostics;
        return failure;
    }
    return query;
}

const std::string* type_filter_of(const job_request& request, std::string_view type) {
    for (const auto& [filtered, criteria] : request.type_filters)
        if (filtered == type)
            return &criteria;
    return nullptr;
}

std::vector<std::string> elements_of(const job_request& request, std::string_view type) {
    std::vector<std::string> out;
    for (const std::string& element : request.elements) {
        const auto dot = element.find('.');
        if (dot == std::string::npos)
            out.push_back(element);
        else if (std::string_view(element).substr(0, dot) == type)
            out.push_back(element.substr(dot + 1));
    }
    return out;
}

std::vector<job_pass> passes_of(const job_request& request) {
    std::vector<job_pass> passes;
    const bool walk_together = request.level != export_level::group && !request.since;
    job_pass together;
    for (const std::string& type : request.types)
        if (walk_together && type_filter_of(request, type) == nullptr)
            together.types.push_back(type);
        else
            passes.push_back({{type}});
    if (!together.types.empty())
        passes.insert(passes.begin(), std::move(together));
    return passes;
}

fhir::result<fhir::search_query> query_for_types(const std::vector<std::string>& types, unsigned page_count) {
    fhir::search_query_options options;
    options.max_count = page_count;
    return fhir::parse_search_query(types, {{"_count", std::to_string(page_count)}}, options);
}

namespace {

/// The cursor's text: `v2;pass;member;last_number;Type=number/bytes,...;page` (the page cursor is
/// URL-safe base64, without ';').
constexpr std::string_view cursor_version = "v2;";

} // namespace

std::string to_text(const job_cursor& cursor) {
    std::string text(cursor_version);
    text += std::to_string(cursor.pass) + ";" + std::to_string(cursor.member) + ";" +
            std::to_string(cursor.last_number) + ";";
    bool first = true;
    for (const auto& [type, file] : cursor.open_files) {
        text += (first ? "" : ",") + type + "=" + std::to_string(file.number) + "/" + std::to_string(file.bytes);
        first = false;
    }
    return text + ";" + cursor.page;
}

fhir::result<job_cursor> job_cursor_from_text(std::string_view text) {
    job_cursor cursor;
    if (text.empty())
        return cursor;
    if (!text.starts_with(cursor_version))
        return fhir::error::make(fhir::category::fault, "exception",
                                 "made before an upgrade of caregate that changed how exports are written; export again");
    text.remove_prefix(cursor_version.size());
    auto field = [&]() -> std::optional<std::string_view> {
        const auto end = text.find(';');
        if (end == std::string_view::npos)
            return std::nullopt;
        const std::string_view value = text.substr(0, end);
        text.remove_prefix(end + 1);
        return value;
    };
    auto number = [](std::string_view digits, auto& into) {
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), into);
        return ec == std::errc{} && end == digits.data() + digits.size();
    };
    const auto pass = field(), member = field(), last = field(), files = field();
    if (!pass || !member || !last || !files || !number(*pass, cursor.pass) || !number(*member, cursor.member) ||
        !number(*last, cursor.last_number))
        return not_a_request("its cursor");
    for (std::string_view rest = *files; !rest.empty();) {
        const auto comma = rest.find(',');
        const std::string_view one = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        const auto equals = one.find('='), slash = one.find('/');
        open_file file;
        if (equals == std::string_view::npos || slash == std::string_view::npos || slash < equals ||
            !number(one.substr(equals + 1, slash - equals - 1), file.number) || !number(one.substr(slash + 1), file.bytes))
            return not_a_request("its cursor");
        cursor.open_files.emplace(std::string(one.substr(0, equals)), file);
    }
    cursor.page = std::string(text);
    return cursor;
}

} // namespace caregate::exports
