// PATCH (https://hl7.org/fhir/R4/http.html#patch): JSON Patch (RFC 6902) and FHIRPath Patch
// (https://hl7.org/fhir/R4/fhirpatch.html) applied to a resource's JSON; and the reference work of
// transaction bundles (https://hl7.org/fhir/R4/http.html#trules): finding the references a resource
// makes and rewriting them. Pure functions over JSON text; know nothing of HTTP or storage.
#pragma once

#include "fhir_model/error.hpp"

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace caregate::fhir {

/// Applies a JSON Patch document (a JSON array of operations: add, remove, replace, move, copy,
/// test) to `resource` (JSON text) and returns the patched JSON text (compact; numbers exactly as
/// written; members in their order, an added one last). All or nothing: any failing operation (a
/// `test` that does not hold, a path that does not exist, an index out of range) fails the whole patch.
/// `test` compares numbers by value (1, 1.0 and 10E-1 are equal: RFC 6902 section 4.6), as exact
/// decimals, never through a double; objects by members in any order.
/// Errors: malformed (the patch is not JSON, not an array, an operation lacks `op`/`path`/`value`,
/// a path is not a JSON Pointer); invalid (422: a `test` that does not hold, a target that does not
/// exist; too-costly: the result nests deeper than the JSON layer accepts), each issue naming the
/// operation by its index from 0 ("JSON Patch operation 3 (replace /status): ..."), never a value.
result<std::string> apply_json_patch(std::string_view resource, std::string_view patch);

/// Applies a FHIRPath Patch (a Parameters resource of `operation` parameters, each with parts
/// type (add | insert | delete | replace | move), path, name, value / value[x] or a nested part
/// list for complex values, index, source, destination) to `resource` (JSON text). Paths are
/// FHIRPath expressions evaluated by fhir_model's evaluator; the operations' rules are those of
/// the spec's page (e.g. delete of nothing is not an error, replace of nothing is). All or nothing.
/// Values are type-checked against the R4 definitions; a primitive's `_name` (id, extensions) goes
/// with it on delete and replace and stays aligned in lists; a delete that leaves its parent empty
/// removes the parent. insert and move take a path that selects a whole list (or, for insert, none
/// yet); resolve() in a path is refused (the spec allows it only into contained resources).
/// Errors: malformed (not a Parameters resource, unknown operation type, a missing or unexpected
/// part, a path that is not FHIRPath); unsupported (FHIRPath outside fhir_model's subset, resolve());
/// invalid (a path that selects the wrong number of elements, an index out of range, a value of the
/// wrong type), each naming the operation by its index from 0 and its path, never resource content.
result<std::string> apply_fhirpath_patch(std::string_view resource, std::string_view parameters);

/// One reference a resource makes: the text of a Reference.reference anywhere in it (contained
/// resources, extensions, nested backbone elements) and where, as a FHIRPath-like path with array
/// indexes, e.g. "Observation.performer[1].reference" or "Observation.contained[0].subject.reference".
struct found_reference {
    std::string reference;
    std::string path;
};

/// Every Reference.reference of `resource` (JSON text), in document order. Local references
/// ("#id") are included; the caller decides what to check. Which `reference` members count follows
/// the R4 definitions: only those of a Reference (Expression.reference and
/// Immunization.education.reference are uris, not references); where the definitions do not know
/// the place, any object's string `reference`. A primitive's `_name` shows as `name` in the path.
/// An Attachment's `url` counts too where it names a Binary ("Binary/{id}", a server's
/// ".../Binary/{id}", or a transaction's "urn:uuid:..."): a document kept here, which must exist.
/// Errors: malformed (not JSON).
result<std::vector<found_reference>> find_references(std::string_view resource);

/// Replaces references as a transaction's processing rules say: every JSON string value of
/// `resource` equal to a key of `replacements` (a fullUrl such as "urn:uuid:...", or a conditional
/// reference such as "Patient?identifier=...") becomes its value (e.g. "Observation/<new id>"); in
/// narrative (`text.div`, also of contained resources) `href="KEY"` and `src="KEY"` attribute
/// values likewise (compared after decoding &amp; &lt; &gt; &quot; &apos;, written XML-escaped).
/// Everything else, including key order and number text, is kept as it was.
/// Errors: malformed (not JSON).
result<std::string> replace_references(std::string_view resource,
                                       const std::unordered_map<std::string, std::string>& replacements);

} // namespace caregate::fhir
