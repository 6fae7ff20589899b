// The relational engine's writer: the queue, and the one thread that takes it in groups and commits each
// group in one transaction, every job in its own savepoint (invariants 6, 7, 14, 20, 22, 23 and 24 in
// engine.hpp). Acknowledgements run only after COMMIT has returned; a group that cannot commit
// acknowledges no write as a success and puts reads' audit records back at the front of the queue.
// Also the purge of closed search index rows (invariant 18).
#include "engine.hpp"

#include "search_index.hpp"

#include <cassert>
#include <future>

namespace caregate::storage {
namespace {

const std::string begin_sql = "BEGIN IMMEDIATE";

const std::string commit_sql = "COMMIT";

const std::string rollback_sql = "ROLLBACK";

const std::string savepoint_sql = "SAVEPOINT write_request";

const std::string rollback_to_savepoint_sql = "ROLLBACK TO write_request";

const std::string release_savepoint_sql = "RELEASE write_request";

// Invariant 4: the newest version at or before a time is one seek down resource_versions_by_last_updated.
const std::string newest_seq_at_sql =
    "SELECT seq FROM resource_versions WHERE last_updated <= ?1 ORDER BY last_updated DESC, seq DESC LIMIT 1";

/// How often the writer purges closed search index rows (invariant 18): often enough that the
/// tables hold little more than a snapshot lifetime of closed rows, seldom enough that the purge's
/// queries are no cost to a busy writer's groups.
constexpr std::chrono::seconds purge_interval{1};

using transaction_result = std::variant<std::vector<write_outcome>, transaction_failure>;

template <class... Ts>
struct overloaded : Ts... {
    using Ts::operator()...;
};

template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>; // clang before 17 deduces no aggregate's template arguments

/// How a job run inside its own savepoint ended.
enum class savepoint_end {
    kept,   ///< the job's changes stand (until the group commits)
    undone, ///< the job failed and its changes were rolled back; the transaction goes on
    lost,   ///< the whole transaction is gone or unusable
};

/// Runs `run` (returning fhir::status) inside a savepoint of the open transaction: kept on
/// success, rolled back to the savepoint (with the audit chain's tip) on failure.
template <class Run>
savepoint_end run_in_savepoint(connection& db, chain_tip& tip, const chain_tip& committed_tip, Run&& run,
                                      std::optional<fhir::error>& failure) {
    const chain_tip before = tip;
    if (auto saved = db.run(savepoint_sql, "starting a write"); !saved) {
        failure = saved.failure();
        return savepoint_end::lost;
    }
    fhir::status done = run();
    if (done) // a driver may have deferred some of the statements (database.hpp, connection::settle)
        done = db.settle("finishing a write");
    if (!db.in_transaction()) {
        // SQLite rolled the whole transaction back (an I/O error, a full disk): the earlier
        // jobs in the group are gone too.
        failure = !done.ok() && (done.failure().kind == fhir::category::busy || done.failure().kind == fhir::category::fault)
                      ? done.failure()
                      : store_fault("storage failure: the write transaction was rolled back");
        tip = committed_tip;
        return savepoint_end::lost;
    }
    if (!done) {
        auto undone = db.run(rollback_to_savepoint_sql, "undoing a failed write");
        if (undone)
            undone = db.run(release_savepoint_sql, "undoing a failed write");
        if (!undone) {
            failure = undone.failure();
            return savepoint_end::lost;
        }
        tip = before; // invariant 13: the records appended inside the savepoint are gone
        failure = done.failure();
        return savepoint_end::undone;
    }
    if (auto released = db.run(release_savepoint_sql, "finishing a write"); !released) {
        failure = released.failure();
        return savepoint_end::lost;
    }
    return savepoint_end::kept;
}

} // namespace

void relational_engine::enqueue(queued_job job) {
    std::vector<queued_job> one;
    one.push_back(std::move(job));
    enqueue_all(std::move(one));
}

void relational_engine::enqueue_all(std::vector<queued_job> jobs) {
    {
        std::lock_guard lock(queue_mutex);
        if (!stopping) {
            // Wake the writer only for what it would act on: a job someone waits for, a queue that
            // was empty (it is asleep), or a full group; it lingers over reads' audit records only.
            bool wake = queue.empty();
            for (queued_job& job : jobs) {
                if (is_urgent(job)) {
                    ++urgent_jobs;
                    wake = true;
                }
                queue.push_back(std::move(job));
            }
            if (wake || queue.size() >= std::max(1u, options.max_group_size))
                queue_filled.notify_one();
            return;
        }
    }
    const auto closing =
        fhir::error::make(fhir::category::busy, "transient", "storage temporarily unavailable: the store is closing");
    for (queued_job& job : jobs)
        std::visit(overloaded{
                       [&](queued_transaction& refused) {
                           if (refused.done)
                               refused.done(transaction_failure{SIZE_MAX, closing});
                       },
                       [&](auto& refused) {
                           if (refused.done)
                               refused.done(closing);
                       },
                   },
                   job);
}

void relational_store::submit(write_request request, write_callback done) {
    // The search index values are extracted here, on the caller's thread, not on the one writer.
    if (!request.index)
        prepare_index(request);
    impl_->enqueue(queued_write{std::move(request), std::move(done)});
}

void relational_store::submit_all(std::vector<std::pair<write_request, write_callback>> writes) {
    std::vector<queued_job> jobs;
    jobs.reserve(writes.size());
    for (auto& [request, done] : writes)
        jobs.emplace_back(queued_write{std::move(request), std::move(done)});
    impl_->enqueue_all(std::move(jobs));
}

void relational_store::append_audit(std::vector<audit_record> records, std::function<void(fhir::status)> done) {
    if (!done)
        impl_->audit_backlog += records.size();
    impl_->enqueue(queued_audit{std::move(records), std::move(done)});
}

std::size_t relational_store::audit_backlog() const noexcept { return impl_->audit_backlog.load(); }

bool relational_store::audit_backlog_full() const noexcept {
    return impl_->audit_backlog.load() >= std::max<std::size_t>(1, impl_->options.max_audit_backlog);
}

void relational_store::grant_break_glass(break_glass_grant grant, audit_record audit, std::function<void(fhir::status)> done) {
    impl_->enqueue(queued_grant{std::move(grant), std::move(audit), std::move(done)});
}

void relational_store::submit_transaction(std::vector<write_request> writes, transaction_callback done) {
    for (write_request& write : writes)
        if (!write.index)
            prepare_index(write);
    impl_->enqueue(queued_transaction{std::move(writes), std::move(done)});
}

void relational_store::prepare_index(write_request& request) const {
    request.index.reset();
    if (request.kind == write_kind::remove || request.content.empty())
        return;
    try {
        auto prepared = detail::prepare_search_values(request.type, request.id, request.content);
        if (prepared)
            request.index = std::make_shared<const prepared_index>(std::move(*prepared));
    } catch (const std::exception&) {
        // Content the writer will refuse as it would have (apply_guarded): no values made here.
    }
}

fhir::result<write_outcome> relational_store::write(write_request request) {
    if (std::this_thread::get_id() == impl_->writer.get_id())
        // From a write callback: the writer would wait for itself.
        return store_fault("sqlite_store::write called on the writer thread; use submit from a write callback");
    std::promise<fhir::result<write_outcome>> finished;
    auto outcome = finished.get_future();
    submit(std::move(request), [&finished](fhir::result<write_outcome> result) { finished.set_value(std::move(result)); });
    return outcome.get();
}

store_statistics relational_store::statistics() const {
    store_statistics counts;
    counts.groups = impl_->groups.load();
    counts.writes = impl_->writes.load();
    counts.largest_group = impl_->largest_group.load();
    counts.checkpoints = impl_->checkpoints.load();
    counts.commits = impl_->commits.load();
    counts.commit_micros = impl_->commit_micros.load();
    for (std::size_t i = 0; i < counts.commits_within.size(); ++i)
        counts.commits_within[i] = impl_->commits_within[i].load();
    std::lock_guard lock(impl_->queue_mutex);
    counts.queued_jobs = impl_->queue.size();
    return counts;
}

void relational_engine::count_commit(std::chrono::steady_clock::duration took) {
    const auto micros = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
    const auto bucket = std::lower_bound(commit_bucket_bounds_us.begin(), commit_bucket_bounds_us.end(), micros);
    if (bucket != commit_bucket_bounds_us.end())
        ++commits_within[static_cast<std::size_t>(bucket - commit_bucket_bounds_us.begin())];
    commit_micros += micros;
    ++commits;
}

void relational_engine::run_writer() {
    const std::size_t group_limit = std::max(1u, options.max_group_size);
    for (;;) {
        std::vector<queued_job> group;
        {
            std::unique_lock lock(queue_mutex);
            queue_filled.wait(lock, [this] { return stopping || !queue.empty(); });
            if (queue.empty())
                return; // stopping, and everything queued has been written
            assert(urgent_jobs <= queue.size()); // urgent_jobs counts jobs in the queue
            // A checkpoint runs alone, after the groups queued before it.
            if (auto* checkpoint = std::get_if<queued_checkpoint>(&queue.front())) {
                queued_checkpoint job = std::move(*checkpoint);
                queue.pop_front();
                --urgent_jobs;
                lock.unlock();
                run_checkpoint(job);
                continue;
            }
            if (urgent_jobs == 0 && options.audit_linger.count() > 0) {
                // Only reads' audit records wait: let more join them, so that one commit (and one
                // emptying of every reader's page cache) serves many reads.
                const auto deadline = std::chrono::steady_clock::now() + options.audit_linger;
                queue_filled.wait_until(lock, deadline, [&] {
                    return stopping || urgent_jobs > 0 || queue.size() >= group_limit;
                });
            }
            const std::size_t taken = std::min(queue.size(), group_limit);
            group.reserve(taken);
            for (std::size_t i = 0; i < taken && !std::holds_alternative<queued_checkpoint>(queue.front()); ++i) {
                if (is_urgent(queue.front()))
                    --urgent_jobs;
                group.push_back(std::move(queue.front()));
                queue.pop_front();
            }
        }
        commit_group(group);
    }
}

void relational_engine::commit_group(std::vector<queued_job>& group) {
    std::uint64_t write_count = 0;
    for (const queued_job& job : group) {
        if (std::holds_alternative<queued_write>(job))
            ++write_count;
        else if (const auto* transaction = std::get_if<queued_transaction>(&job))
            write_count += transaction->writes.size();
    }
    ++groups;
    writes += write_count;
    for (auto seen = largest_group.load(); write_count > seen && !largest_group.compare_exchange_weak(seen, write_count);) {
    }

    if (on_postgresql() && !writer_db->usable()) {
        // The connection was lost (the server restarted, or failed over to a standby): a new one,
        // or this group fails as busy and the next tries again.
        if (auto reopened = open_postgresql_writer())
            writer_db = std::move(*reopened);
    }
    connection& db = *writer_db;
    // Per job: a write's outcome, or the status of an audit append or a grant.
    std::vector<std::optional<fhir::result<write_outcome>>> outcomes(group.size());
    std::vector<std::optional<fhir::status>> statuses(group.size());
    std::vector<std::optional<transaction_result>> transactions(group.size());
    // Invariant 7: once the transaction as a whole is lost, no job in it is acknowledged.
    auto fail_all = [&](const fhir::error& failure) {
        if (db.in_transaction())
            db.run(rollback_sql, "rolling back a write transaction");
        tip = committed_tip;
        for (std::size_t i = 0; i < group.size(); ++i) {
            if (std::holds_alternative<queued_write>(group[i]))
                outcomes[i].emplace(failure);
            else if (std::holds_alternative<queued_transaction>(group[i]))
                transactions[i].emplace(transaction_failure{SIZE_MAX, failure});
            else
                statuses[i].emplace(failure);
        }
    };
    auto deliver = [&] {
        // Invariant 24: reads' audit records (no one waits for them) that a failure kept out of the
        // database go back to the front of the queue, in order, for the next group.
        std::vector<queued_job> retry;
        for (std::size_t i = 0; i < group.size(); ++i) {
            if (auto* audit = std::get_if<queued_audit>(&group[i]); audit && !audit->done) {
                if (statuses[i] && !statuses[i]->ok()) {
                    retry.push_back(std::move(group[i]));
                    continue;
                }
                audit_backlog -= audit->records.size(); // committed
            }
            try {
                std::visit(overloaded{
                               [&](queued_write& job) { job.done(std::move(*outcomes[i])); },
                               [&](queued_transaction& job) { job.done(std::move(*transactions[i])); },
                               [&](auto& job) {
                                   if (job.done)
                                       job.done(std::move(*statuses[i]));
                               },
                           },
                           group[i]);
            } catch (...) {
                // A callback's failure is its own; the writer must go on serving the others.
            }
        }
        if (!retry.empty()) {
            std::lock_guard lock(queue_mutex);
            if (!stopping) // closing gives up on them rather than wait on the fault forever
                for (auto it = retry.rbegin(); it != retry.rend(); ++it)
                    queue.push_front(std::move(*it));
        }
    };
    auto in_savepoint = [&](auto&& run, std::optional<fhir::error>& failure) {
        const auto end = run_in_savepoint(db, tip, committed_tip, run, failure);
        if (end != savepoint_end::kept)
            held_in_group.clear(); // invariant 29: what the undone writes told it is undone too
        return end;
    };

    const auto began = std::chrono::steady_clock::now();
    if (auto begun = db.run(begin_sql, "starting a write transaction"); !begun) {
        fail_all(begun.failure());
        return deliver();
    }
    if (auto turn = take_writers_turn(db); !turn) {
        fail_all(turn.failure());
        return deliver();
    }
    held_in_group.clear(); // invariant 29: a group knows only what it found itself
    next_seq = seq_reserved_until = 0;
    seqs_wanted = static_cast<std::int64_t>(write_count);
    // Reads' audit records next to each other in the group go in under one savepoint and many to
    // an INSERT: a read's record then costs a share of a statement, not a savepoint and a statement
    // of its own (on PostgreSQL, a round trip of its own). Should the run fail, it is undone and its jobs go one savepoint each, as any other job,
    // so that one bad job fails alone; a run that loses the transaction fails the group, as a job's.
    std::size_t appended_as_run_until = 0; // the jobs before this index went in as a run
    for (std::size_t i = 0; i < group.size(); ++i) {
        std::optional<fhir::error> failure;
        bool lost = false;
        if (i < appended_as_run_until)
            continue;
        if (std::size_t end = i; std::holds_alternative<queued_audit>(group[i])) {
            while (end < group.size() && std::holds_alternative<queued_audit>(group[end]))
                ++end;
            if (end - i >= 2) {
                const auto finished = in_savepoint(
                    [&]() -> fhir::status {
                        std::vector<const audit_record*> records;
                        for (std::size_t k = i; k < end; ++k)
                            for (const auto& record : std::get<queued_audit>(group[k]).records)
                                records.push_back(&record);
                        return append_run(records);
                    },
                    failure);
                if (finished == savepoint_end::lost) {
                    fail_all(*failure);
                    return deliver();
                }
                if (finished == savepoint_end::kept) {
                    for (std::size_t k = i; k < end; ++k)
                        statuses[k].emplace(fhir::status{});
                    appended_as_run_until = end;
                    continue;
                }
                failure.reset(); // undone: the jobs go one by one below
            }
        }
        if (auto* job = std::get_if<queued_write>(&group[i])) {
            std::optional<write_outcome> written;
            const auto end = in_savepoint(
                [&]() -> fhir::status {
                    auto applied = write_rules(*this).apply_request(job->request);
                    if (!applied)
                        return std::move(applied).failure();
                    if (job->request.audit) { // invariant 14
                        if (auto appended = append_one(success_record(*job->request.audit, *applied)); !appended)
                            return appended;
                    }
                    written = std::move(*applied);
                    return {};
                },
                failure);
            if (end == savepoint_end::kept) {
                outcomes[i].emplace(std::move(*written));
            } else if (end == savepoint_end::undone) {
                outcomes[i].emplace(*failure);
                if (job->request.audit) {
                    // The write is undone; its audit record still goes in, saying so.
                    std::optional<fhir::error> audit_failure;
                    if (in_savepoint([&] { return append_one(undone_record(*job->request.audit, &*failure)); },
                                     audit_failure) != savepoint_end::kept) {
                        failure = audit_failure;
                        lost = true; // an audit record that cannot be kept fails the group
                    }
                }
            } else {
                lost = true;
            }
        } else if (auto* job = std::get_if<queued_transaction>(&group[i])) {
            std::optional<std::vector<write_outcome>> written;
            std::size_t failed_at = 0;
            const auto end = in_savepoint(
                [&]() -> fhir::status {
                    auto applied = write_rules(*this).apply_transaction(job->writes, failed_at);
                    if (!applied)
                        return std::move(applied).failure();
                    failed_at = SIZE_MAX; // from here on, no write's fault
                    for (std::size_t w = 0; w < job->writes.size(); ++w) // invariant 14
                        if (job->writes[w].audit)
                            if (auto appended = append_one(success_record(*job->writes[w].audit, (*applied)[w]));
                                !appended)
                                return appended;
                    written = std::move(*applied);
                    return {};
                },
                failure);
            if (end == savepoint_end::kept) {
                transactions[i].emplace(std::move(*written));
            } else if (end == savepoint_end::undone) {
                const bool storage_failure =
                    failure->kind == fhir::category::busy || failure->kind == fhir::category::fault;
                const std::size_t culprit = storage_failure ? SIZE_MAX : failed_at;
                transactions[i].emplace(transaction_failure{culprit, *failure});
                // Nothing of the transaction stands; each write's audit record still goes in, saying so.
                std::optional<fhir::error> audit_failure;
                if (in_savepoint(
                        [&]() -> fhir::status {
                            for (std::size_t w = 0; w < job->writes.size(); ++w) {
                                if (!job->writes[w].audit)
                                    continue;
                                auto record = undone_record(*job->writes[w].audit, w == culprit ? &*failure : nullptr);
                                if (auto appended = append_one(std::move(record)); !appended)
                                    return appended;
                            }
                            return {};
                        },
                        audit_failure) != savepoint_end::kept) {
                    failure = audit_failure;
                    lost = true;
                }
            } else {
                lost = true;
            }
        } else if (auto* job = std::get_if<queued_audit>(&group[i])) {
            const auto end = in_savepoint(
                [&]() -> fhir::status {
                    for (const auto& record : job->records)
                        if (auto appended = append_one(record); !appended)
                            return appended;
                    return {};
                },
                failure);
            lost = end == savepoint_end::lost;
            if (!lost)
                statuses[i].emplace(end == savepoint_end::kept ? fhir::status{} : fhir::status{*failure});
        } else if (auto* job = std::get_if<queued_export>(&group[i])) {
            const auto end = in_savepoint([&] { return job->work(*this, db); }, failure);
            lost = end == savepoint_end::lost;
            if (!lost)
                statuses[i].emplace(end == savepoint_end::kept ? fhir::status{} : fhir::status{*failure});
        } else {
            auto& grant = std::get<queued_grant>(group[i]);
            const auto end = in_savepoint(
                [&]() -> fhir::status { // invariant 15
                    if (auto inserted = insert_grant(grant.grant); !inserted)
                        return inserted;
                    return append_one(grant.audit);
                },
                failure);
            lost = end == savepoint_end::lost;
            if (!lost)
                statuses[i].emplace(end == savepoint_end::kept ? fhir::status{} : fhir::status{*failure});
        }
        if (lost) {
            fail_all(*failure);
            return deliver();
        }
    }
    // Invariant 18: after the group's jobs, in a savepoint of its own, so a purge that fails is
    // undone and fails no job (the next purge tries again).
    if (const auto now = std::chrono::steady_clock::now(); !last_purge || now - *last_purge >= purge_interval) {
        last_purge = now;
        std::optional<fhir::error> failure;
        if (in_savepoint([&] { return purge_closed_search_rows(); }, failure) == savepoint_end::lost) {
            fail_all(*failure);
            return deliver();
        }
    }
    // Invariant 26: the state the next group, on whichever node, reads (only when it moved).
    if (on_postgresql() && (tip.sequence != committed_tip.sequence || newest_timestamp != loaded_newest_timestamp)) {
        static const std::string save_state_sql =
            "UPDATE writer_state SET audit_sequence = ?1, audit_hash = ?2, newest_last_updated = ?3";
        auto saved = execute(db, save_state_sql, "saving the writer's state", [&](statement& update) {
            update.bind(1, tip.sequence).bind(2, tip.hash).bind(3, newest_timestamp);
        });
        if (!saved) {
            fail_all(saved.failure());
            return deliver();
        }
    }
    // Invariant 27: every node's cached standings are stale once this commits.
    if (on_postgresql() && std::any_of(group.begin(), group.end(), changes_standing))
        if (auto raised = db.run(raise_access_generation_sql, "raising the access generation"); !raised) {
            fail_all(raised.failure());
            return deliver();
        }
    if (auto committed = db.run(commit_sql, "committing a write transaction"); !committed) {
        fail_all(committed.failure());
        return deliver();
    }
    committed_tip = tip;
    count_commit(std::chrono::steady_clock::now() - began);
    // Cached standings are stale from here on; bumped before any acknowledgement, so a caller who
    // has seen their write acknowledged never gets a standing read before it.
    if (std::any_of(group.begin(), group.end(), changes_standing))
        access_generation.fetch_add(1, std::memory_order_acq_rel);
    if (std::exchange(export_bytes_orphaned, false) && export_bytes_sweeper)
        export_bytes_sweeper->sweep_later();
    deliver(); // invariant 6: only now, after COMMIT, is anything acknowledged
}

fhir::status relational_engine::purge_closed_search_rows() {
    // H: the newest version older than the snapshot lifetime. A row closed at or before H was closed
    // before every snapshot still readable was taken, so none of them needs it.
    const timestamp cutoff =
        now_microseconds() - std::chrono::duration_cast<std::chrono::microseconds>(options.snapshot_lifetime).count();
    auto horizon = query_one<std::int64_t>(
        *writer_db, newest_seq_at_sql, "purging closed search index rows", [&](statement& q) { q.bind(1, cutoff); },
        [](const statement& row) { return row.integer(0); });
    if (!horizon)
        return std::move(horizon).failure();
    if (!*horizon)
        return {}; // no version is that old yet
    // Exports' invariant 3: an unfinished export reads its snapshot however old it is.
    auto pinned = oldest_unfinished_export_snapshot(*writer_db);
    if (!pinned)
        return std::move(pinned).failure();
    if (*pinned)
        **horizon = std::min(**horizon, **pinned);
    auto purged = detail::purge_closed_rows(*writer_db, **horizon);
    if (!purged)
        return std::move(purged).failure();
    return {};
}

} // namespace caregate::storage
