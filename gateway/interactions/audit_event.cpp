// The audit log served as AuditEvent resources (https://hl7.org/fhir/R4/auditevent.html), read-only:
// read by id (the record's place in the hash chain) and search-type by patient, agent and date.
// Only roles the policy lets read AuditEvent get here; a role without all_citizens sees only the
// records of citizens it may open. On the patient-facing endpoint a citizen reads their own access
// log (who opened their record, from which organisation, when and why) and never another's. A reader
// who may not see every citizen's trail is shown only the resources it may see (as_shown).
#include "interactions/interactions.hpp"

#include "interactions/audit_event_json.hpp"

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


namespace caregate::interactions {

namespace {

using fhir::category;
using fhir::error;

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
    http::response response = json_response(audit_event_json(shown->front(), reader_of(ctx)));
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
