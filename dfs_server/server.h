// The network side of dfs_server: a listening socket, an accept loop and one
// thread per connection (TLS handshake, then a Session), connection limits,
// a staging sweep, and a graceful stop.
//
// Limits by trust level: a connection that has not logged in yet is
// "pending". Pending connections have a budget of their own
// (max_pending, and max_pending_per_address from one client address); a new
// connection over the budget evicts the oldest pending one (of that address
// when its address is over its share), so idle or slow sockets from anyone
// can never keep a real client from logging in, and never count against
// logged-in users. Logged-in connections are limited to max_connections in
// all and max_connections_per_user per user (more are told kBusy).
//
// Stop: RequestStop() (or a signal handler writing to stop_write_fd()) makes
// one pipe readable. The accept loop closes the listener; sessions waiting
// for a request close at once; requests in flight get `grace` to finish;
// then the remaining sockets are shut down and every thread is joined.
//
// Reload: RequestReload() (SIGHUP in dfs_server) makes another pipe
// readable; the accept loop calls ServerOptions::reload_keys and, when it
// succeeds, logins from then on use the new users and verifiers. Connections
// already open stay as they are.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "dfs_server/session.h"
#include "dfs_server/store.h"
#include "shared/net/socket.h"
#include "shared/net/tls.h"
#include "shared/util/fd.h"
#include "shared/util/mutex.h"
#include "shared/util/status.h"
#include "shared/util/thread_annotations.h"

namespace dfs::server {

struct ServerOptions {
  std::string root;                       // DIR: created if missing
  std::string bind_address = "0.0.0.0";   // "127.0.0.1" for tests
  uint16_t port = 0;                      // 0 picks a free port
  int max_connections = 256;              // logged-in connections; more are told kBusy
  int max_connections_per_user = 64;      // logged-in connections of one user
  int max_pending = 64;                   // connections still in TLS or login
  int max_pending_per_address = 16;       // of those, from one client address
  Millis grace{5000};                     // time in-flight requests get at stop
  std::chrono::seconds staging_ttl{600};  // uploads untouched this long are swept
  StoreOptions store;
  SessionOptions session;  // session.server_name names the server
  // Reads the users and verifiers again (dfs.conf), for RequestReload().
  // Unset: a reload keeps what the server has.
  std::function<Result<AuthKeys>()> reload_keys;
  // Told of the server's state ("READY=1", "RELOADING=1", "STOPPING=1"):
  // sd_notify(3) in dfs_server. May be unset.
  std::function<void(const char* state)> notify;
};

class Server {
 public:
  // Opens the store (creating ROOT, emptying its staging area), loads or
  // creates the server's TLS key in ROOT, and listens. Errors: the store's,
  // the key's, or the bind's (kExists/kPermission/... "bind to port").
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options, AuthKeys keys);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Stops and joins whatever still runs.
  ~Server();

  uint16_t port() const { return port_; }  // the bound port, also when 0 was asked
  Store& store() { return *store_; }
  // The server's key fingerprint, "SHA256:..." (tls.h).
  const std::string& fingerprint() const { return tls_->fingerprint(); }

  // Accepts connections until a stop is requested, then stops gracefully
  // (see above) and returns once every connection thread has been joined.
  // Call once, from one thread.
  [[nodiscard]] Status Run();

  // Requests a stop. Thread-safe and async-signal-safe.
  void RequestStop();
  // The fd RequestStop() writes one byte to, for a signal handler.
  int stop_write_fd() const { return stop_write_.get(); }
  // Requests a reload (see above). Thread-safe and async-signal-safe; the
  // fd it writes to is reload_write_fd().
  void RequestReload();
  int reload_write_fd() const { return reload_write_.get(); }
  // How many users can log in now.
  size_t users() const EXCLUDES(keys_mu_);

 private:
  // What Server::mu_ guards in each Connection.
  struct Admission {
    bool logged_in = false;
    bool evicted = false;  // cut off to make room for a newer pending connection
    std::string user;
  };
  // Set by the accept loop before the thread starts, then read-only but for
  // `done` and `admission`.
  struct Connection {
    explicit Connection(const Mutex* server_mu) : admission(server_mu) {}
    UniqueFd fd;          // closed when the connection is reaped, after its thread ended
    std::string peer;     // "addr:port", for logs
    std::string address;  // the client address alone, for the per-address budget
    Clock::time_point accepted;
    std::thread thread;
    std::atomic<bool> done{false};
    ExternallyGuarded<Admission> admission;  // by Server::mu_: admission.Get(&mu_)
  };
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Use Start().
  Server(PrivateTag, const ServerOptions& options, AuthKeys keys, std::unique_ptr<Store> store,
         std::unique_ptr<TlsServerContext> tls, UniqueFd listener, uint16_t port,
         UniqueFd stop_read, UniqueFd stop_write, UniqueFd reload_read, UniqueFd reload_write);

 private:
  void AcceptOne() EXCLUDES(mu_);
  // Makes room for one more pending connection from `address`: picks the
  // oldest pending connection (of that address when it is over its share),
  // marks it evicted and takes it off the counts. Returns it, for the caller
  // to shut down once mu_ is released; nullptr when there is room already.
  Connection* EvictForLocked(const std::string& address) REQUIRES(mu_);
  void Serve(Connection* conn) EXCLUDES(mu_);
  // The session's AdmitFn: moves conn from pending to logged in, or kBusy.
  Status Admit(Connection* conn, const std::string& user) EXCLUDES(mu_);
  void ReapFinished();
  void SweepIfDue();
  void StopAll() EXCLUDES(mu_);
  // Runs reload_keys and installs what it returns (the accept loop's thread).
  void Reload() EXCLUDES(keys_mu_);
  void Notify(const char* state) const {
    if (options_.notify) options_.notify(state);
  }

  const ServerOptions options_;
  // The users that may log in; a session keeps the set it started with.
  mutable Mutex keys_mu_;  // leaf lock
  std::shared_ptr<const AuthKeys> keys_ GUARDED_BY(keys_mu_);
  std::unique_ptr<Store> store_;
  std::unique_ptr<TlsServerContext> tls_;
  UniqueFd listener_;
  const uint16_t port_;
  UniqueFd stop_read_;     // readable once a stop was requested (never drained)
  UniqueFd stop_write_;    // non-blocking
  UniqueFd reload_read_;   // readable after RequestReload() (drained by Run)
  UniqueFd reload_write_;  // non-blocking

  // Touched only by the thread in Run() (the list; see Connection for its fields).
  std::list<std::unique_ptr<Connection>> conns_;
  Clock::time_point next_sweep_;

  // Guards the counts below and the Admission of every Connection; leaf
  // lock, never held across I/O (not even the logging or shutdown(2) of an
  // evicted connection).
  Mutex mu_;
  CondVar cv_;                       // signalled when active_ drops
  int active_ GUARDED_BY(mu_) = 0;   // connection threads still running
  int pending_ GUARDED_BY(mu_) = 0;  // connections not logged in (and not evicted)
  int logged_in_ GUARDED_BY(mu_) = 0;
  std::map<std::string, int> pending_by_address_ GUARDED_BY(mu_);
  std::map<std::string, int> logged_in_by_user_ GUARDED_BY(mu_);
};

}  // namespace dfs::server
