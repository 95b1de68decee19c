// Unit tests of shared/format/xattrs.h: the encoded list of extended
// attributes, its limits, and the sealed trailer stored after each piece.
#include "shared/format/xattrs.h"

#include <doctest/doctest.h>

#include <string>

#include "shared/util/coding.h"

namespace dfs {
namespace {

Key KeyOf(uint8_t seed) {
  Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + i);
  return k;
}
Cid CidOf(uint8_t seed) {
  Cid c{};
  for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>(seed * 3 + i);
  return c;
}

TEST_CASE("encodes a list as documented and decodes it back") {
  const XattrMap m = {{"user.b", ""}, {"user.a", std::string("v\0w", 3)}};
  auto enc = EncodeXattrs(m);
  REQUIRE(enc.ok());
  // u16 count; per attribute, by name: u8 name length, name, u16 value length, value.
  const std::string want = std::string("\0\2", 2) + "\6user.a" + std::string("\0\3v\0w", 5) +
                           "\6user.b" + std::string("\0\0", 2);
  CHECK(*enc == want);
  auto dec = DecodeXattrs(*enc);
  REQUIRE(dec.ok());
  CHECK(*dec == m);
  auto empty = EncodeXattrs({});
  REQUIRE(empty.ok());
  CHECK(*empty == std::string("\0\0", 2));
}

TEST_CASE("names: user. and more, at most 255 bytes, no NUL") {
  struct Case {
    std::string name;
    bool valid;
  };
  const Case cases[] = {
      {"user.x", true},
      {"user." + std::string(250, 'n'), true},  // 255 bytes
      {"user." + std::string(251, 'n'), false},
      {"user.", false},
      {"trusted.x", false},
      {"security.selinux", false},
      {"system.posix_acl_access", false},
      {"User.x", false},
      {std::string("user.a\0b", 8), false},
      {"", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(ValidXattrName(c.name) == c.valid);
    auto enc = EncodeXattrs({{c.name, "v"}});
    CHECK(enc.ok() == c.valid);
    if (!c.valid) CHECK(enc.status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("the whole list is limited to kMaxXattrBytes: more is no space") {
  // One attribute: 2 (count) + 1 + 6 ("user.v") + 2 + value.
  const size_t fixed = 2 + 1 + 6 + 2;
  auto at = EncodeXattrs({{"user.v", std::string(kMaxXattrBytes - fixed, 'a')}});
  REQUIRE(at.ok());
  CHECK(at->size() == kMaxXattrBytes);
  auto over = EncodeXattrs({{"user.v", std::string(kMaxXattrBytes - fixed + 1, 'a')}});
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().code() == Code::kNoSpace);
  auto huge = EncodeXattrs({{"user.v", std::string(70000, 'a')}});
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.status().code() == Code::kNoSpace);
  // Many small ones add up.
  XattrMap many;
  for (int i = 0; i < 400; ++i) many.emplace("user.n" + std::to_string(i), "value");
  auto sum = EncodeXattrs(many);
  REQUIRE_FALSE(sum.ok());
  CHECK(sum.status().code() == Code::kNoSpace);
}

TEST_CASE("decoding refuses anything EncodeXattrs would not write") {
  const std::string one = std::string("\0\1", 2) + "\6user.a" + std::string("\0\1v", 3);
  REQUIRE(DecodeXattrs(one).ok());
  struct Case {
    std::string_view what;
    std::string bytes;
  };
  const Case cases[] = {
      {"nothing", ""},
      {"count only, one missing", std::string("\0\1", 2)},
      {"trailing byte", one + "x"},
      {"count 2, one given", std::string("\0\2", 2) + one.substr(2)},
      {"name length 0", std::string("\0\1\0\0\0", 5)},
      {"name not user.", std::string("\0\1", 2) + "\6trust.a" + std::string("\0\0", 2)},
      {"value longer than the bytes",
       std::string("\0\1", 2) + "\6user.a" + std::string("\0\9v", 3)},
      {"out of order", std::string("\0\2", 2) + "\6user.b" + std::string("\0\0", 2) + "\6user.a" +
                           std::string("\0\0", 2)},
      {"repeated", std::string("\0\2", 2) + "\6user.a" + std::string("\0\0", 2) + "\6user.a" +
                       std::string("\0\0", 2)},
      {"longer than kMaxXattrBytes", std::string(kMaxXattrBytes + 1, '\0')},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto d = DecodeXattrs(c.bytes);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == Code::kCorrupt);
  }
}

TEST_CASE("a trailer opens under its key and content id only") {
  const Key key = KeyOf(1);
  const Cid cid = CidOf(2);
  const XattrMap m = {{"user.color", "blue"}, {"user.n", "42"}};
  auto t = SealXattrs(key, cid, m);
  REQUIRE(t.ok());
  CHECK(t->size() == EncodeXattrs(m)->size() + kXattrTrailerOverhead);
  // The plaintext does not show.
  CHECK(t->find("blue") == std::string::npos);
  CHECK(t->find("user.color") == std::string::npos);
  auto back = OpenXattrs(key, cid, *t);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(*back == m);

  // Sealing again picks a fresh nonce: the bytes differ.
  auto again = SealXattrs(key, cid, m);
  REQUIRE(again.ok());
  CHECK(*again != *t);

  CHECK(OpenXattrs(KeyOf(9), cid, *t).status().code() == Code::kCorrupt);
  CHECK(OpenXattrs(key, CidOf(3), *t).status().code() == Code::kCorrupt);
  for (size_t i : {size_t{0}, size_t{7}, size_t{8}, t->size() / 2, t->size() - 1}) {
    CAPTURE(i);
    std::string bad = *t;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    CHECK(OpenXattrs(key, cid, bad).status().code() == Code::kCorrupt);
  }
  CHECK(OpenXattrs(key, cid, t->substr(0, t->size() - 1)).status().code() == Code::kCorrupt);
  CHECK(OpenXattrs(key, cid, std::string(kXattrTrailerOverhead - 1, '\0')).status().code() ==
        Code::kCorrupt);
  CHECK(OpenXattrs(key, cid, std::string(kMaxXattrTrailerBytes + 1, '\0')).status().code() ==
        Code::kCorrupt);
}

TEST_CASE("no attributes: no trailer") {
  auto t = SealXattrs(KeyOf(1), CidOf(1), {});
  REQUIRE(t.ok());
  CHECK(t->empty());
  auto back = OpenXattrs(KeyOf(1), CidOf(1), "");
  REQUIRE(back.ok());
  CHECK(back->empty());
}

TEST_CASE("the largest list seals into the largest trailer a header may describe") {
  const size_t fixed = 2 + 1 + 6 + 2;
  const XattrMap m = {{"user.v", std::string(kMaxXattrBytes - fixed, 'z')}};
  auto t = SealXattrs(KeyOf(4), CidOf(4), m);
  REQUIRE(t.ok());
  CHECK(t->size() == kMaxXattrTrailerBytes);
  CHECK(kMaxXattrTrailerBytes <= 0xffff);  // fits the header's u16
  auto back = OpenXattrs(KeyOf(4), CidOf(4), *t);
  REQUIRE(back.ok());
  CHECK(*back == m);
}

}  // namespace
}  // namespace dfs
