// TCP helpers over poll() with deadlines.
#include "shared/net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace dfs {
namespace {

// Waits for `events` on fd before the deadline.
Status PollFor(int fd, short events, Deadline deadline, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int ms = RemainingMs(deadline);
    int r = ::poll(&p, 1, ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "poll");
    }
    if (r == 0) return Status::Timeout(std::string(what) + " timed out");
    return Status::Ok();
  }
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Result<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, Millis timeout) {
  const Deadline deadline = DeadlineIn(timeout);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0) return Status::Unavailable("cannot resolve '" + host + "': " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  Status last = Status::Unavailable("no address for '" + host + "'");
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    UniqueFd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd) {
      last = FromErrno(errno, "socket");
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = FromErrno(errno, "connect");
        continue;
      }
      Status s = PollFor(fd.get(), POLLOUT, deadline, "connect");
      if (!s.ok()) {
        last = s;
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = FromErrno(err, "connect");
        continue;
      }
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    SetNoDelay(fd.get());
    return fd;
  }
  return last;
}

Result<UniqueFd> ListenTcp(const std::string& bind_address, uint16_t port, int backlog) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  int rc = ::getaddrinfo(bind_address.empty() ? nullptr : bind_address.c_str(), port_text.c_str(),
                         &hints, &res);
  if (rc != 0)
    return Status::Invalid("cannot resolve bind address '" + bind_address +
                           "': " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  Status last = Status::Invalid("no address to bind");
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      last = FromErrno(errno, "socket");
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = FromErrno(errno, "bind to port " + port_text);
      continue;
    }
    if (::listen(fd.get(), backlog) != 0) {
      last = FromErrno(errno, "listen");
      continue;
    }
    return fd;
  }
  return last;
}

Result<uint16_t> BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return FromErrno(errno, "getsockname");
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return Status::Invalid("not an IP socket");
}

Status SendFrame(TlsChannel& ch, MsgType type, uint32_t request_id, std::string_view body,
                 Deadline deadline) {
  if (body.size() > MaxBodyFor(type)) return Status::TooLarge("frame body too large to send");
  uint8_t header[kFrameHeaderBytes];
  EncodeFrameHeader({type, request_id, static_cast<uint32_t>(body.size())}, header);
  if (body.size() <= 16384 - kFrameHeaderBytes) {
    // One TLS record for small frames: fewer syscalls, records and segments.
    char buf[16384];
    std::memcpy(buf, header, kFrameHeaderBytes);
    if (!body.empty()) std::memcpy(buf + kFrameHeaderBytes, body.data(), body.size());
    return ch.Write(buf, kFrameHeaderBytes + body.size(), deadline);
  }
  DFS_RETURN_IF_ERROR(ch.Write(header, kFrameHeaderBytes, deadline));
  return ch.Write(body.data(), body.size(), deadline);
}

Status RecvFrame(TlsChannel& ch, Frame* out, Deadline deadline, uint32_t max_body) {
  uint8_t header[kFrameHeaderBytes];
  DFS_RETURN_IF_ERROR(ch.Read(header, sizeof header, deadline));
  DFS_RETURN_IF_ERROR(DecodeFrameHeader(header, &out->header, max_body));
  out->body.resize(out->header.body_length);
  if (out->header.body_length == 0) return Status::Ok();
  return ch.Read(out->body.data(), out->body.size(), deadline);
}

}  // namespace dfs
