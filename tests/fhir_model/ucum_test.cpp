// fhir_model/ucum.hpp: the units a quantity search converts, by the factors of UCUM's prefixes.
#include "fhir_model/ucum.hpp"

#include <doctest/doctest.h>

#include <map>

namespace fhir = caregate::fhir;

TEST_CASE("ucum: units of one kind convert by their prefixes' factors; others do not convert") {
    auto mass = fhir::ucum_commensurable("g");
    REQUIRE(!mass.empty());
    CHECK(mass.front() == std::pair<std::string, double>{"g", 1.0});
    std::map<std::string, double> factor(mass.begin(), mass.end());
    CHECK(factor.at("mg") == doctest::Approx(1e-3)); // 5400 mg * 1e-3 = 5.4 g
    CHECK(factor.at("kg") == doctest::Approx(1e3));
    std::map<std::string, double> glucose;
    for (auto& [code, f] : fhir::ucum_commensurable("mmol/L"))
        glucose[code] = f;
    CHECK(glucose.at("mol/L") == doctest::Approx(1e3));
    CHECK(glucose.count("mg/dL") == 0); // mass and substance concentrations do not convert
    std::map<std::string, double> time;
    for (auto& [code, f] : fhir::ucum_commensurable("h"))
        time[code] = f;
    CHECK(time.at("min") == doctest::Approx(1.0 / 60));
    CHECK(fhir::ucum_commensurable("Cel").empty());     // temperatures need an offset, not a factor
    CHECK(fhir::ucum_commensurable("mm[Hg]").empty());
    CHECK(fhir::ucum_commensurable("/min").empty());
}
