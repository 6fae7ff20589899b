// Composition/{id}/$document (https://hl7.org/fhir/R4/composition-operation-document.html): a FHIR
// document Bundle (https://hl7.org/fhir/R4/documents.html) assembled from a stored Composition and
// what it references, as the caller may see them.
//
// Invariants:
//  1. Whole or not at all. The Bundle holds the Composition first, then every resource its subject,
//     encounter, author, attester.party, custodian and each section's (nested sections' too) author,
//     focus and entry reference, each once. If any of them is not held here, is hidden from the
//     caller, or lives on another server, the answer is 422 naming the Composition's elements whose
//     items could not be included, never a document shipped silently incomplete. Hidden and absent
//     answer alike, and the elements named are the caller's own Composition's, so the refusal tells
//     nothing the Composition itself does not.
//  2. Each item is decided by the one visibility rule (visible_current, and for a version-specific
//     reference that version as a vread decides it). Only the Composition's read may break the
//     glass; its references never open another record.
//  3. One audit record per citizen the document shows, action "document"; a refusal is audited.
//  4. Nothing is stored: `persist` is refused until document Bundles are stored (README, Not yet).
#include "interactions/interactions.hpp"

#include "interactions/access_steps.hpp"
#include "interactions/bundle_writer.hpp"
#include "http/error_response.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <string>
#include <vector>

namespace caregate::interactions {

namespace {

using fhir::category;
using fhir::error;

/// A reference the document must include, and where the Composition makes it.
struct wanted_item {
    std::string reference; ///< as written
    std::string element;   ///< FHIRPath of the Reference, e.g. Composition.section[0].entry[1]
};

void want(const rapidjson::Value& reference, std::string element, std::vector<wanted_item>& out) {
    if (!reference.IsObject())
        return;
    auto literal = reference.FindMember("reference");
    if (literal == reference.MemberEnd() || !literal->value.IsString())
        return; // an identifier or a display alone: no resource to include
    std::string text(literal->value.GetString(), literal->value.GetStringLength());
    if (text.starts_with('#'))
        return; // contained: in the Composition already
    out.push_back({std::move(text), std::move(element)});
}

/// `name` of `object`, one Reference or an array of them.
void want_member(const rapidjson::Value& object, const char* name, const std::string& path, std::vector<wanted_item>& out) {
    auto member = object.FindMember(name);
    if (member == object.MemberEnd())
        return;
    if (member->value.IsArray()) {
        for (rapidjson::SizeType i = 0; i < member->value.Size(); ++i)
            want(member->value[i], path + "." + name + "[" + std::to_string(i) + "]", out);
    } else {
        want(member->value, path + "." + name, out);
    }
}

void want_sections(const rapidjson::Value& holder, const std::string& path, std::vector<wanted_item>& out) {
    auto sections = holder.FindMember("section");
    if (sections == holder.MemberEnd() || !sections->value.IsArray())
        return;
    for (rapidjson::SizeType i = 0; i < sections->value.Size(); ++i) {
        const rapidjson::Value& section = sections->value[i];
        if (!section.IsObject())
            continue;
        const std::string at = path + ".section[" + std::to_string(i) + "]";
        for (const char* name : {"author", "focus", "entry"})
            want_member(section, name, at, out);
        want_sections(section, at, out);
    }
}

/// Invariant 1's list, in the Bundle's order.
std::vector<wanted_item> items_of(const rapidjson::Value& composition) {
    std::vector<wanted_item> out;
    for (const char* name : {"subject", "encounter", "author", "custodian"})
        want_member(composition, name, "Composition", out);
    if (auto attesters = composition.FindMember("attester");
        attesters != composition.MemberEnd() && attesters->value.IsArray())
        for (rapidjson::SizeType i = 0; i < attesters->value.Size(); ++i)
            if (attesters->value[i].IsObject())
                want_member(attesters->value[i], "party", "Composition.attester[" + std::to_string(i) + "]", out);
    want_sections(composition, "Composition", out);
    return out;
}

/// Type, id and version ("Type/id" or "Type/id/_history/n", relative or under this server's base) of a
/// reference to a resource held here; nullopt for one on another server or of another shape.
struct item_address {
    std::string type;
    std::string id;
    std::int64_t version_id = 0; ///< 0: the current version
};

std::optional<item_address> address_of(std::string_view reference, const std::string& base_url) {
    if (reference.starts_with(base_url + "/"))
        reference.remove_prefix(base_url.size() + 1);
    else if (reference.find(':') != std::string_view::npos)
        return std::nullopt; // another server's, or a urn
    std::vector<std::string_view> parts;
    while (!reference.empty()) {
        const auto slash = reference.find('/');
        parts.push_back(reference.substr(0, slash));
        reference = slash == std::string_view::npos ? std::string_view{} : reference.substr(slash + 1);
    }
    item_address out;
    if (parts.size() == 4 && parts[2] == "_history") {
        try {
            out.version_id = std::stoll(std::string(parts[3]));
        } catch (...) {
            return std::nullopt;
        }
    } else if (parts.size() != 2) {
        return std::nullopt;
    }
    if (!fhir::is_supported_type(parts[0]) || parts[1].empty())
        return std::nullopt;
    out.type = std::string(parts[0]);
    out.id = std::string(parts[1]);
    return out;
}

/// The version an item's reference names, if the caller may see it (invariant 2); nullopt otherwise.
fhir::result<std::optional<storage::stored_version>> visible_item(context& ctx, const item_address& at) {
    auto current = detail::visible_current(ctx, at.type, at.id, false);
    if (!current) {
        if (current.failure().kind == category::not_found || current.failure().kind == category::deleted)
            return std::optional<storage::stored_version>{};
        return std::move(current).failure();
    }
    if (at.version_id == 0 || at.version_id == current->version_id)
        return std::optional<storage::stored_version>{std::move(*current)};
    auto version = ctx.store.vread(at.type, at.id, at.version_id);
    if (!version)
        return std::optional<storage::stored_version>{};
    auto visible = ctx.guard->can_read(*ctx.who, *version, ctx.request_id, ctx.now, ctx.views, false);
    if (!visible)
        return std::move(visible).failure();
    if (!*visible)
        return std::optional<storage::stored_version>{};
    return std::optional<storage::stored_version>{std::move(*version)};
}

} // namespace

void document(context& ctx, http::responder& done) {
    if (auto ok = ctx.only_params({"persist", "graph"}); !ok)
        return done(http::error_response(ok.failure()));
    if (auto persist = ctx.param("persist"); persist && *persist != "false")
        return done(http::error_response(error::make(
            category::unsupported, "not-supported",
            "persist is not supported: this server does not store document Bundles yet; the document is "
            "assembled on each request",
            "persist")));
    if (ctx.param("graph"))
        return done(http::error_response(error::make(
            category::unsupported, "not-supported",
            "graph is not supported: a document holds what its Composition references", "graph")));
    if (!detail::check_permitted(ctx, access::action::read, done))
        return;

    auto composition = detail::visible_current(ctx, "Composition", ctx.where.id);
    if (!composition) {
        detail::audit_access(ctx, "document", {}, "not-found");
        return done(http::error_response(composition.failure()));
    }
    rapidjson::Document parsed;
    parsed.Parse(composition->json.data(), composition->json.size());
    if (parsed.HasParseError() || !parsed.IsObject())
        return done(http::error_response(
            error::make(category::fault, "exception", "the stored Composition could not be read")));

    std::vector<storage::stored_version> included;
    std::vector<std::string> seen{"Composition/" + composition->id};
    error incomplete;
    incomplete.kind = category::invalid;
    for (const wanted_item& item : items_of(parsed)) {
        const auto at = address_of(item.reference, ctx.config.base_url);
        std::optional<storage::stored_version> found;
        if (at) {
            const std::string key = at->type + "/" + at->id + (at->version_id ? "/_history/" + std::to_string(at->version_id) : "");
            if (std::find(seen.begin(), seen.end(), key) != seen.end())
                continue;
            auto visible = visible_item(ctx, *at);
            if (!visible)
                return done(http::error_response(visible.failure()));
            found = std::move(*visible);
            if (found)
                seen.push_back(key);
        }
        if (!found) {
            incomplete.issues.push_back(
                {"error", "incomplete",
                 "the document cannot be assembled whole: this item is not held here or not visible to you, and a "
                 "document is never sent without part of it",
                 item.element});
            continue;
        }
        included.push_back(std::move(*found));
    }
    if (!incomplete.issues.empty()) {
        detail::audit_access(ctx, "document", {&*composition}, "incomplete",
                             std::to_string(incomplete.issues.size()) + " referenced items could not be included");
        return done(http::error_response(incomplete));
    }

    std::vector<const storage::stored_version*> shown{&*composition};
    for (const auto& version : included)
        shown.push_back(&version);
    detail::audit_access(ctx, "document", shown, "success");

    const std::string timestamp = storage::store::format_instant(ctx.now);
    bundle_writer bundle("document", {}, document_identity{"urn:uuid:" + random_uuid(), timestamp});
    for (const storage::stored_version* version : shown) {
        const std::string full_url = ctx.config.base_url + "/" + version->type + "/" + version->id;
        bundle.entry({.full_url = full_url, .resource = version->json});
    }
    done(json_response(bundle.finish()));
}

} // namespace caregate::interactions
