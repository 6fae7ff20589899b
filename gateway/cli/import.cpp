// `caregate import`: loads an NDJSON file (one FHIR resource a line) into the database, each line
// prepared and checked as `PUT /{type}/{id}` prepares and checks it, written as the ICS's integration
// service would write it, with many writes in flight and committed in large groups. For bulk loads
// (a migration, the benchmarks' synthetic populations); not the Bulk Data `$import` operation, and
// not for a database a server is serving (a second writer would wait on the first's locks).
//
// Design notes:
//  1. A line is refused for what the API refuses (malformed JSON, an invalid resource, a type the API
//     does not write, no id, a Patient whose id is not its NHS number, a citizen not held), with the
//     same OperationOutcome issues; the import stops there, and nothing from that line on is queued.
//     Look-alikes of the server's provenance marks are taken out, as from any writer's content.
//  2. A citizen is "held" if an earlier line of the file was that Patient or the database holds it
//     live: checked here, before the write is queued, so that the common refusal (a record before its
//     Patient) stops the import at its own line. The store checks again inside the transaction.
//  3. At most `in_flight_limit` writes are queued at once, so memory stays flat whatever the file's size.
//  4. One audit record for the file (action "import", counts in its detail), not one per resource.
//  5. Lines are parsed, validated and their search index values extracted on worker threads, a batch
//     of lines a task, so that the store's single writer only writes; what depends on the lines
//     before (design note 2) is decided on the reading thread, line by line in file order, as each
//     batch comes back. So the first line refused is the same, with the same issues, whatever the
//     threads' timing.
//  6. The store is opened for a bulk load (store_settings::bulk_load): commits during the import are
//     not made durable one by one (a crash loses the last commits, never corrupts the database, and
//     a re-run of the same file stores the rest); before the import reports, store::make_durable
//     makes them all durable, and the import reports success only if it did.
#include "cli/commands.hpp"

#include "access/guard.hpp"
#include "cli/options.hpp"

#include "fhir_model/nhs_number.hpp"
#include "fhir_model/ods_code.hpp"
#include "fhir_model/resource.hpp"
#include "rest/application.hpp"
#include "rest/routes.hpp"
#include "storage/store.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_set>

namespace caregate::cli {

namespace {

constexpr const char* import_usage = R"(Usage: caregate import FILE [options]

Loads FILE, NDJSON with one FHIR resource a line ('-' reads standard input), into the database. Each
line is validated and written as 'PUT /{type}/{id}' would write it (update, or create with the
resource's id), by the ICS's integration service. The first line that would be refused stops the
import; the lines before it stay stored. One audit record covers the whole file.

Options:
)";

struct import_settings {
    std::string file;
    std::string db = "caregate.db";
    /// Most writes committed in one transaction. Far above the server's default (512): an import has
    /// no caller waiting on each write, and fewer, larger commits are what makes a bulk load fast.
    unsigned batch = 4096;
    std::string organisation = "QZZ"; ///< the writer: owner of what it creates, and the audit record's organisation
    std::string user = "caregate-import";
};

/// Writes queued and not yet committed, at most: enough to keep two full groups waiting while one
/// commits, small enough (a few tens of MB of content) that memory stays flat (design note 3).
constexpr std::size_t in_flight_floor = 10'000;

/// Lines a worker prepares in one task: enough that handing tasks over costs little, few enough
/// that the writer never waits for the first batch.
constexpr std::size_t lines_per_batch = 256;

/// Batches read and not yet handed to the store, at most, per worker thread: keeps every worker busy
/// while the reading thread waits for the oldest, and memory flat (design note 3).
constexpr std::size_t batches_per_worker = 4;

/// How much nicer than the rest of the import the line workers run (design note 5).
constexpr int worker_niceness = 5;


std::vector<option> import_options(import_settings& s) {
    return {
        {"db", "DATABASE", "the database: a SQLite file, as PATH or sqlite:PATH (default ./caregate.db; created if absent), or postgresql://...",
         [&](const std::string& v) { s.db = v; }},
        {"batch", "N", "most writes committed in one transaction (default 4096)",
         [&](const std::string& v) { s.batch = to_number<unsigned>(v, "batch"); }},
        {"org", "ODS", "the organisation writing: owner of what the import creates, named in the audit record "
                       "(default QZZ, the ICS)",
         [&](const std::string& v) { s.organisation = v; }},
        {"user", "ID", "the system id named in the audit record (default caregate-import)",
         [&](const std::string& v) { s.user = v; }},
    };
}

/// Splits FILE from the options: the one argument that is neither an option nor an option's value.
std::pair<std::string, std::vector<std::string>> split_file_argument(const std::vector<option>& table,
                                                                     const std::vector<std::string>& args) {
    std::vector<std::string> rest;
    std::string file;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg.starts_with("--")) {
            rest.push_back(arg);
            const std::string name = arg.substr(2);
            const bool takes_value =
                name == "config" || std::any_of(table.begin(), table.end(), [&](const option& o) {
                    return o.name == name && !o.value_name.empty();
                });
            if (takes_value && i + 1 < args.size())
                rest.push_back(args[++i]);
            continue;
        }
        if (!file.empty())
            throw std::invalid_argument("one FILE only; '" + arg + "' is a second");
        file = arg;
    }
    if (file.empty())
        throw std::invalid_argument("FILE is required");
    return {file, rest};
}

/// Finds a line's top-level resourceType without building a document: SAX events up to it.
struct resource_type_scan : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, resource_type_scan> {
    int depth = 0;
    bool next_is_type = false;
    std::optional<std::string> type;

    bool Default() { return !next_is_type; } // any other value where the type belongs: no type
    bool String(const char* text, rapidjson::SizeType length, bool) {
        if (next_is_type) {
            type.emplace(text, length);
            return false; // found: stop reading
        }
        return true;
    }
    bool Key(const char* text, rapidjson::SizeType length, bool) {
        next_is_type = depth == 1 && std::string_view(text, length) == "resourceType";
        return true;
    }
    bool StartObject() {
        if (next_is_type)
            return false; // an object where the type belongs: no type
        ++depth;
        return true;
    }
    bool EndObject(rapidjson::SizeType) {
        --depth;
        return depth > 0; // the top level ended without a type: stop
    }
    bool StartArray() { return !next_is_type; }
};

fhir::result<std::string> resource_type_of(const std::string& line) {
    resource_type_scan scan;
    rapidjson::Reader reader;
    rapidjson::StringStream in(line.c_str());
    const rapidjson::ParseResult parsed = reader.Parse(in, scan);
    if (scan.type)
        return std::move(*scan.type);
    if (parsed.IsError() && parsed.Code() != rapidjson::kParseErrorTermination)
        return fhir::error::make(fhir::category::malformed, "structure",
                                 std::string("the line is not valid JSON: ") + rapidjson::GetParseError_En(parsed.Code()) +
                                     " (at byte " + std::to_string(parsed.Offset()) + ")");
    return fhir::error::make(fhir::category::invalid, "required", "the line has no resourceType", "resourceType");
}

/// An NHS number as a number: 10 digits fit in 64 bits, and a set of them stays small for millions.
std::uint64_t nhs_key(std::string_view nhs) {
    std::uint64_t key = 0;
    std::from_chars(nhs.data(), nhs.data() + nhs.size(), key);
    return key;
}

class importer {
public:
    importer(storage::store& store, const import_settings& settings)
        : store_(store), settings_(settings), in_flight_limit_(std::max<std::size_t>(in_flight_floor, 2 * settings.batch)) {}
    /// Waits for the writes already queued: their callbacks use this object, which must outlive them
    /// even when the import ends early (an exception while reading).
    ~importer() {
        std::unique_lock lock(mutex_);
        room_.wait(lock, [this] { return in_flight_ == 0; });
    }
    importer(const importer&) = delete;
    importer& operator=(const importer&) = delete;

    /// A line as the write `PUT /{type}/{id}` would queue (design note 1), or why it is refused, but
    /// for the citizens it names (admit). Depends on the line alone: runs on any thread (design note 5).
    static fhir::result<storage::write_request> prepare(const std::string& line, const import_settings& settings,
                                                        const storage::store& store) {
        auto type = resource_type_of(line);
        if (!type)
            return std::move(type).failure();
        const interactions::served_type* served = rest::served().find(*type);
        if (served == nullptr || !served->allows(interactions::interaction::update)) {
            if (fhir::is_supported_type(*type))
                return fhir::error::make(fhir::category::invalid, "not-supported",
                                         "this server does not accept writes of " + *type, "resourceType");
            return fhir::error::make(fhir::category::not_found, "not-supported",
                                     "this server does not support the resource type", "resourceType");
        }
        // The provenance marks are the server's, for every writer (fhir::mark_provenance): a file
        // can no more pass an item off as a citizen's contribution than a request can.
        auto prepared = fhir::prepare_resource(line, *type, fhir::provenance_marks{});
        if (!prepared)
            return std::move(prepared).failure();
        if (prepared->id.empty())
            return fhir::error::make(fhir::category::malformed, "required",
                                     "an import needs each resource's id: it is written as an update", *type + ".id");
        if (*type == "Patient" && prepared->nhs_number != prepared->id)
            return fhir::error::make(fhir::category::invalid, "invariant",
                                     "a Patient's id must be the NHS number in its identifier", "Patient.identifier");

        storage::write_request write;
        write.kind = storage::write_kind::update;
        write.type = std::move(*type);
        write.id = std::move(prepared->id);
        write.content = std::move(prepared->content);
        write.citizens = std::move(prepared->citizens);
        write.access = std::move(prepared->access);
        if (!prepared->binary_bytes.empty()) // a Binary's `data`, stored apart from its JSON
            write.binary_bytes = std::make_shared<const std::string>(std::move(prepared->binary_bytes));
        write.writer = settings.organisation;
        write.any_owner = true; // the ICS's integration service may correct any organisation's items
        store.prepare_index(write);
        return write;
    }

    /// The rest of design note 1, in file order (design note 2): a write whose citizens are all held
    /// may be queued; a Patient is held from here on. Reading thread only.
    fhir::status admit(const storage::write_request& write) {
        fhir::error unknown;
        unknown.kind = fhir::category::invalid;
        for (const fhir::citizen_link& link : write.citizens)
            if (!held(link.nhs_number))
                unknown.issues.push_back({"error", "invalid", "the reference does not name a citizen held by this server",
                                          link.expression});
        if (!unknown.issues.empty())
            return unknown;
        if (write.type == "Patient")
            held_.insert(nhs_key(write.id));
        return {};
    }

    /// Queues a write: they go to the store a batch at a time (one group, one commit: many small
    /// groups would write the same index pages to the log once per commit), each batch first
    /// waiting while the in-flight limit is reached (design note 3).
    void submit(storage::write_request write, std::uint64_t line_number) {
        pending_.emplace_back(std::move(write), [this, line_number](fhir::result<storage::write_outcome> outcome) {
            std::lock_guard lock(mutex_);
            --in_flight_;
            if (outcome) {
                (outcome->created ? created_ : outcome->unchanged ? unchanged_ : updated_) += 1;
                if (refused_ && line_number > refused_->first)
                    ++stored_after_refusal_;
            } else if (!refused_ || line_number < refused_->first) {
                refused_.emplace(line_number, outcome.failure());
            }
            room_.notify_one();
        });
        if (pending_.size() >= settings_.batch)
            flush();
    }

    /// Hands the pending batch to the store.
    void flush() {
        if (pending_.empty())
            return;
        {
            std::unique_lock lock(mutex_);
            room_.wait(lock, [this] { return in_flight_ + pending_.size() <= in_flight_limit_ || in_flight_ == 0; });
            in_flight_ += pending_.size();
        }
        store_.submit_all(std::move(pending_));
        pending_.clear();
    }

    /// Waits until every queued write has been committed (or refused).
    void drain() {
        flush();
        std::unique_lock lock(mutex_);
        room_.wait(lock, [this] { return in_flight_ == 0; });
    }

    /// A write the store refused, with its line: the first, once drained.
    std::optional<std::pair<std::uint64_t, fhir::error>> refused() const {
        std::lock_guard lock(mutex_);
        return refused_;
    }
    bool any_refused() const {
        std::lock_guard lock(mutex_);
        return refused_.has_value();
    }

    std::uint64_t created() const { return created_; }
    std::uint64_t updated() const { return updated_; }
    std::uint64_t unchanged() const { return unchanged_; }
    std::uint64_t stored() const { return created_ + updated_ + unchanged_; }
    std::uint64_t stored_after_refusal() const { return stored_after_refusal_; }

private:
    bool held(const std::string& nhs) {
        const std::uint64_t key = nhs_key(nhs);
        if (held_.contains(key))
            return true;
        if (!store_.read("Patient", nhs))
            return false;
        held_.insert(key);
        return true;
    }

    storage::store& store_;
    const import_settings& settings_;
    const std::size_t in_flight_limit_;
    std::vector<std::pair<storage::write_request, storage::write_callback>> pending_;
    std::unordered_set<std::uint64_t> held_; ///< citizens known held (design note 2); main thread only

    mutable std::mutex mutex_;
    std::condition_variable room_;
    std::size_t in_flight_ = 0;
    std::uint64_t created_ = 0, updated_ = 0, unchanged_ = 0, stored_after_refusal_ = 0;
    std::optional<std::pair<std::uint64_t, fhir::error>> refused_;
};

/// Lines read together and prepared by one worker (design note 5).
struct line_batch {
    struct line {
        std::uint64_t number = 0;
        std::string text;
        std::optional<fhir::result<storage::write_request>> write; ///< set by the worker
    };
    std::vector<line> lines;
};

/// Threads that prepare batches of lines; each batch's future is ready once its lines are prepared.
/// Tasks still queued when it is destroyed are done first (they own their lines).
class line_workers {
public:
    line_workers(unsigned count, const import_settings& settings, const storage::store& store)
        : settings_(settings), store_(store) {
        for (unsigned i = 0; i < count; ++i)
            threads_.emplace_back([this] { work(); });
    }
    ~line_workers() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        queued_.notify_all();
        for (std::thread& thread : threads_)
            thread.join();
    }
    line_workers(const line_workers&) = delete;
    line_workers& operator=(const line_workers&) = delete;

    std::future<line_batch> prepare(line_batch batch) {
        std::packaged_task<line_batch()> task([batch = std::move(batch), this]() mutable {
            for (line_batch::line& line : batch.lines)
                line.write.emplace(importer::prepare(line.text, settings_, store_));
            return std::move(batch);
        });
        auto prepared = task.get_future();
        {
            std::lock_guard lock(mutex_);
            tasks_.push_back(std::move(task));
        }
        queued_.notify_one();
        return prepared;
    }

private:
    void work() {
        // Below the writer's priority: the single writer is what bounds an import, and a worker
        // that takes its core only makes the queue it feeds longer. (Linux: per thread; elsewhere
        // the whole process, which changes nothing between its threads.)
        const auto thread = static_cast<id_t>(gettid());
        errno = 0;
        if (const int niceness = getpriority(PRIO_PROCESS, thread); errno == 0)
            setpriority(PRIO_PROCESS, thread, niceness + worker_niceness);
        for (;;) {
            std::packaged_task<line_batch()> task;
            {
                std::unique_lock lock(mutex_);
                queued_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
                if (tasks_.empty())
                    return;
                task = std::move(tasks_.front());
                tasks_.pop_front();
            }
            task();
        }
    }

    const import_settings& settings_;
    const storage::store& store_;
    std::mutex mutex_;
    std::condition_variable queued_;
    std::deque<std::packaged_task<line_batch()>> tasks_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

void print_issues(const fhir::error& failure) {
    for (const fhir::issue& issue : failure.issues)
        std::cerr << "  " << issue.severity << " " << issue.code << ": " << issue.diagnostics
                  << (issue.expression.empty() ? "" : " (at " + issue.expression + ")") << "\n";
}

} // namespace

int import_resources(const std::vector<std::string>& args) {
    import_settings settings;
    const auto table = import_options(settings);
    for (const auto& a : args)
        if (a == "--help" || a == "-h") {
            std::cout << import_usage << describe_options(table);
            return 0;
        }
    try {
        auto [file, rest] = split_file_argument(table, args);
        settings.file = file;
        parse_options(table, rest);
        if (settings.batch == 0)
            throw std::invalid_argument("--batch must be at least 1");
        if (!fhir::is_ods_code(settings.organisation))
            throw std::invalid_argument("--org needs an ODS code: 3 to 10 upper-case letters and digits");
        if (settings.user.empty())
            throw std::invalid_argument("--user cannot be empty");
    } catch (const std::invalid_argument& e) {
        std::cerr << "caregate import: " << e.what() << "\n(see caregate import --help)\n";
        return 2;
    }

    std::ifstream file_stream;
    if (settings.file != "-") {
        file_stream.open(settings.file, std::ios::binary);
        if (!file_stream) {
            std::cerr << "caregate import: cannot read " << settings.file << "\n";
            return 1;
        }
    }
    std::istream& in = settings.file == "-" ? std::cin : file_stream;

    storage::store_settings store_settings;
    store_settings.max_group_size = settings.batch;
    store_settings.bulk_load = true; // design note 6: make_durable at the end makes it durable
    std::unique_ptr<storage::store> store = open_store(settings.db, store_settings, "import");
    if (!store)
        return 1;

    const storage::timestamp started_at = access::now_micros();
    const auto started = std::chrono::steady_clock::now();
    const bool show_progress = isatty(STDERR_FILENO) != 0;
    importer load(*store, settings);
    std::uint64_t line_number = 0, queued = 0;
    std::optional<std::pair<std::uint64_t, fhir::error>> invalid;
    bool stopped = false; // a line was refused: read and queue nothing more
    // Queues a prepared batch's lines in file order (design notes 1, 2 and 5), up to the first refused.
    auto queue_lines = [&](line_batch batch) {
        for (line_batch::line& line : batch.lines) {
            if (load.any_refused()) {
                stopped = true; // the store refused an earlier line: queue nothing more
                return;
            }
            fhir::result<storage::write_request>& write = *line.write;
            if (write)
                if (auto admitted = load.admit(*write); !admitted)
                    write = std::move(admitted).failure();
            if (!write) {
                invalid.emplace(line.number, std::move(write).failure());
                stopped = true;
                return;
            }
            load.submit(std::move(write.value()), line.number);
            ++queued;
            if (show_progress && queued % 100'000 == 0) {
                const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
                std::fprintf(stderr, "\rcaregate import: %llu resources queued, %.0f/s",
                             static_cast<unsigned long long>(queued), static_cast<double>(queued) / seconds);
            }
        }
    };
    {
        const unsigned worker_count = std::max(1u, std::thread::hardware_concurrency());
        line_workers workers(worker_count, settings, *store);
        std::deque<std::future<line_batch>> preparing;
        line_batch batch;
        for (std::string line; !stopped && std::getline(in, line);) {
            ++line_number;
            if (line.find_first_not_of(" \t\r") == std::string::npos)
                continue; // blank lines between resources are not resources
            batch.lines.push_back({line_number, std::move(line), std::nullopt});
            if (batch.lines.size() < lines_per_batch)
                continue;
            preparing.push_back(workers.prepare(std::move(batch)));
            batch = {};
            if (preparing.size() >= batches_per_worker * worker_count) {
                queue_lines(preparing.front().get());
                preparing.pop_front();
            }
        }
        if (!stopped && !batch.lines.empty())
            preparing.push_back(workers.prepare(std::move(batch)));
        for (; !stopped && !preparing.empty(); preparing.pop_front())
            queue_lines(preparing.front().get());
    } // the workers finish what they hold, prepared for nothing
    const bool read_failed = in.bad();
    // Lines read ahead of an invalid one were never looked at: as if reading had stopped there.
    const std::uint64_t lines_read = invalid ? invalid->first : line_number;
    load.drain();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (show_progress && queued >= 100'000)
        std::fprintf(stderr, "\n");

    const auto refused = load.refused();
    const bool ok = !invalid && !refused && !read_failed;
    std::string detail = std::to_string(load.stored()) + " resources stored (" + std::to_string(load.created()) +
                         " created, " + std::to_string(load.updated()) + " updated, " +
                         std::to_string(load.unchanged()) + " unchanged) from " + std::to_string(lines_read) +
                         " lines read";
    if (invalid)
        detail += "; stopped at line " + std::to_string(invalid->first) + ", which is invalid";
    else if (refused)
        detail += "; stopped at line " + std::to_string(refused->first) + ", which the store refused";
    else if (read_failed)
        detail += "; stopped by a read error";

    // Design note 4: one audit record for the file, committed before the import reports.
    storage::audit_record record;
    record.time = started_at;
    record.request_id = interactions::random_uuid();
    record.user = settings.user;
    record.role = "system";
    record.organisation = settings.organisation;
    record.purpose = "HOPERAT"; // healthcare operations: loading the record, not caring for one citizen
    record.action = "import";
    record.outcome = ok ? "success" : "failed";
    record.detail = detail;
    std::promise<fhir::status> audited;
    store->append_audit({std::move(record)}, [&audited](fhir::status done) { audited.set_value(std::move(done)); });
    const fhir::status audit_done = audited.get_future().get();
    const fhir::status durable = store->make_durable(); // design note 6
    store.reset(); // closes the database

    if (!durable) {
        std::cerr << "caregate import: the database could not be made durable (fsynced) before closing; what was "
                     "stored may be lost in a crash, and a re-run of the same file stores it again:\n";
        print_issues(durable.failure());
        return 1;
    }

    if (!audit_done) {
        std::cerr << "caregate import: the audit record could not be written:\n";
        print_issues(audit_done.failure());
    }
    if (invalid) {
        std::cerr << "caregate import: line " << invalid->first << " of " << settings.file << " is invalid:\n";
        print_issues(invalid->second);
        std::cerr << "caregate import: stopped at line " << invalid->first << ": " << load.stored()
                  << " resources from the lines before it are stored, nothing from line " << invalid->first << " on\n";
        return 1;
    }
    if (refused) {
        std::cerr << "caregate import: line " << refused->first << " of " << settings.file
                  << " was refused by the store:\n";
        print_issues(refused->second);
        std::cerr << "caregate import: stopped at line " << refused->first << ": " << load.stored()
                  << " resources are stored, " << load.stored_after_refusal()
                  << " of them from lines after it that were already queued\n";
        return 1;
    }
    if (read_failed) {
        std::cerr << "caregate import: reading " << settings.file << " failed after line " << line_number << "; "
                  << load.stored() << " resources are stored\n";
        return 1;
    }
    char rate[64];
    std::snprintf(rate, sizeof rate, "%.1f s, %.0f resources/s", seconds,
                  seconds > 0 ? static_cast<double>(load.stored()) / seconds : 0.0);
    std::cout << "caregate import: " << detail << " in " << rate << "\n";
    return audit_done ? 0 : 1;
}

} // namespace caregate::cli
