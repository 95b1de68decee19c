// Security: unauthenticated connections cannot lock users out. Hundreds of
// idle sockets and sockets that send a byte a second, to every server, while
// dfc lists, puts and gets within a few seconds.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "shared/util/fd.h"
#include "tests/security/security_util.h"

namespace dfs::testing {
namespace {

using namespace std::chrono_literals;

// Unauthenticated connections to a set of servers from one source address:
// `idle` per server that send nothing, `slow` per server that send the
// start of a TLS ClientHello one byte a second. With `reopen`, a socket the
// server closed is opened again (at most `max_reopen_per_second` per
// server), so the pressure lasts.
class Siege {
 public:
  Siege(std::vector<uint16_t> ports, int idle, int slow, std::string source, bool reopen,
        int max_reopen_per_second = 200)
      : ports_(std::move(ports)),
        source_(std::move(source)),
        reopen_(reopen),
        max_reopen_(max_reopen_per_second) {
    for (size_t s = 0; s < ports_.size(); ++s)
      for (int i = 0; i < idle + slow; ++i) {
        socks_.push_back({Open(ports_[s]), s, i >= idle, 0});
        if (!socks_.back().fd.valid()) ++failed_;
      }
    thread_ = std::thread(&Siege::Loop, this);
  }
  ~Siege() {
    stop_ = true;
    thread_.join();
  }
  Siege(const Siege&) = delete;
  Siege& operator=(const Siege&) = delete;

  size_t size() const { return socks_.size(); }
  int failed() const { return failed_; }  // sockets that could not be opened at the start
  int reopened() const { return reopened_.load(); }
  int open_now() const { return open_.load(); }

 private:
  struct Sock {
    UniqueFd fd;
    size_t server;
    bool slow;
    size_t sent;
  };

  // A non-blocking connect from source_ (invalid on failure: counts as closed).
  UniqueFd Open(uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source_.c_str(), &from.sin_addr) != 1 ||
        ::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) != 0)
      return UniqueFd();
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 &&
        errno != EINPROGRESS)
      return UniqueFd();
    return fd;
  }

  // Closed by the peer (or failed): a read that sees the end or an error.
  static bool Closed(int fd) {
    if (fd < 0) return true;
    char c;
    const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN;
  }

  void Loop() {
    // The first bytes of a TLS ClientHello record, then more of its body.
    static const std::string kHello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    auto next_byte = std::chrono::steady_clock::now();
    while (!stop_) {
      const bool send_now = std::chrono::steady_clock::now() >= next_byte;
      if (send_now) next_byte += 1s;
      std::vector<int> reopened(ports_.size(), 0);
      int open = 0;
      for (Sock& s : socks_) {
        if (Closed(s.fd.get())) {
          if (!reopen_ || reopened[s.server] >= max_reopen_ / 10) continue;
          ++reopened[s.server];
          ++reopened_;
          s.fd = Open(ports_[s.server]);
          s.sent = 0;
        }
        ++open;
        if (send_now && s.slow) {
          const char byte = s.sent < kHello.size() ? kHello[s.sent] : 'A';
          if (::send(s.fd.get(), &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++s.sent;
        }
      }
      open_ = open;
      // Ten rounds a second.
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(10ms);
    }
  }

  const std::vector<uint16_t> ports_;
  const std::string source_;
  const bool reopen_;
  const int max_reopen_;
  std::vector<Sock> socks_;
  int failed_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> reopened_{0};
  std::atomic<int> open_{0};
  std::thread thread_;
};

void RaiseFdLimit(rlim_t want) {
  rlimit lim{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  if (lim.rlim_cur >= want) return;
  lim.rlim_cur = std::min(want, lim.rlim_max);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
  REQUIRE(lim.rlim_cur >= want);
}

std::vector<uint16_t> PortsOf(const Cluster& cluster) {
  std::vector<uint16_t> ports;
  for (int i = 0; i < cluster.size(); ++i) ports.push_back(cluster.port(i));
  return ports;
}

TEST_CASE("300 idle and 50 slow unauthenticated connections per server do not lock dfc out") {
  RaiseFdLimit(8192);  // before the servers start: they inherit it
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  WriteFile(work / "f.txt", "still here");
  REQUIRE(Dfc(conf, {"put", work / "f.txt"}).exit_code == 0);

  Siege siege(PortsOf(cluster), 300, 50, "127.0.0.1", /*reopen=*/false);
  REQUIRE(siege.size() == 4 * 350);
  REQUIRE(siege.failed() == 0);
  std::this_thread::sleep_for(1s);  // every server has seen them all

  auto r = Dfc(conf, {"list"}, "", 30);
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "f.txt\n");
  CHECK(r.seconds < 10);
  r = Dfc(conf, {"get", "f.txt", "-o", work / "back.txt"}, "", 30);
  CHECK(r.exit_code == 0);
  CHECK(r.seconds < 10);
  CHECK(ReadFile(work / "back.txt") == "still here");
}

TEST_CASE("a siege that reopens every socket the servers cut off does not lock dfc out") {
  RaiseFdLimit(8192);
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  WriteFile(work / "f.txt", "still here");
  REQUIRE(Dfc(conf, {"put", work / "f.txt"}).exit_code == 0);

  // From another address (another machine), kept at 350 per server.
  Siege siege(PortsOf(cluster), 300, 50, "127.0.0.2", /*reopen=*/true);
  REQUIRE(siege.failed() == 0);
  std::this_thread::sleep_for(2s);
  for (int round = 0; round < 4; ++round) {
    CAPTURE(round);
    auto r = Dfc(conf, {"list"}, "", 30);
    CAPTURE(r.err);
    CHECK(r.exit_code == 0);
    CHECK(Contains(r.out, "f.txt\n"));
    CHECK(r.seconds < 10);
    WriteFile(work / "g.txt", "round " + std::to_string(round));
    r = Dfc(conf, {"put", work / "g.txt"}, "", 30);
    CHECK(r.exit_code == 0);
    CHECK(r.seconds < 10);
    std::this_thread::sleep_for(2s);  // past the servers' handshake deadline
  }
  // The pressure lasted: sockets cut off by the servers came back.
  MESSAGE(siege.open_now(), " attacker sockets open at the end, ", siege.reopened(), " reopened");
  CHECK(siege.open_now() + siege.reopened() > 4 * 350);
}

}  // namespace
}  // namespace dfs::testing
