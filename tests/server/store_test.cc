// Unit tests of dfs_server/store.h against a temp folder.
#include "dfs_server/store.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "shared/util/names.h"
#include "tests/server/server_test_util.h"

namespace dfs::server {
namespace {

namespace fs = std::filesystem;
using testing::MakeHeader;
using testing::SealedBytes;
using testing::StagePiece;
using testing::StampAt;
using testing::TempDir;

constexpr char kUser[] = "alice";

struct Fixture {
  TempDir tmp;
  std::unique_ptr<Store> store;
  Fixture() {
    auto s = Store::Open(tmp.str());
    REQUIRE(s.ok());
    store = std::move(s).value();
    REQUIRE(store->EnsureUser(kUser).ok());
  }
  fs::path UserPath(const std::string& rel = "") const {
    return rel.empty() ? tmp.path() / kUser : tmp.path() / kUser / rel;
  }
  fs::path StagingPath() const { return tmp.path() / ".staging" / kUser; }
  size_t StagingCount() const {
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(StagingPath()), fs::directory_iterator()));
  }
  // Stages and commits pieces `pieces` of content cid at stamp.
  std::vector<uint8_t> Put(const std::string& dir, const std::string& name, const Cid& cid,
                           const Stamp& stamp, std::vector<int> pieces) {
    for (int k : pieces)
      REQUIRE(StagePiece(*store, kUser, dir, name, MakeHeader(cid, stamp, k)).ok());
    auto committed = store->Commit(kUser, dir, name, cid, stamp);
    REQUIRE(committed.ok());
    return *committed;
  }
  std::string ReadPiece(const std::string& dir, const std::string& name, int piece, const Cid& cid,
                        uint64_t offset = 0, uint64_t length = UINT64_MAX) {
    auto reader = store->OpenPiece(kUser, dir, name, piece, cid, offset, length);
    REQUIRE(reader.ok());
    std::string out(reader->length(), '\0');
    REQUIRE(reader->ReadExact(reader->offset(), out.data(), out.size()).ok());
    return out;
  }
  StatReply MustStat(const std::string& dir, const std::string& name) {
    auto st = store->Stat(kUser, dir, name);
    REQUIRE(st.ok());
    return *st;
  }
};

Cid CidOf(uint8_t seed) {
  Cid c{};
  c.fill(seed);
  return c;
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

TEST_CASE("opening creates the root and empties the staging area") {
  TempDir tmp;
  const fs::path root = tmp.path() / "deep" / "root";
  fs::create_directories(root / ".staging" / "bob" / "sub");
  WriteFile(root / ".staging" / "bob" / "0011.1", "leftover");
  WriteFile(root / ".staging" / "junk", "x");
  auto store = Store::Open(root.string());
  REQUIRE(store.ok());
  CHECK(fs::is_directory(root / ".staging"));
  CHECK(fs::is_empty(root / ".staging"));
}

TEST_CASE("stages, commits and reads back pieces, clipping ranges") {
  Fixture f;
  const Cid cid = CidOf(1);
  CHECK(f.Put("", "a.txt", cid, StampAt(10), {1, 2}) == std::vector<uint8_t>{1, 2});
  CHECK(fs::is_regular_file(f.UserPath(".a.txt.1")));
  CHECK(fs::is_regular_file(f.UserPath(".a.txt.2")));
  CHECK(f.StagingCount() == 0);

  const PieceHeader h1 = MakeHeader(cid, StampAt(10), 1);
  const std::string sealed = SealedBytes(h1);
  CHECK(f.ReadPiece("", "a.txt", 1, cid) == sealed);
  CHECK(f.ReadPiece("", "a.txt", 1, cid, 5, 10) == sealed.substr(5, 10));
  CHECK(f.ReadPiece("", "a.txt", 1, cid, sealed.size() - 3, 100) ==
        sealed.substr(sealed.size() - 3));
  CHECK(f.ReadPiece("", "a.txt", 1, cid, sealed.size() + 50, 100).empty());

  auto reader = f.store->OpenPiece(kUser, "", "a.txt", 2, cid, 0, 1);
  REQUIRE(reader.ok());
  CHECK(reader->header().piece == 2);
  CHECK(reader->header().stamp == StampAt(10));
}

TEST_CASE("a repeated commit reports the pieces in place, a commit of nothing is not found") {
  Fixture f;
  const Cid cid = CidOf(1);
  f.Put("", "a", cid, StampAt(10), {3, 4});
  auto again = f.store->Commit(kUser, "", "a", cid, StampAt(10));
  REQUIRE(again.ok());
  CHECK(*again == std::vector<uint8_t>{3, 4});
  auto none = f.store->Commit(kUser, "", "b", CidOf(9), StampAt(10));
  CHECK(none.status().code() == Code::kNotFound);
  CHECK(none.status().message().find("nothing staged") != std::string::npos);
}

TEST_CASE("refuses a piece whose length does not match its header and leaves nothing staged") {
  Fixture f;
  const PieceHeader h = MakeHeader(CidOf(1), StampAt(10), 1);
  const std::string data = SealedBytes(h);
  {
    auto staged = f.store->BeginPut(kUser, "", "a", h);
    REQUIRE(staged.ok());
    REQUIRE(staged->Append(std::string_view(data).substr(0, data.size() - 1)).ok());
    Status s = staged->Finish();
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find("piece length mismatch") != std::string::npos);
  }
  {
    auto staged = f.store->BeginPut(kUser, "", "a", h);
    REQUIRE(staged.ok());
    REQUIRE(staged->Append(data).ok());
    CHECK(staged->Append("x").code() == Code::kInvalidArgument);
  }
  CHECK(f.StagingCount() == 0);
  CHECK(f.store->Commit(kUser, "", "a", h.cid, h.stamp).status().code() == Code::kNotFound);
}

TEST_CASE("refuses to stage a tombstone or into a missing folder") {
  Fixture f;
  PieceHeader t = MakeHeader(CidOf(1), StampAt(10), 1);
  t.kind = PieceKind::kTombstone;
  t.piece = 0;
  CHECK(f.store->BeginPut(kUser, "", "a", t).status().code() == Code::kInvalidArgument);
  auto missing = f.store->BeginPut(kUser, "no/such", "a", MakeHeader(CidOf(1), StampAt(1), 1));
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK(missing.status().message() == "no such directory 'no/such'");
}

TEST_CASE("a newer commit replaces older pieces and an older commit loses") {
  Fixture f;
  const Cid v1 = CidOf(1), v2 = CidOf(2), v0 = CidOf(3);
  f.Put("", "a", v1, StampAt(10), {1, 2});
  CHECK(f.Put("", "a", v2, StampAt(20), {1}) == std::vector<uint8_t>{1});
  // Piece 2 of the older content went; piece 1 holds the new content.
  CHECK_FALSE(fs::exists(f.UserPath(".a.2")));
  CHECK(f.ReadPiece("", "a", 1, v2) == SealedBytes(MakeHeader(v2, StampAt(20), 1)));

  // An older upload committed late changes nothing and leaves no staging.
  CHECK(f.Put("", "a", v0, StampAt(15), {1, 2}) == std::vector<uint8_t>{2});
  StatReply st = f.MustStat("", "a");
  REQUIRE(st.pieces.size() == 2);
  CHECK(st.pieces[0].cid == v2);
  CHECK(st.pieces[1].cid == v0);  // piece 2 was free: it is kept until purged
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("a commit older than a tombstone is dropped, a newer one removes the tombstone") {
  Fixture f;
  REQUIRE(f.store->Delete(kUser, "", "a", StampAt(50)).ok());
  CHECK(f.Put("", "a", CidOf(1), StampAt(40), {1}).empty());
  CHECK_FALSE(fs::exists(f.UserPath(".a.1")));
  CHECK(f.Put("", "a", CidOf(2), StampAt(60), {1}) == std::vector<uint8_t>{1});
  CHECK_FALSE(fs::exists(f.UserPath(".a.0")));
}

TEST_CASE("a commit onto a folder name is refused") {
  Fixture f;
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  CHECK(f.store->Commit(kUser, "", "d", CidOf(1), StampAt(1)).status().code() == Code::kIsDir);
}

TEST_CASE("get reports missing pieces, other content and bad piece numbers") {
  Fixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1});
  CHECK(f.store->OpenPiece(kUser, "", "a", 2, CidOf(1), 0, 1).status().code() == Code::kNotFound);
  auto stale = f.store->OpenPiece(kUser, "", "a", 1, CidOf(2), 0, 1);
  CHECK(stale.status().code() == Code::kStale);
  CHECK(stale.status().message() == "piece holds other content");
  CHECK(f.store->OpenPiece(kUser, "", "a", 0, CidOf(1), 0, 1).status().code() ==
        Code::kInvalidArgument);
  CHECK(f.store->OpenPiece(kUser, "", "a", 65, CidOf(1), 0, 1).status().code() ==
        Code::kInvalidArgument);
}

TEST_CASE("delete writes a tombstone and removes the pieces unless something is newer") {
  Fixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  REQUIRE(f.store->Delete(kUser, "", "a", StampAt(20)).ok());
  StatReply st = f.MustStat("", "a");
  REQUIRE(st.pieces.size() == 1);
  CHECK(st.pieces[0].tombstone());
  CHECK(st.pieces[0].stamp == StampAt(20));
  CHECK_FALSE(fs::exists(f.UserPath(".a.1")));

  // An older delete of a newer file changes nothing.
  f.Put("", "b", CidOf(2), StampAt(30), {1});
  REQUIRE(f.store->Delete(kUser, "", "b", StampAt(25)).ok());
  CHECK(fs::exists(f.UserPath(".b.1")));
  CHECK_FALSE(fs::exists(f.UserPath(".b.0")));

  // A name never seen here still gets its tombstone.
  REQUIRE(f.store->Delete(kUser, "", "ghost", StampAt(5)).ok());
  CHECK(f.MustStat("", "ghost").pieces.at(0).tombstone());

  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  CHECK(f.store->Delete(kUser, "", "d", StampAt(5)).code() == Code::kIsDir);
  CHECK(f.store->Delete(kUser, "nope", "a", StampAt(5)).code() == Code::kNotFound);
}

TEST_CASE("stat reports folders, pieces and tombstones, and not found for nothing") {
  Fixture f;
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  StatReply dir = f.MustStat("", "d");
  CHECK(dir.is_dir);
  CHECK(dir.pieces.empty());
  f.Put("d", "x", CidOf(1), StampAt(10), {2, 3});
  StatReply file = f.MustStat("d", "x");
  CHECK_FALSE(file.is_dir);
  REQUIRE(file.pieces.size() == 2);
  CHECK(file.pieces[0].piece == 2);
  CHECK(file.pieces[1].piece == 3);
  CHECK(f.store->Stat(kUser, "d", "y").status().code() == Code::kNotFound);
  CHECK(f.store->Stat(kUser, "e", "y").status().code() == Code::kNotFound);
}

TEST_CASE("lists folders and piece files, skipping corrupt headers and foreign files") {
  Fixture f;
  REQUIRE(f.store->Mkdir(kUser, "sub").ok());
  REQUIRE(f.store->Mkdir(kUser, ".hidden").ok());
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  REQUIRE(f.store->Delete(kUser, "", "gone", StampAt(10)).ok());
  WriteFile(f.UserPath(".broken.1"), std::string(200, 'z'));
  WriteFile(f.UserPath(".short.1"), "DFSp");
  WriteFile(f.UserPath("foreign"), "not a piece");

  std::vector<ListEntry> entries;
  REQUIRE(f.store
              ->List(kUser, "",
                     [&](ListEntry&& e) {
                       entries.push_back(std::move(e));
                       return Status::Ok();
                     })
              .ok());
  std::sort(entries.begin(), entries.end(), [](const ListEntry& a, const ListEntry& b) {
    return std::tie(a.name, a.header.piece) < std::tie(b.name, b.header.piece);
  });
  REQUIRE(entries.size() == 5);
  CHECK((entries[0].name == ".hidden" && entries[0].is_dir));
  CHECK((entries[1].name == "a" && entries[1].header.piece == 1));
  CHECK((entries[2].name == "a" && entries[2].header.piece == 2));
  CHECK((entries[3].name == "gone" && entries[3].header.tombstone()));
  CHECK((entries[4].name == "sub" && entries[4].is_dir));

  CHECK(f.store->List(kUser, "missing", [](ListEntry&&) { return Status::Ok(); }).code() ==
        Code::kNotFound);
  // A sink error stops the listing and comes back.
  CHECK(f.store->List(kUser, "", [](ListEntry&&) { return Status::IoError("stop"); }).code() ==
        Code::kIoError);
}

TEST_CASE("mkdir and rmdir answer like their POSIX counterparts") {
  Fixture f;
  CHECK(f.store->Mkdir(kUser, "a").ok());
  CHECK(f.store->Mkdir(kUser, "a").code() == Code::kExists);
  CHECK(f.store->Mkdir(kUser, "x/y").code() == Code::kNotFound);
  CHECK(f.store->Mkdir(kUser, "a/b").ok());
  CHECK(f.store->Mkdir(kUser, ".f.1").code() == Code::kInvalidArgument);  // reserved
  CHECK(f.store->Mkdir(kUser, "").code() == Code::kExists);

  CHECK(f.store->Rmdir(kUser, "").code() == Code::kInvalidArgument);
  CHECK(f.store->Rmdir(kUser, "nope").code() == Code::kNotFound);
  CHECK(f.store->Rmdir(kUser, "a").code() == Code::kNotEmpty);
  f.Put("", "file", CidOf(1), StampAt(1), {1});
  CHECK(f.store->Rmdir(kUser, "file").code() == Code::kNotDir);

  // Pieces and tombstones inside do not keep a folder alive; other files do.
  f.Put("a/b", "p", CidOf(2), StampAt(1), {1});
  REQUIRE(f.store->Delete(kUser, "a/b", "q", StampAt(1)).ok());
  CHECK(f.store->Rmdir(kUser, "a/b").ok());
  CHECK_FALSE(fs::exists(f.UserPath("a/b")));
  WriteFile(f.UserPath("a/foreign"), "x");
  CHECK(f.store->Rmdir(kUser, "a").code() == Code::kNotEmpty);
}

TEST_CASE("rename moves the content with the new stamp and leaves a tombstone") {
  Fixture f;
  const Cid a = CidOf(1), b = CidOf(2);
  f.Put("", "from", a, StampAt(10), {1, 2});
  f.Put("", "to", b, StampAt(5), {1, 3});
  REQUIRE(f.store->Mkdir(kUser, "d").ok());

  REQUIRE(f.store->Rename(kUser, "", "from", "", "to", a, StampAt(20)).ok());
  StatReply to = f.MustStat("", "to");
  REQUIRE(to.pieces.size() == 2);
  for (const auto& h : to.pieces) {
    CHECK(h.cid == a);
    CHECK(h.stamp == StampAt(20));
  }
  CHECK(f.ReadPiece("", "to", 2, a) == SealedBytes(MakeHeader(a, StampAt(10), 2)));
  StatReply from = f.MustStat("", "from");
  REQUIRE(from.pieces.size() == 1);
  CHECK(from.pieces[0].tombstone());
  CHECK(from.pieces[0].stamp == StampAt(20));

  // Across folders; a server holding nothing still writes the tombstone.
  REQUIRE(f.store->Rename(kUser, "", "to", "d", "moved", a, StampAt(30)).ok());
  CHECK(f.MustStat("d", "moved").pieces.size() == 2);
  REQUIRE(f.store->Rename(kUser, "", "nothing", "d", "x", a, StampAt(30)).ok());
  CHECK(f.MustStat("", "nothing").pieces.at(0).tombstone());

  CHECK(f.store->Rename(kUser, "", "x", "", "d", a, StampAt(40)).code() == Code::kIsDir);
  CHECK(f.store->Rename(kUser, "", "d", "", "y", a, StampAt(40)).code() == Code::kIsDir);
  CHECK(f.store->Rename(kUser, "nope", "x", "", "y", a, StampAt(40)).code() == Code::kNotFound);
  CHECK(f.store->Rename(kUser, "d", "moved", "d", "moved", a, StampAt(50)).ok());
  CHECK(f.MustStat("d", "moved").pieces.size() == 2);
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("rename does not overwrite a newer target") {
  Fixture f;
  f.Put("", "from", CidOf(1), StampAt(10), {1});
  f.Put("", "to", CidOf(2), StampAt(30), {1});
  REQUIRE(f.store->Rename(kUser, "", "from", "", "to", CidOf(1), StampAt(20)).ok());
  CHECK(f.MustStat("", "to").pieces.at(0).cid == CidOf(2));
  CHECK(f.MustStat("", "from").pieces.at(0).tombstone());
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("rename_dir moves a folder and refuses the root and piece files") {
  Fixture f;
  REQUIRE(f.store->Mkdir(kUser, "a").ok());
  f.Put("a", "x", CidOf(1), StampAt(1), {1});
  REQUIRE(f.store->RenameDir(kUser, "a", "b").ok());
  CHECK(f.MustStat("b", "x").pieces.size() == 1);
  CHECK(f.store->RenameDir(kUser, "", "c").code() == Code::kInvalidArgument);
  CHECK(f.store->RenameDir(kUser, "b", "").code() == Code::kInvalidArgument);
  CHECK(f.store->RenameDir(kUser, "missing", "c").code() == Code::kNotFound);
  CHECK(f.store->RenameDir(kUser, "b/.x.1", "c").code() == Code::kNotDir);
  REQUIRE(f.store->Mkdir(kUser, "c").ok());
  REQUIRE(f.store->Mkdir(kUser, "c/inner").ok());
  CHECK(f.store->RenameDir(kUser, "b", "c").code() == Code::kNotEmpty);
  CHECK(f.store->RenameDir(kUser, "b", "b/sub").code() == Code::kInvalidArgument);
}

TEST_CASE("setattr updates mode, mtime and stamp of the matching content only") {
  Fixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  SetAttrRequest req;
  req.name = "a";
  req.cid = CidOf(1);
  req.stamp = StampAt(20);
  req.set_mode = true;
  req.mode = 0100755;
  REQUIRE(f.store->SetAttr(kUser, req).ok());
  for (const auto& h : f.MustStat("", "a").pieces) {
    CHECK(h.mode == 0755);
    CHECK(h.mtime_ns == 123);
    CHECK(h.stamp == StampAt(20));
  }
  req.set_mode = false;
  req.set_mtime = true;
  req.mtime_ns = -5;
  req.stamp = StampAt(15);  // older than the pieces now: ignored
  REQUIRE(f.store->SetAttr(kUser, req).ok());
  CHECK(f.MustStat("", "a").pieces.at(0).mtime_ns == 123);
  req.stamp = StampAt(30);
  REQUIRE(f.store->SetAttr(kUser, req).ok());
  CHECK(f.MustStat("", "a").pieces.at(0).mtime_ns == -5);
  // The data is untouched.
  CHECK(f.ReadPiece("", "a", 1, CidOf(1)) == SealedBytes(MakeHeader(CidOf(1), StampAt(10), 1)));
  req.name = "missing";
  CHECK(f.store->SetAttr(kUser, req).code() == Code::kNotFound);
}

TEST_CASE("purge removes older pieces of other content and, if asked, the tombstone") {
  Fixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1});
  f.Put("", "a", CidOf(2), StampAt(5), {2});  // older content on a free slot
  REQUIRE(f.store->Delete(kUser, "", "b", StampAt(8)).ok());
  REQUIRE(f.store->Purge(kUser, "", "a", CidOf(1), StampAt(10), false).ok());
  StatReply st = f.MustStat("", "a");
  REQUIRE(st.pieces.size() == 1);
  CHECK(st.pieces[0].cid == CidOf(1));
  REQUIRE(f.store->Purge(kUser, "", "b", CidOf(1), StampAt(7), true).ok());
  CHECK(f.store->Stat(kUser, "", "b").ok());  // the tombstone is newer than `keep`
  REQUIRE(f.store->Purge(kUser, "", "b", CidOf(1), StampAt(8), true).ok());
  CHECK(f.store->Stat(kUser, "", "b").status().code() == Code::kNotFound);
}

TEST_CASE("abort and abandoned uploads leave nothing staged") {
  Fixture f;
  const Cid cid = CidOf(4);
  REQUIRE(StagePiece(*f.store, kUser, "", "a", MakeHeader(cid, StampAt(1), 1)).ok());
  REQUIRE(StagePiece(*f.store, kUser, "", "a", MakeHeader(cid, StampAt(1), 2)).ok());
  REQUIRE(StagePiece(*f.store, kUser, "", "a", MakeHeader(CidOf(5), StampAt(1), 2)).ok());
  CHECK(f.StagingCount() == 3);
  REQUIRE(f.store->Abort(kUser, cid).ok());
  CHECK(f.StagingCount() == 1);
  CHECK(f.store->Commit(kUser, "", "a", cid, StampAt(1)).status().code() == Code::kNotFound);
  {
    auto staged = f.store->BeginPut(kUser, "", "b", MakeHeader(cid, StampAt(1), 1));
    REQUIRE(staged.ok());
    REQUIRE(staged->Append("abc").ok());
    CHECK(f.StagingCount() == 2);
  }
  CHECK(f.StagingCount() == 1);
}

TEST_CASE("validates users, folders and names before touching the disk") {
  Fixture f;
  const PieceHeader h = MakeHeader(CidOf(1), StampAt(1), 1);
  CHECK(f.store->Stat(kUser, "", "..").status().code() == Code::kInvalidArgument);
  CHECK(f.store->Stat(kUser, "", "a/b").status().code() == Code::kInvalidArgument);
  CHECK(f.store->Stat(kUser, "../bob", "a").status().code() == Code::kInvalidArgument);
  CHECK(f.store->Stat(kUser, "", std::string(252, 'n')).status().code() == Code::kNameTooLong);
  CHECK(f.store->BeginPut(kUser, "", "", h).status().code() == Code::kInvalidArgument);
  CHECK(f.store->Mkdir(kUser, "a/../b").code() == Code::kInvalidArgument);
  CHECK(f.store->EnsureUser(".staging").code() == Code::kInvalidArgument);
  CHECK(f.store->Stat("..", "", "a").status().code() == Code::kInvalidArgument);
  // Repeated and trailing slashes are fine.
  REQUIRE(f.store->Mkdir(kUser, "p").ok());
  CHECK(f.store->Mkdir(kUser, "/p//q/").ok());
  CHECK(fs::is_directory(f.UserPath("p/q")));
}

TEST_CASE("statfs reports the sizes of the file system") {
  Fixture f;
  auto st = f.store->StatFs();
  REQUIRE(st.ok());
  CHECK(st->total_bytes > 0);
  CHECK(st->free_bytes <= st->total_bytes);
  CHECK(st->avail_bytes <= st->free_bytes);
}

TEST_CASE("concurrent commits of one name leave exactly the newest version") {
  Fixture f;
  constexpr int kWriters = 8;
  constexpr int kRounds = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int r = 0; r < kRounds; ++r) {
        const uint64_t t = static_cast<uint64_t>(r * kWriters + w + 1);
        Cid cid = CidOf(static_cast<uint8_t>(t));
        for (int k = 1; k <= 2; ++k)
          if (!StagePiece(*f.store, kUser, "", "hot", MakeHeader(cid, StampAt(t), k)).ok())
            ++failures;
        if (!f.store->Commit(kUser, "", "hot", cid, StampAt(t)).ok()) ++failures;
        if (r % 3 == 1 && !f.store->Delete(kUser, "", "hot", StampAt(t)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  // The newest stamp is kRounds * kWriters, from a round without a delete.
  StatReply st = f.MustStat("", "hot");
  REQUIRE(st.pieces.size() == 2);
  for (const auto& h : st.pieces) CHECK(h.stamp == StampAt(kRounds * kWriters));
  CHECK(f.StagingCount() == 0);
}

}  // namespace
}  // namespace dfs::server
