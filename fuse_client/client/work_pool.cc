// The worker pool of the client's fan-outs (work_pool.h).
#include "fuse_client/client/work_pool.h"

#include <algorithm>
#include <cassert>

namespace dfs::client {

WorkPool::WorkPool(int threads) {
  assert(threads >= 1);
  workers_.reserve(static_cast<size_t>(threads));
  try {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  } catch (...) {  // a thread could not be started: stop the ones that were
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    work_.SignalAll();
    for (auto& w : workers_) w.join();
    throw;
  }
}

WorkPool::~WorkPool() {
  {
    MutexLock lock(&mu_);
    assert(queue_.empty());  // no RunAll in progress
    stopping_ = true;
  }
  work_.SignalAll();
  for (auto& w : workers_) w.join();
}

void WorkPool::RunAll(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1) {
    Run(fn, 0);
    return;
  }
  Batch batch(fn, n, &mu_);
  {
    MutexLock lock(&mu_);
    batch.claimed.Get(&mu_) = 1;  // fn(0) is the caller's
    batch.unfinished.Get(&mu_) = n;
    queue_.push_back(&batch);
  }
  // A worker that is busy now finds the batch when it next looks at the
  // queue; waking more workers than tasks would only wake them for nothing.
  const size_t wake = std::min(n - 1, workers_.size());
  for (size_t i = 0; i < wake; ++i) work_.Signal();

  Run(fn, 0);
  MutexLock lock(&mu_);
  FinishLocked(&batch);
  // Run what no worker has taken yet, rather than wait for a worker that may
  // never come (it may itself be waiting in a RunAll of a task of ours).
  while (batch.claimed.Get(&mu_) < n) {
    const size_t i = ClaimLocked(&batch);
    lock.Unlock();
    Run(fn, i);
    lock.Lock();
    FinishLocked(&batch);
  }
  // Every task is claimed, so the batch is off the queue; wait for the ones
  // workers are running.
  while (batch.unfinished.Get(&mu_) > 0) batch.done.Wait(&mu_);
}

void WorkPool::WorkerLoop() {
  MutexLock lock(&mu_);
  for (;;) {
    while (queue_.empty() && !stopping_) work_.Wait(&mu_);
    if (queue_.empty()) return;  // stopping_, and nothing left to run
    Batch* b = queue_.front();
    const size_t i = ClaimLocked(b);
    lock.Unlock();
    Run(b->fn, i);
    lock.Lock();
    FinishLocked(b);  // b may be gone once mu_ is released: do not touch it again
  }
}

size_t WorkPool::ClaimLocked(Batch* b) {
  size_t& claimed = b->claimed.Get(&mu_);
  assert(claimed < b->n);
  const size_t i = claimed++;
  if (claimed == b->n) {
    auto it = std::find(queue_.begin(), queue_.end(), b);
    assert(it != queue_.end());
    queue_.erase(it);
  }
  return i;
}

void WorkPool::FinishLocked(Batch* b) {
  size_t& unfinished = b->unfinished.Get(&mu_);
  assert(unfinished > 0);
  if (--unfinished == 0) b->done.Signal();  // under mu_: the waiter cannot return before we unlock
}

}  // namespace dfs::client
