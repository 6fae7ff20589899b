// The PostgreSQL driver: see libpq.hpp.
#include "libpq.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

namespace caregate::storage::detail {

namespace {

constexpr int code_flag = 0x40000000;
constexpr const char* connection_lost = "08006";

// Type OIDs (pg_type.dat) of the values this driver binds and reads.
constexpr Oid bool_oid = 16, bytea_oid = 17, int8_oid = 20, int2_oid = 21, int4_oid = 23, text_oid = 25,
              oid_oid = 26, float4_oid = 700, float8_oid = 701, numeric_oid = 1700;

int base36(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    return 0;
}

bool word_at(std::string_view sql, std::size_t at, std::string_view word) {
    if (sql.size() - at < word.size())
        return false;
    for (std::size_t i = 0; i < word.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(sql[at + i])) != word[i])
            return false;
    return true;
}

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

/// Commands in a pipeline before it is settled whatever comes: their results (a few dozen bytes each)
/// then fit in the socket's buffers, so neither side waits on the other.
constexpr std::size_t pipeline_limit = 512;

/// What a statement's text says of how it may run (postgresql_connection's invariants in libpq.hpp):
/// `begin` is deferred too, when no transaction is open, so that it travels with the statement after it.
enum class statement_kind { deferrable, begin, rollback, other };

statement_kind kind_of(std::string_view sql) {
    std::size_t at = 0;
    while (at < sql.size() && std::isspace(static_cast<unsigned char>(sql[at])))
        ++at;
    if (word_at(sql, at, "ROLLBACK"))
        return statement_kind::rollback;
    if (word_at(sql, at, "BEGIN"))
        return statement_kind::begin;
    if (word_at(sql, at, "SAVEPOINT") || word_at(sql, at, "RELEASE"))
        return statement_kind::deferrable;
    // Its one row says nothing; what runs after it runs once it has the lock (or not at all).
    if (word_at(sql, at, "SELECT PG_ADVISORY_XACT_LOCK("))
        return statement_kind::deferrable;
    if (!word_at(sql, at, "INSERT") && !word_at(sql, at, "UPDATE") && !word_at(sql, at, "DELETE"))
        return statement_kind::other;
    for (std::size_t k = at; k + 9 <= sql.size(); ++k)
        if (word_at(sql, k, "RETURNING") && !is_name_char(sql[k - 1]) &&
            (k + 9 == sql.size() || !is_name_char(sql[k + 9])))
            return statement_kind::other;
    return statement_kind::deferrable;
}

} // namespace

bool is_postgresql_code(int code) noexcept { return (code & code_flag) != 0; }

int postgresql_code(std::string_view sqlstate) noexcept {
    int value = 0;
    for (std::size_t i = 0; i < 5; ++i)
        value = value * 36 + (i < sqlstate.size() ? base36(sqlstate[i]) : 0);
    return code_flag | value;
}

std::string postgresql_sqlstate(int code) {
    int value = code & ~code_flag;
    std::string state(5, '0');
    for (int i = 4; i >= 0; --i) {
        const int digit = value % 36;
        state[static_cast<std::size_t>(i)] = static_cast<char>(digit < 10 ? '0' + digit : 'A' + digit - 10);
        value /= 36;
    }
    return state;
}

bool postgresql_code_transient(int code) noexcept {
    const std::string state = postgresql_sqlstate(code);
    const std::string_view cls = std::string_view(state).substr(0, 2);
    return cls == "08" || cls == "53" || cls == "57" || state == "40001" || state == "40P01" ||
           state == "55P03" || state == "25006";
}

std::string postgresql_code_text(int code) {
    static const std::map<std::string, std::string, std::less<>> classes = {
        {"08", "connection exception"},        {"22", "data exception"},
        {"23", "integrity constraint violation"}, {"25", "invalid transaction state"},
        {"40", "transaction rollback"},        {"42", "syntax error or access rule violation"},
        {"53", "insufficient resources"},      {"54", "program limit exceeded"},
        {"55", "object not in prerequisite state"}, {"57", "operator intervention"},
        {"58", "system error"},                {"P0", "PL/pgSQL error"},
        {"XX", "internal error"},
    };
    const std::string state = postgresql_sqlstate(code);
    std::string words = "SQLSTATE " + state;
    if (auto found = classes.find(state.substr(0, 2)); found != classes.end())
        words += " (" + found->second + ")";
    return words;
}

int postgresql_result_code(const PGresult* result, const PGconn* db) noexcept {
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    if (!state || PQstatus(db) != CONNECTION_OK)
        return postgresql_code(connection_lost);
    return postgresql_code(state);
}

translated_sql translate_to_postgresql(std::string_view sql) {
    translated_sql out;
    out.text.reserve(sql.size() + 32);
    std::map<std::string, int, std::less<>> named;
    bool ignore_conflicts = false;
    for (std::size_t i = 0; i < sql.size();) {
        const char c = sql[i];
        if (c == '\'' || c == '"') { // a literal or a quoted name, copied whole ('' and "" escape)
            const std::size_t start = i++;
            while (i < sql.size() && !(sql[i] == c && (i + 1 >= sql.size() || sql[i + 1] != c)))
                i += (sql[i] == c) ? 2 : 1;
            i = std::min(i + 1, sql.size());
            out.text.append(sql.substr(start, i - start));
            continue;
        }
        if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') { // a comment, to the line's end
            const std::size_t end = sql.find('\n', i);
            const std::size_t stop = end == std::string_view::npos ? sql.size() : end;
            out.text.append(sql.substr(i, stop - i));
            i = stop;
            continue;
        }
        if (c == '?') {
            std::size_t j = i + 1;
            while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])))
                ++j;
            int index = out.parameters + 1;
            if (j > i + 1)
                std::from_chars(sql.data() + i + 1, sql.data() + j, index);
            out.parameters = std::max(out.parameters, index);
            out.text += '$' + std::to_string(index);
            i = j;
            continue;
        }
        if (c == ':' && i + 1 < sql.size() && (std::isalpha(static_cast<unsigned char>(sql[i + 1])) || sql[i + 1] == '_') &&
            (i == 0 || sql[i - 1] != ':')) {
            std::size_t j = i + 1;
            while (j < sql.size() && is_name_char(sql[j]))
                ++j;
            const std::string name(sql.substr(i, j - i));
            auto [found, added] = named.emplace(name, out.parameters + 1);
            if (added)
                out.parameters = found->second;
            out.text += '$' + std::to_string(found->second);
            i = j;
            continue;
        }
        if ((i == 0 || !is_name_char(sql[i - 1])) && word_at(sql, i, "INSERT OR ")) {
            const std::size_t after = i + 10;
            if (word_at(sql, after, "IGNORE ")) {
                ignore_conflicts = true;
                out.text += "INSERT ";
                i = after + 7;
                continue;
            }
            if (word_at(sql, after, "FAIL ") || word_at(sql, after, "ABORT ")) {
                out.text += "INSERT ";
                i = after + (word_at(sql, after, "FAIL ") ? 5 : 6);
                continue;
            }
        }
        if ((i == 0 || !is_name_char(sql[i - 1])) && word_at(sql, i, "UPDATE OR FAIL ")) {
            out.text += "UPDATE ";
            i += 15;
            continue;
        }
        if ((i == 0 || !is_name_char(sql[i - 1])) && word_at(sql, i, "BEGIN IMMEDIATE")) {
            out.text += "BEGIN";
            i += 15;
            continue;
        }
        out.text += c;
        ++i;
    }
    if (ignore_conflicts) {
        // Before a RETURNING clause, if any, else at the end.
        std::size_t at = std::string::npos;
        for (std::size_t k = 0; k + 9 <= out.text.size(); ++k)
            if (word_at(out.text, k, "RETURNING") && (k == 0 || !is_name_char(out.text[k - 1])))
                at = k;
        if (at == std::string::npos)
            out.text += " ON CONFLICT DO NOTHING";
        else
            out.text.insert(at, "ON CONFLICT DO NOTHING ");
    }
    out.names.assign(static_cast<std::size_t>(out.parameters), std::string());
    for (const auto& [name, index] : named)
        out.names[static_cast<std::size_t>(index - 1)] = name;
    return out;
}

namespace {

/// A statement on a PostgreSQL connection: its values kept as text until the run, the whole result
/// fetched by the first step.
class postgresql_prepared final : public prepared, public server_preparation {
public:
    postgresql_prepared(postgresql_connection& db, translated_sql sql, bool lasting)
        : db_(db), sql_(std::move(sql)), lasting_(lasting), kind_(kind_of(sql_.text)),
          batch_shape_(lasting && kind_ == statement_kind::deferrable ? db.batch_shape(sql_.text) : nullptr),
          values_(static_cast<std::size_t>(sql_.parameters)), nulls_(values_.size(), true), types_(values_.size(), 0) {}
    ~postgresql_prepared() override {
        if (result_)
            PQclear(result_);
        if (!server_name_.empty() && db_.healthy() && !db_.in_transaction_failed())
            discard();
    }

    int bind_integer(int index, std::int64_t value) override { return keep(index, std::to_string(value), int8_oid); }
    int bind_real(int index, double value) override {
        char buffer[32];
        const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
        return keep(index, std::string(buffer, end), float8_oid);
    }
    int bind_text(int index, std::string_view text) override { return keep(index, std::string(text), text_oid); }
    int bind_blob(int index, std::string_view bytes) override { return keep(index, std::string(bytes), text_oid); }
    int bind_null(int index) override {
        if (index < 1 || index > sql_.parameters)
            return postgresql_code("42P02"); // undefined parameter
        nulls_[static_cast<std::size_t>(index - 1)] = true;
        return step_ok;
    }
    int parameter_index(const char* name) const override {
        for (std::size_t i = 0; i < sql_.names.size(); ++i)
            if (sql_.names[i] == name)
                return static_cast<int>(i + 1);
        return 0;
    }

    int parameter_count() const override { return sql_.parameters; }
    int step() override {
        if (!ran_) {
            ran_ = true;
            if (const int code = run(); code != step_ok)
                return code;
            row_ = 0;
        } else {
            ++row_;
        }
        return row_ < rows_ ? step_row : step_done;
    }
    void reset() override {
        if (result_)
            PQclear(result_);
        result_ = nullptr;
        ran_ = false;
        rows_ = 0;
        row_ = -1;
        std::fill(nulls_.begin(), nulls_.end(), true);
    }
    bool busy() const override { return ran_; }

    std::int64_t integer(int column) const override {
        if (PQgetisnull(result_, row_, column))
            return 0;
        const char* text = PQgetvalue(result_, row_, column);
        if (text[0] == 't' && text[1] == 0)
            return 1;
        if (text[0] == 'f' && text[1] == 0)
            return 0;
        return std::strtoll(text, nullptr, 10);
    }
    double real(int column) const override {
        return PQgetisnull(result_, row_, column) ? 0.0 : std::strtod(PQgetvalue(result_, row_, column), nullptr);
    }
    std::string text(int column) const override {
        if (PQgetisnull(result_, row_, column))
            return {};
        const char* text = PQgetvalue(result_, row_, column);
        const auto length = static_cast<std::size_t>(PQgetlength(result_, row_, column));
        if (PQftype(result_, column) == bytea_oid) {
            std::size_t size = 0;
            unsigned char* bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &size);
            std::string value(reinterpret_cast<const char*>(bytes), size);
            PQfreemem(bytes);
            return value;
        }
        return std::string(text, length);
    }
    bool is_null(int column) const override { return PQgetisnull(result_, row_, column) != 0; }
    void forget_server_name() noexcept override { server_name_.clear(); }
    sql_value value(int column) const override {
        if (PQgetisnull(result_, row_, column))
            return std::monostate{};
        switch (PQftype(result_, column)) {
        case int8_oid:
        case int4_oid:
        case int2_oid:
        case oid_oid:
        case bool_oid:
            return integer(column);
        case float4_oid:
        case float8_oid:
            return real(column);
        case numeric_oid: {
            const char* text = PQgetvalue(result_, row_, column);
            if (std::strpbrk(text, ".eE"))
                return real(column);
            return integer(column);
        }
        default:
            return text(column);
        }
    }

private:
    int keep(int index, std::string value, Oid type) {
        if (index < 1 || index > sql_.parameters)
            return postgresql_code("42P02");
        const auto at = static_cast<std::size_t>(index - 1);
        values_[at] = std::move(value);
        nulls_[at] = false;
        types_[at] = type;
        return step_ok;
    }

    int run() {
        if (batch_shape_ && db_.deferring_now()) { // its rows join their batch (libpq.hpp)
            rows_ = 0;
            return db_.batch_rows(batch_shape_, values_, nulls_);
        }
        std::vector<const char*> values(values_.size());
        for (std::size_t i = 0; i < values_.size(); ++i)
            values[i] = nulls_[i] ? nullptr : values_[i].c_str();
        PGconn* conn = db_.handle();
        const int count = static_cast<int>(values.size());
        if (lasting_ && ((kind_ == statement_kind::deferrable && db_.deferring_now()) ||
                         (kind_ == statement_kind::begin && db_.may_defer_begin())))
            return defer(values);
        if (lasting_ && kind_ != statement_kind::rollback && db_.pipelined()) {
            // Behind what is pipelined, in the same round trip; a failure before it is its failure
            // (the server would refuse it in the aborted transaction anyway).
            if (const int sent = send(values); sent != step_ok)
                return sent;
            PGresult* mine = nullptr;
            if (const int settled = db_.settle_pending(&mine); settled != step_ok) {
                if (mine)
                    PQclear(mine);
                return settled;
            }
            result_ = mine;
            return take_result();
        }
        // A rollback runs whatever came before it failed.
        if (const int settled = db_.settle_pending(); settled != step_ok && kind_ != statement_kind::rollback)
            return settled;
        if (lasting_ && server_name_.empty()) {
            const std::string name = db_.next_statement_name();
            PGresult* made = PQprepare(conn, name.c_str(), sql_.text.c_str(), count, types_.data());
            const bool ok = PQresultStatus(made) == PGRES_COMMAND_OK;
            const int code = ok ? step_ok : postgresql_result_code(made, conn);
            PQclear(made);
            if (!ok)
                return code;
            server_name_ = name;
        }
        result_ = lasting_ ? PQexecPrepared(conn, server_name_.c_str(), count, values.data(), nullptr, nullptr, 0)
                           : PQexecParams(conn, sql_.text.c_str(), count, types_.data(), values.data(), nullptr,
                                          nullptr, 0);
        return take_result();
    }

    /// Reads result_ (its rows, or the rows it changed) into this statement's state.
    int take_result() {
        switch (PQresultStatus(result_)) {
        case PGRES_TUPLES_OK:
            rows_ = PQntuples(result_);
            db_.record_changes(0);
            return step_ok;
        case PGRES_COMMAND_OK: {
            rows_ = 0;
            const char* changed = PQcmdTuples(result_);
            db_.record_changes(changed && *changed ? std::strtoll(changed, nullptr, 10) : 0);
            return step_ok;
        }
        default:
            return postgresql_result_code(result_, db_.handle());
        }
    }

    /// Sends the statement into the pipeline, and answers for it now: nothing to read.
    int defer(const std::vector<const char*>& values) {
        if (const int sent = send(values); sent != step_ok)
            return sent;
        rows_ = 0;
        if (db_.pending_count() >= pipeline_limit)
            return db_.settle_pending();
        return step_ok;
    }

    /// Sends the statement (preparing it first if the server has not) into the pipeline.
    int send(const std::vector<const char*>& values) {
        if (const int sent = db_.send_batches(); sent != step_ok) // they came before this statement
            return sent;
        PGconn* conn = db_.handle();
        const int count = static_cast<int>(values.size());
        if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF && PQenterPipelineMode(conn) != 1)
            return postgresql_code(connection_lost);
        if (server_name_.empty()) {
            server_name_ = db_.next_statement_name();
            if (PQsendPrepare(conn, server_name_.c_str(), sql_.text.c_str(), count, types_.data()) != 1) {
                server_name_.clear();
                return postgresql_code(connection_lost);
            }
            db_.note_deferred(postgresql_connection::deferred_kind::prepare, this);
        }
        if (PQsendQueryPrepared(conn, server_name_.c_str(), count, values.data(), nullptr, nullptr, 0) != 1)
            return postgresql_code(connection_lost);
        db_.note_deferred(postgresql_connection::deferred_kind::run, nullptr);
        return step_ok;
    }

    void discard() {
        if (db_.settle_pending() != step_ok)
            return; // the transaction failed: the name stays unused on the server until the connection ends
        const std::string sql = "DEALLOCATE " + server_name_;
        PQclear(PQexec(db_.handle(), sql.c_str()));
    }

    postgresql_connection& db_;
    translated_sql sql_;
    bool lasting_;
    statement_kind kind_;
    const insert_shape* batch_shape_; ///< set when its rows may be batched
    std::string server_name_;
    std::vector<std::string> values_;
    std::vector<bool> nulls_;
    std::vector<Oid> types_;
    PGresult* result_ = nullptr;
    bool ran_ = false;
    int rows_ = 0;
    int row_ = -1;
};

void ignore_notice(void*, const char*) {}

} // namespace

fhir::result<std::unique_ptr<postgresql_connection>> postgresql_connection::open(const std::string& conninfo) {
    PGconn* db = PQconnectdb(conninfo.c_str());
    if (PQstatus(db) != CONNECTION_OK) {
        std::string why = db ? PQerrorMessage(db) : "out of memory";
        PQfinish(db);
        if (const auto end = why.find('\n'); end != std::string::npos)
            why.resize(end);
        return fhir::error::make(fhir::category::busy, "transient",
                                 "storage temporarily unavailable while connecting to PostgreSQL: " + why);
    }
    PQsetNoticeProcessor(db, &ignore_notice, nullptr);
    auto opened = std::unique_ptr<postgresql_connection>(new postgresql_connection(db));
    if (auto set = opened->exec_script("SET application_name = 'caregate'; SET client_min_messages = warning",
                                       "setting up the connection");
        !set)
        return std::move(set).failure();
    return opened;
}

postgresql_connection::~postgresql_connection() {
    settle_pending();
    drop_statements();
    PQfinish(db_);
}

bool postgresql_connection::deferring_now() const {
    return defer_writes_ && (pipelined() || PQtransactionStatus(db_) == PQTRANS_INTRANS);
}

bool postgresql_connection::may_defer_begin() const {
    return defer_writes_ && !pipelined() && PQtransactionStatus(db_) == PQTRANS_IDLE;
}

void postgresql_connection::note_deferred(deferred_kind kind, server_preparation* owner) {
    pending_.push_back(deferred{kind, owner});
}

const insert_shape* postgresql_connection::batch_shape(std::string_view sql) {
    auto shape = batchable_insert(sql);
    return shape ? batches_.intern(std::move(*shape)) : nullptr;
}

int postgresql_connection::batch_rows(const insert_shape* shape, std::vector<std::string>& values,
                                      const std::vector<bool>& nulls) {
    return batches_.add(shape, values, nulls) ? send_batches() : step_ok;
}

int postgresql_connection::send_batches() {
    if (batches_.empty())
        return step_ok;
    const int lost = postgresql_code(connection_lost);
    std::vector<const char*> values;
    for (const row_batch& batch : batches_.take()) {
        const std::size_t width = batch.shape->width, rows = batch.rows();
        for (std::size_t row = 0; row < rows;) {
            std::size_t size = 1;
            for (const std::size_t candidate : statement_sizes)
                if (candidate <= rows - row && candidate * width <= 65535) {
                    size = candidate;
                    break;
                }
            const int count = static_cast<int>(size * width);
            if (PQpipelineStatus(db_) == PQ_PIPELINE_OFF && PQenterPipelineMode(db_) != 1)
                return lost;
            batch_statement& statement = batch_statements_[{batch.shape, size}];
            if (statement.name.empty()) {
                // No types given: each value takes its column's, as a multi-row INSERT's do.
                statement.name = next_statement_name();
                const std::string sql = insert_rows_sql(*batch.shape, size);
                if (PQsendPrepare(db_, statement.name.c_str(), sql.c_str(), count, nullptr) != 1) {
                    statement.name.clear();
                    return lost;
                }
                note_deferred(deferred_kind::prepare, &statement);
            }
            values.assign(static_cast<std::size_t>(count), nullptr);
            for (std::size_t i = 0; i < values.size(); ++i) {
                const std::size_t at = row * width + i;
                values[i] = batch.nulls[at] ? nullptr : batch.values[at].c_str();
            }
            // libpq copies the values into its buffer here: the batch may go once this returns.
            if (PQsendQueryPrepared(db_, statement.name.c_str(), count, values.data(), nullptr, nullptr, 0) != 1)
                return lost;
            note_deferred(deferred_kind::run, nullptr);
            row += size;
            if (pending_.size() >= pipeline_limit)
                if (const int settled = settle_pending(); settled != step_ok)
                    return settled;
        }
    }
    return step_ok;
}

int postgresql_connection::settle_pending(PGresult** last) {
    int failure = std::exchange(kept_failure_, step_ok);
    if (const int sent = send_batches(); sent != step_ok && failure == step_ok)
        failure = sent;
    if (pending_.empty()) {
        if (PQpipelineStatus(db_) != PQ_PIPELINE_OFF) // entered, and then nothing could be sent
            PQexitPipelineMode(db_);
        return failure;
    }
    const int lost = postgresql_code(connection_lost);
    if (PQpipelineSync(db_) != 1 && failure == step_ok)
        failure = lost;
    // Results arrive in the order of the commands, each command's ended by a null; the sync's last.
    std::size_t index = 0;
    while (index <= pending_.size()) {
        PGresult* result = PQgetResult(db_);
        if (!result) {
            if (PQstatus(db_) != CONNECTION_OK) {
                if (failure == step_ok)
                    failure = lost;
                break;
            }
            ++index;
            continue;
        }
        const auto status = PQresultStatus(result);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(result);
            break;
        }
        if (index < pending_.size()) {
            const deferred& command = pending_[index];
            if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
                if (command.kind == deferred_kind::run) {
                    const char* changed = PQcmdTuples(result);
                    changes_ = changed && *changed ? std::strtoll(changed, nullptr, 10) : 0;
                }
                if (last && index + 1 == pending_.size()) { // the caller's own statement: its result is kept
                    *last = result;
                    continue;
                }
            } else {
                // The first failure is the one to report; after it the server skipped the rest
                // (PGRES_PIPELINE_ABORTED), preparations included.
                if (failure == step_ok)
                    failure = status == PGRES_PIPELINE_ABORTED ? postgresql_code("25P02")
                                                               : postgresql_result_code(result, db_);
                if (command.kind == deferred_kind::prepare && command.owner)
                    command.owner->forget_server_name();
            }
        }
        PQclear(result);
    }
    // Preparations never answered (a connection lost midway) did not happen as far as we know.
    for (std::size_t k = index; k < pending_.size(); ++k)
        if (pending_[k].kind == deferred_kind::prepare && pending_[k].owner)
            pending_[k].owner->forget_server_name();
    pending_.clear();
    if (PQpipelineStatus(db_) != PQ_PIPELINE_OFF && PQexitPipelineMode(db_) != 1 && failure == step_ok)
        failure = lost;
    return failure;
}

std::int64_t postgresql_connection::changes() {
    if (pipelined())
        kept_failure_ = settle_pending();
    return changes_;
}

fhir::status postgresql_connection::settle(std::string_view doing) {
    if (const int code = settle_pending(); code != step_ok)
        return storage_failure(code, doing);
    return {};
}

bool postgresql_connection::in_transaction() const {
    const auto status = PQtransactionStatus(db_);
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

bool postgresql_connection::in_transaction_failed() const { return PQtransactionStatus(db_) == PQTRANS_INERROR; }

fhir::result<std::unique_ptr<prepared>> postgresql_connection::compile(const std::string& sql, bool lasting,
                                                                       std::string_view) {
    return std::unique_ptr<prepared>(new postgresql_prepared(*this, translate_to_postgresql(sql), lasting));
}

fhir::status postgresql_connection::exec_script(const std::string& sql, std::string_view doing) {
    if (const int settled = settle_pending(); settled != step_ok)
        return storage_failure(settled, doing);
    PGresult* result = PQexec(db_, sql.c_str());
    const auto status = PQresultStatus(result);
    const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY;
    const int code = ok ? step_ok : postgresql_result_code(result, db_);
    PQclear(result);
    if (!ok)
        return storage_failure(code, doing);
    return {};
}

} // namespace caregate::storage::detail
