// Unit tests of shared/net/socket.h over socketpairs and loopback TCP.
#include "shared/net/socket.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace dfs {
namespace {

// A connected pair of stream sockets.
struct Pair {
  UniqueFd a, b;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    a.Reset(fds[0]);
    b.Reset(fds[1]);
  }
};

Millis Since(Clock::time_point start) {
  return std::chrono::duration_cast<Millis>(Clock::now() - start);
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + i / 251);
  return s;
}

TEST_CASE("listens on an ephemeral loopback port and accepts a connection") {
  auto listener = ListenTcp("127.0.0.1", 0);
  REQUIRE_MESSAGE(listener.ok(), listener.status().ToString());
  auto port = BoundPort(listener->get());
  REQUIRE(port.ok());
  CHECK(*port != 0);

  auto client = ConnectTcp("127.0.0.1", *port, Millis(1000));
  REQUIRE_MESSAGE(client.ok(), client.status().ToString());
  UniqueFd server(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(server.valid());
  // The connected socket is blocking, close-on-exec and TCP_NODELAY.
  CHECK((::fcntl(client->get(), F_GETFL) & O_NONBLOCK) == 0);
  CHECK((::fcntl(client->get(), F_GETFD) & FD_CLOEXEC) != 0);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  REQUIRE(::getsockopt(client->get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
  CHECK(nodelay != 0);

  REQUIRE(SendFrame(client->get(), MsgType::kPing, 77, "", DeadlineIn(Millis(1000))).ok());
  Frame f;
  REQUIRE(RecvFrame(server.get(), &f, DeadlineIn(Millis(1000))).ok());
  CHECK(f.type() == MsgType::kPing);
  CHECK(f.header.request_id == 77);
  CHECK(f.body.empty());

  REQUIRE(SendFrame(server.get(), MsgType::kReply, 77, "pong", DeadlineIn(Millis(1000))).ok());
  REQUIRE(RecvFrame(client->get(), &f, DeadlineIn(Millis(1000))).ok());
  CHECK(f.type() == MsgType::kReply);
  CHECK(f.body == "pong");
}

TEST_CASE("connects over IPv6 loopback when the host has it") {
  auto listener = ListenTcp("::1", 0);
  if (!listener.ok()) {
    MESSAGE("no IPv6 loopback here: ", listener.status().ToString());
    return;
  }
  auto port = BoundPort(listener->get());
  REQUIRE(port.ok());
  auto client = ConnectTcp("::1", *port, Millis(1000));
  REQUIRE_MESSAGE(client.ok(), client.status().ToString());
  UniqueFd server(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  CHECK(server.valid());
}

TEST_CASE("fails quickly to connect to a closed port") {
  // A socket bound to a port without listening: connecting is refused, and
  // nobody else can take the port while the test runs.
  UniqueFd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(holder.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  auto port = BoundPort(holder.get());
  REQUIRE(port.ok());
  REQUIRE(*port != 0);

  const auto start = Clock::now();
  auto client = ConnectTcp("127.0.0.1", *port, Millis(1000));
  REQUIRE_FALSE(client.ok());
  CHECK(client.status().code() == Code::kUnavailable);
  CHECK(Since(start) < Millis(500));
}

TEST_CASE("refuses to listen on an address that is not local or not valid") {
  auto bad = ListenTcp("256.1.1.1", 0);
  CHECK_FALSE(bad.ok());
  auto in_use = ListenTcp("127.0.0.1", 0);
  REQUIRE(in_use.ok());
  auto port = BoundPort(in_use->get());
  REQUIRE(port.ok());
  auto again = ListenTcp("127.0.0.1", *port);
  CHECK_FALSE(again.ok());
}

TEST_CASE("round-trips frames of every size class over a socket pair") {
  Pair p;
  struct Case {
    MsgType type;
    uint32_t id;
    size_t size;
  };
  const Case cases[] = {
      {MsgType::kPing, 1, 0},
      {MsgType::kReply, 2, 1},
      {MsgType::kReply, 3, 4096},  // the largest frame sent in one piece
      {MsgType::kReply, 4, 4097},
      {MsgType::kList, 5, kMaxControlBody},
      {MsgType::kData, 0xffffffff, kMaxDataBody},
      {MsgType::kDataEnd, 6, 0},
  };
  // A writer thread, since big frames do not fit in the socket buffer.
  std::thread writer([&] {
    for (const Case& c : cases) {
      Status s = SendFrame(p.a.get(), c.type, c.id, Pattern(c.size), DeadlineIn(Millis(5000)));
      if (!s.ok()) return;
    }
  });
  for (const Case& c : cases) {
    CAPTURE(c.size);
    Frame f;
    Status s = RecvFrame(p.b.get(), &f, DeadlineIn(Millis(5000)));
    CHECK_MESSAGE(s.ok(), s.ToString());
    CHECK(f.type() == c.type);
    CHECK(f.header.request_id == c.id);
    CHECK(f.header.body_length == c.size);
    CHECK(f.body == Pattern(c.size));
  }
  writer.join();
}

TEST_CASE("refuses to send a body over the frame limit") {
  Pair p;
  CHECK(SendFrame(p.a.get(), MsgType::kReply, 1, std::string(kMaxControlBody + 1, 'x'),
                  DeadlineIn(Millis(100)))
            .code() == Code::kTooLarge);
  CHECK(SendFrame(p.a.get(), MsgType::kData, 1, std::string(kMaxDataBody + 1, 'x'),
                  DeadlineIn(Millis(100)))
            .code() == Code::kTooLarge);
  // Nothing was sent.
  CHECK(WaitReadable(p.b.get(), -1, Millis(0)).code() == Code::kTimeout);
}

TEST_CASE("refuses a frame with a bad header before reading its body") {
  struct Case {
    std::string_view what;
    std::string header;
  };
  auto header = [](MsgType type, uint32_t len) {
    uint8_t h[kFrameHeaderBytes];
    EncodeFrameHeader({type, 1, len}, h);
    return std::string(reinterpret_cast<char*>(h), sizeof h);
  };
  std::string bad_magic = header(MsgType::kPing, 0);
  bad_magic[0] = 'H';  // e.g. an HTTP client: "HTTP/1.1 ..."
  std::string bad_type = header(MsgType::kPing, 0);
  bad_type[5] = 99;
  const Case cases[] = {
      {"bad magic", bad_magic},
      {"http request", "GET / HTTP/1.1\r\n\r\n"},
      {"unknown type", bad_type},
      {"control body of 4 GiB", header(MsgType::kReply, 0xffffffff)},
      {"data body over 1 MiB", header(MsgType::kData, kMaxDataBody + 1)},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Pair p;
    REQUIRE(SendAll(p.a.get(), c.header.data(), c.header.size(), DeadlineIn(Millis(100))).ok());
    Frame f;
    Status s = RecvFrame(p.b.get(), &f, DeadlineIn(Millis(1000)));
    CHECK(s.code() == Code::kProtocol);
    CHECK(f.body.capacity() < 4096);
  }
}

TEST_CASE("times out on a silent peer at the deadline") {
  Pair p;
  char buf[4];
  const auto start = Clock::now();
  Status s = RecvAll(p.b.get(), buf, sizeof buf, DeadlineIn(Millis(100)));
  CHECK(s.code() == Code::kTimeout);
  CHECK(Since(start) >= Millis(90));
  CHECK(Since(start) < Millis(2000));

  // A peer that sends part of a frame and stops.
  REQUIRE(SendAll(p.a.get(), "DFS!", 4, DeadlineIn(Millis(100))).ok());
  Frame f;
  CHECK(RecvFrame(p.b.get(), &f, DeadlineIn(Millis(100))).code() == Code::kTimeout);
}

TEST_CASE("gives up at a deadline that already passed") {
  Pair p;
  char buf[1];
  CHECK(RecvAll(p.b.get(), buf, 1, Clock::now() - Millis(1)).code() == Code::kTimeout);
}

TEST_CASE("reports a closed peer as kUnavailable") {
  SUBCASE("before anything was sent") {
    Pair p;
    p.a.Reset();
    char buf[4];
    CHECK(RecvAll(p.b.get(), buf, sizeof buf, DeadlineIn(Millis(1000))).code() ==
          Code::kUnavailable);
  }
  SUBCASE("in the middle of a frame body") {
    Pair p;
    uint8_t h[kFrameHeaderBytes];
    EncodeFrameHeader({MsgType::kReply, 1, 100}, h);
    REQUIRE(SendAll(p.a.get(), h, sizeof h, DeadlineIn(Millis(100))).ok());
    REQUIRE(SendAll(p.a.get(), "only ten b", 10, DeadlineIn(Millis(100))).ok());
    p.a.Reset();
    Frame f;
    CHECK(RecvFrame(p.b.get(), &f, DeadlineIn(Millis(1000))).code() == Code::kUnavailable);
  }
  SUBCASE("when sending, without a SIGPIPE") {
    Pair p;
    p.b.Reset();
    CHECK(SendAll(p.a.get(), "x", 1, DeadlineIn(Millis(1000))).code() == Code::kUnavailable);
  }
}

TEST_CASE("waits for readable data, a stop signal or the timeout") {
  Pair p, stop;
  CHECK(WaitReadable(p.b.get(), stop.b.get(), Millis(50)).code() == Code::kTimeout);
  CHECK(WaitReadable(p.b.get(), -1, Millis(0)).code() == Code::kTimeout);

  REQUIRE(SendAll(stop.a.get(), "s", 1, DeadlineIn(Millis(100))).ok());
  CHECK(WaitReadable(p.b.get(), stop.b.get(), Millis(1000)).code() == Code::kCancelled);

  Pair q;
  REQUIRE(SendAll(q.a.get(), "d", 1, DeadlineIn(Millis(100))).ok());
  CHECK(WaitReadable(q.b.get(), -1, Millis(1000)).ok());
}

TEST_CASE("interprets a reply frame as a message, an error or a protocol violation") {
  Frame reply;
  reply.header.type = MsgType::kReply;
  reply.body = EncodeMessage(CommitReply{{1, 2}});
  auto ok = ParseReply<CommitReply>(reply);
  REQUIRE(ok.ok());
  CHECK(ok->committed == std::vector<uint8_t>{1, 2});

  Frame error;
  error.header.type = MsgType::kError;
  error.body = EncodeError(Status::NotFound("no such file 'a'"));
  auto err = ParseReply<CommitReply>(error);
  REQUIRE_FALSE(err.ok());
  CHECK(err.status().code() == Code::kNotFound);
  CHECK(err.status().message() == "no such file 'a'");

  struct Case {
    std::string_view what;
    MsgType type;
    std::string body;
  };
  const Case cases[] = {
      {"a request type", MsgType::kPing, ""},
      {"a data frame", MsgType::kData, "xx"},
      {"an error with code 0", MsgType::kError, EncodeMessage(ErrorReply{0, "ok?"})},
      {"a malformed error", MsgType::kError, "\x05"},
      {"a reply with a trailing byte", MsgType::kReply, reply.body + "x"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Frame f;
    f.header.type = c.type;
    f.body = c.body;
    CHECK(ParseReply<CommitReply>(f).status().code() == Code::kProtocol);
  }
}

TEST_CASE("sends messages and error frames that the peer can parse") {
  Pair p;
  const Deadline deadline = DeadlineIn(Millis(1000));
  REQUIRE(SendMessage(p.a.get(), MsgType::kReply, 9, StatFsReply{1, 2, 3, 4, 5}, deadline).ok());
  REQUIRE(SendErrorFrame(p.a.get(), 10,
                         Status::AuthFailed("Invalid Username/Password. Please try again."),
                         deadline)
              .ok());

  Frame f;
  REQUIRE(RecvFrame(p.b.get(), &f, deadline).ok());
  CHECK(f.header.request_id == 9);
  auto fs = ParseReply<StatFsReply>(f);
  REQUIRE(fs.ok());
  CHECK(fs->files_free == 5);

  REQUIRE(RecvFrame(p.b.get(), &f, deadline).ok());
  CHECK(f.header.request_id == 10);
  CHECK(f.type() == MsgType::kError);
  auto e = ParseReply<StatFsReply>(f);
  CHECK(e.status().code() == Code::kAuthFailed);
  CHECK(e.status().message() == "Invalid Username/Password. Please try again.");
}

}  // namespace
}  // namespace dfs
