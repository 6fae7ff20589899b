// The UCUM units converted by a factor (ucum.hpp): a table of kinds, each unit with its size in the
// kind's base unit, from the UCUM specification's prefixes (k 1e3, d 1e-1, c 1e-2, m 1e-3, u 1e-6,
// n 1e-9) and its definitions of min, h and d.
#include "fhir_model/ucum.hpp"

#include <array>

namespace caregate::fhir {
namespace {

struct unit {
    std::string_view code;
    double size; ///< in the kind's base unit
};

struct kind {
    std::vector<unit> units;
};

const std::vector<kind>& kinds() {
    static const std::vector<kind> table = {
        {{{"kg", 1e3}, {"g", 1}, {"mg", 1e-3}, {"ug", 1e-6}, {"ng", 1e-9}}},                          // mass
        {{{"L", 1}, {"l", 1}, {"dL", 1e-1}, {"dl", 1e-1}, {"mL", 1e-3}, {"ml", 1e-3}, {"uL", 1e-6}}}, // volume
        {{{"km", 1e3}, {"m", 1}, {"cm", 1e-2}, {"mm", 1e-3}, {"um", 1e-6}}},                         // length
        {{{"d", 86400}, {"h", 3600}, {"min", 60}, {"s", 1}, {"ms", 1e-3}}},                          // time
        {{{"mol", 1}, {"mmol", 1e-3}, {"umol", 1e-6}, {"nmol", 1e-9}}},                              // amount
        {{{"g/L", 1}, {"g/dL", 10}, {"mg/mL", 1}, {"mg/dL", 1e-2}, {"mg/L", 1e-3}, {"ug/mL", 1e-3},
          {"ug/L", 1e-6}, {"ng/mL", 1e-6}}},                                                          // mass concentration
        {{{"mol/L", 1}, {"mmol/L", 1e-3}, {"umol/L", 1e-6}, {"nmol/L", 1e-9}}},                      // substance concentration
        {{{"kPa", 1e3}, {"Pa", 1}}},                                                                  // pressure (not mm[Hg])
    };
    return table;
}

} // namespace

std::vector<std::pair<std::string, double>> ucum_commensurable(std::string_view code) {
    for (const kind& k : kinds())
        for (const unit& wanted : k.units)
            if (wanted.code == code) {
                std::vector<std::pair<std::string, double>> out{{std::string(code), 1.0}};
                for (const unit& other : k.units)
                    if (other.code != code)
                        out.emplace_back(std::string(other.code), other.size / wanted.size);
                return out;
            }
    return {};
}

} // namespace caregate::fhir
