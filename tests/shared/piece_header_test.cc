// Unit tests of shared/format/piece_header.h: the 128-byte header, file names and stamps.
#include "shared/format/piece_header.h"

#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "shared/util/coding.h"
#include "shared/util/names.h"

namespace dfs {
namespace {

// A piece header with every field set to a distinct value.
PieceHeader Sample() {
  PieceHeader h;
  h.kind = PieceKind::kPiece;
  h.scheme = SchemeId::kReplicatedRotation;
  h.servers = 5;
  h.copies = 3;
  h.piece = 4;
  h.x = 2;
  for (size_t i = 0; i < h.cid.size(); ++i) h.cid[i] = static_cast<uint8_t>(0xa0 + i);
  h.stamp = {0x1122334455667788ULL, 0x99aabbccddeeff00ULL};
  h.file_size = 1000003;  // 200001 per piece, the first 3 one more
  h.piece_size = 200000;
  h.mtime_ns = -1234567890123LL;
  h.mode = 0100640;
  h.chunk_bytes = 4096;
  return h;
}

uint64_t At(const std::string& bytes, size_t offset, int width) {
  return GetBE(reinterpret_cast<const uint8_t*>(bytes.data()) + offset, width);
}

TEST_CASE("encodes exactly 128 bytes at the documented offsets") {
  const PieceHeader h = Sample();
  const std::string b = h.Encode();
  REQUIRE(b.size() == kPieceHeaderBytes);
  REQUIRE(kPieceHeaderBytes == 128);
  CHECK(b.substr(0, 4) == "DFSp");
  CHECK(At(b, 4, 2) == kPieceFormatVersion);
  CHECK(At(b, 6, 2) == 128);
  CHECK(At(b, 8, 1) == 1);   // kind: piece
  CHECK(At(b, 9, 1) == 1);   // scheme: replicated rotation
  CHECK(At(b, 10, 1) == 5);  // servers
  CHECK(At(b, 11, 1) == 3);  // copies
  CHECK(At(b, 12, 1) == 4);  // piece index
  CHECK(At(b, 13, 1) == 2);  // x
  CHECK(At(b, 14, 2) == 0);  // reserved
  CHECK(b.substr(16, 16) == std::string(reinterpret_cast<const char*>(h.cid.data()), 16));
  CHECK(At(b, 32, 8) == 0x1122334455667788ULL);
  CHECK(At(b, 40, 8) == 0x99aabbccddeeff00ULL);
  CHECK(At(b, 48, 8) == 1000003);
  CHECK(At(b, 56, 8) == 200000);
  CHECK(static_cast<int64_t>(At(b, 64, 8)) == -1234567890123LL);
  CHECK(At(b, 72, 4) == 0100640);
  CHECK(At(b, 76, 4) == 4096);
  CHECK(b.substr(80) == std::string(48, '\0'));
}

TEST_CASE("round-trips every field of a piece and a tombstone") {
  const PieceHeader h = Sample();
  auto d = PieceHeader::Decode(h.Encode());
  REQUIRE_MESSAGE(d.ok(), d.status().ToString());
  CHECK(d->kind == h.kind);
  CHECK(d->scheme == h.scheme);
  CHECK(d->servers == h.servers);
  CHECK(d->copies == h.copies);
  CHECK(d->piece == h.piece);
  CHECK(d->x == h.x);
  CHECK(d->cid == h.cid);
  CHECK(d->stamp == h.stamp);
  CHECK(d->file_size == h.file_size);
  CHECK(d->piece_size == h.piece_size);
  CHECK(d->mtime_ns == h.mtime_ns);
  CHECK(d->mode == h.mode);
  CHECK(d->chunk_bytes == h.chunk_bytes);
  CHECK(d->Encode() == h.Encode());
  CHECK_FALSE(d->tombstone());
  CHECK(d->sealed_size() == SealedSize(200000, 4096));

  PieceHeader t;
  t.kind = PieceKind::kTombstone;
  t.piece = 0;
  t.stamp = Stamp::Now();
  t.cid = RandomCid();
  auto dt = PieceHeader::Decode(t.Encode());
  REQUIRE_MESSAGE(dt.ok(), dt.status().ToString());
  CHECK(dt->tombstone());
  CHECK(dt->stamp == t.stamp);
  CHECK(dt->cid == t.cid);
  CHECK(dt->sealed_size() == 0);
}

TEST_CASE("decodes the first 128 bytes of a longer input") {
  const std::string b = Sample().Encode() + "sealed data follows";
  auto d = PieceHeader::Decode(b);
  REQUIRE(d.ok());
  CHECK(d->piece == 4);
}

TEST_CASE("accepts an empty file's pieces and every piece of the default scheme") {
  for (uint64_t n : {0, 1, 5, 1000}) {
    for (uint8_t k = 1; k <= 4; ++k) {
      PieceHeader h;
      h.piece = k;
      h.file_size = n;
      h.piece_size = PieceSize(n, 4, k);
      CAPTURE(n);
      CAPTURE(int{k});
      CHECK(PieceHeader::Decode(h.Encode()).ok());
    }
  }
}

TEST_CASE("refuses a corrupt or inconsistent header with kCorrupt") {
  struct Case {
    std::string_view what;
    std::function<void(std::string&)> edit;  // applied to an encoded valid header
  };
  auto set = [](size_t offset, uint64_t v, int width) {
    return [=](std::string& b) { PutBE(reinterpret_cast<uint8_t*>(b.data()) + offset, v, width); };
  };
  const Case cases[] = {
      {"bad magic", [](std::string& b) { b[0] = 'X'; }},
      {"lower-case magic", [](std::string& b) { b[3] = 'P'; }},
      {"version 0", set(4, 0, 2)},
      {"version 2", set(4, 2, 2)},
      {"header length 127", set(6, 127, 2)},
      {"kind 0", set(8, 0, 1)},
      {"kind 3", set(8, 3, 1)},
      {"scheme 0", set(9, 0, 1)},
      {"scheme 2", set(9, 2, 1)},
      {"zero servers", set(10, 0, 1)},
      {"65 servers", set(10, 65, 1)},
      {"zero copies", set(11, 0, 1)},
      {"more copies than servers", set(11, 6, 1)},
      {"piece index 0 for a piece", set(12, 0, 1)},
      {"piece index beyond the servers", set(12, 6, 1)},
      {"x equal to the servers", set(13, 5, 1)},
      {"x beyond the servers", set(13, 200, 1)},
      {"piece size one byte short", set(56, 199999, 8)},
      {"piece size one byte long", set(56, 200002, 8)},
      {"file size inconsistent with the piece size", set(48, 2000000, 8)},
      {"chunk size 0", set(76, 0, 4)},
      {"chunk size over 16 MiB", set(76, (16u << 20) + 1, 4)},
      {"a tombstone with a piece index",
       [](std::string& b) {
         b[8] = 2;  // kind tombstone, piece index still 4
       }},
  };
  PieceHeader base = Sample();
  base.piece_size = 200001;  // piece 3 of 1000003 bytes over 5 pieces
  base.piece = 3;
  const std::string good = base.Encode();
  REQUIRE_MESSAGE(PieceHeader::Decode(good).ok(), PieceHeader::Decode(good).status().ToString());
  for (const Case& c : cases) {
    CAPTURE(c.what);
    std::string b = good;
    c.edit(b);
    auto d = PieceHeader::Decode(b);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == Code::kCorrupt);
  }
  for (size_t len : {size_t{0}, size_t{1}, size_t{16}, size_t{127}}) {
    CAPTURE(len);
    auto d = PieceHeader::Decode(good.substr(0, len));
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == Code::kCorrupt);
  }
}

TEST_CASE("names piece files .NAME.K and parses them back") {
  struct Case {
    std::string name;
    int piece;
    std::string_view file;
  };
  const Case cases[] = {
      {"1.txt", 2, ".1.txt.2"},     {"a", 0, ".a.0"},
      {"a", 99, ".a.99"},           {"my.file.txt", 3, ".my.file.txt.3"},
      {".hidden", 1, "..hidden.1"}, {"x.12", 4, ".x.12.4"},
      {"sp ace", 10, ".sp ace.10"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    CHECK(PieceFileName(c.name, c.piece) == c.file);
    std::string name;
    int piece = -1;
    REQUIRE(ParsePieceFileName(c.file, &name, &piece));
    CHECK(name == c.name);
    CHECK(piece == c.piece);
  }
  // The longest valid name still fits in 255 bytes with a two-digit piece.
  const std::string longest(kMaxNameBytes, 'n');
  const std::string file = PieceFileName(longest, 42);
  CHECK(file.size() <= 255);
  std::string name;
  int piece = -1;
  REQUIRE(ParsePieceFileName(file, &name, &piece));
  CHECK(name == longest);
  CHECK(piece == 42);
}

TEST_CASE("refuses anything that is not a piece file name") {
  const std::string cases[] = {
      "",
      "x.1",
      ".1",
      "..1",
      ".a.",
      ".a.b",
      ".a.007",
      ".a.123",
      "..12",
      ".a.-1",
      ".a.01",
      ".a.1x",
      ".a.x1",
      "a.1",
      "...1",
      "....1",
      ".a/b.1",
      ".a.+1",
      ".a. 1",
      "..",
      ".",
      ".a",
      std::string(".a\0b.1", 6),
      "." + std::string(kMaxNameBytes + 1, 'n') + ".1",
  };
  for (const std::string& file : cases) {
    CAPTURE(file);
    std::string name = "untouched";
    int piece = -7;
    CHECK_FALSE(ParsePieceFileName(file, &name, &piece));
    CHECK(name == "untouched");
    CHECK(piece == -7);
  }
}

TEST_CASE("orders stamps by time first, then by the random tiebreak") {
  struct Case {
    Stamp older;
    Stamp newer;
  };
  const Case cases[] = {
      {{1, 0}, {2, 0}},
      {{1, 999}, {2, 0}},
      {{5, 1}, {5, 2}},
      {{0, UINT64_MAX}, {1, 0}},
      {{UINT64_MAX - 1, UINT64_MAX}, {UINT64_MAX, 0}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.older.ToString());
    CAPTURE(c.newer.ToString());
    CHECK(c.older < c.newer);
    CHECK(c.newer > c.older);
    CHECK(c.older != c.newer);
  }
  CHECK(Stamp{3, 4} == Stamp{3, 4});
  CHECK_FALSE(Stamp{3, 4} < Stamp{3, 4});
}

TEST_CASE("makes a new stamp from the clock with a random tiebreak") {
  const Stamp a = Stamp::Now();
  const Stamp b = Stamp::Now();
  CHECK(a.time_ns > 1600000000ULL * 1000000000ULL);  // after 2020
  CHECK(b.time_ns >= a.time_ns);
  CHECK(a != b);
}

}  // namespace
}  // namespace dfs
