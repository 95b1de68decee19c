// Counters of a dfs_server, in the Prometheus text exposition format
// (version 0.0.4), served over plain HTTP on --metrics ADDR:PORT
// ("GET /metrics"). Everything is a relaxed atomic: counting costs a request
// nothing measurable, and a scrape sees each counter as of some instant.
//
//   dfs_requests_total{type}            requests handled, by message type
//   dfs_request_errors_total{code}      error replies, by status code
//   dfs_received_bytes_total            bytes received on logged-in and
//   dfs_sent_bytes_total                pending connections (TLS payload)
//   dfs_connections_total               connections accepted
//   dfs_connections_open                connections open now
//   dfs_logins_failed_total             logins refused (bad user or password)
//   dfs_staged_bytes_total              sealed piece bytes written to staging
//   dfs_fsync_seconds                   histogram of fsync(2) latency
//   dfs_users                           users who can log in
//   dfs_build_info{version}             1
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "shared/protocol/frame.h"
#include "shared/util/fd.h"
#include "shared/util/status.h"

namespace dfs::server {

class Metrics {
 public:
  void CountRequest(MsgType type) { Add(requests_[static_cast<uint8_t>(type)], 1); }
  void CountError(Code code) { Add(errors_[static_cast<uint8_t>(code) % errors_.size()], 1); }
  void ConnectionOpened() {
    Add(connections_total_, 1);
    connections_open_.fetch_add(1, std::memory_order_relaxed);
  }
  void ConnectionClosed() { connections_open_.fetch_sub(1, std::memory_order_relaxed); }
  void LoginFailed() { Add(logins_failed_, 1); }
  void Staged(uint64_t bytes) { Add(staged_bytes_, bytes); }
  void SetUsers(size_t n) { users_.store(n, std::memory_order_relaxed); }
  // TlsChannel::CountInto targets.
  std::atomic<uint64_t>* received_bytes() { return &received_bytes_; }
  std::atomic<uint64_t>* sent_bytes() { return &sent_bytes_; }

  // The text a scrape gets.
  std::string Render() const;

 private:
  static void Add(std::atomic<uint64_t>& c, uint64_t n) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  std::array<std::atomic<uint64_t>, 256> requests_{};
  std::array<std::atomic<uint64_t>, 32> errors_{};
  std::atomic<uint64_t> received_bytes_{0};
  std::atomic<uint64_t> sent_bytes_{0};
  std::atomic<uint64_t> connections_total_{0};
  std::atomic<int64_t> connections_open_{0};
  std::atomic<uint64_t> logins_failed_{0};
  std::atomic<uint64_t> staged_bytes_{0};
  std::atomic<uint64_t> users_{0};
};

// fsync(2) latency of this process (every store fsync), for dfs_fsync_seconds.
class FsyncHistogram {
 public:
  static constexpr std::array<double, 10> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                     0.005,  0.01,    0.025,  0.1,   1.0};
  void Observe(double seconds);
  std::string Render() const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // last: +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};
FsyncHistogram& ProcessFsyncs();

// The HTTP endpoint: one thread that answers GET /metrics with `render()`,
// anything else with 404, one short-lived connection at a time (a request
// must arrive within 2 s). Stopped and joined by the destructor.
class MetricsServer {
 public:
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& address, uint16_t port,
                                                      std::function<std::string()> render);
  MetricsServer(UniqueFd listener, uint16_t port, UniqueFd stop_read, UniqueFd stop_write,
                std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  uint16_t port() const { return port_; }

 private:
  void Loop();
  void Answer(int fd);

  UniqueFd listener_;
  const uint16_t port_;
  UniqueFd stop_read_, stop_write_;
  const std::function<std::string()> render_;
  std::thread thread_;
};

// "ADDR:PORT" or "[V6ADDR]:PORT" or ":PORT" (all addresses) of --metrics.
Status ParseListenAddress(const std::string& text, std::string* address, uint16_t* port);

}  // namespace dfs::server
