// Header helpers for the request/response seam, and the loose request target.
#include "http/message.hpp"

#include <algorithm>
#include <cctype>

namespace caregate::http {

namespace {
bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}
} // namespace

std::string_view find_header(const std::vector<header_field>& headers, std::string_view name) noexcept {
    for (const auto& h : headers)
        if (iequals(h.name, name))
            return h.value;
    return {};
}

void response::set(std::string_view name, std::string value) {
    std::erase_if(headers, [&](const header_field& h) { return iequals(h.name, name); });
    headers.push_back({std::string(name), std::move(value)});
}

response plain_text(unsigned status, std::string body) {
    response out;
    out.status = status;
    out.set("Content-Type", "text/plain; charset=utf-8");
    out.body = std::move(body);
    return out;
}

std::string encode_loose_target(std::string_view target) {
    std::string out;
    out.reserve(target.size());
    for (const char c : target) {
        switch (c) {
        case '|': out += "%7C"; break;
        case '^': out += "%5E"; break;
        case '`': out += "%60"; break;
        case '{': out += "%7B"; break;
        case '}': out += "%7D"; break;
        case '"': out += "%22"; break;
        case '<': out += "%3C"; break;
        case '>': out += "%3E"; break;
        case '\\': out += "%5C"; break;
        case ' ': out += "%20"; break;
        default: out += c;
        }
    }
    return out;
}

} // namespace caregate::http
