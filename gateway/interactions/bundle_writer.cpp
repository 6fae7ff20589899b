// The one Bundle writer; see bundle_writer.hpp for the invariants.
#include "interactions/bundle_writer.hpp"

#include <cassert>

namespace caregate::interactions {

bundle_writer::bundle_writer(std::string_view type, std::string_view id,
                             const std::optional<document_identity>& identity) {
    out_.StartObject();
    text("resourceType", "Bundle");
    if (!id.empty())
        text("id", id);
    if (identity) {
        key("identifier");
        out_.StartObject();
        text("system", "urn:ietf:rfc:3986");
        text("value", identity->identifier);
        out_.EndObject();
    }
    text("type", type);
    if (identity)
        text("timestamp", identity->timestamp);
}

void bundle_writer::string(std::string_view value) {
    out_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void bundle_writer::key(std::string_view name) { out_.Key(name.data(), static_cast<rapidjson::SizeType>(name.size())); }

void bundle_writer::text(std::string_view name, std::string_view value) {
    key(name);
    string(value);
}

void bundle_writer::raw(std::string_view name, std::string_view json) {
    key(name);
    out_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

void bundle_writer::total(std::int64_t matches) {
    assert(at_ == part::opening && "invariant 1: total before links and entries");
    key("total");
    out_.Int64(matches);
}

void bundle_writer::link(std::string_view relation, std::string_view url) {
    assert((at_ == part::opening || at_ == part::links) && "invariant 1: links before entries");
    if (at_ == part::opening) {
        key("link");
        out_.StartArray();
        at_ = part::links;
    }
    out_.StartObject();
    text("relation", relation);
    text("url", url);
    out_.EndObject();
}

void bundle_writer::entry(const bundle_entry& entry) {
    assert(at_ != part::finished);
    if (at_ != part::entries) {
        if (at_ == part::links)
            out_.EndArray();
        key("entry");
        out_.StartArray();
        at_ = part::entries;
    }
    out_.StartObject();
    if (!entry.full_url.empty())
        text("fullUrl", entry.full_url);
    if (!entry.resource.empty())
        raw("resource", entry.resource);
    if (!entry.search_mode.empty()) {
        key("search");
        out_.StartObject();
        text("mode", entry.search_mode);
        out_.EndObject();
    }
    if (entry.request) {
        key("request");
        out_.StartObject();
        text("method", entry.request->method);
        text("url", entry.request->url);
        out_.EndObject();
    }
    if (entry.response) {
        const bundle_entry_response& r = *entry.response;
        key("response");
        out_.StartObject();
        text("status", r.status);
        if (!r.location.empty())
            text("location", r.location);
        if (!r.etag.empty())
            text("etag", r.etag);
        if (!r.last_modified.empty())
            text("lastModified", r.last_modified);
        if (!r.outcome.empty())
            raw("outcome", r.outcome);
        out_.EndObject();
    }
    out_.EndObject();
}

std::string bundle_writer::finish() {
    assert(at_ != part::finished);
    if (at_ != part::opening)
        out_.EndArray();
    out_.EndObject();
    at_ = part::finished;
    return {buffer_.GetString(), buffer_.GetSize()};
}

} // namespace caregate::interactions
