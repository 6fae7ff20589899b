// The shipped default policy and organisations (gateway/access/*.json), compiled into the binary.
#pragma once

namespace caregate::access {

extern const char* const default_policy_json;
extern const char* const default_organisations_json;

} // namespace caregate::access
