// prepare_resource and the supported-type queries of resource.hpp: parse, validate (validate.cpp),
// apply the NHS-number rules, find the access facts (access_facts.cpp), and write canonical content.
// Stamping is in stamp.cpp.
#include "fhir_model/resource.hpp"

#include "access_facts.hpp"
#include "definitions.hpp"
#include "fhir_model/binary.hpp"
#include "fhir_model/nhs_number.hpp"
#include "canonical.hpp"
#include "contribution_marks.hpp"
#include "json.hpp"
#include "outside_record.hpp"
#include "validate.hpp"

#include <algorithm>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::fhir {

namespace {

using detail::view;

/// Types in the Patient compartment that may exist without naming a citizen: the Patient itself,
/// records about devices, provenance and audit that need not be about one person, a Group (a
/// cohort described by its characteristics lists no members) and a Schedule (a clinic's, a room's or a
/// practitioner's diary, whose actors are no citizen).
constexpr std::string_view citizen_optional_types[] = {"Patient", "Device", "Provenance", "AuditEvent", "Group",
                                                       "Schedule"};

/// The NHS number of a Patient: exactly one Patient.identifier with the NHS-number system and a valid value.
result<std::string> patient_nhs_number(const rapidjson::Value& patient) {
    auto refuse = [](std::string diagnostics) {
        return error::make(category::invalid, "invalid", std::move(diagnostics), "Patient.identifier");
    };
    auto identifiers = patient.FindMember("identifier");
    std::optional<std::string> found;
    if (identifiers != patient.MemberEnd() && identifiers->value.IsArray()) {
        for (auto& identifier : identifiers->value.GetArray()) {
            if (!identifier.IsObject())
                continue;
            auto system = identifier.FindMember("system");
            if (system == identifier.MemberEnd() || !detail::is_string(system->value) ||
                view(system->value) != nhs_number_system)
                continue;
            if (found)
                return refuse("a Patient has exactly one identifier with the NHS number system");
            auto value = identifier.FindMember("value");
            if (value == identifier.MemberEnd() || !detail::is_string(value->value) ||
                !is_valid_nhs_number(view(value->value)))
                return refuse("the Patient's NHS number is not a valid NHS number");
            found = std::string(view(value->value));
        }
    }
    if (!found)
        return refuse("a Patient needs an identifier with system " + std::string(nhs_number_system) +
                      " carrying the NHS number");
    return std::move(*found);
}

/// Puts `"reference": "Patient/{nhs}"` first in a Reference object that named its citizen by identifier.
void complete_logical_reference(rapidjson::Value& reference, const std::string& nhs_number,
                                rapidjson::Document::AllocatorType& allocator) {
    rapidjson::Value completed(rapidjson::kObjectType);
    const std::string target = "Patient/" + nhs_number;
    completed.AddMember("reference", rapidjson::Value(target.c_str(), allocator), allocator);
    for (auto& member : reference.GetObject())
        completed.AddMember(member.name, member.value, allocator); // moves
    reference = std::move(completed);
}

} // namespace

std::span<const std::string_view> supported_types() noexcept { return detail::r4().supported_views; }

bool is_supported_type(std::string_view type) noexcept { return detail::r4().is_supported(type); }

bool in_patient_compartment(std::string_view type) noexcept {
    return detail::r4().is_supported(type) && detail::r4().in_patient_compartment(type);
}

bool requires_citizen(std::string_view type) noexcept {
    return detail::r4().is_supported(type) && detail::r4().in_patient_compartment(type) &&
           std::find(std::begin(citizen_optional_types), std::end(citizen_optional_types), type) ==
               std::end(citizen_optional_types);
}

bool points_at_items(std::string_view type) noexcept { return type == "Provenance" || type == "Binary"; }

bool owner_only_when_pointing_at_nothing(std::string_view type) noexcept { return type == "Binary"; }

namespace {

/// prepare_resource, with the provenance marks set when `marks` is given.
result<prepared_resource> prepare(std::string_view body, std::string_view expected_type, const provenance_marks* marks) {
    const detail::type_def* type = detail::r4().is_supported(expected_type) ? detail::r4().type(expected_type) : nullptr;
    if (type == nullptr)
        return error::make(category::not_found, "not-supported", "this server does not support the resource type");

    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(body, doc); !parsed)
        return std::move(parsed).failure();
    if (!doc.IsObject())
        return error::make(category::invalid, "invalid", "a resource is a JSON object");
    auto resource_type = doc.FindMember("resourceType");
    if (resource_type == doc.MemberEnd() || !detail::is_string(resource_type->value))
        return error::make(category::invalid, "invalid", "the resource has no resourceType", "resourceType");
    if (view(resource_type->value) != expected_type)
        return error::make(category::invalid, "invalid",
                           "the resourceType does not match the type of the request (" + std::string(expected_type) + ")",
                           "resourceType");
    if (marks != nullptr)
        if (auto marked = detail::set_provenance_marks(doc, *marks); !marked)
            return std::move(marked).failure();

    detail::validation checked;
    detail::validate_resource(doc, *type, checked);
    if (!checked.issues.empty())
        return error{category::invalid, std::move(checked.issues)};
    if (auto citizens = detail::names_of_citizens_outside_record(doc, expected_type); !citizens.empty())
        return error{category::invalid, std::move(citizens)};

    prepared_resource out;
    out.type = std::string(expected_type);
    if (auto id = doc.FindMember("id"); id != doc.MemberEnd())
        out.id = std::string(view(id->value));
    if (expected_type == "Patient") {
        auto nhs = patient_nhs_number(doc);
        if (!nhs)
            return std::move(nhs).failure();
        out.nhs_number = std::move(nhs.value());
    } else if (requires_citizen(expected_type) && checked.citizens.empty()) {
        const auto& paths = detail::r4().compartment.find(expected_type)->second;
        std::string names;
        for (const auto& path : paths)
            names += (names.empty() ? "" : ", ") + path;
        return error::make(category::invalid, "required",
                           "this type must reference its citizen as Patient/{NHS number}, or by identifier with the "
                           "NHS number system, at one of: " + names,
                           paths.front());
    }
    // Before the logical references are completed, which moves their members.
    auto access = detail::find_access_facts(doc, *type);
    if (!access)
        return std::move(access).failure();
    out.access = std::move(access.value());
    for (auto& logical : checked.logical_references)
        complete_logical_reference(*logical.reference, logical.nhs_number, doc.GetAllocator());
    out.citizens = std::move(checked.citizens);
    if (expected_type == "Binary")
        if (auto data = doc.FindMember("data"); data != doc.MemberEnd()) {
            // Validated as base64Binary above: whitespace aside, canonical base64.
            out.binary_bytes = decode_base64(view(data->value));
            doc.RemoveMember(data);
        }
    out.content = detail::write_canonical(doc, nullptr);
    return out;
}

} // namespace

result<prepared_resource> prepare_resource(std::string_view body, std::string_view expected_type) {
    return prepare(body, expected_type, nullptr);
}

result<prepared_resource> prepare_resource(std::string_view body, std::string_view expected_type,
                                           const provenance_marks& marks) {
    return prepare(body, expected_type, &marks);
}

} // namespace caregate::fhir
