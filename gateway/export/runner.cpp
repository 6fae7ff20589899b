// The export runner: see runner.hpp for what it keeps.
#include "export/runner.hpp"

#include "export/job_request.hpp"
#include "fhir_model/binary.hpp"
#include "fhir_model/summary.hpp"
#include "http/log.hpp"
#include "storage/search.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

namespace caregate::exports {

namespace {

using namespace std::chrono;

storage::timestamp micros(std::chrono::seconds span) { return duration_cast<microseconds>(span).count(); }

/// How much less of a busy machine's cores a worker asks for than a request's thread (a nice value:
/// with the cores all busy, a thread of nice 10 gets about a tenth of one of nice 0). An export is
/// a background job: requests, and the writer that commits their audit records, come first.
constexpr int worker_niceness = 10;

/// And of the disk: the idle I/O class (Linux ioprio_set; the constants of linux/ioprio.h, which
/// glibc does not wrap), served when no one else waits for the disk, and by the I/O scheduler's
/// aging after a while even then. On a database larger than memory an export reads it all, and at
/// the ordinary class its reads held the writer's commits back until reads were refused.
constexpr int ioprio_who_process = 1;
constexpr int ioprio_class_idle = 3;
constexpr int ioprio_class_shift = 13;

} // namespace

/// One job's run: what it reads with, where it is, and the lines in hand (not yet committed), by type.
struct runner::job_run {
    /// Lines of one type read since the last save, for that type's open file.
    struct pending {
        std::string ndjson;
        std::int64_t lines = 0;
    };
    const storage::export_job& job;
    job_request request;
    std::vector<job_pass> passes;
    std::shared_ptr<const access::guard> guard;
    access::profile who;
    job_cursor cursor;
    steady_clock::time_point saved_at = steady_clock::now(); ///< when progress was last committed
    std::map<std::string, pending> in_hand;
    std::size_t bytes_in_hand = 0;
    std::set<std::string> citizens; ///< whose data the lines in hand hold (an identifiable export logs them)
};

runner::runner(storage::store& store, std::function<std::shared_ptr<const access::guard>()> current_guard,
               runner_settings settings)
    : store_(store), current_guard_(std::move(current_guard)), settings_(settings) {
    for (unsigned i = 0; i < settings_.workers; ++i)
        workers_.emplace_back([this, i] {
            // Linux: a thread's own nice value (its thread id is its PRIO_PROCESS id); where that fails
            // the worker runs at the ordinary priority.
            (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), worker_niceness);
            (void)::syscall(SYS_ioprio_set, ioprio_who_process, ::gettid(), ioprio_class_idle << ioprio_class_shift);
            // A worker's name is unique to this process's run, so a lease is never mistaken for another's.
            work("export-worker-" + std::to_string(i) + "-" + std::to_string(access::now_micros()));
        });
}

runner::~runner() { stop(); }

void runner::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    woken_.notify_all();
    for (auto& worker : workers_)
        if (worker.joinable())
            worker.join();
}

void runner::wake() {
    {
        std::lock_guard lock(mutex_);
        wake_pending_ = true;
    }
    woken_.notify_one();
}

void runner::work(std::string worker) {
    auto last_expiry = steady_clock::now() - minutes(1);
    while (!stopping_) {
        if (steady_clock::now() - last_expiry >= minutes(1)) {
            last_expiry = steady_clock::now();
            remove_expired();
        }
        const storage::timestamp now = access::now_micros();
        auto claimed = store_.claim_export(worker, now, now + micros(settings_.lease));
        if (claimed && *claimed) {
            run(**claimed, worker);
            continue;
        }
        if (!claimed)
            http::log_line("export: cannot claim a job: " + claimed.failure().issues.front().diagnostics);
        std::unique_lock lock(mutex_);
        woken_.wait_for(lock, settings_.idle_poll, [this] { return stopping_.load() || wake_pending_; });
        wake_pending_ = false;
    }
}

void runner::remove_expired() {
    auto removed = store_.remove_expired_exports(access::now_micros());
    if (!removed)
        http::log_line("export: cannot remove expired jobs: " + removed.failure().issues.front().diagnostics);
}

void runner::run(const storage::export_job& job, const std::string& worker) {
    auto finish = [&](std::string error) {
        storage::export_progress end;
        end.job_id = job.id;
        end.worker = worker;
        end.cursor = job.cursor;
        end.finish = true;
        end.error = std::move(error);
        end.finished = access::now_micros();
        end.expires = end.finished + micros(settings_.retention);
        if (auto saved = store_.save_export_progress(std::move(end)); !saved)
            http::log_line("export " + job.id + ": cannot record its failure: " + saved.failure().issues.front().diagnostics);
    };
    auto request = job_request_from_json(job.request);
    if (!request)
        return finish(request.failure().issues.front().diagnostics);
    auto cursor = job_cursor_from_text(job.cursor);
    if (!cursor)
        return finish(cursor.failure().issues.front().diagnostics);
    job_run state{job, std::move(*request), {}, current_guard_(), {}, std::move(*cursor), steady_clock::now(), {}, 0, {}};
    state.passes = passes_of(state.request);

    // Invariant 4: the requester as the policy in use sees them now.
    const access::organisation* org = state.guard->organisations().find(state.request.caller.organisation);
    if (org == nullptr)
        return finish("the organisation that asked for this export is no longer connected");
    state.who = state.guard->rules().profile_for(std::make_shared<const auth::caller>(state.request.caller), *org);
    if (state.guard->rules().export_kind_for(state.who) != state.request.kind)
        return finish("the requester may no longer take this kind of export");

    // Invariant 6: a pseudonymised export's lines go through the recipient's key, or there are none.
    const std::string* key = nullptr;
    if (state.request.kind == access::export_kind::pseudonymised) {
        key = settings_.keys ? settings_.keys->find(state.who.org->ods) : nullptr;
        if (key == nullptr)
            return finish("there is no pseudonymisation key for the recipient " + state.who.org->ods +
                          " (caregate serve --export-keys)");
    }
    const fhir::deidentification_profile& profile =
        settings_.profile ? *settings_.profile : shipped_deidentification_profile();
    const fhir::pseudonym_function pseudonym_of = [key](std::string_view type, std::string_view id) {
        return pseudonym(*key, type, id);
    };

    storage::audit_record logged = access::guard::audit_for(state.who, job.id, access::now_micros(), "export");
    logged.outcome = "success";
    logged.detail = "included in a population health export (identifiable, for direct care), job " + job.id;

    // Commits the lines in hand (if any: a part of each type's open file) with the cursor, or renews
    // the lease; false when the job is no longer this worker's to write (cancelled, finished, or
    // leased to another), or a save failed. A file that has reached file_bytes is closed: the next
    // line of its type opens another.
    auto save = [&](bool finishing) {
        storage::export_progress progress;
        progress.job_id = job.id;
        progress.worker = worker;
        progress.lease_until = access::now_micros() + micros(settings_.lease);
        job_cursor after = state.cursor;
        for (auto& [type, lines] : state.in_hand) {
            open_file& file = after.open_files.at(type);
            file.bytes += lines.ndjson.size();
            progress.files.push_back({type, lines.lines, std::move(lines.ndjson), file.number});
            if (file.bytes >= settings_.file_bytes)
                after.open_files.erase(type);
        }
        progress.cursor = to_text(after);
        progress.citizens.assign(state.citizens.begin(), state.citizens.end());
        if (state.request.kind == access::export_kind::identifiable) {
            progress.audit = logged;
            progress.audit->time = access::now_micros();
        }
        if (finishing) {
            progress.finish = true;
            progress.finished = access::now_micros();
            progress.expires = progress.finished + micros(settings_.retention);
        }
        auto saved = store_.save_export_progress(std::move(progress));
        state.in_hand.clear();
        state.bytes_in_hand = 0;
        state.citizens.clear();
        if (!saved) {
            if (saved.failure().kind != fhir::category::conflict)
                http::log_line("export " + job.id + ": cannot save its progress (resumed later from the last save): " +
                               saved.failure().issues.front().diagnostics);
            return false;
        }
        state.cursor = std::move(after);
        state.saved_at = steady_clock::now();
        return true;
    };
    auto give_back = [&] { store_.release_export(job.id, worker); };
    // Takes a line of `type` into hand, opening a file of that type when none is open.
    auto take = [&](const std::string& type, std::string_view line) {
        if (!state.cursor.open_files.contains(type))
            state.cursor.open_files.emplace(type, open_file{++state.cursor.last_number, 0});
        job_run::pending& lines = state.in_hand[type];
        lines.ndjson += line;
        lines.ndjson += '\n';
        ++lines.lines;
        state.bytes_in_hand += line.size() + 1;
    };

    const bool by_member = state.request.level == export_level::group;
    std::map<std::string, std::vector<std::string>> elements; // _elements, by type
    for (const std::string& type : state.request.types)
        elements.emplace(type, elements_of(state.request, type));
    while (state.cursor.pass < state.passes.size()) {
        if (stopping_)
            return give_back(); // invariant 2: the next worker goes on from the last save
        const std::vector<std::string>& types = state.passes[state.cursor.pass].types;
        auto next_pass = [&] {
            state.cursor.pass += 1;
            state.cursor.member = 0;
            state.cursor.page.clear();
        };
        if (by_member && state.cursor.member >= state.request.members.size()) {
            next_pass();
            continue;
        }
        auto query = types.size() == 1 ? query_for(state.request, types.front(), settings_.page_count)
                                       : query_for_types(types, settings_.page_count);
        if (!query)
            return finish(query.failure().issues.front().diagnostics);
        storage::search_request page_request;
        page_request.query = &*query;
        page_request.visibility = state.guard->export_visibility(state.who, state.request.kind, access::now_micros());
        // A page ends where the lines in hand reach a file's size, so that they are saved at a page's cursor.
        page_request.max_bytes = std::min(settings_.page_bytes,
                                          std::max<std::size_t>(1, settings_.file_bytes - std::min(settings_.file_bytes, state.bytes_in_hand)));
        if (by_member)
            page_request.compartment = state.request.members[state.cursor.member];
        if (state.cursor.page.empty()) {
            page_request.snapshot = job.snapshot;
        } else {
            auto decoded = storage::decode_cursor(state.cursor.page);
            if (!decoded)
                return finish("the job's cursor does not decode");
            page_request.cursor = std::move(*decoded);
        }
        auto page = store_.search(page_request);
        if (!page) {
            const auto kind = page.failure().kind;
            if (kind == fhir::category::busy || kind == fhir::category::fault) {
                http::log_line("export " + job.id + ": a page failed (resumed later from the last save): " +
                               page.failure().issues.front().diagnostics);
                return give_back();
            }
            return finish(page.failure().issues.front().diagnostics);
        }

        for (const storage::search_entry& entry : page->entries) {
            if (entry.include)
                continue;
            const storage::stored_version& version = entry.version;
            if (by_member) { // invariant 5: written under the first member it links to
                const std::string& member = state.request.members[state.cursor.member];
                const bool earlier = std::any_of(version.citizens.begin(), version.citizens.end(), [&](const auto& c) {
                    return c < member && std::binary_search(state.request.members.begin(),
                                                            state.request.members.end(), c);
                });
                if (earlier)
                    continue;
            }
            const auto wanted = elements.find(version.type);
            if (wanted == elements.end())
                return finish("a page held a type the export did not ask for"); // a bug: nothing of it written
            if (wanted->second.empty() && key == nullptr && !fhir::stored_in_parts(version.type)) {
                take(version.type, version.json); // the stored bytes, as they are
            } else {
                auto line = wanted->second.empty()
                                ? fhir::listed_form(version.type, version.json) // a Binary without its bytes
                                : fhir::subset_resource(version.json, fhir::summary_form::full, wanted->second);
                if (line && key != nullptr)
                    line = fhir::deidentify_resource(*line, profile, pseudonym_of);
                if (!line)
                    return finish("a stored resource could not be written: " + line.failure().issues.front().diagnostics);
                take(version.type, *line);
            }
            state.citizens.insert(version.citizens.begin(), version.citizens.end());
        }
        if (page->next)
            state.cursor.page = storage::encode_cursor(*page->next);
        else if (by_member && state.cursor.member + 1 < state.request.members.size())
            state.cursor = {state.cursor.pass, state.cursor.member + 1, state.cursor.last_number, state.cursor.open_files, {}};
        else
            next_pass();

        // A file's worth in hand is committed; so is whatever is in hand when the lease is due for renewal.
        const bool renew = steady_clock::now() - state.saved_at >= settings_.lease / 3;
        if ((state.bytes_in_hand >= settings_.file_bytes || renew) && !save(false))
            return;
    }
    save(true);
}

} // namespace caregate::exports
