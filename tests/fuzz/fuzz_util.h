// Helpers shared by the libFuzzer targets of tests/fuzz: a check that aborts
// (so libFuzzer records the input as a crash) and the few values the targets
// and the corpus generator agree on.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shared/crypto/crypto.h"
#include "shared/protocol/frame.h"
#include "shared/util/status.h"

// Aborts with the file, line and condition when a property does not hold.
#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

// Like FUZZ_CHECK, and prints a Status that explains the failure.
#define FUZZ_CHECK_OK(status_expr)                                                          \
  do {                                                                                      \
    const ::dfs::Status fuzz_status_ = (status_expr);                                       \
    if (!fuzz_status_.ok()) {                                                               \
      std::fprintf(stderr, "%s:%d: fuzz property violated: %s is %s\n", __FILE__, __LINE__, \
                   #status_expr, fuzz_status_.ToString().c_str());                          \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

namespace dfs::fuzz {

inline std::string_view AsView(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// True when `text` holds a control byte (< 0x20 or 0x7f): what must never
// reach a log line or a terminal from a peer.
inline bool HasControlByte(std::string_view text) {
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return true;
  }
  return false;
}

// A fixed key, so that every run of a target is deterministic.
inline Key FixedKey(uint8_t seed) {
  Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + 7 * i);
  return k;
}

// Reads the next frame of a byte stream as RecvFrame() does from a channel:
// the header is validated against `max_body` before the body is taken.
// kUnavailable when the stream ends (before or inside a frame), kProtocol for
// a bad header.
inline Status ReadFrame(std::string_view* in, Frame* out, uint32_t max_body) {
  if (in->size() < kFrameHeaderBytes) return Status::Unavailable("end of input");
  DFS_RETURN_IF_ERROR(
      DecodeFrameHeader(reinterpret_cast<const uint8_t*>(in->data()), &out->header, max_body));
  in->remove_prefix(kFrameHeaderBytes);
  if (in->size() < out->header.body_length) return Status::Unavailable("end of input in a body");
  out->body.assign(in->data(), out->header.body_length);
  in->remove_prefix(out->header.body_length);
  return Status::Ok();
}

// The frame `type`/`id`/`body` as it travels (what SendFrame writes).
inline std::string FrameBytes(MsgType type, uint32_t id, std::string_view body) {
  uint8_t header[kFrameHeaderBytes];
  EncodeFrameHeader({type, id, static_cast<uint32_t>(body.size())}, header);
  std::string out(reinterpret_cast<const char*>(header), kFrameHeaderBytes);
  out.append(body);
  return out;
}

}  // namespace dfs::fuzz
