// Serialises an error as an OperationOutcome resource.
#include "fhir_model/error.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::fhir {

std::string operation_outcome_json(const error& failure) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> out(buffer);
    out.StartObject();
    out.Key("resourceType");
    out.String("OperationOutcome");
    out.Key("issue");
    out.StartArray();
    auto write_issue = [&](const issue& item) {
        out.StartObject();
        out.Key("severity");
        out.String(item.severity.empty() ? "error" : item.severity);
        out.Key("code");
        out.String(item.code.empty() ? "processing" : item.code);
        if (!item.diagnostics.empty()) {
            out.Key("diagnostics");
            out.String(item.diagnostics);
        }
        if (!item.expression.empty()) {
            out.Key("expression");
            out.StartArray();
            out.String(item.expression);
            out.EndArray();
        }
        out.EndObject();
    };
    if (failure.issues.empty())
        write_issue(issue{"error", "exception", "an error without a description", {}});
    for (const auto& item : failure.issues)
        write_issue(item);
    out.EndArray();
    out.EndObject();
    return {buffer.GetString(), buffer.GetSize()};
}

} // namespace caregate::fhir
