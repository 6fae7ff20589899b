// How paged interactions read their paging parameters: `_count`, read for every Bundle that pages
// (search, history, the audit log, $everything) by fhir::parse_count, and `_page`, the cursor of
// history and the audit log (a position in the store's write order or in the audit chain, from 1).
// A search's `_cursor` is the store's own (storage::decode_cursor).
#pragma once

#include "fhir_model/error.hpp"
#include "interactions/context.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace caregate::interactions {

/// The page size `_count` asks for, capped at config.max_count (0: no entries); the configured
/// default when it is absent. Errors: malformed.
fhir::result<unsigned> page_count(const rest_config& config, const std::optional<std::string>& given);

/// A `_page` cursor, as a `next` link carries it. Errors: malformed.
fhir::result<std::int64_t> page_cursor(std::string_view given);

} // namespace caregate::interactions
