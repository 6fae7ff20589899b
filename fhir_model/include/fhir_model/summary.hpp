// `_summary` and `_elements` (https://hl7.org/fhir/R4/search.html#summary and #elements): the subset of
// a stored resource that a read or a search returns when the client asks for less. Works on the stored
// canonical JSON; not the parsing of those parameters (search_query.hpp) and nothing of HTTP.
#pragma once

#include "fhir_model/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::fhir {

/// The forms of a resource that `_summary` asks for (`_summary=count` is a search matter, not a form).
/// Every form keeps `resourceType`, `id` and `meta`.
enum class summary_form : std::uint8_t {
    full,    ///< `_summary=false`, or no `_summary`: every element
    /// `_summary=true`: the elements marked isSummary in the R4 definitions. Inside a kept complex or
    /// backbone element, its children are kept by their own isSummary flag, the flags of the data type
    /// for a data type (so a HumanName keeps family and given but not its id or extensions, an
    /// Attachment drops `data`). An Extension that is kept (a summary modifierExtension) is kept whole,
    /// and so is the `_name` object beside a kept primitive. Elements left empty are dropped.
    summary,
    text,    ///< `_summary=text`: `text` and the top-level mandatory elements (min >= 1)
    data,    ///< `_summary=data`: every element but the top-level `text`
};

/// The tag a subsetted resource carries in meta.tag (search.html#summary).
inline constexpr std::string_view subsetted_tag_system = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
inline constexpr std::string_view subsetted_tag_code = "SUBSETTED";

/// The resource in `form`, restricted to `elements` (top-level element names, `_elements`) when not
/// empty. `elements` keeps `resourceType`, `id`, `meta`, the top-level mandatory elements (min >= 1,
/// which the spec says servers should return) and each listed element: a choice element by its base
/// name (`value` keeps `valueQuantity`) or its JSON name (`valueQuantity`), a primitive with its `_name`
/// sibling. Unknown names are ignored. With both, an element is kept if both keep it.
/// A subsetted result (any form but full, or `elements` not empty) carries meta.tag {system
/// subsetted_tag_system, code subsetted_tag_code}, once. The output is canonical JSON, numbers as
/// written (`1.10` stays `1.10`), meta.versionId and meta.lastUpdated kept. In the full form without
/// `elements`, returns `canonical_json` as it is, without parsing it (a read serves the stored bytes).
/// Errors: malformed (a bug in the caller, stored JSON is canonical): not JSON, not an object whose
/// resourceType the R4 definitions know, or meta.versionId and meta.lastUpdated not as the store writes
/// them (both or neither; an integer versionId; an id beside them).
result<std::string> subset_resource(std::string_view canonical_json, summary_form form,
                                    const std::vector<std::string>& elements);

} // namespace caregate::fhir
