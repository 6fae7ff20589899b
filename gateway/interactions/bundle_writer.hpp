// The one writer of Bundles (https://hl7.org/fhir/R4/bundle.html): searchset, history,
// batch-response, transaction-response and document. A resource goes in as serialised JSON and is spliced in
// as bytes, never parsed again, so that a stored resource costs a copy (reads are fast because of it).
//
// Invariants:
//  1. Members come in the spec's order: resourceType, id, identifier, type, timestamp, total, link,
//     entry. total() comes before any link, and links before any entry (asserted).
//  2. FHIR JSON has no empty arrays: `link` and `entry` appear only with an item.
//  3. What is spliced in must be one JSON object; the writer does not check it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::interactions {

/// Bundle.entry.request of a history entry: how the version came about.
struct bundle_entry_request {
    std::string_view method{};
    std::string_view url{};
};

/// Bundle.entry.response: a history entry's, or the answer to a batch or transaction entry. Empty
/// fields are left out.
struct bundle_entry_response {
    std::string_view status{};
    std::string_view location{};
    std::string_view etag{};
    std::string_view last_modified{};
    std::string_view outcome{}; ///< an OperationOutcome's JSON, spliced in
};

struct bundle_entry {
    std::string_view full_url{};    ///< left out when empty
    std::string_view resource{};    ///< a resource's JSON, spliced in as it is; left out when empty
    std::string_view search_mode{}; ///< searchset: match, include or outcome; left out when empty
    std::optional<bundle_entry_request> request{};
    std::optional<bundle_entry_response> response{};
};

/// What a document Bundle carries of its own (https://hl7.org/fhir/R4/documents.html): an identifier
/// (a urn:uuid:, system urn:ietf:rfc:3986) and when it was assembled.
struct document_identity {
    std::string identifier;
    std::string timestamp;
};

class bundle_writer {
public:
    /// Opens a Bundle of `type` ("searchset", "history", "batch-response", "transaction-response",
    /// "document"), with `id` when it has one of its own, and a document's identity.
    explicit bundle_writer(std::string_view type, std::string_view id = {},
                           const std::optional<document_identity>& identity = std::nullopt);
    bundle_writer(const bundle_writer&) = delete;
    bundle_writer& operator=(const bundle_writer&) = delete;

    void total(std::int64_t matches);
    void link(std::string_view relation, std::string_view url);
    void entry(const bundle_entry& entry);
    /// The Bundle's JSON; the writer is done.
    std::string finish();

private:
    void string(std::string_view text);
    void key(std::string_view name);
    void text(std::string_view name, std::string_view value);
    void raw(std::string_view name, std::string_view json);

    enum class part { opening, links, entries, finished };
    part at_ = part::opening;
    rapidjson::StringBuffer buffer_;
    rapidjson::Writer<rapidjson::StringBuffer> out_{buffer_};
};

} // namespace caregate::interactions
