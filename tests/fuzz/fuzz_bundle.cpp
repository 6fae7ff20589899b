// Fuzzes fhir::read_bundle_request, which reads every transaction or batch Bundle a client posts.
// Checks too that each entry's resource, kept as JSON text for the gateway to run the entry with, is
// a resource body prepare_resource takes or refuses as a value (never a crash).
#include "fhir_model/bundle.hpp"
#include "fhir_model/resource.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fhir = caregate::fhir;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    auto bundle = fhir::read_bundle_request(body, 100);
    if (!bundle.ok())
        return 0;
    for (const auto& entry : bundle->entries) {
        fhir::entry_path(entry.url.size());
        if (entry.resource) {
            auto type_at = entry.url.find_first_of("/?");
            fhir::prepare_resource(*entry.resource, std::string_view(entry.url).substr(0, type_at));
        }
    }
    return 0;
}
