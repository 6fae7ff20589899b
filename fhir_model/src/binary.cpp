// A Binary's bytes and base64 (binary.hpp): OpenSSL's base64 blocks (EVP_EncodeBlock,
// EVP_DecodeBlock), whose padding rules are R4's.
#include "fhir_model/binary.hpp"

#include "fhir_model/summary.hpp"
#include "json.hpp"

#include <openssl/evp.h>

#include <algorithm>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::fhir {

namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// Encodes whole groups of 3 bytes (and a last short group) onto `out`.
void encode_onto(std::string& out, const unsigned char* bytes, std::size_t size) {
    const std::size_t at = out.size();
    out.resize(at + base64_size(size) + 1); // EVP_EncodeBlock writes a terminating NUL
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at), bytes, static_cast<int>(size));
    out.resize(at + static_cast<std::size_t>(written));
}

} // namespace

std::string decode_base64(std::string_view text) {
    std::string compact;
    compact.reserve(text.size());
    std::copy_if(text.begin(), text.end(), std::back_inserter(compact), [](char c) { return !is_space(c); });
    if (compact.empty())
        return {};
    std::string out(compact.size() / 4 * 3, '\0');
    const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                        reinterpret_cast<const unsigned char*>(compact.data()),
                                        static_cast<int>(compact.size()));
    if (decoded < 0)
        return {};
    // EVP_DecodeBlock counts the padding's bytes as zeros.
    std::size_t padding = 0;
    for (auto c = compact.rbegin(); c != compact.rend() && *c == '=' && padding < 2; ++c)
        ++padding;
    out.resize(static_cast<std::size_t>(decoded) - padding);
    return out;
}

void base64_appender::append(std::string_view bytes) {
    auto data = reinterpret_cast<const unsigned char*>(bytes.data());
    std::size_t size = bytes.size();
    while (pending_size_ > 0 && pending_size_ < 3 && size > 0) {
        if (pending_size_ == 2) {
            const unsigned char group[3] = {pending_[0], pending_[1], *data};
            encode_onto(out_, group, 3);
            pending_size_ = 0;
        } else {
            pending_[pending_size_++] = *data;
        }
        ++data;
        --size;
    }
    const std::size_t whole = size / 3 * 3;
    // In slices, so that EVP_EncodeBlock's int length never overflows.
    constexpr std::size_t slice = 3 * (1 << 20);
    for (std::size_t done = 0; done < whole; done += std::min(slice, whole - done))
        encode_onto(out_, data + done, std::min(slice, whole - done));
    for (std::size_t i = whole; i < size; ++i)
        pending_[pending_size_++] = data[i];
}

void base64_appender::finish() {
    if (pending_size_ > 0)
        encode_onto(out_, pending_, pending_size_);
    pending_size_ = 0;
}

std::string raw_binary_json(std::string_view id, std::string_view content_type, std::string_view security_context) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> json(buffer);
    json.StartObject();
    json.Key("resourceType");
    json.String("Binary");
    if (!id.empty()) {
        json.Key("id");
        json.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    }
    json.Key("contentType");
    json.String(content_type.data(), static_cast<rapidjson::SizeType>(content_type.size()));
    if (!security_context.empty()) {
        json.Key("securityContext");
        json.StartObject();
        json.Key("reference");
        json.String(security_context.data(), static_cast<rapidjson::SizeType>(security_context.size()));
        json.EndObject();
    }
    json.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

bool stored_in_parts(std::string_view type) noexcept { return type == "Binary"; }

result<std::string> listed_form(std::string_view type, std::string_view stored_json) {
    if (!stored_in_parts(type))
        return std::string(stored_json);
    return subset_resource(stored_json, summary_form::summary, {});
}

binary_description describe_binary(std::string_view stored_json) {
    binary_description out;
    rapidjson::Document doc;
    doc.Parse(stored_json.data(), stored_json.size());
    if (doc.HasParseError() || !doc.IsObject())
        return out;
    if (auto type = detail::string_member(doc, "contentType"))
        out.content_type = std::string(*type);
    if (auto context = doc.FindMember("securityContext"); context != doc.MemberEnd() && context->value.IsObject())
        if (auto reference = detail::string_member(context->value, "reference"))
            out.security_context = std::string(*reference);
    return out;
}

binary_with_data::binary_with_data(std::string& out, std::string_view stored_json, std::size_t whole)
    : out_(out), json_(stored_json), whole_(whole) {}

void binary_with_data::append(std::string_view part) {
    if (!data_) {
        // The stored JSON is an object the server wrote: its last byte closes it.
        out_.reserve(out_.size() + json_.size() + base64_size(whole_) + 16);
        out_.append(json_.substr(0, json_.rfind('}')));
        out_.append(",\"data\":\"");
        data_.emplace(out_);
    }
    data_->append(part);
}

void binary_with_data::finish() {
    if (!data_) {
        out_.append(json_);
        return;
    }
    data_->finish();
    out_.append("\"}");
}

} // namespace caregate::fhir
