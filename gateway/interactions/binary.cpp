// A Binary through the REST API: see binary.hpp.
#include "interactions/binary.hpp"

#include "fhir_model/binary.hpp"
#include "fhir_model/summary.hpp"
#include "interactions/write.hpp"
#include "http/error_response.hpp"

#include <boost/url/parse.hpp>

#include <memory>
#include <string>

namespace caregate::interactions::detail {

namespace {


bool mentions(std::string_view text, std::string_view word) { return text.find(word) != std::string_view::npos; }

std::string_view trimmed(std::string_view text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos)
        return {};
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

/// Invariant 2: FHIR when the client names it; its bytes otherwise (no Accept, */*, the document's type).
bool wants_fhir(const context& ctx) {
    if (ctx.param("_format"))
        return true; // check_accept has taken only JSON's and XML's names
    const std::string_view accept = ctx.req.header("Accept");
    return mentions(accept, "fhir+") || mentions(accept, "application/json");
}

} // namespace

bool is_raw_binary_upload(const context& ctx) {
    if (ctx.where.type != "Binary")
        return false;
    const std::string_view type = ctx.req.header("Content-Type");
    return !type.empty() && !mentions(type, "json");
}

fhir::result<fhir::prepared_resource> prepare_raw_binary(const context& ctx, const storage::stored_version* changing) {
    const std::string_view content_type = trimmed(ctx.req.header("Content-Type"));
    return prepare_content(ctx, fhir::raw_binary_json(ctx.where.id, content_type, trimmed(ctx.req.header("X-Security-Context"))),
                           changing);
}

void take_binary_bytes(context& ctx, fhir::prepared_resource& prepared, storage::write_request& write) {
    if (write.type != "Binary")
        return;
    if (is_raw_binary_upload(ctx)) {
        if (!ctx.req.body.empty())
            write.binary_bytes = std::make_shared<const std::string>(std::move(ctx.req.body));
    } else if (!prepared.binary_bytes.empty()) {
        write.binary_bytes = std::make_shared<const std::string>(std::move(prepared.binary_bytes));
    }
}

http::response binary_response(const context& ctx, const storage::stored_version& version) {
    http::response out = version_response(ctx.config, 200, version, prefer_return::minimal, false);
    const bool fhir_form = wants_fhir(ctx);
    std::string body;
    std::optional<fhir::binary_with_data> resource;
    auto read = ctx.store.binary_bytes(version.id, version.version_id, [&](std::string_view part, std::size_t whole) {
        if (fhir_form) {
            if (!resource)
                resource.emplace(body, version.json, whole);
            resource->append(part);
        } else {
            if (body.empty())
                body.reserve(whole);
            body.append(part);
        }
        return fhir::status{};
    });
    if (!read)
        return http::error_response(read.failure());
    if (fhir_form) {
        if (!resource) // a Binary without bytes
            resource.emplace(body, version.json, 0);
        resource->finish();
        out.set("Content-Type", "application/fhir+json; charset=utf-8");
    } else {
        const fhir::binary_description described = fhir::describe_binary(version.json);
        out.set("Content-Type", described.content_type.empty() ? "application/octet-stream" : described.content_type);
        if (!described.security_context.empty())
            out.set("X-Security-Context", described.security_context);
        // Invariant 3: whatever the uploader called it, never a page of this origin.
        out.set("X-Content-Type-Options", "nosniff");
        out.set("Content-Security-Policy", "default-src 'none'; sandbox");
        out.set("Content-Disposition", "attachment");
    }
    out.body = std::move(body);
    return out;
}

std::function<bool(std::string_view, std::string_view)> binary_upload_lines(std::string_view base_url) {
    std::string base_path;
    if (auto parsed = boost::urls::parse_uri(base_url))
        base_path = std::string(parsed->encoded_path());
    while (!base_path.empty() && base_path.back() == '/')
        base_path.pop_back();
    return [binary = base_path + "/Binary"](std::string_view method, std::string_view target) {
        if (method != "POST" && method != "PUT")
            return false;
        const std::string_view path = target.substr(0, target.find('?'));
        if (!path.starts_with(binary))
            return false;
        const std::string_view rest = path.substr(binary.size());
        if (method == "POST")
            return rest.empty() || rest == "/";
        return rest.size() > 1 && rest.front() == '/' && rest.find('/', 1) == std::string_view::npos;
    };
}

} // namespace caregate::interactions::detail
