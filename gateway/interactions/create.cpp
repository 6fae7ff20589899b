// create: https://hl7.org/fhir/R4/http.html#create. The server assigns the id: for a Patient it is
// the NHS number, and a second Patient with the same number is a 409. The
// creating organisation owns the resource.
//
// Conditional create (If-None-Exist, https://hl7.org/fhir/R4/http.html#ccreate): the writer runs the
// criteria inside the write transaction, so concurrent identical requests make one resource. No
// match: 201; one: 200 with that resource, nothing written; several: 412. Only resources the caller
// may see count: a match hidden from the caller does not stop the create, which may then make a
// duplicate of it. That is the price of never revealing a hidden record (a 200 naming it, or a 412,
// would); a Patient is the exception, as its id is its NHS number, so a hidden one is a 409 exactly
// as for a plain create.
#include "interactions/interactions.hpp"
#include "interactions/write.hpp"
#include "interactions/binary.hpp"

#include "http/error_response.hpp"

#include <cctype>

namespace caregate::interactions {

namespace detail {

namespace {

using fhir::category;
using fhir::error;

/// Percent-decodes one part of a query string; nullopt when an escape is broken.
std::optional<std::string> percent_decoded(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(text[i + 2])))
            return std::nullopt;
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
    }
    return out;
}

/// If-None-Exist's value: the search parameters as a query string ("identifier=system|value"; also
/// accepted after "?" or "[type]?"). Read leniently as to characters, since clients send `|` and `:`
/// unescaped in a header, which no URL parser accepts.
fhir::result<criteria_list> if_none_exist(std::string_view text, std::string_view type) {
    if (const auto mark = text.find('?'); mark != std::string_view::npos) {
        if (mark != 0 && text.substr(0, mark) != type)
            return error::make(category::malformed, "value", "If-None-Exist names another resource type than the one created");
        text.remove_prefix(mark + 1);
    }
    criteria_list out;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const std::string_view pair = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        if (pair.empty())
            continue;
        const auto equals = pair.find('=');
        auto name = percent_decoded(pair.substr(0, equals));
        auto value = percent_decoded(equals == std::string_view::npos ? std::string_view{} : pair.substr(equals + 1));
        if (!name || !value)
            return error::make(category::malformed, "value", "If-None-Exist holds a broken percent escape");
        out.emplace_back(std::move(*name), std::move(*value));
    }
    return out;
}

} // namespace

fhir::result<planned_write> plan_create(context& ctx) {
    if (auto ok = ctx.only_params({}); !ok)
        return ok.failure();
    if (auto ok = check_may_ever(ctx, access::action::create); !ok)
        return ok.failure();
    auto prepared = prepare_body(ctx);
    if (!prepared)
        return std::move(prepared).failure();
    if (auto allowed = check_write(ctx, access::action::create, *prepared); !allowed)
        return allowed.failure();

    planned_write plan;
    plan.interaction = write_interaction::create;
    storage::write_request& write = plan.write;
    write.kind = storage::write_kind::create;
    write.type = ctx.where.type;
    write.id = write.type == "Patient" ? prepared->nhs_number : random_uuid();
    write.id_is_new = write.type != "Patient";
    write.fail_if_exists = true;
    write.content = std::move(prepared->content);
    write.citizens = std::move(prepared->citizens);
    write.access = std::move(prepared->access);
    take_binary_bytes(ctx, *prepared, write);
    std::string detail;
    if (const std::string_view header = ctx.req.header("If-None-Exist"); !header.empty()) {
        auto criteria = if_none_exist(header, write.type);
        if (!criteria)
            return std::move(criteria).failure();
        auto query = parse_criteria(ctx, *criteria);
        if (!query)
            return std::move(query).failure();
        detail = "If-None-Exist: " + criteria_text(*query);
        write.condition = make_condition(ctx, std::move(query.value()));
    }
    sign_write(ctx, write, "create", {}, std::move(detail));
    return plan;
}

} // namespace detail

void create(context& ctx, http::responder& done) {
    detail::submit_and_answer(ctx, detail::plan_create(ctx), done);
}

} // namespace caregate::interactions
