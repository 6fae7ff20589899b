// Fuzzes the FHIRPath subset (fhir::fhirpath_expression): parsing an expression, and evaluating it.
// FHIRPath Patch (fhirpath_patch.cpp) parses paths that a client sends. Input: the expression on the
// first line; the rest, if it is a JSON object with a resourceType, is the resource to evaluate on
// (parsed by the fhir_model JSON layer, numbers marked); otherwise a fixed Observation is used.
#include "fhir_model/fhirpath.hpp"

#include "../../fhir_model/src/json.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fhir = caregate::fhir;

namespace {

constexpr std::string_view fixed_resource = R"({
  "resourceType": "Observation", "id": "bp", "status": "final",
  "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
  "extension": [{"url": "http://example.org/ext", "valueString": "x"}],
  "contained": [{"resourceType": "Patient", "id": "p1", "birthDate": "1974-12-25", "_birthDate": {"extension": [{"url": "http://example.org/time", "valueDateTime": "1974-12-25T14:35:45-05:00"}]}}],
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "Blood pressure"},
  "subject": {"reference": "Patient/9000000009", "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}},
  "performer": [{"reference": "#p1"}, {"reference": "http://example.org/fhir/Practitioner/1/_history/2"}],
  "effectiveDateTime": "2026-11-23T09:30:10+01:00",
  "component": [
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
     "valueQuantity": {"value": 107, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
     "valueQuantity": {"value": 60.50, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]
})";

const rapidjson::Document& fixed() {
    static const rapidjson::Document document = [] {
        rapidjson::Document out;
        if (!caregate::fhir::detail::parse_json(fixed_resource, out).ok())
            __builtin_trap();
        return out;
    }();
    return document;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto newline = input.find('\n');
    std::string_view text = input.substr(0, newline);
    std::string_view rest = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

    std::string error;
    auto expression = fhir::fhirpath_expression::parse(text, error);
    if (!expression)
        return 0;

    rapidjson::Document given;
    const rapidjson::Value* resource = &fixed();
    if (!rest.empty() && caregate::fhir::detail::parse_json(rest, given).ok() && given.IsObject() &&
        caregate::fhir::detail::string_member(given, "resourceType"))
        resource = &given;

    auto result = expression->evaluate(*resource);
    // Again with each item as the focus, as a composite's components are evaluated.
    for (const auto& node : result)
        expression->evaluate(node, *resource);
    return 0;
}
