// Unit tests of dfs_server/store.h against a temp folder.
#include "dfs_server/store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>
#include <vector>

#include "shared/format/xattrs.h"
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

// The store never checks MACs; headers are signed anyway, as a client would,
// so that byte-exact copies are visible.
const Key kRecordKey = [] {
  Key k{};
  k.fill(0x5a);
  return k;
}();

// A tombstone for dir/name, signed.
PieceHeader TombstoneAt(const Stamp& stamp, const std::string& dir = "",
                        const std::string& name = "") {
  PieceHeader t;
  t.kind = PieceKind::kTombstone;
  t.piece = 0;
  t.stamp = stamp;
  t.mode = 0;
  t.mtime_ns = static_cast<int64_t>(stamp.time_ns);
  t.Sign(kRecordKey, JoinName(dir, name));
  return t;
}

// New headers of pieces `pieces` of content cid for dir/name: new stamp,
// mode and owner, signed for the new path.
std::vector<PieceHeader> NewHeaders(const Cid& cid, const Stamp& stamp, std::vector<int> pieces,
                                    const std::string& dir, const std::string& name,
                                    uint32_t mode = 0600) {
  std::vector<PieceHeader> out;
  for (int k : pieces) {
    PieceHeader h = MakeHeader(cid, stamp, k);
    h.mode = mode;
    h.uid = 1000;
    h.gid = 100;
    h.Sign(kRecordKey, JoinName(dir, name));
    out.push_back(h);
  }
  return out;
}

// The first kPieceHeaderBytes of a file, as stored.
std::string RawHeader(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string raw(kPieceHeaderBytes, '\0');
  in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  raw.resize(static_cast<size_t>(in.gcount()));
  return raw;
}

// Sets the mtime of `path` to `age` ago.
void Age(const fs::path& path, std::chrono::seconds age) {
  struct timespec times[2];
  REQUIRE(::clock_gettime(CLOCK_REALTIME, &times[0]) == 0);
  times[0].tv_sec -= static_cast<time_t>(age.count());
  times[1] = times[0];
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

struct Fixture {
  TempDir tmp;
  std::unique_ptr<Store> store;
  explicit Fixture(StoreOptions options = {}) {
    auto s = Store::Open(tmp.str(), std::move(options));
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
  Status Delete(const std::string& dir, const std::string& name, const Stamp& stamp) {
    return store->Delete(kUser, dir, name, TombstoneAt(stamp, dir, name));
  }
  // Renames the pieces `pieces` of cid with headers signed for the new path.
  Status Rename(const std::string& from_dir, const std::string& from_name,
                const std::string& to_dir, const std::string& to_name, const Cid& cid,
                const Stamp& stamp, std::vector<int> pieces = {1, 2, 3, 4}) {
    return store->Rename(kUser, from_dir, from_name, to_dir, to_name, cid,
                         NewHeaders(cid, stamp, std::move(pieces), to_dir, to_name),
                         TombstoneAt(stamp, from_dir, from_name));
  }
  // Closes the store and opens the same root again, as a restart would.
  void Reopen(StoreOptions options = {}) {
    store.reset();
    auto s = Store::Open(tmp.str(), std::move(options));
    REQUIRE(s.ok());
    store = std::move(s).value();
  }
  // Stages and commits pieces `pieces` of a file spread over `servers`
  // servers (WideHeader).
  std::vector<uint8_t> PutWide(const std::string& dir, const std::string& name, const Cid& cid,
                               const Stamp& stamp, std::vector<int> pieces, int servers = 8);
  // Every file in the user's staging folder.
  std::vector<std::string> StagedFiles() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(StagingPath()))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
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

// Header of piece `piece` of a file spread over `servers` servers (the
// default scheme has 4): a header that Decode() accepts for pieces up to
// `servers`.
PieceHeader WideHeader(const Cid& cid, const Stamp& stamp, int piece, int servers = 8) {
  PieceHeader h = MakeHeader(cid, stamp, piece);
  h.servers = static_cast<uint8_t>(servers);
  h.piece_size = PieceSize(h.file_size, servers, piece);
  return h;
}

std::vector<uint8_t> Fixture::PutWide(const std::string& dir, const std::string& name,
                                      const Cid& cid, const Stamp& stamp, std::vector<int> pieces,
                                      int servers) {
  for (int k : pieces)
    REQUIRE(StagePiece(*store, kUser, dir, name, WideHeader(cid, stamp, k, servers)).ok());
  auto committed = store->Commit(kUser, dir, name, cid, stamp);
  REQUIRE(committed.ok());
  return *committed;
}

// The whole content of a file ("" if it cannot be read).
std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string out;
  char buf[256];
  while (in.read(buf, sizeof buf) || in.gcount() > 0)
    out.append(buf, static_cast<size_t>(in.gcount()));
  return out;
}

// What ROOT/.max_piece says for `bound`.
std::string BoundFileText(int bound) { return "dfs-max-piece " + std::to_string(bound) + "\n"; }

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
  f.Put("", "a", CidOf(3), StampAt(30), {1});
  REQUIRE(f.Delete("", "a", StampAt(50)).ok());
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
  const PieceHeader tombstone = TombstoneAt(StampAt(20), "", "a");
  REQUIRE(f.store->Delete(kUser, "", "a", tombstone).ok());
  StatReply st = f.MustStat("", "a");
  REQUIRE(st.pieces.size() == 1);
  CHECK(st.pieces[0].tombstone());
  CHECK(st.pieces[0].stamp == StampAt(20));
  CHECK(RawHeader(f.UserPath(".a.0")) == tombstone.Encode());  // byte for byte, MAC included
  CHECK(st.pieces[0].Verify(kRecordKey, "a"));
  CHECK_FALSE(fs::exists(f.UserPath(".a.1")));
  CHECK(f.StagingCount() == 0);

  // An older delete of a newer file changes nothing.
  f.Put("", "b", CidOf(2), StampAt(30), {1});
  REQUIRE(f.Delete("", "b", StampAt(25)).ok());
  CHECK(fs::exists(f.UserPath(".b.1")));
  CHECK_FALSE(fs::exists(f.UserPath(".b.0")));

  // A newer delete of a name holding only a tombstone replaces it.
  REQUIRE(f.Delete("", "a", StampAt(40)).ok());
  CHECK(f.MustStat("", "a").pieces.at(0).stamp == StampAt(40));

  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  CHECK(f.Delete("", "d", StampAt(5)).code() == Code::kIsDir);
  CHECK(f.Delete("nope", "a", StampAt(5)).code() == Code::kNotFound);
  // Only a tombstone header is a tombstone.
  CHECK(f.store->Delete(kUser, "", "b", MakeHeader(CidOf(2), StampAt(50), 1)).code() ==
        Code::kInvalidArgument);
  CHECK(fs::exists(f.UserPath(".b.1")));
}

TEST_CASE("delete of a name never seen here writes no tombstone") {
  Fixture f;
  REQUIRE(f.Delete("", "ghost", StampAt(5)).ok());
  CHECK(f.store->Stat(kUser, "", "ghost").status().code() == Code::kNotFound);
  CHECK_FALSE(fs::exists(f.UserPath(".ghost.0")));
  CHECK(f.StagingCount() == 0);
  // Nor does a rename from it.
  REQUIRE(f.Rename("", "ghost", "", "other", CidOf(1), StampAt(6)).ok());
  CHECK(f.store->Stat(kUser, "", "ghost").status().code() == Code::kNotFound);
  CHECK(f.store->Stat(kUser, "", "other").status().code() == Code::kNotFound);
  CHECK(fs::is_empty(f.UserPath()));
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
  f.Put("", "gone", CidOf(2), StampAt(5), {1});
  REQUIRE(f.Delete("", "gone", StampAt(10)).ok());
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
  f.Put("a/b", "q", CidOf(3), StampAt(1), {1});
  REQUIRE(f.Delete("a/b", "q", StampAt(2)).ok());
  CHECK(fs::exists(f.UserPath("a/b/.q.0")));
  CHECK(f.store->Rmdir(kUser, "a/b").ok());
  CHECK_FALSE(fs::exists(f.UserPath("a/b")));
  WriteFile(f.UserPath("a/foreign"), "x");
  CHECK(f.store->Rmdir(kUser, "a").code() == Code::kNotEmpty);
}

TEST_CASE("rename moves the content with the new headers and leaves a tombstone") {
  Fixture f;
  const Cid a = CidOf(1), b = CidOf(2);
  f.Put("", "from", a, StampAt(10), {1, 2});
  f.Put("", "to", b, StampAt(5), {1, 3});
  REQUIRE(f.store->Mkdir(kUser, "d").ok());

  REQUIRE(f.Rename("", "from", "", "to", a, StampAt(20)).ok());
  StatReply to = f.MustStat("", "to");
  REQUIRE(to.pieces.size() == 2);
  for (const auto& h : to.pieces) {
    CHECK(h.cid == a);
    CHECK(h.stamp == StampAt(20));
    CHECK(h.Verify(kRecordKey, "to"));
  }
  CHECK(f.ReadPiece("", "to", 2, a) == SealedBytes(MakeHeader(a, StampAt(10), 2)));
  StatReply from = f.MustStat("", "from");
  REQUIRE(from.pieces.size() == 1);
  CHECK(from.pieces[0].tombstone());
  CHECK(from.pieces[0].stamp == StampAt(20));
  CHECK(from.pieces[0].Verify(kRecordKey, "from"));

  // Across folders.
  REQUIRE(f.Rename("", "to", "d", "moved", a, StampAt(30)).ok());
  CHECK(f.MustStat("d", "moved").pieces.size() == 2);

  CHECK(f.Rename("", "x", "", "d", a, StampAt(40)).code() == Code::kIsDir);
  CHECK(f.Rename("", "d", "", "y", a, StampAt(40)).code() == Code::kIsDir);
  CHECK(f.Rename("nope", "x", "", "y", a, StampAt(40)).code() == Code::kNotFound);
  CHECK(f.Rename("d", "moved", "d", "moved", a, StampAt(50)).ok());
  CHECK(f.MustStat("d", "moved").pieces.size() == 2);
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("rename writes exactly the given headers") {
  Fixture f;
  const Cid a = CidOf(1);
  f.Put("", "from", a, StampAt(10), {1, 2, 3});
  // Piece 3 gets no new header: it is not moved and, being older, is dropped.
  const std::vector<PieceHeader> headers = NewHeaders(a, StampAt(20), {1, 2}, "d2", "to", 0640);
  const PieceHeader tombstone = TombstoneAt(StampAt(20), "", "from");
  REQUIRE(f.store->Mkdir(kUser, "d2").ok());
  REQUIRE(f.store->Rename(kUser, "", "from", "d2", "to", a, headers, tombstone).ok());
  CHECK(RawHeader(f.UserPath("d2/.to.1")) == headers[0].Encode());
  CHECK(RawHeader(f.UserPath("d2/.to.2")) == headers[1].Encode());
  CHECK_FALSE(fs::exists(f.UserPath("d2/.to.3")));
  CHECK_FALSE(fs::exists(f.UserPath(".from.3")));
  CHECK(RawHeader(f.UserPath(".from.0")) == tombstone.Encode());
  CHECK(f.ReadPiece("d2", "to", 1, a) == SealedBytes(MakeHeader(a, StampAt(10), 1)));
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("rename rejects a header for other data and changes nothing") {
  Fixture f;
  const Cid a = CidOf(1);
  f.Put("", "from", a, StampAt(10), {1, 2});
  const std::string before1 = RawHeader(f.UserPath(".from.1"));
  const std::string before2 = RawHeader(f.UserPath(".from.2"));
  const PieceHeader tombstone = TombstoneAt(StampAt(20), "", "from");

  // Piece 2's new header describes a larger file: another sealed size.
  std::vector<PieceHeader> headers = NewHeaders(a, StampAt(20), {1}, "", "to");
  PieceHeader bigger = MakeHeader(a, StampAt(20), 2, 5000);
  bigger.Sign(kRecordKey, "to");
  headers.push_back(bigger);
  Status s = f.store->Rename(kUser, "", "from", "", "to", a, headers, tombstone);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("does not match the stored piece") != std::string::npos);

  // Another chunk size, another stamp, another cid, a tombstone that is not
  // one, a piece index given twice: all refused.
  std::vector<PieceHeader> chunks = NewHeaders(a, StampAt(20), {1}, "", "to");
  chunks[0].chunk_bytes = 128;
  std::vector<PieceHeader> stamps = NewHeaders(a, StampAt(21), {1}, "", "to");
  std::vector<PieceHeader> cids = NewHeaders(CidOf(2), StampAt(20), {1}, "", "to");
  std::vector<PieceHeader> twice = NewHeaders(a, StampAt(20), {1, 1}, "", "to");
  for (const auto* bad : {&chunks, &stamps, &cids, &twice})
    CHECK(f.store->Rename(kUser, "", "from", "", "to", a, *bad, tombstone).code() ==
          Code::kInvalidArgument);
  CHECK(f.store
            ->Rename(kUser, "", "from", "", "to", a, NewHeaders(a, StampAt(20), {1}, "", "to"),
                     MakeHeader(a, StampAt(20), 1))
            .code() == Code::kInvalidArgument);

  CHECK(RawHeader(f.UserPath(".from.1")) == before1);
  CHECK(RawHeader(f.UserPath(".from.2")) == before2);
  CHECK_FALSE(fs::exists(f.UserPath(".from.0")));
  CHECK(f.store->Stat(kUser, "", "to").status().code() == Code::kNotFound);
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("rename does not overwrite a newer target") {
  Fixture f;
  f.Put("", "from", CidOf(1), StampAt(10), {1});
  f.Put("", "to", CidOf(2), StampAt(30), {1});
  REQUIRE(f.Rename("", "from", "", "to", CidOf(1), StampAt(20)).ok());
  CHECK(f.MustStat("", "to").pieces.at(0).cid == CidOf(2));
  CHECK(f.MustStat("", "from").pieces.at(0).tombstone());
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("setattr replaces the headers of the matching content byte for byte") {
  Fixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  f.Put("", "a", CidOf(2), StampAt(5), {3});  // older other content: left alone
  const std::string other = RawHeader(f.UserPath(".a.3"));
  SetAttrRequest req;
  req.name = "a";
  req.cid = CidOf(1);
  req.headers = NewHeaders(CidOf(1), StampAt(20), {1, 2, 3}, "", "a", 0755);
  REQUIRE(f.store->SetAttr(kUser, req).ok());
  CHECK(RawHeader(f.UserPath(".a.1")) == req.headers[0].Encode());
  CHECK(RawHeader(f.UserPath(".a.2")) == req.headers[1].Encode());
  CHECK(RawHeader(f.UserPath(".a.3")) == other);
  const StatReply st = f.MustStat("", "a");
  for (size_t i = 0; i < 2; ++i) {
    const PieceHeader& h = st.pieces.at(i);
    CHECK(h.mode == 0755);
    CHECK(h.uid == 1000);
    CHECK(h.stamp == StampAt(20));
  }

  // Older than the pieces now: ignored.
  SetAttrRequest older = req;
  older.headers = NewHeaders(CidOf(1), StampAt(15), {1, 2}, "", "a", 0700);
  REQUIRE(f.store->SetAttr(kUser, older).ok());
  CHECK(RawHeader(f.UserPath(".a.1")) == req.headers[0].Encode());

  // A header for other data, mixed stamps or no headers: refused, nothing changes.
  SetAttrRequest bad = req;
  bad.headers = NewHeaders(CidOf(1), StampAt(30), {1, 2}, "", "a");
  bad.headers[1] = MakeHeader(CidOf(1), StampAt(30), 2, 3000);
  CHECK(f.store->SetAttr(kUser, bad).code() == Code::kInvalidArgument);
  bad.headers[1] = NewHeaders(CidOf(1), StampAt(31), {2}, "", "a")[0];
  CHECK(f.store->SetAttr(kUser, bad).code() == Code::kInvalidArgument);
  bad.headers.clear();
  CHECK(f.store->SetAttr(kUser, bad).code() == Code::kInvalidArgument);
  CHECK(RawHeader(f.UserPath(".a.1")) == req.headers[0].Encode());
  CHECK(RawHeader(f.UserPath(".a.2")) == req.headers[1].Encode());

  // The data is untouched.
  CHECK(f.ReadPiece("", "a", 1, CidOf(1)) == SealedBytes(MakeHeader(CidOf(1), StampAt(10), 1)));
  req.name = "missing";
  CHECK(f.store->SetAttr(kUser, req).code() == Code::kNotFound);
}

TEST_CASE("purge removes older pieces of other content and, if asked, the tombstone") {
  Fixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1});
  f.Put("", "a", CidOf(2), StampAt(5), {2});  // older content on a free slot
  f.Put("", "b", CidOf(3), StampAt(1), {1});
  REQUIRE(f.Delete("", "b", StampAt(8)).ok());
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
        if (r % 3 == 1 && !f.Delete("", "hot", StampAt(t)).ok()) ++failures;
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

TEST_CASE("sweeping staging removes abandoned uploads and keeps fresh ones") {
  using namespace std::chrono_literals;
  Fixture f;
  REQUIRE(StagePiece(*f.store, kUser, "", "old", MakeHeader(CidOf(1), StampAt(1), 1)).ok());
  REQUIRE(StagePiece(*f.store, kUser, "", "new", MakeHeader(CidOf(2), StampAt(1), 1)).ok());
  Age(f.StagingPath() / (ToHex(CidOf(1)) + ".1"), 2h);
  // An upload whose client went silent long ago, and one still writing.
  auto stuck = f.store->BeginPut(kUser, "", "stuck", MakeHeader(CidOf(3), StampAt(1), 1));
  REQUIRE(stuck.ok());
  REQUIRE(stuck->Append("abc").ok());
  auto live = f.store->BeginPut(kUser, "", "live", MakeHeader(CidOf(4), StampAt(1), 1));
  REQUIRE(live.ok());
  for (const std::string& file : f.StagedFiles())
    if (file.rfind(ToHex(CidOf(3)), 0) == 0) Age(f.StagingPath() / file, 3h);
  REQUIRE(f.StagingCount() == 4);

  auto swept = f.store->SweepStaging(1h);
  REQUIRE(swept.ok());
  CHECK(*swept == 2);
  const std::vector<std::string> left = f.StagedFiles();
  REQUIRE(left.size() == 2);
  CHECK(left[0] == ToHex(CidOf(2)) + ".1");
  CHECK(left[1].rfind(ToHex(CidOf(4)) + ".1.part-", 0) == 0);

  // The swept upload fails cleanly at the end; the swept piece is gone.
  REQUIRE(stuck->Append(SealedBytes(stuck->header()).substr(3)).ok());
  Status finished = stuck->Finish();
  CHECK(finished.code() == Code::kNotFound);
  stuck->Discard();
  CHECK(f.store->Commit(kUser, "", "old", CidOf(1), StampAt(1)).status().code() == Code::kNotFound);
  // The fresh ones carry on.
  CHECK(f.store->Commit(kUser, "", "new", CidOf(2), StampAt(1)).ok());
  REQUIRE(live->Append(SealedBytes(live->header())).ok());
  CHECK(live->Finish().ok());
  CHECK(f.store->Commit(kUser, "", "live", CidOf(4), StampAt(1)).ok());
  CHECK(f.StagingCount() == 0);
  auto again = f.store->SweepStaging(0s);
  REQUIRE(again.ok());
  CHECK(*again == 0);
}

TEST_CASE("a put is refused with no space when the file system cannot keep the reserve") {
  StoreOptions options;
  options.reserve_bytes = UINT64_MAX / 2;  // more than any disk has free
  Fixture f(std::move(options));
  const PieceHeader h = MakeHeader(CidOf(1), StampAt(1), 1);
  auto put = f.store->BeginPut(kUser, "", "a", h);
  CHECK(put.status().code() == Code::kNoSpace);
  CHECK(put.status().message() == "not enough free space: piece needs " +
                                      std::to_string(kPieceHeaderBytes + h.sealed_size()) +
                                      " bytes, 0 available");
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("a put beyond the user's quota is refused with no space") {
  const uint64_t piece = kPieceHeaderBytes + MakeHeader(CidOf(1), StampAt(1), 1).sealed_size();
  for (int k = 2; k <= 3; ++k)
    REQUIRE(kPieceHeaderBytes + MakeHeader(CidOf(1), StampAt(1), k).sealed_size() == piece);
  StoreOptions options;
  options.quota_bytes[kUser] = 2 * piece + kPieceHeaderBytes;  // two pieces and a tombstone
  options.reserve_bytes = 0;
  Fixture f(options);
  auto begin = [&](const char* name, uint8_t cid, int k) {
    return f.store->BeginPut(kUser, "", name, MakeHeader(CidOf(cid), StampAt(30), k));
  };

  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  auto refused = begin("a", 1, 3);
  CHECK(refused.status().code() == Code::kNoSpace);
  CHECK(refused.status().message().rfind(
            "quota of " + std::to_string(2 * piece + kPieceHeaderBytes) + " bytes exceeded", 0) ==
        0);
  CHECK(f.StagingCount() == 0);

  // A user without a quota is not limited.
  REQUIRE(f.store->EnsureUser("bob").ok());
  for (int k = 1; k <= 4; ++k)
    CHECK(StagePiece(*f.store, "bob", "", "a", MakeHeader(CidOf(1), StampAt(1), k)).ok());

  // A delete frees the pieces (the tombstone stays); uploads under way count
  // until they are discarded.
  REQUIRE(f.Delete("", "a", StampAt(20)).ok());
  {
    auto p1 = begin("b", 2, 1);
    auto p2 = begin("b", 2, 2);
    REQUIRE(p1.ok());
    REQUIRE(p2.ok());
    CHECK(begin("b", 2, 3).status().code() == Code::kNoSpace);
    p2->Discard();
    auto p3 = begin("b", 2, 3);
    CHECK(p3.ok());
  }
  // Committed pieces are counted again by a fresh scan after a restart.
  f.store.reset();
  auto reopened = Store::Open(f.tmp.str(), options);
  REQUIRE(reopened.ok());
  f.store = std::move(reopened).value();
  f.Put("", "b", CidOf(2), StampAt(30), {1, 2});
  CHECK(begin("b", 2, 3).status().code() == Code::kNoSpace);
  // A rename moves the usage with the pieces (and adds a tombstone); purges
  // and deletes free it.
  REQUIRE(f.Rename("", "b", "", "c", CidOf(2), StampAt(40), {1, 2}).ok());
  CHECK(f.MustStat("", "c").pieces.size() == 2);
  CHECK(begin("d", 3, 1).status().code() == Code::kNoSpace);
  REQUIRE(f.store->Purge(kUser, "", "a", CidOf(9), StampAt(20), true).ok());
  REQUIRE(f.store->Purge(kUser, "", "b", CidOf(9), StampAt(40), true).ok());
  REQUIRE(f.Delete("", "c", StampAt(50)).ok());
  auto d1 = begin("d", 3, 1);
  auto d2 = begin("d", 3, 2);
  CHECK(d1.ok());
  CHECK(d2.ok());
  CHECK(begin("d", 3, 3).status().code() == Code::kNoSpace);
}

TEST_CASE("concurrent puts never take a user past the quota") {
  const uint64_t piece = kPieceHeaderBytes + MakeHeader(CidOf(1), StampAt(1), 1).sealed_size();
  constexpr int kFit = 10;
  StoreOptions options;
  options.quota_bytes[kUser] = kFit * piece;
  options.reserve_bytes = 0;
  Fixture f(std::move(options));
  constexpr int kThreads = 8;
  constexpr int kEach = 4;
  std::atomic<int> staged{0}, refused{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const PieceHeader h =
            MakeHeader(CidOf(static_cast<uint8_t>(t * kEach + i + 1)), StampAt(1), 1);
        Status s = StagePiece(*f.store, kUser, "", "f" + std::to_string(t), h);
        if (s.ok())
          ++staged;
        else if (s.code() == Code::kNoSpace)
          ++refused;
        else
          ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(staged == kFit);
  CHECK(refused == kThreads * kEach - kFit);
  CHECK(f.StagingCount() == static_cast<size_t>(kFit));
  // Aborted uploads give their bytes back.
  for (int c = 1; c <= kThreads * kEach; ++c)
    REQUIRE(f.store->Abort(kUser, CidOf(static_cast<uint8_t>(c))).ok());
  for (int c = 1; c <= kFit; ++c)
    CHECK(StagePiece(*f.store, kUser, "", "g",
                     MakeHeader(CidOf(static_cast<uint8_t>(100 + c)), StampAt(1), 1))
              .ok());
}

TEST_CASE("a symbolic link planted as a user folder or a subfolder is not followed") {
  Fixture f;
  TempDir outside;
  const auto ignore = [](ListEntry&&) { return Status::Ok(); };
  const PieceHeader h = MakeHeader(CidOf(1), StampAt(1), 1);
  REQUIRE(f.store->Mkdir(kUser, "real").ok());
  fs::create_directory_symlink(outside.path(), f.UserPath("sub"));
  fs::create_directory_symlink(outside.path(), f.UserPath("real/deeper"));

  for (const char* dir : {"sub", "real/deeper", "sub/x"}) {
    CAPTURE(dir);
    Status listed = f.store->List(kUser, dir, ignore);
    CHECK(listed.code() == Code::kPermission);
    CHECK(listed.message().find("refusing to follow a symbolic link") != std::string::npos);
    CHECK(f.store->Stat(kUser, dir, "x").status().code() == Code::kPermission);
    CHECK(f.store->BeginPut(kUser, dir, "x", h).status().code() == Code::kPermission);
    CHECK(f.store->Commit(kUser, dir, "x", h.cid, h.stamp).status().code() == Code::kPermission);
    CHECK(f.Delete(dir, "x", StampAt(2)).code() == Code::kPermission);
    CHECK(f.store->Mkdir(kUser, std::string(dir) + "/new").code() == Code::kPermission);
    CHECK(f.store->OpenPiece(kUser, dir, "x", 1, h.cid, 0, 1).status().code() == Code::kPermission);
  }
  CHECK(f.store->Rmdir(kUser, "sub").code() == Code::kNotDir);
  CHECK(fs::is_symlink(f.UserPath("sub")));

  // The user's folder itself a link.
  fs::create_directory_symlink(outside.path(), f.tmp.path() / "bob");
  CHECK(f.store->EnsureUser("bob").code() == Code::kPermission);
  CHECK(f.store->List("bob", "", ignore).code() == Code::kPermission);
  CHECK(f.store->BeginPut("bob", "", "x", h).status().code() == Code::kPermission);
  CHECK(f.store->Mkdir("bob", "new").code() == Code::kPermission);
  CHECK(fs::is_empty(outside.path()));
}

TEST_CASE("list skips planted names with control bytes and symbolic links") {
  Fixture f;
  f.Put("", "good", CidOf(1), StampAt(1), {1});
  const std::string evil = std::string("ev") + '\x1b' + "[2Jil";
  fs::copy_file(f.UserPath(".good.1"), f.UserPath("." + evil + ".1"));
  fs::create_directory(f.UserPath(std::string("dir") + '\x07'));
  fs::create_symlink(f.UserPath(".good.1"), f.UserPath(".link.1"));
  fs::create_directory_symlink(f.UserPath("real"), f.UserPath("linkdir"));

  std::vector<std::string> names;
  REQUIRE(f.store
              ->List(kUser, "",
                     [&](ListEntry&& e) {
                       names.push_back(e.name);
                       return Status::Ok();
                     })
              .ok());
  CHECK(names == std::vector<std::string>{"good"});
  // Nor does a stat of a link read through it.
  CHECK(f.store->Stat(kUser, "", "link").status().code() == Code::kNotFound);
}

// The piece indexes of dir/name in a Stat reply (0 for the tombstone).
std::vector<int> PiecesOf(const StatReply& st) {
  std::vector<int> out;
  for (const auto& h : st.pieces) out.push_back(h.piece);
  return out;
}

TEST_CASE("a new store starts with the default piece bound and 4-server use never raises it") {
  Fixture f;
  CHECK(f.store->max_piece() == kDefaultPieceBound);
  CHECK(kDefaultPieceBound == 4);
  const fs::path bound_file = f.tmp.path() / ".max_piece";
  CHECK(ReadAll(bound_file) == BoundFileText(4));

  const Cid a = CidOf(1), b = CidOf(2);
  f.Put("", "x", a, StampAt(10), {1, 2, 3, 4});
  f.Put("", "x", b, StampAt(20), {1, 4});  // replaces the older content
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  REQUIRE(f.Rename("", "x", "d", "y", b, StampAt(30), {1, 4}).ok());
  SetAttrRequest req;
  req.dir = "d";
  req.name = "y";
  req.cid = b;
  req.headers = NewHeaders(b, StampAt(40), {1, 4}, "d", "y", 0755);
  REQUIRE(f.store->SetAttr(kUser, req).ok());
  REQUIRE(f.store->Purge(kUser, "d", "y", b, StampAt(40), true).ok());
  REQUIRE(f.Delete("d", "y", StampAt(50)).ok());
  CHECK(f.store->max_piece() == 4);
  CHECK(ReadAll(bound_file) == BoundFileText(4));

  f.Reopen();
  CHECK(f.store->max_piece() == 4);
  CHECK(ReadAll(bound_file) == BoundFileText(4));
}

TEST_CASE("pieces above the default bound raise it and stay visible after a restart") {
  Fixture f;
  const Cid cid = CidOf(3);
  const fs::path bound_file = f.tmp.path() / ".max_piece";
  REQUIRE(f.store->Mkdir(kUser, "d").ok());

  // The bound is durable before the first byte of a piece above it is
  // staged.
  {
    auto staged = f.store->BeginPut(kUser, "d", "w", WideHeader(cid, StampAt(10), 6));
    REQUIRE(staged.ok());
    CHECK(f.store->max_piece() == 6);
    CHECK(ReadAll(bound_file) == BoundFileText(6));
  }
  CHECK(f.PutWide("d", "w", cid, StampAt(10), {1, 6}) == std::vector<uint8_t>{1, 6});
  CHECK(f.store->max_piece() == 6);
  CHECK(ReadAll(bound_file) == BoundFileText(6));
  // A lower piece does not lower it; an index beyond 64 is refused as ever.
  f.PutWide("", "low", cid, StampAt(10), {2});
  CHECK(f.store->max_piece() == 6);
  PieceHeader beyond = WideHeader(cid, StampAt(10), 1);
  beyond.piece = kMaxPieceIndex + 1;
  CHECK(f.store->BeginPut(kUser, "", "z", beyond).status().code() == Code::kInvalidArgument);
  CHECK(f.store->max_piece() == 6);
  CHECK(ReadAll(bound_file) == BoundFileText(6));

  f.Reopen();
  CHECK(f.store->max_piece() == 6);
  CHECK(PiecesOf(f.MustStat("d", "w")) == std::vector<int>{1, 6});
  CHECK(f.ReadPiece("d", "w", 6, cid) == SealedBytes(WideHeader(cid, StampAt(10), 6)));
  auto again = f.store->Commit(kUser, "d", "w", cid, StampAt(10));
  REQUIRE(again.ok());
  CHECK(*again == std::vector<uint8_t>{1, 6});
  CHECK(f.store->Rmdir(kUser, "d/w").code() == Code::kNotDir);

  // Rename and setattr reach piece 6.
  std::vector<PieceHeader> moved;
  for (int k : {1, 6}) {
    PieceHeader h = WideHeader(cid, StampAt(20), k);
    h.Sign(kRecordKey, "v");
    moved.push_back(h);
  }
  REQUIRE(f.store->Rename(kUser, "d", "w", "", "v", cid, moved, TombstoneAt(StampAt(20), "d", "w"))
              .ok());
  CHECK(PiecesOf(f.MustStat("", "v")) == std::vector<int>{1, 6});
  CHECK(PiecesOf(f.MustStat("d", "w")) == std::vector<int>{0});
  CHECK_FALSE(fs::exists(f.UserPath("d/.w.6")));
  SetAttrRequest req;
  req.name = "v";
  req.cid = cid;
  for (int k : {1, 6}) {
    PieceHeader h = WideHeader(cid, StampAt(30), k);
    h.mode = 0755;
    h.Sign(kRecordKey, "v");
    req.headers.push_back(h);
  }
  REQUIRE(f.store->SetAttr(kUser, req).ok());
  CHECK(RawHeader(f.UserPath(".v.6")) == req.headers[1].Encode());

  // A newer content of other pieces pushes piece 6 out; delete removes it.
  f.Reopen();
  f.PutWide("", "v", CidOf(4), StampAt(40), {2});
  CHECK_FALSE(fs::exists(f.UserPath(".v.6")));
  f.PutWide("", "u", cid, StampAt(10), {6});
  CHECK(fs::exists(f.UserPath(".u.6")));
  REQUIRE(f.Delete("", "u", StampAt(50)).ok());
  CHECK_FALSE(fs::exists(f.UserPath(".u.6")));
  CHECK(PiecesOf(f.MustStat("", "u")) == std::vector<int>{0});
  // Purge reaches it too.
  f.PutWide("", "p", CidOf(5), StampAt(10), {6});
  REQUIRE(f.store->Purge(kUser, "", "p", CidOf(6), StampAt(20), false).ok());
  CHECK_FALSE(fs::exists(f.UserPath(".p.6")));
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("a store without a bound file (an older version's) is counted at open") {
  Fixture f;
  REQUIRE(f.store->EnsureUser("bob").ok());
  REQUIRE(f.store->Mkdir(kUser, "a").ok());
  REQUIRE(f.store->Mkdir(kUser, "a/b").ok());
  const Cid cid = CidOf(7);
  f.PutWide("a/b", "deep", cid, StampAt(10), {3, 9}, 12);
  f.Put("", "flat", cid, StampAt(10), {1, 2});
  REQUIRE(f.Delete("", "flat", StampAt(20)).ok());
  const fs::path bound_file = f.tmp.path() / ".max_piece";
  CHECK(f.store->max_piece() == 9);
  f.store.reset();

  SUBCASE("the highest piece is in a subfolder") {}
  SUBCASE("the highest piece belongs to another user") {
    // As an older server would have left it: no bound file was ever written.
    fs::create_directories(f.tmp.path() / "bob" / "x");
    fs::copy_file(f.UserPath("a/b/.deep.9"), f.tmp.path() / "bob" / "x" / ".deep.11");
    PieceHeader h = WideHeader(cid, StampAt(10), 11, 12);
    std::fstream io(f.tmp.path() / "bob" / "x" / ".deep.11",
                    std::ios::binary | std::ios::in | std::ios::out);
    io.write(h.Encode().data(), static_cast<std::streamsize>(kPieceHeaderBytes));
  }
  const bool bob = fs::exists(f.tmp.path() / "bob" / "x");
  // Not pieces, or not below a user: none of these count.
  fs::create_directories(f.tmp.path() / "notes");
  WriteFile(f.tmp.path() / ".x.40", "not under a user");
  WriteFile(f.UserPath(".big.99"), "beyond 64: never a piece");
  WriteFile(f.UserPath("x.30"), "no leading dot");
  fs::create_directory(f.UserPath(".dir.50"));
  fs::create_symlink(f.UserPath("a/b/.deep.9"), f.UserPath(".link.60"));

  fs::remove(bound_file);
  f.Reopen();
  const int expected = bob ? 11 : 9;
  CHECK(f.store->max_piece() == expected);
  CHECK(ReadAll(bound_file) == BoundFileText(expected));
  CHECK(PiecesOf(f.MustStat("a/b", "deep")) == std::vector<int>{3, 9});
  if (bob) {
    const std::vector<int> bob_pieces = {11};
    auto st = f.store->Stat("bob", "x", "deep");
    REQUIRE(st.ok());
    CHECK(PiecesOf(*st) == bob_pieces);
  }
  REQUIRE(f.Delete("a/b", "deep", StampAt(30)).ok());
  CHECK_FALSE(fs::exists(f.UserPath("a/b/.deep.9")));

  // A store of a 4-server cluster is bounded by 4 again.
  TempDir old;
  fs::create_directories(old.path() / kUser);
  fs::copy_file(f.UserPath(".flat.0"), old.path() / kUser / ".flat.0");
  auto plain = Store::Open(old.str());
  REQUIRE(plain.ok());
  CHECK((*plain)->max_piece() == 4);
  CHECK(ReadAll(old.path() / ".max_piece") == BoundFileText(4));
}

TEST_CASE("a corrupt or unreadable bound file is counted again") {
  Fixture f;
  f.PutWide("", "w", CidOf(1), StampAt(10), {7});
  const fs::path bound_file = f.tmp.path() / ".max_piece";
  REQUIRE(ReadAll(bound_file) == BoundFileText(7));
  f.store.reset();

  std::string content;
  SUBCASE("empty") { content = ""; }
  SUBCASE("garbage") { content = "\x01\x02 garbage"; }
  SUBCASE("no newline") { content = "dfs-max-piece 7"; }
  SUBCASE("beyond 64") { content = "dfs-max-piece 65\n"; }
  SUBCASE("leading zero") { content = "dfs-max-piece 07\n"; }
  SUBCASE("a lower number, torn") { content = "dfs-max-piece 3\n\n"; }
  SUBCASE("trailing bytes") { content = "dfs-max-piece 7\nxx"; }
  SUBCASE("long") { content = BoundFileText(7) + std::string(100, ' '); }
  SUBCASE("a folder") { content = "<dir>"; }
  SUBCASE("a symbolic link") { content = "<link>"; }
  fs::remove(bound_file);
  if (content == "<dir>") {
    fs::create_directory(bound_file);
  } else if (content == "<link>") {
    WriteFile(f.tmp.path() / "elsewhere", BoundFileText(2));
    fs::create_symlink(f.tmp.path() / "elsewhere", bound_file);
  } else {
    WriteFile(bound_file, content);
  }
  f.Reopen();
  CHECK(f.store->max_piece() == (content == "<dir>" ? kMaxPieceIndex : 7));
  CHECK(PiecesOf(f.MustStat("", "w")) == std::vector<int>{7});
  if (content != "<dir>") {
    CHECK(fs::is_regular_file(fs::symlink_status(bound_file)));
    CHECK(ReadAll(bound_file) == BoundFileText(7));
  }
}

TEST_CASE("a recorded bound below the default reads as the default") {
  Fixture f;
  f.store.reset();
  WriteFile(f.tmp.path() / ".max_piece", BoundFileText(2));
  f.Reopen();
  CHECK(f.store->max_piece() == kDefaultPieceBound);
}

TEST_CASE("the bound file is never a user, an entry or part of a user's usage") {
  StoreOptions options;
  options.quota_bytes[kUser] = 1 << 20;
  options.reserve_bytes = 0;
  Fixture f(options);
  f.PutWide("", "w", CidOf(1), StampAt(10), {5});
  REQUIRE(fs::exists(f.tmp.path() / ".max_piece"));
  // Usernames never start with '.'.
  CHECK(f.store->EnsureUser(".max_piece").code() == Code::kInvalidArgument);
  CHECK(f.store->Stat(".max_piece", "", "w").status().code() == Code::kInvalidArgument);
  CHECK(f.store->List(".max_piece", "", [](ListEntry&&) { return Status::Ok(); }).code() ==
        Code::kInvalidArgument);
  // A user called "max_piece" is another folder.
  REQUIRE(f.store->EnsureUser("max_piece").ok());
  CHECK(fs::is_directory(f.tmp.path() / "max_piece"));
  std::vector<std::string> names;
  REQUIRE(f.store
              ->List(kUser, "",
                     [&](ListEntry&& e) {
                       names.push_back(e.name);
                       return Status::Ok();
                     })
              .ok());
  CHECK(names == std::vector<std::string>{"w"});
  names.clear();
  REQUIRE(f.store
              ->List("max_piece", "",
                     [&](ListEntry&& e) {
                       names.push_back(e.name);
                       return Status::Ok();
                     })
              .ok());
  CHECK(names.empty());
  // Staging stays empty after a restart, and the bound survives it.
  f.Reopen(options);
  CHECK(fs::is_empty(f.tmp.path() / ".staging"));
  CHECK(f.store->max_piece() == 5);
  CHECK_FALSE(fs::exists(f.tmp.path() / ".max_piece.tmp"));
}

TEST_CASE("concurrent puts of pieces above the bound leave it at the highest") {
  Fixture f;
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const int piece = 5 + t;  // 5 .. 12
      const Cid cid = CidOf(static_cast<uint8_t>(10 + t));
      if (!StagePiece(*f.store, kUser, "", "n" + std::to_string(t),
                      WideHeader(cid, StampAt(1), piece, 16))
               .ok())
        ++failures;
      if (f.store->max_piece() < piece) ++failures;
      auto c = f.store->Commit(kUser, "", "n" + std::to_string(t), cid, StampAt(1));
      if (!c.ok() || *c != std::vector<uint8_t>{static_cast<uint8_t>(piece)}) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(f.store->max_piece() == 4 + kThreads);
  CHECK(ReadAll(f.tmp.path() / ".max_piece") == BoundFileText(4 + kThreads));
  f.Reopen();
  CHECK(f.store->max_piece() == 4 + kThreads);
  for (int t = 0; t < kThreads; ++t)
    CHECK(PiecesOf(f.MustStat("", "n" + std::to_string(t))) == std::vector<int>{5 + t});
}

// ---- The listing cache (folder_cache.h) behind Store::List -----------------

// Every entry List() gives for dir, in the order given.
std::vector<ListEntry> ListOf(Store& store, const std::string& dir) {
  std::vector<ListEntry> out;
  REQUIRE(store
              .List(kUser, dir,
                    [&](ListEntry&& e) {
                      out.push_back(std::move(e));
                      return Status::Ok();
                    })
              .ok());
  return out;
}

// "sub/" for a folder, "name.K" for piece K (0: the tombstone).
std::string NameOf(const ListEntry& e) {
  return e.is_dir ? e.name + "/" : e.name + "." + std::to_string(e.header.piece);
}

// NameOf() of every entry, sorted.
std::vector<std::string> Names(const std::vector<ListEntry>& entries) {
  std::vector<std::string> out;
  for (const ListEntry& e : entries) out.push_back(NameOf(e));
  std::sort(out.begin(), out.end());
  return out;
}

// Every entry in full (name, is_dir, the encoded header in hex), in the
// order given.
std::vector<std::string> Exact(const std::vector<ListEntry>& entries) {
  std::vector<std::string> out;
  for (const ListEntry& e : entries) {
    std::string line = e.name + (e.is_dir ? " dir" : " file");
    if (!e.is_dir) {
      const std::string raw = e.header.Encode();
      line += " " + ToHex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(raw.data()),
                                                   raw.size()));
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The header listed for piece `piece` of `name` (REQUIREs that there is one).
PieceHeader ListedHeader(const std::vector<ListEntry>& entries, const std::string& name,
                         int piece) {
  for (const ListEntry& e : entries)
    if (!e.is_dir && e.name == name && e.header.piece == piece) return e.header;
  FAIL("no piece " << piece << " of " << name << " listed");
  return {};
}

// Overwrites the header of a piece file in place, as an operator could: the
// folder itself does not change (no entry added, removed or renamed).
void RewriteHeaderByHand(const fs::path& path, const PieceHeader& h) {
  std::fstream io(path, std::ios::binary | std::ios::in | std::ios::out);
  REQUIRE(io.good());
  const std::string raw = h.Encode();
  io.write(raw.data(), static_cast<std::streamsize>(raw.size()));
  io.flush();
  REQUIRE(io.good());
}

// Lets the clock move on, so that a folder changed by hand from now on
// gets an mtime other than any it had before.
void LetTimePass() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

// A store with the listing cache on (the default) and, on the same root, a
// store with it off: what the second lists is what is on disk.
struct CacheFixture : Fixture {
  std::unique_ptr<Store> plain;
  explicit CacheFixture(StoreOptions options = {}) : Fixture(options) {
    StoreOptions off = options;
    off.list_cache_entries = 0;
    auto s = Store::Open(tmp.str(), std::move(off));  // nothing staged yet to clean
    REQUIRE(s.ok());
    plain = std::move(s).value();
  }
  // Lists dir through the cache twice (the second from memory when the
  // folder is unchanged), checks both against what is on disk, entry by
  // entry, and returns the names listed.
  std::vector<std::string> Listed(const std::string& dir) {
    const std::vector<ListEntry> first = ListOf(*store, dir);
    const std::vector<ListEntry> second = ListOf(*store, dir);
    const std::vector<ListEntry> truth = ListOf(*plain, dir);
    CHECK(Sorted(Exact(first)) == Sorted(Exact(truth)));
    CHECK(Exact(second) == Exact(first));
    // Stat of every listed name (and of one never there) answered from the
    // cached listing is Stat read from disk.
    std::vector<std::string> names;
    for (const ListEntry& e : first) names.push_back(e.name);
    names.push_back("never-there");
    for (const std::string& name : names) {
      CAPTURE(name);
      auto cached = store->Stat(kUser, dir, name);
      auto disk = plain->Stat(kUser, dir, name);
      REQUIRE(cached.ok() == disk.ok());
      if (!disk.ok()) {
        CHECK(cached.status().code() == disk.status().code());
        continue;
      }
      CHECK(cached->is_dir == disk->is_dir);
      std::vector<std::string> a, b;
      for (const auto& h : cached->pieces) a.push_back(h.Encode());
      for (const auto& h : disk->pieces) b.push_back(h.Encode());
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      CHECK(a == b);
    }
    return Names(first);
  }
  void Setattr(const std::string& dir, const std::string& name, const Cid& cid, const Stamp& stamp,
               std::vector<int> pieces, uint32_t mode) {
    SetAttrRequest req;
    req.dir = dir;
    req.name = name;
    req.cid = cid;
    req.headers = NewHeaders(cid, stamp, std::move(pieces), dir, name, mode);
    REQUIRE(store->SetAttr(kUser, req).ok());
  }
};

using NameList = std::vector<std::string>;

TEST_CASE("list cache: a listing served from memory is the listing read from disk") {
  CacheFixture f;
  REQUIRE(f.store->Mkdir(kUser, "sub").ok());
  REQUIRE(f.store->Mkdir(kUser, ".hidden").ok());
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  f.Put("", "b", CidOf(2), StampAt(10), {3});
  f.Put("", "gone", CidOf(3), StampAt(5), {1});
  REQUIRE(f.Delete("", "gone", StampAt(10)).ok());
  f.PutWide("", "wide", CidOf(4), StampAt(10), {7});
  // Skipped by a listing, cached or not.
  WriteFile(f.UserPath(".broken.1"), std::string(200, 'z'));
  WriteFile(f.UserPath("foreign"), "not a piece");
  fs::create_symlink(f.UserPath(".a.1"), f.UserPath(".link.1"));

  const std::vector<ListEntry> first = ListOf(*f.store, "");
  CHECK(Names(first) == NameList{".hidden/", "a.1", "a.2", "b.3", "gone.0", "sub/", "wide.7"});
  for (int i = 0; i < 3; ++i) {
    const std::vector<ListEntry> again = ListOf(*f.store, "");
    CHECK(Exact(again) == Exact(first));  // same entries, same order, same bytes
  }
  CHECK(Sorted(Exact(ListOf(*f.plain, ""))) == Sorted(Exact(first)));
  CHECK(ListedHeader(first, "a", 2).cid == CidOf(1));
  CHECK(ListedHeader(first, "gone", 0).tombstone());
  // A subfolder is a folder of its own.
  f.Put("sub", "x", CidOf(5), StampAt(10), {1});
  CHECK(f.Listed("sub") == NameList{"x.1"});
  CHECK(Exact(ListOf(*f.store, "")) == Exact(first));
}

TEST_CASE("list cache: an unchanged folder is served from memory, and only with the cache on") {
  // A header rewritten in place by hand changes no folder: it is what shows
  // whether a listing came from memory.
  CacheFixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  const std::vector<ListEntry> before = ListOf(*f.store, "");
  PieceHeader changed = ListedHeader(before, "a", 1);
  changed.mode = 0751;
  RewriteHeaderByHand(f.UserPath(".a.1"), changed);

  CHECK(ListedHeader(ListOf(*f.store, ""), "a", 1).mode == 0644);  // from memory
  CHECK(ListedHeader(ListOf(*f.plain, ""), "a", 1).mode == 0751);  // from disk
  // Any change of the folder through the store reads it again.
  f.Put("", "b", CidOf(2), StampAt(10), {1});
  CHECK(ListedHeader(ListOf(*f.store, ""), "a", 1).mode == 0751);
  CHECK(f.Listed("") == NameList{"a.1", "a.2", "b.1"});
}

TEST_CASE("list cache: a commit of a new file is listed") {
  CacheFixture f;
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  f.Put("d", "old", CidOf(1), StampAt(10), {1});
  CHECK(f.Listed("d") == NameList{"old.1"});
  f.Put("d", "new", CidOf(2), StampAt(20), {2, 4});
  CHECK(f.Listed("d") == NameList{"new.2", "new.4", "old.1"});
  CHECK(ListedHeader(ListOf(*f.store, "d"), "new", 4).cid == CidOf(2));
  // The root, which holds d, did not change and still lists it.
  CHECK(f.Listed("") == NameList{"d/"});
  // A commit that loses to a newer version changes nothing listed.
  f.Put("d", "new", CidOf(3), StampAt(15), {2});
  CHECK(f.Listed("d") == NameList{"new.2", "new.4", "old.1"});
  CHECK(ListedHeader(ListOf(*f.store, "d"), "new", 2).cid == CidOf(2));
}

TEST_CASE("list cache: a commit of a newer version is listed") {
  CacheFixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  f.Put("", "keep", CidOf(9), StampAt(10), {1});
  CHECK(f.Listed("") == NameList{"a.1", "a.2", "keep.1"});

  SUBCASE("same pieces") {
    f.Put("", "a", CidOf(2), StampAt(20), {1, 2});
    CHECK(f.Listed("") == NameList{"a.1", "a.2", "keep.1"});
  }
  SUBCASE("other pieces") {
    f.Put("", "a", CidOf(2), StampAt(20), {1, 3});
    CHECK(f.Listed("") == NameList{"a.1", "a.3", "keep.1"});
  }
  const std::vector<ListEntry> listed = ListOf(*f.store, "");
  const PieceHeader h = ListedHeader(listed, "a", 1);
  CHECK(h.cid == CidOf(2));
  CHECK(h.stamp == StampAt(20));
  CHECK(ListedHeader(listed, "keep", 1).cid == CidOf(9));
}

TEST_CASE("list cache: a delete is listed") {
  CacheFixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  f.Put("", "b", CidOf(2), StampAt(10), {1});
  CHECK(f.Listed("") == NameList{"a.1", "a.2", "b.1"});
  REQUIRE(f.Delete("", "a", StampAt(20)).ok());
  CHECK(f.Listed("") == NameList{"a.0", "b.1"});
  CHECK(ListedHeader(ListOf(*f.store, ""), "a", 0).stamp == StampAt(20));
  // A newer delete replaces the tombstone: the same name, another header.
  REQUIRE(f.Delete("", "a", StampAt(30)).ok());
  CHECK(f.Listed("") == NameList{"a.0", "b.1"});
  CHECK(ListedHeader(ListOf(*f.store, ""), "a", 0).stamp == StampAt(30));
  // A delete that loses to a newer file changes nothing.
  REQUIRE(f.Delete("", "b", StampAt(5)).ok());
  CHECK(f.Listed("") == NameList{"a.0", "b.1"});
}

TEST_CASE("list cache: a rename within a folder is listed") {
  CacheFixture f;
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  f.Put("d", "from", CidOf(1), StampAt(10), {1, 2});
  f.Put("d", "to", CidOf(2), StampAt(5), {3});
  CHECK(f.Listed("d") == NameList{"from.1", "from.2", "to.3"});
  REQUIRE(f.Rename("d", "from", "d", "to", CidOf(1), StampAt(20), {1, 2}).ok());
  CHECK(f.Listed("d") == NameList{"from.0", "to.1", "to.2"});
  const std::vector<ListEntry> listed = ListOf(*f.store, "d");
  CHECK(ListedHeader(listed, "to", 1).stamp == StampAt(20));
  CHECK(ListedHeader(listed, "to", 1).Verify(kRecordKey, "d/to"));
  CHECK(ListedHeader(listed, "from", 0).tombstone());
}

TEST_CASE("list cache: a rename across folders is listed in both") {
  CacheFixture f;
  REQUIRE(f.store->Mkdir(kUser, "src").ok());
  REQUIRE(f.store->Mkdir(kUser, "dst").ok());
  f.Put("src", "x", CidOf(1), StampAt(10), {1, 4});
  f.Put("dst", "other", CidOf(2), StampAt(10), {2});
  CHECK(f.Listed("src") == NameList{"x.1", "x.4"});
  CHECK(f.Listed("dst") == NameList{"other.2"});
  CHECK(f.Listed("") == NameList{"dst/", "src/"});

  REQUIRE(f.Rename("src", "x", "dst", "y", CidOf(1), StampAt(20), {1, 4}).ok());
  CHECK(f.Listed("src") == NameList{"x.0"});
  CHECK(f.Listed("dst") == NameList{"other.2", "y.1", "y.4"});
  CHECK(ListedHeader(ListOf(*f.store, "dst"), "y", 4).Verify(kRecordKey, "dst/y"));
  // And back into the user's own folder.
  REQUIRE(f.Rename("dst", "y", "", "z", CidOf(1), StampAt(30), {1, 4}).ok());
  CHECK(f.Listed("dst") == NameList{"other.2", "y.0"});
  CHECK(f.Listed("") == NameList{"dst/", "src/", "z.1", "z.4"});
  CHECK(f.Listed("src") == NameList{"x.0"});
}

TEST_CASE("list cache: a setattr is listed") {
  // A setattr rewrites headers in place: the folder's mtime does not move,
  // only the store's report of the change can show it.
  CacheFixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1, 2});
  f.Put("", "b", CidOf(2), StampAt(10), {1});
  const std::vector<ListEntry> before = ListOf(*f.store, "");
  REQUIRE(ListOf(*f.store, "").size() == 3);
  CHECK(ListedHeader(before, "a", 1).mode == 0644);

  f.Setattr("", "a", CidOf(1), StampAt(20), {1, 2}, 0755);
  CHECK(f.Listed("") == NameList{"a.1", "a.2", "b.1"});
  std::vector<ListEntry> listed = ListOf(*f.store, "");
  for (int k : {1, 2}) {
    CAPTURE(k);
    const PieceHeader h = ListedHeader(listed, "a", k);
    CHECK(h.mode == 0755);
    CHECK(h.uid == 1000);
    CHECK(h.stamp == StampAt(20));
  }
  CHECK(ListedHeader(listed, "b", 1).mode == 0644);
  // And again, in a subfolder, for one piece only.
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  f.Put("d", "c", CidOf(3), StampAt(10), {1, 2});
  CHECK(f.Listed("d") == NameList{"c.1", "c.2"});
  f.Setattr("d", "c", CidOf(3), StampAt(20), {2}, 0600);
  CHECK(f.Listed("d") == NameList{"c.1", "c.2"});
  listed = ListOf(*f.store, "d");
  CHECK(ListedHeader(listed, "c", 1).mode == 0644);
  CHECK(ListedHeader(listed, "c", 2).mode == 0600);
  // A setattr older than the pieces changes nothing listed.
  const std::vector<std::string> exact = Sorted(Exact(listed));
  f.Setattr("d", "c", CidOf(3), StampAt(5), {1, 2}, 0700);
  CHECK(Sorted(Exact(ListOf(*f.store, "d"))) == exact);
}

TEST_CASE("list cache: a purge is listed") {
  CacheFixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1});
  f.Put("", "a", CidOf(2), StampAt(5), {2});  // older content on a free slot
  f.Put("", "b", CidOf(3), StampAt(1), {1});
  REQUIRE(f.Delete("", "b", StampAt(8)).ok());
  CHECK(f.Listed("") == NameList{"a.1", "a.2", "b.0"});
  REQUIRE(f.store->Purge(kUser, "", "a", CidOf(1), StampAt(10), false).ok());
  CHECK(f.Listed("") == NameList{"a.1", "b.0"});
  REQUIRE(f.store->Purge(kUser, "", "b", CidOf(1), StampAt(8), true).ok());
  CHECK(f.Listed("") == NameList{"a.1"});
}

TEST_CASE("list cache: mkdir and rmdir of a subfolder are listed") {
  CacheFixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1});
  REQUIRE(f.store->Mkdir(kUser, "p").ok());
  CHECK(f.Listed("") == NameList{"a.1", "p/"});
  CHECK(f.Listed("p").empty());

  REQUIRE(f.store->Mkdir(kUser, "q").ok());
  CHECK(f.Listed("") == NameList{"a.1", "p/", "q/"});
  REQUIRE(f.store->Mkdir(kUser, "p/inner").ok());
  CHECK(f.Listed("p") == NameList{"inner/"});
  CHECK(f.Listed("") == NameList{"a.1", "p/", "q/"});

  // The folder removed held pieces and a tombstone (rmdir removes them).
  f.Put("p/inner", "x", CidOf(2), StampAt(10), {1});
  f.Put("p/inner", "y", CidOf(3), StampAt(10), {2});
  REQUIRE(f.Delete("p/inner", "y", StampAt(20)).ok());
  CHECK(f.Listed("p/inner") == NameList{"x.1", "y.0"});
  REQUIRE(f.store->Rmdir(kUser, "p/inner").ok());
  CHECK(f.Listed("p").empty());
  CHECK(f.store->List(kUser, "p/inner", [](ListEntry&&) { return Status::Ok(); }).code() ==
        Code::kNotFound);
  // A folder of the same name again starts empty.
  REQUIRE(f.store->Mkdir(kUser, "p/inner").ok());
  CHECK(f.Listed("p/inner").empty());
  CHECK(f.Listed("p") == NameList{"inner/"});

  REQUIRE(f.store->Rmdir(kUser, "q").ok());
  CHECK(f.Listed("") == NameList{"a.1", "p/"});
  // A failed rmdir changes nothing listed.
  CHECK(f.store->Rmdir(kUser, "p").code() == Code::kNotEmpty);
  CHECK(f.Listed("") == NameList{"a.1", "p/"});
  CHECK(f.Listed("p") == NameList{"inner/"});
}

TEST_CASE("list cache: a listing through another spelling of the folder is the same folder") {
  CacheFixture f;
  REQUIRE(f.store->Mkdir(kUser, "a").ok());
  REQUIRE(f.store->Mkdir(kUser, "a/b").ok());
  f.Put("a/b", "x", CidOf(1), StampAt(10), {1});
  CHECK(Names(ListOf(*f.store, "/a//b/")) == NameList{"x.1"});
  f.Put("a//b/", "y", CidOf(2), StampAt(10), {1});
  CHECK(Names(ListOf(*f.store, "a/b")) == NameList{"x.1", "y.1"});
  REQUIRE(f.store->Mkdir(kUser, "/a/b//c").ok());
  CHECK(Names(ListOf(*f.store, "a/b/")) == NameList{"c/", "x.1", "y.1"});
  REQUIRE(f.store->Rmdir(kUser, "a/b/c/").ok());
  CHECK(Names(ListOf(*f.store, "/a/b")) == NameList{"x.1", "y.1"});
}

TEST_CASE("list cache: piece files added, removed or renamed by hand are listed") {
  CacheFixture f;
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  f.Put("d", "a", CidOf(1), StampAt(10), {1, 2});
  CHECK(f.Listed("d") == NameList{"a.1", "a.2"});

  // Added: a piece copied in, as an operator restoring it would.
  LetTimePass();
  fs::copy_file(f.UserPath("d/.a.1"), f.UserPath("d/.b.1"));
  CHECK(f.Listed("d") == NameList{"a.1", "a.2", "b.1"});
  // Removed.
  LetTimePass();
  fs::remove(f.UserPath("d/.a.2"));
  CHECK(f.Listed("d") == NameList{"a.1", "b.1"});
  // Renamed.
  LetTimePass();
  fs::rename(f.UserPath("d/.b.1"), f.UserPath("d/.c.1"));
  CHECK(f.Listed("d") == NameList{"a.1", "c.1"});
  // Replaced by another file through a rename over it: another header.
  PieceHeader other = MakeHeader(CidOf(7), StampAt(70), 1);
  other.mode = 0700;
  LetTimePass();
  fs::copy_file(f.UserPath("d/.a.1"), f.UserPath("d/tmp"));
  RewriteHeaderByHand(f.UserPath("d/tmp"), other);
  fs::rename(f.UserPath("d/tmp"), f.UserPath("d/.c.1"));
  CHECK(f.Listed("d") == NameList{"a.1", "c.1"});
  CHECK(ListedHeader(ListOf(*f.store, "d"), "c", 1).cid == CidOf(7));
  // A folder made by hand.
  LetTimePass();
  fs::create_directory(f.UserPath("d/made"));
  CHECK(f.Listed("d") == NameList{"a.1", "c.1", "made/"});
  // The whole folder replaced by hand by another one of the same name.
  LetTimePass();
  fs::rename(f.UserPath("d"), f.UserPath("d.old"));
  fs::create_directory(f.UserPath("d"));
  fs::copy_file(f.UserPath("d.old/.a.1"), f.UserPath("d/.z.1"));
  CHECK(f.Listed("d") == NameList{"z.1"});
}

TEST_CASE("list cache: a piece file touched by hand with utimensat on the folder is listed") {
  // No sleep: the folder's times are set explicitly to another value.
  CacheFixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1});
  CHECK(f.Listed("") == NameList{"a.1"});
  fs::copy_file(f.UserPath(".a.1"), f.UserPath(".b.1"));
  Age(f.UserPath(), std::chrono::seconds(3600));
  CHECK(f.Listed("") == NameList{"a.1", "b.1"});
  fs::remove(f.UserPath(".a.1"));
  Age(f.UserPath(), std::chrono::seconds(7200));
  CHECK(f.Listed("") == NameList{"b.1"});
}

TEST_CASE("list cache: a change made while a listing is under way is not kept") {
  // The sink runs in the middle of the read: a setattr made from it lands
  // after the header it changes was read, and leaves the folder's times as
  // they were. Only the store's report of the change can spoil the read.
  CacheFixture f;
  f.Put("", "a", CidOf(1), StampAt(10), {1});
  f.Put("", "b", CidOf(2), StampAt(10), {1});
  bool changed = false;
  std::vector<ListEntry> during;
  REQUIRE(f.store
              ->List(kUser, "",
                     [&](ListEntry&& e) {
                       if (!changed) {
                         changed = true;
                         f.Setattr("", e.name, e.header.cid, StampAt(20), {1}, 0701);
                       }
                       during.push_back(std::move(e));
                       return Status::Ok();
                     })
              .ok());
  REQUIRE(changed);
  REQUIRE(during.size() == 2);
  CHECK(during[0].header.mode == 0644);  // read before the change
  const std::string name = during[0].name;
  CHECK(ListedHeader(ListOf(*f.store, ""), name, 1).mode == 0701);
  CHECK(f.Listed("") == NameList{"a.1", "b.1"});

  // The same with a commit into the folder.
  bool committed = false;
  REQUIRE(f.store
              ->List(kUser, "",
                     [&](ListEntry&&) {
                       if (!committed) {
                         committed = true;
                         f.Put("", "c", CidOf(3), StampAt(10), {2});
                       }
                       return Status::Ok();
                     })
              .ok());
  CHECK(f.Listed("") == NameList{"a.1", "b.1", "c.2"});
}

TEST_CASE("list cache: a listing stopped by its sink keeps nothing") {
  CacheFixture f;
  for (int i = 0; i < 5; ++i) f.Put("", "f" + std::to_string(i), CidOf(1), StampAt(10), {1});
  // Lists through a sink that fails at the stop-th entry; entries seen.
  auto list_stopping_at = [&](int stop) {
    int seen = 0;
    CHECK(f.store
              ->List(kUser, "",
                     [&](ListEntry&&) {
                       return ++seen == stop ? Status::IoError("stop") : Status::Ok();
                     })
              .code() == Code::kIoError);
    return seen;
  };
  CHECK(list_stopping_at(2) == 2);
  // Not the two entries read so far: all of them, the headers as on disk.
  PieceHeader changed = MakeHeader(CidOf(1), StampAt(10), 1);
  changed.mode = 0711;
  RewriteHeaderByHand(f.UserPath(".f3.1"), changed);
  const std::vector<ListEntry> listed = ListOf(*f.store, "");
  CHECK(Names(listed) == NameList{"f0.1", "f1.1", "f2.1", "f3.1", "f4.1"});
  CHECK(ListedHeader(listed, "f3", 1).mode == 0711);
  // A sink error on a listing served from memory comes back too.
  CHECK(list_stopping_at(3) == 3);
  CHECK(Exact(ListOf(*f.store, "")) == Exact(listed));
}

TEST_CASE("list cache: list_cache_entries bounds the folders kept, 0 keeps none") {
  StoreOptions options;
  size_t bound = 0;
  SUBCASE("off") { bound = 0; }
  SUBCASE("3 entries") { bound = 3; }
  options.list_cache_entries = bound;
  CacheFixture f(options);
  REQUIRE(f.store->Mkdir(kUser, "three").ok());
  REQUIRE(f.store->Mkdir(kUser, "four").ok());
  f.Put("three", "a", CidOf(1), StampAt(10), {1, 2});
  REQUIRE(f.store->Mkdir(kUser, "three/sub").ok());  // a folder is an entry too
  f.Put("four", "a", CidOf(1), StampAt(10), {1, 2, 3, 4});
  CHECK(f.Listed("three") == NameList{"a.1", "a.2", "sub/"});
  CHECK(f.Listed("four") == NameList{"a.1", "a.2", "a.3", "a.4"});

  // A header changed by hand shows whether a folder was kept.
  PieceHeader changed = MakeHeader(CidOf(1), StampAt(10), 1);
  changed.mode = 0711;
  RewriteHeaderByHand(f.UserPath("three/.a.1"), changed);
  RewriteHeaderByHand(f.UserPath("four/.a.1"), changed);
  const uint32_t three = ListedHeader(ListOf(*f.store, "three"), "a", 1).mode;
  const uint32_t four = ListedHeader(ListOf(*f.store, "four"), "a", 1).mode;
  CHECK(three == (bound == 3 ? 0644u : 0711u));  // exactly the bound is kept
  CHECK(four == 0711u);                          // one more is not
}

TEST_CASE("list cache: least recently listed folders go first") {
  StoreOptions options;
  options.list_cache_entries = 4;
  CacheFixture f(options);
  for (const char* dir : {"x", "y", "z"}) {
    REQUIRE(f.store->Mkdir(kUser, dir).ok());
    f.Put(dir, "a", CidOf(1), StampAt(10), {1, 2});
  }
  CHECK(f.Listed("x") == NameList{"a.1", "a.2"});
  CHECK(f.Listed("y") == NameList{"a.1", "a.2"});
  CHECK(f.Listed("x") == NameList{"a.1", "a.2"});  // x is now the most recent
  CHECK(f.Listed("z") == NameList{"a.1", "a.2"});  // pushes y out
  PieceHeader changed = MakeHeader(CidOf(1), StampAt(10), 1);
  changed.mode = 0711;
  for (const char* dir : {"x", "y", "z"})
    RewriteHeaderByHand(f.UserPath(std::string(dir) + "/.a.1"), changed);
  CHECK(ListedHeader(ListOf(*f.store, "x"), "a", 1).mode == 0644u);
  CHECK(ListedHeader(ListOf(*f.store, "z"), "a", 1).mode == 0644u);
  CHECK(ListedHeader(ListOf(*f.store, "y"), "a", 1).mode == 0711u);
}

TEST_CASE("list cache: users are cached apart") {
  CacheFixture f;
  REQUIRE(f.store->EnsureUser("bob").ok());
  f.Put("", "a", CidOf(1), StampAt(10), {1});
  CHECK(f.Listed("") == NameList{"a.1"});
  std::vector<std::string> bob;
  REQUIRE(f.store
              ->List("bob", "",
                     [&](ListEntry&& e) {
                       bob.push_back(NameOf(e));
                       return Status::Ok();
                     })
              .ok());
  CHECK(bob.empty());
  REQUIRE(StagePiece(*f.store, "bob", "", "b", MakeHeader(CidOf(2), StampAt(10), 1)).ok());
  REQUIRE(f.store->Commit("bob", "", "b", CidOf(2), StampAt(10)).ok());
  bob.clear();
  REQUIRE(f.store
              ->List("bob", "",
                     [&](ListEntry&& e) {
                       bob.push_back(NameOf(e));
                       return Status::Ok();
                     })
              .ok());
  CHECK(bob == NameList{"b.1"});
  CHECK(f.Listed("") == NameList{"a.1"});
}

TEST_CASE("list cache: concurrent changes and listings end with what is on disk") {
  CacheFixture f;
  REQUIRE(f.store->Mkdir(kUser, "hot").ok());
  f.Put("hot", "attr", CidOf(1), StampAt(10), {1, 2});
  constexpr int kRounds = 60;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  // Headers rewritten in place (no mtime change)...
  threads.emplace_back([&] {
    for (int r = 1; r <= kRounds; ++r) {
      SetAttrRequest req;
      req.dir = "hot";
      req.name = "attr";
      req.cid = CidOf(1);
      req.headers = NewHeaders(CidOf(1), StampAt(static_cast<uint64_t>(10 + r)), {1, 2}, "hot",
                               "attr", 0600 + static_cast<uint32_t>(r % 64));
      if (!f.store->SetAttr(kUser, req).ok()) ++failures;
    }
  });
  // ... files committed and deleted ...
  threads.emplace_back([&] {
    for (int r = 1; r <= kRounds; ++r) {
      const std::string name = "n" + std::to_string(r % 7);
      const Cid cid = CidOf(static_cast<uint8_t>(100 + r));
      const Stamp stamp = StampAt(static_cast<uint64_t>(100 + 2 * r));
      if (!StagePiece(*f.store, kUser, "hot", name, MakeHeader(cid, stamp, 1 + r % 4)).ok() ||
          !f.store->Commit(kUser, "hot", name, cid, stamp).ok())
        ++failures;
      if (r % 3 == 0 && !f.Delete("hot", name, StampAt(static_cast<uint64_t>(101 + 2 * r))).ok())
        ++failures;
    }
  });
  // ... while others list.
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (!done.load()) {
        if (!f.store->List(kUser, "hot", [](ListEntry&&) { return Status::Ok(); }).ok()) ++failures;
      }
    });
  }
  threads[0].join();
  threads[1].join();
  done = true;
  for (size_t i = 2; i < threads.size(); ++i) threads[i].join();
  CHECK(failures == 0);
  f.Listed("hot");
  const PieceHeader h = ListedHeader(ListOf(*f.store, "hot"), "attr", 2);
  CHECK(h.stamp == StampAt(10 + kRounds));
  CHECK(h.mode == static_cast<uint32_t>(0600 + kRounds % 64));
}

// ---- The order of a listing: clients merge the servers' listings as they
// stream in (messages.h kList), so entries come sorted bytewise by name,
// then by piece index, a folder before any piece of the same name. --------

// (name, piece) of a listed entry, -1 for a folder.
struct Listed {
  std::string name;
  int piece = -1;
  bool operator==(const Listed&) const = default;
};

std::vector<Listed> OrderOf(const std::vector<ListEntry>& entries) {
  std::vector<Listed> out;
  for (const ListEntry& e : entries) out.push_back({e.name, e.is_dir ? -1 : e.header.piece});
  return out;
}

// a before b: names compared byte by byte as unsigned (not through
// std::string's operator<, which the store may use), then pieces.
bool ListedBefore(const Listed& a, const Listed& b) {
  const auto byte = [](char c) { return static_cast<unsigned char>(c); };
  const bool less =
      std::lexicographical_compare(a.name.begin(), a.name.end(), b.name.begin(), b.name.end(),
                                   [&](char x, char y) { return byte(x) < byte(y); });
  const bool greater =
      std::lexicographical_compare(b.name.begin(), b.name.end(), a.name.begin(), a.name.end(),
                                   [&](char x, char y) { return byte(x) < byte(y); });
  if (less || greater) return less;
  return a.piece < b.piece;
}

// Each entry strictly after the one before it.
bool InListOrder(const std::vector<Listed>& listed) {
  for (size_t i = 1; i < listed.size(); ++i)
    if (!ListedBefore(listed[i - 1], listed[i])) return false;
  return true;
}

std::string Show(const std::vector<Listed>& listed) {
  std::string out;
  for (const Listed& l : listed)
    out += Escaped(l.name) + (l.piece < 0 ? "/" : "." + std::to_string(l.piece)) + " ";
  return out;
}

constexpr char kEAcute[] = "\xc3\xa9";        // "é"
constexpr char kEAcuteUpper[] = "\xc3\x89";   // "É"
constexpr char kEte[] = "\xc3\xa9t\xc3\xa9";  // "été"

// Fills folder "d" with names whose bytewise order differs from the order
// of their piece files' names (".a-b.1" < ".a.1" but "a" < "a-b"; ".w.10"
// < ".w.2"), from letter order ("B" < "a", "É" < "é") and from the order
// they are made in; with prefixes of one another, a folder and a file of
// one name, and tombstones next to pieces. Returns the listing expected.
std::vector<Listed> FillUnordered(Fixture& f) {
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  f.Put("d", "aa", CidOf(1), StampAt(10), {1});
  REQUIRE(f.store->Mkdir(kUser, std::string("d/") + kEte).ok());
  f.Put("d", kEAcute, CidOf(2), StampAt(10), {2, 1});
  f.Put("d", "a.b", CidOf(3), StampAt(10), {2, 1});
  REQUIRE(f.store->Mkdir(kUser, "d/sub").ok());
  f.Put("d/sub", "inner", CidOf(4), StampAt(10), {1});
  f.Put("d", "b", CidOf(5), StampAt(10), {1, 2});
  REQUIRE(f.Delete("d", "b", StampAt(20)).ok());  // only its tombstone is left
  f.Put("d", "a", CidOf(6), StampAt(10), {4, 3, 1, 2});
  REQUIRE(f.store->Mkdir(kUser, "d/a-").ok());
  f.PutWide("d", "wide", CidOf(7), StampAt(10), {11, 2, 10}, 12);
  f.Put("d", "a-b", CidOf(8), StampAt(10), {1});
  REQUIRE(f.store->Mkdir(kUser, "d/Z").ok());
  f.Put("d", "B", CidOf(9), StampAt(10), {4, 1});
  f.Put("d", "z~", CidOf(10), StampAt(10), {1});
  REQUIRE(f.store->Mkdir(kUser, "d/a b").ok());
  f.Put("d", "a0", CidOf(11), StampAt(10), {3});
  f.Put("d", kEAcuteUpper, CidOf(12), StampAt(10), {1});
  REQUIRE(f.Delete("d", kEAcuteUpper, StampAt(20)).ok());
  f.Put("d", "c", CidOf(13), StampAt(10), {1});
  // By hand: a folder next to the file "c", and a tombstone next to the
  // pieces of "B" (the store makes neither, but lists what is there).
  REQUIRE(fs::create_directory(f.UserPath("d/c")));
  fs::copy_file(f.UserPath("d/.b.0"), f.UserPath("d/.B.0"));
  return {{"B", 0},     {"B", 1},     {"B", 4},     {"Z", -1},    {"a", 1},   {"a", 2},
          {"a", 3},     {"a", 4},     {"a b", -1},  {"a-", -1},   {"a-b", 1}, {"a.b", 1},
          {"a.b", 2},   {"a0", 3},    {"aa", 1},    {"b", 0},     {"c", -1},  {"c", 1},
          {"sub", -1},  {"wide", 2},  {"wide", 10}, {"wide", 11}, {"z~", 1},  {kEAcuteUpper, 0},
          {kEAcute, 1}, {kEAcute, 2}, {kEte, -1}};
}

TEST_CASE("list order: by name bytewise, then piece, a folder first, from disk and from memory") {
  StoreOptions options;
  bool cached = false;  // whether the second listing comes from memory
  SUBCASE("cache on") { cached = true; }
  SUBCASE("cache off") { options.list_cache_entries = 0; }
  SUBCASE("folder larger than the cache") { options.list_cache_entries = 5; }
  Fixture f(options);
  const std::vector<Listed> expected = FillUnordered(f);
  REQUIRE(InListOrder(expected));  // the expectation itself

  const std::vector<ListEntry> first = ListOf(*f.store, "d");
  INFO("first: ", Show(OrderOf(first)));
  CHECK(InListOrder(OrderOf(first)));
  CHECK(OrderOf(first) == expected);
  CHECK(ListedHeader(first, "wide", 10).piece == 10);
  CHECK(ListedHeader(first, "B", 0).tombstone());

  // A header rewritten by hand shows whether the second listing was read
  // again; it must be in the same order either way.
  PieceHeader changed = ListedHeader(first, "a", 2);
  changed.mode = 0751;
  RewriteHeaderByHand(f.UserPath("d/.a.2"), changed);
  const std::vector<ListEntry> second = ListOf(*f.store, "d");
  INFO("second: ", Show(OrderOf(second)));
  CHECK(OrderOf(second) == expected);
  CHECK(ListedHeader(second, "a", 2).mode == (cached ? 0644u : 0751u));
  if (cached) CHECK(Exact(second) == Exact(first));
  CHECK(OrderOf(ListOf(*f.store, "d")) == expected);
}

TEST_CASE("list order: holds after changes to a cached folder") {
  StoreOptions options;
  SUBCASE("cache on") {}
  SUBCASE("cache off") { options.list_cache_entries = 0; }
  Fixture f(options);
  std::vector<Listed> expected = FillUnordered(f);
  REQUIRE(OrderOf(ListOf(*f.store, "d")) == expected);
  REQUIRE(OrderOf(ListOf(*f.store, "d")) == expected);  // cached, when on

  // A name in the middle, a name gone to a tombstone, a new folder, a piece
  // added to a file, and a renamed file.
  f.Put("d", "a+", CidOf(20), StampAt(30), {2, 1});
  REQUIRE(f.Delete("d", "aa", StampAt(30)).ok());
  REQUIRE(f.store->Mkdir(kUser, "d/Y").ok());
  f.PutWide("d", "wide", CidOf(7), StampAt(10), {3}, 12);
  REQUIRE(f.Rename("d", "z~", "d", "0z", CidOf(10), StampAt(40), {1}).ok());
  expected = {{"0z", 1},    {"B", 0},     {"B", 1},     {"B", 4},   {"Y", -1},         {"Z", -1},
              {"a", 1},     {"a", 2},     {"a", 3},     {"a", 4},   {"a b", -1},       {"a+", 1},
              {"a+", 2},    {"a-", -1},   {"a-b", 1},   {"a.b", 1}, {"a.b", 2},        {"a0", 3},
              {"aa", 0},    {"b", 0},     {"c", -1},    {"c", 1},   {"sub", -1},       {"wide", 2},
              {"wide", 3},  {"wide", 10}, {"wide", 11}, {"z~", 0},  {kEAcuteUpper, 0}, {kEAcute, 1},
              {kEAcute, 2}, {kEte, -1}};
  REQUIRE(InListOrder(expected));
  for (int i = 0; i < 2; ++i) {
    INFO("listing ", i);
    const std::vector<Listed> listed = OrderOf(ListOf(*f.store, "d"));
    INFO("listed: ", Show(listed));
    CHECK(listed == expected);
  }
  // The subfolder is in order too, and the root.
  CHECK(OrderOf(ListOf(*f.store, "d/sub")) == std::vector<Listed>{{"inner", 1}});
  CHECK(OrderOf(ListOf(*f.store, "")) == std::vector<Listed>{{"d", -1}});
}

TEST_CASE("a replaced or deleted piece stays readable by its content id, unless not kept") {
  Fixture f;
  const Cid v1 = CidOf(1), v2 = CidOf(2);
  f.Put("", "a", v1, StampAt(10), {1, 2});
  f.Put("", "a", v2, StampAt(20), {1});
  // Piece 1 was replaced, piece 2 given way: both still read as v1.
  CHECK(f.ReadPiece("", "a", 1, v1) == SealedBytes(MakeHeader(v1, StampAt(10), 1)));
  CHECK(f.ReadPiece("", "a", 2, v1) == SealedBytes(MakeHeader(v1, StampAt(10), 2)));
  CHECK(f.ReadPiece("", "a", 1, v2) == SealedBytes(MakeHeader(v2, StampAt(20), 1)));
  // Not listed: a stat sees v2 only.
  StatReply st = f.MustStat("", "a");
  REQUIRE(st.pieces.size() == 1);
  CHECK(st.pieces[0].cid == v2);
  // The same content under another name is another piece.
  CHECK(f.store->OpenPiece(kUser, "", "b", 1, v1, 0, 1).status().code() == Code::kNotFound);
  // A delete keeps what it removed readable too.
  REQUIRE(f.Delete("", "a", StampAt(30)).ok());
  CHECK(f.ReadPiece("", "a", 1, v2) == SealedBytes(MakeHeader(v2, StampAt(20), 1)));
  // The sweep drops them once they are older than retire_for (0 here: at once... after a second).
  f.Reopen(StoreOptions{.retire_for = std::chrono::seconds(0)});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto swept = f.store->SweepRetired();
  REQUIRE(swept.ok());
  CHECK(*swept == 3);
  CHECK(f.store->OpenPiece(kUser, "", "a", 1, v1, 0, 1).status().code() == Code::kNotFound);
}

TEST_CASE("revert puts the retired previous content back and drops the failed one") {
  Fixture f;
  const Cid v1 = CidOf(1), v2 = CidOf(2), v3 = CidOf(3);
  f.Put("", "a", v1, StampAt(10), {1, 2});
  f.Put("", "a", v2, StampAt(20), {1, 3});  // replaced 1, gave way 2, new 3
  REQUIRE(f.store->Revert(kUser, "", "a", v2, v1).ok());
  StatReply st = f.MustStat("", "a");
  REQUIRE(st.pieces.size() == 2);
  CHECK(st.pieces[0].piece == 1);
  CHECK(st.pieces[0].cid == v1);
  CHECK(st.pieces[1].piece == 2);
  CHECK(st.pieces[1].cid == v1);
  CHECK(f.ReadPiece("", "a", 2, v1) == SealedBytes(MakeHeader(v1, StampAt(10), 2)));
  // Nothing to restore: the failed content is dropped.
  f.Put("", "b", v3, StampAt(30), {1});
  REQUIRE(f.store->Revert(kUser, "", "b", v3, Cid{}).ok());
  CHECK(f.store->Stat(kUser, "", "b").status().code() == Code::kNotFound);
  // A newer content that is not the failed one is left alone.
  f.Put("", "c", v1, StampAt(10), {1});
  f.Put("", "c", v2, StampAt(20), {1});
  REQUIRE(f.store->Revert(kUser, "", "c", v3, v1).ok());
  CHECK(f.MustStat("", "c").pieces.front().cid == v2);
}

// ---- Folder records (kFolder) and subfolder counts ----------------------

PieceHeader FolderRecordAt(const Stamp& stamp, const std::string& path, uint32_t mode = 0750) {
  PieceHeader h;
  h.kind = PieceKind::kFolder;
  h.piece = 0;
  h.stamp = stamp;
  h.mode = S_IFDIR | mode;
  h.uid = 1000;
  h.gid = 100;
  h.Sign(kRecordKey, path);
  return h;
}

// The subfolder count and record ListOf gives for `name` in `dir`.
std::pair<uint32_t, std::optional<PieceHeader>> FolderAsListed(Store& store, const std::string& dir,
                                                               const std::string& name) {
  std::pair<uint32_t, std::optional<PieceHeader>> out{0, std::nullopt};
  bool seen = false;
  for (const ListEntry& e : ListOf(store, dir)) {
    if (e.name != name) continue;
    if (e.is_dir) {
      seen = true;
      out.first = e.subdirs;
    } else if (e.header.folder()) {
      out.second = e.header;
    }
  }
  REQUIRE_MESSAGE(seen, name << " not listed as a folder");
  return out;
}

TEST_CASE("a folder record is made with its folder, listed after it, newer wins, gone with it") {
  Fixture f;
  REQUIRE(f.store->SetFolder(kUser, "a", FolderRecordAt({10, 0}, "a"), /*create=*/true).ok());
  auto [subdirs, record] = FolderAsListed(*f.store, "", "a");
  CHECK(subdirs == 0);
  REQUIRE(record.has_value());
  CHECK(record->mode == (S_IFDIR | 0750));
  CHECK(record->stamp == Stamp{10, 0});
  // An older record does not replace it; a newer one does; both need the folder.
  REQUIRE(f.store->SetFolder(kUser, "a", FolderRecordAt({5, 0}, "a", 0777), false).ok());
  CHECK(FolderAsListed(*f.store, "", "a").second->stamp == Stamp{10, 0});
  REQUIRE(f.store->SetFolder(kUser, "a", FolderRecordAt({20, 0}, "a", 0700), false).ok());
  CHECK(FolderAsListed(*f.store, "", "a").second->mode == (S_IFDIR | 0700));
  CHECK(f.store->SetFolder(kUser, "b", FolderRecordAt({20, 0}, "b"), false).code() ==
        Code::kNotFound);
  CHECK(f.store->SetFolder(kUser, "x/y", FolderRecordAt({20, 0}, "x/y"), true).code() ==
        Code::kNotFound);  // no parent
  CHECK(f.store->SetFolder(kUser, "a", TombstoneAt({30, 0}, "", "a"), false).code() ==
        Code::kInvalidArgument);
  // Stat of the folder carries the record; the name of records is reserved.
  auto st = f.store->Stat(kUser, "", "a");
  REQUIRE(st.ok());
  CHECK(st->is_dir);
  REQUIRE(st->pieces.size() == 1);
  CHECK(st->pieces[0].folder());
  CHECK(f.store->Mkdir(kUser, std::string(kFolderRecordFile)).code() == Code::kInvalidArgument);
  // The root's record, through Stat of "".
  REQUIRE(f.store->SetFolder(kUser, "", FolderRecordAt({40, 0}, "", 01777), false).ok());
  auto root = f.store->Stat(kUser, "", "");
  REQUIRE(root.ok());
  REQUIRE(root->pieces.size() == 1);
  CHECK(root->pieces[0].mode == (S_IFDIR | 01777));
  CHECK(root->subdirs == 1);
  // rmdir takes the record along.
  REQUIRE(f.store->Rmdir(kUser, "a").ok());
  CHECK(ListOf(*f.store, "").empty());
}

TEST_CASE("a folder's subfolder count is right in a cached listing after mkdir and rmdir below") {
  Fixture f;
  REQUIRE(f.store->Mkdir(kUser, "a").ok());
  CHECK(FolderAsListed(*f.store, "", "a").first == 0);  // the root's listing is cached now
  REQUIRE(f.store->Mkdir(kUser, "a/b").ok());
  REQUIRE(f.store->SetFolder(kUser, "a/c", FolderRecordAt({10, 0}, "a/c"), true).ok());
  CHECK(FolderAsListed(*f.store, "", "a").first == 2);
  auto st = f.store->Stat(kUser, "", "a");
  REQUIRE(st.ok());
  CHECK(st->subdirs == 2);
  REQUIRE(f.store->Rmdir(kUser, "a/b").ok());
  CHECK(FolderAsListed(*f.store, "", "a").first == 1);
}

// ---- Extended attributes: a sealed trailer of xattr_bytes after a piece's
// sealed content (piece_header.h). The store never opens it: any bytes of
// a valid length stand for one here. ---------------------------------------

// `n` bytes standing for a sealed trailer, different for each `seed`.
std::string Trailer(size_t n, char seed) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 13 + 5 * seed) & 0xff);
  return out;
}

// The sealed content of piece `piece` of cid (SealedBytes ignores the stamp).
std::string ContentOf(const Cid& cid, int piece) {
  return SealedBytes(MakeHeader(cid, StampAt(1), piece));
}

// Stages pieces `pieces` of content cid at stamp, each with `xattrs` after
// its content (header xattr_bytes set), and commits them.
std::vector<uint8_t> PutWithXattrs(Fixture& f, const std::string& dir, const std::string& name,
                                   const Cid& cid, const Stamp& stamp, std::vector<int> pieces,
                                   const std::string& xattrs) {
  for (int k : pieces) {
    PieceHeader h = MakeHeader(cid, stamp, k);
    h.xattr_bytes = static_cast<uint16_t>(xattrs.size());
    auto staged = f.store->BeginPut(kUser, dir, name, h);
    REQUIRE(staged.ok());
    REQUIRE(staged->Append(ContentOf(cid, k)).ok());
    REQUIRE(staged->Append(xattrs).ok());
    REQUIRE(staged->Finish().ok());
  }
  auto committed = f.store->Commit(kUser, dir, name, cid, stamp);
  REQUIRE(committed.ok());
  return *committed;
}

// NewHeaders describing `xattr_bytes` bytes of extended attributes.
std::vector<PieceHeader> XattrHeaders(const Cid& cid, const Stamp& stamp, std::vector<int> pieces,
                                      const std::string& dir, const std::string& name,
                                      size_t xattr_bytes, uint32_t mode = 0600) {
  std::vector<PieceHeader> out = NewHeaders(cid, stamp, std::move(pieces), dir, name, mode);
  for (PieceHeader& h : out) {
    h.xattr_bytes = static_cast<uint16_t>(xattr_bytes);
    h.Sign(kRecordKey, JoinName(dir, name));
  }
  return out;
}

// A setattr of pieces `pieces` of cid in dir/name to `xattrs`.
SetAttrRequest XattrRequest(const Cid& cid, const Stamp& stamp, std::vector<int> pieces,
                            const std::string& dir, const std::string& name,
                            const std::string& xattrs, uint32_t mode = 0600) {
  SetAttrRequest req;
  req.dir = dir;
  req.name = name;
  req.cid = cid;
  req.headers = XattrHeaders(cid, stamp, std::move(pieces), dir, name, xattrs.size(), mode);
  req.xattrs = xattrs;
  return req;
}

ino_t InodeOf(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

// Bytes of all regular files under `root`.
uint64_t BytesUnder(const fs::path& root) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

TEST_CASE("a piece committed with extended attributes keeps them after its content") {
  Fixture f;
  const Cid cid = CidOf(1);
  const std::string xattrs = Trailer(100, 'a');
  CHECK(PutWithXattrs(f, "", "a", cid, StampAt(10), {1, 2}, xattrs) == std::vector<uint8_t>{1, 2});
  const StatReply st = f.MustStat("", "a");
  REQUIRE(st.pieces.size() == 2);
  for (const PieceHeader& h : st.pieces) {
    CAPTURE(h.piece);
    const std::string content = ContentOf(cid, h.piece);
    CHECK(h.xattr_bytes == 100);
    CHECK(h.data_size() == content.size());
    CHECK(h.sealed_size() == content.size() + 100);
    const fs::path path = f.UserPath(".a." + std::to_string(h.piece));
    CHECK(fs::file_size(path) == kPieceHeaderBytes + content.size() + 100);
    CHECK(ReadAll(path) == h.Encode() + content + xattrs);
    // The sealed range read back is the content, then the trailer.
    CHECK(f.ReadPiece("", "a", h.piece, cid) == content + xattrs);
    CHECK(f.ReadPiece("", "a", h.piece, cid, content.size()) == xattrs);
    CHECK(f.ReadPiece("", "a", h.piece, cid, content.size() - 4, 10) ==
          content.substr(content.size() - 4) + xattrs.substr(0, 6));
    CHECK(f.ReadPiece("", "a", h.piece, cid, content.size() + 100, 10).empty());
  }

  // The shortest and the longest trailer.
  for (size_t n : {kXattrTrailerOverhead, kMaxXattrTrailerBytes}) {
    CAPTURE(n);
    const std::string name = "n" + std::to_string(n);
    const std::string trailer = Trailer(n, 'b');
    PutWithXattrs(f, "", name, cid, StampAt(10), {3}, trailer);
    const fs::path path = f.UserPath("." + name + ".3");
    CHECK(fs::file_size(path) == kPieceHeaderBytes + ContentOf(cid, 3).size() + n);
    CHECK(f.ReadPiece("", name, 3, cid) == ContentOf(cid, 3) + trailer);
  }

  // A staged piece is as long as its content and trailer, no shorter.
  PieceHeader h = MakeHeader(cid, StampAt(10), 4);
  h.xattr_bytes = 100;
  auto staged = f.store->BeginPut(kUser, "", "short", h);
  REQUIRE(staged.ok());
  REQUIRE(staged->Append(ContentOf(cid, 4)).ok());
  Status s = staged->Finish();
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("piece length mismatch") != std::string::npos);
  staged->Discard();
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("setattr writes the new header, the same content, then exactly the new attributes") {
  Fixture f;
  const Cid cid = CidOf(1);
  PutWithXattrs(f, "", "a", cid, StampAt(10), {1, 2}, Trailer(100, 'a'));
  f.Put("", "a", CidOf(2), StampAt(5), {3});  // older other content: left alone
  const std::string other = ReadAll(f.UserPath(".a.3"));
  const ino_t other_inode = InodeOf(f.UserPath(".a.3"));

  struct Step {
    std::string xattrs;
    bool changed;  // other attributes than those stored: a copy replaces the file
  };
  const std::vector<Step> steps = {
      {Trailer(300, 'b'), true},                    // longer
      {Trailer(300, 'b'), false},                   // the same: the header alone
      {Trailer(40, 'c'), true},                     // shorter
      {Trailer(40, 'd'), true},                     // as long, other bytes
      {"", true},                                   // none
      {"", false},                                  // still none
      {Trailer(kXattrTrailerOverhead, 'e'), true},  // from none
      {Trailer(kMaxXattrTrailerBytes, 'f'), true},  // the longest
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    CAPTURE(i);
    std::map<int, ino_t> before;
    for (int k : {1, 2}) before[k] = InodeOf(f.UserPath(".a." + std::to_string(k)));
    const SetAttrRequest req = XattrRequest(cid, StampAt(20 + 10 * i), {1, 2}, "", "a", step.xattrs,
                                            0600 + static_cast<uint32_t>(i));
    REQUIRE(f.store->SetAttr(kUser, req).ok());
    for (int k : {1, 2}) {
      CAPTURE(k);
      const fs::path path = f.UserPath(".a." + std::to_string(k));
      const std::string content = ContentOf(cid, k);
      const PieceHeader& h = req.headers[static_cast<size_t>(k - 1)];
      CHECK(ReadAll(path) == h.Encode() + content + step.xattrs);
      CHECK(fs::file_size(path) == kPieceHeaderBytes + content.size() + step.xattrs.size());
      CHECK(f.ReadPiece("", "a", k, cid) == content + step.xattrs);
      // A copy renamed over the piece when the attributes change; else the
      // header rewritten in place.
      CHECK((InodeOf(path) != before[k]) == step.changed);
    }
    const StatReply st = f.MustStat("", "a");
    REQUIRE(st.pieces.size() == 3);
    for (size_t j = 0; j < 2; ++j) {
      CHECK(st.pieces[j].xattr_bytes == step.xattrs.size());
      CHECK(st.pieces[j].stamp == StampAt(20 + 10 * i));
      CHECK(st.pieces[j].Verify(kRecordKey, "a"));
    }
    CHECK(ReadAll(f.UserPath(".a.3")) == other);
    CHECK(InodeOf(f.UserPath(".a.3")) == other_inode);
    CHECK(f.StagingCount() == 0);
  }
}

TEST_CASE("setattr refuses attributes its headers do not describe, or too long, changing nothing") {
  Fixture f;
  const Cid cid = CidOf(1);
  const std::string held = Trailer(100, 'a');
  PutWithXattrs(f, "", "a", cid, StampAt(10), {1, 2}, held);
  std::map<int, std::string> bytes;
  std::map<int, ino_t> inodes;
  for (int k : {1, 2}) {
    bytes[k] = ReadAll(f.UserPath(".a." + std::to_string(k)));
    inodes[k] = InodeOf(f.UserPath(".a." + std::to_string(k)));
  }

  // Headers of 100 bytes of attributes, 101 came.
  SetAttrRequest more = XattrRequest(cid, StampAt(20), {1, 2}, "", "a", held);
  more.xattrs = Trailer(101, 'b');
  Status s = f.store->SetAttr(kUser, more);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("describes 100 bytes of extended attributes, 101 came") !=
        std::string::npos);
  // Headers of none, some came; headers of some, none came.
  SetAttrRequest none = XattrRequest(cid, StampAt(20), {1, 2}, "", "a", "");
  none.xattrs = Trailer(50, 'c');
  CHECK(f.store->SetAttr(kUser, none).code() == Code::kInvalidArgument);
  SetAttrRequest missing = XattrRequest(cid, StampAt(20), {1, 2}, "", "a", Trailer(50, 'c'));
  missing.xattrs.clear();
  CHECK(f.store->SetAttr(kUser, missing).code() == Code::kInvalidArgument);
  // One header of two describes other attributes.
  SetAttrRequest mixed = XattrRequest(cid, StampAt(20), {1, 2}, "", "a", Trailer(50, 'c'));
  mixed.headers[1] = XattrHeaders(cid, StampAt(20), {2}, "", "a", 51)[0];
  CHECK(f.store->SetAttr(kUser, mixed).code() == Code::kInvalidArgument);
  // Longer than any trailer, though the headers describe it.
  SetAttrRequest too_long =
      XattrRequest(cid, StampAt(20), {1, 2}, "", "a", Trailer(kMaxXattrTrailerBytes + 1, 'd'));
  REQUIRE(too_long.headers[0].xattr_bytes == kMaxXattrTrailerBytes + 1);
  s = f.store->SetAttr(kUser, too_long);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message() ==
        "extended attributes of " + std::to_string(kMaxXattrTrailerBytes + 1) + " bytes");

  for (int k : {1, 2}) {
    CAPTURE(k);
    CHECK(ReadAll(f.UserPath(".a." + std::to_string(k))) == bytes[k]);
    CHECK(InodeOf(f.UserPath(".a." + std::to_string(k))) == inodes[k]);
  }
  CHECK(f.MustStat("", "a").pieces.at(0).stamp == StampAt(10));
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("setattr not newer than the pieces changes neither header nor attributes") {
  Fixture f;
  const Cid cid = CidOf(1);
  PutWithXattrs(f, "", "a", cid, StampAt(20), {1, 2}, Trailer(100, 'a'));
  std::map<int, std::string> bytes;
  std::map<int, ino_t> inodes;
  for (int k : {1, 2}) {
    bytes[k] = ReadAll(f.UserPath(".a." + std::to_string(k)));
    inodes[k] = InodeOf(f.UserPath(".a." + std::to_string(k)));
  }
  // Older, as old, and newer but of other content: all OK, none applied,
  // whatever attributes they carry.
  const std::vector<SetAttrRequest> ignored = {
      XattrRequest(cid, StampAt(15), {1, 2}, "", "a", Trailer(300, 'b'), 0755),
      XattrRequest(cid, StampAt(15), {1, 2}, "", "a", "", 0755),
      XattrRequest(cid, StampAt(15), {1, 2}, "", "a", Trailer(100, 'c'), 0755),
      XattrRequest(cid, StampAt(20), {1, 2}, "", "a", Trailer(40, 'd'), 0755),
      XattrRequest(CidOf(9), StampAt(30), {1, 2}, "", "a", Trailer(40, 'd'), 0755),
  };
  for (size_t i = 0; i < ignored.size(); ++i) {
    CAPTURE(i);
    REQUIRE(f.store->SetAttr(kUser, ignored[i]).ok());
    for (int k : {1, 2}) {
      CAPTURE(k);
      CHECK(ReadAll(f.UserPath(".a." + std::to_string(k))) == bytes[k]);
      CHECK(InodeOf(f.UserPath(".a." + std::to_string(k))) == inodes[k]);
    }
  }
  CHECK(f.MustStat("", "a").pieces.at(0).mode == 0644u);
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("rename carries the attributes over, or gives the request's when they differ") {
  Fixture f;
  const Cid cid = CidOf(1);
  const std::string held = Trailer(100, 'a');
  PutWithXattrs(f, "", "from", cid, StampAt(10), {1, 2}, held);
  REQUIRE(f.store->Mkdir(kUser, "d").ok());
  // Moves dir/name to to_dir/to_name at `stamp` with `xattrs` and checks
  // the pieces there, byte for byte, and the tombstone left behind.
  const auto rename = [&](const std::string& dir, const std::string& name,
                          const std::string& to_dir, const std::string& to_name, uint64_t stamp,
                          const std::string& xattrs) {
    CAPTURE(to_name);
    const std::vector<PieceHeader> headers =
        XattrHeaders(cid, StampAt(stamp), {1, 2}, to_dir, to_name, xattrs.size(), 0640);
    const PieceHeader tombstone = TombstoneAt(StampAt(stamp), dir, name);
    REQUIRE(
        f.store->Rename(kUser, dir, name, to_dir, to_name, cid, headers, tombstone, xattrs).ok());
    const std::string prefix = to_dir.empty() ? "" : to_dir + "/";
    for (int k : {1, 2}) {
      CAPTURE(k);
      const fs::path path = f.UserPath(prefix + "." + to_name + "." + std::to_string(k));
      const std::string content = ContentOf(cid, k);
      CHECK(ReadAll(path) == headers[static_cast<size_t>(k - 1)].Encode() + content + xattrs);
      CHECK(fs::file_size(path) == kPieceHeaderBytes + content.size() + xattrs.size());
      CHECK(f.ReadPiece(to_dir, to_name, k, cid) == content + xattrs);
    }
    CHECK(PiecesOf(f.MustStat(dir, name)) == std::vector<int>{0});
    CHECK(RawHeader(f.UserPath((dir.empty() ? "" : dir + "/") + "." + name + ".0")) ==
          tombstone.Encode());
    CHECK(f.StagingCount() == 0);
  };

  // The same attributes: the pieces move with them.
  rename("", "from", "", "same", 20, held);
  // Other attributes, longer, across folders: the request's.
  const std::string longer = Trailer(250, 'b');
  rename("", "same", "d", "longer", 30, longer);
  // As long, other bytes.
  const std::string other = Trailer(250, 'c');
  rename("d", "longer", "d", "other", 40, other);
  // None.
  rename("d", "other", "", "none", 50, "");
  // From none to some.
  rename("", "none", "", "some", 60, held);

  // Attributes the headers do not describe: refused, nothing moves.
  const std::string before1 = ReadAll(f.UserPath(".some.1"));
  std::vector<PieceHeader> headers = XattrHeaders(cid, StampAt(70), {1, 2}, "", "to", 100);
  Status s = f.store->Rename(kUser, "", "some", "", "to", cid, headers,
                             TombstoneAt(StampAt(70), "", "some"), Trailer(99, 'd'));
  CHECK(s.code() == Code::kInvalidArgument);
  headers = XattrHeaders(cid, StampAt(70), {1, 2}, "", "to", kMaxXattrTrailerBytes + 1);
  CHECK(f.store
            ->Rename(kUser, "", "some", "", "to", cid, headers,
                     TombstoneAt(StampAt(70), "", "some"), Trailer(kMaxXattrTrailerBytes + 1, 'e'))
            .code() == Code::kInvalidArgument);
  CHECK(ReadAll(f.UserPath(".some.1")) == before1);
  CHECK(f.store->Stat(kUser, "", "to").status().code() == Code::kNotFound);

  // A newer target wins: the copy made for it is not left behind.
  f.Put("", "newer", CidOf(3), StampAt(100), {1});
  const std::string newer = ReadAll(f.UserPath(".newer.1"));
  headers = XattrHeaders(cid, StampAt(80), {1, 2}, "", "newer", 40);
  REQUIRE(f.store
              ->Rename(kUser, "", "some", "", "newer", cid, headers,
                       TombstoneAt(StampAt(80), "", "some"), Trailer(40, 'f'))
              .ok());
  CHECK(ReadAll(f.UserPath(".newer.1")) == newer);
  CHECK(PiecesOf(f.MustStat("", "some")) == std::vector<int>{0});
  CHECK(f.StagingCount() == 0);
}

TEST_CASE("changes of the attributes keep the user's usage at the size of the files") {
  const Cid cid = CidOf(1);
  const uint64_t d1 = ContentOf(cid, 1).size(), d2 = ContentOf(cid, 2).size();
  // What the user holds at the end: pieces 1 and 2 with the longest
  // trailer under "b", the tombstone of "a". Every state before holds less.
  const uint64_t held = kPieceHeaderBytes + (kPieceHeaderBytes + d1 + kMaxXattrTrailerBytes) +
                        (kPieceHeaderBytes + d2 + kMaxXattrTrailerBytes);
  // And room for one more plain piece 1 (of 4) exactly.
  const uint64_t probe = kPieceHeaderBytes + MakeHeader(CidOf(9), StampAt(1), 1).data_size();
  StoreOptions options;
  options.quota_bytes[kUser] = held + probe;
  options.reserve_bytes = 0;
  Fixture f(options);

  // The first put counts the user; every change below is then followed.
  PutWithXattrs(f, "", "a", cid, StampAt(10), {1, 2}, Trailer(100, 'a'));
  uint64_t t = 20;
  for (const std::string& xattrs : {Trailer(300, 'b'), Trailer(300, 'b'), Trailer(40, 'c'),
                                    Trailer(40, 'd'), std::string(), Trailer(1000, 'e')}) {
    REQUIRE(f.store->SetAttr(kUser, XattrRequest(cid, StampAt(t), {1, 2}, "", "a", xattrs)).ok());
    t += 10;
  }
  const std::string last = Trailer(kMaxXattrTrailerBytes, 'f');
  REQUIRE(f.store
              ->Rename(kUser, "", "a", "", "b", cid,
                       XattrHeaders(cid, StampAt(t), {1, 2}, "", "b", last.size()),
                       TombstoneAt(StampAt(t), "", "a"), last)
              .ok());
  REQUIRE(BytesUnder(f.UserPath()) == held);
  REQUIRE(f.StagingCount() == 0);

  // Exactly `probe` bytes are left: a piece with the shortest trailer is
  // refused, the plain one fits.
  const auto probe_fits = [&](size_t xattr_bytes) {
    PieceHeader h = MakeHeader(CidOf(9), StampAt(1), 1);
    h.xattr_bytes = static_cast<uint16_t>(xattr_bytes);
    auto staged = f.store->BeginPut(kUser, "", "probe", h);
    if (!staged.ok()) CHECK(staged.status().code() == Code::kNoSpace);
    return staged.ok();
  };
  CHECK_FALSE(probe_fits(kXattrTrailerOverhead));
  CHECK(probe_fits(0));
  // A fresh count after a restart agrees.
  f.Reopen(options);
  CHECK_FALSE(probe_fits(kXattrTrailerOverhead));
  CHECK(probe_fits(0));
}

TEST_CASE("attributes that would take a user past the quota are refused, changing nothing") {
  const Cid cid = CidOf(31);
  StoreOptions probe_options;
  probe_options.reserve_bytes = 0;
  uint64_t held = 0;
  {
    Fixture f(probe_options);
    PutWithXattrs(f, "", "a", cid, StampAt(10), {1, 2}, "");
    held = BytesUnder(f.UserPath());
  }
  StoreOptions options;
  options.quota_bytes[kUser] = held + 100;  // room for 100 more bytes, not for 2 x 4 KiB
  options.reserve_bytes = 0;
  Fixture f(options);
  PutWithXattrs(f, "", "a", cid, StampAt(10), {1, 2}, "");
  const std::string before = ReadAll(fs::path(f.UserPath()) / ".a.1");
  auto big = f.store->SetAttr(
      kUser, XattrRequest(cid, StampAt(20), {1, 2}, "", "a", Trailer(kMaxXattrTrailerBytes, 'q')));
  CHECK(big.code() == Code::kNoSpace);
  CHECK(ReadAll(fs::path(f.UserPath()) / ".a.1") == before);
  CHECK(BytesUnder(f.UserPath()) == held);
  CHECK(f.StagingCount() == 0);
  // Small ones fit (2 x 40 bytes).
  CHECK(f.store->SetAttr(kUser, XattrRequest(cid, StampAt(30), {1, 2}, "", "a", Trailer(40, 'r')))
            .ok());
  CHECK(BytesUnder(f.UserPath()) == held + 80);
}

}  // namespace
}  // namespace dfs::server
