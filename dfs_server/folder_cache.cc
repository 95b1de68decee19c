// See folder_cache.h.
#include "dfs_server/folder_cache.h"

#include <utility>

namespace dfs::server {

FolderCache::Seen FolderCache::Seen::Of(const struct stat& st) {
  Seen s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.mtime = st.st_mtim;
  s.ctime = st.st_ctim;
  return s;
}

bool FolderCache::Seen::operator==(const Seen& o) const {
  return dev == o.dev && ino == o.ino && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
         ctime.tv_nsec == o.ctime.tv_nsec;
}

std::string FolderCache::Key(std::string_view user, std::string_view dir) {
  std::string key(user);
  key.push_back('\0');  // neither a username nor a path holds one
  key.append(dir);
  return key;
}

FolderCache::Reading::~Reading() {
  if (cache_ != nullptr) cache_->Done(key_);
}

void FolderCache::Reading::Keep(const Seen& seen, Entries entries) {
  if (cache_ != nullptr) cache_->Keep(key_, gen_, seen, std::move(entries));
}

std::shared_ptr<const FolderCache::Entries> FolderCache::Get(std::string_view user,
                                                             std::string_view dir, const Seen& now,
                                                             std::optional<Reading>* reading) {
  std::string key = Key(user, dir);
  MutexLock lock(&mu_);
  auto it = folders_.find(key);
  if (it == folders_.end()) {
    it = folders_.emplace(key, Folder{}).first;
    it->second.generation = next_generation_++;
  }
  Folder& f = it->second;
  if (f.entries != nullptr) {
    if (f.seen == now) {
      lru_.splice(lru_.begin(), lru_, f.lru);
      return f.entries;
    }
    Invalidate(f);  // changed behind our back
  }
  ++f.readers;
  reading->emplace(Reading(this, std::move(key), f.generation));
  return nullptr;
}

std::shared_ptr<const FolderCache::Entries> FolderCache::Peek(std::string_view user,
                                                              std::string_view dir,
                                                              const Seen& now) {
  const std::string key = Key(user, dir);
  MutexLock lock(&mu_);
  auto it = folders_.find(key);
  if (it == folders_.end() || it->second.entries == nullptr || !(it->second.seen == now))
    return nullptr;
  return it->second.entries;
}

void FolderCache::Keep(const std::string& key, uint64_t generation, const Seen& seen,
                       Entries entries) {
  MutexLock lock(&mu_);
  auto it = folders_.find(key);
  if (it == folders_.end()) return;
  Folder& f = it->second;
  const size_t weight = Weight(entries);
  if (f.generation != generation || weight > max_entries_) return;
  if (f.entries != nullptr) {  // a concurrent read of the same state got here first
    held_ -= Weight(*f.entries);
    lru_.erase(f.lru);
  }
  while (held_ + weight > max_entries_ && !lru_.empty()) {
    auto victim = folders_.find(lru_.back());
    Invalidate(victim->second);
    MaybeErase(victim);
  }
  held_ += weight;
  f.seen = seen;
  f.entries = std::make_shared<const Entries>(std::move(entries));
  lru_.push_front(key);
  f.lru = lru_.begin();
}

void FolderCache::Done(const std::string& key) {
  MutexLock lock(&mu_);
  auto it = folders_.find(key);
  if (it == folders_.end()) return;
  --it->second.readers;
  MaybeErase(it);
}

void FolderCache::Changed(std::string_view user, std::string_view dir) {
  MutexLock lock(&mu_);
  auto it = folders_.find(Key(user, dir));
  if (it == folders_.end()) return;  // neither cached nor being read
  Invalidate(it->second);
  MaybeErase(it);
}

size_t FolderCache::entries() const {
  MutexLock lock(&mu_);
  return held_;
}

void FolderCache::Invalidate(Folder& f) {
  if (f.entries != nullptr) {
    held_ -= Weight(*f.entries);
    f.entries.reset();
    lru_.erase(f.lru);
  }
  f.generation = next_generation_++;
}

void FolderCache::MaybeErase(std::map<std::string, Folder, std::less<>>::iterator it) {
  if (it->second.entries == nullptr && it->second.readers == 0) folders_.erase(it);
}

}  // namespace dfs::server
