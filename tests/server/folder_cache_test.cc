// Unit tests of dfs_server/folder_cache.h: the listing cache alone, no disk.
#include "dfs_server/folder_cache.h"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace dfs::server {
namespace {

using Entries = FolderCache::Entries;
using Seen = FolderCache::Seen;

// What a folder looks like at "time" t (mtime and ctime), inode ino.
Seen SeenAt(int64_t t, ino_t ino = 100, dev_t dev = 1) {
  Seen s;
  s.dev = dev;
  s.ino = ino;
  s.mtime.tv_sec = t;
  s.mtime.tv_nsec = 5;
  s.ctime.tv_sec = t;
  s.ctime.tv_nsec = 7;
  return s;
}

// `n` entries named prefix0, prefix1, ...: every other one a folder, the
// rest piece headers (piece 1..).
Entries MakeEntries(size_t n, const std::string& prefix = "e") {
  Entries out;
  for (size_t i = 0; i < n; ++i) {
    ListEntry e;
    e.name = prefix + std::to_string(i);
    e.is_dir = i % 2 == 1;
    if (!e.is_dir) {
      e.header.piece = static_cast<uint8_t>(1 + i % 4);
      e.header.file_size = 1000 + i;
      e.header.mode = 0600;
      e.header.cid.fill(static_cast<uint8_t>(i));
    }
    out.push_back(std::move(e));
  }
  return out;
}

// Whether `a` and `b` hold the same entries, headers byte for byte.
bool SameEntries(const Entries& a, const Entries& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].is_dir != b[i].is_dir) return false;
    if (!a[i].is_dir && a[i].header.Encode() != b[i].header.Encode()) return false;
  }
  return true;
}

// Get that must miss: returns the Reading.
FolderCache::Reading MustMiss(FolderCache& cache, const std::string& dir, const Seen& seen,
                              const std::string& user = "alice") {
  std::optional<FolderCache::Reading> reading;
  auto got = cache.Get(user, dir, seen, &reading);
  REQUIRE(got == nullptr);
  REQUIRE(reading.has_value());
  return std::move(*reading);
}

// Get; nullptr on a miss (the Reading is dropped, keeping nothing).
std::shared_ptr<const Entries> Lookup(FolderCache& cache, const std::string& dir, const Seen& seen,
                                      const std::string& user = "alice") {
  std::optional<FolderCache::Reading> reading;
  auto got = cache.Get(user, dir, seen, &reading);
  CHECK(reading.has_value() == (got == nullptr));
  return got;
}

// Reads dir as seen and keeps `entries` for it.
void Fill(FolderCache& cache, const std::string& dir, const Seen& seen, const Entries& entries,
          const std::string& user = "alice") {
  FolderCache::Reading reading = MustMiss(cache, dir, seen, user);
  reading.Keep(seen, entries);
}

TEST_CASE("an empty cache misses and hands out a reading") {
  FolderCache cache(100);
  CHECK(cache.max_entries() == 100);
  CHECK(cache.entries() == 0);
  std::optional<FolderCache::Reading> reading;
  CHECK(cache.Get("alice", "", SeenAt(1), &reading) == nullptr);
  CHECK(reading.has_value());
  std::optional<FolderCache::Reading> other;
  CHECK(cache.Get("alice", "a/b", SeenAt(1), &other) == nullptr);
  CHECK(other.has_value());
  CHECK(cache.entries() == 0);
}

TEST_CASE("kept entries are served while the folder is seen the same") {
  FolderCache cache(100);
  const Entries entries = MakeEntries(5);
  Fill(cache, "d", SeenAt(10), entries);
  CHECK(cache.entries() == 5);
  for (int i = 0; i < 3; ++i) {
    auto got = Lookup(cache, "d", SeenAt(10));
    REQUIRE(got != nullptr);
    CHECK(SameEntries(*got, entries));
  }
  CHECK(cache.entries() == 5);
  // Other folders, other users, are not served from it.
  CHECK(Lookup(cache, "e", SeenAt(10)) == nullptr);
  CHECK(Lookup(cache, "d", SeenAt(10), "bob") == nullptr);
  CHECK(Lookup(cache, "", SeenAt(10)) == nullptr);
  CHECK(Lookup(cache, "d/d", SeenAt(10)) == nullptr);
  // A user and a folder never run into each other through the key.
  CHECK(Lookup(cache, "ed", SeenAt(10), "alic") == nullptr);
  CHECK(Lookup(cache, "/d", SeenAt(10), "alice") == nullptr);
  CHECK(cache.entries() == 5);
  REQUIRE(Lookup(cache, "d", SeenAt(10)) != nullptr);
}

TEST_CASE("a folder seen otherwise is not served and is dropped") {
  FolderCache cache(100);
  const Entries entries = MakeEntries(4);

  Seen other = SeenAt(10);
  SUBCASE("another mtime (seconds)") { other.mtime.tv_sec += 1; }
  SUBCASE("another mtime (nanoseconds)") { other.mtime.tv_nsec += 1; }
  SUBCASE("another ctime (seconds)") { other.ctime.tv_sec += 1; }
  SUBCASE("another ctime (nanoseconds)") { other.ctime.tv_nsec += 1; }
  SUBCASE("another inode") { other.ino += 1; }
  SUBCASE("another device") { other.dev += 1; }
  CHECK_FALSE(other == SeenAt(10));

  Fill(cache, "d", SeenAt(10), entries);
  REQUIRE(cache.entries() == 4);
  {
    std::optional<FolderCache::Reading> reading;
    CHECK(cache.Get("alice", "d", other, &reading) == nullptr);
    CHECK(reading.has_value());
    // The stale entries are gone at once, not only hidden.
    CHECK(cache.entries() == 0);
  }
  // Even the old view is not served any more: the folder must be read again.
  CHECK(Lookup(cache, "d", SeenAt(10)) == nullptr);
  CHECK(cache.entries() == 0);
  // And what is read for the new view is served for it.
  const Entries fresh = MakeEntries(3, "f");
  Fill(cache, "d", other, fresh);
  CHECK(cache.entries() == 3);
  auto got = Lookup(cache, "d", other);
  REQUIRE(got != nullptr);
  CHECK(SameEntries(*got, fresh));
}

TEST_CASE("a change between get and keep makes keep a no-op") {
  FolderCache cache(100);
  FolderCache::Reading reading = MustMiss(cache, "d", SeenAt(10));
  cache.Changed("alice", "d");
  reading.Keep(SeenAt(10), MakeEntries(3));
  CHECK(cache.entries() == 0);
  CHECK(Lookup(cache, "d", SeenAt(10)) == nullptr);

  // A change of another folder or another user's does not spoil a read.
  FolderCache::Reading second = MustMiss(cache, "d", SeenAt(10));
  cache.Changed("alice", "e");
  cache.Changed("alice", "d/sub");
  cache.Changed("bob", "d");
  second.Keep(SeenAt(10), MakeEntries(3));
  CHECK(cache.entries() == 3);
  CHECK(Lookup(cache, "d", SeenAt(10)) != nullptr);
}

TEST_CASE("a change while two reads are under way spoils both, also after one kept") {
  FolderCache cache(100);
  FolderCache::Reading r1 = MustMiss(cache, "d", SeenAt(10));
  FolderCache::Reading r2 = MustMiss(cache, "d", SeenAt(10));
  r1.Keep(SeenAt(10), MakeEntries(2));
  CHECK(cache.entries() == 2);
  cache.Changed("alice", "d");
  CHECK(cache.entries() == 0);
  r2.Keep(SeenAt(10), MakeEntries(2));  // read before the change: not kept
  CHECK(cache.entries() == 0);
  CHECK(Lookup(cache, "d", SeenAt(10)) == nullptr);
}

TEST_CASE("two reads of the same state keep one copy") {
  FolderCache cache(100);
  FolderCache::Reading r1 = MustMiss(cache, "d", SeenAt(10));
  FolderCache::Reading r2 = MustMiss(cache, "d", SeenAt(10));
  r1.Keep(SeenAt(10), MakeEntries(4));
  CHECK(cache.entries() == 4);
  const Entries later = MakeEntries(4, "later");
  r2.Keep(SeenAt(10), later);
  CHECK(cache.entries() == 4);
  auto got = Lookup(cache, "d", SeenAt(10));
  REQUIRE(got != nullptr);
  CHECK(SameEntries(*got, later));
}

TEST_CASE("a change after keep drops the folder") {
  FolderCache cache(100);
  Fill(cache, "d", SeenAt(10), MakeEntries(3));
  Fill(cache, "e", SeenAt(10), MakeEntries(2));
  REQUIRE(cache.entries() == 5);
  cache.Changed("alice", "d");
  CHECK(cache.entries() == 2);
  CHECK(Lookup(cache, "d", SeenAt(10)) == nullptr);
  CHECK(Lookup(cache, "e", SeenAt(10)) != nullptr);
  // Changing it again, or a folder never seen, is harmless.
  cache.Changed("alice", "d");
  cache.Changed("alice", "never");
  CHECK(cache.entries() == 2);
  // It can be kept again afterwards.
  Fill(cache, "d", SeenAt(11), MakeEntries(1));
  CHECK(cache.entries() == 3);
  CHECK(Lookup(cache, "d", SeenAt(11)) != nullptr);
}

TEST_CASE("a folder with more entries than the bound is not kept") {
  FolderCache cache(10);
  Fill(cache, "small", SeenAt(1), MakeEntries(4));
  Fill(cache, "big", SeenAt(1), MakeEntries(11));
  CHECK(cache.entries() == 4);
  CHECK(Lookup(cache, "big", SeenAt(1)) == nullptr);
  // Nor did it push anything out.
  CHECK(Lookup(cache, "small", SeenAt(1)) != nullptr);
  // Exactly the bound fits (and then nothing else does).
  Fill(cache, "exact", SeenAt(1), MakeEntries(10));
  CHECK(cache.entries() == 10);
  CHECK(Lookup(cache, "exact", SeenAt(1)) != nullptr);
  CHECK(Lookup(cache, "small", SeenAt(1)) == nullptr);
}

TEST_CASE("the least recently listed folders go first") {
  FolderCache cache(10);
  const Entries a = MakeEntries(6, "a");
  const Entries b = MakeEntries(6, "b");
  Fill(cache, "A", SeenAt(1), a);
  CHECK(cache.entries() == 6);
  Fill(cache, "B", SeenAt(1), b);
  CHECK(cache.entries() == 6);
  CHECK(Lookup(cache, "A", SeenAt(1)) == nullptr);
  auto got = Lookup(cache, "B", SeenAt(1));
  REQUIRE(got != nullptr);
  CHECK(SameEntries(*got, b));
  CHECK(cache.entries() == 6);

  // A listing counts as a use: of X, Y (listed since) and Z, X survives Z.
  FolderCache lru(10);
  Fill(lru, "X", SeenAt(1), MakeEntries(4));
  Fill(lru, "Y", SeenAt(1), MakeEntries(4));
  REQUIRE(Lookup(lru, "X", SeenAt(1)) != nullptr);
  Fill(lru, "Z", SeenAt(1), MakeEntries(4));
  CHECK(lru.entries() == 8);
  CHECK(Lookup(lru, "Y", SeenAt(1)) == nullptr);
  CHECK(Lookup(lru, "X", SeenAt(1)) != nullptr);
  CHECK(Lookup(lru, "Z", SeenAt(1)) != nullptr);
  // As many as needed go: W (9) pushes out both.
  Fill(lru, "W", SeenAt(1), MakeEntries(9));
  CHECK(lru.entries() == 9);
  CHECK(Lookup(lru, "X", SeenAt(1)) == nullptr);
  CHECK(Lookup(lru, "Z", SeenAt(1)) == nullptr);
  CHECK(Lookup(lru, "W", SeenAt(1)) != nullptr);
}

TEST_CASE("entries served stay valid after the folder is dropped") {
  FolderCache cache(10);
  const Entries entries = MakeEntries(5);
  Fill(cache, "d", SeenAt(1), entries);
  auto held = Lookup(cache, "d", SeenAt(1));
  REQUIRE(held != nullptr);
  cache.Changed("alice", "d");
  Fill(cache, "e", SeenAt(1), MakeEntries(10));  // evicts everything
  CHECK(SameEntries(*held, entries));
}

TEST_CASE("a reading dropped without keep leaves nothing behind") {
  FolderCache cache(10);
  { FolderCache::Reading reading = MustMiss(cache, "d", SeenAt(1)); }
  CHECK(cache.entries() == 0);
  CHECK(Lookup(cache, "d", SeenAt(1)) == nullptr);
  {
    // A moved-from reading neither keeps nor counts twice.
    FolderCache::Reading first = MustMiss(cache, "d", SeenAt(1));
    FolderCache::Reading moved(std::move(first));
    first.Keep(SeenAt(1), MakeEntries(2));
    CHECK(cache.entries() == 0);
    moved.Keep(SeenAt(1), MakeEntries(3));
    CHECK(cache.entries() == 3);
  }
  CHECK(cache.entries() == 3);
  CHECK(Lookup(cache, "d", SeenAt(1)) != nullptr);
  cache.Changed("alice", "d");
  CHECK(cache.entries() == 0);
  // After all that, a read and a keep work as on a fresh cache.
  Fill(cache, "d", SeenAt(2), MakeEntries(7));
  CHECK(cache.entries() == 7);
  auto got = Lookup(cache, "d", SeenAt(2));
  REQUIRE(got != nullptr);
  CHECK(got->size() == 7);
}

TEST_CASE("a change while a reading is under way, then no keep, leaves nothing behind") {
  FolderCache cache(10);
  {
    FolderCache::Reading reading = MustMiss(cache, "d", SeenAt(1));
    cache.Changed("alice", "d");
  }
  CHECK(cache.entries() == 0);
  Fill(cache, "d", SeenAt(1), MakeEntries(2));
  CHECK(cache.entries() == 2);
  CHECK(Lookup(cache, "d", SeenAt(1)) != nullptr);
}

TEST_CASE("entries are counted right through keeps, replacements, evictions and changes") {
  FolderCache cache(20);
  Fill(cache, "a", SeenAt(1), MakeEntries(5));
  Fill(cache, "b", SeenAt(1), MakeEntries(7));
  CHECK(cache.entries() == 12);
  // A stale view of a replaced by a new one.
  {
    FolderCache::Reading reading = MustMiss(cache, "a", SeenAt(2));
    CHECK(cache.entries() == 7);
    reading.Keep(SeenAt(2), MakeEntries(3));
  }
  CHECK(cache.entries() == 10);
  Fill(cache, "c", SeenAt(1), MakeEntries(10));  // fits exactly
  CHECK(cache.entries() == 20);
  Fill(cache, "d", SeenAt(1), MakeEntries(1));  // b (least recent) goes
  CHECK(cache.entries() == 14);
  CHECK(Lookup(cache, "b", SeenAt(1)) == nullptr);
  CHECK(Lookup(cache, "a", SeenAt(2)) != nullptr);
  Fill(cache, "too big", SeenAt(1), MakeEntries(21));
  CHECK(cache.entries() == 14);
  cache.Changed("alice", "c");
  CHECK(cache.entries() == 4);
  cache.Changed("alice", "a");
  cache.Changed("alice", "d");
  CHECK(cache.entries() == 0);
  for (const char* dir : {"a", "b", "c", "d", "too big"}) {
    CAPTURE(dir);
    CHECK(Lookup(cache, dir, SeenAt(1)) == nullptr);
    CHECK(Lookup(cache, dir, SeenAt(2)) == nullptr);
  }
  CHECK(cache.entries() == 0);
}

TEST_CASE("a cache bounded by 0 keeps nothing") {
  FolderCache cache(0);
  CHECK(cache.max_entries() == 0);
  Fill(cache, "d", SeenAt(1), MakeEntries(1));
  Fill(cache, "e", SeenAt(1), MakeEntries(5));
  CHECK(cache.entries() == 0);
  CHECK(Lookup(cache, "d", SeenAt(1)) == nullptr);
  CHECK(Lookup(cache, "e", SeenAt(1)) == nullptr);
}

// An empty folder counts as one entry: otherwise a cache bounded by 0 would
// keep it, and any number of empty folders would be kept at once.
TEST_CASE("empty folders count against the bound") {
  FolderCache none(0);
  Fill(none, "empty", SeenAt(1), Entries{});
  CHECK(Lookup(none, "empty", SeenAt(1)) == nullptr);

  FolderCache cache(10);
  for (int i = 0; i < 1000; ++i) Fill(cache, "empty" + std::to_string(i), SeenAt(1), Entries{});
  int served = 0;
  for (int i = 0; i < 1000; ++i)
    if (Lookup(cache, "empty" + std::to_string(i), SeenAt(1)) != nullptr) ++served;
  CHECK(served <= 10);
}

TEST_CASE("concurrent gets, keeps and changes keep the accounting right") {
  FolderCache cache(50);
  constexpr int kThreads = 6;
  constexpr int kRounds = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&cache, t] {
      for (int r = 0; r < kRounds; ++r) {
        const std::string dir = "d" + std::to_string((r + t) % 8);
        if ((r + t) % 5 == 0) {
          cache.Changed("alice", dir);
          continue;
        }
        std::optional<FolderCache::Reading> reading;
        if (cache.Get("alice", dir, SeenAt(1), &reading) == nullptr)
          reading->Keep(SeenAt(1), MakeEntries(static_cast<size_t>(1 + (r % 12))));
      }
    });
  }
  for (auto& th : threads) th.join();
  // Whatever is held is within the bound and exactly what is served.
  const size_t held = cache.entries();
  CHECK(held <= 50);
  size_t served = 0;
  for (int i = 0; i < 8; ++i) {
    std::optional<FolderCache::Reading> reading;
    if (auto got = cache.Get("alice", "d" + std::to_string(i), SeenAt(1), &reading))
      served += got->size();
  }
  CHECK(served == held);
  for (int i = 0; i < 8; ++i) cache.Changed("alice", "d" + std::to_string(i));
  CHECK(cache.entries() == 0);
}

}  // namespace
}  // namespace dfs::server
