// A short-lived cache of directory listings and single-name lookups, so that
// `ls -l` costs one LIST instead of one round trip per name, and a lookup of
// a name that does not exist (cp, tar and editors probe before they create)
// costs nothing while its folder's listing is fresh. Everything lives for a
// TTL (about a second). A local change forgets what it touches: the name, and
// the name alone in its folder's listing (the listing keeps answering for its
// other names but no longer serves readdir). A result fetched before a local
// change is never stored after it: callers take a Token before the fetch and
// hand it back with the result.
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
#include <set>
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
  // The same from a listing or entry up to `max_age` old (past the TTL),
  // for callers that need a lower bound of the version rather than the
  // current one (unlink: its tombstone must be newer than what was seen).
  std::optional<client::Entry> GetRecentEntry(std::string_view path, Clock::duration max_age) const
      EXCLUDES(mu_);
  void PutEntry(std::string_view path, client::Entry entry, const Token& token) EXCLUDES(mu_);
  // True when `path` is known not to exist: a fresh lookup found nothing
  // (PutAbsent), or a fresh listing of its parent lacks the name and nothing
  // was changed under that name here since.
  bool KnownAbsent(std::string_view path) const EXCLUDES(mu_);
  void PutAbsent(std::string_view path, const Token& token) EXCLUDES(mu_);
  // True when `dir` had a listing of at most kRelistMaxEntries entries that
  // is now stale or touched: listing it again is cheaper than a lookup per name.
  bool WorthRelisting(std::string_view dir) const EXCLUDES(mu_);
  static constexpr size_t kRelistMaxEntries = 10000;

  // Forgets the listing of `dir` if it holds kBigListing entries or more, so
  // that fetching it again does not hold two copies of a big folder at once.
  // Returns whether it did.
  bool DropBigListing(std::string_view dir) EXCLUDES(mu_);
  static constexpr size_t kBigListing = 10000;

  // Forgets `path` and everything under it; its parent's listing forgets
  // the name (and serves lookups of its other names only).
  void Invalidate(std::string_view path) EXCLUDES(mu_);
  // Forgets what is cached of `path` itself (its attributes), not what is
  // beneath it: a folder whose subfolder count changed.
  void ForgetAttributes(std::string_view path) EXCLUDES(mu_);

 private:
  struct CachedListing {
    std::shared_ptr<const client::Listing> listing;
    Clock::time_point fetched;
    // Names changed here since the fetch: unknown to this listing. A listing
    // with any is not returned by GetListing (readdir must see the change).
    std::set<std::string, std::less<>> touched;
  };
  // The fresh listing of `dir`, touched or not; nullptr if none.
  const CachedListing* FreshListing(std::string_view dir, Clock::time_point now) const
      REQUIRES(mu_);
  std::optional<client::Entry> EntryWithin(std::string_view path, Clock::duration max_age) const
      REQUIRES(mu_);
  // Marks `path` (not the root) unknown to its parent's cached listing.
  void TouchInParent(std::string_view path) REQUIRES(mu_);
  struct CachedEntry {
    client::Entry entry;
    Clock::time_point fetched;
  };
  bool Fresh(Clock::time_point fetched, Clock::time_point now) const {
    return now - fetched < ttl_;
  }

  static constexpr size_t kMaxTouched = 4096;
  const Clock::duration ttl_;
  const size_t max_entries_;
  const size_t max_listings_;
  mutable Mutex mu_;                    // guards everything below; leaf lock, never held across I/O
  uint64_t epoch_ GUARDED_BY(mu_) = 0;  // bumped by every Invalidate
  std::map<std::string, CachedListing, std::less<>> listings_ GUARDED_BY(mu_);
  std::map<std::string, CachedEntry, std::less<>> entries_ GUARDED_BY(mu_);
  std::map<std::string, Clock::time_point, std::less<>> absent_ GUARDED_BY(mu_);  // fetched
};

}  // namespace dfs::fuse
