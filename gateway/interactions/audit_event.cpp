// The audit log served as AuditEvent resources (https://hl7.org/fhir/R4/auditevent.html), read-only:
// read by id (the record's place in the hash chain) and search-type by patient, agent and date.
// Only roles the policy lets read AuditEvent get here; a role without all_citizens sees only the
// records of citizens it may open. On the patient-facing endpoint a citizen reads their own access
// log (who opened their record, from which organisation, when and why) and never another's. A reader
// who may not see every citizen's trail is shown only the resources it may see (as_shown).
#include "interactions/interactions.hpp"

#include "fhir_model/date_time.hpp"
#include "fhir_model/search_query.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/bundle_writer.hpp"
#include "interactions/paging.hpp"
#include "interactions/search_steps.hpp"
#include "http/error_response.hpp"
#include "storage/search.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <charconv>
#include <limits>
#include <span>

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

/// One AuditEvent's JSON, to go into a Bundle.
std::string audit_event_json(const storage::audit_record& r, const trail_reader& reader) {
    rapidjson::StringBuffer buffer;
    json_writer out(buffer);
    write_audit_event(out, r, reader);
    return {buffer.GetString(), buffer.GetSize()};
}

std::string encode(std::string_view value) { return boost::urls::encode(value, boost::urls::unreserved_chars); }

/// `value` of a parameter the audit log takes: one value, of the parameter itself.
fhir::status plain(const fhir::search_clause& clause) {
    if (!clause.path.empty() || clause.modifier != fhir::search_modifier::none || clause.any_of.size() != 1)
        return error::make(category::unsupported, "not-supported",
                           "search parameter '" + clause.name +
                               "': the audit log takes one value, without modifiers, chains or alternatives",
                           clause.name);
    return {};
}

/// The store's audit query for a parsed search of the audit log (its parameters are
/// audit_search_parameters): the citizen, the agent, and the time window every `date` narrows.
fhir::result<storage::store::audit_query> audit_query_of(const fhir::search_query& search, storage::timestamp now) {
    storage::store::audit_query query;
    query.count = search.count;
    std::pair<storage::timestamp, storage::timestamp> window{std::numeric_limits<storage::timestamp>::min(),
                                                             std::numeric_limits<storage::timestamp>::max()};
    bool has_window = false;
    for (const fhir::search_clause& clause : search.clauses) {
        if (auto ok = plain(clause); !ok)
            return ok.failure();
        const fhir::search_argument& a = clause.any_of.front();
        const std::string_view code = clause.parameter->code;
        // A reference of another type, or a URL, is kept as written: it names no record, as it never did.
        const std::string named = !a.url.empty() ? a.url : a.target_type.empty() ? a.id : a.target_type + "/" + a.id;
        if (code == "patient") {
            if (!query.nhs_number.empty())
                return error::make(category::unsupported, "not-supported", "patient may be given once", "patient");
            query.nhs_number = a.target_type == "Patient" ? a.id : named;
        } else if (code == "agent") {
            if (!query.agent.empty())
                return error::make(category::unsupported, "not-supported", "agent may be given once", "agent");
            // The agent is recorded by the user's SDS id and the organisation's ODS code.
            query.agent = a.target_type == "Practitioner" || a.target_type == "Organization" ? a.id : named;
        } else { // date: a point in time (when the record was made) against the value's range
            fhir::time_range range = a.range;
            storage::timestamp from = window.first, to = window.second;
            switch (a.prefix) {
            case fhir::search_prefix::eq: from = range.begin, to = range.end; break;
            case fhir::search_prefix::ge: from = range.begin; break;
            case fhir::search_prefix::gt:
            case fhir::search_prefix::sa: from = range.end; break;
            case fhir::search_prefix::le: to = range.end; break;
            case fhir::search_prefix::lt:
            case fhir::search_prefix::eb: to = range.begin; break;
            case fhir::search_prefix::ap:
                range = fhir::approximately(range, now);
                from = range.begin, to = range.end;
                break;
            case fhir::search_prefix::ne:
                return error::make(category::unsupported, "not-supported",
                                   "search parameter 'date': the audit log is searched by one time window; ne is not "
                                   "supported",
                                   "date");
            }
            window = {std::max(window.first, from), std::min(window.second, to)};
            has_window = true;
        }
    }
    if (has_window)
        query.time = window;
    return query;
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
    {"date", "date", "When: with the prefixes eq, ge, gt, le, lt, sa, eb, ap"},
};

/// The codes the audit log's search takes: its parameters and the page size.
std::span<const std::string_view> audit_search_codes() {
    static const std::vector<std::string_view> codes = [] {
        std::vector<std::string_view> out;
        for (const served_parameter& p : audit_search_parameters)
            out.push_back(p.name);
        out.push_back("_count");
        return out;
    }();
    return codes;
}

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
    if (!permitted(ctx, done))
        return;
    // A search like any other (the general parser, AuditEvent's own parameters), but for its page
    // cursor, a place in the audit chain.
    std::vector<std::pair<std::string, std::string>> params;
    std::optional<std::int64_t> before;
    for (const auto& [key, value] : ctx.params) {
        if (key == "_format" || key == "_pretty")
            continue; // they shape the output only
        if (key == "_page") {
            auto cursor = page_cursor(value);
            if (!cursor)
                return done(http::error_response(cursor.failure()));
            before = *cursor;
            continue;
        }
        params.emplace_back(key, value);
    }
    fhir::search_query_options options;
    options.lenient = detail::lenient(ctx);
    options.default_count = ctx.config.default_count;
    options.max_count = ctx.config.max_count;
    options.parameters = audit_search_codes();
    auto parsed = fhir::parse_search_query({"AuditEvent"}, params, options);
    if (!parsed)
        return done(http::error_response(parsed.failure()));
    auto translated = audit_query_of(*parsed, ctx.now);
    if (!translated)
        return done(http::error_response(translated.failure()));
    storage::store::audit_query& query = *translated;
    query.before = before;
    std::string applied = detail::query_string(parsed->applied);

    // A citizen sees their own access log only: without `patient` the search means theirs; with
    // another citizen's (in any spelling) it finds nothing, exactly as for a citizen never accessed.
    // Without all_citizens, the caller sees the records of a citizen it may open, and no others.
    bool empty = false;
    if (ctx.who->is_citizen()) {
        if (query.nhs_number.empty()) {
            query.nhs_number = ctx.who->citizen;
            applied = "patient=" + encode(query.nhs_number) + (applied.empty() ? "" : "&") + applied;
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

    auto page_url = [&](std::optional<std::int64_t> cursor) {
        std::string url = ctx.config.base_url + "/AuditEvent?" + applied;
        if (cursor)
            url += (applied.empty() ? "" : "&") + std::string("_page=") + std::to_string(*cursor);
        return url;
    };
    bundle_writer bundle("searchset");
    bundle.link("self", page_url(query.before));
    if (page.next)
        bundle.link("next", page_url(page.next));
    const trail_reader reader = reader_of(ctx);
    for (const auto& record : page.records) {
        const std::string full_url = ctx.config.base_url + "/AuditEvent/" + std::to_string(record.sequence);
        bundle.entry({.full_url = full_url, .resource = audit_event_json(record, reader), .search_mode = "match"});
    }
    if (!parsed->ignored.empty()) {
        // What lenient handling dropped, as every search shows it: an OperationOutcome in mode "outcome".
        fhir::error note;
        note.issues = parsed->ignored;
        bundle.entry({.resource = fhir::operation_outcome_json(note), .search_mode = "outcome"});
    }
    storage::audit_record access = access::guard::audit_for(*ctx.who, ctx.request_id, ctx.now, "search");
    // A citizen asking for someone else's trail names nobody in the record: it would put the asking
    // citizen's NHS number (their organisation patient:{nhs}) into the other citizen's access log.
    access.nhs_number = ctx.who->is_citizen() && empty ? std::string() : query.nhs_number;
    access.resource_type = "AuditEvent";
    access.outcome = "success";
    access.detail = applied;
    ctx.store.append_audit({std::move(access)});
    done(json_response(bundle.finish()));
}

} // namespace caregate::interactions
