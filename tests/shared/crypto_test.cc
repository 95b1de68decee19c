// Unit tests of shared/crypto/crypto.h: key derivation, digests, hex and chunk sealing.
#include "shared/crypto/crypto.h"

#include <doctest/doctest.h>

#include <array>
#include <cctype>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dfs {
namespace {

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// DeriveUserKeys is slow on purpose: derive each (user, password) once.
const UserKeys& Keys(const std::string& user, const std::string& password) {
  static std::map<std::pair<std::string, std::string>, UserKeys> cache;
  auto it = cache.find({user, password});
  if (it == cache.end())
    it = cache.emplace(std::pair(user, password), DeriveUserKeys(user, password)).first;
  return it->second;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

// One sealed chunk as the server would store it.
struct Sealed {
  uint32_t piece;
  uint64_t chunk;
  bool last;
  std::string bytes;
};

// Seals `plain` as piece `piece` in chunks of `chunk_bytes`.
std::vector<Sealed> SealPiece(ChunkCipher& cipher, uint32_t piece, std::string_view plain,
                              uint32_t chunk_bytes) {
  std::vector<Sealed> out;
  const uint64_t count = ChunkCount(plain.size(), chunk_bytes);
  for (uint64_t j = 0; j < count; ++j) {
    std::string_view part = plain.substr(j * chunk_bytes, chunk_bytes);
    Sealed s{piece, j, j + 1 == count, {}};
    cipher.Seal(piece, j, s.last, AsBytes(part), &s.bytes);
    out.push_back(std::move(s));
  }
  return out;
}

Status OpenChunk(ChunkCipher& cipher, uint32_t piece, uint64_t chunk, bool last,
                 std::string_view sealed, std::string* plain) {
  plain->assign(sealed.size() >= kTagBytes ? sealed.size() - kTagBytes : 0, '\0');
  std::vector<uint8_t> buf(plain->size() + 1);  // never empty, so data() is not null
  Status s = cipher.Open(piece, chunk, last, AsBytes(sealed), buf.data());
  plain->assign(reinterpret_cast<const char*>(buf.data()), plain->size());
  return s;
}

TEST_CASE("seals and opens pieces of 0, 1, chunk-1, chunk and chunk+1 bytes") {
  const Key& key = Keys("alice", "SimplePassword").content;
  const Cid cid = RandomCid();
  const size_t c = kDefaultChunkBytes;
  for (size_t n : {size_t{0}, size_t{1}, c - 1, c, c + 1, 3 * c + 17}) {
    CAPTURE(n);
    ChunkCipher sealer(key, cid);
    const std::string plain = Pattern(n);
    std::vector<Sealed> chunks = SealPiece(sealer, 3, plain, kDefaultChunkBytes);
    CHECK(chunks.size() == ChunkCount(n, kDefaultChunkBytes));
    uint64_t total = 0;
    for (const auto& s : chunks) total += s.bytes.size();
    CHECK(total == SealedSize(n, kDefaultChunkBytes));
    if (n > 0) CHECK(chunks[0].bytes.substr(0, 16) != plain.substr(0, 16));

    ChunkCipher opener(key, cid);  // a fresh cipher, as on another client
    std::string joined;
    for (const auto& s : chunks) {
      std::string part;
      Status st = OpenChunk(opener, s.piece, s.chunk, s.last, s.bytes, &part);
      REQUIRE_MESSAGE(st.ok(), st.ToString());
      joined += part;
    }
    CHECK(joined == plain);
  }
}

TEST_CASE("opens any chunk alone and in any order") {
  const Key& key = Keys("alice", "SimplePassword").content;
  const Cid cid = RandomCid();
  ChunkCipher cipher(key, cid);
  const std::string plain = Pattern(5 * 1000 + 3);
  std::vector<Sealed> chunks = SealPiece(cipher, 1, plain, 1000);
  REQUIRE(chunks.size() == 6);
  for (int j : {4, 0, 5, 2}) {
    CAPTURE(j);
    std::string part;
    REQUIRE(OpenChunk(cipher, 1, chunks[j].chunk, chunks[j].last, chunks[j].bytes, &part).ok());
    CHECK(part == plain.substr(j * 1000, 1000));
  }
}

TEST_CASE("refuses every tampered, moved, truncated or foreign chunk with kCorrupt") {
  const Key& key = Keys("alice", "SimplePassword").content;
  const Cid cid = RandomCid();
  ChunkCipher cipher(key, cid);
  const std::string plain = Pattern(3 * 100);
  // Pieces 2 and 3 of the same content, 3 chunks of 100 bytes each.
  const std::vector<Sealed> p2 = SealPiece(cipher, 2, plain, 100);
  const std::vector<Sealed> p3 = SealPiece(cipher, 3, plain, 100);
  REQUIRE(p2.size() == 3);

  Cid other_cid = cid;
  other_cid[0] ^= 1;
  const Key& other_key = Keys("alice", "WrongPassword").content;

  struct Case {
    std::string_view what;
    std::function<Status()> open;
  };
  auto open_with = [&](const Key& k, const Cid& c, uint32_t piece, uint64_t chunk, bool last,
                       std::string sealed) {
    ChunkCipher ch(k, c);
    std::string out;
    return OpenChunk(ch, piece, chunk, last, sealed, &out);
  };
  auto flipped = [](std::string s, size_t i) {
    s[i] = static_cast<char>(s[i] ^ 0x01);
    return s;
  };
  const std::string& c0 = p2[0].bytes;
  const std::string& c2 = p2[2].bytes;  // the last chunk
  const Case cases[] = {
      {"flipped bit in the ciphertext",
       [&] { return open_with(key, cid, 2, 0, false, flipped(c0, 5)); }},
      {"flipped bit in the tag",
       [&] { return open_with(key, cid, 2, 0, false, flipped(c0, c0.size() - 1)); }},
      {"chunk 1 opened as chunk 0 (swapped chunks)",
       [&] { return open_with(key, cid, 2, 0, false, p2[1].bytes); }},
      {"chunk 0 opened as chunk 1 (swapped chunks)",
       [&] { return open_with(key, cid, 2, 1, false, c0); }},
      {"chunk of piece 3 opened as piece 2",
       [&] { return open_with(key, cid, 2, 0, false, p3[0].bytes); }},
      {"non-last chunk opened as last (truncated piece)",
       [&] { return open_with(key, cid, 2, 1, true, p2[1].bytes); }},
      {"last chunk opened as not last (extended piece)",
       [&] { return open_with(key, cid, 2, 2, false, c2); }},
      {"wrong content id", [&] { return open_with(key, other_cid, 2, 0, false, c0); }},
      {"wrong key (another password)", [&] { return open_with(other_key, cid, 2, 0, false, c0); }},
      {"ciphertext cut short", [&] { return open_with(key, cid, 2, 0, false, c0.substr(1)); }},
      {"tag only, no ciphertext",
       [&] { return open_with(key, cid, 2, 0, false, c0.substr(c0.size() - kTagBytes)); }},
      {"shorter than a tag", [&] { return open_with(key, cid, 2, 0, false, c0.substr(0, 15)); }},
      {"empty input", [&] { return open_with(key, cid, 2, 0, false, ""); }},
  };
  // The untampered chunks open, so each case fails for its own reason.
  REQUIRE(open_with(key, cid, 2, 0, false, c0).ok());
  REQUIRE(open_with(key, cid, 2, 2, true, c2).ok());
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Status s = c.open();
    CHECK(s.code() == Code::kCorrupt);
  }
}

TEST_CASE("authenticates an empty last chunk and refuses it moved") {
  const Key& key = Keys("alice", "SimplePassword").content;
  const Cid cid = RandomCid();
  ChunkCipher cipher(key, cid);
  std::string sealed;
  cipher.Seal(4, 0, true, {}, &sealed);
  REQUIRE(sealed.size() == kTagBytes);
  std::string out;
  CHECK(OpenChunk(cipher, 4, 0, true, sealed, &out).ok());
  CHECK(out.empty());
  CHECK(OpenChunk(cipher, 4, 0, false, sealed, &out).code() == Code::kCorrupt);
  CHECK(OpenChunk(cipher, 1, 0, true, sealed, &out).code() == Code::kCorrupt);
}

TEST_CASE("appends to the output of Seal") {
  const Key& key = Keys("alice", "SimplePassword").content;
  ChunkCipher cipher(key, Cid{});
  std::string out = "prefix";
  const std::string plain = "hello";
  cipher.Seal(1, 0, true, AsBytes(plain), &out);
  REQUIRE(out.size() == 6 + plain.size() + kTagBytes);
  CHECK(out.substr(0, 6) == "prefix");
  std::string back;
  CHECK(OpenChunk(cipher, 1, 0, true, out.substr(6), &back).ok());
  CHECK(back == plain);
}

TEST_CASE("derives user keys deterministically, salted by the username") {
  const UserKeys a1 = DeriveUserKeys("alice", "pw");
  const UserKeys& a2 = Keys("alice", "pw");
  const UserKeys& b = Keys("bob", "pw");
  const UserKeys& a_other = Keys("alice", "pw2");
  CHECK(a1.auth == a2.auth);
  CHECK(a1.content == a2.content);
  CHECK(a1.auth != a1.content);
  CHECK(a1.auth != b.auth);
  CHECK(a1.content != b.content);
  CHECK(a1.auth != a_other.auth);
  CHECK(a1.content != a_other.content);
  CHECK(a1.auth != Key{});
}

TEST_CASE("gets the auth key from a password or a hashed secret") {
  const UserKeys& keys = Keys("alice", "SimplePassword");
  auto from_password = AuthKeyFromSecret("alice", "SimplePassword");
  REQUIRE(from_password.ok());
  CHECK(*from_password == keys.auth);

  const std::string hashed = HashedSecret("alice", "SimplePassword");
  CHECK(hashed == "$dfs1$" + ToHex(keys.auth));
  auto from_hash = AuthKeyFromSecret("alice", hashed);
  REQUIRE(from_hash.ok());
  CHECK(*from_hash == keys.auth);

  // Upper-case hex digits are accepted too.
  std::string upper = hashed;
  for (size_t i = 6; i < upper.size(); ++i)
    upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  auto from_upper = AuthKeyFromSecret("alice", upper);
  REQUIRE(from_upper.ok());
  CHECK(*from_upper == keys.auth);
}

TEST_CASE("refuses a malformed $dfs1$ secret") {
  const std::string hex64(64, 'a');
  for (std::string secret :
       {std::string("$dfs1$zz"), std::string("$dfs1$"), "$dfs1$" + hex64.substr(1),
        "$dfs1$" + hex64 + "a", "$dfs1$" + hex64.substr(1) + "g", "$dfs1$" + hex64 + "\n"}) {
    CAPTURE(secret);
    auto key = AuthKeyFromSecret("alice", secret);
    REQUIRE_FALSE(key.ok());
    CHECK(key.status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("computes the known MD5 digests, also when fed in parts") {
  struct Case {
    std::string input;
    std::string_view hex;
  };
  const Case cases[] = {
      {"", "d41d8cd98f00b204e9800998ecf8427e"},
      {"abc", "900150983cd24fb0d6963f7d28e17f72"},
      {"The quick brown fox jumps over the lazy dog", "9e107d9d372bb6826bd81d3542a419d6"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input);
    Md5 whole;
    whole.Update(c.input.data(), c.input.size());
    CHECK(ToHex(whole.Final()) == c.hex);
    Md5 parts;
    for (char ch : c.input) parts.Update(&ch, 1);
    CHECK(ToHex(parts.Final()) == c.hex);
  }
}

TEST_CASE("computes HMAC-SHA256 as in RFC 4231") {
  const std::string key = "Jefe";
  const std::string data = "what do ya want for nothing?";
  CHECK(ToHex(HmacSha256(AsBytes(key), AsBytes(data))) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("round-trips bytes through ToHex and FromHex") {
  std::vector<uint8_t> bytes(256);
  for (int i = 0; i < 256; ++i) bytes[i] = static_cast<uint8_t>(i);
  const std::string hex = ToHex(bytes);
  CHECK(hex.size() == 512);
  CHECK(hex.substr(0, 8) == "00010203");
  CHECK(hex.substr(504) == "fcfdfeff");
  std::vector<uint8_t> back(256);
  REQUIRE(FromHex(hex, back));
  CHECK(back == bytes);
  CHECK(ToHex({}) == "");
  CHECK(FromHex("", std::span<uint8_t>()));
}

TEST_CASE("refuses hex of the wrong length or with a non-hex digit") {
  const std::string_view cases[] = {"",     "0",    "012",  "01234", "0123456789", "0g12",
                                    "zz00", " 0ab", "0x12", "12-4",  "abc\xff"};
  for (std::string_view hex : cases) {
    CAPTURE(hex);
    std::array<uint8_t, 2> out{};  // two bytes need exactly 4 hex digits
    CHECK_FALSE(FromHex(hex, out));
  }
  std::array<uint8_t, 2> out{};
  CHECK(FromHex("aB0f", out));
  CHECK(out == std::array<uint8_t, 2>{0xab, 0x0f});
}

TEST_CASE("compares byte strings for equality in constant time") {
  const std::array<uint8_t, 3> a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4};
  const std::array<uint8_t, 2> d{1, 2};
  CHECK(SecureEqual(a, b));
  CHECK_FALSE(SecureEqual(a, c));
  CHECK_FALSE(SecureEqual(a, d));
  CHECK(SecureEqual(std::span<const uint8_t>(), std::span<const uint8_t>()));
}

TEST_CASE("counts chunks and sealed bytes") {
  struct Case {
    uint64_t plain;
    uint32_t chunk;
    uint64_t chunks;
    uint64_t sealed;
  };
  const Case cases[] = {
      {0, 65536, 1, 16},        {1, 65536, 1, 17},        {65535, 65536, 1, 65551},
      {65536, 65536, 1, 65552}, {65537, 65536, 2, 65569}, {3 * 65536, 65536, 3, 3 * 65536 + 48},
      {10, 3, 4, 74},
  };
  for (const Case& c : cases) {
    CAPTURE(c.plain);
    CAPTURE(c.chunk);
    CHECK(ChunkCount(c.plain, c.chunk) == c.chunks);
    CHECK(SealedSize(c.plain, c.chunk) == c.sealed);
  }
}

TEST_CASE("produces fresh random content ids") {
  const Cid a = RandomCid(), b = RandomCid();
  CHECK(a != b);
  std::array<uint8_t, 64> buf{};
  RandomBytes(buf.data(), buf.size());
  CHECK(buf != std::array<uint8_t, 64>{});
}

}  // namespace
}  // namespace dfs
