// The piece file format: a fixed 128-byte header followed by the sealed
// piece (see crypto.h). A server stores piece K of file NAME as ".NAME.K" and
// a tombstone (a delete that must win over older pieces) as ".NAME.0", a
// header alone. All integers big-endian.
//
// Every header is a record only the user's clients can make: its last 32
// bytes are HMAC-SHA256 under the record key (crypto.h) over
//   "dfs record v2" || bytes 0..95 || u16 length of PATH || PATH
// where PATH is the file's path in the user's space ("a/b.txt"). So a server
// cannot forge, alter or move a header to another name (DESIGN.md "Trust
// model"); it can only withhold or replay the records of that very name.
//
//   offset size field
//     0     4  magic "DFSp"
//     4     2  format version (2)
//     6     2  header length (128)
//     8     1  kind: 1 piece, 2 tombstone
//     9     1  scheme (SchemeId; 1 = replicated rotation)
//    10     1  servers N (also the number of pieces)
//    11     1  copies C
//    12     1  piece index K (1..N; 0 for a tombstone)
//    13     1  x = MD5(plaintext) mod N
//    14     2  reserved, 0
//    16    16  content id (cid): random per upload, AEAD-bound to every chunk
//    32     8  version stamp: time in ns since the epoch
//    40     8  version stamp: random tiebreak
//    48     8  file size in plaintext bytes
//    56     8  this piece's plaintext bytes
//    64     8  mtime, ns since the epoch (signed)
//    72     4  mode (permission bits, e.g. 0644)
//    76     4  chunk size in plaintext bytes (e.g. 65536)
//    80     4  uid of the owner
//    84     4  gid of the owner
//    88     8  reserved, 0 (covered by the MAC)
//    96    32  MAC (above)
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared/crypto/crypto.h"
#include "shared/placement/placement.h"
#include "shared/util/status.h"

namespace dfs {

inline constexpr size_t kPieceHeaderBytes = 128;
inline constexpr uint16_t kPieceFormatVersion = 2;
inline constexpr size_t kRecordMacOffset = 96;
// Largest file a header may describe (ext4's limit): sizes beyond it, from a
// confused or hostile peer, are refused before any arithmetic on them.
inline constexpr uint64_t kMaxFileSize = uint64_t{1} << 44;

// Orders versions: newer compares greater. Ties in time break on `random`.
struct Stamp {
  uint64_t time_ns = 0;
  uint64_t random = 0;
  auto operator<=>(const Stamp&) const = default;
  static Stamp Now();  // wall clock + random tiebreak
  std::string ToString() const;
};

enum class PieceKind : uint8_t { kPiece = 1, kTombstone = 2 };

struct PieceHeader {
  PieceKind kind = PieceKind::kPiece;
  SchemeId scheme = SchemeId::kReplicatedRotation;
  uint8_t servers = 4;
  uint8_t copies = 2;
  uint8_t piece = 0;  // 1..servers; 0 for a tombstone
  uint8_t x = 0;
  Cid cid{};
  Stamp stamp;
  uint64_t file_size = 0;
  uint64_t piece_size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0644;
  uint32_t chunk_bytes = kDefaultChunkBytes;
  uint32_t uid = 0;
  uint32_t gid = 0;
  Key mac{};  // see above; all zero until Sign()

  bool tombstone() const { return kind == PieceKind::kTombstone; }
  // Sealed bytes after the header (0 for a tombstone).
  uint64_t sealed_size() const { return tombstone() ? 0 : SealedSize(piece_size, chunk_bytes); }

  std::string Encode() const;  // exactly kPieceHeaderBytes
  // kCorrupt for a bad magic, version, length, kind or inconsistent fields.
  // Does not check the MAC (servers cannot: they do not hold the key).
  static Result<PieceHeader> Decode(std::string_view bytes);

  // Sets mac for this header stored as `path` ("dir/name", names.h JoinName).
  void Sign(const Key& record_key, std::string_view path);
  // Whether mac is this header's MAC for `path`. Constant time.
  bool Verify(const Key& record_key, std::string_view path) const;

 private:
  Key ComputeMac(const Key& record_key, std::string_view path) const;
};

// ".NAME.K"
std::string PieceFileName(std::string_view name, int piece);
// Parses ".NAME.K" (K = 0..99) into name and K; false for anything else.
bool ParsePieceFileName(std::string_view file, std::string* name, int* piece);

}  // namespace dfs
