// Unit tests of shared/format/piece_header.h: the 128-byte header, file names and stamps.
#include "shared/format/piece_header.h"

#include <sys/stat.h>

#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "shared/format/xattrs.h"
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
  h.uid = 0x01020304;
  h.gid = 0xfffffffe;
  for (size_t i = 0; i < h.mac.size(); ++i) h.mac[i] = static_cast<uint8_t>(0x40 + i);
  return h;
}

Key RecordKey(uint8_t seed) {
  Key k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + 7 * i);
  return k;
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
  CHECK(At(b, 14, 2) == 0);  // xattr bytes: none
  CHECK(b.substr(16, 16) == std::string(reinterpret_cast<const char*>(h.cid.data()), 16));
  CHECK(At(b, 32, 8) == 0x1122334455667788ULL);
  CHECK(At(b, 40, 8) == 0x99aabbccddeeff00ULL);
  CHECK(At(b, 48, 8) == 1000003);
  CHECK(At(b, 56, 8) == 200000);
  CHECK(static_cast<int64_t>(At(b, 64, 8)) == -1234567890123LL);
  CHECK(At(b, 72, 4) == 0100640);
  CHECK(At(b, 76, 4) == 4096);
  CHECK(At(b, 80, 4) == 0x01020304);               // uid
  CHECK(At(b, 84, 4) == 0xfffffffe);               // gid
  CHECK(b.substr(88, 8) == std::string(8, '\0'));  // rdev: not a device
  REQUIRE(kRecordMacOffset == 96);
  CHECK(b.substr(96, 32) == std::string(reinterpret_cast<const char*>(h.mac.data()), 32));
  REQUIRE(kPieceFormatVersion == 2);
  CHECK(b.substr(4, 2) == std::string("\0\x02", 2));
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
  CHECK(d->uid == h.uid);
  CHECK(d->gid == h.gid);
  CHECK(d->mac == h.mac);
  CHECK(d->Encode() == h.Encode());
  CHECK_FALSE(d->tombstone());
  CHECK(d->sealed_size() == SealedSize(200000, 4096));

  PieceHeader t;
  t.kind = PieceKind::kTombstone;
  t.piece = 0;
  t.stamp = Stamp::Now();
  t.cid = RandomCid();
  t.uid = 1000;
  t.gid = 100;
  t.Sign(RecordKey(1), "dir/gone.txt");
  auto dt = PieceHeader::Decode(t.Encode());
  REQUIRE_MESSAGE(dt.ok(), dt.status().ToString());
  CHECK(dt->tombstone());
  CHECK(dt->stamp == t.stamp);
  CHECK(dt->cid == t.cid);
  CHECK(dt->uid == 1000);
  CHECK(dt->gid == 100);
  CHECK(dt->mac == t.mac);
  CHECK(dt->Verify(RecordKey(1), "dir/gone.txt"));
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
      {"version 1 (retired)", set(4, 1, 2)},
      {"version 3", set(4, 3, 2)},
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
      {"xattr bytes 1 (shorter than any sealed list)", set(14, 1, 2)},
      {"xattr bytes 23 (one short of n and a tag)", set(14, kXattrTrailerOverhead - 1, 2)},
      {"xattr bytes one beyond the limit", set(14, kMaxXattrTrailerBytes + 1, 2)},
      {"xattr bytes 0x8000", set(14, 0x80, 1)},
      {"rdev byte 88 set on a regular file", set(88, 1, 1)},
      {"rdev byte 95 set on a regular file", set(95, 1, 1)},
      {"all rdev bytes 88-95 set on a regular file", set(88, UINT64_MAX, 8)},
      {"file size beyond kMaxFileSize (piece size consistent)",
       [](std::string& b) {
         const uint64_t n = kMaxFileSize + 1;
         PutBE(reinterpret_cast<uint8_t*>(b.data()) + 48, n, 8);
         PutBE(reinterpret_cast<uint8_t*>(b.data()) + 56, PieceSize(n, 5, 3), 8);
       }},
      {"file size 2^64-1",
       [](std::string& b) {
         PutBE(reinterpret_cast<uint8_t*>(b.data()) + 48, UINT64_MAX, 8);
         PutBE(reinterpret_cast<uint8_t*>(b.data()) + 56, PieceSize(UINT64_MAX, 5, 3), 8);
       }},
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

TEST_CASE("keeps the length of a piece's extended attributes, within its bounds") {
  PieceHeader base = Sample();
  base.piece_size = 200001;  // piece 3 of 1000003 bytes over 5 pieces
  base.piece = 3;
  for (uint16_t n : {uint16_t{0}, static_cast<uint16_t>(kXattrTrailerOverhead), uint16_t{100},
                     static_cast<uint16_t>(kMaxXattrTrailerBytes)}) {
    CAPTURE(n);
    base.xattr_bytes = n;
    const std::string b = base.Encode();
    CHECK(At(b, 14, 2) == n);
    auto d = PieceHeader::Decode(b);
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->xattr_bytes == n);
    CHECK(d->data_size() == SealedSize(200001, base.chunk_bytes));
    CHECK(d->sealed_size() == d->data_size() + n);
  }
}

TEST_CASE("the MAC covers the length of the extended attributes") {
  const Key key = RecordKey(7);
  PieceHeader h = Sample();
  h.piece_size = 200001;
  h.piece = 3;
  h.xattr_bytes = 100;
  h.Sign(key, "a/b");
  REQUIRE(h.Verify(key, "a/b"));
  PieceHeader other = h;
  other.xattr_bytes = 101;
  CHECK_FALSE(other.Verify(key, "a/b"));
}

TEST_CASE("refuses reserved bytes in tombstones too") {
  PieceHeader t;
  t.kind = PieceKind::kTombstone;
  t.piece = 0;
  const std::string good = t.Encode();
  REQUIRE(PieceHeader::Decode(good).ok());
  for (size_t offset : {size_t{14}, size_t{15}, size_t{88}, size_t{91}, size_t{95}}) {
    CAPTURE(offset);
    std::string b = good;
    b[offset] = 1;
    auto d = PieceHeader::Decode(b);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == Code::kCorrupt);
    // Bytes 88..95 hold a device number, which only a device node may have.
    // Bytes 14-15 give the length of extended attributes, which only a
    // piece may have.
    CHECK(d.status().message() == (offset < 88 ? "extended attributes on a tombstone or folder"
                                               : "device number on a record that is no device"));
  }
}

TEST_CASE("keeps the file type in the mode, a device number, and folder records") {
  struct Case {
    PieceKind kind;
    uint32_t mode;
    uint64_t rdev;
    bool ok;
  };
  const Case cases[] = {
      {PieceKind::kPiece, 0644, 0, true},  // older records: no type is a regular file
      {PieceKind::kPiece, S_IFREG | 04755, 0, true},
      {PieceKind::kPiece, S_IFLNK | 0777, 0, true},
      {PieceKind::kPiece, S_IFIFO | 0600, 0, true},
      {PieceKind::kPiece, S_IFSOCK | 0755, 0, true},
      {PieceKind::kPiece, S_IFCHR | 0600, 0x0103, true},
      {PieceKind::kPiece, S_IFBLK | 0600, 0x0801, true},
      {PieceKind::kPiece, S_IFDIR | 0755, 0, false},  // a folder has a record of its own kind
      {PieceKind::kPiece, 0170000 | 0644, 0, false},  // no such type
      {PieceKind::kPiece, S_IFREG | 0644, 7, false},  // a device number on a regular file
      {PieceKind::kPiece, 0200000 | 0644, 0, false},  // bits beyond st_mode
      {PieceKind::kFolder, S_IFDIR | 01777, 0, true},
      {PieceKind::kFolder, S_IFREG | 0755, 0, false},
      {PieceKind::kFolder, 0755, 0, false},
  };
  for (const Case& c : cases) {
    CAPTURE(static_cast<int>(c.kind));
    CAPTURE(c.mode);
    CAPTURE(c.rdev);
    PieceHeader h;
    h.kind = c.kind;
    h.piece = c.kind == PieceKind::kPiece ? 1 : 0;
    h.mode = c.mode;
    h.rdev = c.rdev;
    h.uid = 1234;
    h.gid = 5678;
    auto d = PieceHeader::Decode(h.Encode());
    CHECK(d.ok() == c.ok);
    if (!d.ok()) continue;
    CHECK(d->mode == c.mode);
    CHECK(d->rdev == c.rdev);
    CHECK(d->uid == 1234);
    CHECK(d->gid == 5678);
    CHECK(d->folder() == (c.kind == PieceKind::kFolder));
    CHECK(d->record_only() == (c.kind != PieceKind::kPiece));
    if (c.kind == PieceKind::kPiece)
      CHECK(d->file_type() == ((c.mode & S_IFMT) ? c.mode & S_IFMT : S_IFREG));
  }
  PieceHeader folder;
  folder.kind = PieceKind::kFolder;
  folder.mode = S_IFDIR | 0755;
  folder.piece = 1;
  CHECK_FALSE(PieceHeader::Decode(folder.Encode()).ok());  // a folder record has no piece
}

TEST_CASE("accepts a file of exactly kMaxFileSize and names the limit beyond it") {
  PieceHeader h;
  h.piece = 1;
  h.file_size = kMaxFileSize;
  h.piece_size = PieceSize(kMaxFileSize, 4, 1);
  CHECK(PieceHeader::Decode(h.Encode()).ok());
  h.file_size = kMaxFileSize + 4;
  h.piece_size = PieceSize(h.file_size, 4, 1);
  auto d = PieceHeader::Decode(h.Encode());
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().code() == Code::kCorrupt);
  CHECK(d.status().message().find("beyond the limit") != std::string::npos);
}

TEST_CASE("signs a header for its path and verifies it there only") {
  PieceHeader h = Sample();
  h.mac = Key{};
  CHECK_FALSE(h.Verify(RecordKey(1), "docs/report.pdf"));  // unsigned
  h.Sign(RecordKey(1), "docs/report.pdf");
  CHECK(h.mac != Key{});
  CHECK(h.Verify(RecordKey(1), "docs/report.pdf"));

  // Signing is deterministic and touches nothing but the MAC.
  PieceHeader again = Sample();
  again.Sign(RecordKey(1), "docs/report.pdf");
  CHECK(again.mac == h.mac);
  CHECK(again.Encode().substr(0, kRecordMacOffset) ==
        Sample().Encode().substr(0, kRecordMacOffset));

  // It survives the wire and the disk.
  auto decoded = PieceHeader::Decode(h.Encode());
  REQUIRE(decoded.ok());
  CHECK(decoded->Verify(RecordKey(1), "docs/report.pdf"));

  // Another path: another name, folder, a prefix or extension of it.
  for (std::string_view other :
       {"docs/report.pd", "docs/report.pdf2", "report.pdf", "docs", "other/report.pdf",
        "docs/report.pdf/", "/docs/report.pdf", "docsreport.pdf", "", "Docs/report.pdf"}) {
    CAPTURE(other);
    CHECK_FALSE(h.Verify(RecordKey(1), other));
  }
  // Another key (another user's, or a forger's).
  CHECK_FALSE(h.Verify(RecordKey(2), "docs/report.pdf"));
  CHECK_FALSE(h.Verify(Key{}, "docs/report.pdf"));
  // A flipped MAC bit.
  for (size_t i : {size_t{0}, size_t{17}, size_t{31}}) {
    PieceHeader bad = h;
    bad.mac[i] ^= 0x01;
    CHECK_FALSE(bad.Verify(RecordKey(1), "docs/report.pdf"));
  }
}

TEST_CASE("a signature fails after any single field changes") {
  const Key key = RecordKey(9);
  const std::string path = "a/b.txt";
  PieceHeader base = Sample();
  base.Sign(key, path);
  REQUIRE(base.Verify(key, path));
  struct Case {
    std::string_view what;
    std::function<void(PieceHeader&)> edit;
  };
  const Case cases[] = {
      {"kind", [](PieceHeader& h) { h.kind = PieceKind::kTombstone; }},
      {"servers", [](PieceHeader& h) { h.servers = 6; }},
      {"copies", [](PieceHeader& h) { h.copies = 2; }},
      {"piece index", [](PieceHeader& h) { h.piece = 3; }},
      {"x", [](PieceHeader& h) { h.x = 1; }},
      {"cid", [](PieceHeader& h) { h.cid[15] ^= 1; }},
      {"stamp time", [](PieceHeader& h) { h.stamp.time_ns += 1; }},
      {"stamp tiebreak", [](PieceHeader& h) { h.stamp.random ^= 1; }},
      {"file size", [](PieceHeader& h) { h.file_size += 1; }},
      {"piece size", [](PieceHeader& h) { h.piece_size -= 1; }},
      {"mtime", [](PieceHeader& h) { h.mtime_ns += 1; }},
      {"mode", [](PieceHeader& h) { h.mode = 0100644; }},
      {"chunk size", [](PieceHeader& h) { h.chunk_bytes = 8192; }},
      {"uid", [](PieceHeader& h) { h.uid = 0; }},
      {"gid", [](PieceHeader& h) { h.gid = 0; }},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    PieceHeader h = base;
    c.edit(h);
    CHECK(h.Encode() != base.Encode());
    CHECK_FALSE(h.Verify(key, path));
  }
  // Every stored byte before the MAC is covered, reserved ones included: a
  // flipped bit either makes the header undecodable or fails the MAC.
  const std::string good = base.Encode();
  for (size_t i = 0; i < kRecordMacOffset; ++i) {
    CAPTURE(i);
    std::string b = good;
    b[i] = static_cast<char>(b[i] ^ 0x01);
    auto d = PieceHeader::Decode(b);
    if (d.ok()) CHECK_FALSE(d->Verify(key, path));
  }
}

TEST_CASE("binds a tombstone to its path and stamp") {
  PieceHeader t;
  t.kind = PieceKind::kTombstone;
  t.piece = 0;
  t.stamp = {100, 1};
  t.Sign(RecordKey(3), "gone");
  CHECK(t.Verify(RecordKey(3), "gone"));
  CHECK_FALSE(t.Verify(RecordKey(3), "kept"));
  PieceHeader newer = t;
  newer.stamp.time_ns = 200;  // a server cannot make a tombstone newer
  CHECK_FALSE(newer.Verify(RecordKey(3), "gone"));
  // A piece header with the tombstone's MAC does not pass either.
  PieceHeader piece = Sample();
  piece.mac = t.mac;
  CHECK_FALSE(piece.Verify(RecordKey(3), "gone"));
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
