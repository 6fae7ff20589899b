// The paging parameters; see paging.hpp.
#include "interactions/paging.hpp"

#include "fhir_model/search_query.hpp"

#include <algorithm>
#include <charconv>

namespace caregate::interactions {

fhir::result<unsigned> page_count(const rest_config& config, const std::optional<std::string>& given) {
    if (!given)
        return std::min(config.default_count, config.max_count);
    return fhir::parse_count(*given, config.max_count);
}

fhir::result<std::int64_t> page_cursor(std::string_view given) {
    std::int64_t cursor = 0;
    auto [end, ec] = std::from_chars(given.data(), given.data() + given.size(), cursor);
    if (ec != std::errc{} || end != given.data() + given.size() || cursor < 1)
        return fhir::error::make(fhir::category::malformed, "value", "_page is not a page of this Bundle", "_page");
    return cursor;
}

} // namespace caregate::interactions
