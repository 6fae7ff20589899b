// Keys and pseudonyms of pseudonymised exports: see pseudonymise.hpp.
#include "export/pseudonymise.hpp"

#include "export/embedded_deidentification.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <rapidjson/document.h>

#include <stdexcept>

namespace caregate::exports {

namespace {

std::string from_hex(std::string_view hex) {
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::string out;
    if (hex.size() % 2 != 0)
        return {};
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int high = digit(hex[i]), low = digit(hex[i + 1]);
        if (high < 0 || low < 0)
            return {};
        out.push_back(static_cast<char>(high * 16 + low));
    }
    return out;
}

} // namespace

pseudonym_keys pseudonym_keys::parse(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsObject())
        throw std::invalid_argument("the export keys file must be a JSON object from ODS codes to hex keys");
    pseudonym_keys out;
    for (const auto& member : doc.GetObject()) {
        const std::string recipient(member.name.GetString(), member.name.GetStringLength());
        if (!member.value.IsString())
            throw std::invalid_argument("the export key of " + recipient + " is not a string");
        std::string key = from_hex({member.value.GetString(), member.value.GetStringLength()});
        if (key.size() < 32)
            throw std::invalid_argument("the export key of " + recipient + " must be at least 32 bytes, as hex");
        out.keys_.emplace(recipient, std::move(key));
    }
    return out;
}

const std::string* pseudonym_keys::find(std::string_view recipient) const {
    auto found = keys_.find(recipient);
    return found == keys_.end() ? nullptr : &found->second;
}

std::string pseudonym(const std::string& key, std::string_view type, std::string_view id) {
    std::string message(type);
    message += '/';
    message += id;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
         message.size(), digest, &length);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < 16 && i < length; ++i) { // 128 bits: no collision in any population
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 15]);
    }
    return out;
}

const fhir::deidentification_profile& shipped_deidentification_profile() {
    static const fhir::deidentification_profile profile = [] {
        auto parsed = fhir::deidentification_profile::parse(default_deidentification_json);
        if (!parsed)
            throw std::logic_error(parsed.failure().issues.front().diagnostics);
        return std::move(*parsed);
    }();
    return profile;
}

} // namespace caregate::exports
