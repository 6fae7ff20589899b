// Setting the server's provenance marks (contribution.hpp) on every write, and marking a patient's or
// a carer's contribution, on the json layer's DOM (json.hpp) so that numbers keep their text and members their
// order, as patch.cpp does. Not the decision whether the caller may write, nor validation: the result
// goes through prepare_resource like any other body.
//
// Design notes:
// 1. All or nothing: the checks that refuse (someone else named) run over the DOM before anything is
//    changed, and a refusal returns no text.
// 2. Only the root resource is marked: a contained resource is part of the contribution, not another.
// 3. A value of the wrong JSON shape is neither marked nor refused here: validation refuses it with
//    the expression the client expects, and a refused body is never stored.
// 4. The marks are the server's: whatever a client sends that looks like one (is_marker_coding,
//    is_marker_source: any case, any spelling of the words, with or without the system, in meta.tag
//    or meta.security) is taken out, and the server's own are put in only for a contribution. Marking
//    what is marked already changes nothing: the server's tag keeps its place, so that a client
//    sending back what it read makes no new version.
#include "fhir_model/contribution.hpp"

#include "contribution_marks.hpp"
#include "fhir_model/nhs_number.hpp"
#include "json.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>

namespace caregate::fhir {

namespace {

using detail::find;
using detail::string_member;
using rapidjson::Value;
using allocator = rapidjson::Document::AllocatorType;

/// The elements of each type that say who made it: `list` ones are arrays that must include the
/// maker (the citizen, or the carer writing for them) and name nobody else; the others are single
/// References set to the maker when absent.
struct maker_element {
    std::string_view type;
    std::string_view name;
    bool list;
};

constexpr maker_element maker_elements[] = {
    {"Observation", "performer", true},
    {"Consent", "performer", true},
    {"Communication", "sender", false},
    {"QuestionnaireResponse", "author", false},
    {"QuestionnaireResponse", "source", false},
};

/// Who makes a contribution: the citizen, or the carer writing for them (by their RelatedPerson).
struct maker {
    std::string_view citizen;
    std::string_view carer;
};

/// Whether a Reference names the citizen: `reference` "Patient/{nhs}", or, without one, an identifier
/// of the NHS number system with their number. Both given must both name them.
bool names_citizen(const Value& reference, std::string_view nhs_number) {
    if (!reference.IsObject())
        return false;
    if (auto type = string_member(reference, "type"); type && *type != "Patient")
        return false;
    const auto literal = string_member(reference, "reference");
    const Value* identifier = find(reference, "identifier");
    if (!literal && identifier == nullptr)
        return false;
    constexpr std::string_view patient_prefix = "Patient/";
    if (literal && (!literal->starts_with(patient_prefix) || literal->substr(patient_prefix.size()) != nhs_number))
        return false;
    if (identifier != nullptr && (string_member(*identifier, "system") != nhs_number_system ||
                                  string_member(*identifier, "value") != nhs_number))
        return false;
    return true;
}

/// Whether a Reference names the carer: `reference` "RelatedPerson/{id}" (and `type`, if given,
/// RelatedPerson).
bool names_carer(const Value& reference, std::string_view related_person) {
    if (!reference.IsObject())
        return false;
    if (auto type = string_member(reference, "type"); type && *type != "RelatedPerson")
        return false;
    constexpr std::string_view prefix = "RelatedPerson/";
    const auto literal = string_member(reference, "reference");
    return literal && literal->starts_with(prefix) && literal->substr(prefix.size()) == related_person;
}

bool names_maker(const Value& reference, const maker& who) {
    return who.carer.empty() ? names_citizen(reference, who.citizen) : names_carer(reference, who.carer);
}

Value maker_reference(const maker& who, allocator& alloc) {
    Value reference(rapidjson::kObjectType);
    const std::string literal = who.carer.empty() ? "Patient/" + std::string(who.citizen)
                                                  : "RelatedPerson/" + std::string(who.carer);
    reference.AddMember("reference", detail::string_value(literal, alloc), alloc);
    return reference;
}

error someone_else(std::string_view type, std::string_view name, std::string expression, const maker& who) {
    const std::string element = std::string(type) + "." + std::string(name);
    return error::make(category::invalid, "business-rule",
                       who.carer.empty()
                           ? "a citizen contributes in their own name: " + element +
                                 " may name only the citizen (Patient/{NHS number}); the server fills it in when absent"
                           : "a carer contributes for the citizen in their own name: " + element +
                                 " may name only the carer (RelatedPerson/" + std::string(who.carer) +
                                 "); the server fills it in when absent",
                       std::move(expression));
}

/// Refuses a maker element that names someone else (design note 1); nothing is changed.
status check_maker(const Value& resource, const maker_element& element, const maker& who) {
    const Value* value = find(resource, element.name);
    if (value == nullptr)
        return {};
    const std::string path = std::string(element.type) + "." + std::string(element.name);
    if (!element.list) {
        if (value->IsObject() && !names_maker(*value, who))
            return someone_else(element.type, element.name, path, who);
        return {};
    }
    if (!value->IsArray())
        return {};
    for (rapidjson::SizeType i = 0; i < value->Size(); ++i)
        if ((*value)[i].IsObject() && !names_maker((*value)[i], who))
            return someone_else(element.type, element.name, path + "[" + std::to_string(i) + "]", who);
    return {};
}

/// Names the maker in a maker element that does not yet name them.
void fill_maker(Value& resource, const maker_element& element, const maker& who, allocator& alloc) {
    auto member = resource.FindMember(rapidjson::StringRef(element.name.data(), element.name.size()));
    if (member == resource.MemberEnd()) {
        Value added = maker_reference(who, alloc);
        if (element.list) {
            Value list(rapidjson::kArrayType);
            list.PushBack(added, alloc);
            added = std::move(list);
        }
        resource.AddMember(detail::string_value(element.name, alloc), added, alloc);
        return;
    }
    if (!element.list || !member->value.IsArray())
        return;
    Value& list = member->value;
    if (std::none_of(list.Begin(), list.End(), [&](const Value& item) { return names_maker(item, who); }))
        list.PushBack(maker_reference(who, alloc), alloc);
}

/// Letters and digits only, lower-cased: "Patient_Contributed" and "patient-contributed" alike.
std::string folded(std::string_view text) {
    std::string out;
    for (const char c : text)
        if (std::isalnum(static_cast<unsigned char>(c)))
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

/// The server's tag for a contribution of `kind` (not nobody): its code and display.
std::string_view tag_code(contributed_by kind) {
    return kind == contributed_by::carer ? carer_contributed_code : patient_contributed_code;
}
std::string_view tag_display(contributed_by kind) {
    return kind == contributed_by::carer ? carer_contributed_display : patient_contributed_display;
}

/// The server's own tag for `kind`, exactly: the one a contribution keeps.
bool is_contribution_tag(const Value& coding, contributed_by kind) {
    return string_member(coding, "system") == provenance_tag_system && string_member(coding, "code") == tag_code(kind);
}

/// A coding a reader could take for the server's provenance mark: of the server's provenance system
/// (any code), or whose code or display reads as the mark's in any case or spelling, in any system or
/// none.
bool is_marker_coding(const Value& coding) {
    if (!coding.IsObject())
        return false;
    std::string system = folded(string_member(coding, "system").value_or(""));
    for (std::string_view scheme : {"https", "http"}) // http: or https:, either spelling of the system
        if (system.starts_with(scheme)) {
            system.erase(0, scheme.size());
            break;
        }
    const std::string code = folded(string_member(coding, "code").value_or(""));
    const std::string display = folded(string_member(coding, "display").value_or(""));
    static const std::string marks[] = {folded(patient_contributed_code), folded(patient_contributed_display),
                                        folded(carer_contributed_code), folded(carer_contributed_display)};
    static const std::string own_system = folded(provenance_tag_system).substr(std::string_view("https").size());
    return system == own_system ||
           std::any_of(std::begin(marks), std::end(marks),
                       [&](const std::string& mark) { return code == mark || display == mark; });
}

/// A meta.source only the server may give: in the server's own namespace, or naming the patient
/// endpoint (in any case or spelling).
bool is_marker_source(std::string_view source) {
    const std::string text = folded(source);
    return text.find(folded(server_host)) != std::string::npos ||
           text.find("patientendpoint") != std::string::npos;
}

/// Whether `text` could hold a look-alike mark at all: none of the words the marks are made of, in
/// any case or spelling, and no escape that could spell them. Most providers' writes stop here, unparsed.
bool may_hold_marks(std::string_view text) {
    if (text.find("\\u") != std::string_view::npos)
        return true;
    const std::string words = folded(text);
    return words.find("contributed") != std::string::npos || words.find("caregate") != std::string::npos ||
           words.find("endpoint") != std::string::npos || words.find("provenance") != std::string::npos;
}

/// Takes every look-alike mark out of meta.tag, meta.security and meta.source (design note 4), but
/// the server's own tag for `kept` (a contribution keeps it in its place); an array or meta left
/// empty goes (FHIR JSON has no empty arrays or objects).
void clear_marks(Value& resource, contributed_by kept) {
    auto meta = resource.FindMember("meta");
    if (meta == resource.MemberEnd() || !meta->value.IsObject())
        return;
    Value& m = meta->value;
    for (const char* list : {"tag", "security"}) {
        auto codings = m.FindMember(list);
        if (codings == m.MemberEnd() || !codings->value.IsArray())
            continue;
        Value& items = codings->value;
        bool kept_own = false;
        for (rapidjson::SizeType i = 0; i < items.Size();) {
            const bool own = kept != contributed_by::nobody && !kept_own && std::string_view(list) == "tag" &&
                             is_contribution_tag(items[i], kept);
            kept_own = kept_own || own;
            if (!own && is_marker_coding(items[i]))
                items.Erase(items.Begin() + i);
            else
                ++i;
        }
        if (items.Empty())
            m.EraseMember(codings);
    }
    if (auto source = m.FindMember("source"); source != m.MemberEnd() && source->value.IsString() &&
                                              is_marker_source(detail::view(source->value)))
        m.EraseMember(source);
    if (m.ObjectEmpty())
        resource.EraseMember(meta);
}

/// meta.tag with the tag of `kind` once (the server's spelling of it), and meta.source the patient
/// endpoint.
void mark_meta(Value& resource, contributed_by kind, allocator& alloc) {
    auto meta = resource.FindMember("meta");
    if (meta == resource.MemberEnd()) {
        resource.AddMember("meta", Value(rapidjson::kObjectType), alloc);
        meta = resource.FindMember("meta");
    }
    if (!meta->value.IsObject())
        return;
    Value& m = meta->value;

    auto tags = m.FindMember("tag");
    if (tags == m.MemberEnd()) {
        m.AddMember("tag", Value(rapidjson::kArrayType), alloc);
        tags = m.FindMember("tag");
    }
    if (tags->value.IsArray()) {
        Value tag(rapidjson::kObjectType);
        tag.AddMember("system", detail::string_value(provenance_tag_system, alloc), alloc);
        tag.AddMember("code", detail::string_value(tag_code(kind), alloc), alloc);
        tag.AddMember("display", detail::string_value(tag_display(kind), alloc), alloc);
        auto own = std::find_if(tags->value.Begin(), tags->value.End(),
                                [&](const Value& coding) { return is_contribution_tag(coding, kind); });
        if (own != tags->value.End())
            *own = tag; // in its place, as the server writes it
        else
            tags->value.PushBack(tag, alloc);
    }

    if (auto source = m.FindMember("source"); source != m.MemberEnd())
        source->value = detail::string_value(patient_endpoint_source, alloc);
    else
        m.AddMember("source", detail::string_value(patient_endpoint_source, alloc), alloc);
}

} // namespace

namespace detail {

status set_provenance_marks(rapidjson::Document& doc, const provenance_marks& marks) {
    const auto type = string_member(doc, "resourceType");
    if (!doc.IsObject() || !type)
        return {}; // not a resource: prepare_resource says so
    const std::string type_name(*type); // the DOM changes below
    const maker who{marks.citizen, marks.carer};
    if (!marks.citizen.empty())
        for (const maker_element& element : maker_elements)
            if (element.type == type_name)
                if (auto checked = check_maker(doc, element, who); !checked)
                    return checked;
    auto& alloc = doc.GetAllocator();
    if (!marks.citizen.empty())
        for (const maker_element& element : maker_elements)
            if (element.type == type_name)
                fill_maker(doc, element, who, alloc);
    clear_marks(doc, marks.contribution);
    if (marks.contribution != contributed_by::nobody)
        mark_meta(doc, marks.contribution, alloc);
    return {};
}

} // namespace detail

result<std::string> mark_provenance(std::string_view resource, const provenance_marks& marks) {
    if (marks.citizen.empty() && marks.contribution == contributed_by::nobody && !may_hold_marks(resource))
        return std::string(resource);
    rapidjson::Document doc;
    if (auto parsed = detail::parse_json(resource, doc); !parsed)
        return std::move(parsed).failure();
    if (!doc.IsObject() || !string_member(doc, "resourceType"))
        return std::string(resource); // not a resource: prepare_resource says so
    if (auto marked = detail::set_provenance_marks(doc, marks); !marked)
        return std::move(marked).failure();
    return detail::write_json(doc);
}

result<std::string> mark_contribution(std::string_view resource, std::string_view nhs_number) {
    return mark_provenance(resource, provenance_marks{nhs_number, contributed_by::patient});
}

} // namespace caregate::fhir
