// Unit tests of the annotated lock types (shared/util/mutex.h). The
// annotations themselves are checked by the clang build (-Wthread-safety);
// these check what the types do at run time.
#include "shared/util/mutex.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace dfs {
namespace {

using std::chrono::milliseconds;

struct Counter {
  Mutex mu;
  CondVar changed;
  int value GUARDED_BY(mu) = 0;
};

TEST_CASE("MutexLock excludes other threads for its scope") {
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 10000; ++i) {
        MutexLock lock(&c.mu);
        ++c.value;
      }
    });
  }
  for (auto& t : threads) t.join();
  MutexLock lock(&c.mu);
  CHECK(c.value == 40000);
}

TEST_CASE("MutexLock::Unlock releases the mutex until Lock, and the destructor then releases it") {
  Counter c;
  {
    MutexLock lock(&c.mu);
    c.mu.AssertHeld();
    lock.Unlock();
    std::thread other([&c] {
      MutexLock inner(&c.mu);  // would deadlock if Unlock had not released it
      c.value = 1;
    });
    other.join();
    lock.Lock();
    CHECK(c.value == 1);
  }
  std::thread after([&c] {
    MutexLock inner(&c.mu);  // would deadlock if the destructor had not released it
    c.value = 2;
  });
  after.join();
  MutexLock lock(&c.mu);
  CHECK(c.value == 2);
}

TEST_CASE("CondVar::Wait returns with the mutex held once signalled") {
  Counter c;
  std::thread producer([&c] {
    std::this_thread::sleep_for(milliseconds(20));
    {
      MutexLock lock(&c.mu);
      c.value = 7;
    }
    c.changed.SignalAll();
  });
  {
    MutexLock lock(&c.mu);
    while (c.value == 0) c.changed.Wait(&c.mu);
    c.mu.AssertHeld();  // the holder is recorded again after the wait
    CHECK(c.value == 7);
  }
  producer.join();
}

TEST_CASE("CondVar::WaitUntil gives up at the deadline with the mutex held") {
  Counter c;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + milliseconds(50);
  MutexLock lock(&c.mu);
  bool woken = true;
  while (c.value == 0 && woken) woken = c.changed.WaitUntil(&c.mu, deadline);
  CHECK_FALSE(woken);
  CHECK(std::chrono::steady_clock::now() >= deadline);
  c.mu.AssertHeld();
  ++c.value;  // still ours
  CHECK(c.value == 1);
}

TEST_CASE("CondVar::WaitUntil returns true when signalled before the deadline") {
  Counter c;
  std::thread producer([&c] {
    std::this_thread::sleep_for(milliseconds(20));
    {
      MutexLock lock(&c.mu);
      c.value = 1;
    }
    c.changed.Signal();
  });
  {
    MutexLock lock(&c.mu);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (c.value == 0) REQUIRE(c.changed.WaitUntil(&c.mu, deadline));
    CHECK(c.value == 1);
  }
  producer.join();
}

TEST_CASE("ExternallyGuarded hands out its value to the holder of the guarding mutex") {
  struct Owner {
    Mutex mu;
    struct Item {
      explicit Item(const Mutex* guard) : count(guard) {}
      ExternallyGuarded<int> count;
    };
    Item item{&mu};
  } owner;
  {
    MutexLock lock(&owner.mu);
    owner.item.count.Get(&owner.mu) = 3;
  }
  MutexLock lock(&owner.mu);
  const auto& item = owner.item;
  CHECK(item.count.Get(&owner.mu) == 3);
}

}  // namespace
}  // namespace dfs
