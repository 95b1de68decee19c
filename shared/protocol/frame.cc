// Frame header encoding and validation.
#include "shared/protocol/frame.h"

#include <algorithm>

#include "shared/util/coding.h"

namespace dfs {

bool IsKnownType(uint8_t t) {
  return (t >= 1 && t <= 23) || t == 32 || t == 33 || t == 64 || t == 65;
}

uint32_t MaxBodyFor(MsgType type) {
  return type == MsgType::kData ? kMaxDataBody : kMaxControlBody;
}

void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderBytes]) {
  PutBE(out, kFrameMagic, 4);
  out[4] = kProtocolVersion;
  out[5] = static_cast<uint8_t>(h.type);
  PutBE(out + 6, 0, 2);
  PutBE(out + 8, h.request_id, 4);
  PutBE(out + 12, h.body_length, 4);
}

Status DecodeFrameHeader(const uint8_t in[kFrameHeaderBytes], FrameHeader* out, uint32_t max_body) {
  if (GetBE(in, 4) != kFrameMagic) return Status::Protocol("bad frame magic");
  if (in[4] != kProtocolVersion)
    return Status::Protocol("unsupported protocol version " + std::to_string(in[4]));
  if (!IsKnownType(in[5])) return Status::Protocol("unknown message type " + std::to_string(in[5]));
  if (GetBE(in + 6, 2) != 0) return Status::Protocol("reserved frame flags set");
  FrameHeader h;
  h.type = static_cast<MsgType>(in[5]);
  h.request_id = static_cast<uint32_t>(GetBE(in + 8, 4));
  h.body_length = static_cast<uint32_t>(GetBE(in + 12, 4));
  const uint32_t limit = std::min(MaxBodyFor(h.type), max_body);
  if (h.body_length > limit)
    return Status::Protocol("frame body of " + std::to_string(h.body_length) +
                            " bytes exceeds the limit of " + std::to_string(limit));
  *out = h;
  return Status::Ok();
}

}  // namespace dfs
