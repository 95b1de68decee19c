// The per-user byte count behind quotas (StoreOptions::quota_bytes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "shared/util/status.h"

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
    for (const auto& [user, quota] : quotas) users_.try_emplace(user).first->second.quota = quota;
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
                const std::function<Result<uint64_t>()>& scan) {
    auto it = users_.find(user);
    if (it == users_.end()) return Status::Ok();
    Entry& e = it->second;
    bool ready = false;
    {
      std::lock_guard lock(mu_);
      ready = e.ready;
    }
    if (!ready) {
      std::lock_guard scan_lock(e.scan_mu);
      {
        std::lock_guard lock(mu_);
        ready = e.ready;
        e.scanning = !ready;
        e.pending = 0;
      }
      if (!ready) {
        Result<uint64_t> counted = scan();
        std::lock_guard lock(mu_);
        e.scanning = false;
        if (!counted.ok()) return counted.status().Annotate("counting the quota");
        e.bytes = Saturated(*counted, e.pending);
        e.ready = true;
      }
    }
    std::lock_guard lock(mu_);
    if (bytes > e.quota || e.bytes > e.quota - bytes)
      return Status::NoSpace("quota of " + std::to_string(e.quota) + " bytes exceeded (" +
                             std::to_string(e.bytes) + " in use, the piece needs " +
                             std::to_string(bytes) + ")");
    e.bytes += bytes;
    return Status::Ok();
  }

  // A file of `bytes` was added for / removed from `user`.
  void Add(std::string_view user, uint64_t bytes) {
    auto it = users_.find(user);
    if (it == users_.end()) return;
    std::lock_guard lock(mu_);
    Entry& e = it->second;
    if (e.ready)
      e.bytes = Saturated(e.bytes, bytes);
    else if (e.scanning)  // the scan may miss it: count it (maybe twice)
      e.pending = Saturated(e.pending, bytes);
  }
  void Sub(std::string_view user, uint64_t bytes) {
    auto it = users_.find(user);
    if (it == users_.end()) return;
    std::lock_guard lock(mu_);
    Entry& e = it->second;
    // Before the count is known the scan sees the file gone, or, if it ran
    // before the removal, counts it once too often: never too few.
    if (e.ready) e.bytes -= std::min(e.bytes, bytes);
  }

 private:
  static uint64_t Saturated(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
  }

  struct Entry {
    uint64_t quota = 0;
    std::mutex scan_mu;  // held across the first scan of the user; taken before mu_
    // Guarded by mu_:
    bool ready = false;     // `bytes` is the count
    bool scanning = false;  // the first scan runs; additions go to `pending`
    uint64_t bytes = 0;
    uint64_t pending = 0;
  };
  // Guards the counts of every Entry (the map itself is fixed at
  // construction). Taken after a stripe lock; held across no syscall.
  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> users_;
};

}  // namespace dfs::server
