// Unit tests of shared/protocol/messages.h: every message body, and hostile bodies.
#include "shared/protocol/messages.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

// Tracks the largest single allocation, to show that a hostile element count
// is refused before anything is allocated for it.
namespace {
std::atomic<size_t> g_largest_allocation{0};
}  // namespace

// Out of line, so the compiler does not pair a visible malloc with delete.
[[gnu::noinline]] void* operator new(size_t n) {
  size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n)) {
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace dfs {
namespace {

Key KeyOf(uint8_t seed) {
  Key k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + i);
  return k;
}
Cid CidOf(uint8_t seed) {
  Cid c;
  for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>(seed * 3 + i);
  return c;
}

PieceHeader HeaderOf(uint8_t piece, uint64_t file_size) {
  PieceHeader h;
  h.piece = piece;
  h.x = 3;
  h.cid = CidOf(piece);
  h.stamp = {1700000000000000000ULL + piece, 42u + piece};
  h.file_size = file_size;
  h.piece_size = PieceSize(file_size, 4, piece);
  h.mtime_ns = -5;
  h.mode = 0600;
  h.chunk_bytes = 1024;
  return h;
}
PieceHeader Tombstone() {
  PieceHeader h;
  h.kind = PieceKind::kTombstone;
  h.cid = CidOf(9);
  h.stamp = {1800000000000000000ULL, 7};
  return h;
}
// The record key of these tests; the protocol never checks MACs, clients do.
const Key kRecordKey = KeyOf(0x70);
PieceHeader Signed(PieceHeader h, std::string_view path) {
  h.Sign(kRecordKey, path);
  return h;
}

template <typename T>
T RoundTrip(const T& msg, size_t expected_size) {
  const std::string wire = EncodeMessage(msg);
  CHECK(wire.size() == expected_size);
  auto back = DecodeMessage<T>(wire);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(EncodeMessage(*back) == wire);
  return std::move(back).value();
}

void CheckSameHeader(const PieceHeader& a, const PieceHeader& b) {
  CHECK(a.Encode() == b.Encode());
}

TEST_CASE("round-trips the authentication messages") {
  HelloRequest hello{"Alice", KeyOf(1)};
  auto h = RoundTrip(hello, 2 + 5 + 32);
  CHECK(h.user == "Alice");
  CHECK(h.client_nonce == KeyOf(1));

  Challenge challenge = RoundTrip(Challenge{KeyOf(2), "DFS1"}, 32 + 2 + 4);
  CHECK(challenge.server_nonce == KeyOf(2));
  CHECK(challenge.server_name == "DFS1");
  CHECK(RoundTrip(Challenge{KeyOf(2), ""}, 32 + 2).server_name.empty());
  // The nonce comes first, then the name.
  const std::string wire = EncodeMessage(Challenge{KeyOf(5), "S"});
  CHECK(wire.substr(0, 32) == std::string(reinterpret_cast<const char*>(KeyOf(5).data()), 32));
  CHECK(wire.substr(32) == std::string("\0\1S", 3));
  CHECK(RoundTrip(ProofRequest{KeyOf(3)}, 32).proof == KeyOf(3));
  CHECK(RoundTrip(AuthOk{KeyOf(4)}, 32).server_proof == KeyOf(4));
  RoundTrip(Empty{}, 0);
}

TEST_CASE("lays out a message body in wire order, big-endian") {
  CommitRequest c;
  c.dir = "d";
  c.name = "nm";
  c.cid = CidOf(1);
  c.stamp = {0x0102030405060708ULL, 0x1112131415161718ULL};
  std::string want = std::string("\0\1d\0\2nm", 7);
  want.append(reinterpret_cast<const char*>(c.cid.data()), 16);
  want += "\x01\x02\x03\x04\x05\x06\x07\x08\x11\x12\x13\x14\x15\x16\x17\x18";
  CHECK(EncodeMessage(c) == want);
}

TEST_CASE("round-trips a ListReply with directories, pieces and tombstones") {
  ListReply r;
  r.more = true;
  r.entries.push_back({"sub dir", true, {}, 3});
  r.entries.push_back({"1.txt", false, HeaderOf(2, 1001)});
  r.entries.push_back({"gone.txt", false, Tombstone()});
  r.entries.push_back({"\xc3\xa9t\xc3\xa9", true, {}});
  // A folder's entry carries its subfolder count, a file's its header.
  const size_t size =
      1 + 4 + (2 + 7 + 1 + 4) + (2 + 5 + 1 + 128) + (2 + 8 + 1 + 128) + (2 + 5 + 1 + 4);
  ListReply back = RoundTrip(r, size);
  CHECK(back.more);
  REQUIRE(back.entries.size() == 4);
  CHECK(back.entries[0].name == "sub dir");
  CHECK(back.entries[0].is_dir);
  CHECK(back.entries[0].subdirs == 3);
  CHECK(back.entries[1].name == "1.txt");
  CHECK_FALSE(back.entries[1].is_dir);
  CheckSameHeader(back.entries[1].header, r.entries[1].header);
  CHECK(back.entries[2].header.tombstone());
  CheckSameHeader(back.entries[2].header, r.entries[2].header);
  CHECK(back.entries[3].name == r.entries[3].name);

  ListReply empty;
  ListReply empty_back = RoundTrip(empty, 5);
  CHECK_FALSE(empty_back.more);
  CHECK(empty_back.entries.empty());

  CHECK(RoundTrip(ListRequest{"a/b"}, 2 + 3).dir == "a/b");
}

TEST_CASE("round-trips a StageRequest with the headers of two pieces") {
  StageRequest req{"docs", "a.txt", {HeaderOf(2, 10), HeaderOf(3, 10)}};
  StageRequest back = RoundTrip(req, 2 + 4 + 2 + 5 + 4 + 2 * 128);
  CHECK(back.dir == "docs");
  CHECK(back.name == "a.txt");
  REQUIRE(back.headers.size() == 2);
  for (size_t i = 0; i < 2; ++i) CheckSameHeader(back.headers[i], req.headers[i]);
}

TEST_CASE("round-trips StatRequest and a StatReply with several headers") {
  auto sr = RoundTrip(StatRequest{"dir", "f", 4096}, 2 + 3 + 2 + 1 + 4);
  CHECK(sr.dir == "dir");
  CHECK(sr.name == "f");
  CHECK(sr.inline_max == 4096);

  StatReply r;
  r.is_dir = false;
  r.pieces = {HeaderOf(1, 10), HeaderOf(4, 10), Tombstone()};
  r.inline_piece = 4;
  r.inline_data = "sealed";
  StatReply back = RoundTrip(r, 1 + 4 + 4 + 3 * 128 + 1 + 2 + 6);
  CHECK_FALSE(back.is_dir);
  REQUIRE(back.pieces.size() == 3);
  for (size_t i = 0; i < 3; ++i) CheckSameHeader(back.pieces[i], r.pieces[i]);
  CHECK(back.inline_piece == 4);
  CHECK(back.inline_data == "sealed");

  StatReply dir;
  dir.is_dir = true;
  dir.subdirs = 2;
  StatReply dir_back = RoundTrip(dir, 1 + 4 + 4 + 1 + 2);
  CHECK(dir_back.is_dir);
  CHECK(dir_back.subdirs == 2);
  CHECK(dir_back.pieces.empty());
}

TEST_CASE("round-trips a FolderRequest with its record") {
  PieceHeader record;
  record.kind = PieceKind::kFolder;
  record.mode = 040750;
  record.uid = 1000;
  record.gid = 100;
  record = Signed(record, "a/b");
  FolderRequest req{"a/b", true, record};
  FolderRequest back = RoundTrip(req, 2 + 3 + 1 + 128);
  CHECK(back.path == "a/b");
  CHECK(back.create);
  CheckSameHeader(back.record, record);
  CHECK(back.record.folder());
}

TEST_CASE("round-trips the put, commit, abort and get messages") {
  PutBeginRequest p{"a", "b.txt", HeaderOf(3, 99)};
  auto pb = RoundTrip(p, 2 + 1 + 2 + 5 + 128);
  CHECK(pb.dir == "a");
  CHECK(pb.name == "b.txt");
  CheckSameHeader(pb.header, p.header);

  CommitRequest c{"", "n", CidOf(5), {11, 12}};
  auto cb = RoundTrip(c, 2 + 0 + 2 + 1 + 16 + 16);
  CHECK(cb.dir.empty());
  CHECK(cb.name == "n");
  CHECK(cb.cid == CidOf(5));
  CHECK(cb.stamp == Stamp{11, 12});

  CommitReply cr;
  cr.committed = {1, 3, 4};
  CHECK(RoundTrip(cr, 4 + 3).committed == std::vector<uint8_t>{1, 3, 4});

  CHECK(RoundTrip(AbortRequest{CidOf(6)}, 16).cid == CidOf(6));

  GetRequest g{"d", "f", 2, CidOf(7), 0xffffffffffULL, 65552};
  auto gb = RoundTrip(g, 2 + 1 + 2 + 1 + 1 + 16 + 8 + 8);
  CHECK(gb.dir == "d");
  CHECK(gb.name == "f");
  CHECK(gb.piece == 2);
  CHECK(gb.cid == CidOf(7));
  CHECK(gb.offset == 0xffffffffffULL);
  CHECK(gb.length == 65552);

  GetReply gr{HeaderOf(2, 5000), 100, 200};
  auto grb = RoundTrip(gr, 128 + 8 + 8);
  CheckSameHeader(grb.header, gr.header);
  CHECK(grb.offset == 100);
  CHECK(grb.length == 200);
}

TEST_CASE("round-trips the namespace messages") {
  const PieceHeader tomb = Signed(Tombstone(), "x/y");
  auto d = RoundTrip(DeleteRequest{"x", "y", tomb}, 2 + 1 + 2 + 1 + 128);
  CHECK(d.dir == "x");
  CHECK(d.name == "y");
  CheckSameHeader(d.tombstone, tomb);
  CHECK(d.tombstone.tombstone());
  CHECK(d.tombstone.Verify(kRecordKey, "x/y"));  // the MAC crosses the wire intact

  CHECK(RoundTrip(PathRequest{"a/b/c"}, 2 + 5).path == "a/b/c");

  RenameRequest rename;
  rename.from_dir = "fd";
  rename.from_name = "fn";
  rename.to_dir = "td";
  rename.to_name = "tn";
  rename.cid = CidOf(11);
  for (uint8_t k = 1; k <= 4; ++k) rename.headers.push_back(Signed(HeaderOf(k, 1001), "td/tn"));
  rename.tombstone = Signed(Tombstone(), "fd/fn");
  auto r = RoundTrip(rename, 4 * (2 + 2) + 16 + 4 + 4 * 128 + 128 + 2);
  CHECK(r.from_dir == "fd");
  CHECK(r.from_name == "fn");
  CHECK(r.to_dir == "td");
  CHECK(r.to_name == "tn");
  CHECK(r.cid == CidOf(11));
  REQUIRE(r.headers.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CheckSameHeader(r.headers[i], rename.headers[i]);
    CHECK(r.headers[i].piece == i + 1);
    CHECK(r.headers[i].Verify(kRecordKey, "td/tn"));
  }
  CheckSameHeader(r.tombstone, rename.tombstone);
  CHECK(r.tombstone.Verify(kRecordKey, "fd/fn"));
  // A rename that moves no piece here still carries its tombstone.
  rename.headers.clear();
  CHECK(RoundTrip(rename, 4 * (2 + 2) + 16 + 4 + 128 + 2).headers.empty());
  // With extended attributes: their sealed bytes follow the tombstone.
  rename.xattrs = std::string(40, 'x');
  CHECK(RoundTrip(rename, 4 * (2 + 2) + 16 + 4 + 128 + 2 + 40).xattrs == rename.xattrs);

  SetAttrRequest set{"d", "n", CidOf(8), {}};
  PieceHeader changed = HeaderOf(2, 5000);
  changed.mode = 0755;
  changed.mtime_ns = -1;
  changed.uid = 1000;
  changed.gid = 100;
  set.headers = {Signed(changed, "d/n"), Signed(HeaderOf(3, 5000), "d/n")};
  set.xattrs = std::string("\x00\x01xattrs", 8);
  auto sb = RoundTrip(set, 2 + 1 + 2 + 1 + 16 + 4 + 2 * 128 + 2 + 8);
  CHECK(sb.xattrs == set.xattrs);
  CHECK(sb.dir == "d");
  CHECK(sb.name == "n");
  CHECK(sb.cid == CidOf(8));
  REQUIRE(sb.headers.size() == 2);
  CHECK(sb.headers[0].mode == 0755);
  CHECK(sb.headers[0].mtime_ns == -1);
  CHECK(sb.headers[0].uid == 1000);
  CHECK(sb.headers[0].gid == 100);
  CHECK(sb.headers[0].Verify(kRecordKey, "d/n"));
  CheckSameHeader(sb.headers[1], set.headers[1]);

  PurgeRequest pr{"d", "n", CidOf(10), {7, 8}, true, {2, 3}};
  auto pb = RoundTrip(pr, 2 + 1 + 2 + 1 + 16 + 16 + 1 + 4 + 2);
  CHECK(pb.dir == "d");
  CHECK(pb.name == "n");
  CHECK(pb.keep_cid == CidOf(10));
  CHECK(pb.keep == Stamp{7, 8});
  CHECK(pb.drop_tombstone);
  CHECK(pb.drop_pieces == std::vector<uint8_t>{2, 3});
}

TEST_CASE("round-trips the hint messages") {
  Hint h{"DFS2", "a/b.txt", {5, 6}, KeyOf(0x33)};
  auto hb = RoundTrip(h, 2 + 4 + 2 + 7 + 16 + 32);
  CHECK(hb.target == "DFS2");
  CHECK(hb.path == "a/b.txt");
  CHECK(hb.stamp == Stamp{5, 6});
  CHECK(hb.mac == KeyOf(0x33));
  HintListRequest lr{"DFS2", "ab"};
  auto lb = RoundTrip(lr, 2 + 4 + 2 + 2);
  CHECK(lb.target == "DFS2");
  CHECK(lb.after == "ab");
  HintListReply reply{true, {h, h}};
  auto rb = RoundTrip(reply, 1 + 4 + 2 * (2 + 4 + 2 + 7 + 16 + 32));
  CHECK(rb.more);
  REQUIRE(rb.hints.size() == 2);
  CHECK(rb.hints[1].path == "a/b.txt");
  // A count of more hints than the body can hold is refused before anything is allocated.
  std::string wire = EncodeMessage(HintListReply{});
  wire[1] = 0x7f;
  CHECK(DecodeMessage<HintListReply>(wire).status().code() == Code::kProtocol);
}

TEST_CASE("round-trips StatFsReply and ErrorReply") {
  StatFsReply s{1ULL << 40, 2, 3, 4, UINT64_MAX, "0.1.0"};
  auto sb = RoundTrip(s, 40 + 2 + 5);
  CHECK(sb.version == "0.1.0");
  CHECK(sb.total_bytes == 1ULL << 40);
  CHECK(sb.free_bytes == 2);
  CHECK(sb.avail_bytes == 3);
  CHECK(sb.files == 4);
  CHECK(sb.files_free == UINT64_MAX);

  auto e = RoundTrip(ErrorReply{14, "bad chunk"}, 1 + 2 + 9);
  CHECK(e.code == 14);
  CHECK(e.message == "bad chunk");
}

// Every proper prefix and one trailing byte make the body malformed.
template <typename T>
void CheckTruncationsAndTrailingBytes(const T& msg) {
  const std::string wire = EncodeMessage(msg);
  for (size_t len = 0; len < wire.size(); ++len) {
    CAPTURE(len);
    auto r = DecodeMessage<T>(std::string_view(wire).substr(0, len));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kProtocol);
  }
  for (char extra : {'\0', 'x'}) {
    auto r = DecodeMessage<T>(wire + extra);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kProtocol);
  }
}

TEST_CASE("refuses a truncated body or a trailing byte with kProtocol") {
  SUBCASE("HelloRequest") { CheckTruncationsAndTrailingBytes(HelloRequest{"bob", KeyOf(1)}); }
  SUBCASE("ListReply") {
    ListReply r;
    r.entries = {{"d", true, {}}, {"f", false, HeaderOf(1, 3)}};
    CheckTruncationsAndTrailingBytes(r);
  }
  SUBCASE("StatReply") {
    StatReply r;
    r.pieces = {HeaderOf(2, 3)};
    CheckTruncationsAndTrailingBytes(r);
  }
  SUBCASE("CommitReply") {
    CommitReply r;
    r.committed = {1, 2};
    CheckTruncationsAndTrailingBytes(r);
  }
  SUBCASE("GetRequest") {
    CheckTruncationsAndTrailingBytes(GetRequest{"d", "n", 1, CidOf(1), 2, 3});
  }
  SUBCASE("Challenge") { CheckTruncationsAndTrailingBytes(Challenge{KeyOf(2), "DFS1"}); }
  SUBCASE("DeleteRequest") {
    CheckTruncationsAndTrailingBytes(DeleteRequest{"d", "n", Signed(Tombstone(), "d/n")});
  }
  SUBCASE("RenameRequest") {
    RenameRequest r{"a", "b", "c", "d", CidOf(1), {HeaderOf(1, 9), HeaderOf(2, 9)}, Tombstone()};
    CheckTruncationsAndTrailingBytes(r);
  }
  SUBCASE("SetAttrRequest") {
    CheckTruncationsAndTrailingBytes(SetAttrRequest{"d", "n", CidOf(1), {HeaderOf(4, 3)}});
  }
  SUBCASE("StatFsReply") { CheckTruncationsAndTrailingBytes(StatFsReply{1, 2, 3, 4, 5}); }
  SUBCASE("ErrorReply") { CheckTruncationsAndTrailingBytes(ErrorReply{3, "x"}); }
  SUBCASE("Empty") {
    auto r = DecodeMessage<Empty>("x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kProtocol);
  }
}

TEST_CASE("refuses a vector count larger than the body without allocating for it") {
  enum class Kind { kList, kStat, kSetAttr, kRename };
  struct Case {
    std::string_view what;
    std::string body;
    Kind kind;
  };
  // SetAttrRequest and RenameRequest bodies up to their header count.
  const std::string set_attr = std::string("\0\1d\0\1n", 6) + std::string(16, 'c');
  const std::string rename = std::string("\0\1a\0\1b\0\1c\0\1d", 12) + std::string(16, 'c');
  const Case cases[] = {
      {"ListReply count 2^32-1", std::string("\0\xff\xff\xff\xff", 5), Kind::kList},
      {"ListReply count 2^31 with some bytes", std::string("\0\x80\0\0\0\0\1a\1", 9), Kind::kList},
      {"StatReply count 2^32-1", std::string("\0\xff\xff\xff\xff", 5), Kind::kStat},
      {"StatReply count 1 with no header", std::string("\0\0\0\0\1", 5), Kind::kStat},
      {"StatReply count 5 with 4 bytes left", std::string("\0\0\0\0\5abcd", 9), Kind::kStat},
      {"SetAttrRequest count 2^32-1", set_attr + "\xff\xff\xff\xff", Kind::kSetAttr},
      {"SetAttrRequest count 2 with one header",
       set_attr + std::string("\0\0\0\2", 4) + HeaderOf(1, 9).Encode(), Kind::kSetAttr},
      {"RenameRequest count 2^32-1", rename + "\xff\xff\xff\xff", Kind::kRename},
      {"RenameRequest count 2^24 with a tombstone",
       rename + std::string("\1\0\0\0", 4) + Tombstone().Encode(), Kind::kRename},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    g_largest_allocation = 0;
    Status s;
    switch (c.kind) {
      case Kind::kList:
        s = DecodeMessage<ListReply>(c.body).status();
        break;
      case Kind::kStat:
        s = DecodeMessage<StatReply>(c.body).status();
        break;
      case Kind::kSetAttr:
        s = DecodeMessage<SetAttrRequest>(c.body).status();
        break;
      case Kind::kRename:
        s = DecodeMessage<RenameRequest>(c.body).status();
        break;
    }
    CHECK(g_largest_allocation.load() < 4096);
    CHECK(s.code() == Code::kProtocol);
  }
  // A count of exactly the bytes left passes the count check.
  auto r = DecodeMessage<CommitReply>(std::string("\0\0\0\3\1\2\3", 7));
  REQUIRE(r.ok());
  CHECK(r->committed == std::vector<uint8_t>{1, 2, 3});
  auto over = DecodeMessage<CommitReply>(std::string("\0\0\0\4\1\2\3", 7));
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().code() == Code::kProtocol);
}

// Found by fuzzing (tests/fuzz/regressions/messages): a count no larger than
// the bytes left, but more elements than they can hold, sized the vector
// first: 68 bytes asked for 68 ListEntry (10 KiB), a 64 KiB body for 9 MiB
// of PieceHeaders.
TEST_CASE("refuses more elements than the bytes left can hold without allocating for them") {
  const std::string junk(100, 'j');
  const std::string count = std::string("\0\0\0\x64", 4);  // 100 elements
  g_largest_allocation = 0;
  auto stat = DecodeMessage<StatReply>(std::string("\0", 1) + count + junk);
  CHECK(g_largest_allocation.load() < 4096);
  REQUIRE_FALSE(stat.ok());
  CHECK(stat.status().code() == Code::kProtocol);

  g_largest_allocation = 0;
  auto list = DecodeMessage<ListReply>(std::string("\0", 1) + count + junk);
  CHECK(g_largest_allocation.load() < 4096);
  REQUIRE_FALSE(list.ok());
  CHECK(list.status().code() == Code::kProtocol);

  // The smallest entries still fit exactly: two folders named "a" and "b".
  auto two = DecodeMessage<ListReply>(std::string("\0\0\0\0\2\0\1a\1\0\0\0\0\0\1b\1\0\0\0\0", 21));
  REQUIRE_MESSAGE(two.ok(), two.status().ToString());
  CHECK(two->entries.size() == 2);
}

TEST_CASE("refuses a bool byte other than 0 or 1") {
  for (uint8_t b : {2, 0x80, 0xff}) {
    CAPTURE(int{b});
    std::string list_more = EncodeMessage(ListReply{});
    list_more[0] = static_cast<char>(b);
    CHECK(DecodeMessage<ListReply>(list_more).status().code() == Code::kProtocol);

    ListReply one;
    one.entries = {{"d", true, {}}};
    std::string is_dir = EncodeMessage(one);
    is_dir[is_dir.size() - 5] = static_cast<char>(b);  // is_dir, before the subfolder count
    CHECK(DecodeMessage<ListReply>(is_dir).status().code() == Code::kProtocol);

    std::string drop = EncodeMessage(PurgeRequest{});
    drop[drop.size() - 5] = static_cast<char>(b);  // drop_tombstone, before the piece count
    CHECK(DecodeMessage<PurgeRequest>(drop).status().code() == Code::kProtocol);
  }
}

TEST_CASE("refuses an invalid piece header inside a message with kProtocol") {
  PutBeginRequest p{"d", "n", HeaderOf(1, 10)};
  std::string wire = EncodeMessage(p);
  REQUIRE(DecodeMessage<PutBeginRequest>(wire).ok());
  wire[2 + 1 + 2 + 1 + 12] = 9;  // piece index 9 of 4
  auto r = DecodeMessage<PutBeginRequest>(wire);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kProtocol);
  CHECK(r.status().message().find("piece index") != std::string::npos);
}

TEST_CASE("refuses a tombstone that claims extended attributes inside a message") {
  DeleteRequest del{"d", "n", Signed(Tombstone(), "d/n")};
  std::string wire = EncodeMessage(del);
  REQUIRE(DecodeMessage<DeleteRequest>(wire).ok());
  wire[2 + 1 + 2 + 1 + 15] = 30;  // header byte 15: 30 bytes of extended attributes
  auto r = DecodeMessage<DeleteRequest>(wire);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kProtocol);
  CHECK(r.status().message().find("extended attributes") != std::string::npos);
}

TEST_CASE("round-trips every error code through EncodeError and DecodeError") {
  for (int c = 1; c <= kMaxCode; ++c) {
    CAPTURE(c);
    Status in(static_cast<Code>(c), "message " + std::to_string(c));
    Status out = DecodeError(EncodeError(in));
    CHECK(out.code() == in.code());
    CHECK(out.message() == in.message());
  }
  Status empty = DecodeError(EncodeError(Status::Timeout("")));
  CHECK(empty.code() == Code::kTimeout);
  CHECK(empty.message().empty());
}

TEST_CASE("bounds the message of an error reply") {
  Status out = DecodeError(EncodeError(Status::IoError(std::string(70000, 'm'))));
  CHECK(out.code() == Code::kIoError);
  CHECK(out.message() == std::string(4096, 'm'));
}

TEST_CASE("refuses an error reply with code 0, a code beyond kMaxCode or a bad body") {
  struct Case {
    std::string_view what;
    std::string body;
  };
  const Case cases[] = {
      {"code 0", EncodeMessage(ErrorReply{0, "fine"})},
      {"code kMaxCode+1", EncodeMessage(ErrorReply{kMaxCode + 1, "new"})},
      {"code 255", EncodeMessage(ErrorReply{255, ""})},
      {"an OK status", EncodeError(Status::Ok())},
      {"empty body", ""},
      {"message longer than the body", std::string("\x01\x00\x05"
                                                   "ab",
                                                   5)},
      {"trailing byte", EncodeMessage(ErrorReply{1, "x"}) + "!"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CHECK(DecodeError(c.body).code() == Code::kProtocol);
  }
}

}  // namespace
}  // namespace dfs
