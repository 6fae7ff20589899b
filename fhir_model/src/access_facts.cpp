// The access facts of a root resource; see access_facts.hpp and fhir::access_facts in resource.hpp.
//
// Design notes:
// 1. Only the root resource counts: `contained` is never entered, so a contained Encounter or Consent
//    cannot create a relationship or an objection, nor a contained resource's labels restrict the root.
// 2. The DOM has been validated, so elements have their R4 JSON types; a value of another shape is
//    skipped here, never reported.
// 3. Facets grant and refuse alike: a rule granting part of a type needs every value of the elements
//    it names to be allowed (facets_satisfy), so no value may be left out, or a value the rule does
//    not allow could ride along unseen. A facet is "element=system|code"; a value that cannot be
//    named so exactly (a coding without code or system, a CodeableConcept with text only, a system
//    longer than max_facet_system_length, a code longer than max_facet_code_length, either holding
//    a line break) is kept as "element=|" or "element=|code", which no rule names (the policy refuses
//    a `where` entry without both). Only Coding and CodeableConcept elements give facets: a bare
//    `code` has no system to name. Labels only ever narrow, so none is left out; one the store
//    cannot keep is refused.
// 4. An organisation is named by ODS code only: a relative `Organization/{ODS}`, or an identifier with
//    ods_code_system. An absolute URL, a contained (#id) or urn:uuid reference, a reference to another
//    type, or a reference and identifier that disagree name no organisation (no link, so no access).
// 5. Whether a link is current is decided by status alone; whether an end in the past is still recent
//    needs "now", which this pure function does not have: the store decides it from `ended`. A period.end
//    is taken as the end of the range it covers ("2026-03" ends with March). A link whose status says it
//    is over and that has no period.end is recorded with active false and no `ended`, and so never counts:
//    a finished Encounter or EpisodeOfCare needs period.end to count as recent.
#include "access_facts.hpp"

#include "fhir_model/ods_code.hpp"

#include "fhir_model/date_time.hpp"
#include "json.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

namespace caregate::fhir::detail {

namespace {

/// Calls `each` for the items of an array member, or for a single member's value.
template <class Each>
void for_each_item(const rapidjson::Value* value, Each&& each) {
    if (value == nullptr)
        return;
    if (!value->IsArray()) {
        each(*value);
        return;
    }
    for (const auto& item : value->GetArray())
        each(item);
}

bool holds_line_break(std::string_view text) { return text.find_first_of("\r\n") != std::string_view::npos; }

// ---- labels ----

status collect_labels(const rapidjson::Value& resource, const type_def& type, std::vector<std::string>& out) {
    const rapidjson::Value* meta = find(resource, "meta");
    const rapidjson::Value* security = meta ? find(*meta, "security") : nullptr;
    if (security == nullptr || !security->IsArray())
        return {};
    for (rapidjson::SizeType i = 0; i < security->Size(); ++i) {
        const rapidjson::Value& coding = (*security)[i];
        if (!coding.IsObject())
            continue;
        const std::string_view code = string_member(coding, "code").value_or("");
        if (holds_line_break(code))
            return error::make(category::invalid, "value", "a security label's code cannot hold a line break",
                               type.name + ".meta.security[" + std::to_string(i) + "].code");
        std::string label(string_member(coding, "system").value_or("")); // a uri holds no whitespace
        label += '|';
        label += code;
        if (std::find(out.begin(), out.end(), label) == out.end())
            out.push_back(std::move(label));
    }
    return {};
}

// ---- facets ----

void collect_facets(const rapidjson::Value& resource, const type_def& type, std::vector<std::string>& out) {
    for (const auto& member : resource.GetObject()) {
        const std::string_view name = view(member.name);
        const member_def* def = type.member(name);
        if (def == nullptr || def->primitive_part)
            continue;
        const std::string_view type_name = def->type->name;
        if (type_name != "Coding" && type_name != "CodeableConcept")
            continue;
        auto keepable = [](std::string_view text, std::size_t longest) {
            return !text.empty() && text.size() <= longest && !holds_line_break(text);
        };
        // One value (design note 3): "name=system|code", or a form no rule names.
        auto add_coding = [&](const rapidjson::Value& coding) {
            const std::string_view system = string_member(coding, "system").value_or("");
            const std::string_view code = string_member(coding, "code").value_or("");
            std::string facet(name);
            facet += '=';
            const bool code_kept = keepable(code, max_facet_code_length);
            if (code_kept && keepable(system, max_facet_system_length)) {
                facet += system;
                facet += '|';
                facet += code;
            } else {
                facet += '|';
                if (code_kept)
                    facet += code;
            }
            out.push_back(std::move(facet));
        };
        for_each_item(&member.value, [&](const rapidjson::Value& item) {
            if (!item.IsObject())
                return;
            if (type_name == "Coding") {
                add_coding(item);
                return;
            }
            const rapidjson::Value* codings = find(item, "coding");
            if (codings == nullptr || !codings->IsArray() || codings->Empty()) {
                add_coding(rapidjson::Value(rapidjson::kObjectType)); // text only: a value naming no code
                return;
            }
            for (const auto& coding : codings->GetArray())
                if (coding.IsObject())
                    add_coding(coding);
        });
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
}

// ---- organisation links ----


/// The ODS code of the organisation a Reference names (design note 4), if it names one.
std::optional<std::string> referenced_ods(const rapidjson::Value& reference) {
    if (!reference.IsObject())
        return std::nullopt;
    if (auto type = string_member(reference, "type"); type && *type != "Organization")
        return std::nullopt;
    std::optional<std::string_view> literal, logical;
    if (auto text = string_member(reference, "reference")) {
        constexpr std::string_view prefix = "Organization/";
        if (!text->starts_with(prefix))
            return std::nullopt;
        // An id that is not an ODS code (a local id, or Type/id/_history/v) leaves the identifier to name it.
        if (const auto id = text->substr(prefix.size()); is_ods_code(id))
            literal = id;
    }
    if (const rapidjson::Value* identifier = find(reference, "identifier");
        identifier && string_member(*identifier, "system") == ods_code_system)
        if (auto value = string_member(*identifier, "value"); value && is_ods_code(*value))
            logical = value;
    if (literal && logical && *literal != *logical)
        return std::nullopt;
    if (literal)
        return std::string(*literal);
    if (logical)
        return std::string(*logical);
    return std::nullopt;
}

/// The end of `holder.period`, as the end of the range its precision covers.
std::optional<std::int64_t> period_end(const rapidjson::Value& holder) {
    const rapidjson::Value* period = find(holder, "period");
    const auto end = period ? string_member(*period, "end") : std::nullopt;
    if (!end)
        return std::nullopt;
    const auto range = parse_date_time(*end);
    return range ? std::optional<std::int64_t>(range->end) : std::nullopt;
}

/// The earlier of two ends, either of which may be unknown.
std::optional<std::int64_t> earlier(std::optional<std::int64_t> a, std::optional<std::int64_t> b) {
    if (a && b)
        return std::min(*a, *b);
    return a ? a : b;
}

/// What a resource's status says of the links it records.
enum class standing {
    none,    ///< no link: cancelled, entered in error, unknown, or not (yet) in force
    ongoing, ///< active
    over,    ///< ended, at period.end if given
};

struct status_standing {
    std::string_view status;
    standing meaning;
};

/// The standing for `resource`'s status in `table`; a status not listed links nothing.
standing standing_of(const rapidjson::Value& resource, std::initializer_list<status_standing> table) {
    const auto status = string_member(resource, "status");
    if (!status)
        return standing::none;
    for (const auto& row : table)
        if (row.status == *status)
            return row.meaning;
    return standing::none;
}

class link_collector {
public:
    explicit link_collector(std::vector<organisation_link>& out) : out_(out) {}

    /// A link of `kind` to the organisation `reference` names, if it names one.
    void add(const rapidjson::Value& reference, std::string_view kind, standing meaning,
             std::optional<std::int64_t> ended) {
        if (meaning == standing::none)
            return;
        auto ods = referenced_ods(reference);
        if (!ods)
            return;
        organisation_link link{std::move(*ods), std::string(kind), meaning == standing::ongoing, ended};
        const bool known = std::any_of(out_.begin(), out_.end(), [&](const organisation_link& other) {
            return other.ods == link.ods && other.kind == link.kind && other.active == link.active &&
                   other.ended == link.ended;
        });
        if (!known)
            out_.push_back(std::move(link));
    }

    void add_each(const rapidjson::Value* references, std::string_view kind, standing meaning,
                  std::optional<std::int64_t> ended) {
        for_each_item(references, [&](const rapidjson::Value& reference) { add(reference, kind, meaning, ended); });
    }

private:
    std::vector<organisation_link>& out_;
};

void collect_organisations(const rapidjson::Value& resource, std::string_view type,
                           std::vector<organisation_link>& out) {
    link_collector links(out);
    if (type == "Patient") {
        // Registration lasts as long as the Patient names the practice; references to Practitioners
        // and PractitionerRoles name no organisation.
        links.add_each(find(resource, "generalPractitioner"), "registered-gp", standing::ongoing, std::nullopt);
    } else if (type == "Encounter") {
        const standing meaning = standing_of(resource, {{"planned", standing::ongoing},
                                                        {"arrived", standing::ongoing},
                                                        {"triaged", standing::ongoing},
                                                        {"in-progress", standing::ongoing},
                                                        {"onleave", standing::ongoing},
                                                        {"finished", standing::over}});
        links.add_each(find(resource, "serviceProvider"), "encounter", meaning, period_end(resource));
    } else if (type == "EpisodeOfCare") {
        const standing meaning = standing_of(resource, {{"planned", standing::ongoing},
                                                        {"waitlist", standing::ongoing},
                                                        {"active", standing::ongoing},
                                                        {"onhold", standing::ongoing},
                                                        {"finished", standing::over}});
        links.add_each(find(resource, "managingOrganization"), "episode-of-care", meaning, period_end(resource));
    } else if (type == "CareTeam") {
        const standing meaning =
            standing_of(resource, {{"active", standing::ongoing}, {"inactive", standing::over}});
        const auto team_ended = period_end(resource);
        links.add_each(find(resource, "managingOrganization"), "care-team", meaning, team_ended);
        // A participant's own period.end ends its membership, even while the team goes on.
        for_each_item(find(resource, "participant"), [&](const rapidjson::Value& participant) {
            const auto ended = earlier(team_ended, period_end(participant));
            links.add_each(find(participant, "member"), "care-team", meaning, ended);
            links.add_each(find(participant, "onBehalfOf"), "care-team", meaning, ended);
        });
    }
}

// ---- objection ----

constexpr std::string_view consent_scope_system = "http://terminology.hl7.org/CodeSystem/consentscope";

/// A Consent, active, of scope `scope`, whose base provision denies.
bool records_denial(const rapidjson::Value& consent, std::string_view scope_code) {
    if (string_member(consent, "status") != "active")
        return false;
    const rapidjson::Value* provision = find(consent, "provision");
    if (provision == nullptr || string_member(*provision, "type") != "deny")
        return false;
    const rapidjson::Value* scope = find(consent, "scope");
    const rapidjson::Value* codings = scope ? find(*scope, "coding") : nullptr;
    if (codings == nullptr || !codings->IsArray())
        return false;
    return std::any_of(codings->Begin(), codings->End(), [scope_code](const rapidjson::Value& coding) {
        return string_member(coding, "system") == consent_scope_system && string_member(coding, "code") == scope_code;
    });
}

/// The stored item a literal reference names, as "Type/id": relative ("Condition/1"), of one version
/// ("Condition/1/_history/2"), or absolute ("https://host/fhir/Condition/1", this server's or
/// another's: the item is judged as the one held here by that type and id, so that no spelling of a
/// reference escapes the rule). Empty for logical references, fragments and unsupported types.
std::string stored_item(const rapidjson::Value& reference) {
    if (!reference.IsObject())
        return {};
    auto literal = reference.FindMember("reference");
    if (literal == reference.MemberEnd() || !literal->value.IsString())
        return {};
    std::string_view text(literal->value.GetString(), literal->value.GetStringLength());
    if (const auto history = text.find("/_history/"); history != std::string_view::npos)
        text = text.substr(0, history);
    const auto slash = text.rfind('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size())
        return {};
    const auto type_start = text.rfind('/', slash - 1);
    const std::string_view type = text.substr(type_start == std::string_view::npos ? 0 : type_start + 1,
                                              slash - (type_start == std::string_view::npos ? 0 : type_start + 1));
    if (type_start != std::string_view::npos && text.find("://") == std::string_view::npos)
        return {}; // a relative reference of more segments than Type/id
    if (!r4().is_supported(type))
        return {};
    return std::string(type) + "/" + std::string(text.substr(slash + 1));
}

/// The stored items a resource of a type that points_at_items points at (item_targets).
void collect_targets(const rapidjson::Value& resource, std::vector<std::string>& out) {
    auto add = [&](const rapidjson::Value& reference) {
        if (std::string item = stored_item(reference);
            !item.empty() && std::find(out.begin(), out.end(), item) == out.end())
            out.push_back(std::move(item));
    };
    if (auto targets = resource.FindMember("target"); targets != resource.MemberEnd() && targets->value.IsArray())
        for (const auto& target : targets->value.GetArray())
            add(target);
    if (auto context = resource.FindMember("securityContext"); context != resource.MemberEnd()) // a Binary's
        add(context->value);
    if (auto entities = resource.FindMember("entity"); entities != resource.MemberEnd() && entities->value.IsArray())
        for (const auto& entity : entities->value.GetArray())
            if (entity.IsObject())
                if (auto what = entity.FindMember("what"); what != entity.MemberEnd())
                    add(what->value);
}

} // namespace

} // namespace caregate::fhir::detail

namespace caregate::fhir {

bool facets_satisfy(const std::vector<std::string>& where, const std::vector<std::string>& facets) {
    for (std::size_t i = 0; i < where.size(); ++i) {
        const auto equals = where[i].find('=');
        if (equals == std::string::npos)
            return false; // not a facet: the policy refuses these, and an unknown shape grants nothing
        const std::string_view element(where[i].data(), equals + 1); // "category="
        // Each element is decided once, at its first entry.
        if (std::any_of(where.begin(), where.begin() + static_cast<std::ptrdiff_t>(i),
                        [&](const std::string& earlier) { return earlier.starts_with(element); }))
            continue;
        bool carried = false;
        for (const std::string& facet : facets) {
            if (!facet.starts_with(element))
                continue;
            carried = true;
            if (std::find(where.begin(), where.end(), facet) == where.end())
                return false;
        }
        if (!carried)
            return false;
    }
    return true;
}

} // namespace caregate::fhir

namespace caregate::fhir::detail {

result<access_facts> find_access_facts(const rapidjson::Value& resource, const type_def& type) {
    access_facts out;
    if (!resource.IsObject())
        return out;
    if (auto labelled = collect_labels(resource, type, out.labels); !labelled)
        return std::move(labelled).failure();
    collect_facets(resource, type, out.facets);
    collect_organisations(resource, type.name, out.organisations);
    out.objection = type.name == "Consent" && records_denial(resource, "patient-privacy");
    out.research_opt_out = type.name == "Consent" && records_denial(resource, "research");
    return out;
}

} // namespace caregate::fhir::detail

namespace caregate::fhir {

std::vector<std::string> item_targets(std::string_view type, std::string_view json) {
    std::vector<std::string> out;
    if (!points_at_items(type))
        return out;
    rapidjson::Document resource;
    resource.Parse(json.data(), json.size());
    if (resource.HasParseError() || !resource.IsObject())
        return out;
    detail::collect_targets(resource, out);
    return out;
}

} // namespace caregate::fhir
