// Unit tests of version resolution: which record of a name wins, which
// servers can serve each piece, and which records are not trusted at all.
#include "fuse_client/client/version.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace dfs::client {
namespace {

const Scheme kScheme{4, 2, SchemeId::kReplicatedRotation};

TEST_CASE("ServerSet keeps each server once and reads like a sorted vector") {
  ServerSet s;
  CHECK(s.empty());
  CHECK(s.size() == 0);
  CHECK(s.begin() == s.end());
  s.push_back(3);
  s.push_back(0);
  s.push_back(3);  // already in: no change
  s.push_back(63);
  CHECK(s.size() == 3);
  CHECK(s.front() == 0);
  CHECK(s[0] == 0);
  CHECK(s[1] == 3);
  CHECK(s[2] == 63);
  CHECK(std::vector<int>(s.begin(), s.end()) == std::vector<int>{0, 3, 63});
  CHECK(s.contains(63));
  CHECK_FALSE(s.contains(1));
  CHECK(std::find(s.begin(), s.end(), 3) != s.end());
  CHECK(std::find(s.begin(), s.end(), 2) == s.end());
  CHECK(s == ServerSet{63, 3, 0});
  CHECK_FALSE(s == ServerSet{0, 3});
  s.erase_if([](int server) { return server >= 3; });
  CHECK(s == ServerSet{0});
  s.erase_if([](int) { return true; });
  CHECK(s.empty());
  static_assert(sizeof(ServerSet) == 8);
}

TEST_CASE("Boxed is an optional on the heap: copies are deep, assignments follow optional") {
  Boxed<PieceHeader> a;
  CHECK_FALSE(a);
  a.emplace();
  a->mode = 0755;
  Boxed<PieceHeader> b = a;  // a copy of its own
  b->mode = 0700;
  CHECK(a->mode == 0755);
  CHECK(b->mode == 0700);
  b = std::optional<PieceHeader>();
  CHECK_FALSE(b.has_value());
  std::optional<PieceHeader> h = PieceHeader{};
  h->uid = 42;
  b = h;
  REQUIRE(b);
  CHECK((*b).uid == 42);
  PieceHeader newer;
  newer.stamp = {5, 0};
  KeepNewest(&b, newer);
  CHECK(b->stamp.time_ns == 5);
  PieceHeader older;
  older.stamp = {3, 0};
  KeepNewest(&b, older);
  CHECK(b->stamp.time_ns == 5);
  a.reset();
  CHECK_FALSE(a);
  static_assert(sizeof(Boxed<PieceHeader>) == sizeof(void*));
}

Key RecordKey(uint8_t fill = 7) {
  Key k;
  k.fill(fill);
  return k;
}

// Piece k of content `cid_byte` with stamp `time`, signed for `path`.
PieceHeader Piece(int k, uint8_t cid_byte, uint64_t time, const std::string& path = "f") {
  PieceHeader h;
  h.piece = static_cast<uint8_t>(k);
  h.cid.fill(cid_byte);
  h.stamp = {time, 0};
  h.file_size = 100;
  h.piece_size = PieceSize(100, 4, k);
  h.uid = 1000;
  h.gid = 100;
  h.Sign(RecordKey(), path);
  return h;
}

PieceHeader Tombstone(uint64_t time, const std::string& path = "f") {
  PieceHeader h;
  h.kind = PieceKind::kTombstone;
  h.piece = 0;
  h.stamp = {time, 0};
  h.mode = 0;
  h.Sign(RecordKey(), path);
  return h;
}

FileVersion Verified(const std::vector<Observed>& seen, const std::string& dir = "",
                     const std::string& name = "f") {
  return ResolveVerified(dir, name, seen, RecordKey(), kScheme);
}

bool Holds(const FileVersion& v, int server) {
  for (const auto& holders : v.holders)
    for (int s : holders)
      if (s == server) return true;
  return false;
}

TEST_CASE("the newest stamp wins and older content is ignored") {
  std::vector<Observed> seen = {{0, Piece(1, 1, 10)}, {0, Piece(2, 1, 10)}, {1, Piece(2, 2, 20)},
                                {1, Piece(3, 2, 20)}, {2, Piece(3, 2, 20)}, {2, Piece(4, 2, 20)},
                                {3, Piece(4, 2, 20)}, {3, Piece(1, 2, 20)}};
  FileVersion v = Verified(seen);
  CHECK(v.exists);
  CHECK(v.newest.cid[0] == 2);
  CHECK(v.newest.uid == 1000);
  CHECK(v.newest.gid == 100);
  CHECK(v.complete());
  CHECK(v.holders[0] == ServerSet{3});
  CHECK(v.holders[1] == ServerSet{1});
  CHECK(v.rejected.empty());
}

TEST_CASE("a newer tombstone deletes, an older one does not") {
  CHECK_FALSE(Verified({{0, Piece(1, 1, 10)}, {1, Tombstone(11)}}).exists);
  CHECK(Verified({{0, Piece(1, 1, 10)}, {1, Tombstone(9)}}).exists);
}

TEST_CASE("a version lacking a piece on every server is incomplete and names the piece") {
  FileVersion v = Verified({{0, Piece(1, 1, 10)}, {1, Piece(2, 1, 10)}, {2, Piece(4, 1, 10)}});
  CHECK_FALSE(v.complete());
  CHECK(v.missing_pieces() == std::vector<int>{3});
}

TEST_CASE("pieces of the same content with an older stamp still serve reads") {
  // An attribute change gave DFS1 a new stamp; DFS2 missed it.
  FileVersion v = Verified({{0, Piece(1, 5, 30)}, {1, Piece(1, 5, 10)}});
  CHECK(v.newest.stamp.time_ns == 30);
  CHECK(v.holders[0] == ServerSet{0, 1});
}

TEST_CASE("nothing seen means the file does not exist") {
  CHECK_FALSE(Verified({}).exists);
  CHECK_FALSE(Verified({}).complete());
  CHECK(Verified({}).rejected.empty());
}

// ---- records that must not be trusted ----

TEST_CASE("CheckRecord accepts a record signed by this user for this path and scheme") {
  CHECK(CheckRecord(Piece(1, 1, 10, "d/f"), RecordKey(), "d/f", kScheme) == RecordCheck::kAccepted);
  CHECK(AcceptRecord(Tombstone(10, "d/f"), RecordKey(), "d/f", kScheme));
}

TEST_CASE("CheckRecord rejects records not made by this user for this path") {
  struct Case {
    const char* what;
    PieceHeader header;
    std::string path;
    Key key;
  };
  PieceHeader unsigned_header = Piece(1, 1, 10);
  unsigned_header.mac = Key{};
  PieceHeader other_user = Piece(1, 1, 10);
  other_user.Sign(RecordKey(9), "f");
  const std::vector<Case> cases = {
      {"signed for another name", Piece(1, 1, 10, "g"), "f", RecordKey()},
      {"signed for the same name in another folder", Piece(1, 1, 10, "a/f"), "b/f", RecordKey()},
      {"signed for the folder itself", Piece(1, 1, 10, "d"), "d/f", RecordKey()},
      {"a tombstone moved from another name", Tombstone(10, "g"), "f", RecordKey()},
      {"signed by another user", other_user, "f", RecordKey()},
      {"not signed at all", unsigned_header, "f", RecordKey()},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CHECK(CheckRecord(c.header, c.key, c.path, kScheme) == RecordCheck::kBadMac);
  }
}

TEST_CASE("CheckRecord rejects any field changed after signing") {
  struct Case {
    const char* what;
    void (*change)(PieceHeader&);
  };
  const std::vector<Case> cases = {
      {"stamp", [](PieceHeader& h) { h.stamp.time_ns += 1; }},
      {"stamp tiebreak", [](PieceHeader& h) { h.stamp.random ^= 1; }},
      {"cid", [](PieceHeader& h) { h.cid[3] ^= 1; }},
      {"mode", [](PieceHeader& h) { h.mode = 04755; }},
      {"mtime", [](PieceHeader& h) { h.mtime_ns += 1; }},
      {"uid", [](PieceHeader& h) { h.uid = 0; }},
      {"gid", [](PieceHeader& h) { h.gid = 0; }},
      {"piece", [](PieceHeader& h) { h.piece = 2; }},
      {"x", [](PieceHeader& h) { h.x = 3; }},
      {"file size", [](PieceHeader& h) { h.file_size = 1 << 20; }},
      {"kind", [](PieceHeader& h) { h.kind = PieceKind::kTombstone; }},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    PieceHeader h = Piece(1, 1, 10);
    c.change(h);
    CHECK(CheckRecord(h, RecordKey(), "f", kScheme) == RecordCheck::kBadMac);
  }
}

TEST_CASE("CheckRecord rejects authentic records of another scheme or with a bad piece index") {
  PieceHeader wide = Piece(1, 1, 10);
  wide.servers = 64;
  wide.piece = 64;
  wide.piece_size = PieceSize(100, 64, 64);
  wide.Sign(RecordKey(), "f");
  CHECK(CheckRecord(wide, RecordKey(), "f", kScheme) == RecordCheck::kOtherScheme);

  PieceHeader three_copies = Piece(1, 1, 10);
  three_copies.copies = 3;
  three_copies.Sign(RecordKey(), "f");
  CHECK(CheckRecord(three_copies, RecordKey(), "f", kScheme) == RecordCheck::kOtherScheme);

  PieceHeader piece_zero = Piece(1, 1, 10);
  piece_zero.piece = 0;
  piece_zero.Sign(RecordKey(), "f");
  CHECK(CheckRecord(piece_zero, RecordKey(), "f", kScheme) == RecordCheck::kBadPiece);

  PieceHeader piece_five = Piece(1, 1, 10);
  piece_five.piece = 5;
  piece_five.Sign(RecordKey(), "f");
  CHECK(CheckRecord(piece_five, RecordKey(), "f", kScheme) == RecordCheck::kBadPiece);

  PieceHeader tombstone_with_piece = Tombstone(10);
  tombstone_with_piece.piece = 1;
  tombstone_with_piece.Sign(RecordKey(), "f");
  CHECK(CheckRecord(tombstone_with_piece, RecordKey(), "f", kScheme) == RecordCheck::kBadPiece);
}

// Genuine content 1 at stamp 10, every piece on two servers (0..3).
std::vector<Observed> Genuine() {
  std::vector<Observed> seen;
  for (int k = 1; k <= 4; ++k) {
    seen.push_back({k - 1, Piece(k, 1, 10)});
    seen.push_back({k % 4, Piece(k, 1, 10)});
  }
  return seen;
}

TEST_CASE("a record signed for another path is never newest nor a holder") {
  std::vector<Observed> seen = Genuine();
  // Server 2 offers the newer content of "g" (all four pieces) as "f".
  for (int k = 1; k <= 4; ++k) seen.push_back({2, Piece(k, 9, 50, "g")});
  FileVersion v = Verified(seen);
  CHECK(v.exists);
  CHECK(v.newest.cid[0] == 1);
  CHECK(v.newest.stamp.time_ns == 10);
  CHECK(v.complete());
  REQUIRE(v.rejected.size() == 4);
  for (const auto& r : v.rejected) {
    CHECK(r.server == 2);
    CHECK(r.why == RecordCheck::kBadMac);
  }
}

TEST_CASE("a record with a forged stamp is never newest nor a holder") {
  // Server 3 replays a genuine piece of other content with a newer stamp
  // and a genuine tombstone with a newer stamp.
  PieceHeader newer = Piece(1, 9, 10);
  newer.stamp = {100, 0};
  PieceHeader late_delete = Tombstone(5);
  late_delete.stamp = {200, 0};
  std::vector<Observed> seen = {{0, Piece(1, 1, 10)}, {3, newer}, {3, late_delete}};
  FileVersion v = Verified(seen);
  CHECK(v.exists);  // the forged tombstone does not delete
  CHECK(v.newest.cid[0] == 1);
  CHECK(v.newest.stamp.time_ns == 10);
  CHECK(v.holders[0] == ServerSet{0});
  CHECK_FALSE(Holds(v, 3));
  CHECK(v.rejected.size() == 2);
}

TEST_CASE("a record claiming 64 servers is never newest nor a holder") {
  std::vector<Observed> seen = Genuine();
  PieceHeader wide = Piece(1, 1, 99);  // same content, newer stamp
  wide.servers = 64;
  wide.piece = 64;
  wide.piece_size = PieceSize(100, 64, 64);
  PieceHeader wide_signed = wide;
  wide_signed.Sign(RecordKey(), "f");
  seen.push_back({1, wide});         // forged: its MAC is for 4 servers
  seen.push_back({1, wide_signed});  // authentic, but not this client's scheme
  FileVersion v = Verified(seen);
  CHECK(v.newest.stamp.time_ns == 10);
  CHECK(v.newest.servers == 4);
  CHECK(v.pieces() == 4);
  CHECK(v.complete());
  REQUIRE(v.rejected.size() == 2);
  CHECK(v.rejected[0].why == RecordCheck::kBadMac);
  CHECK(v.rejected[1].why == RecordCheck::kOtherScheme);
}

TEST_CASE("a name with only rejected records does not exist") {
  FileVersion v = Verified({{0, Piece(1, 1, 10, "g")}, {1, Tombstone(20, "g")}});
  CHECK_FALSE(v.exists);
  CHECK(v.holders.empty());
  CHECK(v.rejected.size() == 2);
}

TEST_CASE("ScreenRecords keeps the accepted records and names who sent the others") {
  ScreenedRecords s =
      ScreenRecords({{0, Piece(1, 1, 10)}, {2, Piece(2, 1, 10, "g")}}, RecordKey(), "f", kScheme);
  REQUIRE(s.accepted.size() == 1);
  CHECK(s.accepted[0].server == 0);
  REQUIRE(s.rejected.size() == 1);
  CHECK(s.rejected[0].server == 2);
}

TEST_CASE("DescribeRejected counts records per server and reason") {
  auto name = [](int s) { return "DFS" + std::to_string(s + 1); };
  CHECK(DescribeRejected({}, name).empty());
  CHECK(DescribeRejected({{1, RecordCheck::kBadMac}}, name) ==
        "1 record on DFS2 failed authentication (ignored)");
  CHECK(DescribeRejected({{2, RecordCheck::kBadMac},
                          {0, RecordCheck::kBadMac},
                          {2, RecordCheck::kBadMac},
                          {3, RecordCheck::kOtherScheme}},
                         name) ==
        "1 record on DFS1 failed authentication (ignored); 2 records on DFS3 failed "
        "authentication (ignored); 1 record on DFS4 belongs to another server layout (ignored)");
}

}  // namespace
}  // namespace dfs::client
