// FHIR XML at the API's edge: see xml_format.hpp.
#include "rest/xml_format.hpp"

#include "fhir_model/xml.hpp"
#include "http/error_response.hpp"

#include <algorithm>
#include <cctype>

namespace caregate::rest {

namespace {

bool mentions(std::string_view text, std::string_view word) { return text.find(word) != std::string_view::npos; }

} // namespace

bool is_xml_body(const http::request& req, bool binary) {
    const std::string_view type = req.header("Content-Type");
    if (req.body.empty() || type.empty())
        return false;
    if (mentions(type, "application/fhir+xml"))
        return true;
    return !binary && (mentions(type, "application/xml") || mentions(type, "text/xml"));
}

fhir::status body_to_json(http::request& req) {
    auto json = fhir::xml_to_json(req.body);
    if (!json)
        return std::move(json).failure();
    req.body = std::move(*json);
    std::erase_if(req.headers, [](const http::header_field& field) {
        return field.name.size() == 12 && std::equal(field.name.begin(), field.name.end(), "content-type",
                                                     [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
    });
    req.headers.push_back({"Content-Type", "application/fhir+json"});
    return {};
}

http::response answer_in_xml(http::response out) {
    if (out.body.empty() || !out.header("Content-Type").starts_with("application/fhir+json"))
        return out;
    auto xml = fhir::json_to_xml(out.body);
    if (!xml)
        return http::error_response(fhir::error::make(fhir::category::fault, "exception",
                                                      "the answer could not be written as XML"));
    out.body = std::move(*xml);
    out.set("Content-Type", "application/fhir+xml; charset=utf-8");
    return out;
}

} // namespace caregate::rest
