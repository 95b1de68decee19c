// The lock types of dfs, annotated for Clang's thread-safety analysis
// (thread_annotations.h): libstdc++'s std::mutex carries no annotations, so
// code that holds a lock uses these instead.
//
//   Mutex mu_;                  // guards count_; leaf lock
//   int count_ GUARDED_BY(mu_);
//   CondVar changed_;           // signalled when count_ changes
//
//   void Add() EXCLUDES(mu_) {
//     MutexLock lock(&mu_);
//     ++count_;
//     changed_.SignalAll();
//   }
//   void AwaitPositive() EXCLUDES(mu_) {
//     MutexLock lock(&mu_);
//     while (count_ <= 0) changed_.Wait(&mu_);
//   }
//
// Waits take a loop, not a predicate lambda: the analysis checks a lambda
// as a function of its own, which does not hold the lock.
#pragma once

#include <atomic>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "shared/util/thread_annotations.h"

namespace dfs {

class CondVar;

// A non-recursive mutex (std::mutex). It records its holder, so that
// AssertHeld() can check it in debug builds.
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() {
    mu_.lock();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  void Unlock() RELEASE() {
    owner_.store(std::thread::id(), std::memory_order_relaxed);
    mu_.unlock();
  }
  // Tells the analysis that the calling thread holds this mutex; debug builds
  // check that it does.
  void AssertHeld() const ASSERT_CAPABILITY(this) {
    assert(owner_.load(std::memory_order_relaxed) == std::this_thread::get_id());
  }

 private:
  friend class CondVar;
  std::mutex mu_;
  // The holding thread, or id() when free. Written only by the holder, so a
  // thread reads its own id here exactly while it holds the mutex.
  std::atomic<std::thread::id> owner_{};
};

// Holds a Mutex for its scope (std::lock_guard). Unlock() and Lock() release
// and take it again inside the scope, e.g. around a network call; the
// destructor releases it only if held.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // REQUIRES the mutex held by this guard.
  void Unlock() RELEASE() {
    assert(held_);
    held_ = false;
    mu_->Unlock();
  }
  // REQUIRES the mutex released by Unlock().
  void Lock() ACQUIRE() {
    assert(!held_);
    mu_->Lock();
    held_ = true;
  }

 private:
  Mutex* const mu_;
  bool held_ = true;
};

// A condition variable (std::condition_variable) whose waits name the Mutex
// they release, so that the analysis checks the caller holds it. Wake-ups
// may be spurious: wait in a loop that checks the condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases *mu, waits for a Signal, and takes *mu again before returning.
  void Wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    mu->owner_.store(std::thread::id(), std::memory_order_relaxed);
    cv_.wait(lock);
    mu->owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    lock.release();  // still held, now by the caller again
  }
  // Like Wait, but returns false (with *mu held) once `deadline` has passed.
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex* mu, const std::chrono::time_point<Clock, Duration>& deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    mu->owner_.store(std::thread::id(), std::memory_order_relaxed);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    mu->owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    lock.release();
    return woken;
  }

  // Wakes one waiter / every waiter. Need not hold the mutex.
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A value guarded by a Mutex that is not a member of the object holding it:
// the fields of a struct owned by a class whose mutex guards them (the
// Connections of Server, guarded by Server::mu_). GUARDED_BY cannot name the
// owner's mutex from inside the struct, so every access names it instead:
// Get(&mu) REQUIRES(mu), and debug builds check that `mu` is the guarding
// mutex given at construction and that this thread holds it. Do not keep the
// returned reference past the lock.
template <typename T>
class ExternallyGuarded {
 public:
  explicit ExternallyGuarded(const Mutex* guard) : guard_(guard) {}
  ExternallyGuarded(const ExternallyGuarded&) = delete;
  ExternallyGuarded& operator=(const ExternallyGuarded&) = delete;

  T& Get(const Mutex* mu) REQUIRES(mu) {
    Check(mu);
    return value_;
  }
  const T& Get(const Mutex* mu) const REQUIRES(mu) {
    Check(mu);
    return value_;
  }

 private:
  void Check([[maybe_unused]] const Mutex* mu) const REQUIRES(mu) {
    assert(mu == guard_);
    mu->AssertHeld();
  }

  [[maybe_unused]] const Mutex* const guard_;  // checked in debug builds only
  T value_{};
};

}  // namespace dfs
