// Tests for fhir_model/src/search_query.cpp: parse_search_query against the R4 search rules
// (https://hl7.org/fhir/R4/search.html): modifiers, prefixes and value forms of each parameter type,
// escapes, chains and _has, the result parameters, errors naming the parameter, lenient handling,
// and a value of the right form for every supported parameter of every supported type.
#include "fhir_model/search_query.hpp"

#include "fhir_model/resource.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace fhir = caregate::fhir;

namespace {

using parameters = std::vector<std::pair<std::string, std::string>>;
using strings = std::vector<std::string>;

fhir::result<fhir::search_query> parse(const std::string& type, const parameters& given,
                                       const fhir::search_query_options& options = {}) {
    return fhir::parse_search_query({type}, given, options);
}

/// The one clause of `type?name=value`; fails the test if it does not parse.
fhir::search_clause clause_of(const std::string& type, const std::string& name, const std::string& value) {
    auto query = parse(type, {{name, value}});
    INFO(name, "=", value);
    REQUIRE(query.ok());
    REQUIRE(query->clauses.size() == 1);
    return query->clauses.front();
}

/// The one argument of `type?name=value`.
fhir::search_argument argument_of(const std::string& type, const std::string& name, const std::string& value) {
    auto clause = clause_of(type, name, value);
    REQUIRE(clause.any_of.size() == 1);
    return clause.any_of.front();
}

/// The error of `type?name=value`; fails the test if it parses.
fhir::error failure_of(const std::string& type, const std::string& name, const std::string& value) {
    auto query = parse(type, {{name, value}});
    INFO(name, "=", value);
    REQUIRE_FALSE(query.ok());
    REQUIRE(query.failure().issues.size() == 1);
    return query.failure();
}

/// Checks the error's category and that it names the parameter, as diagnostics and as expression.
void check_error(const std::string& type, const std::string& name, const std::string& value, fhir::category kind) {
    auto failure = failure_of(type, name, value);
    INFO(name, "=", value, ": ", failure.issues[0].diagnostics);
    CHECK(failure.kind == kind);
    CHECK(failure.issues[0].expression == name);
    CHECK(failure.issues[0].diagnostics.find(name) != std::string::npos);
}

void check_unsupported(const std::string& type, const std::string& name, const std::string& value) {
    check_error(type, name, value, fhir::category::unsupported);
}
void check_malformed(const std::string& type, const std::string& name, const std::string& value) {
    check_error(type, name, value, fhir::category::malformed);
}

constexpr std::int64_t micros_per_day = 86400LL * 1000000;

} // namespace

TEST_CASE("search_query: string values and modifiers") {
    auto plain = clause_of("Patient", "name", "Smi");
    CHECK(plain.modifier == fhir::search_modifier::none);
    CHECK(plain.type == "Patient");
    CHECK(plain.parameter->code == "name");
    CHECK(plain.path.empty());
    CHECK(plain.any_of[0].text == "Smi");
    CHECK(clause_of("Patient", "name:exact", "Smith").modifier == fhir::search_modifier::exact);
    CHECK(clause_of("Patient", "name:contains", "mit").modifier == fhir::search_modifier::contains);
    // A string value that looks like a prefix is taken as it is.
    CHECK(argument_of("Patient", "family", "gel").text == "gel");
    CHECK(argument_of("Patient", "family", "gel").prefix == fhir::search_prefix::eq);
    check_unsupported("Patient", "name:text", "x");
    check_unsupported("Patient", "name:below", "x");
    check_unsupported("Patient", "name:nonsense", "x");
}

TEST_CASE("search_query: token forms") {
    auto code_only = argument_of("Patient", "gender", "male");
    CHECK_FALSE(code_only.system.has_value());
    CHECK(code_only.code == "male");

    auto both = argument_of("Observation", "code", "http://loinc.org|1234-5");
    CHECK(both.system == "http://loinc.org");
    CHECK(both.code == "1234-5");
    CHECK(both.text == "http://loinc.org|1234-5");

    auto no_system = argument_of("Observation", "code", "|1234-5");
    CHECK(no_system.system == "");
    CHECK(no_system.code == "1234-5");

    auto any_code = argument_of("Observation", "code", "http://loinc.org|");
    CHECK(any_code.system == "http://loinc.org");
    CHECK(any_code.code.empty());

    check_malformed("Observation", "code", "|");
    check_malformed("Observation", "code", "a|b|c");
    check_unsupported("Observation", "code:exact", "x");
    check_unsupported("Observation", "code:below", "x");
}

TEST_CASE("search_query: token modifiers :not :text :of-type :in :not-in") {
    auto negated = clause_of("Observation", "status", "http://hl7.org/fhir/observation-status|final");
    CHECK(clause_of("Observation", "status:not", "final").modifier == fhir::search_modifier::not_);
    CHECK(negated.any_of[0].code == "final");

    auto text = clause_of("Observation", "code:text", "blood|pressure");
    CHECK(text.modifier == fhir::search_modifier::text);
    CHECK(text.any_of[0].text == "blood|pressure");
    CHECK_FALSE(text.any_of[0].system.has_value());

    auto of_type = clause_of("Patient", "identifier:of-type",
                             "http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053");
    CHECK(of_type.modifier == fhir::search_modifier::of_type);
    CHECK(of_type.any_of[0].system == "http://terminology.hl7.org/CodeSystem/v2-0203");
    CHECK(of_type.any_of[0].code == "MR");
    CHECK(of_type.any_of[0].of_type_value == "446053");
    check_malformed("Patient", "identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203|MR");
    check_malformed("Patient", "identifier:of-type", "||446053");
    check_unsupported("Observation", "code:of-type", "a|b|c"); // code is not an Identifier

    auto in = clause_of("Observation", "status:in", "http://hl7.org/fhir/ValueSet/observation-status");
    CHECK(in.modifier == fhir::search_modifier::in);
    CHECK(in.any_of[0].text == "http://hl7.org/fhir/ValueSet/observation-status");
    CHECK(clause_of("Observation", "status:not-in", "http://hl7.org/fhir/ValueSet/observation-status|4.0.1").modifier ==
          fhir::search_modifier::not_in);
    check_unsupported("Observation", "status:in", "http://example.org/ValueSet/unknown");
}

TEST_CASE("search_query: reference forms and modifiers") {
    auto typed = argument_of("Observation", "subject", "Patient/9000000009");
    CHECK(typed.target_type == "Patient");
    CHECK(typed.id == "9000000009");
    CHECK(typed.url.empty());

    auto id_only = argument_of("Observation", "subject", "9000000009");
    CHECK(id_only.target_type.empty());
    CHECK(id_only.id == "9000000009");

    auto with_type = clause_of("Observation", "subject:Patient", "9000000009");
    CHECK(with_type.modifier == fhir::search_modifier::type);
    CHECK(with_type.type_modifier == "Patient");
    CHECK(with_type.any_of[0].target_type == "Patient");
    CHECK(with_type.any_of[0].id == "9000000009");

    CHECK(argument_of("Observation", "subject", "https://other.example/fhir/Patient/1").url ==
          "https://other.example/fhir/Patient/1");
    CHECK(argument_of("Observation", "subject", "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a").url ==
          "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a");

    auto identifier = clause_of("Observation", "subject:identifier", "https://fhir.nhs.uk/Id/nhs-number|9000000009");
    CHECK(identifier.modifier == fhir::search_modifier::identifier);
    CHECK(identifier.any_of[0].system == "https://fhir.nhs.uk/Id/nhs-number");
    CHECK(identifier.any_of[0].code == "9000000009");

    check_malformed("Observation", "subject", "Nonsense/1");
    check_malformed("Observation", "subject", "Organization/1"); // not a target of Observation.subject
    check_malformed("Observation", "subject", "Patient/has space");
    check_malformed("Observation", "subject:Patient", "Location/1");
    check_unsupported("Observation", "subject:Organization", "1");
    check_unsupported("Observation", "subject:above", "Patient/1");
    check_unsupported("Observation", "subject:below", "Patient/1");
    check_unsupported("Observation", "subject:exact", "Patient/1");
}

TEST_CASE("search_query: date prefixes and precision") {
    const std::pair<std::string, fhir::search_prefix> prefixes[] = {
        {"", fhir::search_prefix::eq},   {"eq", fhir::search_prefix::eq}, {"ne", fhir::search_prefix::ne},
        {"gt", fhir::search_prefix::gt}, {"lt", fhir::search_prefix::lt}, {"ge", fhir::search_prefix::ge},
        {"le", fhir::search_prefix::le}, {"sa", fhir::search_prefix::sa}, {"eb", fhir::search_prefix::eb},
        {"ap", fhir::search_prefix::ap},
    };
    for (auto& [text, prefix] : prefixes) {
        auto argument = argument_of("Patient", "birthdate", text + "1974-12-25");
        CHECK(argument.prefix == prefix);
        CHECK(argument.text == "1974-12-25");
        CHECK(argument.range.begin == fhir::parse_date_time("1974-12-25")->begin);
        CHECK(argument.range.end - argument.range.begin == micros_per_day);
    }
    auto year = argument_of("Observation", "date", "ge2020");
    CHECK(year.range.begin == fhir::parse_date_time("2020-01-01")->begin);
    CHECK(year.range.end == fhir::parse_date_time("2021-01-01")->begin);
    CHECK(argument_of("Observation", "_lastUpdated", "gt2026-11-23T19:02:03Z").prefix == fhir::search_prefix::gt);

    check_malformed("Patient", "birthdate", "1974-13-01");
    check_malformed("Patient", "birthdate", "xx1974");
    check_malformed("Patient", "birthdate", "ge");
    check_malformed("Patient", "birthdate", "yesterday");
    check_unsupported("Patient", "birthdate:exact", "1974");
}

TEST_CASE("search_query: quantity values and the precision of numbers") {
    struct row {
        std::string value;
        double number, low, high;
    };
    const row rows[] = {
        {"100", 100, 99.5, 100.5},       {"100.0", 100, 99.95, 100.05}, {"1e2", 100, 50, 150},
        {"0.5", 0.5, 0.45, 0.55},        {"-1.5e-1", -0.15, -0.155, -0.145},
    };
    for (auto& r : rows) {
        auto argument = argument_of("Observation", "value-quantity", r.value);
        INFO(r.value);
        CHECK(argument.number == doctest::Approx(r.number));
        CHECK(argument.number_low == doctest::Approx(r.low));
        CHECK(argument.number_high == doctest::Approx(r.high));
        CHECK_FALSE(argument.quantity_system.has_value());
        CHECK(argument.quantity_code.empty());
    }
    auto full = argument_of("Observation", "value-quantity", "ge5.4|http://unitsofmeasure.org|mg");
    CHECK(full.prefix == fhir::search_prefix::ge);
    CHECK(full.text == "5.4");
    CHECK(full.number == doctest::Approx(5.4));
    CHECK(full.quantity_system == "http://unitsofmeasure.org");
    CHECK(full.quantity_code == "mg");

    auto code_only = argument_of("Observation", "value-quantity", "ap5.4||mg");
    CHECK(code_only.prefix == fhir::search_prefix::ap);
    CHECK_FALSE(code_only.quantity_system.has_value());
    CHECK(code_only.quantity_code == "mg");

    for (const char* bad : {"5.4|mg", "abc", "5.", ".5", "1e", "0x10", "inf", "5,4|a|b|c"})
        check_malformed("Observation", "value-quantity", bad);
    check_unsupported("Observation", "value-quantity:exact", "5");
}

TEST_CASE("search_query: uri values and :above :below") {
    CHECK(argument_of("Questionnaire", "url", "http://example.org/Questionnaire/q1").text ==
          "http://example.org/Questionnaire/q1");
    CHECK(clause_of("Observation", "_profile:below", "http://example.org/fhir").modifier == fhir::search_modifier::below);
    CHECK(clause_of("Observation", "_source:above", "http://example.org/fhir/a/b").modifier ==
          fhir::search_modifier::above);
    check_unsupported("Observation", "_profile:exact", "http://example.org/fhir");
}

TEST_CASE("search_query: composite values") {
    auto argument = argument_of("Observation", "code-value-quantity", "http://loinc.org|8480-6$gt100||mm[Hg]");
    REQUIRE(argument.components.size() == 2);
    CHECK(argument.components[0].system == "http://loinc.org");
    CHECK(argument.components[0].code == "8480-6");
    CHECK(argument.components[1].prefix == fhir::search_prefix::gt);
    CHECK(argument.components[1].number == 100);
    CHECK(argument.components[1].quantity_code == "mm[Hg]");

    auto date = argument_of("Observation", "code-value-date", "1234-5$ge2020-06");
    REQUIRE(date.components.size() == 2);
    CHECK(date.components[1].prefix == fhir::search_prefix::ge);
    CHECK(date.components[1].range.begin == fhir::parse_date_time("2020-06")->begin);

    check_malformed("Observation", "code-value-quantity", "http://loinc.org|8480-6");
    check_malformed("Observation", "code-value-quantity", "a$1$2");
    check_malformed("Observation", "code-value-quantity", "a$");
    check_malformed("Observation", "code-value-date", "a$not-a-date");
    check_unsupported("Observation", "code-value-quantity:exact", "a$1");
}

TEST_CASE("search_query: escapes \\, \\| \\$ \\\\ and comma alternatives") {
    auto names = clause_of("Patient", "name", R"(Smith\, John,Jones)");
    REQUIRE(names.any_of.size() == 2);
    CHECK(names.any_of[0].text == "Smith, John");
    CHECK(names.any_of[1].text == "Jones");

    auto token = argument_of("Observation", "code", R"(http://x\|y|a\,b)");
    CHECK(token.system == "http://x|y");
    CHECK(token.code == "a,b");

    auto composite = argument_of("Observation", "code-value-string", R"(1234-5$a\$b\\c)");
    REQUIRE(composite.components.size() == 2);
    CHECK(composite.components[1].text == R"(a$b\c)");

    CHECK(argument_of("Patient", "name", R"(a\b)").text == R"(a\b)"); // not an escape: kept as written
    CHECK(clause_of("Observation", "code", "a,b,c").any_of.size() == 3);
}

TEST_CASE("search_query: :missing on every type takes true or false") {
    const char* names[] = {"name", "gender", "birthdate", "general-practitioner", "_profile"};
    for (const char* name : names) {
        const std::string missing = std::string(name) + ":missing";
        auto yes = clause_of("Patient", missing, "true");
        CHECK(yes.modifier == fhir::search_modifier::missing);
        CHECK(yes.any_of[0].missing);
        CHECK_FALSE(clause_of("Patient", missing, "false").any_of[0].missing);
        check_malformed("Patient", missing, "yes");
    }
    CHECK(clause_of("Observation", "value-quantity:missing", "true").any_of[0].missing);
    CHECK(clause_of("Observation", "code-value-quantity:missing", "true").any_of[0].missing);
}

TEST_CASE("search_query: empty values are malformed") {
    check_malformed("Patient", "name", "");
    check_malformed("Patient", "name", "a,,b");
    check_malformed("Patient", "name", "a,");
    check_malformed("Observation", "code", "");
    check_malformed("Observation", "subject", "");
    check_malformed("Patient", "birthdate", "");
}

TEST_CASE("search_query: forward chains of one to three steps") {
    auto one = clause_of("Observation", "subject:Patient.name", "Smith");
    REQUIRE(one.path.size() == 1);
    CHECK_FALSE(one.path[0].reverse);
    CHECK(one.path[0].type == "Patient");
    CHECK(one.path[0].reference->code == "subject");
    CHECK(one.type == "Patient");
    CHECK(one.parameter->code == "name");
    CHECK(one.parameter->base == "Patient");

    // Observation.patient targets Group and Patient; only Patient is held, so no type is needed.
    auto deduced = clause_of("Observation", "patient.birthdate", "1974");
    REQUIRE(deduced.path.size() == 1);
    CHECK(deduced.type == "Patient");

    auto two = clause_of("Observation", "subject:Patient.organization.name:exact", "Leeds GP");
    REQUIRE(two.path.size() == 2);
    CHECK(two.path[1].type == "Organization");
    CHECK(two.path[1].reference->code == "organization");
    CHECK(two.type == "Organization");
    CHECK(two.modifier == fhir::search_modifier::exact);

    auto three = clause_of("Observation", "encounter.subject:Patient.organization.name", "Leeds");
    REQUIRE(three.path.size() == 3);
    CHECK(three.path[0].type == "Encounter");
    CHECK(three.path[1].type == "Patient");
    CHECK(three.path[2].type == "Organization");

    check_unsupported("Observation", "encounter.subject:Patient.organization.partof.name", "x"); // 4 steps
    check_unsupported("Observation", "code.name", "x");              // not a reference
    check_unsupported("Observation", "subject:Organization.name", "x"); // not a target
    check_unsupported("Observation", "subject:Group.name", "x");     // a target, not held here
    check_unsupported("Observation", "subject:Patient.nonsense", "x");
    check_unsupported("Observation", "patient.nonsense", "x");
}

TEST_CASE("search_query: an ambiguous chain asks for the type") {
    // Observation.subject may be a Location or a Patient, and both have `name`.
    auto failure = failure_of("Observation", "subject.name", "Smith");
    CHECK(failure.kind == fhir::category::unsupported);
    CHECK(failure.issues[0].diagnostics.find("ambiguous chain") != std::string::npos);
    CHECK(failure.issues[0].diagnostics.find("subject:") != std::string::npos);
    CHECK(failure.issues[0].expression == "subject.name");
}

TEST_CASE("search_query: a chain is typed by the element, not only by the shared parameter") {
    // R4's clinical-encounter targets Encounter and EpisodeOfCare for all its bases, but
    // Observation.encounter is Reference(Encounter): the chain is not ambiguous.
    auto typed = clause_of("Observation", "encounter.date", "2013-12-11");
    REQUIRE(typed.path.size() == 1);
    CHECK(typed.path[0].type == "Encounter");
    check_unsupported("Observation", "encounter:EpisodeOfCare.status", "active"); // never an EpisodeOfCare
    // clinical-patient likewise: Observation.patient is subject.where(resolve() is Patient).
    check_unsupported("Observation", "patient:Group.name", "x");
    // Where the element itself allows several types, the chain stays ambiguous (above).
    CHECK(failure_of("Observation", "subject.name", "Smith").issues[0].diagnostics.find("ambiguous chain") !=
          std::string::npos);
}

TEST_CASE("search_query: _has reverse chains, nested and followed by a chain") {
    auto has = clause_of("Patient", "_has:Observation:patient:code", "http://loinc.org|1234-5");
    REQUIRE(has.path.size() == 1);
    CHECK(has.path[0].reverse);
    CHECK(has.path[0].type == "Observation");
    CHECK(has.path[0].reference->code == "patient");
    CHECK(has.type == "Observation");
    CHECK(has.parameter->code == "code");
    CHECK(has.any_of[0].code == "1234-5");

    auto nested = clause_of("Patient", "_has:Observation:patient:_has:AuditEvent:entity:agent", "Practitioner/1");
    REQUIRE(nested.path.size() == 2);
    CHECK(nested.path[1].reverse);
    CHECK(nested.path[1].type == "AuditEvent");
    CHECK(nested.type == "AuditEvent");
    CHECK(nested.parameter->code == "agent");

    auto then_chain = clause_of("Patient", "_has:Observation:patient:performer:Practitioner.name", "Jones");
    REQUIRE(then_chain.path.size() == 2);
    CHECK(then_chain.path[0].reverse);
    CHECK_FALSE(then_chain.path[1].reverse);
    CHECK(then_chain.type == "Practitioner");

    CHECK(clause_of("Patient", "_has:Observation:patient:code:not", "x").modifier == fhir::search_modifier::not_);

    check_malformed("Patient", "_has:Observation", "x");
    check_malformed("Patient", "_has:Observation:patient:", "x");
    check_unsupported("Patient", "_has:Nonsense:patient:code", "x");
    check_unsupported("Patient", "_has:Observation:code:code", "x");    // not a reference
    check_unsupported("Patient", "_has:Observation:encounter:code", "x"); // does not refer to Patient
    check_unsupported("Patient", "_has:Observation:patient:nonsense", "x");
}

TEST_CASE("search_query: system search over several types") {
    auto query = fhir::parse_search_query({"Patient", "Observation"}, {{"_id", "a,b"}, {"_lastUpdated", "ge2026"}}, {});
    REQUIRE(query.ok());
    REQUIRE(query->clauses.size() == 2);
    CHECK(query->clauses[0].parameter->code == "_id");
    CHECK(query->clauses[0].type == "Patient");
    CHECK(query->clauses[0].any_of.size() == 2);

    for (const char* name : {"name", "subject.name", "_has:Observation:patient:code"}) {
        auto failed = fhir::parse_search_query({"Patient", "Observation"}, {{name, "x"}}, {});
        REQUIRE_FALSE(failed.ok());
        CHECK(failed.failure().kind == fhir::category::unsupported);
        CHECK(failed.failure().issues[0].expression == name);
    }
    // Both Observation and Condition have a token `code`.
    CHECK(fhir::parse_search_query({"Observation", "Condition"}, {{"code", "x"}}, {}).ok());

    auto all = fhir::parse_search_query({}, {{"_id", "x"}}, {});
    REQUIRE(all.ok());
    CHECK(all->types.size() == fhir::supported_types().size());
    CHECK(fhir::parse_search_query({"Nonsense"}, {}, {}).failure().kind == fhir::category::unsupported);
}

TEST_CASE("search_query: _sort") {
    auto query = parse("Observation", {{"_sort", "-date,status,_lastUpdated"}});
    REQUIRE(query.ok());
    REQUIRE(query->sort.size() == 3);
    CHECK(query->sort[0].descending);
    CHECK(query->sort[0].parameter->code == "date");
    CHECK_FALSE(query->sort[1].descending);
    CHECK(query->sort[2].parameter->code == "_lastUpdated");

    check_unsupported("Observation", "_sort", "_score");
    check_unsupported("Observation", "_sort", "code-value-quantity");
    check_unsupported("Observation", "_sort", "nonsense");
    check_unsupported("Observation", "_sort:asc", "date");
    check_malformed("Observation", "_sort", "date,,status");
    check_malformed("Observation", "_sort", "-");
    auto twice = parse("Observation", {{"_sort", "date"}, {"_sort", "status"}});
    REQUIRE_FALSE(twice.ok());
    CHECK(twice.failure().kind == fhir::category::malformed);
}

TEST_CASE("search_query: _count is capped and must be a number") {
    CHECK(parse("Patient", {})->count == 50);
    const std::pair<std::string, unsigned> rows[] = {{"10", 10}, {"0", 0}, {"1000", 1000}, {"5000", 1000},
                                                      {"99999999999999999999", 1000}};
    for (auto& [value, count] : rows) {
        auto query = parse("Patient", {{"_count", value}});
        REQUIRE(query.ok());
        CHECK(query->count == count);
        CHECK(query->applied == parameters{{"_count", std::to_string(count)}});
    }
    for (const char* bad : {"ten", "-1", "1.5", ""})
        check_malformed("Patient", "_count", bad);
    fhir::search_query_options small;
    small.default_count = 20;
    small.max_count = 100;
    CHECK(parse("Patient", {}, small)->count == 20);
    CHECK(parse("Patient", {{"_count", "500"}}, small)->count == 100);
}

TEST_CASE("search_query: _include and _revinclude") {
    auto query = parse("Observation", {{"_include", "Observation:subject"},
                                       {"_include", "Observation:subject:Patient"},
                                       {"_include", "*"},
                                       {"_include", "Observation:*"},
                                       {"_include:iterate", "Patient:organization"},
                                       {"_include:recurse", "Patient:general-practitioner"},
                                       {"_revinclude", "Provenance:target"},
                                       {"_revinclude:iterate", "AuditEvent:entity"}});
    REQUIRE(query.ok());
    auto& includes = query->includes;
    REQUIRE(includes.size() == 8);
    CHECK(includes[0].source_type == "Observation");
    CHECK(includes[0].parameter->code == "subject");
    CHECK(includes[0].target_type.empty());
    CHECK(includes[1].target_type == "Patient");
    CHECK(includes[2].source_type == "*");
    CHECK(includes[2].parameter == nullptr);
    CHECK(includes[3].parameter == nullptr);
    CHECK(includes[4].iterate);
    CHECK(includes[5].iterate);
    CHECK(includes[6].reverse);
    CHECK(includes[6].parameter->code == "target");
    CHECK(includes[7].reverse);
    CHECK(includes[7].iterate);

    check_malformed("Observation", "_include", "Patient:organization"); // not a type searched
    check_malformed("Observation", "_include", "Observation:code");     // not a reference
    check_malformed("Observation", "_include", "Observation:subject:Organization");
    check_malformed("Observation", "_include", "Observation");
    check_malformed("Observation", "_include", "");
    check_unsupported("Observation", "_include", "Observation:nonsense");
    check_unsupported("Observation", "_include", "Nonsense:subject");
    check_unsupported("Observation", "_include:deep", "Observation:subject");

    fhir::search_query_options two;
    two.max_includes = 2;
    auto many = parse("Observation", {{"_include", "Observation:subject"}, {"_include", "Observation:performer"},
                                      {"_revinclude", "Provenance:target"}}, two);
    REQUIRE_FALSE(many.ok());
    CHECK(many.failure().kind == fhir::category::unsupported);
    CHECK(many.failure().issues[0].expression == "_revinclude");
}

TEST_CASE("search_query: _summary, _total and _elements") {
    const std::pair<std::string, fhir::search_summary> summaries[] = {
        {"true", fhir::search_summary::true_}, {"false", fhir::search_summary::false_},
        {"text", fhir::search_summary::text},  {"data", fhir::search_summary::data},
        {"count", fhir::search_summary::count},
    };
    for (auto& [value, summary] : summaries)
        CHECK(parse("Patient", {{"_summary", value}})->summary == summary);
    check_malformed("Patient", "_summary", "yes");

    const std::pair<std::string, fhir::search_total> totals[] = {
        {"none", fhir::search_total::none}, {"estimate", fhir::search_total::estimate},
        {"accurate", fhir::search_total::accurate},
    };
    for (auto& [value, total] : totals)
        CHECK(parse("Patient", {{"_total", value}})->total == total);
    check_malformed("Patient", "_total", "exact");

    CHECK(parse("Patient", {{"_elements", "name,birthDate,identifier"}})->elements ==
          strings{"name", "birthDate", "identifier"});
    check_malformed("Patient", "_elements", "name,");
    check_malformed("Patient", "_elements", "name.family");
    check_malformed("Patient", "_elements", "");
}

TEST_CASE("search_query: unknown and unsupported parameters are errors naming them") {
    check_unsupported("Patient", "nonsense", "x");
    check_unsupported("Patient", "nonsense:exact", "x");
    check_unsupported("Location", "near", "42.25|-83.69|10|km");
    for (const char* feature : {"_text", "_content", "_query", "_filter", "_list", "_contained", "_containedType",
                                "_score", "_since"})
        check_unsupported("Patient", feature, "x");
    CHECK(failure_of("Location", "near", "1|2").issues[0].code == "not-supported");
}

TEST_CASE("search_query: diagnostics do not echo search values") {
    auto failure = failure_of("Patient", "birthdate", "1974-99-99");
    CHECK(failure.issues[0].diagnostics.find("1974") == std::string::npos);
    CHECK(failure.issues[0].code == "value");
    failure = failure_of("Observation", "subject", "Patient/9000000009 x");
    CHECK(failure.issues[0].diagnostics.find("9000000009") == std::string::npos);
}

TEST_CASE("search_query: applied lists what was used, as given, in order") {
    auto query = parse("Observation", {{"code", "http://loinc.org|1234-5"},
                                       {"subject:Patient.name", R"(Smith\, J)"},
                                       {"_count", "5000"},
                                       {"_sort", "-date"},
                                       {"_include", "Observation:subject"}});
    REQUIRE(query.ok());
    CHECK(query->applied == parameters{{"code", "http://loinc.org|1234-5"},
                                       {"subject:Patient.name", R"(Smith\, J)"},
                                       {"_count", "1000"},
                                       {"_sort", "-date"},
                                       {"_include", "Observation:subject"}});
    CHECK(query->ignored.empty());
    CHECK(query->clauses.size() == 2);
}

TEST_CASE("search_query: lenient drops unknown and unsupported parameters, never malformed values") {
    fhir::search_query_options lenient;
    lenient.lenient = true;
    auto query = parse("Patient", {{"nonsense", "1"},
                                   {"name", "Smith"},
                                   {"_text", "x"},
                                   {"name:nonsense", "x"},
                                   {"_include", "Patient:nonsense"},
                                   {"gender", "female"}},
                       lenient);
    REQUIRE(query.ok());
    CHECK(query->applied == parameters{{"name", "Smith"}, {"gender", "female"}});
    CHECK(query->clauses.size() == 2);
    CHECK(query->includes.empty());
    REQUIRE(query->ignored.size() == 4);
    const char* dropped[] = {"nonsense", "_text", "name:nonsense", "_include"};
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(query->ignored[i].severity == "warning");
        CHECK(query->ignored[i].code == "not-supported");
        CHECK(query->ignored[i].expression == dropped[i]);
        CHECK(query->ignored[i].diagnostics.find(dropped[i]) != std::string::npos);
    }

    auto malformed = parse("Patient", {{"birthdate", "not-a-date"}}, lenient);
    REQUIRE_FALSE(malformed.ok());
    CHECK(malformed.failure().kind == fhir::category::malformed);
}

TEST_CASE("search_query: more parameters than max_clauses is refused") {
    fhir::search_query_options options;
    options.max_clauses = 2;
    CHECK(parse("Patient", {{"name", "a"}, {"name", "b"}}, options).ok());
    auto many = parse("Patient", {{"name", "a"}, {"name", "b"}, {"name", "c"}}, options);
    REQUIRE_FALSE(many.ok());
    CHECK(many.failure().kind == fhir::category::unsupported);
    options.lenient = true;
    CHECK_FALSE(parse("Patient", {{"name", "a"}, {"name", "b"}, {"name", "c"}}, options).ok());
}

namespace {

/// A plausible value for a parameter (or a composite's component) of `type`.
std::string value_for(fhir::search_param_type type, const std::vector<std::string>& targets) {
    using t = fhir::search_param_type;
    switch (type) {
    case t::number: return "ge100";
    case t::date: return "ge2020-01-01";
    case t::string: return "abc";
    case t::token: return "http://example.org|x";
    case t::reference: return targets.empty() ? "123" : targets.front() + "/123";
    case t::quantity: return "le5.4|http://unitsofmeasure.org|mg";
    case t::uri: return "http://example.org/x";
    case t::composite:
    case t::special: break;
    }
    return {};
}

/// The base type to search a parameter on: its own, or Patient for the common ones.
std::string searched_type(const fhir::search_parameter& p) { return p.base == "Resource" ? "Patient" : p.base; }

} // namespace

TEST_CASE("search_query: every parameter of every supported type parses a value of its type") {
    unsigned checked = 0;
    for (const fhir::search_parameter& p : fhir::all_search_parameters()) {
        std::string value;
        if (p.type == fhir::search_param_type::composite) {
            for (auto& component : p.components)
                value += (value.empty() ? "" : "$") + value_for(component.type, {});
        } else {
            value = value_for(p.type, p.targets);
        }
        INFO(p.base, ".", p.code, "=", value);
        auto query = parse(searched_type(p), {{p.code, value}});
        if (!query.ok())
            FAIL_CHECK(query.failure().issues[0].diagnostics);
        auto missing = parse(searched_type(p), {{p.code + ":missing", "true"}});
        CHECK(missing.ok());
        ++checked;
    }
    CHECK(checked == fhir::all_search_parameters().size());
    CHECK(checked > 400);
}

TEST_CASE("search_query: every supported type has _id and _lastUpdated and sorts by _lastUpdated") {
    for (std::string_view type : fhir::supported_types()) {
        INFO(type);
        CHECK(parse(std::string(type), {{"_id", "a"}, {"_lastUpdated", "gt2020"}, {"_sort", "-_lastUpdated"}}).ok());
    }
}

TEST_CASE("search_query: value_set_members") {
    auto gender = fhir::value_set_members("http://hl7.org/fhir/ValueSet/administrative-gender");
    REQUIRE(gender != nullptr);
    CHECK(std::find(gender->begin(), gender->end(),
                    std::pair<std::string, std::string>{"http://hl7.org/fhir/administrative-gender", "female"}) !=
          gender->end());
    CHECK(gender->size() == 4);
    CHECK(fhir::value_set_members("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1") == gender);
    CHECK(fhir::value_set_members("http://example.org/ValueSet/nothing") == nullptr);
    CHECK(fhir::value_set_members("") == nullptr);
}
