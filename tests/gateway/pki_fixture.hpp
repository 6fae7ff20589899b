// A test fixture for client certificates and their revocation: a development PKI of a test's own
// (revoking changes it), made by the real certs/make-dev-certs.sh, and the command-line clients
// (curl, openssl s_client) a provider system would connect with. Needs `curl` and `openssl`.
#pragma once

#include "../support/command.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

namespace caregate::testing {

inline void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    REQUIRE(out.good());
}

inline std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct dev_pki {
    dev_pki() {
        std::random_device random;
        dir = std::filesystem::temp_directory_path() /
              ("caregate-pki-" + std::to_string(random()) + "-" + std::to_string(random()));
        make("");
    }
    ~dev_pki() {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
    dev_pki(const dev_pki&) = delete;
    dev_pki& operator=(const dev_pki&) = delete;

    /// Runs certs/make-dev-certs.sh on this PKI with more arguments (e.g. "--revoke RX1").
    void make(const std::string& arguments) const {
        const std::string command = std::string("bash '") + CAREGATE_SOURCE_DIR + "/certs/make-dev-certs.sh' --out '" +
                                    dir.string() + "' " + arguments + " > /dev/null";
        REQUIRE(std::system(command.c_str()) == 0);
    }
    std::string file(const std::string& name) const { return (dir / name).string(); }

    /// curl with the client certificate of `ods`, trusting the dev CA; `options` come before the URL.
    /// Its output ends with " [status]".
    command_output curl_as(const std::string& ods, const std::string& url, const std::string& options = "") const {
        return run("curl -sS --max-time 10 --cacert '" + file("ca.crt") + "' --cert '" +
                           file("client-" + ods + ".crt") + "' --key '" + file("client-" + ods + ".key") +
                           "' -w ' [%{http_code}]' " + options + " '" + url + "' 2>/dev/null");
    }

    std::filesystem::path dir;
};

/// Refused at the handshake: curl failed and no HTTP status came back.
inline bool refused_at_handshake(const command_output& out) {
    return out.exit_status != 0 && contains(out.text, "[000]");
}

} // namespace caregate::testing
