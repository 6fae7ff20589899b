// Fuzzes fhir::parse_search_query, which reads every search a client sends. Input: the types searched
// on the first line, comma-separated (a leading '~' asks for lenient handling), then the query as
// `name=value&name=value`, already decoded as the gateway hands it over (so a value holds no '&').
// Types that this server does not store are skipped: the gateway answers those itself.
#include "fhir_model/resource.hpp"
#include "fhir_model/search_query.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fhir = caregate::fhir;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto newline = input.find('\n');
    if (newline == std::string_view::npos)
        return 0;
    std::string_view type_list = input.substr(0, newline), query = input.substr(newline + 1);

    fhir::search_query_options options;
    if (type_list.starts_with('~')) {
        options.lenient = true;
        type_list.remove_prefix(1);
    }
    std::vector<std::string> types;
    while (!type_list.empty()) {
        auto comma = type_list.find(',');
        std::string_view type = type_list.substr(0, comma);
        if (!fhir::is_supported_type(type))
            return 0;
        types.emplace_back(type);
        type_list = comma == std::string_view::npos ? std::string_view() : type_list.substr(comma + 1);
    }
    if (types.empty())
        return 0;

    std::vector<std::pair<std::string, std::string>> parameters;
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        auto equals = pair.find('=');
        if (equals == std::string_view::npos)
            parameters.emplace_back(pair, "");
        else
            parameters.emplace_back(pair.substr(0, equals), pair.substr(equals + 1));
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }

    auto parsed = fhir::parse_search_query(types, parameters, options);
    (void)parsed;
    return 0;
}
