// caregate's log: one line at a time to stderr, whichever layer writes it (the network layer's
// failures, the REST layer's answers of 5xx). A line never holds a body, a header's value, a path or
// a query (they can name a citizen), nor any other patient data: what it may hold is a request id, an
// interaction's name, a status, and words of caregate's own.
#pragma once

#include <string_view>

namespace caregate::http {

/// Writes "caregate: TEXT" and a newline to stderr in one write, so that lines from several
/// threads do not interleave.
void log_line(std::string_view text);

} // namespace caregate::http
