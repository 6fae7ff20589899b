// The shipped de-identification profile (gateway/export/default-deidentification.json), compiled in.
#pragma once

namespace caregate::exports {

extern const char* const default_deidentification_json;

} // namespace caregate::exports
