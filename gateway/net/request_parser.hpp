// How a session reads one request from the bytes it has received (private to gateway/net): Beast's
// HTTP/1.1 syntax (basic_parser), the framing rules caregate adds to it, and the bounds on what it
// may buffer. No I/O: the session reads raw bytes and calls this from its own coroutine, never from
// inside a completion handler, where a parser's exception would escape the session.
//
// Invariants it keeps:
//   1. A request has a body framed by Content-Length or by `Transfer-Encoding: chunked` alone, or
//      none; any other Transfer-Encoding (a list, another coding, two fields, any in HTTP/1.0) is
//      refused, because a proxy in front may frame it otherwise and smuggle a second request in its
//      body (RFC 9112 section 6.3).
//   2. Trailer fields never reach the request: they arrived after the body, outside what a proxy
//      checked, so an Authorization or Connection there would act unchecked (RFC 9110 section
//      6.5.1). They are read, bounded and dropped; keep-alive is decided by the header alone.
//   3. What waits in the buffer unparsed is bounded: the request line and headers together by
//      limits::header_bytes (Beast bounds each on its own), a chunk's size line by 16 hex digits
//      plus limits::chunk_extension_bytes, the trailer section by limits::trailer_bytes; a body
//      goes into the request as it is parsed and is bounded by limits::body_bytes.
//   4. Nothing here throws on anything a client sends: every refusal is an error_code.
//   5. A body is bounded by limits::body_bytes, or by limits::binary_body_bytes where the listener's
//      takes_binary_body chooses it for the request line, unless the header declares JSON or FHIR XML
//      (parsed whole, more than once: a Binary's own bytes are not).
#pragma once

#include "net/server.hpp"
#include "http/message.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace caregate::net::detail {

/// Why a request's framing was refused, beyond Beast's own http::error values. Each is a 400.
enum class framing_error {
    transfer_encoding_not_chunked = 1, ///< invariant 1
    chunk_extension_too_long,          ///< invariant 3
    trailer_too_long,                  ///< invariant 3
};

const boost::system::error_category& framing_category() noexcept;
boost::system::error_code make_error_code(framing_error e) noexcept;

/// Parses one request into a http::request. put() stops at the end of the header, so that the session
/// decides about the body (503, 100 Continue) before taking any of it; the session then sets
/// eager(true), so that what put() leaves unparsed is only framing, and calls check_unparsed()
/// before it reads more.
class request_parser final : public boost::beast::http::basic_parser<true> {
public:
    /// `takes_binary_body`: listener::takes_binary_body (may be empty).
    request_parser(const net::limits& limits,
                   const std::function<bool(std::string_view, std::string_view)>& takes_binary_body);

    /// basic_parser::put, holding the request line and headers together to limits::header_bytes:
    /// Beast holds the request line to it, and then the fields to it again, each on its own.
    std::size_t put(boost::asio::const_buffer buffer, boost::system::error_code& ec);

    /// After the header: whether the client waits for "100 Continue" before sending its body.
    bool expects_continue() const noexcept { return expects_continue_; }
    /// After the header: whether the connection may carry another request (the header's
    /// Connection field and version; never a trailer's).
    bool header_keep_alive() const noexcept { return keep_alive_; }
    unsigned version() const noexcept { return version_; }
    bool is_head() const noexcept { return head_; }
    /// Bytes of body received so far.
    std::size_t body_size() const noexcept { return request_.body.size(); }

    /// After put() has returned need_more: error when `unparsed` (what put() left) is already more
    /// than the bounds of invariant 3 allow, before more is read onto it.
    boost::system::error_code check_unparsed(std::string_view unparsed) const noexcept;

    /// The request, once is_done(); leaves the parser empty.
    http::request release() noexcept { return std::move(request_); }

private:
    using string_view = boost::beast::string_view;
    using error_code = boost::system::error_code;

    void on_request_impl(boost::beast::http::verb method, string_view method_string, string_view target,
                         int version, error_code& ec) override;
    void on_response_impl(int code, string_view reason, int version, error_code& ec) override;
    void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                       error_code& ec) override;
    void on_header_impl(error_code& ec) override;
    void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                           error_code& ec) override;
    std::size_t on_body_impl(string_view body, error_code& ec) override;
    void on_chunk_header_impl(std::uint64_t size, string_view extensions, error_code& ec) override;
    std::size_t on_chunk_body_impl(std::uint64_t remain, string_view body, error_code& ec) override;
    void on_finish_impl(error_code& ec) override;

    const std::size_t header_bytes_;
    const std::size_t body_bytes_;
    const std::size_t binary_body_bytes_;
    const std::function<bool(std::string_view, std::string_view)>& takes_binary_body_;
    /// The request line chose limits::binary_body_bytes (invariant 5).
    bool binary_body_ = false;
    bool declares_fhir_ = false;
    const std::size_t chunk_extension_bytes_;
    const std::size_t trailer_bytes_;
    http::request request_;
    unsigned version_ = 11;
    bool head_ = false;
    bool expects_continue_ = false;
    bool keep_alive_ = false;
    /// Bytes of the request line and headers taken so far.
    std::size_t header_size_ = 0;
    /// Transfer-Encoding fields seen, and whether the one seen is exactly "chunked".
    unsigned transfer_encodings_ = 0;
    bool transfer_encoding_is_chunked_ = false;
    /// Set at the last chunk: fields from here on are the trailer's.
    bool in_trailer_ = false;
    std::size_t trailer_size_ = 0;
};

} // namespace caregate::net::detail

namespace boost::system {
/// So that a framing_error converts to an error_code, as Beast's http::error does.
template <>
struct is_error_code_enum<caregate::net::detail::framing_error> {
    static const bool value = true;
};
} // namespace boost::system
