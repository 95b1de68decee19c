// Server metrics and their HTTP endpoint (metrics.h).
#include "dfs_server/metrics.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <string_view>

#include "dfs_version.h"
#include "shared/net/socket.h"
#include "shared/util/log.h"
#include "shared/util/prometheus.h"

namespace dfs::server {
namespace {

// The name of a request type in the `type` label.
const char* TypeName(MsgType t) {
  switch (t) {
    case MsgType::kHello:
      return "hello";
    case MsgType::kProof:
      return "proof";
    case MsgType::kPing:
      return "ping";
    case MsgType::kList:
      return "list";
    case MsgType::kStat:
      return "stat";
    case MsgType::kPutBegin:
      return "put_begin";
    case MsgType::kCommit:
      return "commit";
    case MsgType::kAbort:
      return "abort";
    case MsgType::kGet:
      return "get";
    case MsgType::kDelete:
      return "delete";
    case MsgType::kMkdir:
      return "mkdir";
    case MsgType::kRmdir:
      return "rmdir";
    case MsgType::kRename:
      return "rename";
    case MsgType::kRenameDir:
      return "rename_dir";
    case MsgType::kSetAttr:
      return "set_attr";
    case MsgType::kStatFs:
      return "stat_fs";
    case MsgType::kPurge:
      return "purge";
    case MsgType::kStage:
      return "stage";
    case MsgType::kHintAdd:
      return "hint_add";
    case MsgType::kHintList:
      return "hint_list";
    case MsgType::kHintDrop:
      return "hint_drop";
    case MsgType::kRevert:
      return "revert";
    case MsgType::kFolder:
      return "folder";
    default:
      return nullptr;
  }
}

}  // namespace

std::string Metrics::Render() const {
  std::string out;
  auto load = [](const std::atomic<uint64_t>& a) {
    return std::to_string(a.load(std::memory_order_relaxed));
  };
  AppendMetricHeader(&out, "dfs_requests_total", "counter", "Requests handled, by message type.");
  for (size_t t = 0; t < requests_.size(); ++t) {
    const char* name = TypeName(static_cast<MsgType>(t));
    if (name == nullptr) continue;
    AppendSample(&out, std::string("dfs_requests_total{type=\"") + name + "\"}",
                 load(requests_[t]));
  }
  AppendMetricHeader(&out, "dfs_request_errors_total", "counter", "Error replies, by status code.");
  for (uint8_t c = 1; c <= kMaxCode; ++c)
    AppendSample(
        &out,
        "dfs_request_errors_total{code=\"" + std::string(CodeName(static_cast<Code>(c))) + "\"}",
        load(errors_[c]));
  AppendMetric(&out, "dfs_received_bytes_total", "counter",
               "Bytes received from clients (TLS payload).", load(received_bytes_));
  AppendMetric(&out, "dfs_sent_bytes_total", "counter", "Bytes sent to clients (TLS payload).",
               load(sent_bytes_));
  AppendMetric(&out, "dfs_connections_total", "counter", "Connections accepted.",
               load(connections_total_));
  AppendMetric(&out, "dfs_connections_open", "gauge", "Connections open now.",
               std::to_string(connections_open_.load(std::memory_order_relaxed)));
  AppendMetric(&out, "dfs_logins_failed_total", "counter",
               "Logins refused (unknown user or wrong password).", load(logins_failed_));
  AppendMetric(&out, "dfs_staged_bytes_total", "counter", "Sealed piece bytes written to staging.",
               load(staged_bytes_));
  AppendMetric(&out, "dfs_users", "gauge", "Users who can log in.", load(users_));
  out += ProcessFsyncs().Render();
  AppendMetricHeader(&out, "dfs_build_info", "gauge", "The server's version.");
  AppendSample(&out, std::string("dfs_build_info{version=\"") + DFS_VERSION + "\"}", "1");
  return out;
}

void FsyncHistogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

std::string FsyncHistogram::Render() const {
  std::string out;
  AppendMetricHeader(&out, "dfs_fsync_seconds", "histogram",
                     "Latency of fsync(2) of pieces, records and folders.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    char le[32];
    if (i < kBounds.size())
      std::snprintf(le, sizeof le, "%g", kBounds[i]);
    else
      std::snprintf(le, sizeof le, "+Inf");
    AppendSample(&out, std::string("dfs_fsync_seconds_bucket{le=\"") + le + "\"}",
                 std::to_string(cumulative));
  }
  char sum[64];
  std::snprintf(sum, sizeof sum, "%.9f",
                static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
  AppendSample(&out, "dfs_fsync_seconds_sum", sum);
  AppendSample(&out, "dfs_fsync_seconds_count",
               std::to_string(count_.load(std::memory_order_relaxed)));
  return out;
}

FsyncHistogram& ProcessFsyncs() {
  static FsyncHistogram histogram;
  return histogram;
}

Status ParseListenAddress(const std::string& text, std::string* address, uint16_t* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size())
    return Status::Invalid("expected ADDR:PORT, got '" + text + "'");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  unsigned long p = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9') return Status::Invalid("bad port in '" + text + "'");
    p = p * 10 + static_cast<unsigned long>(c - '0');
    if (p > 65535) return Status::Invalid("bad port in '" + text + "'");
  }
  *address = host;
  *port = static_cast<uint16_t>(p);
  return Status::Ok();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address,
                                                            uint16_t port,
                                                            std::function<std::string()> render) {
  DFS_ASSIGN_OR_RETURN(UniqueFd listener, ListenTcp(address, port, 16));
  DFS_ASSIGN_OR_RETURN(uint16_t bound, BoundPort(listener.get()));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return FromErrno(errno, "pipe");
  return std::make_unique<MetricsServer>(std::move(listener), bound, UniqueFd(fds[0]),
                                         UniqueFd(fds[1]), std::move(render));
}

MetricsServer::MetricsServer(UniqueFd listener, uint16_t port, UniqueFd stop_read,
                             UniqueFd stop_write, std::function<std::string()> render)
    : listener_(std::move(listener)),
      port_(port),
      stop_read_(std::move(stop_read)),
      stop_write_(std::move(stop_write)),
      render_(std::move(render)) {
  thread_ = std::thread([this] { Loop(); });
}

MetricsServer::~MetricsServer() {
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_write_.get(), &byte, 1);
  if (thread_.joinable()) thread_.join();
}

void MetricsServer::Loop() {
  for (;;) {
    pollfd p[2] = {{listener_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    // A scraper that stops reading holds this thread 2 s at most.
    const timeval timeout{2, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    Answer(fd.get());
  }
}

void MetricsServer::Answer(int fd) {
  // The request line and headers, up to the blank line (at most 8 KiB, 2 s).
  std::string request;
  const auto deadline = DeadlineIn(Millis(2000));
  while (request.find("\r\n\r\n") == std::string::npos &&
         request.find("\n\n") == std::string::npos && request.size() < 8192) {
    pollfd p{fd, POLLIN, 0};
    const int left = RemainingMs(deadline);
    if (left <= 0 || ::poll(&p, 1, left) != 1) return;
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    request.append(buf, static_cast<size_t>(n));
  }
  const bool metrics = request.starts_with("GET /metrics ") || request.starts_with("GET /metrics?");
  const std::string body = metrics ? render_() : "not found; try /metrics\n";
  std::string reply = std::string("HTTP/1.1 ") + (metrics ? "200 OK" : "404 Not Found") +
                      "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"
                      "\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < reply.size()) {
    const ssize_t n = ::send(fd, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace dfs::server
