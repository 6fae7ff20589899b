// A Binary's bytes as R4 carries them (base64 in `data`) and as caregate keeps them (apart from the
// Binary's JSON, which is stored without `data`: prepared_resource::binary_bytes). The conversions
// between the two, and the JSON a raw upload (`POST Binary` with the document's own Content-Type)
// becomes, so that it is validated and stored exactly as a Binary written in JSON.
//
// Invariants:
//  1. decode_base64(base64 of b) == b for every b; whitespace in the text is skipped (R4 allows it),
//     so only the canonical text (no whitespace, `=` padding) comes back out.
//  2. base64_appender writes the same text for bytes given in any split into pieces, so the bytes
//     can be read from storage a part at a time and encoded straight into a response.
#pragma once

#include "fhir_model/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace caregate::fhir {

/// The bytes of base64 `text` that is_valid_base64 (R4's base64Binary) accepts; whitespace skipped.
/// Text that is not valid base64 gives what OpenSSL makes of it: validate first.
std::string decode_base64(std::string_view text);

/// Appends the base64 of bytes given piece by piece to `out`; finish() writes the last group.
class base64_appender {
public:
    explicit base64_appender(std::string& out) : out_(out) {}
    void append(std::string_view bytes);
    void finish();

private:
    std::string& out_;
    unsigned char pending_[2] = {};
    std::size_t pending_size_ = 0;
};

/// The size of the base64 text of `bytes` bytes.
constexpr std::size_t base64_size(std::size_t bytes) noexcept { return (bytes + 2) / 3 * 4; }

/// The JSON of a Binary uploaded raw: its id (a PUT's, from the URL; none for a POST), its contentType,
/// and its securityContext when the client named one (the X-Security-Context header,
/// https://hl7.org/fhir/R4/binary.html#rest): a reference ("DocumentReference/1"). prepare_resource
/// then validates it as any Binary.
std::string raw_binary_json(std::string_view id, std::string_view content_type, std::string_view security_context);

/// Whether resources of `type` are stored in two parts (a Binary: its JSON, and its bytes apart), so
/// that a path listing them must use listed_form rather than the stored JSON.
bool stored_in_parts(std::string_view type) noexcept;

/// A stored resource as it is listed (a Bundle entry, an export line, a write's answer): for a Binary,
/// whose bytes are stored apart and served only by its own read, its JSON without them marked
/// SUBSETTED (R4 leaves Binary.data alone out of the summary, so that is its summary form); any other
/// type's JSON as it is. Errors: as subset_resource's.
result<std::string> listed_form(std::string_view type, std::string_view stored_json);

/// What a stored Binary's JSON says of its bytes: its contentType, and its securityContext's reference
/// (empty when it has none, or names its context otherwise).
struct binary_description {
    std::string content_type;
    std::string security_context;
};
binary_description describe_binary(std::string_view stored_json);

/// Writes a stored Binary's JSON with `data` put back onto `out`, its bytes given a part at a time
/// (as the store reads them), so that only `out` ever holds them whole. `whole`: the bytes' size, to
/// reserve room once. Without any bytes appended, finish() leaves the JSON as it is.
class binary_with_data {
public:
    binary_with_data(std::string& out, std::string_view stored_json, std::size_t whole);
    void append(std::string_view part);
    void finish();

private:
    std::string& out_;
    std::string_view json_;
    std::size_t whole_;
    std::optional<base64_appender> data_;
};

} // namespace caregate::fhir
