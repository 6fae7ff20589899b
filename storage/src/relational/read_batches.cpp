// The batch threads of current_version_batches (read_batches.hpp, which states the invariants).
#include "read_batches.hpp"

#include <algorithm>
#include <utility>

namespace caregate::storage::detail {

void answer_batch(const current_version_batches::run_batch& run, std::span<current_version_batches::wanted* const> reads) {
    try {
        run(reads);
    } catch (...) {
        for (auto* read : reads)
            read->found = fhir::error::make(fhir::category::fault, "exception", "reading resources failed");
    }
    for (auto* read : reads)
        if (!read->found)
            read->found = fhir::error::make(fhir::category::fault, "exception", "a batched read was not answered");
}

void current_version_batches::start(run_batch run, unsigned threads) {
    run_ = std::move(run);
    for (unsigned i = 0; i < std::max(1u, threads); ++i)
        threads_.emplace_back([this] { run_batches(); });
}

void current_version_batches::read(std::string type, std::string id, std::function<void(answer)> then) {
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(wanted{std::move(type), std::move(id), std::nullopt, std::move(then)});
    }
    queued_.notify_one();
}

void current_version_batches::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    queued_.notify_all();
    for (auto& thread : threads_)
        if (thread.joinable())
            thread.join();
    threads_.clear();
}

void current_version_batches::run_batches() {
    for (;;) {
        std::vector<wanted> batch;
        {
            std::unique_lock lock(mutex_);
            // Invariant 2: a stopping thread still takes what is queued; it leaves once nothing is.
            queued_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty())
                return;
            const std::size_t taken = std::min(queue_.size(), max_reads);
            batch.reserve(taken);
            for (std::size_t i = 0; i < taken; ++i) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        std::vector<wanted*> reads;
        reads.reserve(batch.size());
        for (auto& read : batch)
            reads.push_back(&read);
        answer_batch(run_, reads);
        for (auto& read : batch) {
            try {
                read.then(std::move(*read.found));
            } catch (...) {
                // Invariant 3: this read's answer only; the batch's other reads are answered still.
            }
        }
    }
}

} // namespace caregate::storage::detail
