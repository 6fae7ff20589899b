// Reading transaction and batch Bundles; see fhir_model/bundle.hpp.
#include "fhir_model/bundle.hpp"

#include "json.hpp"

#include <algorithm>
#include <array>

namespace caregate::fhir {
namespace {

using detail::find;
using detail::string_member;

constexpr std::array<std::string_view, 6> methods = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};

error malformed(std::string diagnostics, std::string expression) {
    return error::make(category::malformed, "structure", std::move(diagnostics), std::move(expression));
}

} // namespace

std::string entry_path(std::size_t index) {
    return "Bundle.entry[" + std::to_string(index) + "]";
}

result<bundle_request> read_bundle_request(std::string_view body, std::size_t max_entries) {
    rapidjson::Document document;
    if (auto parsed = detail::parse_json(body, document); !parsed)
        return std::move(parsed).failure();
    if (!document.IsObject() || string_member(document, "resourceType") != std::string_view("Bundle"))
        return malformed("a request to the base URL takes a Bundle of type transaction or batch", "Bundle");
    bundle_request bundle;
    const auto type = string_member(document, "type");
    if (!type || (*type != "transaction" && *type != "batch"))
        return malformed("Bundle.type must be transaction or batch", "Bundle.type");
    bundle.type = std::string(*type);
    const rapidjson::Value* entries = find(document, "entry");
    if (entries == nullptr)
        return bundle;
    if (!entries->IsArray())
        return malformed("Bundle.entry must be an array", "Bundle.entry");
    if (entries->Size() > max_entries)
        return error::make(category::too_large, "too-costly",
                           "the Bundle has " + std::to_string(entries->Size()) + " entries; this server takes at most " +
                               std::to_string(max_entries) + " in one Bundle",
                           "Bundle.entry");
    bundle.entries.reserve(entries->Size());
    for (rapidjson::SizeType i = 0; i < entries->Size(); ++i) {
        const rapidjson::Value& entry = (*entries)[i];
        const std::string at = entry_path(i);
        if (!entry.IsObject())
            return malformed("an entry must be an object", at);
        bundle_entry_request read;
        if (const rapidjson::Value* full_url = find(entry, "fullUrl")) {
            if (!detail::is_string(*full_url))
                return malformed("fullUrl must be a string", at + ".fullUrl");
            read.full_url = std::string(detail::view(*full_url));
        }
        const rapidjson::Value* request = find(entry, "request");
        if (request == nullptr || !request->IsObject())
            return malformed("each entry of a " + bundle.type + " needs a request (method and url)", at + ".request");
        const auto method = string_member(*request, "method");
        if (!method)
            return malformed("the entry's request needs a method", at + ".request.method");
        if (std::find(methods.begin(), methods.end(), *method) == methods.end())
            return malformed("the request method must be one of GET, HEAD, POST, PUT, DELETE, PATCH", at + ".request.method");
        read.method = std::string(*method);
        const auto url = string_member(*request, "url");
        if (!url || url->empty())
            return malformed("the entry's request needs a url", at + ".request.url");
        read.url = std::string(*url);
        struct optional_field {
            std::string_view name;
            std::string* into;
        };
        for (const optional_field field : {optional_field{"ifNoneExist", &read.if_none_exist},
                                           optional_field{"ifMatch", &read.if_match},
                                           optional_field{"ifNoneMatch", &read.if_none_match},
                                           optional_field{"ifModifiedSince", &read.if_modified_since}}) {
            const rapidjson::Value* value = find(*request, field.name);
            if (value == nullptr)
                continue;
            if (!detail::is_string(*value))
                return malformed("request." + std::string(field.name) + " must be a string",
                                 at + ".request." + std::string(field.name));
            *field.into = std::string(detail::view(*value));
        }
        if (const rapidjson::Value* resource = find(entry, "resource")) {
            if (!resource->IsObject())
                return malformed("an entry's resource must be a JSON object", at + ".resource");
            read.resource = detail::write_json(*resource);
        }
        if ((read.method == "POST" || read.method == "PUT") && !read.resource)
            return malformed("a " + read.method + " entry needs a resource", at + ".resource");
        bundle.entries.push_back(std::move(read));
    }
    return bundle;
}

} // namespace caregate::fhir
