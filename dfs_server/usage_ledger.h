// The per-user byte count behind quotas (StoreOptions::quota_bytes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "shared/util/mutex.h"
#include "shared/util/status.h"
#include "shared/util/thread_annotations.h"

namespace dfs::server {

// The bytes each user with a quota holds here: piece and tombstone files
// under ROOT/USER and files in ROOT/.staging/USER, an upload under way
// counting its whole size from BeginPut on. Learnt by one scan on first need,
// then kept up to date by every change the Store makes. It errs only
// upwards: a file created or removed while the first scan runs may count
// once too often, a file removed behind the Store's back stays counted until
// a restart; it never goes below zero. Thread-safe.
class UsageLedger {
 public:
  explicit UsageLedger(const std::map<std::string, uint64_t, std::less<>>& quotas) {
    for (const auto& [user, quota] : quotas) users_.try_emplace(user, quota, &mu_);
  }
  UsageLedger(const UsageLedger&) = delete;
  UsageLedger& operator=(const UsageLedger&) = delete;

  // Whether `user` has a quota (only those are counted).
  bool Tracked(std::string_view user) const { return users_.find(user) != users_.end(); }

  // Adds `bytes` to the count of `user` if it stays within the quota, else
  // kNoSpace "quota of N bytes exceeded". The first call for a user counts
  // the user's files with `scan` (errors of `scan` come back). OK for a user
  // without a quota.
  Status Charge(std::string_view user, uint64_t bytes,
                const std::function<Result<uint64_t>()>& scan) EXCLUDES(mu_) {
    auto it = users_.find(user);
    if (it == users_.end()) return Status::Ok();
    Entry& e = it->second;
    bool ready = false;
    {
      MutexLock lock(&mu_);
      ready = e.counts.Get(&mu_).ready;
    }
    if (!ready) {
      MutexLock scan_lock(&e.scan_mu);
      {
        MutexLock lock(&mu_);
        Counts& c = e.counts.Get(&mu_);
        ready = c.ready;
        c.scanning = !ready;
        c.pending = 0;
      }
      if (!ready) {
        Result<uint64_t> counted = scan();
        MutexLock lock(&mu_);
        Counts& c = e.counts.Get(&mu_);
        c.scanning = false;
        if (!counted.ok()) return counted.status().Annotate("counting the quota");
        c.bytes = Saturated(*counted, c.pending);
        c.ready = true;
      }
    }
    MutexLock lock(&mu_);
    Counts& c = e.counts.Get(&mu_);
    if (bytes > e.quota || c.bytes > e.quota - bytes)
      return Status::NoSpace("quota of " + std::to_string(e.quota) + " bytes exceeded (" +
                             std::to_string(c.bytes) + " in use, the piece needs " +
                             std::to_string(bytes) + ")");
    c.bytes += bytes;
    return Status::Ok();
  }

  // A file of `bytes` was added for / removed from `user`.
  void Add(std::string_view user, uint64_t bytes) EXCLUDES(mu_) {
    auto it = users_.find(user);
    if (it == users_.end()) return;
    MutexLock lock(&mu_);
    Counts& c = it->second.counts.Get(&mu_);
    if (c.ready)
      c.bytes = Saturated(c.bytes, bytes);
    else if (c.scanning)  // the scan may miss it: count it (maybe twice)
      c.pending = Saturated(c.pending, bytes);
  }
  void Sub(std::string_view user, uint64_t bytes) EXCLUDES(mu_) {
    auto it = users_.find(user);
    if (it == users_.end()) return;
    MutexLock lock(&mu_);
    Counts& c = it->second.counts.Get(&mu_);
    // Before the count is known the scan sees the file gone, or, if it ran
    // before the removal, counts it once too often: never too few.
    if (c.ready) c.bytes -= std::min(c.bytes, bytes);
  }

 private:
  static uint64_t Saturated(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
  }

  // What mu_ guards in each Entry.
  struct Counts {
    bool ready = false;     // `bytes` is the count
    bool scanning = false;  // the first scan runs; additions go to `pending`
    uint64_t bytes = 0;
    uint64_t pending = 0;
  };
  struct Entry {
    Entry(uint64_t q, const Mutex* ledger_mu) : quota(q), counts(ledger_mu) {}
    const uint64_t quota;
    // Held across the first scan of the user (a walk of its folders, no
    // network); taken before mu_, never with mu_ held.
    Mutex scan_mu;
    ExternallyGuarded<Counts> counts;  // by UsageLedger::mu_: counts.Get(&mu_)
  };
  // Guards the Counts of every Entry (the map itself is fixed at
  // construction, so it is read without a lock). Leaf lock: taken after a
  // stripe lock and an Entry::scan_mu; held across no syscall.
  Mutex mu_;
  std::map<std::string, Entry, std::less<>> users_;
};

}  // namespace dfs::server
