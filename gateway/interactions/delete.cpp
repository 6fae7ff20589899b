// delete: https://hl7.org/fhir/R4/http.html#delete. Makes a deletion version (history keeps every
// earlier one); a later read answers 410. Deleting what is absent or already deleted answers 204.
#include "interactions/interactions.hpp"
#include "interactions/write.hpp"

#include "rest/error_response.hpp"

namespace caregate::interactions {

void delete_(rest::context& ctx, rest::responder& done) {
    if (auto ok = ctx.only_params({}); !ok)
        return done(rest::error_response(ok.failure()));
    auto expected = detail::if_match(ctx);
    if (!expected)
        return done(rest::error_response(expected.failure()));
    storage::write_request write;
    write.kind = storage::write_kind::remove;
    write.type = ctx.where.type;
    write.id = ctx.where.id;
    write.if_match = *expected;
    detail::submit_and_answer(ctx, std::move(write), done);
}

} // namespace caregate::interactions
