// Extended attributes of a file (user.* only), stored with every piece of
// the file's current version: a sealed trailer after the piece's sealed data
// (piece_header.h, field xattr_bytes). The trailer is
//   u64 n (random, big-endian) || AES-256-GCM of the encoded list
// under the file's per-cid key (crypto.h) with piece index 0 and chunk
// index n, marked last: piece 0 is never content, and n is fresh for each
// sealing, so no nonce repeats under one key. A server sees only its length.
//
// The encoded list (plaintext): u16 count, then per attribute, sorted by
// name: u8 name length (1..255), name (starting "user."), u16 value
// length, value. At most kMaxXattrBytes in all, as one ext4 block holds a
// file's attributes: more is ENOSPC.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "shared/crypto/crypto.h"
#include "shared/util/status.h"

namespace dfs {

using XattrMap = std::map<std::string, std::string, std::less<>>;

inline constexpr std::string_view kUserXattrPrefix = "user.";
inline constexpr size_t kMaxXattrBytes = 4096;
inline constexpr size_t kMaxXattrNameBytes = 255;
// Bytes a trailer adds to the encoded list: n and the GCM tag.
inline constexpr size_t kXattrTrailerOverhead = 8 + kTagBytes;
inline constexpr size_t kMaxXattrTrailerBytes = kMaxXattrBytes + kXattrTrailerOverhead;

// Whether `name` can be stored: "user." and at least one more byte, at most
// kMaxXattrNameBytes, no NUL.
bool ValidXattrName(std::string_view name);

// The encoded list; kNoSpace beyond kMaxXattrBytes, kInvalidArgument for a
// name that cannot be stored or a value over 65535 bytes.
Result<std::string> EncodeXattrs(const XattrMap& xattrs);
// kCorrupt for anything EncodeXattrs would not have written.
Result<XattrMap> DecodeXattrs(std::string_view encoded);

// The trailer of `xattrs` for content `cid` ("" for none).
Result<std::string> SealXattrs(const Key& content_key, const Cid& cid, const XattrMap& xattrs);
// Opens a trailer of content `cid` ("" is none). kCorrupt when it does not
// authenticate (tampered, another file's, wrong key).
Result<XattrMap> OpenXattrs(const Key& content_key, const Cid& cid, std::string_view trailer);

}  // namespace dfs
