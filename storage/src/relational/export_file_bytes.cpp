// The export bytes' sweeper thread (export_file_bytes.hpp, invariant 3).
#include "export_file_bytes.hpp"

namespace caregate::storage::detail {

export_bytes_sweeper::export_bytes_sweeper(std::function<void()> sweep)
    : sweep_(std::move(sweep)), thread_([this] { run(); }) {}

export_bytes_sweeper::~export_bytes_sweeper() { stop(); }

void export_bytes_sweeper::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wanted_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void export_bytes_sweeper::sweep_later() {
    {
        std::lock_guard lock(mutex_);
        due_ = true;
    }
    wanted_.notify_one();
}

void export_bytes_sweeper::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wanted_.wait(lock, [this] { return stopping_ || due_; });
        if (stopping_)
            return;
        due_ = false;
        lock.unlock();
        sweep_();
        lock.lock();
    }
}

} // namespace caregate::storage::detail
