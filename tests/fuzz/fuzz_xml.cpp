// Fuzzes fhir::xml_to_json, which reads every FHIR XML body a client sends, and checks that what it
// makes of one is JSON that prepare_resource takes or refuses as a value, and that a resource it
// takes converts back to XML (never a crash, never an exception).
#include "fhir_model/resource.hpp"
#include "fhir_model/xml.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fhir = caregate::fhir;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    auto json = fhir::xml_to_json(body);
    if (!json.ok())
        return 0;
    for (std::string_view type : {"Patient", "Observation", "Bundle"}) {
        auto prepared = fhir::prepare_resource(*json, type);
        if (prepared.ok())
            (void)fhir::json_to_xml(prepared->content);
    }
    return 0;
}
