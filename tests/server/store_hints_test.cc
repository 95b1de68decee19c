// Unit tests of the hints of dfs_server/store.h (AddHint, ListHints,
// DropHint) and of Purge's drop_pieces, against a temp folder.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dfs_server/store.h"
#include "shared/format/hint.h"
#include "shared/protocol/messages.h"
#include "shared/util/names.h"
#include "tests/server/server_test_util.h"

namespace dfs::server {
namespace {

namespace fs = std::filesystem;
using testing::MakeHeader;
using testing::StagePiece;
using testing::StampAt;
using testing::TempDir;

constexpr char kUser[] = "alice";
constexpr char kTarget[] = "DFS2";

// The store never checks a hint's MAC; hints are signed anyway, as a client
// would, so that a listed hint can be verified.
const Key kRecordKey = [] {
  Key k{};
  k.fill(0x5a);
  return k;
}();

Hint HintAt(uint64_t t, const std::string& path = "docs/a.txt",
            const std::string& target = kTarget) {
  return MakeHint(kRecordKey, target, path, StampAt(t));
}

// The same hint, field by field.
void CheckSameHint(const Hint& got, const Hint& want) {
  CHECK(got.target == want.target);
  CHECK(got.path == want.path);
  CHECK(got.stamp == want.stamp);
  CHECK(got.mac == want.mac);
}

std::vector<std::string> IdsOf(const std::vector<Hint>& hints) {
  std::vector<std::string> out;
  for (const Hint& h : hints) out.push_back(HintId(h));
  return out;
}

void Plant(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

struct Fixture {
  TempDir tmp;
  std::unique_ptr<Store> store;
  Fixture() {
    Open();
    REQUIRE(store->EnsureUser(kUser).ok());
  }
  void Open() {
    auto s = Store::Open(tmp.str());
    REQUIRE(s.ok());
    store = std::move(s).value();
  }
  // Closes the store and opens the same root again, as a restart would.
  void Reopen() {
    store.reset();
    Open();
  }
  // ROOT/.hints/USER/TARGET
  fs::path HintDir(const std::string& user = kUser, const std::string& target = kTarget) const {
    return tmp.path() / ".hints" / user / target;
  }
  void Add(const Hint& h, const std::string& user = kUser) {
    REQUIRE(store->AddHint(user, h).ok());
  }
  // Every hint for `target`, in one page.
  std::vector<Hint> All(const std::string& target = kTarget, const std::string& user = kUser) {
    auto listed = store->ListHints(user, target, "", 1 << 20);
    REQUIRE(listed.ok());
    CHECK_FALSE(listed->more);
    return std::move(listed->hints);
  }
  // Stages and commits pieces `pieces` of content cid at stamp as "a".
  void Put(const Cid& cid, const Stamp& stamp, const std::vector<int>& pieces) {
    for (int k : pieces)
      REQUIRE(StagePiece(*store, kUser, "", "a", MakeHeader(cid, stamp, k)).ok());
    REQUIRE(store->Commit(kUser, "", "a", cid, stamp).ok());
  }
  // (piece, cid) of every piece file of "a".
  std::set<std::pair<int, Cid>> PiecesOfA() {
    auto st = store->Stat(kUser, "", "a");
    REQUIRE(st.ok());
    std::set<std::pair<int, Cid>> out;
    for (const PieceHeader& h : st->pieces) out.emplace(h.piece, h.cid);
    return out;
  }
};

Cid CidOf(uint8_t seed) {
  Cid c{};
  c.fill(seed);
  return c;
}

TEST_CASE("a hint added is listed with its fields unchanged") {
  Fixture f;
  CHECK(f.All().empty());  // no folder for the target yet: no hints, no error
  const Hint h = HintAt(10);
  f.Add(h);
  CHECK(fs::is_regular_file(f.HintDir() / HintId(h)));
  const std::vector<Hint> listed = f.All();
  REQUIRE(listed.size() == 1);
  CheckSameHint(listed[0], h);
  CHECK(VerifyHint(kRecordKey, listed[0]));
  CHECK(fs::is_empty(f.tmp.path() / ".staging" / kUser));  // no temporary file left
}

TEST_CASE("adding the same hint twice keeps one") {
  Fixture f;
  const Hint h = HintAt(10);
  f.Add(h);
  f.Add(h);
  const std::vector<Hint> listed = f.All();
  REQUIRE(listed.size() == 1);
  CheckSameHint(listed[0], h);
  CHECK(std::distance(fs::directory_iterator(f.HintDir()), fs::directory_iterator()) == 1);
}

TEST_CASE("hints for another target are not listed") {
  Fixture f;
  const Hint mine = HintAt(10);
  const Hint other = HintAt(11, "docs/a.txt", "DFS3");
  f.Add(mine);
  f.Add(other);
  const std::vector<Hint> dfs2 = f.All("DFS2");
  REQUIRE(dfs2.size() == 1);
  CheckSameHint(dfs2[0], mine);
  const std::vector<Hint> dfs3 = f.All("DFS3");
  REQUIRE(dfs3.size() == 1);
  CheckSameHint(dfs3[0], other);
  CHECK(f.All("DFS4").empty());
}

// Lists every hint for kTarget page by page with `max_bytes`; the sizes of
// the pages and their `more` flags go to *pages.
std::vector<std::string> ListPaged(Store& store, size_t max_bytes,
                                   std::vector<std::pair<size_t, bool>>* pages) {
  std::vector<std::string> seen;
  std::string after;
  for (int guard = 0; guard < 100; ++guard) {
    auto page = store.ListHints(kUser, kTarget, after, max_bytes);
    REQUIRE(page.ok());
    const std::vector<std::string> ids = IdsOf(page->hints);
    CHECK(std::is_sorted(ids.begin(), ids.end()));
    for (const std::string& id : ids) CHECK(id > after);
    pages->emplace_back(ids.size(), page->more);
    seen.insert(seen.end(), ids.begin(), ids.end());
    if (!page->more) return seen;
    REQUIRE_FALSE(ids.empty());  // "more" with nothing in the page would never end
    after = ids.back();
  }
  FAIL("paging did not end");
  return seen;
}

TEST_CASE("hints are listed in order of their id, a page at a time") {
  Fixture f;
  std::vector<std::string> ids;
  size_t size = 0;
  for (uint64_t t = 0; t < 5; ++t) {
    const Hint h = HintAt(100 + t, "p/f" + std::to_string(t));  // all of one size
    f.Add(h);
    ids.push_back(HintId(h));
    size = EncodeMessage(h).size();
  }
  std::sort(ids.begin(), ids.end());
  REQUIRE(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  CHECK(IdsOf(f.All()) == ids);

  SUBCASE("two hints fit in a page") {
    std::vector<std::pair<size_t, bool>> pages;
    // HintListReply: a bool, a count, then the hints.
    CHECK(ListPaged(*f.store, 1 + 4 + 2 * size, &pages) == ids);
    CHECK(pages == std::vector<std::pair<size_t, bool>>{{2, true}, {2, true}, {1, false}});
  }
  SUBCASE("at least one hint per page even when it is bigger than max_bytes") {
    for (size_t max_bytes : {size_t{0}, size_t{1}, size / 2}) {
      CAPTURE(max_bytes);
      std::vector<std::pair<size_t, bool>> pages;
      CHECK(ListPaged(*f.store, max_bytes, &pages) == ids);
      CHECK(pages == std::vector<std::pair<size_t, bool>>{
                         {1, true}, {1, true}, {1, true}, {1, true}, {1, false}});
    }
  }
  SUBCASE("after the last id there is nothing") {
    auto rest = f.store->ListHints(kUser, kTarget, ids.back(), 1 << 20);
    REQUIRE(rest.ok());
    CHECK(rest->hints.empty());
    CHECK_FALSE(rest->more);
    // `after` need not be an id that exists.
    auto from_mid = f.store->ListHints(kUser, kTarget, ids[2] + "0", 1 << 20);
    REQUIRE(from_mid.ok());
    CHECK(IdsOf(from_mid->hints) == std::vector<std::string>(ids.begin() + 3, ids.end()));
  }
}

TEST_CASE("a dropped hint is gone and dropping a missing one is OK") {
  Fixture f;
  const Hint a = HintAt(10, "a");
  const Hint b = HintAt(11, "b");
  f.Add(a);
  f.Add(b);
  REQUIRE(f.store->DropHint(kUser, a).ok());
  const std::vector<Hint> left = f.All();
  REQUIRE(left.size() == 1);
  CheckSameHint(left[0], b);
  CHECK_FALSE(fs::exists(f.HintDir() / HintId(a)));

  CHECK(f.store->DropHint(kUser, a).ok());                            // dropped already
  CHECK(f.store->DropHint(kUser, HintAt(12, "a", "DFS4")).ok());      // no folder for DFS4
  CHECK(f.store->DropHint("bob", HintAt(12, "a")).ok());              // no hints at all
  CHECK_FALSE(fs::exists(f.tmp.path() / ".hints" / kUser / "DFS4"));  // nothing created
  REQUIRE(f.store->DropHint(kUser, b).ok());
  CHECK(f.All().empty());
}

TEST_CASE("hints of the wrong form are refused as invalid arguments") {
  Fixture f;
  struct Case {
    const char* target;
    const char* path;
  };
  const Case cases[] = {
      {"../x", "a"},    {"", "a"},           {"a/b", "a"},      {".", "a"},
      {"..", "a"},      {"DFS\n2", "a"},     {kTarget, ""},     {kTarget, "/abs"},
      {kTarget, "/"},   {kTarget, "a/../b"}, {kTarget, "a//b"}, {kTarget, "a/b/"},
      {kTarget, "./a"}, {kTarget, "../a"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    CAPTURE(c.path);
    const Hint h = HintAt(10, c.path, c.target);
    CHECK(ValidateHint(h).code() == Code::kInvalidArgument);
    CHECK(f.store->AddHint(kUser, h).code() == Code::kInvalidArgument);
    CHECK(f.store->DropHint(kUser, h).code() == Code::kInvalidArgument);
  }
  for (const char* target : {"../x", "", "a/b", ".", ".."}) {
    CAPTURE(target);
    CHECK(f.store->ListHints(kUser, target, "", 1 << 20).status().code() == Code::kInvalidArgument);
  }
  // Nothing was written anywhere: not under .hints, not next to it.
  CHECK(fs::is_empty(f.tmp.path() / ".hints"));
  CHECK_FALSE(fs::exists(f.tmp.path() / "x"));
  CHECK(fs::is_empty(f.tmp.path() / ".staging" / kUser));
  // The same hints with a good form are taken.
  CHECK(f.store->AddHint(kUser, HintAt(10, "a/b")).ok());
  CHECK(f.store->AddHint(kUser, HintAt(10, "a")).ok());
  CHECK(f.All().size() == 2);
}

TEST_CASE("the largest hint is stored and listed, a longer one is refused") {
  Fixture f;
  const std::string target(kMaxNameBytes, 't');
  std::string path;
  while (path.size() + 1 + kMaxNameBytes <= kMaxPathBytes)
    path += (path.empty() ? "" : "/") + std::string(kMaxNameBytes, 'p');
  path += "/" + std::string(kMaxPathBytes - path.size() - 1, 'q');
  REQUIRE(path.size() == kMaxPathBytes);
  const Hint big = HintAt(10, path, target);
  f.Add(big);
  const std::vector<Hint> listed = f.All(target);
  REQUIRE(listed.size() == 1);
  CheckSameHint(listed[0], big);
  // One byte more in the path or the target: refused, nothing stored.
  CHECK_FALSE(f.store->AddHint(kUser, HintAt(11, path + "x", target)).ok());
  CHECK_FALSE(f.store->AddHint(kUser, HintAt(11, path, target + "x")).ok());
  CHECK(f.All(target).size() == 1);
}

TEST_CASE("corrupt hint files and hints not matching their name are skipped") {
  Fixture f;
  const Hint good = HintAt(10, "good");
  const Hint moved = HintAt(11, "moved");
  const Hint retargeted = HintAt(12, "elsewhere", "DFS3");
  f.Add(good);
  const fs::path dir = f.HintDir();
  const std::string garbage_id(64, 'a');
  Plant(dir / garbage_id, "not a hint at all");
  Plant(dir / std::string(64, 'b'), "");
  Plant(dir / std::string(64, 'c'), EncodeMessage(good) + "trailing");
  Plant(dir / std::string(64, 'd'), EncodeMessage(good).substr(0, 20));
  Plant(dir / std::string(64, 'e'), std::string(20000, 'x'));  // beyond any hint's size
  // A valid hint under a name that is not its MAC.
  Plant(dir / std::string(64, 'f'), EncodeMessage(moved));
  // A valid hint for DFS3 under its own name, but in DFS2's folder.
  Plant(dir / HintId(retargeted), EncodeMessage(retargeted));
  // A hint whose MAC was changed after it was named.
  Hint forged = HintAt(13, "forged");
  const std::string forged_id = HintId(forged);
  forged.mac[0] ^= 1;
  Plant(dir / forged_id, EncodeMessage(forged));
  // Names of another length, and a folder with the name of a hint.
  Plant(dir / "notes.txt", EncodeMessage(good));
  fs::create_directory(dir / std::string(64, '0'));

  const std::vector<Hint> listed = f.All();
  REQUIRE(listed.size() == 1);
  CheckSameHint(listed[0], good);
  // Paging over the skipped files still ends, with every good hint once.
  auto page = f.store->ListHints(kUser, kTarget, "", 0);
  REQUIRE(page.ok());
  CHECK(IdsOf(page->hints) == std::vector<std::string>{HintId(good)});
  CHECK_FALSE(page->more);
  // A corrupt file is removed once (no client could drop it), not logged
  // on every listing; the good hint stays and still drops.
  CHECK_FALSE(fs::exists(dir / garbage_id));
  CHECK_FALSE(fs::exists(dir / forged_id));
  CHECK(fs::exists(dir / "notes.txt"));  // not a hint's name: not the store's to judge
  REQUIRE(f.store->DropHint(kUser, good).ok());
  CHECK(f.All().empty());
}

TEST_CASE("hints survive a restart of the store, which empties staging") {
  Fixture f;
  const Hint a = HintAt(10, "a");
  const Hint b = HintAt(11, "b", "DFS3");
  f.Add(a);
  f.Add(b);
  const fs::path leftover = f.tmp.path() / ".staging" / kUser / "~leftover";
  Plant(leftover, "a crash left this");
  f.Reopen();
  CHECK_FALSE(fs::exists(leftover));  // staging was emptied, the hints are elsewhere
  const std::vector<Hint> dfs2 = f.All("DFS2");
  REQUIRE(dfs2.size() == 1);
  CheckSameHint(dfs2[0], a);
  const std::vector<Hint> dfs3 = f.All("DFS3");
  REQUIRE(dfs3.size() == 1);
  CheckSameHint(dfs3[0], b);
  // After a restart the hint folders are opened again, not created anew.
  const Hint c = HintAt(12, "c");
  f.Add(c);
  CHECK(f.All().size() == 2);
}

TEST_CASE("a user never sees another user's hints") {
  Fixture f;
  REQUIRE(f.store->EnsureUser("bob").ok());
  const Hint alices = HintAt(10, "a");
  f.Add(alices);
  CHECK(f.All(kTarget, "bob").empty());
  // bob cannot drop alice's hint, even knowing all of it.
  REQUIRE(f.store->DropHint("bob", alices).ok());
  REQUIRE(f.All().size() == 1);
  const Hint bobs = HintAt(11, "b");
  f.Add(bobs, "bob");
  std::vector<Hint> listed = f.All();
  REQUIRE(listed.size() == 1);
  CheckSameHint(listed[0], alices);
  listed = f.All(kTarget, "bob");
  REQUIRE(listed.size() == 1);
  CheckSameHint(listed[0], bobs);
  // The same hint stored by both users is two hints.
  f.Add(alices, "bob");
  CHECK(f.All(kTarget, "bob").size() == 2);
  REQUIRE(f.store->DropHint(kUser, alices).ok());
  CHECK(f.All().empty());
  CHECK(f.All(kTarget, "bob").size() == 2);
  // An invalid user is refused as always.
  CHECK(f.store->AddHint(".staging", alices).code() == Code::kInvalidArgument);
  CHECK(f.store->ListHints("..", kTarget, "", 1 << 20).status().code() == Code::kInvalidArgument);
}

TEST_CASE("purge with drop_pieces removes exactly those pieces of the kept content") {
  Fixture f;
  const Cid kept = CidOf(1), newer = CidOf(2);
  f.Put(newer, StampAt(30), {3});       // newer content on slot 3
  f.Put(kept, StampAt(20), {1, 2, 4});  // older, on the free slots
  REQUIRE(f.PiecesOfA() ==
          std::set<std::pair<int, Cid>>{{1, kept}, {2, kept}, {3, newer}, {4, kept}});

  // Without drop_pieces nothing of either content goes.
  REQUIRE(f.store->Purge(kUser, "", "a", kept, StampAt(20), false).ok());
  CHECK(f.PiecesOfA() ==
        std::set<std::pair<int, Cid>>{{1, kept}, {2, kept}, {3, newer}, {4, kept}});

  // 3 holds the newer content and 9 nothing: both stay as they are.
  REQUIRE(f.store->Purge(kUser, "", "a", kept, StampAt(20), false, {2, 3, 9}).ok());
  CHECK(f.PiecesOfA() == std::set<std::pair<int, Cid>>{{1, kept}, {3, newer}, {4, kept}});

  // Index 0 is the tombstone's, never a piece: nothing goes.
  REQUIRE(f.store->Purge(kUser, "", "a", kept, StampAt(20), false, {0}).ok());
  CHECK(f.PiecesOfA() == std::set<std::pair<int, Cid>>{{1, kept}, {3, newer}, {4, kept}});

  // Keeping the newer content: the older content goes as always, and the
  // listed piece of the newer one with it.
  REQUIRE(f.store->Purge(kUser, "", "a", newer, StampAt(30), false, {3}).ok());
  CHECK(f.store->Stat(kUser, "", "a").status().code() == Code::kNotFound);
}

TEST_CASE("a symbolic link planted in the hint folders is not followed") {
  Fixture f;
  TempDir outside;
  const fs::path hints = f.tmp.path() / ".hints";
  const Hint h = HintAt(10, "a");

  SUBCASE("the user's hint folder a link") {
    fs::create_directory_symlink(outside.path(), hints / kUser);
  }
  SUBCASE("the user's hint folder a link to a missing folder") {
    fs::create_directory_symlink(outside.path() / "missing", hints / kUser);
  }
  SUBCASE("the target's hint folder a link") {
    fs::create_directory(hints / kUser);
    fs::create_directory_symlink(outside.path(), hints / kUser / kTarget);
  }
  SUBCASE("the target's folder exists behind the link") {
    fs::create_directory(outside.path() / kTarget);
    fs::create_directory_symlink(outside.path(), hints / kUser);
  }
  const Status added = f.store->AddHint(kUser, h);
  CHECK(added.code() == Code::kPermission);
  auto listed = f.store->ListHints(kUser, kTarget, "", 1 << 20);
  CHECK(listed.status().code() == Code::kPermission);
  CHECK(f.store->DropHint(kUser, h).code() == Code::kPermission);

  // Nothing written outside, and the link is still a link.
  for (const auto& e : fs::recursive_directory_iterator(outside.path()))
    CHECK_MESSAGE(e.is_directory(), "written outside: " << e.path());
  CHECK_FALSE(fs::exists(outside.path() / "missing"));
  CHECK(fs::is_empty(f.tmp.path() / ".staging" / kUser));
}

TEST_CASE("a hint file that is a symbolic link is neither listed nor read") {
  Fixture f;
  TempDir outside;
  const Hint good = HintAt(10, "good");
  const Hint planted = HintAt(11, "planted");
  f.Add(good);
  // A valid hint outside, linked under its own name.
  Plant(outside.path() / "hint", EncodeMessage(planted));
  fs::create_symlink(outside.path() / "hint", f.HintDir() / HintId(planted));
  const std::vector<Hint> listed = f.All();
  REQUIRE(listed.size() == 1);
  CheckSameHint(listed[0], good);
  // Dropping it removes the link, not what it points to.
  REQUIRE(f.store->DropHint(kUser, planted).ok());
  CHECK_FALSE(fs::exists(fs::symlink_status(f.HintDir() / HintId(planted))));
  CHECK(fs::exists(outside.path() / "hint"));
}

}  // namespace
}  // namespace dfs::server
