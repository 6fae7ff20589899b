// Errors as values: a category that says what kind of failure it is, and the OperationOutcome issues
// that describe it. Crosses every layer; exactly one place (gateway/rest/error_response) turns a
// category into an HTTP status. Not for bugs: those are exceptions, caught at the session boundary.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace caregate::fhir {

/// What kind of failure; the gateway maps each to one HTTP status.
enum class category {
    malformed,              ///< the request cannot be parsed (bad JSON, bad query)           -> 400
    invalid,                ///< parsed, but breaks the rules of FHIR or of this server        -> 422
    not_found,              ///< no such type or resource, or one the caller may not see       -> 404
    deleted,                ///< the resource's current version is a deletion                  -> 410
    conflict,               ///< the resource already exists, or a version race                -> 409
    precondition_failed,    ///< If-Match and friends did not hold                             -> 412
    method_not_allowed,     ///< the path exists, the method does not                          -> 405
    not_acceptable,         ///< the client asked for a format we do not produce (XML)         -> 406
    unsupported_media_type, ///< the body is in a format we do not read                        -> 415
    unsupported,            ///< a parameter or feature this server does not implement         -> 400
    unauthorised,           ///< no valid credentials                                          -> 401
    forbidden,              ///< credentials fine, the interaction is never allowed            -> 403
    too_large,              ///< body over the limit                                           -> 413
    headers_too_large,      ///< request header over the limit                                 -> 431
    timeout,                ///< the client was too slow sending its request                   -> 408
    busy,                   ///< storage is temporarily unavailable; retry                     -> 503
    fault,                  ///< a failure inside the server (I/O, a bug)                      -> 500
};

/// One OperationOutcome.issue.
struct issue {
    std::string severity = "error"; ///< fatal | error | warning | information
    std::string code;               ///< IssueType code: invalid, structure, required, value, not-found, ...
    std::string diagnostics;        ///< human-readable; must never carry patient data
    std::string expression;         ///< FHIRPath of the element at fault, e.g. "Patient.birthDate"
};

struct error {
    category kind = category::fault;
    std::vector<issue> issues;

    /// An error with a single issue.
    static error make(category kind, std::string code, std::string diagnostics,
                      std::string expression = {}) {
        return error{kind, {issue{"error", std::move(code), std::move(diagnostics), std::move(expression)}}};
    }
};

/// A value or an error. Small on purpose: `ok()`, `value()`, `failure()`.
template <class T>
class result {
public:
    result(T value) : state_(std::move(value)) {}
    result(error failure) : state_(std::move(failure)) {}

    bool ok() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const error& failure() const& { return std::get<1>(state_); }
    error&& failure() && { return std::get<1>(std::move(state_)); }

private:
    std::variant<T, error> state_;
};

/// Success or an error, with no value.
template <>
class result<void> {
public:
    result() = default;
    result(error failure) : failure_(std::move(failure)), ok_(false) {}

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const error& failure() const& { return failure_; }
    error&& failure() && { return std::move(failure_); }

private:
    error failure_;
    bool ok_ = true;
};

using status = result<void>;

/// The OperationOutcome resource for an error, as compact JSON.
std::string operation_outcome_json(const error& failure);

} // namespace caregate::fhir
