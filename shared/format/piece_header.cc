// Piece header encoding (layout in piece_header.h).
#include "shared/format/piece_header.h"

#include <sys/stat.h>

#include <chrono>
#include <cstring>

#include "shared/format/xattrs.h"
#include "shared/util/coding.h"
#include "shared/util/names.h"

namespace dfs {

Stamp Stamp::Now() {
  Stamp s;
  s.time_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
  RandomBytes(&s.random, sizeof s.random);
  return s;
}

std::string Stamp::ToString() const {
  return std::to_string(time_ns) + "." + std::to_string(random % 100000);
}

std::string PieceHeader::Encode() const {
  Encoder e;
  e.Raw("DFSp");
  e.U16(kPieceFormatVersion);
  e.U16(kPieceHeaderBytes);
  e.U8(static_cast<uint8_t>(kind));
  e.U8(static_cast<uint8_t>(scheme));
  e.U8(servers);
  e.U8(copies);
  e.U8(piece);
  e.U8(x);
  e.U16(xattr_bytes);
  e.Raw(std::string_view(reinterpret_cast<const char*>(cid.data()), cid.size()));
  e.U64(stamp.time_ns);
  e.U64(stamp.random);
  e.U64(file_size);
  e.U64(piece_size);
  e.I64(mtime_ns);
  e.U32(mode);
  e.U32(chunk_bytes);
  e.U32(uid);
  e.U32(gid);
  e.U64(rdev);
  e.Raw(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  std::string out = e.Take();
  return out;
}

Key PieceHeader::ComputeMac(const Key& record_key, std::string_view path) const {
  const std::string raw = Encode();
  std::string data = "dfs record v2";
  data.append(raw, 0, kRecordMacOffset);
  const uint8_t len[2] = {static_cast<uint8_t>(path.size() >> 8),
                          static_cast<uint8_t>(path.size() & 0xff)};
  data.append(reinterpret_cast<const char*>(len), 2);
  data.append(path);
  return HmacSha256(record_key,
                    std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

void PieceHeader::Sign(const Key& record_key, std::string_view path) {
  mac = ComputeMac(record_key, path);
}

bool PieceHeader::Verify(const Key& record_key, std::string_view path) const {
  return SecureEqual(ComputeMac(record_key, path), mac);
}

Result<PieceHeader> PieceHeader::Decode(std::string_view bytes) {
  if (bytes.size() < kPieceHeaderBytes) return Status::Corrupt("piece header too short");
  Decoder d(bytes.substr(0, kPieceHeaderBytes));
  char magic[4];
  uint16_t version = 0, length = 0;
  uint8_t kind = 0, scheme = 0;
  PieceHeader h;
  if (!d.Raw(magic, 4) || std::memcmp(magic, "DFSp", 4) != 0)
    return Status::Corrupt("not a piece file (bad magic)");
  if (!d.U16(&version) || version != kPieceFormatVersion)
    return Status::Corrupt("unsupported piece format version " + std::to_string(version));
  if (!d.U16(&length) || length != kPieceHeaderBytes) return Status::Corrupt("bad header length");
  if (!d.U8(&kind) || !d.U8(&scheme) || !d.U8(&h.servers) || !d.U8(&h.copies) || !d.U8(&h.piece) ||
      !d.U8(&h.x) || !d.U16(&h.xattr_bytes) || !d.Raw(h.cid.data(), h.cid.size()) ||
      !d.U64(&h.stamp.time_ns) || !d.U64(&h.stamp.random) || !d.U64(&h.file_size) ||
      !d.U64(&h.piece_size) || !d.I64(&h.mtime_ns) || !d.U32(&h.mode) || !d.U32(&h.chunk_bytes) ||
      !d.U32(&h.uid) || !d.U32(&h.gid) || !d.U64(&h.rdev) || !d.Raw(h.mac.data(), h.mac.size()))
    return Status::Corrupt("truncated piece header");
  if (kind < 1 || kind > 3) return Status::Corrupt("bad piece kind");
  if (scheme != static_cast<uint8_t>(SchemeId::kReplicatedRotation))
    return Status::Corrupt("unknown redundancy scheme " + std::to_string(scheme));
  h.kind = static_cast<PieceKind>(kind);
  h.scheme = static_cast<SchemeId>(scheme);
  Scheme sc{h.servers, h.copies, h.scheme};
  if (!sc.valid()) return Status::Corrupt("bad scheme parameters");
  if (h.file_size > kMaxFileSize)
    return Status::Corrupt("file size " + std::to_string(h.file_size) + " beyond the limit");
  if (!ValidRecordMode(h.kind, h.mode)) return Status::Corrupt("bad mode for this kind of record");
  const uint32_t type = h.mode & kModeTypeMask;
  if (h.rdev != 0 && type != S_IFCHR && type != S_IFBLK)
    return Status::Corrupt("device number on a record that is no device");
  if (h.record_only()) {
    if (h.piece != 0) return Status::Corrupt("tombstone or folder record with a piece index");
    if (h.xattr_bytes != 0) return Status::Corrupt("extended attributes on a tombstone or folder");
  } else {
    if (h.piece < 1 || h.piece > h.servers) return Status::Corrupt("piece index out of range");
    if (h.x >= h.servers) return Status::Corrupt("placement residue out of range");
    if (h.chunk_bytes == 0 || h.chunk_bytes > (16u << 20)) return Status::Corrupt("bad chunk size");
    if (h.piece_size != PieceSize(h.file_size, h.servers, h.piece))
      return Status::Corrupt("piece size does not match the file size");
    if (h.xattr_bytes != 0 &&
        (h.xattr_bytes < kXattrTrailerOverhead || h.xattr_bytes > kMaxXattrTrailerBytes))
      return Status::Corrupt("bad length of extended attributes");
  }
  return h;
}

bool ValidRecordMode(PieceKind kind, uint32_t mode) {
  if ((mode & ~(kModeTypeMask | kModeBits)) != 0) return false;
  switch (kind) {
    case PieceKind::kTombstone:
      return true;
    case PieceKind::kFolder:
      return (mode & kModeTypeMask) == S_IFDIR;
    case PieceKind::kPiece:
      switch (mode & kModeTypeMask) {
        case 0:
        case S_IFREG:
        case S_IFLNK:
        case S_IFIFO:
        case S_IFSOCK:
        case S_IFCHR:
        case S_IFBLK:
          return true;
        default:
          return false;
      }
  }
  return false;
}

uint32_t PieceHeader::file_type() const {
  const uint32_t type = mode & kModeTypeMask;
  return type == 0 ? S_IFREG : type;
}

void PieceHeader::CopyAttributes(const PieceHeader& from) {
  mode = from.mode;
  mtime_ns = from.mtime_ns;
  uid = from.uid;
  gid = from.gid;
  rdev = from.rdev;
}

std::string PieceFileName(std::string_view name, int piece) {
  return "." + std::string(name) + "." + std::to_string(piece);
}

bool ParsePieceFileName(std::string_view file, std::string* name, int* piece) {
  if (file.size() < 4 || file.front() != '.') return false;
  size_t dot = file.rfind('.');
  if (dot <= 1) return false;
  std::string_view digits = file.substr(dot + 1);
  if (digits.empty() || digits.size() > 2) return false;
  int k = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    k = k * 10 + (c - '0');
  }
  if (digits.size() == 2 && digits[0] == '0') return false;  // one spelling per number
  std::string_view n = file.substr(1, dot - 1);
  if (!ValidateName(n).ok()) return false;
  *name = std::string(n);
  *piece = k;
  return true;
}

}  // namespace dfs
