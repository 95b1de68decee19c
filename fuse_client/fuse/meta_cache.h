// A short-lived cache of directory listings and single-name lookups, so that
// `ls -l` costs one LIST instead of one round trip per name. Everything lives
// for a TTL (about a second) and any local change drops what it touches. A
// result fetched before a local change is never stored after it: callers take
// a Token before the fetch and hand it back with the result.
//
// Thread-safe. Memory is bounded by max_entries and max_listings.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "fuse_client/client/client.h"
#include "shared/util/mutex.h"
#include "shared/util/thread_annotations.h"

namespace dfs::fuse {

class MetaCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Token {
    uint64_t epoch = 0;
    Clock::time_point started;
  };

  explicit MetaCache(Clock::duration ttl, size_t max_entries = 16384, size_t max_listings = 256);

  // Call before fetching; pass the token to Put*.
  Token Begin() const EXCLUDES(mu_);

  // The listing of `dir` if it is younger than the TTL, else nullptr.
  std::shared_ptr<const client::Listing> GetListing(std::string_view dir) const EXCLUDES(mu_);
  // Stores a listing unless something was invalidated since `token` was taken.
  void PutListing(std::string_view dir, std::shared_ptr<const client::Listing> listing,
                  const Token& token) EXCLUDES(mu_);

  // The entry for `path` from a fresh lookup or from a fresh listing of its
  // parent. nullopt means "not known", never "does not exist".
  std::optional<client::Entry> GetEntry(std::string_view path) const EXCLUDES(mu_);
  void PutEntry(std::string_view path, client::Entry entry, const Token& token) EXCLUDES(mu_);

  // Forgets `path`, everything under it and the listing of its parent.
  void Invalidate(std::string_view path) EXCLUDES(mu_);

 private:
  struct CachedListing {
    std::shared_ptr<const client::Listing> listing;
    Clock::time_point fetched;
  };
  struct CachedEntry {
    client::Entry entry;
    Clock::time_point fetched;
  };
  bool Fresh(Clock::time_point fetched, Clock::time_point now) const {
    return now - fetched < ttl_;
  }

  const Clock::duration ttl_;
  const size_t max_entries_;
  const size_t max_listings_;
  mutable Mutex mu_;                    // guards everything below; leaf lock, never held across I/O
  uint64_t epoch_ GUARDED_BY(mu_) = 0;  // bumped by every Invalidate
  std::map<std::string, CachedListing, std::less<>> listings_ GUARDED_BY(mu_);
  std::map<std::string, CachedEntry, std::less<>> entries_ GUARDED_BY(mu_);
};

}  // namespace dfs::fuse
