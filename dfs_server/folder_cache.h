// What LIST last read from recently listed folders, so that listing a folder
// again does not open every piece file in it for its header (a folder of
// 10,000 files is 20,000 opens, reads and closes per server: most of a warm
// `ls -l`).
//
// A cached folder is served only while nothing can have changed it:
//   - every Store operation that changes a folder (commit, delete, rename,
//     setattr, purge, mkdir, rmdir) calls Changed() for it once its changes
//     are on disk, which drops the folder and bumps its generation, and a
//     listing read while a change was under way is not kept (its generation
//     moved on meanwhile);
//   - the folder's inode, mtime and ctime must be those seen when it was
//     read, so files added, removed or renamed by hand are seen too, unless
//     the change falls in the same tick of the file system's clock as the
//     last change before the read (coarse timestamps: before Linux 6.13);
//     a piece rewritten in place by hand is not seen (a reader verifies
//     every chunk, and the next change through the store drops the folder).
// Bounded by the number of entries kept over all folders, an empty folder
// counting as one (least recently listed folders go first); a folder larger
// than the bound is never kept.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/protocol/messages.h"
#include "shared/util/mutex.h"
#include "shared/util/thread_annotations.h"

namespace dfs::server {

class FolderCache {
 public:
  using Entries = std::vector<ListEntry>;

  // What a folder looked like when it was read (fstat of the open folder).
  struct Seen {
    dev_t dev = 0;
    ino_t ino = 0;
    timespec mtime{};
    timespec ctime{};
    static Seen Of(const struct stat& st);
    bool operator==(const Seen& o) const;
  };

  explicit FolderCache(size_t max_entries) : max_entries_(max_entries) {}
  FolderCache(const FolderCache&) = delete;
  FolderCache& operator=(const FolderCache&) = delete;

  // A read of a folder the cache could not serve. Keep() offers what was
  // read; it is kept unless the folder changed since Get() (or is too big).
  class Reading {
   public:
    Reading(Reading&& o) noexcept : cache_(o.cache_), key_(std::move(o.key_)), gen_(o.gen_) {
      o.cache_ = nullptr;
    }
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;
    Reading& operator=(Reading&&) = delete;
    ~Reading();
    void Keep(const Seen& seen, Entries entries);

   private:
    friend class FolderCache;
    Reading(FolderCache* cache, std::string key, uint64_t gen)
        : cache_(cache), key_(std::move(key)), gen_(gen) {}
    FolderCache* cache_;
    std::string key_;
    uint64_t gen_;
  };

  // The entries of user/dir if cached and the folder is still as `now`
  // shows it; else nullptr and *reading is set: read the folder, then Keep().
  std::shared_ptr<const Entries> Get(std::string_view user, std::string_view dir, const Seen& now,
                                     std::optional<Reading>* reading) EXCLUDES(mu_);
  // The entries of user/dir if cached and the folder is still as `now`
  // shows it, else nullptr (and nothing else happens). Sorted as Store::List
  // sends them, so one name's entries are found by binary search.
  std::shared_ptr<const Entries> Peek(std::string_view user, std::string_view dir, const Seen& now)
      EXCLUDES(mu_);
  // user/dir changed on disk (call after the change, also after a failed one).
  void Changed(std::string_view user, std::string_view dir) EXCLUDES(mu_);

  size_t entries() const EXCLUDES(mu_);
  size_t max_entries() const { return max_entries_; }

 private:
  struct Folder {
    uint64_t generation = 0;
    int readers = 0;  // Readings under way
    Seen seen;
    std::shared_ptr<const Entries> entries;  // nullptr: not (or no longer) valid
    std::list<std::string>::iterator lru;    // in lru_ while entries != nullptr
  };
  static std::string Key(std::string_view user, std::string_view dir);
  // What a folder counts against the bound: an empty one counts as one, so
  // a walk through many empty folders cannot grow the cache without end.
  static size_t Weight(const Entries& e) { return e.empty() ? 1 : e.size(); }
  void Keep(const std::string& key, uint64_t generation, const Seen& seen, Entries entries)
      EXCLUDES(mu_);
  void Done(const std::string& key) EXCLUDES(mu_);
  // Forgets f's entries and gives it a new generation.
  void Invalidate(Folder& f) REQUIRES(mu_);
  // Erases `it` when it holds nothing and nobody reads it.
  void MaybeErase(std::map<std::string, Folder, std::less<>>::iterator it) REQUIRES(mu_);

  const size_t max_entries_;
  mutable Mutex mu_;  // leaf lock, never held across I/O
  uint64_t next_generation_ GUARDED_BY(mu_) = 1;
  size_t held_ GUARDED_BY(mu_) = 0;  // entries over all folders
  // Folders cached or being read (a record with neither is erased).
  std::map<std::string, Folder, std::less<>> folders_ GUARDED_BY(mu_);
  std::list<std::string> lru_ GUARDED_BY(mu_);  // cached folders, most recently listed first
};

}  // namespace dfs::server
