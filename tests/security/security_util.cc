// Helpers of the security suite (see security_util.h).
#include "tests/security/security_util.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "shared/net/socket.h"

namespace dfs::testing {
namespace fs = std::filesystem;

const UserKeys& AliceKeys() {
  static const UserKeys keys = DeriveUserKeys(kAlice, kAlicePassword);
  return keys;
}

CommandResult Dfc(const std::string& conf, const std::vector<std::string>& words,
                  const std::string& cwd, int timeout_seconds) {
  std::vector<std::string> argv = {BinaryPath("DFC"), conf};
  argv.insert(argv.end(), words.begin(), words.end());
  return Run(argv, "", timeout_seconds, cwd);
}

std::string WriteConf(const Cluster& cluster, const std::string& path, const ConfChanges& changes,
                      const std::string& user, const std::string& password) {
  std::string text;
  for (int i = 0; i < cluster.size(); ++i) {
    auto port = changes.ports.count(i) ? changes.ports.at(i) : cluster.port(i);
    text += "Server DFS" + std::to_string(i + 1) + " 127.0.0.1:" + std::to_string(port) + "\n";
  }
  text += "Username: " + user + "\nPassword: " + password + "\n";
  for (int i = 0; i < cluster.size(); ++i) {
    std::string print = changes.fingerprints.count(i) ? changes.fingerprints.at(i)
                        : changes.pin                 ? cluster.fingerprint(i)
                                                      : "";
    if (!print.empty()) text += "Fingerprint DFS" + std::to_string(i + 1) + " " + print + "\n";
  }
  text += "KnownServers " + cluster.known_servers() + "\n";
  WriteFile(path, text);
  return path;
}

std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string rel = fs::relative(it->path(), dir).string();
    const auto st = it->symlink_status();
    if (fs::is_symlink(st))
      out[rel] = "l:" + fs::read_symlink(it->path()).string();
    else if (fs::is_directory(st))
      out[rel] = "d";
    else
      out[rel] = "f:" + ReadFile(it->path().string());
  }
  return out;
}

std::string DiffSnapshots(const std::map<std::string, std::string>& before,
                          const std::map<std::string, std::string>& after) {
  std::string out;
  for (const auto& [path, what] : before) {
    auto it = after.find(path);
    if (it == after.end())
      out += "removed " + path + "; ";
    else if (it->second != what)
      out += "changed " + path + "; ";
  }
  for (const auto& [path, what] : after)
    if (!before.count(path)) out += "added " + path + "; ";
  return out.empty() ? "(same)" : out;
}

uint64_t PeakMemory() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  throw std::runtime_error("no VmHWM in /proc/self/status");
}

void ResetPeakMemory() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  if (!f) throw std::runtime_error("cannot reset the peak memory (/proc/self/clear_refs)");
}

// ---- Relay ----

struct Relay::Conn {
  UniqueFd client;
  UniqueFd server;
  std::thread up, down;
  std::atomic<int> client_app{0};  // the client's application records so far
  int server_app = 0;              // the server's, once the client's started (down thread only)
};

namespace {

bool SendAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

constexpr uint8_t kApplicationData = 23;

}  // namespace

Relay::Relay(uint16_t upstream_port) : Relay(upstream_port, Tamper{}) {}

Relay::Relay(uint16_t upstream_port, Tamper tamper) : upstream_(upstream_port), tamper_(tamper) {
  auto listener = ListenTcp("127.0.0.1", 0);
  if (!listener.ok()) throw std::runtime_error("relay: " + listener.status().ToString());
  listener_ = std::move(listener).value();
  auto port = BoundPort(listener_.get());
  if (!port.ok()) throw std::runtime_error("relay: " + port.status().ToString());
  port_ = *port;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("relay: pipe failed");
  stop_read_.Reset(p[0]);
  stop_write_.Reset(p[1]);
  acceptor_ = std::thread(&Relay::AcceptLoop, this);
}

Relay::~Relay() {
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_write_.get(), &byte, 1);
  acceptor_.join();
  std::vector<std::unique_ptr<Conn>> conns;
  {
    std::lock_guard lock(mu_);
    conns.swap(conns_);
  }
  for (auto& c : conns) {
    ::shutdown(c->client.get(), SHUT_RDWR);
    ::shutdown(c->server.get(), SHUT_RDWR);
  }
  for (auto& c : conns) {
    c->up.join();
    c->down.join();
  }
}

std::string Relay::Recorded() const {
  std::lock_guard lock(mu_);
  return recorded_;
}

void Relay::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, 1000) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client) continue;
    auto server = ConnectTcp("127.0.0.1", upstream_, Millis(2000));
    if (!server.ok()) continue;  // the client sees its connection close
    auto conn = std::make_unique<Conn>();
    conn->client = std::move(client);
    conn->server = std::move(server).value();
    ++connections_;
    Conn* c = conn.get();
    {
      std::lock_guard lock(mu_);
      conns_.push_back(std::move(conn));
      c->up = std::thread(&Relay::Pump, this, c, true);
      c->down = std::thread(&Relay::Pump, this, c, false);
    }
  }
}

void Relay::Pump(Conn* conn, bool to_server) {
  const int from = to_server ? conn->client.get() : conn->server.get();
  const int to = to_server ? conn->server.get() : conn->client.get();
  const bool tampering = !tamper_.inject_to_server.empty() || tamper_.flip_to_client > 0 ||
                         !tamper_.inject_to_client.empty();
  std::string pending;
  bool raw = !tampering;  // a stream that is not TLS is passed through as it is
  char buf[65536];
  auto finish = [&] {
    ::shutdown(conn->client.get(), SHUT_RDWR);
    ::shutdown(conn->server.get(), SHUT_RDWR);
  };
  for (;;) {
    ssize_t n = ::recv(from, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return finish();
    {
      std::lock_guard lock(mu_);
      recorded_.append(buf, static_cast<size_t>(n));
    }
    pending.append(buf, static_cast<size_t>(n));
    if (raw) {
      if (!SendAll(to, pending.data(), pending.size())) return finish();
      pending.clear();
      continue;
    }
    // Whole TLS records: type(1) version(2) length(2) payload.
    size_t pos = 0;
    std::string out;
    while (pending.size() - pos >= 5) {
      const auto type = static_cast<uint8_t>(pending[pos]);
      if (type < 20 || type > 24 || pending[pos + 1] != 3) {
        raw = true;
        break;
      }
      const size_t len =
          (static_cast<uint8_t>(pending[pos + 3]) << 8) | static_cast<uint8_t>(pending[pos + 4]);
      if (pending.size() - pos < 5 + len) break;
      std::string record = pending.substr(pos, 5 + len);
      pos += 5 + len;
      if (type == kApplicationData && to_server) {
        if (++conn->client_app == 2 && !tamper_.inject_to_server.empty()) {
          out += tamper_.inject_to_server;
          ++tampered_;
        }
      } else if (type == kApplicationData && conn->client_app.load() >= 2) {
        ++conn->server_app;
        if (conn->server_app == tamper_.inject_to_client_at && !tamper_.inject_to_client.empty()) {
          out += tamper_.inject_to_client;
          ++tampered_;
        }
        if (conn->server_app == tamper_.flip_to_client && len > 0) {
          record.back() = static_cast<char>(record.back() ^ 0x01);
          ++tampered_;
        }
      }
      out += record;
    }
    if (raw) {
      out += pending.substr(pos);
      pos = pending.size();
    }
    pending.erase(0, pos);
    if (!out.empty() && !SendAll(to, out.data(), out.size())) return finish();
  }
}

}  // namespace dfs::testing
