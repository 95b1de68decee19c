// OpenSSL-backed primitives; see crypto.h for the key schedule and chunk format.
#include "shared/crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "shared/util/coding.h"

namespace dfs {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "fatal: OpenSSL %s failed\n", what);
  std::abort();
}

const uint8_t* U8(const void* p) { return static_cast<const uint8_t*>(p); }

Key Hkdf(std::span<const uint8_t> ikm, std::span<const uint8_t> salt, std::string_view info) {
  std::unique_ptr<EVP_KDF, void (*)(EVP_KDF*)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr),
                                                   EVP_KDF_free);
  if (!kdf) Die("HKDF fetch");
  std::unique_ptr<EVP_KDF_CTX, void (*)(EVP_KDF_CTX*)> ctx(EVP_KDF_CTX_new(kdf.get()),
                                                           EVP_KDF_CTX_free);
  if (!ctx) Die("HKDF ctx");
  char digest[] = "SHA256";
  uint8_t empty_salt = 0;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.data()),
                                        ikm.size()),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_SALT, salt.empty() ? &empty_salt : const_cast<uint8_t*>(salt.data()),
          salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end(),
  };
  Key out{};
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) Die("HKDF derive");
  return out;
}

}  // namespace

void RandomBytes(void* out, size_t n) {
  if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(n)) != 1) Die("RAND_bytes");
}

Cid RandomCid() {
  Cid cid;
  RandomBytes(cid.data(), cid.size());
  return cid;
}

std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

bool FromHex(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

bool SecureEqual(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

UserKeys DeriveUserKeys(std::string_view username, std::string_view password) {
  const std::string salt = "dfs-v2:" + std::string(username);
  Key root{};
  // maxmem: 128 * r * N bytes plus OpenSSL's bookkeeping.
  const uint64_t maxmem = 128 * uint64_t{kScryptR} * kScryptN + (uint64_t{1} << 20);
  if (EVP_PBE_scrypt(password.data(), password.size(), U8(salt.data()), salt.size(), kScryptN,
                     kScryptR, kScryptP, maxmem, root.data(), root.size()) != 1)
    Die("scrypt");
  UserKeys keys;
  keys.auth = Hkdf(root, {}, "dfs auth v2");
  keys.content = Hkdf(root, {}, "dfs content v2");
  keys.record = Hkdf(root, {}, "dfs record v2");
  OPENSSL_cleanse(root.data(), root.size());
  return keys;
}

Key ServerVerifier(const Key& auth_key, std::string_view server_name) {
  return Hkdf(auth_key, std::span(U8(server_name.data()), server_name.size()),
              "dfs server verifier v2");
}

Result<Key> VerifierFromSecret(std::string_view username, std::string_view secret,
                               std::string_view server_name, bool* plain) {
  if (plain) *plain = false;
  if (secret.substr(0, kVerifierPrefix.size()) == kVerifierPrefix) {
    Key key{};
    if (!FromHex(secret.substr(kVerifierPrefix.size()), key))
      return Status::Invalid("'$dfs2$' secret needs 64 hex digits");
    return key;
  }
  if (secret.substr(0, 6) == "$dfs1$")
    return Status::Invalid(
        "'$dfs1$' secrets are retired (one line opened every server); make a new line with "
        "'dfs_server --hash-password USER --name NAME'");
  if (plain) *plain = true;
  return ServerVerifier(DeriveUserKeys(username, secret).auth, server_name);
}

std::string HashedSecret(std::string_view username, std::string_view password,
                         std::string_view server_name) {
  return std::string(kVerifierPrefix) +
         ToHex(ServerVerifier(DeriveUserKeys(username, password).auth, server_name));
}

std::string Base64NoPad(std::span<const uint8_t> bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (bytes.size() - i == 1) {
    const uint32_t v = uint32_t{bytes[i]} << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (bytes.size() - i == 2) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

Key Sha256(std::span<const uint8_t> data) {
  Key out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size())
    Die("SHA-256");
  return out;
}

namespace {

// One keyed HMAC-SHA256 context per thread, for the last key it was used
// with. Fetching the algorithm and keying it (two SHA-256 blocks) cost more
// than the MAC of a short message, and callers check many records under one
// key in a row (a listing: 8 records per file); EVP_MAC_init() without a key
// restarts from the keyed state.
class HmacContext {
 public:
  HmacContext() {
    static EVP_MAC* const algorithm = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (algorithm == nullptr || (ctx_ = EVP_MAC_CTX_new(algorithm)) == nullptr) Die("HMAC");
  }
  HmacContext(const HmacContext&) = delete;
  HmacContext& operator=(const HmacContext&) = delete;
  ~HmacContext() {
    EVP_MAC_CTX_free(ctx_);
    OPENSSL_cleanse(key_.data(), key_.size());
  }

  Key Compute(std::span<const uint8_t> key, std::span<const uint8_t> data) {
    // HMAC pads its key with zeros: the empty key is the key of one zero byte.
    static constexpr uint8_t kZero = 0;
    if (key.empty()) key = std::span<const uint8_t>(&kZero, 1);
    const bool same = keyed_ && key.size() == key_.size() &&
                      CRYPTO_memcmp(key.data(), key_.data(), key.size()) == 0;
    if (same) {
      if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) Die("HMAC init");
    } else {
      char digest[] = "SHA256";
      const OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
      keyed_ = false;
      if (EVP_MAC_init(ctx_, key.data(), key.size(), params) != 1) Die("HMAC init");
      OPENSSL_cleanse(key_.data(), key_.size());
      key_.assign(key.begin(), key.end());
      keyed_ = true;
    }
    Key out{};
    size_t len = 0;
    if (EVP_MAC_update(ctx_, data.data(), data.size()) != 1 ||
        EVP_MAC_final(ctx_, out.data(), &len, out.size()) != 1 || len != out.size())
      Die("HMAC");
    return out;
  }

 private:
  EVP_MAC_CTX* ctx_ = nullptr;
  std::vector<uint8_t> key_;
  bool keyed_ = false;
};

}  // namespace

Key HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  thread_local HmacContext context;
  return context.Compute(key, data);
}

Md5::Md5() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr) != 1) Die("MD5 init");
}

void Md5::Update(const void* data, size_t n) {
  if (EVP_DigestUpdate(ctx_.get(), data, n) != 1) Die("MD5 update");
}

Digest16 Md5::Final() {
  Digest16 out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &len) != 1 || len != out.size()) Die("MD5 final");
  return out;
}

Digest16 Md5::Peek() const {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> copy(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!copy || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1) Die("MD5 copy");
  Digest16 out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(copy.get(), out.data(), &len) != 1 || len != out.size()) Die("MD5 final");
  return out;
}

uint64_t ChunkCount(uint64_t plain_bytes, uint32_t chunk_bytes) {
  if (plain_bytes == 0) return 1;
  return (plain_bytes + chunk_bytes - 1) / chunk_bytes;
}

uint64_t SealedSize(uint64_t plain_bytes, uint32_t chunk_bytes) {
  return plain_bytes + kTagBytes * ChunkCount(plain_bytes, chunk_bytes);
}

ChunkCipher::ChunkCipher(const Key& content_key, const Cid& cid)
    : key_(Hkdf(content_key, cid, "dfs piece v1")),
      cid_(cid),
      ctx_(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free) {
  if (!ctx_) Die("cipher ctx");
}

void ChunkCipher::Prepare(uint32_t piece, uint64_t chunk, bool last, uint8_t nonce[12],
                          uint8_t aad[kAadBytes]) const {
  PutBE(nonce, piece, 4);
  PutBE(nonce + 4, chunk, 8);
  std::memcpy(aad, "dfs1", 4);
  std::memcpy(aad + 4, cid_.data(), 16);
  PutBE(aad + 20, piece, 4);
  PutBE(aad + 24, chunk, 8);
  aad[32] = last ? 1 : 0;
}

void ChunkCipher::Seal(uint32_t piece, uint64_t chunk, bool last, std::span<const uint8_t> plain,
                       std::string* out) {
  uint8_t nonce[12], aad[kAadBytes];
  Prepare(piece, chunk, last, nonce, aad);
  EVP_CIPHER_CTX* c = ctx_.get();
  if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1) Die("GCM init");
  int len = 0;
  if (EVP_EncryptUpdate(c, nullptr, &len, aad, sizeof aad) != 1) Die("GCM aad");
  const size_t start = out->size();
  out->resize(start + plain.size() + kTagBytes);
  auto* dst = reinterpret_cast<uint8_t*>(out->data()) + start;
  if (!plain.empty() &&
      EVP_EncryptUpdate(c, dst, &len, plain.data(), static_cast<int>(plain.size())) != 1)
    Die("GCM encrypt");
  if (EVP_EncryptFinal_ex(c, dst + plain.size(), &len) != 1) Die("GCM final");
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTagBytes, dst + plain.size()) != 1)
    Die("GCM tag");
}

Status ChunkCipher::Open(uint32_t piece, uint64_t chunk, bool last, std::span<const uint8_t> sealed,
                         uint8_t* out) {
  if (sealed.size() < kTagBytes) return Status::Corrupt("chunk shorter than its tag");
  uint8_t nonce[12], aad[kAadBytes];
  Prepare(piece, chunk, last, nonce, aad);
  EVP_CIPHER_CTX* c = ctx_.get();
  const size_t n = sealed.size() - kTagBytes;
  int len = 0;
  if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_DecryptUpdate(c, nullptr, &len, aad, sizeof aad) != 1 ||
      (n > 0 && EVP_DecryptUpdate(c, out, &len, sealed.data(), static_cast<int>(n)) != 1) ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          const_cast<uint8_t*>(sealed.data() + n)) != 1)
    return Status::Corrupt("chunk decryption failed");
  if (EVP_DecryptFinal_ex(c, out + n, &len) != 1)
    return Status::Corrupt("chunk " + std::to_string(chunk) + " of piece " + std::to_string(piece) +
                           " failed authentication");
  return Status::Ok();
}

}  // namespace dfs
