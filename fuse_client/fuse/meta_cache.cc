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

// Drops stale items once the map is over its bound; if every item is fresh, drops all.
template <typename Map>
void Prune(Map& map, size_t max, MetaCache::Clock::time_point now, MetaCache::Clock::duration ttl) {
  if (map.size() < max) return;
  std::erase_if(map, [&](const auto& kv) { return now - kv.second.fetched >= ttl; });
  if (map.size() >= max) map.clear();
}

}  // namespace

MetaCache::MetaCache(Clock::duration ttl, size_t max_entries, size_t max_listings)
    : ttl_(ttl), max_entries_(max_entries), max_listings_(max_listings) {}

MetaCache::Token MetaCache::Begin() const {
  MutexLock lock(&mu_);
  return Token{epoch_, Clock::now()};
}

std::shared_ptr<const client::Listing> MetaCache::GetListing(std::string_view dir) const {
  MutexLock lock(&mu_);
  auto it = listings_.find(dir);
  if (it == listings_.end() || !Fresh(it->second.fetched, Clock::now())) return nullptr;
  return it->second.listing;
}

void MetaCache::PutListing(std::string_view dir, std::shared_ptr<const client::Listing> listing,
                           const Token& token) {
  MutexLock lock(&mu_);
  if (token.epoch != epoch_ || ttl_ <= Clock::duration::zero()) return;
  Prune(listings_, max_listings_, Clock::now(), ttl_);
  listings_.insert_or_assign(std::string(dir), CachedListing{std::move(listing), token.started});
}

std::optional<client::Entry> MetaCache::GetEntry(std::string_view path) const {
  auto now = Clock::now();
  MutexLock lock(&mu_);
  if (auto it = entries_.find(path); it != entries_.end() && Fresh(it->second.fetched, now))
    return it->second.entry;
  auto dir = listings_.find(ParentOf(path));
  if (dir == listings_.end() || !Fresh(dir->second.fetched, now)) return std::nullopt;
  const auto& entries = dir->second.listing->entries;
  std::string_view base = BaseOf(path);
  auto it = std::lower_bound(entries.begin(), entries.end(), base,
                             [](const client::Entry& e, std::string_view n) { return e.name < n; });
  if (it != entries.end() && it->name == base) return *it;
  return std::nullopt;  // the caller asks the servers: absence is never cached
}

void MetaCache::PutEntry(std::string_view path, client::Entry entry, const Token& token) {
  MutexLock lock(&mu_);
  if (token.epoch != epoch_ || ttl_ <= Clock::duration::zero()) return;
  Prune(entries_, max_entries_, Clock::now(), ttl_);
  entries_.insert_or_assign(std::string(path), CachedEntry{std::move(entry), token.started});
}

void MetaCache::Invalidate(std::string_view path) {
  MutexLock lock(&mu_);
  ++epoch_;
  EraseUnder(entries_, path);
  EraseUnder(listings_, path);
  listings_.erase(ParentOf(path));
}

}  // namespace dfs::fuse
