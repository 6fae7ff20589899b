// Tests for fhir_model/src/fhirpath.cpp against the official FHIRPath test cases for FHIR R4 (HL7's
// tests-fhir-r4.xml, as fhirpath@3.0.0 ships it) that fall inside the evaluator's subset: the cases
// tests/data/fhirpath-r4-cases.json holds, selected by fhir_model/generator/fhirpath_cases.py (whose
// header states the rule), each run on the JSON twin of its input from tests/data/r4-examples/.
#include "fhir_model/fhirpath.hpp"

#include "../../fhir_model/src/json.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace fhir = caregate::fhir;
namespace detail = caregate::fhir::detail;

namespace {

const std::filesystem::path data_dir = std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data";

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, path.string());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// An example parsed as the server parses what it stores (numbers kept as marked text), once each.
const rapidjson::Document& example(const std::string& name) {
    static std::map<std::string, std::unique_ptr<rapidjson::Document>> cache;
    auto& doc = cache[name];
    if (!doc) {
        doc = std::make_unique<rapidjson::Document>();
        auto parsed = detail::parse_json(read_file(data_dir / "r4-examples" / name), *doc);
        REQUIRE_MESSAGE(parsed, name);
    }
    return *doc;
}

/// One output as the test cases write it: a type (the FHIR type the evaluator found, or a System
/// type written as the cases write it, "boolean", "integer", "string"; empty for a JSON value the
/// definitions do not type, and then only the text is compared) and the value's text, FHIR JSON
/// primitives normalised to FHIRPath's: true/false, a number's exact text, a string or date as written.
struct output {
    std::string type;
    std::string text;
};

output output_of(const fhir::fhirpath_node& node) {
    if (node.boolean)
        return {"boolean", *node.boolean ? "true" : "false"};
    if (node.value == nullptr) // a literal: System.String or System.Integer
        return {node.type == "Integer" ? "integer" : "string", std::string(node.literal)};
    const rapidjson::Value& value = *node.value;
    std::string type(node.type);
    if (value.IsBool())
        return {type.empty() ? "boolean" : type, value.GetBool() ? "true" : "false"};
    if (auto number = detail::number_text(value))
        return {type, std::string(*number)};
    if (detail::is_string(value))
        return {type, std::string(detail::view(value))};
    return {type.empty() ? "object" : type, "(a complex value)"};
}

/// A date, dateTime or time output may be written with FHIRPath's literal `@`; the JSON value has none.
std::string expected_text(const std::string& type, const std::string& text) {
    bool temporal = type == "date" || type == "dateTime" || type == "instant" || type == "time";
    return temporal && text.starts_with("@") ? text.substr(1) : text;
}

std::string describe(const std::vector<output>& outputs) {
    std::string out = "[";
    for (auto& o : outputs)
        out += (out.size() > 1 ? ", " : "") + (o.type.empty() ? "?" : o.type) + " " + o.text;
    return out + "]";
}

} // namespace

TEST_CASE("the official FHIRPath R4 test cases inside the subset give the expected outputs") {
    rapidjson::Document cases;
    cases.Parse(read_file(data_dir / "fhirpath-r4-cases.json").c_str());
    REQUIRE_FALSE(cases.HasParseError());
    const auto& list = cases["cases"];
    REQUIRE(list.IsArray());
    CHECK(list.Size() == cases["selected"].GetUint());
    CHECK(list.Size() > 0);

    for (const auto& c : list.GetArray()) {
        std::string name = std::string(c["group"].GetString()) + "/" + c["name"].GetString();
        std::string expression = c["expression"].GetString();
        std::string input = c["input"].GetString();
        CAPTURE(name);
        CAPTURE(expression);
        CAPTURE(input);

        std::string error;
        auto parsed = fhir::fhirpath_expression::parse(expression, error);
        if (c["error"].GetBool()) {
            // The case expects an error: parsing or evaluating must fail.
            bool failed = !parsed.has_value();
            if (!failed) {
                try {
                    parsed->evaluate(example(input));
                } catch (const std::exception&) {
                    failed = true;
                }
            }
            CHECK_MESSAGE(failed, "expected an error");
            continue;
        }
        CHECK_MESSAGE(parsed.has_value(), error);
        if (!parsed)
            continue;

        std::vector<output> expected, actual;
        for (const auto& o : c["outputs"].GetArray()) {
            std::string type = o[0].GetString();
            expected.push_back({type, expected_text(type, o[1].GetString())});
        }
        for (const auto& node : parsed->evaluate(example(input)))
            actual.push_back(output_of(node));

        bool same = expected.size() == actual.size();
        for (std::size_t i = 0; same && i < expected.size(); ++i)
            same = actual[i].text == expected[i].text && (actual[i].type.empty() || actual[i].type == expected[i].type);
        CHECK_MESSAGE(same, "expected " << describe(expected) << ", got " << describe(actual));
    }
}
