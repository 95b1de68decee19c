// Cryptography (OpenSSL 3): random bytes, MD5 for placement, keys derived from
// the password, HMAC for authentication and AES-256-GCM for piece chunks.
//
// Keys: root = PBKDF2-HMAC-SHA256(password, "dfs-v1:" + username, kPbkdf2Iterations);
//   auth key    = HKDF-SHA256(root, info "dfs auth v1")     (known to servers)
//   content key = HKDF-SHA256(root, info "dfs content v1") (never leaves the client)
//   per-cid key = HKDF-SHA256(content key, salt cid, info "dfs piece v1")
// Chunk j of piece k of content cid: AES-256-GCM under the per-cid key,
//   nonce = u32 k || u64 j (big-endian; unique per key because a cid is never reused),
//   AAD   = "dfs1" || cid || u32 k || u64 j || u8 last,
//   stored as ciphertext || 16-byte tag.
// So chunks cannot be reordered, moved between pieces or uploads, truncated
// (the last chunk is marked) or read under a wrong password.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "shared/util/status.h"

namespace dfs {

using Key = std::array<uint8_t, 32>;
using Cid = std::array<uint8_t, 16>;
using Digest16 = std::array<uint8_t, 16>;

inline constexpr int kPbkdf2Iterations = 200000;
inline constexpr size_t kTagBytes = 16;
inline constexpr uint32_t kDefaultChunkBytes = 64 * 1024;

// Cryptographically secure random bytes; aborts the process if the RNG fails.
void RandomBytes(void* out, size_t n);
Cid RandomCid();

std::string ToHex(std::span<const uint8_t> bytes);
// Parses exactly 2*out.size() hex digits.
bool FromHex(std::string_view hex, std::span<uint8_t> out);

// Constant-time equality.
bool SecureEqual(std::span<const uint8_t> a, std::span<const uint8_t> b);

struct UserKeys {
  Key auth{};
  Key content{};
};
// Slow on purpose (PBKDF2); call once per process per user.
UserKeys DeriveUserKeys(std::string_view username, std::string_view password);

// The auth key from a dfs.conf secret: a password, or "$dfs1$" + 64 hex
// digits of the auth key itself. kInvalidArgument for a malformed "$dfs1$".
Result<Key> AuthKeyFromSecret(std::string_view username, std::string_view secret);
// "$dfs1$<hex>" for dfs.conf, so a server need not hold the password.
std::string HashedSecret(std::string_view username, std::string_view password);

Key HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> data);

// Streaming MD5 (placement only; not used for security).
class Md5 {
 public:
  Md5();
  void Update(const void* data, size_t n);
  Digest16 Final();

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// Number of chunks a piece of `plain_bytes` is sealed into (at least 1, so an
// empty piece still carries an authenticated "last" chunk).
uint64_t ChunkCount(uint64_t plain_bytes, uint32_t chunk_bytes);
// Bytes a sealed piece occupies on a server.
uint64_t SealedSize(uint64_t plain_bytes, uint32_t chunk_bytes);

// Seals and opens the chunks of one content id. Not thread-safe: use one per
// thread (construction is cheap: one HKDF).
class ChunkCipher {
 public:
  ChunkCipher(const Key& content_key, const Cid& cid);

  // Appends ciphertext || tag of `plain` to *out.
  void Seal(uint32_t piece, uint64_t chunk, bool last, std::span<const uint8_t> plain,
            std::string* out);
  // Decrypts `sealed` (ciphertext || tag) into out[0 .. sealed.size()-16).
  // kCorrupt when authentication fails (tampering, wrong key, wrong position).
  Status Open(uint32_t piece, uint64_t chunk, bool last, std::span<const uint8_t> sealed,
              uint8_t* out);

 private:
  static constexpr int kAadBytes = 33;
  void Prepare(uint32_t piece, uint64_t chunk, bool last, uint8_t nonce[12],
               uint8_t aad[kAadBytes]) const;
  Key key_{};
  Cid cid_{};
  std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)> ctx_;
};

}  // namespace dfs
