// Connections, the handshake and the pool.
#include "fuse_client/client/connection.h"

#include <sys/socket.h>

#include <poll.h>

#include <cstdio>
#include <cstdlib>

#include "shared/protocol/auth.h"
#include "shared/util/log.h"
#include "shared/util/names.h"

namespace dfs::client {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<Millis>(Clock::now().time_since_epoch()).count();
}

}  // namespace

bool IsNetworkFailure(const Status& s) {
  switch (s.code()) {
    case Code::kTimeout:
    case Code::kUnavailable:
    case Code::kProtocol:
    case Code::kBusy:
      return true;
    default:
      return false;
  }
}

Result<std::unique_ptr<Connection>> Connection::Open(const ServerAddress& addr,
                                                     const std::string& user, const Key& verifier,
                                                     TlsClientContext& tls, KnownServers* trust,
                                                     const Options& opts, Traffic* traffic) {
  const auto started = Clock::now();
  DFS_ASSIGN_OR_RETURN(UniqueFd fd, ConnectTcp(addr.host, addr.port, opts.connect_timeout));
  const Deadline deadline = DeadlineIn(opts.request_timeout);
  DFS_ASSIGN_OR_RETURN(std::unique_ptr<TlsChannel> channel,
                       TlsChannel::Connect(std::move(fd), tls, deadline));
  // The key is checked before anything about the user is sent.
  if (trust) DFS_RETURN_IF_ERROR(trust->Check(addr, channel->peer_fingerprint()));
  std::unique_ptr<Connection> conn(new Connection(std::move(channel), traffic));
  HelloRequest hello;
  hello.user = user;
  RandomBytes(hello.client_nonce.data(), hello.client_nonce.size());
  DFS_ASSIGN_OR_RETURN(Challenge challenge,
                       (conn->Call<HelloRequest, Challenge>(MsgType::kHello, hello, deadline)));
  if (challenge.server_name != addr.name)
    return Status::Untrusted(
        "the server at " + AddressKey(addr) + " is named " + Escaped(challenge.server_name) +
        ", but dfc.conf calls it " + Escaped(addr.name) +
        " (the name is part of each server's login secret: use the server's name in dfc.conf, "
        "or start it with --name " +
        addr.name + ")");
  const Key& binding = conn->channel_->binding();
  ProofRequest proof;
  proof.proof = ClientProof(verifier, binding, hello.client_nonce, challenge.server_nonce, user);
  auto ok = conn->Call<ProofRequest, AuthOk>(MsgType::kProof, proof, deadline);
  if (!ok.ok()) {
    if (ok.status().code() == Code::kAuthFailed) return Status::AuthFailed(kAuthFailedMessage);
    return ok.status();
  }
  // Mutual: the server proves it holds this user's verifier, on this channel.
  Key expected = ServerProof(verifier, binding, hello.client_nonce, challenge.server_nonce, user);
  if (!SecureEqual(expected, ok->server_proof)) return Status::AuthFailed(kAuthFailedMessage);
  conn->max_body_ = kMaxDataBody;
  if (traffic) {
    ++traffic->connections;
    traffic->connect_us +=
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
  }
  return conn;
}

Status Connection::Send(MsgType type, std::string_view body, Deadline deadline) {
  ++request_id_;
  return SendMore(type, body, deadline);
}

Status Connection::SendMore(MsgType type, std::string_view body, Deadline deadline) {
  if (broken_) return Status::Unavailable("connection is broken");
  if (!queued_.empty()) DFS_RETURN_IF_ERROR(Flush(deadline));
  Status s = SendFrame(*channel_, type, request_id_, body, deadline);
  if (!s.ok()) {
    broken_ = true;
    return s;
  }
  if (traffic_) traffic_->sent += kFrameHeaderBytes + body.size();
  return s;
}

Status Connection::Queue(MsgType type, std::string_view body, bool new_request, Deadline deadline) {
  if (broken_) return Status::Unavailable("connection is broken");
  if (new_request) ++request_id_;
  // What one TLS record carries: queue up to that, send larger bodies directly.
  constexpr size_t kRecordBytes = 16384;
  if (kFrameHeaderBytes + body.size() > kRecordBytes - queued_.size()) {
    DFS_RETURN_IF_ERROR(Flush(deadline));
    if (kFrameHeaderBytes + body.size() > kRecordBytes) return SendMore(type, body, deadline);
  }
  uint8_t header[kFrameHeaderBytes];
  EncodeFrameHeader({type, request_id_, static_cast<uint32_t>(body.size())}, header);
  queued_.append(reinterpret_cast<const char*>(header), sizeof header);
  queued_.append(body);
  return Status::Ok();
}

Status Connection::Flush(Deadline deadline) {
  if (queued_.empty()) return Status::Ok();
  if (broken_) return Status::Unavailable("connection is broken");
  Status s = channel_->Write(queued_.data(), queued_.size(), deadline);
  if (!s.ok()) {
    broken_ = true;
    return s;
  }
  if (traffic_) traffic_->sent += queued_.size();
  queued_.clear();
  return s;
}

Status Connection::Recv(Frame* out, Deadline deadline) {
  if (broken_) return Status::Unavailable("connection is broken");
  if (!queued_.empty()) DFS_RETURN_IF_ERROR(Flush(deadline));
  Status s = RecvFrame(*channel_, out, deadline, max_body_);
  if (s.ok() && out->type() == MsgType::kError && out->header.request_id == 0) {
    // The server refused the connection itself (busy, protocol violation).
    s = DecodeError(out->body);
    if (s.ok()) s = Status::Protocol("error frame without an error");
  } else if (s.ok() && out->header.request_id != request_id_)
    s = Status::Protocol("reply to request " + std::to_string(out->header.request_id) +
                         ", expected " + std::to_string(request_id_));
  if (!s.ok()) {
    broken_ = true;
    return s;
  }
  if (traffic_) traffic_->received += kFrameHeaderBytes + out->body.size();
  return s;
}

bool Connection::LooksAlive() const { return !broken_ && channel_->LooksIdle(); }

void Connection::Abort() { ::shutdown(channel_->fd(), SHUT_RDWR); }

Lease::~Lease() {
  if (conn_ && !conn_->broken()) pool_->Release(server_, std::move(conn_));
}

Status Lease::Check(Status s) {
  if (!s.ok() && IsNetworkFailure(s)) {
    conn_->MarkBroken();
    pool_->MarkDown(server_, s);
  }
  return s;
}

ServerPool::ServerPool(const ClientConfig& config, const Key& auth_key, Options opts)
    : servers_(config.servers), user_(config.username), opts_(opts), known_(config.known_servers) {
  auto tls = TlsClientContext::Create();
  if (!tls.ok()) {
    // Only an OpenSSL that cannot make a context at all gets here.
    std::fprintf(stderr, "fatal: %s\n", tls.status().ToString().c_str());
    std::abort();
  }
  tls_ = std::move(tls).value();
  for (const auto& s : servers_) {
    verifiers_.push_back(ServerVerifier(auth_key, s.name));
    slots_.push_back(std::make_unique<Slot>());
  }
}

ServerPool::~ServerPool() {
  std::thread prober;
  {
    MutexLock lock(&probe_mu_);
    probe_stop_ = true;
    prober = std::move(prober_);
  }
  probe_cv_.SignalAll();
  if (prober.joinable()) prober.join();
}

bool ServerPool::MaybeUp(int server) const {
  const Slot& slot = *slots_[server];
  return !slot.hung.load() && slot.down_until_ms.load() <= NowMs();
}

void ServerPool::ProbeLoop() {
  for (;;) {
    {
      MutexLock lock(&probe_mu_);
      const auto until = std::chrono::steady_clock::now() + opts_.backoff;
      while (!probe_stop_ && probe_cv_.WaitUntil(&probe_mu_, until)) {
      }
      if (probe_stop_) return;
    }
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (!slots_[i]->hung.load()) continue;
      {
        MutexLock lock(&probe_mu_);
        if (probe_stop_) return;
      }
      if (Probe(static_cast<int>(i))) Logger("net")->info("{} answers again", servers_[i].name);
    }
  }
}

bool ServerPool::Probe(int server) {
  auto conn = Connection::Open(servers_[server], user_, verifiers_[server], *tls_, &known_, opts_,
                               &traffic_);
  if (!conn.ok()) return false;
  Slot& slot = *slots_[server];
  slot.down_until_ms = 0;
  slot.hung = false;
  Release(server, std::move(conn).value());
  return true;
}

std::vector<bool> ServerPool::InBackoff() const {
  std::vector<bool> out(servers_.size());
  for (size_t i = 0; i < servers_.size(); ++i) out[i] = !MaybeUp(static_cast<int>(i));
  return out;
}

void ServerPool::MarkDown(int server, const Status& why) {
  Slot& slot = *slots_[server];
  if (why.code() == Code::kTimeout)
    Logger("net")->info("{} missed a deadline: skipped until it answers a probe: {}",
                        servers_[server].name, why.ToString());
  else
    Logger("net")->info("{} unavailable for {} ms: {}", servers_[server].name,
                        opts_.backoff.count(), why.ToString());
  slot.down_until_ms = NowMs() + opts_.backoff.count();
  if (why.code() == Code::kTimeout && !slot.hung.exchange(true)) {
    MutexLock lock(&probe_mu_);
    if (!prober_.joinable() && !probe_stop_) prober_ = std::thread([this] { ProbeLoop(); });
  }
  std::vector<std::unique_ptr<Connection>> dropped;  // closed on return, without the lock
  {
    MutexLock lock(&slot.mu);
    dropped.swap(slot.idle);
  }
}

void ServerPool::ClearBackoff() {
  for (auto& slot : slots_) {
    slot->down_until_ms = 0;
    slot->hung = false;
  }
}

Result<Lease> ServerPool::Acquire(int server, bool probe) {
  Slot& slot = *slots_[server];
  if (!probe && !MaybeUp(server))
    return Status::Unavailable(servers_[server].name + " is unavailable (retrying shortly)");
  for (;;) {
    std::unique_ptr<Connection> conn;
    {
      MutexLock lock(&slot.mu);
      if (slot.idle.empty()) break;
      conn = std::move(slot.idle.back());
      slot.idle.pop_back();
    }
    // poll(2) and, for a dead one, its close, without the lock.
    if (conn->LooksAlive()) return Lease(this, server, std::move(conn));
  }
  auto conn = Connection::Open(servers_[server], user_, verifiers_[server], *tls_, &known_, opts_,
                               &traffic_);
  if (!conn.ok()) {
    Status s = conn.status().Annotate(servers_[server].name);
    if (IsNetworkFailure(conn.status()) || conn.status().code() == Code::kUntrusted) {
      MarkDown(server, s);
      if (conn.status().code() == Code::kUntrusted)
        Logger("net")->error("{}", conn.status().message());
    }
    if (conn.status().code() == Code::kAuthFailed || conn.status().code() == Code::kUntrusted)
      return conn.status();
    return s;
  }
  slot.down_until_ms = 0;  // it answered: no longer in back-off
  slot.hung = false;
  return Lease(this, server, std::move(conn).value());
}

void ServerPool::Release(int server, std::unique_ptr<Connection> conn) {
  Slot& slot = *slots_[server];
  {
    MutexLock lock(&slot.mu);
    if (slot.idle.size() < opts_.max_idle_per_server) {
      slot.idle.push_back(std::move(conn));
      return;
    }
  }
  // A full pool: `conn` is closed here, without the lock.
}

}  // namespace dfs::client
