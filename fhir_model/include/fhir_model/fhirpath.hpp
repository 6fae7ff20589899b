// The FHIRPath subset that the R4 search parameter expressions of the supported types use: paths (with
// choice types), `|`, where(), resolve() is T, as/ofType/is, exists(), empty(), not(), first(), [n],
// extension(url), =, !=, and, or, string/integer/boolean literals. Parse once, evaluate many times.
// Not a general FHIRPath engine: anything outside the subset fails to parse with an error that names it,
// so an expression can never silently match nothing.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

namespace caregate::fhir {

/// One item of a FHIRPath result: a JSON value of the resource, or a value the expression computed.
struct fhirpath_node {
    const rapidjson::Value* value = nullptr; ///< nullptr for a computed value
    std::string_view type;                   ///< FHIR type when the definitions say ("Quantity", "dateTime")
    std::string_view resolved_type;          ///< after resolve(): the referenced resource type, if known
    std::optional<bool> boolean;             ///< a computed Boolean (exists(), is, =, and, ...)
    std::string_view literal;                ///< a string or integer literal of the expression
};
using fhirpath_result = std::vector<fhirpath_node>;

namespace detail { struct fhirpath_ast; }

/// A parsed expression; cheap to evaluate repeatedly, safe to share between threads.
class fhirpath_expression {
public:
    /// The empty expression: evaluates to nothing.
    fhirpath_expression() = default;

    /// Parses `text`; on failure returns nullopt and sets `error` to what is unsupported or malformed.
    static std::optional<fhirpath_expression> parse(std::string_view text, std::string& error);

    /// Evaluates against a resource (a JSON object with resourceType). JSON numbers follow the
    /// fhir_model JSON layer's convention (marked strings).
    fhirpath_result evaluate(const rapidjson::Value& resource) const;

    /// Evaluates with `focus` as the context item (a composite's component against the composite's value).
    fhirpath_result evaluate(const fhirpath_node& focus, const rapidjson::Value& resource) const;

    const std::string& text() const noexcept { return text_; }

private:
    std::string text_;
    std::shared_ptr<const detail::fhirpath_ast> ast_;
};

/// What resolve() gives for a Reference of `resource`: the type of a contained resource ("#id"),
/// else the resource type the reference's path names (relative or absolute), else Reference.type;
/// empty when none of them names a resource type.
std::string_view resolved_type(const rapidjson::Value& reference, const rapidjson::Value& resource);

} // namespace caregate::fhir
