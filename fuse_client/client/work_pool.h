// A small fixed pool of worker threads for the client's parallel fan-outs
// (one request per server, one transfer per piece), so that a fan-out costs
// no thread creation: the mount runs thousands of them per second.
//
//   WorkPool pool(4);
//   std::vector<Status> results(n);
//   pool.RunAll(n, [&](size_t i) { results[i] = Ask(i); });
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "shared/util/mutex.h"
#include "shared/util/thread_annotations.h"

namespace dfs::client {

class WorkPool {
 public:
  // Starts `threads` workers. REQUIRES threads >= 1.
  explicit WorkPool(int threads);
  // Stops and joins the workers. REQUIRES no RunAll in progress (then no task
  // is queued either: RunAll returns only once all of its tasks have run).
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Runs fn(0), ..., fn(n-1) in parallel and returns when all have returned
  // (their effects are then visible to the caller). n == 0 returns at once;
  // n == 1 runs fn(0) inline.
  //
  // The calling thread runs tasks too: always fn(0), then every task of this
  // call that no worker has picked up yet (only tasks of this call, so the
  // caller is never held up by someone else's work). It waits only for tasks
  // that are already running on a worker. So a RunAll called from inside a
  // task (a fan-out whose task does another fan-out) cannot deadlock, even
  // with 1 worker and every worker busy: a thread waiting in RunAll waits
  // only for threads running tasks of its call, and those, if they wait,
  // wait for calls started later inside those tasks; a chain of waits thus
  // runs to ever newer calls and ends at a thread that is running, not
  // waiting. The worst case is that the caller runs all n tasks itself.
  //
  // fn must not throw: the tasks are noexcept, and an exception leaving fn
  // terminates the process. fn is called from several threads at once.
  // Thread-safe, and may be called from inside a task of this pool.
  void RunAll(size_t n, const std::function<void(size_t)>& fn) EXCLUDES(mu_);

 private:
  // One RunAll call. It lives on the caller's stack: RunAll returns only
  // once `unfinished` is 0, and no worker touches the batch after the
  // decrement that made it 0 (made, and signalled, under mu_).
  struct Batch {
    Batch(const std::function<void(size_t)>& f, size_t count, const Mutex* mu)
        : fn(f), n(count), claimed(mu), unfinished(mu) {}
    const std::function<void(size_t)>& fn;
    const size_t n;
    // Tasks handed to a thread: fn(0) .. fn(claimed-1). The batch is in
    // queue_ exactly while claimed < n.
    ExternallyGuarded<size_t> claimed;
    // Tasks not yet returned.
    ExternallyGuarded<size_t> unfinished;
    // Signalled under mu_ when unfinished reaches 0; waited on with mu_.
    CondVar done;
  };

  // The body of each worker thread: runs queued tasks until stopping_.
  void WorkerLoop() EXCLUDES(mu_);
  // Hands the next unclaimed task of *b (which must have one) to the calling
  // thread and returns its index; takes *b off the queue after its last.
  size_t ClaimLocked(Batch* b) REQUIRES(mu_);
  // Records that a task of *b returned; signals b->done after the last one.
  // *b must not be touched after mu_ is released if this made it finish.
  void FinishLocked(Batch* b) REQUIRES(mu_);
  // Runs task i; an exception escaping fn terminates the process.
  static void Run(const std::function<void(size_t)>& fn, size_t i) noexcept { fn(i); }

  // Guards queue_, stopping_ and the counts of every queued or running
  // batch; leaf lock, never held while a task runs.
  Mutex mu_;
  // Batches with unclaimed tasks, oldest first; workers serve the front.
  std::deque<Batch*> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;  // set by the destructor
  CondVar work_;                           // signalled when queue_ grows or stopping_ is set
  std::vector<std::thread> workers_;       // written only by the constructor
};

}  // namespace dfs::client
