// Listener, accept loop, connection threads and graceful stop of dfs_server.
#include "dfs_server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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

// The client's address alone ("10.0.0.7", "[::1]") and with its port.
void PeerName(const sockaddr_storage& ss, std::string* address, std::string* peer) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    *address = host;
    *peer = *address + ":" + std::to_string(ntohs(in->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    *address = "[" + std::string(host) + "]";
    *peer = *address + ":" + std::to_string(ntohs(in6->sin6_port));
  } else {
    *address = *peer = "unknown peer";
  }
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, AuthKeys keys) {
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(options.root, options.store));
  bool created = false;
  DFS_ASSIGN_OR_RETURN(
      std::unique_ptr<TlsServerContext> tls,
      TlsServerContext::LoadOrCreate(options.root, options.session.server_name, &created));
  if (created)
    Log().warn("generated a new key for {}: {}", options.session.server_name, tls->fingerprint());
  DFS_ASSIGN_OR_RETURN(UniqueFd listener, ListenTcp(options.bind_address, options.port));
  DFS_ASSIGN_OR_RETURN(uint16_t port, BoundPort(listener.get()));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return FromErrno(errno, "pipe");
  UniqueFd stop_read(pipe_fds[0]), stop_write(pipe_fds[1]);
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return FromErrno(errno, "pipe");
  UniqueFd reload_read(pipe_fds[0]), reload_write(pipe_fds[1]);
  Log().info("listening on {}:{}, storing in {}, {} users", options.bind_address, port,
             options.root, keys.size());
  return std::make_unique<Server>(PrivateTag(), options, std::move(keys), std::move(store),
                                  std::move(tls), std::move(listener), port, std::move(stop_read),
                                  std::move(stop_write), std::move(reload_read),
                                  std::move(reload_write));
}

Server::Server(PrivateTag, const ServerOptions& options, AuthKeys keys,
               std::unique_ptr<Store> store, std::unique_ptr<TlsServerContext> tls,
               UniqueFd listener, uint16_t port, UniqueFd stop_read, UniqueFd stop_write,
               UniqueFd reload_read, UniqueFd reload_write)
    : options_(options),
      keys_(std::make_shared<const AuthKeys>(std::move(keys))),
      store_(std::move(store)),
      tls_(std::move(tls)),
      listener_(std::move(listener)),
      port_(port),
      stop_read_(std::move(stop_read)),
      stop_write_(std::move(stop_write)),
      reload_read_(std::move(reload_read)),
      reload_write_(std::move(reload_write)) {}

Server::~Server() {
  RequestStop();
  StopAll();
}

void Server::RequestStop() {
  // write(2) is async-signal-safe; a full pipe already means "stop".
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_write_.get(), &byte, 1);
}

void Server::RequestReload() {
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(reload_write_.get(), &byte, 1);
}

size_t Server::users() const {
  MutexLock lock(&keys_mu_);
  return keys_->size();
}

void Server::Reload() {
  char drain[64];
  while (::read(reload_read_.get(), drain, sizeof drain) > 0) {
  }
  if (!options_.reload_keys) return;
  Notify("RELOADING=1");
  Result<AuthKeys> keys = options_.reload_keys();
  if (keys.ok()) {
    const size_t n = keys->size();
    {
      MutexLock lock(&keys_mu_);
      keys_ = std::make_shared<const AuthKeys>(std::move(*keys));
    }
    Log().info("reloaded the users: {} can log in (connections already open stay)", n);
  } else {
    Log().error("reload failed, keeping the {} users loaded before: {}", users(),
                keys.status().message());
  }
  Notify("READY=1");
}

Status Server::Run() {
  Status result;
  Notify("READY=1");
  for (;;) {
    pollfd fds[3] = {{listener_.get(), POLLIN, 0},
                     {stop_read_.get(), POLLIN, 0},
                     {reload_read_.get(), POLLIN, 0}};
    int r = ::poll(fds, 3, kReapIntervalMs);
    if (r < 0) {
      if (errno == EINTR) continue;
      result = FromErrno(errno, "poll");
      Log().error("accept loop: {}", result.ToString());
      break;
    }
    if (fds[1].revents != 0) break;
    if (fds[2].revents != 0) Reload();
    ReapFinished();
    SweepIfDue();
    if (fds[0].revents != 0) AcceptOne();
  }
  Notify("STOPPING=1");
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
  auto conn = std::make_unique<Connection>(&mu_);
  PeerName(ss, &conn->address, &conn->peer);
  conn->accepted = Clock::now();
  // A new connection always gets in, at the expense of the oldest pending
  // one when the pending budget is full: no thread, no TLS state is spent
  // beyond the budget.
  Connection* evicted = nullptr;
  {
    MutexLock lock(&mu_);
    evicted = EvictForLocked(conn->address);
    ++active_;
    ++pending_;
    if (options_.session.metrics != nullptr) options_.session.metrics->ConnectionOpened();
    ++pending_by_address_[conn->address];
  }
  if (evicted != nullptr) {
    // Its fd stays open until this thread reaps it, so shutting it down
    // without the lock is safe; its thread sees the end and leaves.
    ::shutdown(evicted->fd.get(), SHUT_RDWR);
    Log().info("{}: not logged in after {} ms, cut off to make room", evicted->peer,
               std::chrono::duration_cast<Millis>(Clock::now() - evicted->accepted).count());
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conn->fd = std::move(fd);
  Log().debug("{}: connected", conn->peer);
  try {
    conn->thread = std::thread(&Server::Serve, this, conn.get());
  } catch (const std::system_error& e) {
    // Out of threads: the connection is closed at once.
    Log().error("{}: cannot start a thread: {}", conn->peer, e.what());
    MutexLock lock(&mu_);
    --active_;
    --pending_;
    if (--pending_by_address_[conn->address] == 0) pending_by_address_.erase(conn->address);
    return;
  }
  conns_.push_back(std::move(conn));
}

Server::Connection* Server::EvictForLocked(const std::string& address) {
  const auto it = pending_by_address_.find(address);
  const bool address_full =
      it != pending_by_address_.end() && it->second >= options_.max_pending_per_address;
  if (!address_full && pending_ < options_.max_pending) return nullptr;
  // conns_ is in accept order: the first match is the oldest.
  for (const auto& c : conns_) {
    Admission& a = c->admission.Get(&mu_);
    if (c->done || a.logged_in || a.evicted) continue;
    if (address_full && c->address != address) continue;
    a.evicted = true;
    --pending_;
    if (--pending_by_address_[c->address] == 0) pending_by_address_.erase(c->address);
    return c.get();
  }
  return nullptr;
}

Status Server::Admit(Connection* conn, const std::string& user) {
  MutexLock lock(&mu_);
  Admission& a = conn->admission.Get(&mu_);
  if (a.evicted) return Status(Code::kCancelled, "connection was cut off");
  if (logged_in_ >= options_.max_connections)
    return Status(Code::kBusy, "server busy: " + std::to_string(logged_in_) + " connections open");
  int& mine = logged_in_by_user_[user];
  if (mine >= options_.max_connections_per_user) {
    if (mine == 0) logged_in_by_user_.erase(user);
    return Status(Code::kBusy,
                  "server busy: " + std::to_string(mine) + " connections of this user are open");
  }
  ++mine;
  ++logged_in_;
  --pending_;
  if (--pending_by_address_[conn->address] == 0) pending_by_address_.erase(conn->address);
  a.logged_in = true;
  a.user = user;
  return Status::Ok();
}

void Server::Serve(Connection* conn) {
  const Deadline login_deadline = conn->accepted + options_.session.handshake_timeout;
  auto channel = TlsChannel::Accept(conn->fd.get(), *tls_, login_deadline);
  if (Metrics* m = options_.session.metrics; channel.ok() && m != nullptr)
    (*channel)->CountInto(m->received_bytes(), m->sent_bytes());
  if (channel.ok()) {
    std::shared_ptr<const AuthKeys> keys;
    {
      MutexLock lock(&keys_mu_);
      keys = keys_;
    }
    Session session(**channel, *store_, *keys, stop_read_.get(), options_.session, conn->peer,
                    login_deadline,
                    [this, conn](const std::string& user) { return Admit(conn, user); });
    session.Run();
  } else {
    Log().debug("{}: {}", conn->peer, channel.status().ToString());
  }
  // The peer sees the end now; the fd itself is closed when reaped, so its
  // number cannot be reused while the stop path might still shut it down.
  ::shutdown(conn->fd.get(), SHUT_RDWR);
  Log().debug("{}: disconnected", conn->peer);
  {
    MutexLock lock(&mu_);
    --active_;
    const Admission& a = conn->admission.Get(&mu_);
    if (a.logged_in) {
      --logged_in_;
      if (--logged_in_by_user_[a.user] == 0) logged_in_by_user_.erase(a.user);
    } else if (!a.evicted) {
      --pending_;
      if (--pending_by_address_[conn->address] == 0) pending_by_address_.erase(conn->address);
    }
    conn->done = true;
    if (options_.session.metrics != nullptr) options_.session.metrics->ConnectionClosed();
  }
  cv_.SignalAll();
}

void Server::SweepIfDue() {
  const auto now = Clock::now();
  if (now < next_sweep_) return;
  const auto interval = std::clamp<std::chrono::seconds>(
      options_.staging_ttl / 4, std::chrono::seconds(1), std::chrono::seconds(60));
  next_sweep_ = now + interval;
  auto swept = store_->SweepStaging(options_.staging_ttl);
  if (!swept.ok())
    Log().warn("staging sweep: {}", swept.status().ToString());
  else if (*swept > 0)
    Log().info("removed {} abandoned upload file(s) from staging", *swept);
  if (auto retired = store_->SweepRetired(); !retired.ok())
    Log().warn("sweep of replaced pieces: {}", retired.status().ToString());
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
    const Deadline deadline = DeadlineIn(options_.grace);
    MutexLock lock(&mu_);
    while (active_ > 0) {
      if (!cv_.WaitUntil(&mu_, deadline)) break;  // the grace period is over
    }
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
