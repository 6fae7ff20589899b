// The write rules (write_rules.hpp), written once for every engine: what a write may do and what it
// makes, through the engine's write_transaction; the rules' list is in write_rules.hpp.
#include "write_rules.hpp"

#include "fhir_model/resource.hpp"

#include <algorithm>
#include <cctype>

namespace caregate::storage {
namespace {

fhir::error store_fault(std::string diagnostics) {
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

std::string reference(std::string_view type, std::string_view id) {
    std::string text(type);
    text += '/';
    text += id;
    return text;
}

bool holds_line_break(const std::vector<std::string>& values) {
    return std::any_of(values.begin(), values.end(),
                       [](const std::string& value) { return value.find('\n') != std::string::npos; });
}

/// Ids the gateway assigns: 8-4-4-4-12 hex digits. Only such an id is replaced as text when a
/// condition chose another (store.hpp, submit_transaction).
bool is_uuid(std::string_view text) {
    if (text.size() != 36)
        return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (text[i] == '-') || (!dash && !std::isxdigit(static_cast<unsigned char>(text[i]))))
            return false;
    }
    return true;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
}

fhir::status check_owner(const write_request& request, const stored_version& current) {
    // Invariant 10. No writer at all is a tool or a test, which owns nothing and checks nothing. An
    // owner `O/...` wrote for O (a carer for the citizen), so O may change it too.
    if (request.writer.empty() || request.any_owner || request.writer == current.owner ||
        (current.owner.size() > request.writer.size() && current.owner.starts_with(request.writer) &&
         current.owner[request.writer.size()] == '/'))
        return {};
    // Names no organisation: the owner's ODS code is not the caller's to learn.
    return fhir::error::make(fhir::category::forbidden, "forbidden",
                             "only the organisation that contributed this resource may change it");
}

} // namespace

fhir::result<write_outcome> write_rules::apply_guarded(const write_request& request) {
    try {
        return apply(request);
    } catch (const std::exception&) {
        // A bug (e.g. content that is not canonical JSON). The message could quote content, so
        // it is not passed on; the savepoint rollback keeps the database as it was.
        return store_fault("a write failed inside the store (" + reference(request.type, request.id) + ")");
    }
}

fhir::result<write_outcome> write_rules::apply(const write_request& request) {
    if (request.type.empty() || request.id.empty())
        return store_fault("a write needs a type and an id");
    if (request.kind != write_kind::remove && request.content.empty())
        return store_fault("a create or update needs content");

    // A new id has no version to read: the engine reads none, so that the writer's INSERTs of a
    // Bundle of creates can travel together (row_batches.hpp).
    auto loaded = request.kind == write_kind::create && request.id_is_new
                      ? fhir::result<std::optional<stored_version>>(std::optional<stored_version>{})
                      : engine_.current(request.type, request.id);
    if (!loaded)
        return std::move(loaded).failure();
    const std::optional<stored_version>& current = *loaded;
    const bool live = current && !current->deleted;
    const std::string target = reference(request.type, request.id);

    if (request.kind == write_kind::remove) {
        if (!live) {
            write_outcome outcome;
            outcome.removed_nothing = true;
            if (current) {
                outcome.version = *current;
            } else {
                outcome.version.type = request.type;
                outcome.version.id = request.id;
            }
            // An erasure of a citizen whose Patient was deleted before still removes what remains
            // of the record (invariant 25); with nothing left it changes nothing.
            if (current && request.erase_record && request.type == "Patient")
                if (auto gone = engine_.erase_citizen(request.id, {{"Patient", request.id}}); !gone)
                    return std::move(gone).failure();
            return outcome;
        }
    } else if (request.kind == write_kind::create && live && request.fail_if_exists) {
        return fhir::error::make(fhir::category::conflict, "duplicate", target + " already exists");
    }

    // Before If-Match, so that another organisation learns nothing of the version.
    if (live)
        if (auto owned = check_owner(request, *current); !owned)
            return std::move(owned).failure();
    if (request.kind != write_kind::remove &&
        (holds_line_break(request.access.labels) || holds_line_break(request.access.facets) ||
         std::any_of(request.citizens.begin(), request.citizens.end(),
                     [](const fhir::citizen_link& link) { return link.nhs_number.find('\n') != std::string::npos; })))
        return store_fault("a write's access facts hold a line break (" + target + ")");

    // A citizen's Patient goes only with the whole record, and only by a full erasure.
    std::vector<std::pair<std::string, std::string>> record;
    if (request.kind == write_kind::remove && request.type == "Patient" && live) {
        auto items = engine_.record_items(request.id);
        if (!items)
            return std::move(items).failure();
        record = std::move(*items);
        if (!record.empty() && !request.erase_record)
            // No count: the record may hold items the caller may not see.
            return fhir::error::make(fhir::category::conflict, "conflict",
                                     "the citizen's record holds items; a Patient is deleted only with its whole "
                                     "record, by a full erasure that the access policy must allow");
    }

    if (request.if_match && (!live || current->version_id != *request.if_match))
        return fhir::error::make(
            fhir::category::precondition_failed, "conflict",
            live ? target + " is at version " + std::to_string(current->version_id) + ", not " +
                       std::to_string(*request.if_match)
                 : target + " has no current version to match version " + std::to_string(*request.if_match));

    if (request.kind != write_kind::remove) {
        if (auto held = check_citizens(request); !held)
            return std::move(held).failure();
        // A Binary's bytes are not compared (megabytes read back): its update always makes a version.
        if (live && request.type != "Binary") {
            // Unchanged: stamped as the current version was, the bytes would be the same (comparing
            // bytes, not hashes, so a collision cannot lose an update), and so would the access facts
            // (the same content can give another link: an end date that has passed since).
            const std::string restamped = fhir::stamp_resource(request.content, request.id, current->version_id,
                                                               store::format_instant(current->last_updated));
            auto same = restamped == current->json ? engine_.same_access(request, *current) : fhir::result<bool>(false);
            if (!same)
                return std::move(same).failure();
            if (*same) {
                write_outcome outcome;
                outcome.unchanged = true;
                outcome.version = *current;
                return outcome;
            }
        }
    }
    // A full erasure: every item of the record goes, whoever wrote it, then the Patient.
    std::vector<stored_version> erased;
    for (const auto& [type, id] : record) {
        write_request item;
        item.kind = write_kind::remove;
        item.type = type;
        item.id = id;
        item.writer = request.writer;
        item.any_owner = true;
        auto removed = apply(item);
        if (!removed)
            return std::move(removed).failure();
        if (!removed->removed_nothing)
            erased.push_back(std::move(removed->version));
    }
    auto written = engine_.write_version(request, current);
    if (!written)
        return written;
    written->also_removed = std::move(erased);
    // Invariant 25: an erasure is final.
    if (request.erase_record && request.kind == write_kind::remove && request.type == "Patient") {
        record.emplace_back("Patient", request.id);
        if (auto gone = engine_.erase_citizen(request.id, record); !gone)
            return std::move(gone).failure();
    }
    return written;
}

fhir::result<write_rules::resolution> write_rules::resolve(const write_request& request) {
    const write_condition& condition = *request.condition;
    const std::string& type = request.type;
    auto found = engine_.matches(condition, std::max(1u, condition.max_matches) + 1);
    if (!found)
        return std::move(found).failure();
    std::vector<stored_version>& matches = *found;
    resolution decided;
    write_request plain = request;
    plain.condition.reset();
    auto too_many = [&] {
        return fhir::error::make(fhir::category::precondition_failed, "multiple-matches",
                                 "the criteria match " + std::string(matches.size() > condition.max_matches ? "more than " : "") +
                                     std::to_string(std::min<std::size_t>(matches.size(), condition.max_matches)) + " " + type +
                                     " resources; make them more selective");
    };
    switch (request.kind) {
    case write_kind::create:
        if (matches.size() > 1)
            return too_many();
        if (matches.size() == 1)
            decided.matched = std::move(matches.front());
        else
            decided.writes.push_back(std::move(plain));
        return decided;
    case write_kind::update:
        if (matches.size() > 1)
            return too_many();
        if (matches.size() == 1) {
            if (!condition.client_id.empty() && condition.client_id != matches.front().id)
                return fhir::error::make(fhir::category::malformed, "invalid",
                                         "the resource's id differs from the id of the " + type + " the criteria match",
                                         type + ".id");
            plain.id = matches.front().id;
        }
        decided.writes.push_back(std::move(plain));
        return decided;
    case write_kind::remove:
        if (matches.size() > 1 && (!condition.multiple || matches.size() > condition.max_matches))
            return too_many();
        for (const stored_version& match : matches) {
            const bool allowed = std::any_of(condition.removable.begin(), condition.removable.end(),
                                             [&](const search_visibility::type_grant& grant) {
                                                 return grant.type == type &&
                                                        (grant.whole || fhir::facets_satisfy(grant.facets, match.facets));
                                             });
            if (!allowed)
                return fhir::error::make(fhir::category::forbidden, "forbidden",
                                         "your role may not delete a " + type + " the criteria match");
            write_request one = plain;
            one.id = match.id;
            decided.writes.push_back(std::move(one));
        }
        return decided;
    }
    return store_fault("a conditional write of an unknown kind");
}

fhir::result<write_outcome> write_rules::apply_request(const write_request& request) {
    if (!request.condition)
        return apply_guarded(request);
    auto decided = resolve(request);
    if (!decided)
        return std::move(decided).failure();
    write_outcome outcome;
    if (decided->matched) {
        outcome.matched = true;
        outcome.version = std::move(*decided->matched);
        return outcome;
    }
    if (decided->writes.empty()) { // a conditional remove that matched nothing
        outcome.removed_nothing = true;
        outcome.version.type = request.type;
        return outcome;
    }
    for (std::size_t i = 0; i < decided->writes.size(); ++i) {
        auto applied = apply_guarded(decided->writes[i]);
        if (!applied)
            return std::move(applied).failure();
        if (i == 0) {
            outcome = std::move(*applied);
        } else {
            outcome.also_removed.push_back(std::move(applied->version));
            for (auto& more : applied->also_removed)
                outcome.also_removed.push_back(std::move(more));
        }
    }
    return outcome;
}

fhir::result<std::vector<write_outcome>> write_rules::apply_transaction(const std::vector<write_request>& writes,
                                                                        std::size_t& failed) {
    std::vector<write_request> plan = writes;
    std::vector<std::optional<write_outcome>> outcomes(writes.size());
    std::vector<std::pair<std::string, std::string>> renamed; // assigned id -> the id a condition chose
    // First the removes (applied at once, so later conditions see them) and every condition.
    for (std::size_t i = 0; i < plan.size(); ++i) {
        failed = i;
        if (plan[i].kind == write_kind::remove) {
            auto removed = apply_request(plan[i]);
            if (!removed)
                return std::move(removed).failure();
            outcomes[i] = std::move(*removed);
            continue;
        }
        if (!plan[i].condition)
            continue;
        auto decided = resolve(plan[i]);
        if (!decided)
            return std::move(decided).failure();
        std::string chosen;
        if (decided->matched) {
            chosen = decided->matched->id;
            write_outcome matched;
            matched.matched = true;
            matched.version = std::move(*decided->matched);
            outcomes[i] = std::move(matched);
        } else {
            plan[i] = std::move(decided->writes.front());
            chosen = plan[i].id;
        }
        if (chosen != writes[i].id) {
            if (!is_uuid(writes[i].id))
                return fhir::error::make(fhir::category::precondition_failed, "conflict",
                                         "the criteria match " + reference(writes[i].type, chosen) +
                                             ", but the resource's content fixes its id as " + writes[i].id);
            renamed.emplace_back(writes[i].id, chosen);
        }
    }
    for (const auto& [from, to] : renamed)
        for (write_request& write : plan)
            if (write.kind != write_kind::remove)
                replace_all(write.content, from, to);
    // Then the creates and updates, Patients first: an item may be listed before its citizen.
    for (const bool patients : {true, false})
        for (std::size_t i = 0; i < plan.size(); ++i) {
            if (outcomes[i] || (plan[i].type == "Patient") != patients)
                continue;
            failed = i;
            auto applied = apply_guarded(plan[i]);
            if (!applied)
                return std::move(applied).failure();
            outcomes[i] = std::move(*applied);
        }
    std::vector<write_outcome> done;
    done.reserve(outcomes.size());
    for (auto& outcome : outcomes)
        done.push_back(std::move(*outcome));
    return done;
}

fhir::status write_rules::check_citizens(const write_request& request) {
    std::vector<fhir::issue> missing;
    for (const auto& link : request.citizens) {
        if (request.type == "Patient" && link.nhs_number == request.id)
            continue; // a Patient naming itself is held once this very write is done
        auto held = engine_.citizen_held(link.nhs_number);
        if (!held)
            return std::move(held).failure();
        if (!*held)
            missing.push_back(fhir::issue{"error", "invalid", "the reference does not name a citizen held by this server",
                                          link.expression});
    }
    if (!missing.empty())
        return fhir::error{fhir::category::invalid, std::move(missing)};
    return {};
}

audit_record success_record(audit_record record, const write_outcome& outcome) {
    record.outcome = "success";
    if (!outcome.version.id.empty()) {
        record.resource_ids = outcome.version.id;
        for (const stored_version& removed : outcome.also_removed)
            record.resource_ids += " " + (removed.type == outcome.version.type ? removed.id : removed.type + "/" + removed.id);
    }
    if (record.nhs_number.empty() && !outcome.version.citizens.empty())
        record.nhs_number = outcome.version.citizens.front(); // a conditional write's match
    if (outcome.matched)
        record.detail += std::string(record.detail.empty() ? "" : "; ") + "matched an existing resource: nothing written";
    return record;
}

audit_record undone_record(audit_record record, const fhir::error* cause) {
    record.outcome = cause && cause->kind == fhir::category::forbidden ? "denied" : "failed";
    return record;
}

} // namespace caregate::storage
