// Fuzzes fhir::prepare_resource, the parse (RapidJSON, the number-keeping JSON layer) and validation
// of every resource body a client sends. Input: the expected resource type on the first line, then the
// body (a corpus file is readable: "Patient\n{...}"). Beyond not crashing, checks that canonical
// content is a fixed point: preparing it again succeeds and gives the same content, as storage
// relies on (it stores the content, and a PATCH or a re-read prepares it again).
#include "fhir_model/resource.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fhir = caregate::fhir;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view type = "Patient", body = input;
    if (auto newline = input.find('\n'); newline != std::string_view::npos && newline < 64) {
        type = input.substr(0, newline);
        body = input.substr(newline + 1);
    }
    auto prepared = fhir::prepare_resource(body, type);
    if (!prepared.ok())
        return 0;
    auto again = fhir::prepare_resource(prepared->content, type);
    if (!again.ok() || again->content != prepared->content) {
        std::fprintf(stderr, "canonical content is not a fixed point of prepare_resource:\n%s\n%s\n",
                     prepared->content.c_str(), again.ok() ? again->content.c_str() : "(refused)");
        std::abort();
    }
    fhir::stamp_resource(prepared->content, "fuzz-id", 1, "2026-11-23T19:02:03.123456Z");
    return 0;
}
