// Running a shell command from a test (curl, openssl, certs/make-dev-certs.sh) and collecting what
// it prints. Asserts nothing, so that a thread other than the test's may call it.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace caregate::testing {

struct command_output {
    int exit_status = -1;
    std::string text; ///< stdout
};

/// Runs `command` with /bin/sh and collects its stdout; exit status -1 when it could not be started
/// or did not exit normally.
inline command_output run(const std::string& command) {
    command_output out;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr)
        return out;
    char chunk[4096];
    while (std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe))
        out.text.append(chunk, n);
    const int status = ::pclose(pipe);
    out.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

} // namespace caregate::testing
