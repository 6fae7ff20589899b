// UCUM units that differ only by a scale factor (a metric prefix, or minutes and hours), so that a
// quantity search in one unit finds values written in another: value-quantity=5.4|http://unitsofmeasure.org|g
// also finds 5400 mg. Only units that convert by a factor: not temperatures, not arbitrary units.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace caregate::fhir {

inline constexpr std::string_view ucum_system = "http://unitsofmeasure.org";

/// The UCUM codes of the same kind as `code`, each with the factor that turns a value in that code
/// into a value in `code` (`code` itself is first, with factor 1). Empty when `code` is not one of
/// the units this server converts.
std::vector<std::pair<std::string, double>> ucum_commensurable(std::string_view code);

} // namespace caregate::fhir
