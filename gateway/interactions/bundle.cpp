// Transaction and batch (https://hl7.org/fhir/R4/http.html#transaction): POST [base] with a Bundle.
//
// batch: each entry is a request of its own, run exactly as if it had been sent alone (through the
// application again, with the caller's credentials), answered in a batch-response in entry order.
//
// transaction: all or nothing. Each entry is planned by the same steps as the interaction alone
// (write_plan.hpp: validation, the policy, the citizen checks, the audit record), after the
// references between entries have been rewritten (https://hl7.org/fhir/R4/bundle.html#references):
//  1. ids: a POST gets its id now (a Patient its NHS number, anything else a UUID), so every fullUrl
//     maps to Type/id before any resource is read; a PUT keeps its URL's id.
//  2. conditional references (Type?criteria) resolve by a search as the caller sees the record:
//     exactly one match, else 412; `Patient?identifier=<NHS number system>|N` is Patient/N, since a
//     citizen's Patient has their NHS number as id (so the Patient may come in the same Bundle).
//  3. fullUrls and conditional references are replaced everywhere in the resources (references,
//     contained, extensions, narrative links: fhir::replace_references).
//  4. every entry is planned; a citizen whose Patient the transaction creates counts as open to the
//     caller for the transaction's own items.
//  5. referential integrity: every literal reference in a written resource names an entry of the
//     Bundle or a resource the caller can see, else 422 naming the entry and element.
//  6. the writes go to the store as one transaction (store::submit_transaction), in the spec's order
//     (DELETE, POST, PUT/PATCH); its conditions are decided by the writer inside the transaction
//     (an id a condition chooses replaces the assigned one in the other entries). GET entries run
//     after the commit, so they see it.
// The first entry that fails fails the transaction: its status, and an OperationOutcome naming it.
#include "interactions/interactions.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/bundle_writer.hpp"
#include "interactions/write.hpp"
#include "interactions/write_plan.hpp"

#include "fhir_model/bundle.hpp"
#include "fhir_model/date_time.hpp"
#include "fhir_model/nhs_number.hpp"
#include "fhir_model/patch.hpp"
#include "fhir_model/resource.hpp"
#include "fhir_model/search_query.hpp"
#include "http/error_response.hpp"
#include "storage/search.hpp"

#include <boost/url.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <future>
#include <ctime>
#include <iomanip>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>

namespace caregate::interactions {
namespace {

using fhir::category;
using fhir::error;

constexpr std::string_view nhs_number_system = "https://fhir.nhs.uk/Id/nhs-number";

std::string_view reason_phrase(unsigned status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

/// An HTTP-date (RFC 9110) as a FHIR instant, for entry.response.lastModified.
std::string instant_of_http_date(std::string_view http_date) {
    std::tm parts{};
    std::istringstream in{std::string(http_date)};
    in.imbue(std::locale::classic());
    in >> std::get_time(&parts, "%a, %d %b %Y %H:%M:%S");
    if (in.fail())
        return {};
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

bool is_operation_outcome(std::string_view body) {
    return body.starts_with(R"({"resourceType":"OperationOutcome")");
}

/// A transaction-response or batch-response: one entry per answer, from the response its request got.
http::response response_bundle(std::string_view type, const std::vector<http::response>& answers) {
    bundle_writer bundle(type, random_uuid());
    for (const http::response& answer : answers) {
        const bool outcome = is_operation_outcome(answer.body);
        const std::string status = std::to_string(answer.status) + " " + std::string(reason_phrase(answer.status));
        const std::string modified = instant_of_http_date(answer.header("Last-Modified"));
        bundle.entry({.resource = !outcome && answer.status < 300 ? std::string_view(answer.body) : std::string_view{},
                      .response = bundle_entry_response{.status = status,
                                                        .location = answer.header("Location"),
                                                        .etag = answer.header("ETag"),
                                                        .last_modified = modified,
                                                        .outcome = outcome ? std::string_view(answer.body)
                                                                           : std::string_view{}}});
    }
    return json_response(bundle.finish());
}

/// The error of one entry, as the transaction's answer: every issue names the entry.
error entry_failure(std::size_t index, const fhir::bundle_entry_request& entry, error failure) {
    const std::string at = fhir::entry_path(index);
    for (fhir::issue& issue : failure.issues) {
        issue.diagnostics = "entry " + std::to_string(index) + " (" + entry.method + " " +
                            entry.url.substr(0, entry.url.find('?')) + "): " + issue.diagnostics;
        const std::string& path = issue.expression;
        if (path.empty())
            issue.expression = at;
        else if (path.starts_with("Bundle."))
            continue; // already names the element of the Bundle
        else if (std::isupper(static_cast<unsigned char>(path[0]))) // Type.element...: in the resource
            issue.expression = at + ".resource" + path.substr(std::min(path.find('.'), path.size()));
        else // a parameter of the entry's url
            issue.expression = at + ".request.url";
    }
    if (failure.issues.empty())
        failure.issues.push_back({"error", "processing", "entry " + std::to_string(index) + " failed", at});
    return failure;
}

/// The request an entry makes, as it would arrive alone: the caller's request line and headers (its
/// credentials, Prefer) with the entry's method, URL, conditional headers and body.
http::request entry_request(const http::request& bundle_request, const std::string& base_path,
                            const fhir::bundle_entry_request& entry, std::string body,
                            const std::string& content_type = "application/fhir+json") {
    http::request made;
    made.method = entry.method;
    made.target = base_path + (entry.url.starts_with('/') ? "" : "/") + entry.url;
    made.client_ods = bundle_request.client_ods;
    made.secure = bundle_request.secure;
    for (const http::header_field& field : bundle_request.headers) {
        std::string name = field.name;
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        if (name == "content-type" || name == "content-length" || name == "if-match" || name == "if-none-match" ||
            name == "if-none-exist" || name == "if-modified-since" || name == "accept" || name == "x-security-context")
            continue;
        made.headers.push_back(field);
    }
    // An entry's answer goes into the Bundle as FHIR JSON: a Binary's too, never its raw bytes.
    made.headers.push_back({"Accept", "application/fhir+json"});
    auto add = [&](std::string name, const std::string& value) {
        if (!value.empty())
            made.headers.push_back({std::move(name), value});
    };
    add("If-None-Exist", entry.if_none_exist);
    add("If-Match", entry.if_match);
    add("If-None-Match", entry.if_none_match);
    add("If-Modified-Since", entry.if_modified_since);
    made.body = std::move(body);
    if (!made.body.empty())
        made.headers.push_back({"Content-Type", content_type});
    return made;
}

/// The caller's request line, headers and credentials, without the Bundle (which can be megabytes).
http::request without_body(const http::request& req) {
    http::request copy;
    copy.method = req.method;
    copy.target = req.target;
    copy.headers = req.headers;
    copy.client_ods = req.client_ods;
    copy.secure = req.secure;
    return copy;
}

/// A PATCH entry's body: a FHIRPath Patch (a Parameters resource) as it is, or a JSON Patch carried
/// as a Binary (https://hl7.org/fhir/R4/http.html#patch) decoded from its base64 data.
fhir::result<std::pair<std::string, std::string>> patch_body(const std::string& resource) {
    const std::string binary = R"({"resourceType":"Binary")";
    if (!resource.starts_with(binary))
        return std::pair<std::string, std::string>{resource, "application/fhir+json"};
    auto text_of = [&](std::string_view name) -> std::string {
        const std::string key = "\"" + std::string(name) + "\":\"";
        const auto at = resource.find(key);
        if (at == std::string::npos)
            return {};
        const auto start = at + key.size();
        return resource.substr(start, resource.find('"', start) - start);
    };
    const std::string data = text_of("data");
    if (text_of("contentType") != "application/json-patch+json" || data.empty())
        return error::make(category::unsupported_media_type, "not-supported",
                           "a PATCH entry carries a Parameters resource (FHIRPath Patch) or a Binary of "
                           "application/json-patch+json");
    std::string decoded(data.size() / 4 * 3 + 3, '\0');
    const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                       reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
    if (length < 0 || data.size() % 4 != 0)
        return error::make(category::malformed, "value", "the Binary's data is not base64", "Binary.data");
    std::size_t padding = 0;
    for (auto it = data.rbegin(); it != data.rend() && *it == '=' && padding < 2; ++it)
        ++padding;
    decoded.resize(static_cast<std::size_t>(length) - padding);
    return std::pair<std::string, std::string>{decoded, "application/json-patch+json"};
}

/// The path of the base URL, e.g. "/fhir".
std::string base_path_of(const rest_config& config) {
    auto url = boost::urls::parse_uri(config.base_url);
    return url ? std::string(url->encoded_path()) : std::string();
}

// ---- batch --------------------------------------------------------------------------------------

void run_batch(context& ctx, http::responder& done, fhir::bundle_request bundle) {
    struct batch_state {
        std::mutex mutex;
        std::vector<http::response> answers;
        std::size_t waiting = 0;
        http::responder done;
    };
    auto state = std::make_shared<batch_state>();
    state->answers.resize(bundle.entries.size());
    state->waiting = bundle.entries.size();
    state->done = std::move(done);
    if (bundle.entries.empty())
        return state->done(response_bundle("batch-response", {}));
    const std::string base_path = base_path_of(ctx.config);
    const http::request caller = without_body(ctx.req);
    for (std::size_t i = 0; i < bundle.entries.size(); ++i) {
        const fhir::bundle_entry_request& entry = bundle.entries[i];
        auto finish = [state, i](http::response answer) {
            std::unique_lock lock(state->mutex);
            state->answers[i] = std::move(answer);
            if (--state->waiting != 0)
                return;
            lock.unlock();
            state->done(response_bundle("batch-response", state->answers));
        };
        std::string body = entry.resource.value_or(std::string());
        std::string content_type;
        if (entry.method == "PATCH" && entry.resource) {
            auto patch = patch_body(*entry.resource);
            if (!patch) {
                finish(http::error_response(patch.failure()));
                continue;
            }
            body = std::move(patch->first);
            content_type = std::move(patch->second);
        }
        http::request one = entry_request(caller, base_path, entry, std::move(body),
                                          content_type.empty() ? "application/fhir+json" : content_type);
        // A Bundle inside a batch would be a transaction or batch of its own: not taken.
        const std::string_view path = std::string_view(entry.url).substr(0, entry.url.find('?'));
        if (entry.method == "POST" && (path.empty() || path == "/")) {
            finish(http::error_response(error::make(category::malformed, "not-supported",
                                                    "a batch entry cannot be a transaction or batch")));
            continue;
        }
        ctx.subrequest(std::move(one), std::move(finish));
    }
}

// ---- transaction --------------------------------------------------------------------------------

/// One entry of a transaction on its way through the steps above.
struct entry_work {
    route where;
    std::vector<std::pair<std::string, std::string>> params;
    std::string assigned_id;        ///< POST and conditional PUT: the id given before planning
    std::optional<detail::planned_write> plan;
    bool read = false;              ///< GET/HEAD (or a search by POST): run after the commit
};

/// `Type?criteria`: a type name, then the criteria (not an absolute URL, not a urn, not #local).
bool is_conditional_reference(std::string_view text) {
    const auto question = text.find('?');
    if (question == std::string_view::npos || question == 0)
        return false;
    const std::string_view type = text.substr(0, question);
    return std::all_of(type.begin(), type.end(), [](unsigned char c) { return std::isalpha(c); });
}

/// Whether an entry's resource (JSON text) may hold a conditional reference: every one holds a '?',
/// written as itself or escaped (\u003f), so text with neither has none and needs no parse to say so.
bool may_hold_conditional_reference(std::string_view json) {
    return json.find('?') != std::string_view::npos || json.find("\\u") != std::string_view::npos;
}

/// A conditional reference's target (step 2): Type/id, or the error (412 when not exactly one).
fhir::result<std::string> resolve_conditional_reference(context& ctx, const std::string& reference) {
    const auto question = reference.find('?');
    const std::string type = reference.substr(0, question);
    if (!fhir::is_supported_type(type))
        return error::make(category::invalid, "not-found", "the conditional reference names a type not served here");
    const std::string criteria_text = http::encode_loose_target(std::string_view(reference).substr(question + 1));
    auto query_text = boost::urls::parse_query(criteria_text);
    if (!query_text)
        return error::make(category::malformed, "value", "the conditional reference's criteria are not a query string");
    std::vector<std::pair<std::string, std::string>> criteria;
    for (auto p : boost::urls::params_view(*query_text))
        criteria.emplace_back(std::string(p.key), std::string(p.has_value ? p.value : std::string_view{}));
    if (type == "Patient" && criteria.size() == 1 && criteria[0].first == "identifier") {
        const std::string& value = criteria[0].second;
        const std::string prefix = std::string(nhs_number_system) + "|";
        if (value.starts_with(prefix) && fhir::is_valid_nhs_number(std::string_view(value).substr(prefix.size())))
            return "Patient/" + value.substr(prefix.size());
    }
    fhir::search_query_options options;
    options.default_count = 2;
    auto query = fhir::parse_search_query({type}, criteria, options);
    if (!query)
        return std::move(query).failure();
    query->count = 2;
    storage::search_request request;
    request.query = &*query;
    request.visibility = ctx.guard->search_visibility(*ctx.who, ctx.now, ctx.views);
    auto page = ctx.store.search(request);
    if (!page)
        return std::move(page).failure();
    std::size_t matches = 0;
    std::string target;
    for (const auto& entry : page->entries)
        if (!entry.include) {
            ++matches;
            target = entry.version.type + "/" + entry.version.id;
        }
    if (matches != 1)
        return error::make(category::precondition_failed, matches ? "multiple-matches" : "not-found",
                           matches ? "the conditional reference matches more than one resource"
                                   : "the conditional reference matches no resource");
    return target;
}

/// Step 5: the literal references of `content` name a resource of this transaction or one the caller
/// can see. `known` caches the answers for the transaction.
fhir::status check_references(context& ctx, const std::string& content, const std::set<std::string>& written,
                              std::map<std::string, bool>& known) {
    auto found = fhir::find_references(content);
    if (!found)
        return std::move(found).failure();
    error dangling;
    dangling.kind = category::invalid;
    std::string own_base = ctx.config.base_url + "/";
    for (const fhir::found_reference& ref : *found) {
        std::string target = ref.reference;
        if (target.empty() || target.starts_with('#'))
            continue;
        if (target.starts_with(own_base))
            target.erase(0, own_base.size());
        else if (target.find("://") != std::string::npos)
            continue; // another server's: not ours to check
        if (target.starts_with("urn:")) {
            dangling.issues.push_back({"error", "not-found", "the reference names no entry of this Bundle", ref.path});
            continue;
        }
        // Type/id, or Type/id/_history/vid: the resource must exist (any version) and be visible.
        const auto slash = target.find('/');
        if (slash == std::string::npos)
            continue; // not a literal reference (a relative name without an id): left to validation
        const auto end = target.find('/', slash + 1);
        const std::string resource = target.substr(0, end);
        if (written.contains(resource))
            continue;
        auto cached = known.find(resource);
        if (cached == known.end()) {
            const std::string type = resource.substr(0, slash);
            const std::string id = resource.substr(slash + 1);
            bool exists = false;
            if (fhir::is_supported_type(type)) {
                // Never breaks the glass: a reference alone must not open another record.
                auto visible = detail::visible_current(ctx, type, id, false);
                if (!visible && visible.failure().kind != category::not_found &&
                    visible.failure().kind != category::deleted)
                    return std::move(visible).failure();
                exists = visible.ok();
            }
            cached = known.emplace(resource, exists).first;
        }
        if (!cached->second)
            dangling.issues.push_back(
                {"error", "not-found", "the reference names a resource that does not exist here", ref.path});
    }
    if (!dangling.issues.empty())
        return dangling;
    return {};
}

void run_transaction(context& ctx, http::responder& done, fhir::bundle_request bundle) {
    const std::size_t n = bundle.entries.size();
    if (n == 0)
        return done(response_bundle("transaction-response", {}));
    auto fail = [&](std::size_t index, error failure) {
        done(http::error_response(entry_failure(index, bundle.entries[index], std::move(failure))));
    };
    std::vector<entry_work> work(n);
    std::unordered_map<std::string, std::string> replacements;
    std::set<std::string> new_citizens;

    // Step 1: routes and ids.
    std::set<std::string> full_urls;
    for (std::size_t i = 0; i < n; ++i) {
        const fhir::bundle_entry_request& entry = bundle.entries[i];
        if (!entry.full_url.empty() && !full_urls.insert(entry.full_url).second)
            return fail(i, error::make(category::malformed, "duplicate",
                                       "two entries have the same fullUrl; each must be unique in a Bundle",
                                       fhir::entry_path(i) + ".fullUrl"));
        auto routed = ctx.route_url(entry.method, entry.url);
        if (!routed)
            return fail(i, routed.failure());
        work[i].where = std::move(routed->where);
        work[i].params = std::move(routed->params);
        const interaction kind = work[i].where.kind;
        const std::string& type = work[i].where.type;
        if (kind == interaction::transaction)
            return fail(i, error::make(category::malformed, "not-supported", "a transaction cannot hold a Bundle to process"));
        work[i].read = kind != interaction::create && kind != interaction::update &&
                       kind != interaction::delete_ && kind != interaction::patch;
        std::string id;
        if (kind == interaction::create) {
            if (type == "Patient") {
                auto patient = fhir::prepare_resource(*entry.resource, "Patient");
                if (!patient)
                    return fail(i, patient.failure());
                id = patient->nhs_number;
            } else {
                id = random_uuid();
            }
            work[i].assigned_id = id;
        } else if (kind == interaction::update) {
            if (!work[i].where.id.empty()) {
                id = work[i].where.id;
            } else { // conditional update: the body's id, or one given now
                auto body = fhir::prepare_resource(*entry.resource, type);
                id = body && !body->id.empty() ? body->id : type == "Patient" && body ? body->nhs_number : random_uuid();
                work[i].assigned_id = id;
            }
        }
        if (!id.empty()) {
            if (type == "Patient") {
                auto current = ctx.store.read_current("Patient", id);
                if (!current || current->deleted)
                    new_citizens.insert(id);
            }
            if (!entry.full_url.empty())
                replacements[entry.full_url] = type + "/" + id;
        }
    }

    // Steps 2 and 3: conditional references, then the rewriting.
    std::vector<std::string> bodies(n);
    for (std::size_t i = 0; i < n; ++i) {
        const fhir::bundle_entry_request& entry = bundle.entries[i];
        if (!entry.resource)
            continue;
        std::vector<fhir::found_reference> references;
        if (may_hold_conditional_reference(*entry.resource)) {
            auto found = fhir::find_references(*entry.resource);
            if (!found)
                return fail(i, found.failure());
            references = std::move(*found);
        }
        for (const fhir::found_reference& ref : references) {
            const std::string& text = ref.reference;
            if (replacements.contains(text) || !is_conditional_reference(text))
                continue;
            auto target = resolve_conditional_reference(ctx, text);
            if (!target) {
                error failure = std::move(target).failure();
                for (auto& issue : failure.issues)
                    issue.expression = ref.path;
                return fail(i, std::move(failure));
            }
            replacements[text] = *target;
        }
        if (replacements.empty()) {
            bodies[i] = *entry.resource;
            continue;
        }
        auto rewritten = fhir::replace_references(*entry.resource, replacements);
        if (!rewritten)
            return fail(i, rewritten.failure());
        bodies[i] = std::move(*rewritten);
    }

    // Step 4: each entry planned as if alone; what a Provenance points at may be written by another
    // entry (step 5 then checks every reference against the Bundle and the record).
    std::set<std::string> transaction_writes;
    for (std::size_t i = 0; i < n; ++i)
        if (!work[i].read) {
            const std::string& id = work[i].assigned_id.empty() ? work[i].where.id : work[i].assigned_id;
            if (!id.empty())
                transaction_writes.insert(work[i].where.type + "/" + id);
        }
    const std::string base_path = base_path_of(ctx.config);
    const http::request caller = without_body(ctx.req);
    access::request_views views = ctx.views;
    for (const std::string& citizen : new_citizens)
        views[citizen] = access::citizen_view{true, false};
    std::set<std::string> written;
    for (std::size_t i = 0; i < n; ++i) {
        if (work[i].read)
            continue;
        const fhir::bundle_entry_request& entry = bundle.entries[i];
        std::string body = bodies[i];
        std::string content_type;
        if (work[i].where.kind == interaction::patch) {
            if (!entry.resource)
                return fail(i, error::make(category::malformed, "required", "a PATCH entry needs its patch as the resource"));
            auto patch = patch_body(body);
            if (!patch)
                return fail(i, patch.failure());
            body = std::move(patch->first);
            content_type = std::move(patch->second);
        }
        context sub{entry_request(caller, base_path, entry, std::move(body),
                                        content_type.empty() ? "application/fhir+json" : content_type),
                          work[i].where, work[i].params,
                          ctx.store, ctx.config, ctx.request_id, ctx.guard, ctx.who, ctx.now, std::move(views),
                          ctx.subrequest, ctx.defer, &transaction_writes, ctx.route_url, ctx.served};
        fhir::result<detail::planned_write> planned = error{};
        switch (work[i].where.kind) {
        case interaction::create: planned = detail::plan_create(sub); break;
        case interaction::update: planned = detail::plan_update(sub); break;
        case interaction::delete_: planned = detail::plan_delete(sub); break;
        default: planned = detail::plan_patch(sub); break;
        }
        views = std::move(sub.views);
        if (!planned)
            return fail(i, planned.failure());
        storage::write_request& write = planned->write;
        if (!work[i].assigned_id.empty()) {
            write.id = work[i].assigned_id;
            if (write.audit)
                write.audit->resource_ids = write.id;
        }
        if (write.kind != storage::write_kind::remove || !write.condition) {
            const std::string key = write.type + "/" + write.id;
            if (!written.insert(key).second)
                return fail(i, error::make(category::malformed, "duplicate",
                                           "the transaction writes " + write.type + " with the same id twice"));
        }
        work[i].plan = std::move(*planned);
    }
    ctx.views = std::move(views);

    // Step 5: referential integrity.
    std::map<std::string, bool> known;
    for (std::size_t i = 0; i < n; ++i) {
        if (!work[i].plan || work[i].plan->write.content.empty())
            continue;
        if (auto checked = check_references(ctx, work[i].plan->write.content, written, known); !checked)
            return fail(i, checked.failure());
        // A written resource may not point at one that points at items (check_references left
        // that to here): the store's visibility rule follows one level only.
        for (const std::string& item : fhir::item_targets(work[i].plan->write.type, work[i].plan->write.content))
            if (fhir::points_at_items(item.substr(0, item.find('/'))))
                return fail(i, error::make(category::invalid, "invalid",
                                           "a " + work[i].plan->write.type + " may not point at a resource that points at others",
                                           work[i].plan->write.type + ".target"));
    }

    // Step 6: the writes in the spec's order, as one transaction.
    std::vector<std::size_t> order;
    for (const auto pass : {interaction::delete_, interaction::create, interaction::update})
        for (std::size_t i = 0; i < n; ++i)
            if (work[i].plan && (work[i].where.kind == pass ||
                                 (pass == interaction::update && work[i].where.kind == interaction::patch)))
                order.push_back(i);
    std::vector<storage::write_request> writes;
    writes.reserve(order.size());
    for (std::size_t i : order)
        writes.push_back(work[i].plan->write);
    // A carer's writes each with its Provenance, after them: answered by no entry.
    auto provenances = detail::carer_provenances(ctx, writes);
    if (!provenances)
        return done(http::error_response(provenances.failure()));
    std::move(provenances->begin(), provenances->end(), std::back_inserter(writes));

    struct finishing {
        fhir::bundle_request bundle;
        std::vector<entry_work> work;
        std::vector<std::size_t> order;
        http::request caller;
        std::string base_path;
        prefer_return how;
        const rest_config* config;
        std::function<void(http::request, http::responder)> subrequest;
        std::function<void(std::function<void()>)> defer;
        http::responder done;
    };
    auto state = std::make_shared<finishing>(finishing{std::move(bundle), std::move(work), std::move(order),
                                                       std::move(caller), base_path, ctx.prefer(), &ctx.config,
                                                       ctx.subrequest, ctx.defer, std::move(done)});
    ctx.store.submit_transaction(std::move(writes), [state](std::variant<std::vector<storage::write_outcome>,
                                                                         storage::transaction_failure> result) {
        if (auto* failed = std::get_if<storage::transaction_failure>(&result)) {
            if (failed->index >= state->order.size())
                return state->done(http::error_response(failed->failure));
            const std::size_t entry = state->order[failed->index];
            error failure = detail::write_failure(*state->work[entry].plan, std::move(failed->failure));
            return state->done(http::error_response(entry_failure(entry, state->bundle.entries[entry], std::move(failure))));
        }
        // The answer is made off the writer thread (a large Bundle's response is megabytes of JSON),
        // after the reads, which run after the commit, one after another in entry order.
        state->defer([state, outcomes = std::move(std::get<std::vector<storage::write_outcome>>(result))] {
            auto answers = std::make_shared<std::vector<http::response>>(state->bundle.entries.size());
            for (std::size_t w = 0; w < state->order.size(); ++w) {
                const std::size_t entry = state->order[w];
                (*answers)[entry] =
                    detail::write_response(*state->config, *state->work[entry].plan, outcomes[w], state->how);
            }
            std::vector<std::size_t> reads;
            for (std::size_t i = 0; i < state->work.size(); ++i)
                if (state->work[i].read)
                    reads.push_back(i);
            if (reads.empty())
                return state->done(response_bundle("transaction-response", *answers));
            // On the application's own thread, so waiting for each read is no one else's delay.
            for (const std::size_t i : reads) {
                std::promise<http::response> answered;
                auto answer = answered.get_future();
                const auto& entry = state->bundle.entries[i];
                state->subrequest(entry_request(state->caller, state->base_path, entry, entry.resource.value_or("")),
                                  [&answered](http::response out) { answered.set_value(std::move(out)); });
                (*answers)[i] = answer.get();
            }
            state->done(response_bundle("transaction-response", *answers));
        });
    });
}

} // namespace

void bundle(context& ctx, http::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(http::error_response(ok.failure()));
    if (ctx.req.body.empty())
        return done(http::error_response(error::make(category::malformed, "required",
                                                     "a POST to the base URL needs a transaction or batch Bundle")));
    auto bundle = fhir::read_bundle_request(ctx.req.body, ctx.config.max_bundle_entries);
    if (!bundle)
        return done(http::error_response(bundle.failure()));
    if (bundle->type == "batch")
        return run_batch(ctx, done, std::move(*bundle));
    run_transaction(ctx, done, std::move(*bundle));
}

} // namespace caregate::interactions
