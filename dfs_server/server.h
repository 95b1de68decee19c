// The network side of dfs_server: a listening socket, an accept loop and one
// thread per connection (each running a Session), a connection limit, and a
// graceful stop.
//
// Stop: RequestStop() (or a signal handler writing to stop_write_fd()) makes
// one pipe readable. The accept loop closes the listener; sessions waiting
// for a request close at once; requests in flight get `grace` to finish;
// then the remaining sockets are shut down and every thread is joined.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "dfs_server/session.h"
#include "dfs_server/store.h"
#include "shared/net/socket.h"
#include "shared/util/fd.h"
#include "shared/util/status.h"

namespace dfs::server {

struct ServerOptions {
  std::string root;                      // DIR: created if missing
  std::string bind_address = "0.0.0.0";  // "127.0.0.1" for tests
  uint16_t port = 0;                     // 0 picks a free port
  int max_connections = 256;             // more at once are told kBusy and closed
  Millis grace{5000};                    // time in-flight requests get at stop
  SessionOptions session;
};

class Server {
 public:
  // Opens the store (creating ROOT, emptying its staging area) and listens.
  // Errors: the store's, or the bind's (kExists/kPermission/... "bind to port").
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options, AuthKeys keys);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Stops and joins whatever still runs.
  ~Server();

  uint16_t port() const { return port_; }  // the bound port, also when 0 was asked
  Store& store() { return *store_; }

  // Accepts connections until a stop is requested, then stops gracefully
  // (see above) and returns once every connection thread has been joined.
  // Call once, from one thread.
  [[nodiscard]] Status Run();

  // Requests a stop. Thread-safe and async-signal-safe.
  void RequestStop();
  // The fd RequestStop() writes one byte to, for a signal handler.
  int stop_write_fd() const { return stop_write_.get(); }

 private:
  struct Connection {
    UniqueFd fd;  // closed when the connection is reaped, after its thread ended
    std::string peer;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  struct PrivateTag {
    explicit PrivateTag() = default;
  };

 public:
  // Use Start().
  Server(PrivateTag, const ServerOptions& options, AuthKeys keys, std::unique_ptr<Store> store,
         UniqueFd listener, uint16_t port, UniqueFd stop_read, UniqueFd stop_write);

 private:
  void AcceptOne();
  void Refuse(UniqueFd fd, const std::string& peer);
  void Serve(Connection* conn);
  void ReapFinished();
  void StopAll();

  const ServerOptions options_;
  const AuthKeys keys_;
  std::unique_ptr<Store> store_;
  UniqueFd listener_;
  const uint16_t port_;
  UniqueFd stop_read_;   // readable once a stop was requested (never drained)
  UniqueFd stop_write_;  // non-blocking

  // Touched only by the thread in Run().
  std::list<std::unique_ptr<Connection>> conns_;

  // Guards active_, the number of sessions still running; leaf lock.
  std::mutex mu_;
  std::condition_variable cv_;  // signalled when active_ drops
  int active_ = 0;
};

}  // namespace dfs::server
