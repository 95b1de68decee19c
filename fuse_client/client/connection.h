// One authenticated connection to one storage server, and the per-server pool
// that hands them out. A server that failed to answer is "down" for a short
// back-off, during which requests to it fail at once instead of waiting.
//
// Every connection is TLS 1.3. The server's key must be the one pinned in
// dfc.conf (Fingerprint NAME SHA256:...) or, when none is pinned, the one
// remembered in the known-servers file (trust on first use, as ssh does); a
// different key is refused with kUntrusted naming the server and both
// fingerprints. The login proof is bound to the TLS channel (auth.h).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fuse_client/client/known_servers.h"
#include "shared/config/config.h"
#include "shared/crypto/crypto.h"
#include "shared/net/socket.h"
#include "shared/net/tls.h"
#include "shared/protocol/messages.h"
#include "shared/util/mutex.h"
#include "shared/util/thread_annotations.h"

namespace dfs::client {

struct Options {
  Millis connect_timeout{1000};  // TCP connect; TLS and login get request_timeout more
  Millis request_timeout{3000};  // a control request and its reply
  Millis data_timeout{10000};    // no progress on a data stream for this long = failure
  Millis backoff{3000};          // how long a server that did not answer is skipped
  size_t max_idle_per_server = 8;
};

// Traffic counters (bytes on the wire, frame headers included). Thread-safe.
struct Traffic {
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> connections{0};  // opened and logged in
  std::atomic<uint64_t> connect_us{0};   // their TCP + TLS + login time, summed
};

class Connection {
 public:
  // Connects, checks the server's key (`trust`), and logs in with the
  // server's verifier. kAuthFailed carries kAuthFailedMessage; kUntrusted a
  // key that is not the pinned or remembered one.
  static Result<std::unique_ptr<Connection>> Open(const ServerAddress& addr,
                                                  const std::string& user, const Key& verifier,
                                                  TlsClientContext& tls, KnownServers* trust,
                                                  const Options& opts, Traffic* traffic);

  // Sends one frame with a fresh request id (Send) or the current one (SendMore,
  // for the data frames of a stream).
  Status Send(MsgType type, std::string_view body, Deadline deadline);
  Status SendMore(MsgType type, std::string_view body, Deadline deadline);
  // Queues one frame, with a fresh request id when `new_request`, sending
  // queued frames once they add up to a full TLS record; a large body is
  // sent at once. Flush() sends what is queued. A request and the small
  // frames that follow it (a stage request and its data) so leave in one
  // write instead of one per frame.
  Status Queue(MsgType type, std::string_view body, bool new_request, Deadline deadline);
  Status Flush(Deadline deadline);
  // Receives one frame; a reply to another request id is kProtocol.
  Status Recv(Frame* out, Deadline deadline);

  // Request -> one reply of type Rep.
  template <typename Req, typename Rep>
  Result<Rep> Call(MsgType type, const Req& req, Deadline deadline) {
    DFS_RETURN_IF_ERROR(Send(type, EncodeMessage(req), deadline));
    Frame f;
    DFS_RETURN_IF_ERROR(Recv(&f, deadline));
    return ParseReply<Rep>(f);
  }

  // False when the idle connection was closed by the server (or has unread
  // bytes): it must not be reused.
  bool LooksAlive() const;

  // A connection that saw an I/O or protocol error must not be reused.
  bool broken() const { return broken_; }
  void MarkBroken() { broken_ = true; }
  // Shuts the socket down, so that a Send or Recv blocked on it in another
  // thread returns at once with an error. The only method another thread
  // may call while one uses the connection; the owner must then drop it.
  void Abort();

 private:
  Connection(std::unique_ptr<TlsChannel> channel, Traffic* traffic)
      : channel_(std::move(channel)), traffic_(traffic) {}
  std::unique_ptr<TlsChannel> channel_;
  Traffic* traffic_;
  // Largest frame body accepted from the server: tiny until it proved it
  // holds this user's verifier (login), then the protocol's limits.
  uint32_t max_body_ = kMaxHandshakeBody;
  uint32_t request_id_ = 0;
  bool broken_ = false;
  std::string queued_;  // encoded frames not sent yet (Queue)
};

// The deadline of a data stream, moved only by real progress: the stream
// must deliver `step` more bytes within `timeout` of the last step, so a
// server that drips bytes or sends empty frames cannot hold a transfer for
// longer than `timeout` (a fresh deadline per frame would let it).
class ProgressDeadline {
 public:
  ProgressDeadline(Millis timeout, uint64_t step)
      : timeout_(timeout), step_(step), deadline_(DeadlineIn(timeout)) {}
  Deadline get() const { return deadline_; }
  void Add(uint64_t bytes) {
    since_ += bytes;
    if (since_ >= step_) {
      since_ = 0;
      deadline_ = DeadlineIn(timeout_);
    }
  }

 private:
  Millis timeout_;
  uint64_t step_;
  Deadline deadline_;
  uint64_t since_ = 0;
};

class ServerPool;

// A borrowed connection; returns to the pool when destroyed unless broken.
class Lease {
 public:
  Lease(ServerPool* pool, int server, std::unique_ptr<Connection> conn)
      : pool_(pool), server_(server), conn_(std::move(conn)) {}
  Lease(Lease&&) = default;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  ~Lease();

  Connection* operator->() { return conn_.get(); }
  Connection& operator*() { return *conn_; }
  int server() const { return server_; }
  // Records the outcome of a request: network failures (timeout, unavailable,
  // protocol) break the connection and put the server in back-off.
  Status Check(Status s);
  template <typename T>
  Result<T> Check(Result<T> r) {
    if (!r.ok()) (void)Check(r.status());
    return r;
  }

 private:
  ServerPool* pool_;
  int server_;
  std::unique_ptr<Connection> conn_;
};

class ServerPool {
 public:
  // One verifier per server is derived from `auth_key` and the server's name;
  // the known-servers file is config.known_servers (or the default path).
  ServerPool(const ClientConfig& config, const Key& auth_key, Options opts);
  // Stops the prober (bounded by its connect and login deadlines).
  ~ServerPool();
  ServerPool(const ServerPool&) = delete;
  ServerPool& operator=(const ServerPool&) = delete;

  int size() const { return static_cast<int>(servers_.size()); }
  const ServerAddress& address(int server) const { return servers_[server]; }
  const std::string& name(int server) const { return servers_[server].name; }
  const Options& options() const { return opts_; }
  Traffic& traffic() { return traffic_; }

  // A pooled or new connection to `server` (0-based). kUnavailable at once
  // while the server is in back-off, unless `probe` (try it anyway: used when
  // a skipped server is the only way to make a file whole).
  Result<Lease> Acquire(int server, bool probe = false);
  // Whether the server is outside its back-off window. A server that missed
  // a deadline (kTimeout: hung, or its network gone quiet) stays in
  // back-off until a background probe (one thread, every Options::backoff)
  // gets an answer: foreground requests never wait on it again meanwhile.
  // One that refused (killed) is tried again after the back-off.
  bool MaybeUp(int server) const;
  // Whether the server missed a deadline and waits for the prober (above).
  bool Hung(int server) const { return slots_[server]->hung.load(); }
  // For each server: whether it is in back-off now (requests skip it).
  std::vector<bool> InBackoff() const;
  void MarkDown(int server, const Status& why);
  // Forgets every back-off: the next request tries every server.
  void ClearBackoff();
  void Release(int server, std::unique_ptr<Connection> conn);

 private:
  struct Slot {
    Mutex mu;  // guards idle; leaf lock, never held across I/O (nor a connection's close)
    std::vector<std::unique_ptr<Connection>> idle GUARDED_BY(mu);
    std::atomic<int64_t> down_until_ms{0};  // steady clock ms
    std::atomic<bool> hung{false};          // missed a deadline: only the prober tries it
  };
  void ProbeLoop() EXCLUDES(probe_mu_);
  // Connects to `server` for the prober; true when it answered.
  bool Probe(int server);
  std::vector<ServerAddress> servers_;
  std::string user_;
  std::vector<Key> verifiers_;  // per server
  Options opts_;
  std::unique_ptr<TlsClientContext> tls_;
  KnownServers known_;
  Traffic traffic_;
  std::vector<std::unique_ptr<Slot>> slots_;
  Mutex probe_mu_;  // guards the prober's state; leaf lock, never held across I/O
  CondVar probe_cv_;
  bool probe_stop_ GUARDED_BY(probe_mu_) = false;
  std::thread prober_ GUARDED_BY(probe_mu_);
};

// True for failures that say the server (not the request) is the problem.
// kUntrusted is not one: a server with a changed key is refused loudly.
bool IsNetworkFailure(const Status& s);

}  // namespace dfs::client
