// Reading the trusted token issuers; see issuers.hpp.
#include "auth/issuers.hpp"

#include "auth/detail/jose.hpp"

#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace caregate::auth {

namespace {

std::string read_file(const std::filesystem::path& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::invalid_argument("cannot read " + what + " " + path.string());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

std::vector<trusted_issuer> load_issuers(const std::string& config_path) {
    const std::string where = "the issuers file " + config_path;
    const std::string text = read_file(config_path, "the issuers file");
    rapidjson::Document doc;
    doc.Parse(text.c_str(), text.size());
    if (doc.HasParseError() || !doc.IsArray())
        throw std::invalid_argument(where + " is not a JSON array of {issuer, public_key_pem_file | jwks_file}");
    if (doc.Empty())
        throw std::invalid_argument(where + " names no issuer, so no token could be accepted");
    const std::filesystem::path folder = std::filesystem::path(config_path).parent_path();
    auto resolve = [&folder](const std::string& file) {
        const std::filesystem::path path(file);
        return path.is_absolute() ? path : folder / path;
    };

    std::vector<trusted_issuer> issuers;
    std::set<std::string> names;
    std::size_t index = 0;
    for (const auto& entry : doc.GetArray()) {
        const std::string at = where + ", entry " + std::to_string(index++);
        if (!entry.IsObject())
            throw std::invalid_argument(at + " is not a JSON object");
        for (const auto& m : entry.GetObject()) {
            const std::string_view key(m.name.GetString(), m.name.GetStringLength());
            if (key != "issuer" && key != "public_key_pem_file" && key != "jwks_file" && key != "comment")
                throw std::invalid_argument(at + " has an unknown key '" + std::string(key) + "'");
        }
        trusted_issuer issuer;
        if (!entry.HasMember("issuer") || !entry["issuer"].IsString() || entry["issuer"].GetStringLength() == 0)
            throw std::invalid_argument(at + " has no 'issuer' (the iss its tokens carry)");
        issuer.issuer = entry["issuer"].GetString();
        if (!names.insert(issuer.issuer).second)
            throw std::invalid_argument(at + ": the issuer " + issuer.issuer + " is listed twice");
        const bool has_pem = entry.HasMember("public_key_pem_file");
        const bool has_jwks = entry.HasMember("jwks_file");
        if (has_pem == has_jwks)
            throw std::invalid_argument(at + " needs exactly one of 'public_key_pem_file' and 'jwks_file'");
        try {
            if (has_jwks) {
                const auto& file = entry["jwks_file"];
                if (!file.IsString())
                    throw std::invalid_argument("'jwks_file' must be a file name");
                const auto path = resolve(file.GetString());
                issuer.jwks_json = read_file(path, "the JWKS file");
                try {
                    detail::keys_from_jwks(issuer.jwks_json);
                } catch (const std::invalid_argument& e) {
                    throw std::invalid_argument(path.string() + ": " + e.what());
                }
            } else {
                const auto& files = entry["public_key_pem_file"];
                std::vector<std::string> names_of_files;
                if (files.IsString())
                    names_of_files.emplace_back(files.GetString());
                else if (files.IsArray())
                    for (const auto& f : files.GetArray()) {
                        if (!f.IsString())
                            throw std::invalid_argument("'public_key_pem_file' must be a file name or an array of them");
                        names_of_files.emplace_back(f.GetString());
                    }
                if (names_of_files.empty())
                    throw std::invalid_argument("'public_key_pem_file' must be a file name or an array of them");
                for (const auto& name : names_of_files) {
                    const auto path = resolve(name);
                    issuer.pem_public_keys.push_back(read_file(path, "the public key file"));
                    try {
                        detail::key_from_pem(issuer.pem_public_keys.back());
                    } catch (const std::invalid_argument& e) {
                        throw std::invalid_argument(path.string() + ": " + e.what());
                    }
                }
            }
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(at + " (issuer " + issuer.issuer + "): " + e.what());
        }
        issuers.push_back(std::move(issuer));
    }
    return issuers;
}

trusted_issuer dev_issuer(const std::string& certs_dir) {
    const std::filesystem::path path = std::filesystem::path(certs_dir) / "token-signing.pub";
    if (!std::filesystem::exists(path))
        throw std::invalid_argument(path.string() +
                                    " is missing: run certs/make-dev-certs.sh, or give --certs DIR or --issuers FILE");
    trusted_issuer issuer;
    issuer.issuer = dev_issuer_name;
    issuer.pem_public_keys.push_back(read_file(path, "the development token key"));
    return issuer;
}

} // namespace caregate::auth
