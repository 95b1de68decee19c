// TCP sockets with deadlines, and frames over a TLS channel (tls.h). Every
// wait is a poll() bounded by a deadline, so a dead, hung or unplugged peer
// costs at most the deadline.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/net/tls.h"
#include "shared/protocol/frame.h"
#include "shared/protocol/messages.h"
#include "shared/util/fd.h"
#include "shared/util/status.h"
#include "shared/util/time.h"

namespace dfs {

// Resolves host and connects, giving up after `timeout` (kTimeout or kUnavailable).
// The socket is CLOEXEC, TCP_NODELAY, and blocking (waits use poll()).
Result<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, Millis timeout);

// A listening socket on bind_address:port (port 0 picks a free port).
Result<UniqueFd> ListenTcp(const std::string& bind_address, uint16_t port, int backlog = 128);
// The local port a socket is bound to.
Result<uint16_t> BoundPort(int fd);

Status SendFrame(TlsChannel& ch, MsgType type, uint32_t request_id, std::string_view body,
                 Deadline deadline);
// Reads one frame; the header is validated (body at most `max_body`) before
// the body is allocated.
Status RecvFrame(TlsChannel& ch, Frame* out, Deadline deadline, uint32_t max_body = kMaxDataBody);

template <typename T>
Status SendMessage(TlsChannel& ch, MsgType type, uint32_t request_id, const T& msg,
                   Deadline deadline) {
  return SendFrame(ch, type, request_id, EncodeMessage(msg), deadline);
}
inline Status SendErrorFrame(TlsChannel& ch, uint32_t request_id, const Status& status,
                             Deadline deadline) {
  return SendFrame(ch, MsgType::kError, request_id, EncodeError(status), deadline);
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
