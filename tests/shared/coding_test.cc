// Unit tests of shared/util/coding.h: big-endian encoding and the bounds-checked decoder.
#include "shared/util/coding.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace dfs {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

TEST_CASE("writes fixed-width integers big-endian") {
  Encoder e;
  e.U8(0x01);
  e.U16(0x0203);
  e.U32(0x04050607);
  e.U64(0x08090a0b0c0d0e0fULL);
  e.I64(-2);
  e.Bool(true);
  e.Bool(false);
  CHECK(e.data() ==
        Bytes({0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
               0x0e, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x01, 0x00}));
  CHECK(e.size() == 25);
}

TEST_CASE("prefixes strings with a u16 length and byte strings with a u32 length") {
  Encoder e;
  e.Str("ab");
  e.Bytes("xyz");
  e.Raw("!");
  CHECK(e.Take() == Bytes({0, 2, 'a', 'b', 0, 0, 0, 3, 'x', 'y', 'z', '!'}));
}

TEST_CASE("PutBE and GetBE agree for every width") {
  for (int width = 1; width <= 8; ++width) {
    CAPTURE(width);
    const uint64_t v = 0x8877665544332211ULL & (width == 8 ? ~0ULL : (1ULL << (8 * width)) - 1);
    uint8_t buf[8] = {};
    PutBE(buf, v, width);
    CHECK(buf[width - 1] == 0x11);  // least significant byte last
    CHECK(GetBE(buf, width) == v);
  }
}

TEST_CASE("round-trips every field type through Encoder and Decoder") {
  const std::string binary("a\0b\xff", 4);
  Encoder e;
  e.U8(255);
  e.U16(65535);
  e.U32(0xdeadbeef);
  e.U64(std::numeric_limits<uint64_t>::max());
  e.I64(std::numeric_limits<int64_t>::min());
  e.Bool(true);
  e.Str("");
  e.Str(binary);
  e.Bytes(std::string(70000, 'q'));
  e.Raw("raw");
  const std::string wire = e.Take();

  Decoder d(wire);
  uint8_t u8 = 0;
  uint16_t u16 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  int64_t i64 = 0;
  bool b = false;
  std::string empty = "x", str, bytes;
  char raw[3];
  REQUIRE(d.U8(&u8));
  REQUIRE(d.U16(&u16));
  REQUIRE(d.U32(&u32));
  REQUIRE(d.U64(&u64));
  REQUIRE(d.I64(&i64));
  REQUIRE(d.Bool(&b));
  REQUIRE(d.Str(&empty));
  REQUIRE(d.Str(&str));
  REQUIRE(d.Bytes(&bytes, 1 << 20));
  REQUIRE(d.Raw(raw, 3));
  CHECK(u8 == 255);
  CHECK(u16 == 65535);
  CHECK(u32 == 0xdeadbeef);
  CHECK(u64 == std::numeric_limits<uint64_t>::max());
  CHECK(i64 == std::numeric_limits<int64_t>::min());
  CHECK(b);
  CHECK(empty.empty());
  CHECK(str == binary);
  CHECK(bytes == std::string(70000, 'q'));
  CHECK(std::string(raw, 3) == "raw");
  CHECK(d.done());
  CHECK_FALSE(d.failed());
  CHECK(d.remaining() == 0);
}

TEST_CASE("fails instead of reading past a short input") {
  const std::string three = Bytes({1, 2, 3});
  SUBCASE("u8 of nothing") {
    Decoder d("");
    uint8_t v;
    CHECK_FALSE(d.U8(&v));
    CHECK(d.failed());
  }
  SUBCASE("u16 of one byte") {
    Decoder d(std::string_view(three).substr(0, 1));
    uint16_t v;
    CHECK_FALSE(d.U16(&v));
  }
  SUBCASE("u32 of three bytes") {
    Decoder d(three);
    uint32_t v;
    CHECK_FALSE(d.U32(&v));
  }
  SUBCASE("u64 of three bytes") {
    Decoder d(three);
    uint64_t v;
    CHECK_FALSE(d.U64(&v));
  }
  SUBCASE("i64 of three bytes") {
    Decoder d(three);
    int64_t v;
    CHECK_FALSE(d.I64(&v));
  }
  SUBCASE("raw of four from three") {
    Decoder d(three);
    char buf[4];
    CHECK_FALSE(d.Raw(buf, 4));
  }
  SUBCASE("str with a one-byte length") {
    Decoder d(std::string_view(three).substr(0, 1));
    std::string s;
    CHECK_FALSE(d.Str(&s));
  }
}

TEST_CASE("stays failed after the first error") {
  const std::string wire = Bytes({0, 0, 0, 9, 1, 2});
  Decoder d(wire);
  std::string s;
  CHECK_FALSE(d.Bytes(&s, 100));  // length 9 with 2 bytes left
  uint8_t v = 0;
  CHECK_FALSE(d.U8(&v));  // a byte is there, but the decoder is failed
  CHECK(d.failed());
  CHECK_FALSE(d.done());
}

TEST_CASE("rejects a string or byte string length beyond max or beyond the input") {
  struct Case {
    std::string_view what;
    std::string wire;
    bool bytes;  // Bytes() (u32 length) instead of Str() (u16 length)
    size_t max;
    bool ok;
  };
  const Case cases[] = {
      {"str within max", Bytes({0, 3, 'a', 'b', 'c'}), false, 3, true},
      {"str over max", Bytes({0, 3, 'a', 'b', 'c'}), false, 2, false},
      {"str beyond input", Bytes({0, 4, 'a', 'b', 'c'}), false, 100, false},
      {"str of 65535 claimed", Bytes({0xff, 0xff, 'a'}), false, 65535, false},
      {"bytes within max", Bytes({0, 0, 0, 2, 'a', 'b'}), true, 2, true},
      {"bytes over max", Bytes({0, 0, 0, 2, 'a', 'b'}), true, 1, false},
      {"bytes beyond input", Bytes({0, 0, 0, 3, 'a', 'b'}), true, 100, false},
      {"bytes of 4 GiB claimed", Bytes({0xff, 0xff, 0xff, 0xff, 'a'}), true, SIZE_MAX, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Decoder d(c.wire);
    std::string out;
    bool ok = c.bytes ? d.Bytes(&out, c.max) : d.Str(&out, c.max);
    CHECK(ok == c.ok);
    CHECK(d.failed() == !c.ok);
    if (!ok) CHECK(out.empty());
  }
}

TEST_CASE("decodes a bool only from 0 or 1") {
  for (int byte : {0, 1, 2, 0x80, 0xff}) {
    CAPTURE(byte);
    const std::string wire = Bytes({byte});
    Decoder d(wire);
    bool v = false;
    CHECK(d.Bool(&v) == (byte <= 1));
    if (byte <= 1) CHECK(v == (byte == 1));
  }
}

TEST_CASE("is not done after a failed read, even at the end of the input") {
  SUBCASE("read from empty input") {
    Decoder d("");
    uint8_t v;
    CHECK_FALSE(d.U8(&v));
    CHECK_FALSE(d.done());
  }
  SUBCASE("bad bool as the last byte") {
    const std::string wire = Bytes({2});
    Decoder d(wire);
    bool v;
    CHECK_FALSE(d.Bool(&v));
    CHECK_FALSE(d.done());
  }
}

TEST_CASE("is done only when all input was consumed without error") {
  const std::string wire = Bytes({1, 2});
  Decoder d(wire);
  uint8_t v;
  CHECK_FALSE(d.done());
  REQUIRE(d.U8(&v));
  CHECK_FALSE(d.done());
  CHECK(d.remaining() == 1);
  REQUIRE(d.U8(&v));
  CHECK(d.done());
}

}  // namespace
}  // namespace dfs
