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

int RemainingMs(Deadline deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

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

Status SendAll(int fd, const void* data, size_t n, Deadline deadline) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      DFS_RETURN_IF_ERROR(PollFor(fd, POLLOUT, deadline, "send"));
      continue;
    }
    return FromErrno(errno, "send");
  }
  return Status::Ok();
}

Status RecvAll(int fd, void* data, size_t n, Deadline deadline) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) {
      p += r;
      n -= static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return Status::Unavailable("connection closed by peer");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      DFS_RETURN_IF_ERROR(PollFor(fd, POLLIN, deadline, "receive"));
      continue;
    }
    return FromErrno(errno, "recv");
  }
  return Status::Ok();
}

Status WaitReadable(int fd, int stop_fd, Millis timeout) {
  const Deadline deadline = DeadlineIn(timeout);
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int r = ::poll(p, stop_fd >= 0 ? 2 : 1, RemainingMs(deadline));
    if (r < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "poll");
    }
    if (r == 0) return Status::Timeout("idle");
    if (stop_fd >= 0 && p[1].revents) return Status(Code::kCancelled, "stopping");
    return Status::Ok();
  }
}

Status SendFrame(int fd, MsgType type, uint32_t request_id, std::string_view body,
                 Deadline deadline) {
  if (body.size() > MaxBodyFor(type)) return Status::TooLarge("frame body too large to send");
  uint8_t header[kFrameHeaderBytes];
  EncodeFrameHeader({type, request_id, static_cast<uint32_t>(body.size())}, header);
  if (body.size() <= 4096) {
    // One send for small frames: fewer syscalls and segments.
    char buf[kFrameHeaderBytes + 4096];
    std::memcpy(buf, header, kFrameHeaderBytes);
    if (!body.empty()) std::memcpy(buf + kFrameHeaderBytes, body.data(), body.size());
    return SendAll(fd, buf, kFrameHeaderBytes + body.size(), deadline);
  }
  DFS_RETURN_IF_ERROR(SendAll(fd, header, kFrameHeaderBytes, deadline));
  return SendAll(fd, body.data(), body.size(), deadline);
}

Status RecvFrame(int fd, Frame* out, Deadline deadline) {
  uint8_t header[kFrameHeaderBytes];
  DFS_RETURN_IF_ERROR(RecvAll(fd, header, sizeof header, deadline));
  DFS_RETURN_IF_ERROR(DecodeFrameHeader(header, &out->header));
  out->body.resize(out->header.body_length);
  if (out->header.body_length == 0) return Status::Ok();
  return RecvAll(fd, out->body.data(), out->body.size(), deadline);
}

}  // namespace dfs
