// Listener, accept loop, connection threads and graceful stop of dfs_server.
#include "dfs_server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "shared/util/log.h"

namespace dfs::server {
namespace {

spdlog::logger& Log() {
  static const std::shared_ptr<spdlog::logger> logger = Logger("net");
  return *logger;
}

// How often the accept loop wakes up to reap finished connections.
constexpr int kReapIntervalMs = 1000;

std::string PeerName(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unknown peer";
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, AuthKeys keys) {
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(options.root));
  DFS_ASSIGN_OR_RETURN(UniqueFd listener, ListenTcp(options.bind_address, options.port));
  DFS_ASSIGN_OR_RETURN(uint16_t port, BoundPort(listener.get()));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return FromErrno(errno, "pipe");
  UniqueFd stop_read(pipe_fds[0]), stop_write(pipe_fds[1]);
  Log().info("listening on {}:{}, storing in {}, {} users", options.bind_address, port,
             options.root, keys.size());
  return std::make_unique<Server>(PrivateTag(), options, std::move(keys), std::move(store),
                                  std::move(listener), port, std::move(stop_read),
                                  std::move(stop_write));
}

Server::Server(PrivateTag, const ServerOptions& options, AuthKeys keys,
               std::unique_ptr<Store> store, UniqueFd listener, uint16_t port, UniqueFd stop_read,
               UniqueFd stop_write)
    : options_(options),
      keys_(std::move(keys)),
      store_(std::move(store)),
      listener_(std::move(listener)),
      port_(port),
      stop_read_(std::move(stop_read)),
      stop_write_(std::move(stop_write)) {}

Server::~Server() {
  RequestStop();
  StopAll();
}

void Server::RequestStop() {
  // write(2) is async-signal-safe; a full pipe already means "stop".
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_write_.get(), &byte, 1);
}

Status Server::Run() {
  Status result;
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    int r = ::poll(fds, 2, kReapIntervalMs);
    if (r < 0) {
      if (errno == EINTR) continue;
      result = FromErrno(errno, "poll");
      Log().error("accept loop: {}", result.ToString());
      break;
    }
    if (fds[1].revents != 0) break;
    ReapFinished();
    if (fds[0].revents != 0) AcceptOne();
  }
  StopAll();
  return result;
}

void Server::AcceptOne() {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  UniqueFd fd(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
  if (!fd) {
    const int err = errno;
    if (err == EINTR || err == EAGAIN || err == ECONNABORTED) return;
    Log().warn("accept: {}", FromErrno(err, "accept").message());
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
      ::poll(nullptr, 0, 100);  // out of resources: do not spin on the pending connection
    return;
  }
  std::string peer = PeerName(ss);
  // The limit is checked before any per-connection state exists.
  int open = 0;
  {
    std::lock_guard lock(mu_);
    open = active_;
    if (open < options_.max_connections) ++active_;
  }
  if (open >= options_.max_connections) {
    Log().warn("{}: refused: {} connections open", peer, open);
    Refuse(std::move(fd), peer);
    return;
  }

  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto conn = std::make_unique<Connection>();
  conn->fd = std::move(fd);
  conn->peer = std::move(peer);
  Log().debug("{}: connected", conn->peer);
  try {
    conn->thread = std::thread(&Server::Serve, this, conn.get());
  } catch (const std::system_error& e) {
    // Out of threads: the connection is told, like any over the limit.
    Log().error("{}: cannot start a thread: {}", conn->peer, e.what());
    {
      std::lock_guard lock(mu_);
      --active_;
    }
    Refuse(std::move(conn->fd), conn->peer);
    return;
  }
  conns_.push_back(std::move(conn));
}

void Server::Refuse(UniqueFd fd, const std::string& peer) {
  // Best effort and brief: this runs on the accept thread.
  (void)SendErrorFrame(fd.get(), 0, Status(Code::kBusy, "server busy"), DeadlineIn(Millis(100)));
  ::shutdown(fd.get(), SHUT_WR);
  // Drain what the client already sent, so close() sends FIN rather than RST
  // and the client can read the error.
  char sink[4096];
  while (::recv(fd.get(), sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  Log().debug("{}: refused", peer);
}

void Server::Serve(Connection* conn) {
  Session session(conn->fd.get(), *store_, keys_, stop_read_.get(), options_.session, conn->peer);
  session.Run();
  // The peer sees the end now; the fd itself is closed when reaped, so its
  // number cannot be reused while the stop path might still shut it down.
  ::shutdown(conn->fd.get(), SHUT_RDWR);
  Log().debug("{}: disconnected", conn->peer);
  {
    std::lock_guard lock(mu_);
    --active_;
    conn->done = true;
  }
  cv_.notify_all();
}

void Server::ReapFinished() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void Server::StopAll() {
  if (listener_) {
    listener_.Reset();
    Log().info("stopping: {} connections open", conns_.size());
  }
  // Sessions between requests see the stop pipe and close; the rest get the
  // grace period to finish what they are doing.
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.grace, [this] { return active_ == 0; });
  }
  for (const auto& conn : conns_) {
    if (!conn->done) {
      Log().warn("{}: request still running after the grace period, cutting it off", conn->peer);
      ::shutdown(conn->fd.get(), SHUT_RDWR);
    }
  }
  for (const auto& conn : conns_) conn->thread.join();
  conns_.clear();
}

}  // namespace dfs::server
