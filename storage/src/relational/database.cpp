// The driver-neutral parts of a connection: its statement caches and the failure mapping (see
// database.hpp). Each driver describes its own codes (sqlite/sqlite.cpp, postgresql/libpq.cpp).
#include "database.hpp"

#include "../postgresql/libpq.hpp"
#include "../sqlite/sqlite.hpp"

#include <stdexcept>

namespace caregate::storage::detail {

bool is_transient(int code) noexcept {
    return is_postgresql_code(code) ? postgresql_code_transient(code) : sqlite_code_transient(code);
}

fhir::error storage_failure(int code, std::string_view doing) {
    const bool transient = is_transient(code);
    std::string diagnostics = "storage ";
    diagnostics += transient ? "temporarily unavailable" : "failure";
    diagnostics += " while ";
    diagnostics += doing;
    diagnostics += ": ";
    diagnostics += is_postgresql_code(code) ? postgresql_code_text(code) : sqlite_code_text(code);
    if (transient)
        return fhir::error::make(fhir::category::busy, "transient", std::move(diagnostics));
    return fhir::error::make(fhir::category::fault, "exception", std::move(diagnostics));
}

void connection::drop_statements() noexcept {
    varying_index_.clear();
    varying_.clear();
    statements_.clear();
}

fhir::result<prepared*> connection::prepare(const std::string& sql, std::string_view doing) {
    if (auto found = statements_.find(sql); found != statements_.end())
        return found->second.get();
    auto compiled = compile(sql, true, doing);
    if (!compiled)
        return std::move(compiled).failure();
    prepared* stmt = compiled->get();
    statements_.emplace(sql, std::move(*compiled));
    return stmt;
}

fhir::result<connection::varying_statement> connection::prepare_varying(const std::string& sql,
                                                                        std::string_view doing) {
    if (auto found = varying_index_.find(sql); found != varying_index_.end()) {
        auto entry = found->second;
        if (!entry->second->busy()) {
            varying_.splice(varying_.begin(), varying_, entry); // most recently used
            return varying_statement{entry->second.get(), nullptr};
        }
        // In use further up the stack (a row callback running the same shape): a fresh one.
        auto fresh = compile(sql, false, doing);
        if (!fresh)
            return std::move(fresh).failure();
        prepared* stmt = fresh->get();
        return varying_statement{stmt, std::move(*fresh)};
    }
    auto compiled = compile(sql, true, doing);
    if (!compiled)
        return std::move(compiled).failure();
    if (varying_.size() >= varying_limit && !varying_.back().second->busy()) {
        varying_index_.erase(varying_.back().first);
        varying_.pop_back();
    }
    prepared* stmt = compiled->get();
    varying_.emplace_front(sql, std::move(*compiled));
    varying_index_.emplace(varying_.front().first, varying_.begin());
    return varying_statement{stmt, nullptr};
}

fhir::status connection::run(const std::string& sql, std::string_view doing) {
    auto prepared = prepare(sql, doing);
    if (!prepared)
        return std::move(prepared).failure();
    statement use(*prepared);
    int code;
    while ((code = use.step()) == step_row) {
    }
    if (code != step_done)
        return storage_failure(code, doing);
    return {};
}

int statement::named(const char* name) const {
    const int index = held_->parameter_index(name);
    if (index == 0)
        throw std::logic_error(std::string("statement has no parameter ") + name);
    return index;
}

} // namespace caregate::storage::detail
