// The piece file format: a fixed 128-byte header followed by the sealed
// piece (see crypto.h) and the file's sealed extended attributes, if any
// (xattrs.h). A server stores piece K of file NAME as ".NAME.K" and
// a tombstone (a delete that must win over older pieces) as ".NAME.0", a
// header alone. A folder keeps its own attributes in a folder record, a
// header alone stored inside it as "..0" (kFolderRecordFile). All integers
// big-endian.
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
//     8     1  kind: 1 piece, 2 tombstone, 3 folder record
//     9     1  scheme (SchemeId; 1 = replicated rotation)
//    10     1  servers N (also the number of pieces)
//    11     1  copies C
//    12     1  piece index K (1..N; 0 for a tombstone or folder record)
//    13     1  x = MD5(plaintext) mod N
//    14     2  xattr bytes: length of the sealed extended attributes that
//              follow the piece's sealed data (xattrs.h; 0: none, else
//              24..4120); 0 for a tombstone or folder record
//    16    16  content id (cid): random per upload, AEAD-bound to every chunk
//    32     8  version stamp: time in ns since the epoch
//    40     8  version stamp: random tiebreak
//    48     8  file size in plaintext bytes
//    56     8  this piece's plaintext bytes
//    64     8  mtime, ns since the epoch (signed)
//    72     4  mode: st_mode, type and permission bits (e.g. 0100644). The
//              type of a piece is regular (S_IFREG, or 0 in older records),
//              symbolic link (the content is the target), fifo, socket, or
//              character or block device (no content); a folder record's
//              is S_IFDIR; a tombstone's 0
//    76     4  chunk size in plaintext bytes (e.g. 65536)
//    80     4  uid of the owner
//    84     4  gid of the owner
//    88     8  rdev of a device node, else 0 (covered by the MAC)
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

enum class PieceKind : uint8_t { kPiece = 1, kTombstone = 2, kFolder = 3 };

// Inside each folder of a user: the folder's own record (kind kFolder).
// Neither a piece file name nor a folder name a user can make (Store
// refuses it as reserved).
inline constexpr std::string_view kFolderRecordFile = "..0";

// The st_mode bits a record keeps: type and permissions (with setuid,
// setgid, sticky; dfc never applies those to a local file).
inline constexpr uint32_t kModeTypeMask = 0170000;
inline constexpr uint32_t kModeBits = 07777;
// Whether `mode` is an acceptable st_mode for a record of `kind`.
bool ValidRecordMode(PieceKind kind, uint32_t mode);

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
  uint64_t rdev = 0;         // device nodes only
  uint16_t xattr_bytes = 0;  // sealed extended attributes after the data
  Key mac{};                 // see above; all zero until Sign()

  bool tombstone() const { return kind == PieceKind::kTombstone; }
  bool folder() const { return kind == PieceKind::kFolder; }
  // A header alone, no sealed bytes after it: a tombstone or folder record.
  bool record_only() const { return kind != PieceKind::kPiece; }
  // Sealed bytes of the piece's content (0 for a tombstone or folder record).
  uint64_t data_size() const { return record_only() ? 0 : SealedSize(piece_size, chunk_bytes); }
  // Every byte after the header: the content, then the extended attributes.
  uint64_t sealed_size() const { return data_size() + xattr_bytes; }
  // st_mode's type bits, S_IFREG for a regular file (also an older record's 0).
  uint32_t file_type() const;
  // Copies what stat shows and chmod/chown/utime change: mode, mtime, owner, rdev.
  void CopyAttributes(const PieceHeader& from);

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
