// Fuzz target: the 16-byte frame header (shared/protocol/frame.h).
// Input: 16 header bytes, then optionally 4 bytes (big-endian) of `max_body`.
// Properties: a header that decodes re-encodes to the same 16 bytes; a
// header accepted under a `max_body` is accepted without it, with the same
// fields; an accepted body length respects both limits.
#include <cstring>

#include "shared/protocol/frame.h"
#include "shared/util/coding.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dfs;
  if (size < kFrameHeaderBytes) return 0;
  uint8_t in[kFrameHeaderBytes];
  std::memcpy(in, data, kFrameHeaderBytes);

  FrameHeader h;
  const Status plain = DecodeFrameHeader(in, &h);
  if (plain.ok()) {
    FUZZ_CHECK(IsKnownType(static_cast<uint8_t>(h.type)));
    FUZZ_CHECK(h.body_length <= MaxBodyFor(h.type));
    uint8_t out[kFrameHeaderBytes];
    EncodeFrameHeader(h, out);
    FUZZ_CHECK(std::memcmp(in, out, kFrameHeaderBytes) == 0);
    FrameHeader again;
    FUZZ_CHECK_OK(DecodeFrameHeader(out, &again));
    FUZZ_CHECK(again.type == h.type && again.request_id == h.request_id &&
               again.body_length == h.body_length);
  } else {
    FUZZ_CHECK(plain.code() == Code::kProtocol);
  }

  if (size >= kFrameHeaderBytes + 4) {
    const auto max_body = static_cast<uint32_t>(GetBE(data + kFrameHeaderBytes, 4));
    FrameHeader limited;
    const Status s = DecodeFrameHeader(in, &limited, max_body);
    if (s.ok()) {
      // A smaller limit never admits what the type's own limit refuses.
      FUZZ_CHECK(plain.ok());
      FUZZ_CHECK(limited.type == h.type && limited.request_id == h.request_id &&
                 limited.body_length == h.body_length);
      FUZZ_CHECK(limited.body_length <= max_body);
    } else {
      FUZZ_CHECK(s.code() == Code::kProtocol);
      // Refused only for the limit when the header itself is fine.
      if (plain.ok()) FUZZ_CHECK(h.body_length > max_body);
    }
  }
  return 0;
}
