// Header helpers for the request/response seam.
#include "rest/http.hpp"

#include <algorithm>
#include <cctype>

namespace caregate::rest {

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

} // namespace caregate::rest
