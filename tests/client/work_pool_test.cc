// Unit tests of the client's worker pool (fuse_client/client/work_pool.h):
// every task runs once, tasks run in parallel, nested and concurrent fan-outs
// complete. Nothing here asserts a duration; a deadline only turns a
// deadlock into a failure instead of a hang.
#include "fuse_client/client/work_pool.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "shared/util/mutex.h"

namespace dfs::client {
namespace {

using Clock = std::chrono::steady_clock;

// Far beyond what any of these tests needs on a loaded machine, and below
// the test's meson timeout (60 s).
constexpr auto kDeadline = std::chrono::seconds(30);

// Runs `body` on a thread of its own and waits for it until kDeadline. A body
// still running then (a deadlock) aborts the test binary with a message: the
// stuck threads could not be joined, and failing beats hanging.
void FinishesInTime(const char* what, std::function<void()> body) {
  struct Done {
    Mutex mu;
    CondVar changed;
    bool done GUARDED_BY(mu) = false;
  };
  auto state = std::make_shared<Done>();
  std::thread runner([state, body = std::move(body)] {
    body();
    MutexLock lock(&state->mu);
    state->done = true;
    state->changed.SignalAll();
  });
  const auto deadline = Clock::now() + kDeadline;
  bool done = false;
  {
    MutexLock lock(&state->mu);
    while (!state->done && state->changed.WaitUntil(&state->mu, deadline)) {
    }
    done = state->done;
  }
  if (!done) {
    std::fprintf(stderr, "FAILED: %s did not finish within %lld s (deadlock?)\n", what,
                 static_cast<long long>(kDeadline.count()));
    std::fflush(stderr);
    std::abort();
  }
  runner.join();
}

// Lets threads through once `expected` of them have arrived, or once its
// deadline has passed: half of kDeadline from construction, so that a test
// waiting in FinishesInTime reports the failed rendezvous rather than abort.
class Rendezvous {
 public:
  explicit Rendezvous(int expected)
      : expected_(expected), deadline_(Clock::now() + kDeadline / 2) {}

  // Arrives and waits for the others; false when the deadline passed first.
  bool ArriveAndWait() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (++arrived_ >= expected_) changed_.SignalAll();
    while (arrived_ < expected_) {
      if (!changed_.WaitUntil(&mu_, deadline_) && arrived_ < expected_) return false;
    }
    return true;
  }

 private:
  const int expected_;
  const Clock::time_point deadline_;
  Mutex mu_;
  CondVar changed_;
  int arrived_ GUARDED_BY(mu_) = 0;
};

TEST_CASE("RunAll runs every index exactly once") {
  WorkPool pool(3);
  for (size_t n : {0, 1, 2, 7, 100}) {
    CAPTURE(n);
    std::vector<std::atomic<int>> runs(n);
    std::atomic<int> calls{0};
    pool.RunAll(n, [&](size_t i) {
      runs[i].fetch_add(1);
      calls.fetch_add(1);
    });
    CHECK(calls.load() == static_cast<int>(n));
    for (size_t i = 0; i < n; ++i) CHECK(runs[i].load() == 1);
  }
}

TEST_CASE("RunAll with one task runs it on the calling thread") {
  WorkPool pool(2);
  std::thread::id ran_on;
  pool.RunAll(1, [&](size_t) { ran_on = std::this_thread::get_id(); });
  CHECK(ran_on == std::this_thread::get_id());
}

TEST_CASE("The calling thread runs task 0 itself") {
  WorkPool pool(2);
  for (int round = 0; round < 20; ++round) {
    std::thread::id first;
    pool.RunAll(5, [&](size_t i) {
      if (i == 0) first = std::this_thread::get_id();
    });
    CHECK(first == std::this_thread::get_id());
  }
}

TEST_CASE("Tasks run in parallel on the workers and the caller") {
  // 4 tasks that each wait for all 4 to arrive: they finish only if 3
  // workers and the caller run them at the same time. Several rounds, so
  // that later ones need workers that had gone idle to be woken.
  FinishesInTime("4 rendezvousing tasks on 3 workers + caller", [] {
    WorkPool pool(3);
    for (int round = 0; round < 20; ++round) {
      CAPTURE(round);
      Rendezvous all(4);
      std::atomic<int> met{0};
      pool.RunAll(4, [&](size_t) {
        if (all.ArriveAndWait()) met.fetch_add(1);
      });
      CHECK(met.load() == 4);
      if (met.load() != 4) break;  // (REQUIRE would throw on this thread)
    }
  });
}

TEST_CASE("RunAll starts no threads: tasks run on the pool's workers and the caller") {
  struct Seen {
    Mutex mu;
    std::set<std::thread::id> ids GUARDED_BY(mu);
  } seen;
  WorkPool pool(3);
  for (int round = 0; round < 300; ++round) {
    pool.RunAll(6, [&](size_t) {
      MutexLock lock(&seen.mu);
      seen.ids.insert(std::this_thread::get_id());
    });
  }
  MutexLock lock(&seen.mu);
  CHECK(seen.ids.size() <= 4);  // 3 workers + this thread
  CHECK(seen.ids.count(std::this_thread::get_id()) == 1);
}

TEST_CASE("RunAll completes on the calling thread alone while every worker is busy") {
  FinishesInTime("a fan-out while the only worker is blocked", [] {
    struct Blocker {
      Mutex mu;
      CondVar changed;
      bool started GUARDED_BY(mu) = false;
      bool release GUARDED_BY(mu) = false;
    } blocker;
    WorkPool pool(1);
    // Occupies the only worker: task 0 runs on the calling thread (the
    // contract) and waits until task 1 has started, so task 1 runs on the
    // worker, and holds it until `release`.
    std::thread occupier([&] {
      pool.RunAll(2, [&](size_t i) {
        MutexLock lock(&blocker.mu);
        if (i == 1) {
          blocker.started = true;
          blocker.changed.SignalAll();
          while (!blocker.release) blocker.changed.Wait(&blocker.mu);
        } else {
          while (!blocker.started) blocker.changed.Wait(&blocker.mu);
        }
      });
    });
    {
      MutexLock lock(&blocker.mu);
      while (!blocker.started) blocker.changed.Wait(&blocker.mu);
    }
    std::vector<std::thread::id> ran_on(5);
    pool.RunAll(5, [&](size_t i) { ran_on[i] = std::this_thread::get_id(); });
    for (const auto& id : ran_on) CHECK(id == std::this_thread::get_id());
    {
      MutexLock lock(&blocker.mu);
      blocker.release = true;
      blocker.changed.SignalAll();
    }
    occupier.join();
  });
}

TEST_CASE("Nested RunAll from inside tasks completes even with one worker") {
  FinishesInTime("nested fan-outs, depth 3, fan-out 4, 1 worker", [] {
    WorkPool pool(1);
    std::atomic<int> leaves{0};
    std::atomic<int> calls{0};
    std::function<void(int)> fan_out = [&](int depth) {
      pool.RunAll(4, [&, depth](size_t) {
        calls.fetch_add(1);
        if (depth == 1) {
          leaves.fetch_add(1);
        } else {
          fan_out(depth - 1);
        }
      });
    };
    fan_out(3);
    CHECK(leaves.load() == 4 * 4 * 4);
    CHECK(calls.load() == 4 + 4 * 4 + 4 * 4 * 4);
  });
}

TEST_CASE("Nested RunAll from many threads at once completes even with one worker") {
  // The worker runs tasks of one caller's batch while other callers wait on
  // theirs, and its tasks fan out again.
  FinishesInTime("4 threads x nested fan-outs on 1 worker", [] {
    WorkPool pool(1);
    std::atomic<int> leaves{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) {
      callers.emplace_back([&] {
        for (int c = 0; c < 20; ++c) {
          pool.RunAll(4, [&](size_t) { pool.RunAll(4, [&](size_t) { leaves.fetch_add(1); }); });
        }
      });
    }
    for (auto& c : callers) c.join();
    CHECK(leaves.load() == 4 * 20 * 4 * 4);
  });
}

TEST_CASE("Many threads calling RunAll at once all get every task run once") {
  FinishesInTime("8 threads x 200 RunAll calls", [] {
    WorkPool pool(3);
    constexpr int kThreads = 8;
    constexpr int kCalls = 200;
    std::atomic<int> wrong{0};
    std::atomic<int> completed{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < kThreads; ++t) {
      callers.emplace_back([&, t] {
        for (int c = 0; c < kCalls; ++c) {
          const size_t n = static_cast<size_t>((t + c) % 9);  // 0..8, including inline 0 and 1
          std::vector<std::atomic<int>> runs(n);
          pool.RunAll(n, [&](size_t i) { runs[i].fetch_add(1); });
          for (size_t i = 0; i < n; ++i)
            if (runs[i].load() != 1) wrong.fetch_add(1);
          completed.fetch_add(1);
        }
      });
    }
    for (auto& c : callers) c.join();
    CHECK(wrong.load() == 0);
    CHECK(completed.load() == kThreads * kCalls);
  });
}

TEST_CASE("The destructor joins the workers, idle or just finished") {
  FinishesInTime("creating and destroying pools", [] {
    for (int round = 0; round < 50; ++round) {
      WorkPool idle(4);  // destroyed without ever running a task
    }
    for (int round = 0; round < 200; ++round) {
      // Destroyed right after RunAll returns, while workers may still be
      // leaving the batch they just finished.
      std::atomic<int> runs{0};
      {
        WorkPool pool(3);
        pool.RunAll(8, [&](size_t) { runs.fetch_add(1); });
      }
      CHECK(runs.load() == 8);
    }
  });
}

}  // namespace
}  // namespace dfs::client
