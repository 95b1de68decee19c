// Unit tests of shared/protocol/frame.h: the 16-byte frame header.
#include "shared/protocol/frame.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <string>

namespace dfs {
namespace {

using Header = std::array<uint8_t, kFrameHeaderBytes>;

Header Encode(MsgType type, uint32_t request_id, uint32_t body_length) {
  Header h{};
  EncodeFrameHeader({type, request_id, body_length}, h.data());
  return h;
}

const MsgType kAllTypes[] = {
    MsgType::kHello,    MsgType::kProof,  MsgType::kPing,   MsgType::kList,      MsgType::kStat,
    MsgType::kPutBegin, MsgType::kCommit, MsgType::kAbort,  MsgType::kGet,       MsgType::kDelete,
    MsgType::kMkdir,    MsgType::kRmdir,  MsgType::kRename, MsgType::kRenameDir, MsgType::kSetAttr,
    MsgType::kStatFs,   MsgType::kPurge,  MsgType::kStage,  MsgType::kHintAdd,   MsgType::kHintList,
    MsgType::kHintDrop, MsgType::kRevert, MsgType::kFolder, MsgType::kData,      MsgType::kDataEnd,
    MsgType::kReply,    MsgType::kError,
};

TEST_CASE("lays out the header byte by byte as documented") {
  const Header h = Encode(MsgType::kGet, 0x01020304, 0x0000abcd);
  const Header want = {0x44, 0x46, 0x53, 0x21, 5, 9, 0, 0, 1, 2, 3, 4, 0, 0, 0xab, 0xcd};
  CHECK(h == want);
  CHECK(kProtocolVersion == 5);
  CHECK(std::memcmp(h.data(), "DFS!", 4) == 0);
}

TEST_CASE("round-trips the header of every message type") {
  for (MsgType type : kAllTypes) {
    for (uint32_t id : {0u, 1u, 0xffffffffu}) {
      for (uint32_t len : {0u, 1u, kMaxControlBody}) {
        CAPTURE(static_cast<int>(type));
        CAPTURE(id);
        CAPTURE(len);
        const Header h = Encode(type, id, len);
        FrameHeader out;
        Status s = DecodeFrameHeader(h.data(), &out);
        REQUIRE_MESSAGE(s.ok(), s.ToString());
        CHECK(out.type == type);
        CHECK(out.request_id == id);
        CHECK(out.body_length == len);
      }
    }
  }
}

TEST_CASE("knows exactly the message types of the protocol") {
  int known = 0;
  for (int t = 0; t < 256; ++t) known += IsKnownType(static_cast<uint8_t>(t)) ? 1 : 0;
  CHECK(known == static_cast<int>(std::size(kAllTypes)));
  for (MsgType type : kAllTypes) CHECK(IsKnownType(static_cast<uint8_t>(type)));
  for (int t : {0, 24, 31, 34, 63, 66, 255}) CHECK_FALSE(IsKnownType(static_cast<uint8_t>(t)));
}

TEST_CASE("allows 1 MiB bodies for data frames and 64 KiB for every other type") {
  for (MsgType type : kAllTypes) {
    CAPTURE(static_cast<int>(type));
    CHECK(MaxBodyFor(type) == (type == MsgType::kData ? kMaxDataBody : kMaxControlBody));
  }
}

TEST_CASE("rejects a header with a bad magic, version, type or flags") {
  struct Case {
    std::string_view what;
    size_t offset;
    uint8_t value;
  };
  const Case cases[] = {
      {"magic byte 0", 0, 'X'},
      {"magic byte 3", 3, '?'},
      {"version 0", 4, 0},
      {"version 1 (before TLS)", 4, 1},
      {"version 2 (before hints)", 4, 2},
      {"version 3 (before folder records)", 4, 3},
      {"version 4 (before extended attributes)", 4, 4},
      {"version 6", 4, 6},
      {"type 0", 5, 0},
      {"type 24", 5, 24},
      {"type 34", 5, 34},
      {"type 66", 5, 66},
      {"type 255", 5, 255},
      {"flags high byte", 6, 0x80},
      {"flags low byte", 7, 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Header h = Encode(MsgType::kPing, 7, 0);
    h[c.offset] = c.value;
    FrameHeader out;
    out.request_id = 12345;
    Status s = DecodeFrameHeader(h.data(), &out);
    CHECK(s.code() == Code::kProtocol);
    CHECK(out.request_id == 12345);  // untouched on error
  }
}

TEST_CASE("rejects a body longer than the frame limit and accepts one exactly at it") {
  struct Case {
    MsgType type;
    uint32_t length;
    bool ok;
  };
  const Case cases[] = {
      {MsgType::kPing, kMaxControlBody, true},
      {MsgType::kPing, kMaxControlBody + 1, false},
      {MsgType::kReply, kMaxControlBody + 1, false},
      {MsgType::kError, kMaxControlBody + 1, false},
      {MsgType::kDataEnd, kMaxControlBody + 1, false},
      {MsgType::kPutBegin, kMaxDataBody, false},
      {MsgType::kList, 0xffffffff, false},
      {MsgType::kData, kMaxDataBody, true},
      {MsgType::kData, kMaxControlBody + 1, true},
      {MsgType::kData, kMaxDataBody + 1, false},
      {MsgType::kData, 0xffffffff, false},
  };
  for (const Case& c : cases) {
    CAPTURE(static_cast<int>(c.type));
    CAPTURE(c.length);
    const Header h = Encode(c.type, 1, c.length);
    FrameHeader out;
    Status s = DecodeFrameHeader(h.data(), &out);
    if (c.ok) {
      CHECK(s.ok());
      CHECK(out.body_length == c.length);
    } else {
      CHECK(s.code() == Code::kProtocol);
    }
  }
}

TEST_CASE("applies a smaller max_body, as before login, to every type") {
  REQUIRE(kMaxHandshakeBody == 512);
  struct Case {
    MsgType type;
    uint32_t length;
    uint32_t max_body;
    bool ok;
  };
  const Case cases[] = {
      {MsgType::kHello, kMaxHandshakeBody, kMaxHandshakeBody, true},
      {MsgType::kHello, kMaxHandshakeBody + 1, kMaxHandshakeBody, false},
      {MsgType::kProof, kMaxHandshakeBody + 1, kMaxHandshakeBody, false},
      {MsgType::kData, kMaxHandshakeBody + 1, kMaxHandshakeBody, false},
      {MsgType::kData, kMaxControlBody, kMaxHandshakeBody, false},
      {MsgType::kPing, 0, kMaxHandshakeBody, true},
      {MsgType::kList, 0xffffffff, kMaxHandshakeBody, false},
      {MsgType::kHello, 0, 0, true},
      {MsgType::kHello, 1, 0, false},
      // A larger max_body never lifts the limit of the type.
      {MsgType::kPing, kMaxControlBody + 1, kMaxDataBody, false},
      {MsgType::kPing, kMaxControlBody + 1, 0xffffffff, false},
      {MsgType::kData, kMaxDataBody + 1, 0xffffffff, false},
      {MsgType::kData, kMaxDataBody, 0xffffffff, true},
  };
  for (const Case& c : cases) {
    CAPTURE(static_cast<int>(c.type));
    CAPTURE(c.length);
    CAPTURE(c.max_body);
    const Header h = Encode(c.type, 1, c.length);
    FrameHeader out;
    out.body_length = 12345;
    Status s = DecodeFrameHeader(h.data(), &out, c.max_body);
    if (c.ok) {
      CHECK(s.ok());
      CHECK(out.body_length == c.length);
    } else {
      CHECK(s.code() == Code::kProtocol);
      CHECK(s.message().find("exceeds the limit of " +
                             std::to_string(std::min(MaxBodyFor(c.type), c.max_body))) !=
            std::string::npos);
      CHECK(out.body_length == 12345);  // untouched on error
    }
  }
}

TEST_CASE("defaults max_body to no limit beyond the type's") {
  const Header h = Encode(MsgType::kData, 1, kMaxDataBody);
  FrameHeader out;
  CHECK(DecodeFrameHeader(h.data(), &out).ok());
  CHECK(DecodeFrameHeader(h.data(), &out, kMaxDataBody).ok());
  CHECK(DecodeFrameHeader(h.data(), &out, kMaxDataBody - 1).code() == Code::kProtocol);
}

}  // namespace
}  // namespace dfs
