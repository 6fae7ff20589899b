// Parsing of the option table; see options.hpp.
#include "cli/options.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <rapidjson/document.h>

namespace caregate::cli {

namespace {

const option* find_option(const std::vector<option>& table, std::string_view name) {
    for (const auto& o : table)
        if (o.name == name)
            return &o;
    return nullptr;
}

void apply_config_file(const std::vector<option>& table, const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw std::invalid_argument("cannot read the config file " + path);
    std::stringstream text;
    text << in.rdbuf();
    rapidjson::Document doc;
    doc.Parse(text.str().c_str());
    if (doc.HasParseError() || !doc.IsObject())
        throw std::invalid_argument("the config file " + path + " is not a JSON object");
    for (auto& member : doc.GetObject()) {
        const std::string key = member.name.GetString();
        const option* o = find_option(table, key);
        if (!o || key == "config")
            throw std::invalid_argument("the config file " + path + " has an unknown key '" + key + "'");
        const auto& v = member.value;
        if (v.IsBool())
            o->apply(v.GetBool() ? "true" : "false");
        else if (v.IsString())
            o->apply(v.GetString());
        else if (v.IsInt64())
            o->apply(std::to_string(v.GetInt64()));
        else
            throw std::invalid_argument("the config file key '" + key + "' must be a string, number or boolean");
    }
}

} // namespace

void parse_options(const std::vector<option>& table, const std::vector<std::string>& args) {
    for (std::size_t i = 0; i < args.size(); ++i)
        if (args[i] == "--config") {
            if (i + 1 >= args.size())
                throw std::invalid_argument("--config needs a FILE");
            apply_config_file(table, args[i + 1]);
        }
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string arg = args[i];
        if (!arg.starts_with("--"))
            throw std::invalid_argument("unexpected argument '" + arg + "'");
        std::string name = arg.substr(2);
        std::string value;
        bool has_inline_value = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_inline_value = true;
        }
        if (name == "config") {
            if (!has_inline_value)
                ++i;
            continue;
        }
        const option* o = find_option(table, name);
        if (!o)
            throw std::invalid_argument("unknown option --" + name);
        if (o->value_name.empty()) {
            o->apply(has_inline_value ? value : "true");
            continue;
        }
        if (!has_inline_value) {
            if (i + 1 >= args.size())
                throw std::invalid_argument("--" + name + " needs a " + o->value_name);
            value = args[++i];
        }
        o->apply(value);
    }
}

std::string describe_options(const std::vector<option>& table) {
    std::string text;
    for (const auto& o : table) {
        std::string left = "  --" + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
        if (left.size() < 30)
            left.resize(30, ' ');
        else
            left += "\n" + std::string(30, ' ');
        text += left + o.help + "\n";
    }
    return text;
}

} // namespace caregate::cli
