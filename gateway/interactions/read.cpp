// read: https://hl7.org/fhir/R4/http.html#read, with conditional read (If-None-Match,
// If-Modified-Since: https://hl7.org/fhir/R4/http.html#cread). Serves the stored bytes as they are.
// A resource the caller may not see answers 404, as one that does not exist.
#include "interactions/interactions.hpp"

#include "fhir_model/date_time.hpp"
#include "interactions/access_steps.hpp"
#include "interactions/binary.hpp"
#include "http/error_response.hpp"

#include <memory>

namespace caregate::interactions {

namespace {

/// The rest of a read, once the current version is known: the access decision, the audit record and
/// the answer.
void answer_read(context& ctx, fhir::result<storage::stored_version> current, http::responder& done) {
    auto found = detail::visible_current(ctx, ctx.where.type, ctx.where.id, std::move(current));
    if (!found) {
        detail::audit_access(ctx, "read", {}, "not-found");
        return done(http::error_response(found.failure()));
    }
    const storage::stored_version& version = *found;
    detail::audit_access(ctx, "read", {&version}, "success");

    bool not_modified = false;
    if (auto tag = ctx.req.header("If-None-Match"); !tag.empty())
        not_modified = parse_etag(tag) == version.version_id;
    else if (auto since = fhir::parse_http_date(ctx.req.header("If-Modified-Since")))
        not_modified = version.last_updated / 1'000'000 <= *since / 1'000'000; // HTTP dates have seconds
    if (not_modified)
        return done(version_response(ctx.config, 304, version, prefer_return::minimal, false));
    if (version.type == "Binary")
        return done(detail::binary_response(ctx, version));
    done(version_response(ctx.config, 200, version, prefer_return::representation, false));
}

} // namespace

void read(context& ctx, http::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(http::error_response(ok.failure()));
    if (!detail::check_permitted(ctx, access::action::read, done))
        return;
    // The store answers on a thread of its own when its read is a round trip (store.hpp), so the
    // request's context goes with the answer; this thread serves other requests meanwhile.
    struct pending_read {
        context ctx;
        http::responder done;
    };
    auto pending = std::make_shared<pending_read>(pending_read{std::move(ctx), std::move(done)});
    const route& where = pending->ctx.where;
    pending->ctx.store.read_current_async(where.type, where.id, [pending](fhir::result<storage::stored_version> current) {
        try {
            answer_read(pending->ctx, std::move(current), pending->done);
        } catch (...) {
            pending->done(http::error_response(
                fhir::error::make(fhir::category::fault, "exception", "the read could not be completed")));
        }
    });
}

} // namespace caregate::interactions
