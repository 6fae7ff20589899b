// caregate's log: see log.hpp.
#include "http/log.hpp"

#include <cstdio>
#include <string>

namespace caregate::http {

void log_line(std::string_view text) {
    std::string line;
    line.reserve(text.size() + 11);
    line.append("caregate: ").append(text).push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace caregate::http
