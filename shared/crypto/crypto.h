// Cryptography (OpenSSL 3): random bytes, MD5 for placement, keys derived from
// the password, HMAC for authentication and AES-256-GCM for piece chunks.
//
// Keys (DESIGN.md "Trust model"), derived once per process:
//   root        = scrypt(password, salt "dfs-v2:" + username, N 2^15, r 8, p 1)  (32 MiB)
//   content key = HKDF-SHA256(root, info "dfs content v2")  never leaves the client
//   record key  = HKDF-SHA256(root, info "dfs record v2")   MACs of piece headers
//   auth key    = HKDF-SHA256(root, info "dfs auth v2")     never leaves the client
//   verifier(S) = HKDF-SHA256(auth key, salt S, info "dfs server verifier v2")
//                 the only secret server S holds ("$dfs2$" + hex in dfs.conf);
//                 it opens no other server and no content.
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

// scrypt cost: N = 2^15, r = 8, p = 1 takes 32 MiB and ~0.1 s per derivation.
inline constexpr uint64_t kScryptN = uint64_t{1} << 15;
inline constexpr uint32_t kScryptR = 8;
inline constexpr uint32_t kScryptP = 1;
// dfs.conf secrets that hold a server verifier instead of a password.
inline constexpr std::string_view kVerifierPrefix = "$dfs2$";
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
  Key auth{};     // verifiers of every server derive from it
  Key content{};  // seals piece chunks
  Key record{};   // MACs of piece headers and tombstones
};
// Slow and memory-hard on purpose (scrypt); call once per process per user.
UserKeys DeriveUserKeys(std::string_view username, std::string_view password);
// The verifier server `server_name` checks logins of this user with.
Key ServerVerifier(const Key& auth_key, std::string_view server_name);

// The verifier of `server_name` from a dfs.conf secret: a password (slow:
// scrypt), or "$dfs2$" + 64 hex digits of the verifier itself.
// kInvalidArgument for a malformed "$dfs2$" and for the retired "$dfs1$".
// *plain is set when the secret was a plain password.
Result<Key> VerifierFromSecret(std::string_view username, std::string_view secret,
                               std::string_view server_name, bool* plain = nullptr);
// "$dfs2$<hex>" for dfs.conf of server `server_name`: it logs USER in there
// and nowhere else, and holds no content key.
std::string HashedSecret(std::string_view username, std::string_view password,
                         std::string_view server_name);

// Base64 (RFC 4648, standard alphabet, no padding), as ssh prints fingerprints.
std::string Base64NoPad(std::span<const uint8_t> bytes);
// SHA-256 of bytes.
Key Sha256(std::span<const uint8_t> data);

Key HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> data);

// Streaming MD5 (placement only; not used for security).
class Md5 {
 public:
  Md5();
  void Update(const void* data, size_t n);
  Digest16 Final();
  // The digest of what was fed so far; Update may go on afterwards.
  Digest16 Peek() const;

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
