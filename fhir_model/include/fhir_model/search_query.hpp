// A FHIR search's parameters, parsed and checked against the official search parameters of the
// types searched: what each parameter means (its chain, modifier and OR'd values, each value parsed
// for the parameter's type), and the result parameters (_sort, _count, _include, _revinclude,
// _summary, _elements, _total). Not SQL and not matching: storage/search.hpp plans the query.
//
// An unknown or unsupported parameter, modifier, prefix or value is an error naming it (category
// malformed or unsupported, both 400), never dropped silently, because a dropped parameter widens a
// search. With `lenient`, such a parameter is dropped and listed in `ignored`, and `applied` shows
// what was used, so the self link tells the client exactly what was searched.
#pragma once

#include "fhir_model/date_time.hpp"
#include "fhir_model/error.hpp"
#include "fhir_model/search_parameters.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace caregate::fhir {

enum class search_prefix : std::uint8_t { eq, ne, gt, lt, ge, le, sa, eb, ap };

enum class search_modifier : std::uint8_t {
    none,
    exact,      ///< string
    contains,   ///< string
    missing,    ///< any type: value "true" or "false"
    not_,       ///< token
    text,       ///< token: the display or CodeableConcept.text, string-matched (starts with, folded)
    of_type,    ///< token (identifier): type-system|type-code|value
    in,         ///< token: code in a value set this server holds (required bindings of R4)
    not_in,     ///< token
    identifier, ///< reference: the logical reference's identifier, system|value
    type,       ///< reference: `:Patient`, the target type in `type_modifier`
    above,      ///< uri (and reference to canonical)
    below,      ///< uri
};

/// One alternative of a parameter's value (the values a comma separates), parsed for the type of the
/// parameter it belongs to. Which fields are set depends on that type; the escapes `\,` `\|` `\$`
/// `\\` are resolved in every text field.
struct search_argument {
    search_prefix prefix = search_prefix::eq; ///< date, number, quantity only; eq elsewhere
    std::string text;                         ///< the value after the prefix, escapes resolved

    /// token (and reference :identifier): `system|code` -> system set; `|code` -> system "" (no
    /// system); `code` -> nullopt (any system); `system|` -> system set, code empty (any code).
    std::optional<std::string> system;
    std::string code;
    /// token :of-type: `type-system|type-code|value`: `system`/`code` hold the type, this the value.
    std::string of_type_value;
    /// token :in / :not-in: the value set's canonical URL (in `text` too).

    /// date: the range the value covers at its precision.
    time_range range;

    /// number and quantity: the number as written, its value, and the interval its precision
    /// implies ("100" -> [99.5, 100.5)) for eq/ne/ap.
    double number = 0;
    double number_low = 0;
    double number_high = 0;
    /// quantity: `5.4|http://unitsofmeasure.org|mg` -> system "http://unitsofmeasure.org", code "mg";
    /// `5.4||mg` -> system nullopt, code "mg" (code or unit); `5.4` -> both empty.
    std::optional<std::string> quantity_system;
    std::string quantity_code;

    /// reference: `Patient/123` -> target_type "Patient", id "123"; `123` -> id only (any target
    /// type, or the `:Type` modifier's); an absolute URL not of this server -> url.
    std::string target_type;
    std::string id;
    std::string url;

    /// :missing: true for "true", false for "false".
    bool missing = false;

    /// composite: one argument per component (split on `$`), each parsed for its component's type.
    std::vector<search_argument> components;
};

/// One step from the type searched towards the parameter a clause tests.
struct search_step {
    /// false: a forward chain `subject:Patient.` (follow `reference` from the current type to
    /// `type`); true: a reverse chain `_has:Observation:patient:` (resources of `type` whose
    /// `reference` parameter points at the current one).
    bool reverse = false;
    std::string type;                           ///< the type this step reaches
    const search_parameter* reference = nullptr; ///< a reference parameter (of the current type, or of `type` when reverse)
};

/// One search parameter as given (`name=value`): repeated parameters are separate clauses (AND);
/// the comma alternatives of one are `any_of` (OR).
struct search_clause {
    std::string name;                ///< the parameter name as given, e.g. "subject:Patient.name:exact"
    std::vector<search_step> path;   ///< empty for a parameter of the searched type itself
    std::string type;                ///< the type `parameter` belongs to (the end of `path`)
    const search_parameter* parameter = nullptr;
    search_modifier modifier = search_modifier::none;
    std::string type_modifier;       ///< for search_modifier::type: the target type
    std::vector<search_argument> any_of;
};

struct search_sort_key {
    const search_parameter* parameter = nullptr;
    bool descending = false;
};

/// `_include=Observation:subject:Patient` (`reverse` false) or `_revinclude=Provenance:target`.
struct search_include {
    bool reverse = false;
    bool iterate = false;            ///< `:iterate` (or R3's `:recurse`)
    std::string source_type;         ///< the type holding the reference ("Observation"; "*" for any)
    const search_parameter* parameter = nullptr; ///< nullptr for `*`: every reference parameter
    std::string target_type;         ///< restriction to one target type; empty for any
};

enum class search_summary : std::uint8_t { none, true_, text, data, count, false_ };
enum class search_total : std::uint8_t { none, estimate, accurate };

struct search_query {
    std::vector<std::string> types;  ///< the types searched (one, or several at system level)
    std::vector<search_clause> clauses;
    std::vector<search_sort_key> sort;
    unsigned count = 50;             ///< _count, capped at the maximum; 0 asks for no entries
    std::vector<search_include> includes; ///< _include and _revinclude, in the order given
    search_summary summary = search_summary::none;
    std::vector<std::string> elements; ///< _elements, top-level element names
    search_total total = search_total::none;
    /// The parameters used, as name=value pairs normalised for the self link (in the order given).
    std::vector<std::pair<std::string, std::string>> applied;
    /// Under lenient handling: the parameters dropped, each with the reason.
    std::vector<issue> ignored;
};

struct search_query_options {
    bool lenient = false;          ///< Prefer: handling=lenient
    unsigned default_count = 50;
    unsigned max_count = 1000;
    unsigned max_includes = 16;    ///< _include + _revinclude
    unsigned max_chain = 3;        ///< steps in one chain (forward and reverse together)
    unsigned max_clauses = 64;
    /// When not empty, the only parameter codes (and result parameters, e.g. "_count") the search
    /// takes: a search answered from elsewhere than the index (the audit log) lists what it can
    /// answer, and any other parameter is unsupported, as an unknown one is.
    std::span<const std::string_view> parameters;
};

/// The codes of a value set this server holds (the enumerable required bindings of R4, by canonical
/// URL, with or without `|version`), as (system, code) pairs; nullptr when it holds no such value set.
/// For token :in and :not-in.
const std::vector<std::pair<std::string, std::string>>* value_set_members(std::string_view url);

/// `_count`: a whole number, capped at `max_count`; 0 asks for no entries (a total only, where the
/// Bundle carries one). The one reading of `_count` for every Bundle that pages: searches, history,
/// the audit log, $everything. Errors: malformed, naming _count.
result<unsigned> parse_count(std::string_view value, unsigned max_count);

/// Parses the decoded (name, value) pairs of a search on `types` (one type for a type-level search;
/// the _type list, or every supported type, for a system search). `_format` and `_pretty`, and the
/// gateway's own paging parameters, must be removed by the caller first.
/// Errors: malformed (a value that does not parse), unsupported (an unknown parameter, modifier or
/// prefix; an unsupported feature such as _text, _content, _query, _filter, _contained). Each names
/// the parameter in its diagnostics and has the parameter name as its expression.
result<search_query> parse_search_query(const std::vector<std::string>& types,
                                        const std::vector<std::pair<std::string, std::string>>& parameters,
                                        const search_query_options& options);

} // namespace caregate::fhir
