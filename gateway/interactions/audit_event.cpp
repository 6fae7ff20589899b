// The audit log served as AuditEvent resources (https://hl7.org/fhir/R4/auditevent.html), read-only:
// read by id (the record's place in the hash chain) and search-type by patient, agent and date.
// Only roles the policy lets read AuditEvent get here; a role without all_citizens sees only the
// records of citizens it may open. On the patient-facing endpoint a citizen reads their own access
// log (who opened their record, from which organisation, when and why) and never another's. A reader
// who may not see every citizen's trail is shown only the resources it may see (as_shown).
#include "interactions/interactions.hpp"

#include "fhir_model/date_time.hpp"
#include "interactions/access_steps.hpp"
#include "http/error_response.hpp"
#include "storage/search.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <charconv>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace caregate::interactions {

namespace {

using fhir::category;
using fhir::error;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void text(json_writer& out, const char* key, std::string_view value) {
    out.Key(key);
    out.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void coding(json_writer& out, std::string_view system, std::string_view code) {
    out.StartObject();
    text(out, "system", system);
    text(out, "code", code);
    out.EndObject();
}

/// AuditEvent.action: C, R, U, D or E (execute: search, break-glass).
std::string_view action_code(std::string_view action) {
    if (action == "create")
        return "C";
    if (action == "read" || action == "vread" || action == "history")
        return "R";
    if (action == "update")
        return "U";
    if (action == "delete" || action == "erase")
        return "D";
    return "E";
}

/// A display for the HL7 PurposeOfUse codes the gateway records, so that an access log reads plainly.
std::string_view purpose_display(std::string_view purpose) {
    if (purpose == "TREAT")
        return "treatment";
    if (purpose == "ETREAT")
        return "emergency treatment (break-glass)";
    if (purpose == "PATRQT")
        return "patient requested";
    if (purpose == "FAMRQT")
        return "family requested";
    if (purpose == "PWATRNY")
        return "power of attorney";
    return {};
}

/// AuditEvent.outcome: 0 success, 4 minor failure (refused, not found), 8 serious failure.
/// A record without an outcome is the gateway's own note of what it did, not of a request answered:
/// the break-glass grant (access::guard::open_citizen), which was made.
std::string_view outcome_code(std::string_view outcome) {
    if (outcome == "success" || outcome.empty())
        return "0";
    if (outcome == "failed")
        return "8";
    return "4";
}

/// Who is reading the trail, as far as it changes what a record shows.
struct trail_reader {
    const access::organisation_register& organisations;
    /// `detail` is free text the interactions write: a search's parameters, a conditional write's
    /// criteria. It can name citizens other than the record's own (a search over two patients leaves
    /// one record per citizen, each carrying the whole query), so only a reader who may see every
    /// citizen's trail (all_citizens, information governance) is shown it; never a citizen.
    bool shows_detail = false;
};

/// Citizens and carers on the patient-facing endpoint are recorded with the organisation
/// `patient:{nhs}` (access::policy::citizen_profile): no ODS code and no Organization resource.
constexpr std::string_view patient_endpoint_prefix = "patient:";

/// The display name of the acting organisation: the organisations register's name for an ODS code,
/// the patient-facing endpoint for citizens and their carers; empty for an organisation no longer
/// listed.
std::string organisation_display(const storage::audit_record& r, const access::organisation_register& organisations) {
    if (r.organisation.starts_with(patient_endpoint_prefix))
        return r.role.starts_with("proxy:") ? "a carer acting for the citizen (patient-facing endpoint)"
                                            : "the citizen (patient-facing endpoint)";
    const access::organisation* org = organisations.find(r.organisation);
    return org ? org->name : std::string();
}

/// The resources a record names, as "Type/id" (system-level records already write them so).
std::vector<std::pair<std::string, std::string>> named_resources(const storage::audit_record& r) {
    std::vector<std::pair<std::string, std::string>> named;
    std::string_view ids = r.resource_ids;
    while (!ids.empty()) {
        const auto space = ids.find(' ');
        const std::string_view id = ids.substr(0, space);
        ids = space == std::string_view::npos ? std::string_view{} : ids.substr(space + 1);
        if (id.empty())
            continue;
        if (const auto slash = id.find('/'); slash != std::string_view::npos)
            named.emplace_back(std::string(id.substr(0, slash)), std::string(id.substr(slash + 1)));
        else
            named.emplace_back(r.resource_type, std::string(id));
    }
    return named;
}

void write_audit_event(json_writer& out, const storage::audit_record& r, const trail_reader& reader) {
    out.StartObject();
    text(out, "resourceType", "AuditEvent");
    text(out, "id", std::to_string(r.sequence));
    out.Key("type");
    coding(out, "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest");
    out.Key("subtype");
    out.StartArray();
    coding(out, "https://caregate.dev/fhir/CodeSystem/audit-action", r.action);
    out.EndArray();
    text(out, "action", action_code(r.action));
    text(out, "recorded", storage::store::format_instant(r.time));
    text(out, "outcome", outcome_code(r.outcome));
    if (!r.outcome.empty())
        text(out, "outcomeDesc", r.outcome);
    out.Key("purposeOfEvent");
    out.StartArray();
    out.StartObject();
    out.Key("coding");
    out.StartArray();
    const std::string_view purpose = r.purpose.empty() ? std::string_view("TREAT") : std::string_view(r.purpose);
    out.StartObject();
    text(out, "system", "http://terminology.hl7.org/CodeSystem/v3-ActReason");
    text(out, "code", purpose);
    if (auto display = purpose_display(purpose); !display.empty())
        text(out, "display", display);
    out.EndObject();
    out.EndArray();
    if (!r.break_glass_reason.empty())
        text(out, "text", r.break_glass_reason);
    out.EndObject();
    out.EndArray();
    out.Key("agent");
    out.StartArray();
    out.StartObject(); // the person (or system) acting
    if (!r.role.empty()) {
        out.Key("type");
        out.StartObject();
        out.Key("coding");
        out.StartArray();
        coding(out, "https://fhir.nhs.uk/CodeSystem/NHSJobRoleCode", r.role);
        out.EndArray();
        out.EndObject();
    }
    out.Key("who");
    out.StartObject();
    out.Key("identifier");
    out.StartObject();
    text(out, "system", "https://fhir.nhs.uk/Id/sds-user-id");
    text(out, "value", r.user);
    out.EndObject();
    out.EndObject();
    out.Key("requestor");
    out.Bool(true);
    out.EndObject();
    out.StartObject(); // their organisation, by ODS code and name
    const std::string organisation_name = organisation_display(r, reader.organisations);
    const bool patient_endpoint = r.organisation.starts_with(patient_endpoint_prefix);
    out.Key("who");
    out.StartObject();
    if (!patient_endpoint)
        text(out, "reference", "Organization/" + r.organisation);
    out.Key("identifier");
    out.StartObject();
    text(out, "system", patient_endpoint ? "https://caregate.dev/fhir/Id/patient-endpoint"
                                         : "https://fhir.nhs.uk/Id/ods-organization-code");
    text(out, "value", r.organisation);
    out.EndObject();
    if (!organisation_name.empty())
        text(out, "display", organisation_name);
    out.EndObject();
    if (!organisation_name.empty())
        text(out, "name", organisation_name);
    out.Key("requestor");
    out.Bool(false);
    out.EndObject();
    out.EndArray();
    out.Key("source");
    out.StartObject();
    out.Key("observer");
    out.StartObject();
    text(out, "display", "caregate");
    out.EndObject();
    out.EndObject();
    // What was touched: the citizen, each resource by reference, or the type alone when no resource
    // was (a search that found nothing, a refused request).
    const bool has_entities = !r.nhs_number.empty() || !r.resource_ids.empty() || !r.resource_type.empty();
    if (has_entities) {
        out.Key("entity");
        out.StartArray();
        if (!r.nhs_number.empty()) {
            out.StartObject();
            out.Key("what");
            out.StartObject();
            text(out, "reference", "Patient/" + r.nhs_number);
            out.EndObject();
            out.EndObject();
        }
        for (const auto& [type, id] : named_resources(r)) {
            out.StartObject();
            out.Key("what");
            out.StartObject();
            text(out, "reference", type + "/" + id);
            out.EndObject();
            out.EndObject();
        }
        if (r.resource_ids.empty() && !r.resource_type.empty()) {
            out.StartObject();
            out.Key("type");
            coding(out, "http://hl7.org/fhir/resource-types", r.resource_type);
            out.EndObject();
        }
        out.EndArray();
    }
    out.Key("extension");
    out.StartArray();
    out.StartObject(); // the hash chain, so a reviewer can check a record against the chain
    text(out, "url", "https://caregate.dev/fhir/StructureDefinition/audit-chain-hash");
    text(out, "valueString", r.hash);
    out.EndObject();
    out.StartObject();
    text(out, "url", "https://caregate.dev/fhir/StructureDefinition/request-id");
    text(out, "valueString", r.request_id.empty() ? "none" : r.request_id);
    out.EndObject();
    if (reader.shows_detail && !r.detail.empty()) {
        out.StartObject();
        text(out, "url", "https://caregate.dev/fhir/StructureDefinition/audit-detail");
        text(out, "valueString", r.detail);
        out.EndObject();
    }
    out.EndArray();
    out.EndObject();
}

std::string encode(std::string_view value) { return boost::urls::encode(value, boost::urls::unreserved_chars); }

/// A value of a reference parameter: "Patient/9000000009" or "9000000009" -> "9000000009".
std::string strip_type(std::string_view value, std::initializer_list<std::string_view> prefixes) {
    for (auto prefix : prefixes)
        if (value.starts_with(prefix))
            return std::string(value.substr(prefix.size()));
    return std::string(value);
}

/// Applies one date parameter (with its prefix) to [begin, end).
bool apply_date(std::string_view value, std::pair<storage::timestamp, storage::timestamp>& window) {
    std::string_view prefix = "eq";
    if (value.size() > 2 && std::isalpha(static_cast<unsigned char>(value[0])) &&
        std::isalpha(static_cast<unsigned char>(value[1]))) {
        prefix = value.substr(0, 2);
        value.remove_prefix(2);
    }
    auto range = fhir::parse_date_time(value);
    if (!range)
        return false;
    if (prefix == "eq") {
        window.first = std::max(window.first, range->begin);
        window.second = std::min(window.second, range->end);
    } else if (prefix == "ge") {
        window.first = std::max(window.first, range->begin);
    } else if (prefix == "gt") {
        window.first = std::max(window.first, range->end);
    } else if (prefix == "le") {
        window.second = std::min(window.second, range->end);
    } else if (prefix == "lt") {
        window.second = std::min(window.second, range->begin);
    } else {
        return false;
    }
    return true;
}

/// The caller may read the audit log at all, and, without all_citizens, only for citizens it may open.
bool permitted(context& ctx, http::responder& done) {
    ctx.where.type = "AuditEvent";
    return detail::check_permitted(ctx, access::action::read, done);
}

trail_reader reader_of(const context& ctx) {
    return {ctx.guard->organisations(), !ctx.who->is_citizen() && ctx.guard->rules().all_citizens(*ctx.who)};
}

/// The records as this reader may be shown them: who, when, why and whose record always, but only
/// the resources the reader may see as they are now (the visibility rule, decided by the store), so
/// that an access log never names an item withheld from its reader (an item hidden from the
/// patient, a V item of another organisation, one restricted since). A record whose every named
/// resource is withheld names no resource and no type. Readers who may see every citizen's trail
/// (information governance) are shown the records whole.
fhir::result<std::vector<storage::audit_record>> as_shown(context& ctx, std::vector<storage::audit_record> records) {
    if (!ctx.who->is_citizen() && ctx.guard->rules().all_citizens(*ctx.who))
        return records;
    std::vector<std::pair<std::string, std::string>> named;
    std::vector<std::size_t> first; // each record's first place in `named`
    for (const auto& record : records) {
        first.push_back(named.size());
        for (auto& resource : named_resources(record))
            named.push_back(std::move(resource));
    }
    first.push_back(named.size());
    const storage::search_visibility visibility = ctx.guard->search_visibility(*ctx.who, ctx.now, ctx.views);
    auto visible = ctx.store.visible_resources(visibility, named);
    if (!visible)
        return std::move(visible).failure();
    for (std::size_t r = 0; r < records.size(); ++r) {
        storage::audit_record& record = records[r];
        if (first[r] == first[r + 1])
            continue;
        std::string shown;
        for (std::size_t i = first[r]; i < first[r + 1]; ++i)
            if ((*visible)[i])
                shown += (shown.empty() ? "" : " ") + (record.resource_ids.find('/') == std::string::npos
                                                           ? named[i].second
                                                           : named[i].first + "/" + named[i].second);
        if (shown.empty())
            record.resource_type.clear();
        record.resource_ids = std::move(shown);
    }
    return records;
}

/// The audit log's search parameters: the only ones its search takes, each one the store's audit
/// query answers.
constexpr served_parameter audit_search_parameters[] = {
    {"patient", "reference", "The citizen whose record was accessed: Patient/{nhs}"},
    {"agent", "reference",
     "Who accessed: the user's SDS id or the organisation's ODS code, as a plain value or Practitioner/{id} or "
     "Organization/{ods}"},
    {"date", "date", "When: with the prefixes eq, ge, gt, le, lt"},
};

} // namespace

void describe_audit_event_search(served_type& row, const std::vector<std::string_view>&) {
    row.search_parameters.assign(std::begin(audit_search_parameters), std::end(audit_search_parameters));
}

void audit_event_read(context& ctx, http::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(http::error_response(ok.failure()));
    if (!permitted(ctx, done))
        return;
    std::int64_t sequence = 0;
    const std::string& id = ctx.where.id;
    auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), sequence);
    auto record = ec == std::errc{} && end == id.data() + id.size() && sequence > 0
                      ? ctx.store.audit_record_at(sequence)
                      : fhir::result<storage::audit_record>(detail::not_found("AuditEvent", id));
    if (!record)
        return done(http::error_response(record.failure().kind == category::not_found
                                             ? detail::not_found("AuditEvent", id)
                                             : record.failure()));
    if (ctx.who->is_citizen()) {
        // A citizen's access log is the records naming them (their token's NHS number), whether or
        // not the record holds them now; any other record answers as one that does not exist.
        if (record->nhs_number != ctx.who->citizen)
            return done(http::error_response(detail::not_found("AuditEvent", id)));
    } else if (!ctx.guard->rules().all_citizens(*ctx.who)) {
        if (record->nhs_number.empty())
            return done(http::error_response(detail::not_found("AuditEvent", id)));
        auto view = ctx.guard->open_citizen(*ctx.who, record->nhs_number, ctx.request_id, ctx.now, ctx.views, false);
        if (!view)
            return done(http::error_response(view.failure()));
        if (!view->open)
            return done(http::error_response(detail::not_found("AuditEvent", id)));
    }
    auto shown = as_shown(ctx, {std::move(*record)});
    if (!shown)
        return done(http::error_response(shown.failure()));
    rapidjson::StringBuffer buffer;
    json_writer out(buffer);
    write_audit_event(out, shown->front(), reader_of(ctx));
    http::response response = json_response({buffer.GetString(), buffer.GetSize()});
    detail::audit_access(ctx, "read", {}, "success", "AuditEvent/" + id);
    done(std::move(response));
}

void audit_event_search(context& ctx, http::responder& done) {
    if (auto ok = ctx.only_params({"patient", "agent", "date", "_count", "_page"}); !ok)
        return done(http::error_response(ok.failure()));
    if (!permitted(ctx, done))
        return;
    storage::store::audit_query query;
    query.count = ctx.config.default_count;
    std::pair<storage::timestamp, storage::timestamp> window{std::numeric_limits<storage::timestamp>::min(),
                                                             std::numeric_limits<storage::timestamp>::max()};
    bool has_window = false;
    std::string applied;
    auto add_applied = [&](std::string_view key, std::string_view value) {
        applied += (applied.empty() ? "" : "&") + std::string(key) + "=" + encode(value);
    };
    for (const auto& [key, value] : ctx.params) {
        if (key == "patient") {
            if (!query.nhs_number.empty())
                return done(http::error_response(error::make(category::unsupported, "not-supported",
                                                             "patient may be given once")));
            query.nhs_number = strip_type(value, {"Patient/"});
        } else if (key == "agent") {
            if (!query.agent.empty())
                return done(http::error_response(error::make(category::unsupported, "not-supported",
                                                             "agent may be given once")));
            query.agent = strip_type(value, {"Practitioner/", "Organization/"});
        } else if (key == "date") {
            if (!apply_date(value, window))
                return done(http::error_response(error::make(
                    category::malformed, "value", "date must be a FHIR date or dateTime with an optional prefix eq, ge, gt, le or lt")));
            has_window = true;
        } else if (key == "_count") {
            unsigned n = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc{} || end != value.data() + value.size() || n == 0)
                return done(http::error_response(error::make(category::malformed, "value", "_count must be at least 1")));
            query.count = std::min(n, ctx.config.max_count);
            continue;
        } else if (key == "_page") {
            std::int64_t cursor = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), cursor);
            if (ec != std::errc{} || end != value.data() + value.size() || cursor < 1)
                return done(http::error_response(error::make(category::malformed, "value", "_page is not a page of this search")));
            query.before = cursor;
            continue;
        }
        add_applied(key, value);
    }
    if (has_window)
        query.time = window;
    add_applied("_count", std::to_string(query.count));

    // A citizen sees their own access log only: without `patient` the search means theirs; with
    // another citizen's (in any spelling) it finds nothing, exactly as for a citizen never accessed.
    // Without all_citizens, the caller sees the records of a citizen it may open, and no others.
    bool empty = false;
    if (ctx.who->is_citizen()) {
        if (query.nhs_number.empty()) {
            query.nhs_number = ctx.who->citizen;
            applied = "patient=" + encode(query.nhs_number) + "&" + applied;
        }
        empty = query.nhs_number != ctx.who->citizen;
    } else if (!ctx.guard->rules().all_citizens(*ctx.who)) {
        if (query.nhs_number.empty()) {
            empty = true;
        } else {
            auto view = ctx.guard->open_citizen(*ctx.who, query.nhs_number, ctx.request_id, ctx.now, ctx.views, false);
            if (!view)
                return done(http::error_response(view.failure()));
            empty = !view->open;
        }
    }
    storage::store::audit_page page;
    if (!empty) {
        auto found = ctx.store.audit(query);
        if (!found)
            return done(http::error_response(found.failure()));
        page = std::move(found.value());
        auto shown = as_shown(ctx, std::move(page.records));
        if (!shown)
            return done(http::error_response(shown.failure()));
        page.records = std::move(*shown);
    }

    const std::string self = ctx.config.base_url + "/AuditEvent?" + applied;
    rapidjson::StringBuffer buffer;
    json_writer out(buffer);
    out.StartObject();
    text(out, "resourceType", "Bundle");
    text(out, "type", "searchset");
    out.Key("link");
    out.StartArray();
    out.StartObject();
    text(out, "relation", "self");
    text(out, "url", self + (query.before ? "&_page=" + std::to_string(*query.before) : ""));
    out.EndObject();
    if (page.next) {
        out.StartObject();
        text(out, "relation", "next");
        text(out, "url", self + "&_page=" + std::to_string(*page.next));
        out.EndObject();
    }
    out.EndArray();
    if (!page.records.empty()) {
        const trail_reader reader = reader_of(ctx);
        out.Key("entry");
        out.StartArray();
        for (const auto& record : page.records) {
            out.StartObject();
            text(out, "fullUrl", ctx.config.base_url + "/AuditEvent/" + std::to_string(record.sequence));
            out.Key("resource");
            write_audit_event(out, record, reader);
            out.Key("search");
            out.StartObject();
            text(out, "mode", "match");
            out.EndObject();
            out.EndObject();
        }
        out.EndArray();
    }
    out.EndObject();
    storage::audit_record access = access::guard::audit_for(*ctx.who, ctx.request_id, ctx.now, "search");
    // A citizen asking for someone else's trail names nobody in the record: it would put the asking
    // citizen's NHS number (their organisation patient:{nhs}) into the other citizen's access log.
    access.nhs_number = ctx.who->is_citizen() && empty ? std::string() : query.nhs_number;
    access.resource_type = "AuditEvent";
    access.outcome = "success";
    access.detail = applied;
    ctx.store.append_audit({std::move(access)});
    done(json_response({buffer.GetString(), buffer.GetSize()}));
}

} // namespace caregate::interactions
