// The request parser of a session: Beast's HTTP/1.1 syntax, caregate's framing rules and the bounds
// on what waits unparsed (the invariants are in request_parser.hpp). Knows nothing of sockets.
#include "net/request_parser.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <limits>
#include <string>

namespace caregate::net::detail {

namespace {

namespace beast = boost::beast;

/// The most hex digits a chunk's size needs: it must fit 64 bits (Beast refuses more). Leading
/// zeros beyond them count against the extension's bound.
constexpr std::size_t chunk_size_digits = 16;
/// The bytes of a trailer field's line beyond its name and value: ": " and CRLF.
constexpr std::size_t field_line_framing = 4;
/// The empty line that ends a trailer section.
constexpr std::size_t section_end = 2;

class framing_error_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "caregate.framing"; }
    std::string message(int value) const override {
        switch (static_cast<framing_error>(value)) {
        case framing_error::transfer_encoding_not_chunked: return "Transfer-Encoding other than chunked alone";
        case framing_error::chunk_extension_too_long: return "chunk extension too long";
        case framing_error::trailer_too_long: return "trailer section too long";
        }
        return "framing error";
    }
};

std::string_view trim(std::string_view text) noexcept {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos)
        return {};
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

} // namespace

const boost::system::error_category& framing_category() noexcept {
    static const framing_error_category instance;
    return instance;
}

boost::system::error_code make_error_code(framing_error e) noexcept {
    return {static_cast<int>(e), framing_category()};
}

request_parser::request_parser(const net::limits& limits,
                               const std::function<bool(std::string_view, std::string_view)>& takes_binary_body)
    : header_bytes_(limits.header_bytes), body_bytes_(limits.body_bytes), binary_body_bytes_(limits.binary_body_bytes),
      takes_binary_body_(takes_binary_body), chunk_extension_bytes_(limits.chunk_extension_bytes),
      trailer_bytes_(limits.trailer_bytes) {
    header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.header_bytes, std::numeric_limits<std::uint32_t>::max())));
    body_limit(static_cast<std::uint64_t>(limits.body_bytes));
    // put() stops once the header is parsed, so that the session decides about the body (503,
    // 100 Continue) before any of it is taken; it sets eager(true) then.
    eager(false);
}

std::size_t request_parser::put(boost::asio::const_buffer buffer, error_code& ec) {
    const bool in_header = !is_header_done();
    const std::size_t used = basic_parser::put(buffer, ec);
    // The request line may be taken by an earlier put() than the fields, so the header's bytes are
    // summed over the calls until it is done; put() stops at the header's end (eager is off until
    // then), so no byte of a body is counted.
    if (in_header) {
        header_size_ += used;
        if (header_size_ > header_bytes_)
            ec = beast::http::error::header_limit;
    }
    return used;
}

boost::system::error_code request_parser::check_unparsed(std::string_view unparsed) const noexcept {
    // Beast bounds the header itself (header_limit) and takes a body's bytes as they come: only a
    // chunked body's framing waits whole, and unbounded, for its end.
    if (!is_header_done() || is_done() || !chunked())
        return {};
    // Left unparsed: the CRLF ending the chunk before (or part of it), then either a chunk-size
    // line not yet ended, or the last chunk's line and a trailer section not yet ended (Beast parses
    // a chunk-size line as soon as it ends, but the last one only with its whole trailer section).
    if (unparsed.starts_with("\r\n"))
        unparsed.remove_prefix(2);
    const std::size_t longest_line = chunk_size_digits + chunk_extension_bytes_;
    const auto line_end = unparsed.find("\r\n");
    if (std::min(line_end, unparsed.size()) > longest_line)
        return framing_error::chunk_extension_too_long;
    if (line_end != std::string_view::npos && unparsed.size() - line_end - 2 > trailer_bytes_)
        return framing_error::trailer_too_long;
    return {};
}

void request_parser::on_request_impl(beast::http::verb method, string_view method_string, string_view target,
                                     int version, error_code&) {
    request_.method.assign(method_string.data(), method_string.size());
    request_.target.assign(target.data(), target.size());
    version_ = static_cast<unsigned>(version);
    head_ = method == beast::http::verb::head;
    // Invariant 5: before the fields, as Beast holds a Content-Length to the limit when the header ends.
    if (takes_binary_body_ && takes_binary_body_(request_.method, request_.target)) {
        binary_body_ = true;
        body_limit(static_cast<std::uint64_t>(std::max(body_bytes_, binary_body_bytes_)));
    }
}

void request_parser::on_response_impl(int, string_view, int, error_code&) {
    // Never called: this parser reads requests (basic_parser<true>).
}

void request_parser::on_field_impl(beast::http::field name, string_view name_string, string_view value, error_code& ec) {
    if (in_trailer_) {
        // Invariant 2: counted against the bound, then dropped. Beast has already taken framing
        // fields here (Content-Length, Transfer-Encoding) as errors.
        trailer_size_ += name_string.size() + value.size() + field_line_framing;
        if (trailer_size_ + section_end > trailer_bytes_)
            ec = framing_error::trailer_too_long;
        return;
    }
    if (name == beast::http::field::transfer_encoding) {
        ++transfer_encodings_;
        transfer_encoding_is_chunked_ = boost::beast::iequals(trim(value), "chunked");
    } else if (name == beast::http::field::expect && boost::beast::iequals(trim(value), "100-continue")) {
        expects_continue_ = true;
    } else if (name == beast::http::field::content_type) {
        const std::string_view type = trim(value);
        declares_fhir_ = type.find("json") != std::string_view::npos || type.find("fhir+xml") != std::string_view::npos;
    }
    request_.headers.push_back({std::string(name_string.data(), name_string.size()),
                                std::string(value.data(), value.size())});
}

void request_parser::on_header_impl(error_code& ec) {
    keep_alive_ = keep_alive();
    // Invariant 5: FHIR (JSON, FHIR XML) is held to body_bytes, wherever it is sent; Beast has held a Content-Length to
    // the larger limit already, and a chunked body is held to what is set here as it arrives.
    if (binary_body_ && declares_fhir_) {
        if (const auto length = content_length(); length && *length > body_bytes_) {
            ec = beast::http::error::body_limit;
            return;
        }
        body_limit(static_cast<std::uint64_t>(body_bytes_));
    }
    // Invariant 1. HTTP/1.0 has no transfer codings: RFC 9112 section 6.1 calls such framing faulty.
    if (transfer_encodings_ != 0 && (transfer_encodings_ != 1 || !transfer_encoding_is_chunked_ || version_ < 11))
        ec = framing_error::transfer_encoding_not_chunked;
}

void request_parser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code&) {
    // Beast has held a declared length to body_limit already; the session has counted it.
    if (content_length)
        request_.body.reserve(static_cast<std::size_t>(*content_length));
}

std::size_t request_parser::on_body_impl(string_view body, error_code&) {
    request_.body.append(body.data(), body.size());
    return body.size();
}

void request_parser::on_chunk_header_impl(std::uint64_t size, string_view extensions, error_code& ec) {
    // Extensions mean nothing to this server; they are bounded and dropped.
    if (extensions.size() > chunk_extension_bytes_) {
        ec = framing_error::chunk_extension_too_long;
        return;
    }
    if (size == 0)
        in_trailer_ = true;
}

std::size_t request_parser::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
    request_.body.append(body.data(), body.size());
    return body.size();
}

void request_parser::on_finish_impl(error_code&) {}

} // namespace caregate::net::detail
