// A test's background work (a reload while a request is open, a writer while pages are read) on a
// thread that is joined however the test ends and whose failure fails the test, not the runner. A
// plain std::thread ends the whole runner (std::terminate) when a REQUIRE or any other exception
// leaves it, or when it is still joinable as a failed REQUIRE unwinds the test.
//
//   testing::background reload([&](std::stop_token stop) { ... REQUIRE(...); ... });
//   ...
//   reload.join(); // rethrows, on the test's thread, what the work threw
//
// Not joined by the test (it ended early), the work is asked to stop (its stop_token; a work that
// waits for something must also watch the token), joined, and what it threw is reported as a
// failure of the test (FAIL_CHECK), never dropped.
#pragma once

#include <doctest/doctest.h>

#include <exception>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>

namespace caregate::testing {

class background {
public:
    /// Starts `work`, a callable taking a std::stop_token, or nothing.
    template <class Work>
    explicit background(Work work)
        : thread_([this, work = std::move(work)](std::stop_token stop) mutable {
              try {
                  if constexpr (std::is_invocable_v<Work&, std::stop_token>)
                      work(stop);
                  else
                      work();
              } catch (...) {
                  failure_ = std::current_exception(); // read only after the join
              }
          }) {}
    background(const background&) = delete;
    background& operator=(const background&) = delete;

    /// Asks the work to stop; join() still waits for it.
    void request_stop() { thread_.request_stop(); }

    /// Waits for the work; rethrows, here, what it threw (a failed REQUIRE ends the test as it would
    /// have on the test's thread; its failure was reported when it failed).
    void join() {
        thread_.join();
        if (failure_)
            std::rethrow_exception(std::exchange(failure_, nullptr));
    }

    ~background() {
        if (thread_.joinable()) {
            thread_.request_stop();
            thread_.join();
        }
        if (failure_)
            FAIL_CHECK("background work of the test threw");
    }

private:
    std::exception_ptr failure_; // before thread_: made before the thread starts, gone after it
    std::jthread thread_;
};

} // namespace caregate::testing
