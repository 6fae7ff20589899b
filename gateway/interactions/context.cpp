// Shared answers for interactions: parameters, Prefer, ETags, the version response and UUIDs.
#include "interactions/context.hpp"

#include "fhir_model/date_time.hpp"

#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace caregate::interactions {

std::optional<std::string> context::param(std::string_view name) const {
    for (const auto& [key, value] : params)
        if (key == name)
            return value;
    return std::nullopt;
}

fhir::status context::only_params(std::initializer_list<std::string_view> allowed) const {
    for (const auto& [key, value] : params) {
        if (key == "_format" || key == "_pretty")
            continue;
        bool known = false;
        for (auto name : allowed)
            known = known || key == name;
        if (!known)
            return fhir::error::make(fhir::category::unsupported, "not-supported",
                                     "the parameter '" + key + "' is not supported by this interaction");
    }
    return {};
}

prefer_return context::prefer() const {
    const std::string_view prefer = req.header("Prefer");
    if (prefer.find("return=minimal") != std::string_view::npos)
        return prefer_return::minimal;
    if (prefer.find("return=OperationOutcome") != std::string_view::npos)
        return prefer_return::operation_outcome;
    return prefer_return::representation;
}

std::string etag(std::int64_t version_id) { return "W/\"" + std::to_string(version_id) + "\""; }

std::optional<std::int64_t> parse_etag(std::string_view text) noexcept {
    if (text.starts_with("W/"))
        text.remove_prefix(2);
    if (text.size() < 3 || text.front() != '"' || text.back() != '"')
        return std::nullopt;
    text = text.substr(1, text.size() - 2);
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < 1)
        return std::nullopt;
    return value;
}

http::response version_response(const rest_config& config, unsigned status, const storage::stored_version& version,
                          prefer_return how, bool location) {
    http::response out;
    out.status = status;
    out.set("ETag", etag(version.version_id));
    out.set("Last-Modified", fhir::format_http_date(version.last_updated));
    if (location)
        out.set("Location", config.base_url + "/" + version.type + "/" + version.id + "/_history/" +
                                std::to_string(version.version_id));
    switch (how) {
    case prefer_return::minimal:
        break;
    case prefer_return::operation_outcome: {
        fhir::error note;
        note.issues.push_back({"information", "informational",
                               "the interaction succeeded: " + version.type + "/" + version.id + " version " +
                                   std::to_string(version.version_id),
                               {}});
        out.set("Content-Type", "application/fhir+json; charset=utf-8");
        out.body = fhir::operation_outcome_json(note);
        break;
    }
    case prefer_return::representation:
        out.set("Content-Type", "application/fhir+json; charset=utf-8");
        out.body = version.json;
        break;
    }
    return out;
}

http::response json_response(std::string body) {
    http::response out;
    out.status = 200;
    out.set("Content-Type", "application/fhir+json; charset=utf-8");
    out.body = std::move(body);
    return out;
}

std::string random_uuid() {
    // RAND_bytes costs far more per call than per byte (a transaction of 100 entries made 100
    // calls: 3% of ingest's CPU), so each thread draws 256 UUIDs' worth at once. Ids are public;
    // the unused bytes are no secret kept.
    thread_local std::array<unsigned char, 16 * 256> pool;
    thread_local std::size_t used = pool.size();
    if (used == pool.size()) {
        if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1)
            throw std::runtime_error("RAND_bytes failed");
        used = 0;
    }
    unsigned char* bytes = pool.data() + used;
    used += 16;
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    constexpr std::string_view hex = "0123456789abcdef";
    std::string text;
    text.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text += '-';
        text += hex[bytes[i] >> 4];
        text += hex[bytes[i] & 0x0f];
    }
    return text;
}

bool is_uuid(std::string_view text) noexcept {
    if (text.size() != 36)
        return false;
    for (std::size_t i = 0; i < 36; ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i])))
            return false;
    }
    return true;
}

} // namespace caregate::interactions
