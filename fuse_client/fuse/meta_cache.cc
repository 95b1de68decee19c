// Listing and lookup cache of the mount (see meta_cache.h).
#include "fuse_client/fuse/meta_cache.h"

#include <algorithm>

#include "fuse_client/fuse/paths.h"

namespace dfs::fuse {
namespace {

// Erases `path` and every key below it.
template <typename Map>
void EraseUnder(Map& map, std::string_view path) {
  if (path.empty()) {
    map.clear();
    return;
  }
  for (auto it = map.lower_bound(path); it != map.end() && it->first.starts_with(path);) {
    if (IsUnder(it->first, path))
      it = map.erase(it);
    else
      ++it;
  }
}

MetaCache::Clock::time_point FetchedOf(const MetaCache::Clock::time_point& t) { return t; }
template <typename T>
MetaCache::Clock::time_point FetchedOf(const T& item) {
  return item.fetched;
}

// Drops stale items once the map is over its bound; if every item is fresh, drops all.
template <typename Map>
void Prune(Map& map, size_t max, MetaCache::Clock::time_point now, MetaCache::Clock::duration ttl) {
  if (map.size() < max) return;
  std::erase_if(map, [&](const auto& kv) { return now - FetchedOf(kv.second) >= ttl; });
  if (map.size() >= max) map.clear();
}

const client::Entry* FindIn(const client::Listing& listing, std::string_view name) {
  const auto& entries = listing.entries;
  auto it = std::lower_bound(entries.begin(), entries.end(), name,
                             [](const client::Entry& e, std::string_view n) { return e.name < n; });
  return it != entries.end() && it->name == name ? &*it : nullptr;
}

}  // namespace

MetaCache::MetaCache(Clock::duration ttl, size_t max_entries, size_t max_listings)
    : ttl_(ttl), max_entries_(max_entries), max_listings_(max_listings) {}

MetaCache::Token MetaCache::Begin() const {
  MutexLock lock(&mu_);
  return Token{epoch_, Clock::now()};
}

const MetaCache::CachedListing* MetaCache::FreshListing(std::string_view dir,
                                                        Clock::time_point now) const {
  auto it = listings_.find(dir);
  if (it == listings_.end() || !Fresh(it->second.fetched, now)) return nullptr;
  return &it->second;
}

std::shared_ptr<const client::Listing> MetaCache::GetListing(std::string_view dir) const {
  MutexLock lock(&mu_);
  const CachedListing* cached = FreshListing(dir, Clock::now());
  if (cached == nullptr || !cached->touched.empty()) return nullptr;
  return cached->listing;
}

void MetaCache::PutListing(std::string_view dir, std::shared_ptr<const client::Listing> listing,
                           const Token& token) {
  MutexLock lock(&mu_);
  if (token.epoch != epoch_ || ttl_ <= Clock::duration::zero()) return;
  Prune(listings_, max_listings_, Clock::now(), ttl_);
  listings_.insert_or_assign(std::string(dir),
                             CachedListing{std::move(listing), token.started, {}});
}

bool MetaCache::DropBigListing(std::string_view dir) {
  std::shared_ptr<const client::Listing> dropped;  // freed outside the lock
  MutexLock lock(&mu_);
  auto it = listings_.find(dir);
  if (it == listings_.end() || it->second.listing == nullptr ||
      it->second.listing->entries.size() < kBigListing)
    return false;
  dropped = std::move(it->second.listing);
  listings_.erase(it);
  return true;
}

std::optional<client::Entry> MetaCache::GetEntry(std::string_view path) const {
  MutexLock lock(&mu_);
  return EntryWithin(path, ttl_);
}

std::optional<client::Entry> MetaCache::GetRecentEntry(std::string_view path,
                                                       Clock::duration max_age) const {
  MutexLock lock(&mu_);
  return EntryWithin(path, std::max(max_age, ttl_));
}

std::optional<client::Entry> MetaCache::EntryWithin(std::string_view path,
                                                    Clock::duration max_age) const {
  const auto now = Clock::now();
  if (auto it = entries_.find(path); it != entries_.end() && now - it->second.fetched < max_age)
    return it->second.entry;
  auto it = listings_.find(ParentOf(path));
  if (it == listings_.end() || now - it->second.fetched >= max_age) return std::nullopt;
  const CachedListing& dir = it->second;
  const std::string_view base = BaseOf(path);
  if (dir.touched.contains(base)) return std::nullopt;
  if (const client::Entry* e = FindIn(*dir.listing, base)) return *e;
  return std::nullopt;
}

bool MetaCache::KnownAbsent(std::string_view path) const {
  if (path.empty()) return false;
  auto now = Clock::now();
  MutexLock lock(&mu_);
  if (auto it = absent_.find(path); it != absent_.end() && Fresh(it->second, now)) return true;
  if (auto it = entries_.find(path); it != entries_.end() && Fresh(it->second.fetched, now))
    return false;
  const CachedListing* dir = FreshListing(ParentOf(path), now);
  const std::string_view base = BaseOf(path);
  return dir != nullptr && !dir->touched.contains(base) && FindIn(*dir->listing, base) == nullptr;
}

bool MetaCache::WorthRelisting(std::string_view dir) const {
  MutexLock lock(&mu_);
  auto it = listings_.find(dir);
  return it != listings_.end() && it->second.listing->entries.size() <= kRelistMaxEntries;
}

void MetaCache::PutAbsent(std::string_view path, const Token& token) {
  MutexLock lock(&mu_);
  if (token.epoch != epoch_ || ttl_ <= Clock::duration::zero()) return;
  Prune(absent_, max_entries_, Clock::now(), ttl_);
  absent_.insert_or_assign(std::string(path), token.started);
}

void MetaCache::PutEntry(std::string_view path, client::Entry entry, const Token& token) {
  MutexLock lock(&mu_);
  if (token.epoch != epoch_ || ttl_ <= Clock::duration::zero()) return;
  Prune(entries_, max_entries_, Clock::now(), ttl_);
  entries_.insert_or_assign(std::string(path), CachedEntry{std::move(entry), token.started});
}

void MetaCache::ForgetAttributes(std::string_view path) {
  MutexLock lock(&mu_);
  ++epoch_;
  if (auto it = entries_.find(path); it != entries_.end()) entries_.erase(it);
  TouchInParent(path);
}

void MetaCache::Invalidate(std::string_view path) {
  MutexLock lock(&mu_);
  ++epoch_;
  EraseUnder(entries_, path);
  EraseUnder(absent_, path);
  EraseUnder(listings_, path);
  TouchInParent(path);
}

void MetaCache::TouchInParent(std::string_view path) {
  if (path.empty()) return;
  if (auto it = listings_.find(ParentOf(path)); it != listings_.end()) {
    // A folder with a great many local changes is simply fetched again.
    if (it->second.touched.size() >= kMaxTouched)
      listings_.erase(it);
    else
      it->second.touched.emplace(BaseOf(path));
  }
}

}  // namespace dfs::fuse
