// Every search parameter the CapabilityStatement lists (per supported type
// but AuditEvent: exactly fhir::search_parameters_for(type), own and common parameters) is exercised by
// a search whose matching set is known. The fixture is the official R4 examples this server accepts
// (prepared as the API prepares them) plus the hand-written resources of search_fixture_resources.hpp.
// For each parameter the expected set comes from an oracle: the values fhir::extract_search_values
// finds in each stored version, matched by a plain in-memory rule per parameter type (FHIR's default
// matching for the value chosen). The search runs through fhir::parse_search_query and store::search.
// Then the hand-checked cases the oracle cannot derive: :missing, :not, :exact, :contains, partial
// dates, :below, :identifier, a 2-level chain, _has and _sort.
#include "search_fixture_outside_record.hpp"
#include "search_fixture_resources.hpp"
#include "store_fixture.hpp"

#include "../../fhir_model/src/json.hpp"
#include "fhir_model/date_time.hpp"
#include "fhir_model/resource.hpp"
#include "fhir_model/search_parameters.hpp"
#include "fhir_model/search_query.hpp"
#include "fhir_model/search_values.hpp"
#include "storage/search.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

using namespace caregate;
using namespace caregate::storage;
using namespace caregate::storage::testing;
namespace sf = caregate::storage::testing::search_fixture;

namespace {

using fhir::search_param_type;
using id_set = std::set<std::string>;
using query_parameters = std::vector<std::pair<std::string, std::string>>;

constexpr std::int64_t micros_per_day = 86400LL * 1000000;

// --- the fixture -----------------------------------------------------------------------------------

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The `n`-th valid NHS number from 9000000009 upwards (Modulus 11).
std::string nhs_number_at(int n) {
    for (long long stem = 900000000;; ++stem) {
        const std::string digits = std::to_string(stem);
        int sum = 0;
        for (int i = 0; i < 9; ++i)
            sum += (digits[static_cast<std::size_t>(i)] - '0') * (10 - i);
        int check = 11 - sum % 11;
        if (check == 11)
            check = 0;
        if (check == 10)
            continue;
        if (n-- == 0)
            return digits + std::to_string(check);
    }
}

std::string describe(const fhir::error& failure) {
    std::string text;
    for (const auto& issue : failure.issues)
        text += "[" + issue.code + "] " + issue.expression + ": " + issue.diagnostics + "; ";
    return text;
}

/// One resource as stored, with the search values of its stored version.
struct stored_resource {
    std::string type;
    std::string id;
    std::string source; ///< the example file, or "hand-written", or "meta copy of ..."
    std::string json;
    std::vector<fhir::search_value> values;
};

/// One resource to write: its body for prepare_resource and where it came from.
struct pending_write {
    std::string type;
    std::string id;
    std::string body;
    std::string source;
};

class example_store {
public:
    example_store() : db_(fast_options()) { build(); }

    store& db() { return *db_; }
    /// The NHS number a Patient example of this id was given (Patient.id is the NHS number).
    std::string nhs_of(const std::string& example_patient_id) const { return patient_nhs_.at(example_patient_id); }
    const std::vector<std::string>& refused() const { return refused_; }
    const std::vector<stored_resource>& resources() const { return resources_; }
    std::size_t examples_written() const { return examples_written_; }
    /// The id of the meta copy of `type` (see build()).
    const std::string& meta_copy(const std::string& type) const { return meta_copies_.at(type); }

    /// The resources of `type`, each with its values of the parameter `code`.
    std::vector<std::pair<const stored_resource*, std::vector<const fhir::search_value*>>>
    values_of(const std::string& type, std::string_view code) const {
        std::vector<std::pair<const stored_resource*, std::vector<const fhir::search_value*>>> out;
        for (const stored_resource& r : resources_) {
            if (r.type != type)
                continue;
            std::vector<const fhir::search_value*> values;
            for (const fhir::search_value& v : r.values)
                if (v.code == code)
                    values.push_back(&v);
            out.emplace_back(&r, std::move(values));
        }
        return out;
    }

private:
    store_fixture db_;
    std::map<std::string, std::string> patient_nhs_;
    std::vector<std::string> refused_;
    std::vector<stored_resource> resources_;
    std::size_t examples_written_ = 0;
    std::map<std::string, std::string> meta_copies_;

    static sqlite_options fast_options() {
        sqlite_options options;
        options.synchronous_full = false; // durability is not what this test is about
        return options;
    }

    /// Every `"reference": "Patient/{id}..."` points at the NHS number given to that Patient example
    /// (Patient-example's for a Patient no example defines).
    void point_patient_references(rapidjson::Value& value, rapidjson::Document::AllocatorType& allocator) {
        if (value.IsObject()) {
            for (auto& member : value.GetObject()) {
                const std::string_view name(member.name.GetString(), member.name.GetStringLength());
                if (name == "reference" && fhir::detail::is_string(member.value) &&
                    fhir::detail::text_of(member.value).starts_with("Patient/")) {
                    const std::string reference(fhir::detail::text_of(member.value));
                    const auto end = reference.find('/', 8);
                    const std::string id = reference.substr(8, end == std::string::npos ? std::string::npos : end - 8);
                    const auto found = patient_nhs_.find(id);
                    const std::string nhs = found != patient_nhs_.end() ? found->second : patient_nhs_.at("example");
                    const std::string rewritten =
                        "Patient/" + nhs + (end == std::string::npos ? std::string() : reference.substr(end));
                    member.value.SetString(rewritten.c_str(), static_cast<rapidjson::SizeType>(rewritten.size()),
                                           allocator);
                } else {
                    point_patient_references(member.value, allocator);
                }
            }
        } else if (value.IsArray()) {
            for (auto& item : value.GetArray())
                point_patient_references(item, allocator);
        }
    }

    static void set_string(rapidjson::Document& doc, const char* name, const std::string& text) {
        rapidjson::Value value(text.c_str(), static_cast<rapidjson::SizeType>(text.size()), doc.GetAllocator());
        if (doc.HasMember(name))
            doc[name] = value;
        else
            doc.AddMember(rapidjson::StringRef(name), value, doc.GetAllocator());
    }

    void build() {
        const std::filesystem::path folder = std::filesystem::path(CAREGATE_SOURCE_DIR) / "tests/data/r4-examples";
        REQUIRE(std::filesystem::is_directory(folder));
        std::vector<std::filesystem::path> files;
        for (const auto& entry : std::filesystem::directory_iterator(folder))
            if (entry.path().extension() == ".json")
                files.push_back(entry.path());
        std::sort(files.begin(), files.end());
        REQUIRE(files.size() > 300);

        struct example {
            std::string file, type, id;
            rapidjson::Document doc;
        };
        std::vector<example> examples;
        for (const auto& file : files) {
            example e;
            e.file = file.filename().string();
            REQUIRE(fhir::detail::parse_json(read_text(file), e.doc).ok());
            e.type = e.doc["resourceType"].GetString();
            e.id = e.doc.HasMember("id") ? e.doc["id"].GetString() : "";
            // AuditEvent is the server's own audit log, never written through the API, and not listed.
            if (e.type == "AuditEvent")
                continue;
            if (e.type == "Patient")
                patient_nhs_[e.id] = nhs_number_at(static_cast<int>(patient_nhs_.size()));
            examples.push_back(std::move(e));
        }

        std::vector<pending_write> patients;
        std::vector<pending_write> others;
        std::set<std::string> meta_copied;
        for (example& e : examples) {
            auto& allocator = e.doc.GetAllocator();
            point_patient_references(e.doc, allocator);
            std::string id = e.id;
            if (e.type == "Patient") {
                id = patient_nhs_.at(e.id);
                set_string(e.doc, "id", id);
                rapidjson::Value identifier(rapidjson::kObjectType);
                identifier.AddMember("system", rapidjson::Value("https://fhir.nhs.uk/Id/nhs-number", allocator), allocator);
                identifier.AddMember("value", rapidjson::Value(id.c_str(), allocator), allocator);
                if (!e.doc.HasMember("identifier"))
                    e.doc.AddMember("identifier", rapidjson::Value(rapidjson::kArrayType), allocator);
                e.doc["identifier"].PushBack(identifier, allocator);
            }
            const std::string body = fhir::detail::write_json(e.doc);
            if (!fhir::prepare_resource(body, e.type).ok()) {
                refused_.push_back(e.file);
                continue;
            }
            (e.type == "Patient" ? patients : others).push_back({e.type, id, body, e.file});
            // The meta copy: the first accepted example of each type (the hand-written Patient
            // carries the meta for Patient), with the fixture's meta for the common parameters.
            if (e.type != "Patient" && meta_copied.insert(e.type).second) {
                rapidjson::Document meta;
                REQUIRE(fhir::detail::parse_json(sf::meta_json(e.type), meta).ok());
                if (e.doc.HasMember("meta"))
                    e.doc.RemoveMember("meta");
                e.doc.AddMember("meta", rapidjson::Value(meta, allocator), allocator);
                const std::string copy_id = (id.size() > 59 ? id.substr(0, 59) : id) + "-meta";
                set_string(e.doc, "id", copy_id);
                meta_copies_[e.type] = copy_id;
                others.push_back({e.type, copy_id, fhir::detail::write_json(e.doc), "meta copy of " + e.file});
            }
        }
        examples_written_ = patients.size() + others.size() - meta_copied.size();
        std::vector<pending_write> hand_patients;
        std::vector<pending_write> hand_others;
        for (const sf::hand_written& h : sf::hand_written_resources())
            (h.type == "Patient" ? hand_patients : hand_others).push_back({h.type, h.id, h.json, "hand-written"});
        for (const sf::hand_written& h : sf::outside_record_resources())
            hand_others.push_back({h.type, h.id, h.json, "hand-written"});

        for (auto* group : {&patients, &hand_patients, &hand_others, &others}) {
            for (const pending_write& w : *group) {
                auto prepared = fhir::prepare_resource(w.body, w.type);
                REQUIRE_MESSAGE(prepared.ok(), w.source << " " << w.type << "/" << w.id << " was refused: "
                                                        << (prepared.ok() ? "" : describe(prepared.failure())));
                write_request request = create_request(w.type, w.id, prepared->content);
                request.fail_if_exists = true;
                request.citizens = prepared->citizens;
                request.access = prepared->access;
                request.writer = "X26";
                auto outcome = db_->write(std::move(request));
                REQUIRE_MESSAGE(outcome.ok(), w.source << " " << w.type << "/" << w.id << " was not written: "
                                                       << (outcome.ok() ? "" : describe(outcome.failure())));
                resources_.push_back({w.type, w.id, w.source, {}, {}});
            }
        }
        // The oracle's values come from each stored version, read back as any reader sees it.
        for (stored_resource& r : resources_) {
            auto version = db_->read(r.type, r.id);
            REQUIRE(version.ok());
            r.json = version->json;
            r.values = fhir::extract_search_values(r.json);
        }
    }
};

example_store& shared_fixture() {
    static example_store fixture;
    return fixture;
}

// --- running a search ------------------------------------------------------------------------------

struct search_run {
    std::optional<fhir::error> failure;
    std::vector<std::string> ids; ///< in the order the pages gave them
    std::optional<std::int64_t> total;
    fhir::search_query query;
};

/// Runs a search of `type` as the gateway would (parse, then store::search), following `next` links.
search_run run_search(store& db, const std::string& type, query_parameters parameters, bool with_total = true,
                      unsigned count = 1000) {
    search_run run;
    parameters.emplace_back("_count", std::to_string(count));
    if (with_total)
        parameters.emplace_back("_total", "accurate");
    auto parsed = fhir::parse_search_query({type}, parameters, fhir::search_query_options{});
    if (!parsed) {
        run.failure = parsed.failure();
        return run;
    }
    run.query = std::move(parsed).value();
    search_request request;
    request.query = &run.query;
    request.visibility.everything = true;
    for (int page_number = 0; page_number < 100; ++page_number) {
        auto page = db.search(request);
        if (!page) {
            run.failure = page.failure();
            return run;
        }
        if (page_number == 0)
            run.total = page->total;
        for (const search_entry& entry : page->entries)
            if (!entry.include)
                run.ids.push_back(entry.version.id);
        if (!page->next)
            return run;
        request.cursor = page->next;
    }
    FAIL("a search gave more than 100 pages");
    return run;
}

/// The ids a search finds, in order (over pages of `count`); the search must succeed.
std::vector<std::string> ids_in_order(const std::string& type, const query_parameters& parameters,
                                      unsigned count = 1000) {
    search_run run = run_search(shared_fixture().db(), type, parameters, false, count);
    REQUIRE_MESSAGE(!run.failure, type << " search failed: " << (run.failure ? describe(*run.failure) : ""));
    return run.ids;
}

id_set ids_of(const std::string& type, const query_parameters& parameters) {
    const auto ids = ids_in_order(type, parameters);
    return {ids.begin(), ids.end()};
}

// --- the oracle ------------------------------------------------------------------------------------

/// A search value's text with the FHIR search escapes (`\` `,` `|` `$`) applied.
std::string escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\\' || c == ',' || c == '|' || c == '$')
            out += '\\';
        out += c;
    }
    return out;
}

/// The first `n` code points of UTF-8 `text` (or all of it).
std::string first_code_points(std::string_view text, std::size_t n, std::size_t skip = 0) {
    std::size_t start = 0, count = 0, i = 0;
    for (; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80)
            continue; // a continuation byte
        if (count == skip)
            start = i;
        if (count == skip + n)
            break;
        ++count;
    }
    if (count <= skip)
        return {};
    return std::string(text.substr(start, i - start));
}

std::size_t code_points(std::string_view text) {
    return static_cast<std::size_t>(std::count_if(
        text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool is_fhir_id(std::string_view text) {
    return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
    });
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/// Days since 1970-01-01 as a calendar date (H. Hinnant's civil_from_days).
void civil_from_days(std::int64_t days, int& year, unsigned& month, unsigned& day) {
    days += 719468;
    const std::int64_t era = floor_div(days, 146097);
    const auto doe = static_cast<unsigned>(days - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    day = doy - (153 * mp + 2) / 5 + 1;
    month = mp < 10 ? mp + 3 : mp - 9;
    year = static_cast<int>(yoe + era * 400 + (month <= 2));
}

/// "YYYY-MM-DD" of the UTC day holding `micros`; nullopt outside years 1..9999.
std::optional<std::string> day_text(std::int64_t micros) {
    int year;
    unsigned month, day;
    civil_from_days(floor_div(micros, micros_per_day), year, month, day);
    if (year < 1 || year > 9999)
        return std::nullopt;
    char buffer[32]; // room for any int and unsigned, so the compiler sees no truncation
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02u", year, month, day);
    return std::string(buffer);
}

/// "YYYY-MM-DDThh:mm:ss.ffffffZ": the instant `micros` to the microsecond.
std::optional<std::string> instant_text(std::int64_t micros) {
    auto day = day_text(micros);
    if (!day)
        return std::nullopt;
    const std::int64_t in_day = micros - floor_div(micros, micros_per_day) * micros_per_day;
    const std::int64_t seconds = in_day / 1000000;
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "T%02lld:%02lld:%02lld.%06lldZ", static_cast<long long>(seconds / 3600),
                  static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60),
                  static_cast<long long>(in_day % 1000000));
    return *day + buffer;
}

/// FHIR's date comparison (search page, "date"): the target range [low, high) against the search
/// value's range q.
bool date_matches(fhir::search_prefix prefix, const fhir::time_range& target, const fhir::time_range& q) {
    const bool within = target.begin >= q.begin && target.end <= q.end;
    switch (prefix) {
    case fhir::search_prefix::eq: return within;                          // q contains the target
    case fhir::search_prefix::ne: return !within;
    case fhir::search_prefix::gt: return target.end > q.end;              // the range above q intersects it
    case fhir::search_prefix::lt: return target.begin < q.begin;          // the range below q intersects it
    case fhir::search_prefix::ge: return target.end > q.end || within;
    case fhir::search_prefix::le: return target.begin < q.begin || within;
    case fhir::search_prefix::sa: return target.begin >= q.end;           // starts after q ends
    case fhir::search_prefix::eb: return target.end <= q.begin;           // ends before q starts
    case fhir::search_prefix::ap: break;
    }
    return false;
}

using value_rule = std::function<bool(const fhir::search_value&)>;

/// One search of one parameter, with the rule saying which values it matches.
struct probe {
    std::string name;  ///< the parameter as sent, e.g. "family:exact"
    std::string value; ///< as sent, escaped
    value_rule matches;
    std::optional<fhir::time_range> date_range; ///< for a date: the search value's range the rule assumes
};

/// The probes one indexed value gives, under one seed (the value they were derived from).
struct seeded_probes {
    std::string kind; ///< which way of searching: a few seeds of each kind are run
    std::string seed;
    std::vector<probe> probes;
};

/// `system|code` (or `|code` for a token without a system) and the rule for it; nullopt for a value
/// a token search cannot name (no code, or an empty system).
std::optional<std::pair<std::string, value_rule>> token_system_code(const fhir::search_value& v) {
    if (v.code_value.empty())
        return std::nullopt;
    const std::string code = v.code_value;
    if (!v.has_system)
        return std::make_pair("|" + escape(code),
                              value_rule([code](const fhir::search_value& w) { return !w.has_system && w.code_value == code; }));
    if (v.system.empty())
        return std::nullopt;
    const std::string system = v.system;
    return std::make_pair(escape(system) + "|" + escape(code), value_rule([system, code](const fhir::search_value& w) {
                              return w.has_system && w.system == system && w.code_value == code;
                          }));
}

/// The interval a decimal's precision implies (half a unit of its last digit either side); nullopt
/// for an exponent form or no number.
std::optional<std::pair<double, double>> decimal_interval(const std::string& text) {
    if (text.empty() || text.find_first_of("eE") != std::string::npos)
        return std::nullopt;
    const auto point = text.find('.');
    const int decimals = point == std::string::npos ? 0 : static_cast<int>(text.size() - point - 1);
    const double value = std::stod(text);
    const double half = 0.5 * std::pow(10.0, -decimals);
    return std::make_pair(value - half, value + half);
}

/// `number|system|code` (or `number||code`) for a quantity and the rule for it: the number within its
/// precision's interval and the units equal.
std::optional<std::pair<std::string, value_rule>> quantity_eq(const fhir::search_value& v, const std::string& prefix = {}) {
    const auto interval = decimal_interval(v.text);
    if (!interval)
        return std::nullopt;
    std::string suffix;
    value_rule units = [](const fhir::search_value&) { return true; };
    if (v.has_system && !v.system.empty() && !v.code_value.empty()) {
        suffix = "|" + escape(v.system) + "|" + escape(v.code_value);
        units = [system = v.system, code = v.code_value](const fhir::search_value& w) {
            return w.has_system && w.system == system && w.code_value == code;
        };
    } else if (!v.code_value.empty() || !v.unit.empty()) {
        const std::string code = !v.code_value.empty() ? v.code_value : v.unit;
        suffix = "||" + escape(code);
        units = [code](const fhir::search_value& w) { return w.code_value == code || w.unit == code; };
    }
    const double number = std::stod(v.text);
    value_rule rule;
    if (prefix.empty())
        rule = [low = interval->first, high = interval->second, units](const fhir::search_value& w) {
            return !w.text.empty() && w.number >= low && w.number < high && units(w);
        };
    else if (prefix == "ge")
        rule = [number, units](const fhir::search_value& w) { return !w.text.empty() && w.number >= number && units(w); };
    else // "lt"
        rule = [number, units](const fhir::search_value& w) { return !w.text.empty() && w.number < number && units(w); };
    return std::make_pair(prefix + v.text + suffix, rule);
}

/// The day a date value is searched by (its start, or for an open start the day of its end) and
/// whether it has a start.
std::optional<std::pair<std::int64_t, bool>> date_anchor(const fhir::search_value& v) {
    if (v.range.begin != fhir::unbounded_low)
        return std::make_pair(v.range.begin, true);
    if (v.range.end != fhir::unbounded_high)
        return std::make_pair(v.range.end - 1, false);
    return std::nullopt;
}

/// `Type/id` for a reference (its targets permitting), and the rule for it.
std::optional<std::pair<std::string, value_rule>> reference_literal(const fhir::search_value& v,
                                                                    const fhir::search_parameter* p) {
    if (v.target_type.empty() || !is_fhir_id(v.id))
        return std::nullopt;
    if (p && !p->targets.empty() && std::find(p->targets.begin(), p->targets.end(), v.target_type) == p->targets.end())
        return std::nullopt;
    return std::make_pair(v.target_type + "/" + v.id,
                          value_rule([type = v.target_type, id = v.id](const fhir::search_value& w) {
                              return w.target_type == type && w.id == id;
                          }));
}

/// The probes of one value of parameter `p`.
std::vector<seeded_probes> probes_for(const fhir::search_parameter& p, const fhir::search_value& v) {
    std::vector<seeded_probes> out;
    using fhir::search_prefix;
    switch (p.type) {
    case search_param_type::token: {
        auto system_code = token_system_code(v);
        if (!system_code)
            break;
        seeded_probes s{"token", system_code->first, {}};
        s.probes.push_back({p.code, system_code->first, system_code->second, {}});
        s.probes.push_back({p.code, escape(v.code_value),
                            [code = v.code_value](const fhir::search_value& w) { return w.code_value == code; }, {}});
        out.push_back(std::move(s));
        break;
    }
    case search_param_type::string: {
        if (fhir::normalize_search_string(v.text).empty())
            break;
        seeded_probes s{"string", v.text, {}};
        const auto starts_with = [](const std::string& query) {
            return value_rule([folded = fhir::normalize_search_string(query)](const fhir::search_value& w) {
                return w.normalized.starts_with(folded);
            });
        };
        s.probes.push_back({p.code, escape(v.text), starts_with(v.text), {}});
        if (const std::string start = first_code_points(v.text, 3);
            code_points(v.text) > 3 && !fhir::normalize_search_string(start).empty())
            s.probes.push_back({p.code, escape(start), starts_with(start), {}});
        s.probes.push_back({p.code + ":exact", escape(v.text),
                            [text = v.text](const fhir::search_value& w) { return w.text == text; }, {}});
        if (const std::string middle = first_code_points(v.text, 4, 1);
            code_points(v.text) > 2 && !fhir::normalize_search_string(middle).empty())
            s.probes.push_back({p.code + ":contains", escape(middle),
                                [folded = fhir::normalize_search_string(middle)](const fhir::search_value& w) {
                                    return w.normalized.find(folded) != std::string::npos;
                                },
                                {}});
        out.push_back(std::move(s));
        break;
    }
    case search_param_type::date: {
        const auto anchor = date_anchor(v);
        if (!anchor)
            break;
        const auto day = day_text(anchor->first);
        const auto instant = instant_text(anchor->first);
        if (!day || !instant)
            break;
        const std::int64_t day_begin = floor_div(anchor->first, micros_per_day) * micros_per_day;
        const fhir::time_range day_range{day_begin, day_begin + micros_per_day};
        const fhir::time_range instant_range{anchor->first, anchor->first + 1};
        seeded_probes s{"date", *instant, {}};
        static const std::pair<const char*, search_prefix> prefixes[] = {
            {"eq", search_prefix::eq}, {"ne", search_prefix::ne}, {"gt", search_prefix::gt}, {"lt", search_prefix::lt},
            {"ge", search_prefix::ge}, {"le", search_prefix::le}, {"sa", search_prefix::sa}, {"eb", search_prefix::eb}};
        for (const auto& [text, prefix] : prefixes)
            s.probes.push_back({p.code, text + *day,
                                [prefix = prefix, day_range](const fhir::search_value& w) {
                                    return date_matches(prefix, w.range, day_range);
                                },
                                day_range});
        for (const auto& [text, prefix] : {std::pair{"ge", search_prefix::ge}, std::pair{"lt", search_prefix::lt}})
            s.probes.push_back({p.code, text + *instant,
                                [prefix = prefix, instant_range](const fhir::search_value& w) {
                                    return date_matches(prefix, w.range, instant_range);
                                },
                                instant_range});
        out.push_back(std::move(s));
        break;
    }
    case search_param_type::reference: {
        if (auto literal = reference_literal(v, &p)) {
            seeded_probes s{"reference", literal->first, {}};
            s.probes.push_back({p.code, literal->first, literal->second, {}});
            s.probes.push_back({p.code, v.id, [id = v.id](const fhir::search_value& w) { return w.id == id; }, {}});
            out.push_back(std::move(s));
        }
        if (!v.url.empty() && (v.url.starts_with("urn:") || v.url.find("://") != std::string::npos)) {
            seeded_probes s{"reference url", v.url, {}};
            s.probes.push_back({p.code, escape(v.url), [url = v.url](const fhir::search_value& w) { return w.url == url; }, {}});
            out.push_back(std::move(s));
        }
        if (!v.code_value.empty()) {
            const std::string value = v.has_system ? escape(v.system) + "|" + escape(v.code_value) : escape(v.code_value);
            seeded_probes s{"reference identifier", value, {}};
            s.probes.push_back({p.code + ":identifier", value,
                                [has_system = v.has_system, system = v.system, code = v.code_value](const fhir::search_value& w) {
                                    return w.code_value == code && (!has_system || (w.has_system && w.system == system));
                                },
                                {}});
            out.push_back(std::move(s));
        }
        break;
    }
    case search_param_type::quantity:
    case search_param_type::number: {
        seeded_probes s{"number", v.text + "|" + v.system + "|" + v.code_value + "|" + v.unit, {}};
        fhir::search_value bare = v; // a number has no units
        if (p.type == search_param_type::number) {
            bare.has_system = false;
            bare.system.clear();
            bare.code_value.clear();
            bare.unit.clear();
        }
        for (const std::string prefix : {"", "ge", "lt"})
            if (auto q = quantity_eq(bare, prefix))
                s.probes.push_back({p.code, q->first, q->second, {}});
        if (!s.probes.empty())
            out.push_back(std::move(s));
        break;
    }
    case search_param_type::uri: {
        if (v.text.empty())
            break;
        seeded_probes s{"uri", v.text, {}};
        s.probes.push_back({p.code, escape(v.text), [text = v.text](const fhir::search_value& w) { return w.text == text; }, {}});
        out.push_back(std::move(s));
        break;
    }
    case search_param_type::composite: {
        if (v.components.size() != 2 || p.components.size() != 2)
            break;
        const fhir::search_value& a = v.components[0];
        const fhir::search_value& b = v.components[1];
        std::optional<std::pair<std::string, value_rule>> first;
        if (p.components[0].type == search_param_type::token)
            first = token_system_code(a);
        else if (p.components[0].type == search_param_type::reference)
            first = reference_literal(a, nullptr);
        std::optional<std::pair<std::string, value_rule>> second;
        switch (p.components[1].type) {
        case search_param_type::token: second = token_system_code(b); break;
        case search_param_type::quantity: second = quantity_eq(b); break;
        case search_param_type::date:
            if (const auto anchor = date_anchor(b); anchor && day_text(anchor->first)) {
                const std::int64_t day_begin = floor_div(anchor->first, micros_per_day) * micros_per_day;
                const fhir::time_range day_range{day_begin, day_begin + micros_per_day};
                // From its start onwards (ge), or for an open start up to its end (le): never empty.
                const search_prefix prefix = anchor->second ? search_prefix::ge : search_prefix::le;
                second = std::make_pair((anchor->second ? "ge" : "le") + *day_text(anchor->first),
                                        value_rule([prefix, day_range](const fhir::search_value& w) {
                                            return date_matches(prefix, w.range, day_range);
                                        }));
            }
            break;
        case search_param_type::string:
            if (const std::string start = first_code_points(b.text, 3); !fhir::normalize_search_string(start).empty())
                second = std::make_pair(escape(start),
                                        value_rule([folded = fhir::normalize_search_string(start)](const fhir::search_value& w) {
                                            return w.normalized.starts_with(folded);
                                        }));
            break;
        default: break;
        }
        if (!first || !second)
            break;
        const std::string value = first->first + "$" + second->first;
        seeded_probes s{"composite", value, {}};
        s.probes.push_back({p.code, value,
                            [m0 = first->second, m1 = second->second](const fhir::search_value& w) {
                                return w.components.size() == 2 && m0(w.components[0]) && m1(w.components[1]);
                            },
                            {}});
        out.push_back(std::move(s));
        break;
    }
    case search_param_type::special: break;
    }
    return out;
}

/// How many seeds of each kind a parameter is searched with: the first, the middle and the last of
/// its distinct seeds, so common and rare values both come up.
constexpr std::size_t seeds_per_kind = 3;

std::vector<const seeded_probes*> spread(const std::vector<const seeded_probes*>& seeds) {
    if (seeds.size() <= seeds_per_kind)
        return seeds;
    return {seeds.front(), seeds[seeds.size() / 2], seeds.back()};
}

std::string some_of(const id_set& ids) {
    std::string text;
    std::size_t shown = 0;
    for (const std::string& id : ids) {
        if (shown++ == 8) {
            text += " ... (" + std::to_string(ids.size()) + " in all)";
            break;
        }
        text += " " + id;
    }
    return text.empty() ? " (none)" : text;
}

/// Listed parameters no fixture resource can give a value to, each with the reason, as
/// {{type, code}, reason}. Coverage is honest: the test fails if one of these is exercised after all
/// (then it leaves this table) or if any other listed parameter is not. Empty: a hand-written resource
/// (search_fixture_resources.hpp) gives a value to every parameter no accepted example does.
const std::map<std::pair<std::string, std::string>, std::string> not_exercisable = {
    {{"AppointmentResponse", "location"},
     "AppointmentResponse.actor is 0..1 and must be the citizen here (a response names its citizen), so never a Location"},
    {{"AppointmentResponse", "practitioner"},
     "AppointmentResponse.actor is 0..1 and must be the citizen here (a response names its citizen), so never a Practitioner"},
    {{"Contract", "patient"}, "a Contract is outside every citizen's record here, so it never names a Patient"},
    {{"GuidanceResponse", "patient"}, "a GuidanceResponse is outside every citizen's record here, so it never names a Patient"},
    {{"MedicationKnowledge", "monograph"},
     "a monograph's source is a DocumentReference or Media, a citizen's item, which a MedicationKnowledge never names here"},
};

} // namespace

namespace doctest {
template <>
struct StringMaker<id_set> {
    static String convert(const id_set& ids) {
        std::string text = "{";
        for (const std::string& id : ids)
            text += (text.size() > 1 ? ", " : "") + id;
        return (text + "}").c_str();
    }
};
template <>
struct StringMaker<std::vector<std::string>> {
    static String convert(const std::vector<std::string>& ids) {
        std::string text = "[";
        for (const std::string& id : ids)
            text += (text.size() > 1 ? ", " : "") + id;
        return (text + "]").c_str();
    }
};
} // namespace doctest

TEST_CASE("search parameters: every parameter the CapabilityStatement lists finds exactly the resources "
          "its values match") {
    example_store& fixture = shared_fixture();
    // The fixture is what the conformance suite writes: every official example but the refused ones.
    MESSAGE(fixture.examples_written() << " official examples written, " << fixture.refused().size()
                                       << " refused by prepare_resource, " << fixture.resources().size()
                                       << " resources in all (with meta copies and hand-written ones)");
    // The 26 that tests/fhir_model/resource_test.cpp lists as refused, with their reasons.
    std::string refused;
    for (const std::string& file : fixture.refused())
        refused += " " + file;
    CHECK_MESSAGE(fixture.refused().size() == 73, "refused:" << refused);

    const auto started = std::chrono::steady_clock::now();
    std::size_t listed = 0, probes_run = 0, mismatches = 0, proper_subsets = 0;
    std::vector<std::string> exercised, missing, stale_exemptions;
    for (std::string_view type_view : fhir::supported_types()) {
        const std::string type(type_view);
        // AuditEvent lists its own three parameters, answered from the audit log (gateway/interactions/audit_event.cpp).
        if (type == "AuditEvent")
            continue;
        for (const fhir::search_parameter* p : fhir::search_parameters_for(type)) {
            ++listed;
            const std::string label = type + "?" + p->code;
            CAPTURE(label);
            const auto resources = fixture.values_of(type, p->code);

            // Every seed the stored values give, deduplicated, grouped by kind.
            std::map<std::string, std::map<std::string, seeded_probes>> by_kind;
            for (const auto& [resource, values] : resources)
                for (const fhir::search_value* v : values)
                    for (seeded_probes& s : probes_for(*p, *v))
                        by_kind[s.kind].try_emplace(s.seed, std::move(s));

            bool covered = false;
            for (const auto& [kind, seeds] : by_kind) {
                std::vector<const seeded_probes*> all;
                for (const auto& [seed, s] : seeds)
                    all.push_back(&s);
                for (const seeded_probes* s : spread(all)) {
                    for (const probe& pr : s->probes) {
                        id_set expected;
                        for (const auto& [resource, values] : resources)
                            if (std::any_of(values.begin(), values.end(), [&](const fhir::search_value* v) { return pr.matches(*v); }))
                                expected.insert(resource->id);
                        ++probes_run;
                        const std::string query = type + "?" + pr.name + "=" + pr.value;
                        search_run run = run_search(fixture.db(), type, {{pr.name, pr.value}});
                        if (run.failure) {
                            ++mismatches;
                            CHECK_MESSAGE(false, query << " failed: " << describe(*run.failure));
                            continue;
                        }
                        // The oracle's date rule assumes the search value's range; the parser must agree.
                        if (pr.date_range && !run.query.clauses.empty() && !run.query.clauses[0].any_of.empty()) {
                            const fhir::time_range& parsed = run.query.clauses[0].any_of[0].range;
                            CHECK_MESSAGE((parsed.begin == pr.date_range->begin && parsed.end == pr.date_range->end),
                                          query << ": the parser's range is not the oracle's");
                        }
                        const id_set found(run.ids.begin(), run.ids.end());
                        if (found.size() != run.ids.size())
                            CHECK_MESSAGE(false, query << " gave an id twice");
                        if (found != expected) {
                            ++mismatches;
                            id_set absent, extra;
                            std::set_difference(expected.begin(), expected.end(), found.begin(), found.end(),
                                                std::inserter(absent, absent.end()));
                            std::set_difference(found.begin(), found.end(), expected.begin(), expected.end(),
                                                std::inserter(extra, extra.end()));
                            CHECK_MESSAGE(false, query << ": expected " << expected.size() << ", found " << found.size()
                                                       << "\n  missing:" << some_of(absent)
                                                       << "\n  unexpected:" << some_of(extra));
                        } else {
                            CHECK_MESSAGE(run.total == std::optional<std::int64_t>(static_cast<std::int64_t>(expected.size())),
                                          query << ": _total=accurate is not the number of matches");
                            covered = covered || !expected.empty();
                            proper_subsets += !expected.empty() && expected.size() < resources.size();
                        }
                    }
                }
            }
            const bool exempt = not_exercisable.contains({type, p->code});
            if (covered)
                exercised.push_back(label);
            if (covered && exempt)
                stale_exemptions.push_back(label);
            if (!covered && !exempt)
                missing.push_back(label);
        }
    }
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    MESSAGE(listed << " parameters listed, " << exercised.size() << " exercised with a non-empty expected set, "
                   << not_exercisable.size() << " exempt; " << probes_run << " searches (" << proper_subsets
                   << " finding some but not all of their type), " << mismatches << " wrong, in " << elapsed << " ms");
    std::string missing_text;
    for (const std::string& label : missing)
        missing_text += "\n  " + label;
    CHECK_MESSAGE(missing.empty(), missing.size() << " listed parameters were not exercised:" << missing_text);
    std::string stale_text;
    for (const std::string& label : stale_exemptions)
        stale_text += "\n  " + label;
    CHECK_MESSAGE(stale_exemptions.empty(), "exercised after all; take them out of not_exercisable:" << stale_text);
    CHECK(mismatches == 0);
}

// --- hand-checked cases: the expected sets are written out from the data (Patient examples by their
// example id, turned into the NHS number the fixture gave them) ------------------------------------

namespace {

/// The NHS numbers of these Patient examples, plus any hand-written NHS numbers given as such.
id_set patients(std::initializer_list<std::string> example_ids, std::initializer_list<std::string> nhs_numbers = {}) {
    id_set out(nhs_numbers.begin(), nhs_numbers.end());
    for (const std::string& id : example_ids)
        out.insert(shared_fixture().nhs_of(id));
    return out;
}

std::vector<std::string> patients_in_order(std::initializer_list<std::string> example_ids) {
    std::vector<std::string> out;
    for (const std::string& id : example_ids)
        out.push_back(shared_fixture().nhs_of(id));
    return out;
}

id_set all_of_type(const std::string& type) {
    id_set out;
    for (const stored_resource& r : shared_fixture().resources())
        if (r.type == type)
            out.insert(r.id);
    return out;
}

id_set without(id_set all, const id_set& removed) {
    for (const std::string& id : removed)
        all.erase(id);
    return all;
}

} // namespace

TEST_CASE("search parameters: :missing=true finds the resources without a value, :missing=false those with one") {
    const id_set no_gender = patients({"ihe-pcd"}, {sf::quillfeather_nhs});
    CHECK(ids_of("Patient", {{"gender:missing", "true"}}) == no_gender);
    CHECK(ids_of("Patient", {{"gender:missing", "false"}}) == without(all_of_type("Patient"), no_gender));
    CHECK(ids_of("Patient", {{"birthdate:missing", "true"}}) ==
          patients({"dicom", "ihe-pcd", "infant-fetal", "pat1", "pat2"}));
    // Only the meta copies and the hand-written Patient carry a tag.
    CHECK(ids_of("Observation", {{"_tag:missing", "false"}}) == id_set{shared_fixture().meta_copy("Observation")});
    CHECK(ids_of("Patient", {{"_tag:missing", "false"}}) == id_set{sf::quill_nhs});
}

TEST_CASE("search parameters: :not finds every resource without the code, including those with no value") {
    const id_set not_male = patients({"animal", "genetics-example1", "infant-mom", "infant-twin-1", "mom", "pat4",
                                      "proband", "pat2", "ihe-pcd"},
                                     {sf::quillfeather_nhs, sf::quill_nhs});
    CHECK(ids_of("Patient", {{"gender:not", "male"}}) == not_male);
    CHECK(ids_of("Patient", {{"gender:not", "male"}, {"gender:not", "female"}}) ==
          patients({"pat2", "ihe-pcd"}, {sf::quillfeather_nhs, sf::quill_nhs}));
    // :not of a code no Patient has: every Patient.
    CHECK(ids_of("Patient", {{"gender:not", "no-such-gender"}}) == all_of_type("Patient"));
}

TEST_CASE("search parameters: strings match a folded prefix by default, the exact text with :exact, "
          "a folded substring with :contains") {
    CHECK(ids_of("Patient", {{"family", "chalmers"}}) == patients({"example"}));
    CHECK(ids_of("Patient", {{"family", "CHALM"}}) == patients({"example"}));
    CHECK(ids_of("Patient", {{"family:exact", "Chalmers"}}) == patients({"example"}));
    CHECK(ids_of("Patient", {{"family:exact", "chalmers"}}).empty());
    CHECK(ids_of("Patient", {{"family:exact", "Chalm"}}).empty());
    // Accents fold for the default and :contains, never for :exact.
    CHECK(ids_of("Patient", {{"family", "angstrom"}}) == id_set{sf::quill_nhs});
    CHECK(ids_of("Patient", {{"family:exact", "Ångström-Quill"}}) == id_set{sf::quill_nhs});
    CHECK(ids_of("Patient", {{"family:exact", "Angstrom-Quill"}}).empty());
    // "Quill" starts one family name and is inside the other.
    CHECK(ids_of("Patient", {{"family", "quill"}}) == id_set{sf::quillfeather_nhs});
    CHECK(ids_of("Patient", {{"family:contains", "quill"}}) == id_set{sf::quill_nhs, sf::quillfeather_nhs});
    CHECK(ids_of("Patient", {{"family:contains", "STRÖM"}}) == id_set{sf::quill_nhs});
    CHECK(ids_of("Patient", {{"family:contains", "almer"}}) == patients({"example"}));
}

TEST_CASE("search parameters: date prefixes compare ranges, so a partial date is a range") {
    // Patient-example and -ch-example: 1974-12-25; 9693632109: "1974"; 9912003888: 1974-12-24.
    CHECK(ids_of("Patient", {{"birthdate", "1974"}}) ==
          patients({"example", "ch-example"}, {sf::quill_nhs, sf::quillfeather_nhs}));
    CHECK(ids_of("Patient", {{"birthdate", "1974-12"}}) == patients({"example", "ch-example"}, {sf::quillfeather_nhs}));
    CHECK(ids_of("Patient", {{"birthdate", "1974-12-25"}}) == patients({"example", "ch-example"}));
    CHECK(ids_of("Patient", {{"birthdate", "eq1974-12-25"}}) == patients({"example", "ch-example"}));
    // ge: the day itself, or anything reaching past it: the year 1974 does (it ends 1975-01-01), the
    // 24th does not.
    const id_set later = patients({"animal", "infant-mom", "infant-twin-1", "infant-twin-2", "newborn", "pat3", "pat4"});
    id_set from_25th = later;
    from_25th.merge(patients({"example", "ch-example"}, {sf::quill_nhs}));
    CHECK(ids_of("Patient", {{"birthdate", "ge1974-12-25"}}) == from_25th);
    CHECK(ids_of("Patient", {{"birthdate", "gt1974-12-24"}}) == from_25th);
    // lt: anything starting before the day: the year 1974 does.
    const id_set earlier = patients({"f001", "f201", "genetics-example1", "glossy", "mom", "proband", "xcda", "xds"});
    id_set before_25th = earlier;
    before_25th.merge(id_set{sf::quill_nhs, sf::quillfeather_nhs});
    CHECK(ids_of("Patient", {{"birthdate", "lt1974-12-25"}}) == before_25th);
    // sa / eb: wholly after / before the year.
    CHECK(ids_of("Patient", {{"birthdate", "sa1974"}}) == later);
    CHECK(ids_of("Patient", {{"birthdate", "eb1974"}}) == earlier);
    // ne: not within 1974-12-25 (and having a birth date).
    CHECK(ids_of("Patient", {{"birthdate", "ne1974-12-25"}}) ==
          without(without(all_of_type("Patient"), patients({"example", "ch-example"})),
                  patients({"dicom", "ihe-pcd", "infant-fetal", "pat1", "pat2"})));
    // Two clauses are AND: a range.
    CHECK(ids_of("Patient", {{"birthdate", "ge1974-01-01"}, {"birthdate", "le1974-12-31"}}) ==
          patients({"example", "ch-example"}, {sf::quill_nhs, sf::quillfeather_nhs}));
}

TEST_CASE("search parameters: uri :below matches by prefix, the plain value only exactly") {
    CHECK(ids_of("Observation", {{"_profile:below", "https://caregate.test/fhir"}}) == id_set{shared_fixture().meta_copy("Observation")});
    CHECK(ids_of("Observation", {{"_profile:below", sf::meta_profile_base + "fixture-Observation"}}) ==
          id_set{shared_fixture().meta_copy("Observation")});
    CHECK(ids_of("Observation", {{"_profile", "https://caregate.test/fhir"}}).empty());
    CHECK(ids_of("Observation", {{"_profile", sf::meta_profile_base + "fixture-Observation"}}) == id_set{shared_fixture().meta_copy("Observation")});
    CHECK(ids_of("Device", {{"url:below", "https://caregate.test/devices"}}) == id_set{"caregate-fixture-device"});
    CHECK(ids_of("Device", {{"url:below", "https://caregate.test/devices/infusion-pump-1/x"}}).empty());
}

TEST_CASE("search parameters: a logical reference is found by :identifier, and by the citizen it names") {
    CHECK(ids_of("Observation", {{"subject:identifier", "https://fhir.nhs.uk/Id/nhs-number|" + sf::quill_nhs}}) ==
          id_set{"caregate-fixture-obs"});
    CHECK(ids_of("Observation", {{"performer:identifier", "https://fhir.nhs.uk/Id/ods-organization-code|X26"}}) ==
          id_set{"caregate-fixture-obs"});
    CHECK(ids_of("Observation", {{"performer:identifier", "X26"}}) == id_set{"caregate-fixture-obs"});
    CHECK(ids_of("Observation", {{"performer:identifier", "https://fhir.nhs.uk/Id/nhs-number|X26"}}).empty());
    // prepare_resource adds Patient/{nhs} beside the NHS-number identifier.
    CHECK(ids_of("Observation", {{"subject", "Patient/" + sf::quill_nhs}}) == id_set{"caregate-fixture-obs"});
    CHECK(ids_of("Observation", {{"patient", sf::quill_nhs}}) == id_set{"caregate-fixture-obs"});
}

TEST_CASE("search parameters: chains follow references to what they name, two levels deep") {
    CHECK(ids_of("Observation", {{"subject:Patient.family", "angstrom"}}) == id_set{"caregate-fixture-obs"});
    CHECK(ids_of("Observation", {{"subject:Patient.organization.name", "quillfeather"}}) ==
          id_set{"caregate-fixture-obs"});
    CHECK(ids_of("Observation", {{"subject:Patient.organization.identifier",
                                  "https://fhir.nhs.uk/Id/ods-organization-code|X26"}}) == id_set{"caregate-fixture-obs"});
    CHECK(ids_of("Observation", {{"subject:Patient.organization.name", "no-such-organisation"}}).empty());
    CHECK(ids_of("DiagnosticReport", {{"encounter:Encounter.subject:Patient.birthdate", "1974"}}) ==
          id_set{"caregate-fixture-report"});
    CHECK(ids_of("DiagnosticReport", {{"encounter:Encounter.subject:Patient.birthdate", "1975"}}).empty());
}

TEST_CASE("search parameters: _has finds what other resources reference") {
    CHECK(ids_of("Patient", {{"_has:Observation:subject:code", "https://caregate.test/CodeSystem/fixture|fixture-observation"}}) ==
          id_set{sf::quill_nhs});
    CHECK(ids_of("Patient", {{"_has:Observation:patient:_id", "caregate-fixture-obs"}}) == id_set{sf::quill_nhs});
    CHECK(ids_of("Patient", {{"_has:Immunization:patient:reaction-date", "2021-10-02"}}) == id_set{sf::quill_nhs});
    CHECK(ids_of("Patient", {{"_has:Immunization:patient:reaction-date", "2021-10-03"}}).empty());
    CHECK(ids_of("Organization", {{"_has:Patient:organization:family", "angstrom"}}) == id_set{"caregate-fixture-org"});
}

TEST_CASE("search parameters: _sort orders by the key, ties and missing values (last) by write order in the "
          "first key's direction, across pages") {
    // Born from 1990: infant-mom 1995-10-12, animal 2010-03-23, the twins 2017-05-15 (twin-1 written
    // first), newborn 2017-09-05. Ties go by write order in the first key's direction.
    const auto ascending = patients_in_order({"infant-mom", "animal", "infant-twin-1", "infant-twin-2", "newborn"});
    const auto descending = patients_in_order({"newborn", "infant-twin-2", "infant-twin-1", "animal", "infant-mom"});
    CHECK(ids_in_order("Patient", {{"birthdate", "ge1990"}, {"_sort", "birthdate"}}) == ascending);
    CHECK(ids_in_order("Patient", {{"birthdate", "ge1990"}, {"_sort", "-birthdate"}}) == descending);
    CHECK(ids_in_order("Patient", {{"birthdate", "ge1990"}, {"_sort", "birthdate"}}, 2) == ascending);
    CHECK(ids_in_order("Patient", {{"birthdate", "ge1990"}, {"_sort", "-birthdate"}}, 2) == descending);
    // Strings sort by their folded text; Patients without a birth date come last either way.
    CHECK(ids_in_order("Patient", {{"family:contains", "quill"}, {"_sort", "family"}}) ==
          std::vector<std::string>{sf::quill_nhs, sf::quillfeather_nhs});
    CHECK(ids_in_order("Patient", {{"family:contains", "quill"}, {"_sort", "-family"}}) ==
          std::vector<std::string>{sf::quillfeather_nhs, sf::quill_nhs});
    std::vector<std::string> with_missing{sf::quillfeather_nhs};
    for (const std::string& id : patients_in_order({"pat1", "pat2"}))
        with_missing.push_back(id);
    CHECK(ids_in_order("Patient", {{"family", "donald,quillfeather"}, {"_sort", "birthdate"}}) == with_missing);
    // Descending: the missing ones still last, among themselves newest written first.
    std::vector<std::string> with_missing_descending{with_missing.front()};
    with_missing_descending.insert(with_missing_descending.end(), with_missing.rbegin(), with_missing.rend() - 1);
    CHECK(ids_in_order("Patient", {{"family", "donald,quillfeather"}, {"_sort", "-birthdate"}}) == with_missing_descending);
    CHECK(ids_in_order("Patient", {{"family", "donald,quillfeather"}, {"_sort", "-birthdate"}}, 1) ==
          with_missing_descending);
}
