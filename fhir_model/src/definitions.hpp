// The R4 definitions the validator walks (private): element tables of the supported resource types and
// every data type they reach, backbone elements as types named by path ("Observation.component"),
// enumerable required bindings and the Patient-compartment paths. Built once, on first use, from the
// JSON that fhir_model/generator/generate.py embeds in generated/definitions.cpp; read-only afterwards.
// Not the validation rules themselves (validate.cpp) and not search parameters.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace caregate::fhir::detail {

/// Hash for string-keyed maps looked up by string_view without allocating.
struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};
template <class T>
using string_map = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;
using string_set = std::unordered_set<std::string, string_hash, std::equal_to<>>;

/// The R4 primitive types, each with its own lexical rule (primitives.hpp).
enum class primitive_kind : std::uint8_t {
    none, base64Binary, boolean, canonical, code, date, dateTime, decimal, id, instant, integer, markdown,
    oid, positiveInt, string, time, unsignedInt, uri, url, uuid, xhtml,
};

enum class type_kind : std::uint8_t {
    primitive,
    complex,      ///< a data type: HumanName, Reference, Extension, ...
    backbone,     ///< an element with children inside a resource or data type, named by its path
    resource,
    any_resource, ///< "Resource": contained resources, typed by their resourceType
    element,      ///< the object beside a primitive (`_birthDate`): id and extension only
};

/// A required binding whose codes the package enumerates.
struct value_set_def {
    std::string url;
    string_map<string_set> codes_by_system;
    string_set all_codes;

    bool has_system(std::string_view system) const { return codes_by_system.find(system) != codes_by_system.end(); }
    bool contains(std::string_view system, std::string_view code) const {
        auto found = codes_by_system.find(system);
        return found != codes_by_system.end() && found->second.find(code) != found->second.end();
    }
    bool contains_code(std::string_view code) const { return all_codes.find(code) != all_codes.end(); }
};

struct type_def;

inline constexpr std::uint32_t unbounded = std::numeric_limits<std::uint32_t>::max();

struct element_def {
    std::string name;                       ///< as in the definition: "value[x]", "status"
    std::uint32_t index = 0;                ///< position in its type's element list
    std::uint32_t min = 0;
    std::uint32_t max = 1;                  ///< `unbounded` for "*"
    bool choice = false;                    ///< name ends in [x]: JSON names carry the type
    bool compartment = false;               ///< a Patient-compartment path of its resource
    bool summary = false;                   ///< isSummary in R4: kept by `_summary=true` (summary.cpp)
    std::vector<const type_def*> types;
    string_set targets;                     ///< Reference target types; empty or "Resource" for any
    const value_set_def* binding = nullptr; ///< a required, enumerable binding

    bool repeats() const noexcept { return max != 1; }
};

/// What a JSON member name in an object of some type stands for.
struct member_def {
    const element_def* element = nullptr;
    const type_def* type = nullptr; ///< the type chosen (for a choice, the one the name carries)
    bool primitive_part = false;    ///< the `_name` object of a primitive (id, extension)
};

struct type_def {
    std::string name;
    type_kind kind = type_kind::complex;
    primitive_kind primitive = primitive_kind::none;
    std::vector<element_def> elements;
    string_map<member_def> members;

    const member_def* member(std::string_view json_name) const {
        auto found = members.find(json_name);
        return found == members.end() ? nullptr : &found->second;
    }
};

struct definitions {
    string_map<type_def> types; // node-based: pointers to types and their elements stay valid
    string_set resource_types;  ///< every R4 resource type name, supported or not
    std::vector<std::string> supported; ///< sorted
    std::vector<std::string_view> supported_views;
    std::vector<std::string> containable; ///< sorted
    string_map<std::vector<std::string>> compartment; ///< type -> Patient-compartment paths
    std::vector<value_set_def> value_sets;

    const type_def* type(std::string_view name) const {
        auto found = types.find(name);
        return found == types.end() ? nullptr : &found->second;
    }
    bool is_supported(std::string_view type) const;
    /// Supported, or one of the generator's CONTAINED_ONLY_TYPES: may appear in `contained`.
    bool is_containable(std::string_view type) const;
    bool in_patient_compartment(std::string_view type) const { return compartment.find(type) != compartment.end(); }
};

/// The definitions, parsed on first use (thread-safe static initialisation).
const definitions& r4();

} // namespace caregate::fhir::detail
