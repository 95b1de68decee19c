// Blocking TCP sockets with deadlines. Every wait is a poll() bounded by a
// deadline, so a dead, hung or unplugged peer costs at most the deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/protocol/frame.h"
#include "shared/protocol/messages.h"
#include "shared/util/fd.h"
#include "shared/util/status.h"

namespace dfs {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
using Millis = std::chrono::milliseconds;

inline Deadline DeadlineIn(Millis ms) { return Clock::now() + ms; }

// Resolves host and connects, giving up after `timeout` (kTimeout or kUnavailable).
// The socket is CLOEXEC, TCP_NODELAY, and blocking (waits use poll()).
Result<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, Millis timeout);

// A listening socket on bind_address:port (port 0 picks a free port).
Result<UniqueFd> ListenTcp(const std::string& bind_address, uint16_t port, int backlog = 128);
// The local port a socket is bound to.
Result<uint16_t> BoundPort(int fd);

// Sends/receives exactly n bytes before the deadline. A closed connection is
// kUnavailable, an expired deadline kTimeout.
Status SendAll(int fd, const void* data, size_t n, Deadline deadline);
Status RecvAll(int fd, void* data, size_t n, Deadline deadline);

// Waits until fd is readable (Ok), stop_fd is readable (kCancelled), or the
// timeout passes (kTimeout). stop_fd may be -1.
Status WaitReadable(int fd, int stop_fd, Millis timeout);

Status SendFrame(int fd, MsgType type, uint32_t request_id, std::string_view body,
                 Deadline deadline);
// Reads one frame; the header is validated before the body is allocated.
Status RecvFrame(int fd, Frame* out, Deadline deadline);

template <typename T>
Status SendMessage(int fd, MsgType type, uint32_t request_id, const T& msg, Deadline deadline) {
  return SendFrame(fd, type, request_id, EncodeMessage(msg), deadline);
}
inline Status SendErrorFrame(int fd, uint32_t request_id, const Status& status, Deadline deadline) {
  return SendFrame(fd, MsgType::kError, request_id, EncodeError(status), deadline);
}

// Interprets a reply: kError becomes its Status, kReply is decoded as T,
// anything else is kProtocol.
template <typename T>
Result<T> ParseReply(const Frame& f) {
  if (f.type() == MsgType::kError) {
    Status s = DecodeError(f.body);
    if (s.ok()) return Status::Protocol("error reply without an error");
    return s;
  }
  if (f.type() != MsgType::kReply)
    return Status::Protocol("expected a reply, got message type " +
                            std::to_string(static_cast<int>(f.type())));
  return DecodeMessage<T>(f.body);
}

}  // namespace dfs
