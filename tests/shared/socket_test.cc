// Unit tests of shared/net/socket.h and shared/net/tls.h: TCP helpers, and
// frames over real TLS 1.3 channels (socket pairs and loopback TCP), with a
// server key kept in a temp folder.
#include "shared/net/socket.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include "shared/config/config.h"
#include "shared/net/tls.h"

// Tracks the largest single allocation, to show that a frame declaring a
// huge body is refused before anything is allocated for it.
namespace {
std::atomic<size_t> g_largest_allocation{0};
}  // namespace

// Out of line, so the compiler does not pair a visible malloc with delete.
[[gnu::noinline]] void* operator new(size_t n) {
  size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n)) {
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace dfs {
namespace {

namespace fs = std::filesystem;

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/dfs_socket_test.XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

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

std::unique_ptr<TlsServerContext> ServerContext(const std::string& dir, bool* created = nullptr) {
  auto ctx = TlsServerContext::LoadOrCreate(dir, "DFS1", created);
  REQUIRE_MESSAGE(ctx.ok(), ctx.status().ToString());
  return std::move(ctx).value();
}

std::unique_ptr<TlsClientContext> ClientContext() {
  auto ctx = TlsClientContext::Create();
  REQUIRE_MESSAGE(ctx.ok(), ctx.status().ToString());
  return std::move(ctx).value();
}

// Runs both handshakes at once over connected sockets: the client side on
// client_fd (owned by its channel), the server side on server_fd (not owned).
void Handshake(UniqueFd client_fd, int server_fd, const TlsClientContext& client_ctx,
               const TlsServerContext& server_ctx, std::unique_ptr<TlsChannel>* client,
               std::unique_ptr<TlsChannel>* server) {
  Result<std::unique_ptr<TlsChannel>> accepted = Status::Unavailable("not run");
  std::thread acceptor(
      [&] { accepted = TlsChannel::Accept(server_fd, server_ctx, DeadlineIn(Millis(5000))); });
  auto connected = TlsChannel::Connect(std::move(client_fd), client_ctx, DeadlineIn(Millis(5000)));
  acceptor.join();
  REQUIRE_MESSAGE(connected.ok(), connected.status().ToString());
  REQUIRE_MESSAGE(accepted.ok(), accepted.status().ToString());
  *client = std::move(connected).value();
  *server = std::move(accepted).value();
}

// A TLS connection over a socket pair: a server with its key in a temp
// folder, and a client. Members are destroyed in reverse order: the server
// channel goes before the socket it does not own.
struct TlsPair {
  TempDir dir;
  std::unique_ptr<TlsServerContext> server_ctx = ServerContext(dir.str());
  std::unique_ptr<TlsClientContext> client_ctx = ClientContext();
  UniqueFd server_fd;
  int client_fd = -1;  // owned by `client`
  std::unique_ptr<TlsChannel> client;
  std::unique_ptr<TlsChannel> server;

  TlsPair() {
    Pair p;
    client_fd = p.a.get();
    server_fd = std::move(p.b);
    Handshake(std::move(p.a), server_fd.get(), *client_ctx, *server_ctx, &client, &server);
  }
  // Closes the client's end: its channel and socket, without a TLS goodbye.
  void DropClient() { client.reset(); }
};

// The raw bytes waiting on fd (no TLS), up to max, after waiting up to 1 s for the first.
std::string RecvRaw(int fd, size_t max) {
  pollfd p{fd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 1000) == 1);
  std::string out(max, '\0');
  const ssize_t n = ::recv(fd, out.data(), out.size(), MSG_DONTWAIT);
  REQUIRE(n > 0);
  out.resize(static_cast<size_t>(n));
  return out;
}

void SendRaw(int fd, std::string_view bytes) {
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(bytes.size()));
}

// Counts SIGPIPEs instead of dying of them while it lives, so that a test can
// check the status codes of a closed connection and whether a SIGPIPE came.
std::atomic<int> g_sigpipes{0};
extern "C" void CountSigpipe(int) { g_sigpipes.fetch_add(1); }
class SigpipeCounter {
 public:
  SigpipeCounter() {
    struct sigaction count {};
    count.sa_handler = CountSigpipe;
    sigemptyset(&count.sa_mask);
    REQUIRE(::sigaction(SIGPIPE, &count, &saved_) == 0);
    g_sigpipes = 0;
  }
  ~SigpipeCounter() { ::sigaction(SIGPIPE, &saved_, nullptr); }
  SigpipeCounter(const SigpipeCounter&) = delete;
  SigpipeCounter& operator=(const SigpipeCounter&) = delete;
  int count() const { return g_sigpipes.load(); }

 private:
  struct sigaction saved_ {};
};

std::string HeaderBytes(MsgType type, uint32_t len, uint32_t id = 1) {
  uint8_t h[kFrameHeaderBytes];
  EncodeFrameHeader({type, id, len}, h);
  return std::string(reinterpret_cast<char*>(h), sizeof h);
}

// ---- TCP ----

TEST_CASE("listens on an ephemeral loopback port and accepts a TLS connection") {
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

  TempDir dir;
  auto server_ctx = ServerContext(dir.str());
  auto client_ctx = ClientContext();
  std::unique_ptr<TlsChannel> c, s;
  Handshake(std::move(client).value(), server.get(), *client_ctx, *server_ctx, &c, &s);

  REQUIRE(SendFrame(*c, MsgType::kPing, 77, "", DeadlineIn(Millis(1000))).ok());
  Frame f;
  REQUIRE(RecvFrame(*s, &f, DeadlineIn(Millis(1000))).ok());
  CHECK(f.type() == MsgType::kPing);
  CHECK(f.header.request_id == 77);
  CHECK(f.body.empty());

  REQUIRE(SendFrame(*s, MsgType::kReply, 77, "pong", DeadlineIn(Millis(1000))).ok());
  REQUIRE(RecvFrame(*c, &f, DeadlineIn(Millis(1000))).ok());
  CHECK(f.type() == MsgType::kReply);
  CHECK(f.body == "pong");
  CHECK(c->binding() == s->binding());
  CHECK(c->peer_fingerprint() == server_ctx->fingerprint());
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

// ---- The server's key ----

TEST_CASE("makes a server key once, keeps it private and reports its fingerprint") {
  TempDir dir;
  CHECK(FingerprintOfDir(dir.str()).status().code() == Code::kNotFound);  // no key yet

  bool created = false;
  auto first = ServerContext(dir.str(), &created);
  CHECK(created);
  const std::string print = first->fingerprint();
  CHECK(IsFingerprint(print));

  const fs::path id_dir = fs::path(dir.str()) / kIdentityDir;
  const fs::path key = id_dir / "key.pem";
  struct stat st {};
  REQUIRE(::lstat(id_dir.c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0700);
  REQUIRE(::lstat(key.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  // Nothing else is left in the folder (no temporary file).
  CHECK(std::distance(fs::directory_iterator(id_dir), fs::directory_iterator()) == 1);

  // The same key at the next start, and from the outside.
  created = true;
  auto second = ServerContext(dir.str(), &created);
  CHECK_FALSE(created);
  CHECK(second->fingerprint() == print);
  auto outside = FingerprintOfDir(dir.str());
  REQUIRE_MESSAGE(outside.ok(), outside.status().ToString());
  CHECK(*outside == print);

  // Another folder, another key.
  TempDir other;
  CHECK(ServerContext(other.str())->fingerprint() != print);
}

TEST_CASE("tightens a key file readable by others back to 0600") {
  TempDir dir;
  const std::string print = ServerContext(dir.str())->fingerprint();
  const fs::path key = fs::path(dir.str()) / kIdentityDir / "key.pem";
  REQUIRE(::chmod(key.c_str(), 0644) == 0);
  CHECK(ServerContext(dir.str())->fingerprint() == print);
  struct stat st {};
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("refuses a key file OpenSSL cannot read with kCorrupt") {
  TempDir dir;
  (void)ServerContext(dir.str());
  const fs::path key = fs::path(dir.str()) / kIdentityDir / "key.pem";
  std::ofstream(key, std::ios::trunc) << "-----BEGIN PRIVATE KEY-----\nnot a key\n";
  auto ctx = TlsServerContext::LoadOrCreate(dir.str(), "DFS1");
  REQUIRE_FALSE(ctx.ok());
  CHECK(ctx.status().code() == Code::kCorrupt);
  CHECK(ctx.status().message().find("key.pem") != std::string::npos);
  CHECK(FingerprintOfDir(dir.str()).status().code() == Code::kCorrupt);
}

// LoadOrCreate tightens a loosened key's mode: never through a symbolic link.
TEST_CASE("follows no symbolic link to the key") {
  TempDir dir, elsewhere;
  const fs::path target = fs::path(elsewhere.str()) / "victim";
  std::ofstream(target) << "not a key";
  REQUIRE(::chmod(target.c_str(), 0644) == 0);
  const fs::path id_dir = fs::path(dir.str()) / kIdentityDir;
  REQUIRE(::mkdir(id_dir.c_str(), 0700) == 0);
  REQUIRE(::symlink(target.c_str(), (id_dir / "key.pem").c_str()) == 0);

  auto ctx = TlsServerContext::LoadOrCreate(dir.str(), "DFS1");
  CHECK_FALSE(ctx.ok());
  struct stat st {};
  REQUIRE(::stat(target.c_str(), &st) == 0);
  CHECK_MESSAGE((st.st_mode & 07777) == 0644, "the file behind the link was chmod'ed");
}

// ---- Channels ----

TEST_CASE("derives the same channel binding on both sides, fresh per connection") {
  TlsPair one, two;
  CHECK(one.client->binding() == one.server->binding());
  CHECK(one.client->binding() != Key{});
  CHECK(two.client->binding() == two.server->binding());
  CHECK(one.client->binding() != two.client->binding());

  // Two connections to the same server key differ as well.
  Pair p;
  std::unique_ptr<TlsChannel> c, s;
  Handshake(std::move(p.a), p.b.get(), *one.client_ctx, *one.server_ctx, &c, &s);
  CHECK(c->binding() == s->binding());
  CHECK(c->binding() != one.client->binding());
  s.reset();
}

TEST_CASE("shows the client the server's key fingerprint") {
  TlsPair t;
  CHECK(IsFingerprint(t.client->peer_fingerprint()));
  CHECK(t.client->peer_fingerprint() == t.server_ctx->fingerprint());
  auto from_dir = FingerprintOfDir(t.dir.str());
  REQUIRE(from_dir.ok());
  CHECK(t.client->peer_fingerprint() == *from_dir);
  CHECK(t.server->peer_fingerprint().empty());
  CHECK(t.client->fd() == t.client_fd);
  CHECK(t.server->fd() == t.server_fd.get());
}

TEST_CASE("round-trips frames of every size class over TLS") {
  TlsPair t;
  struct Case {
    MsgType type;
    uint32_t id;
    size_t size;
  };
  const Case cases[] = {
      {MsgType::kPing, 1, 0},
      {MsgType::kReply, 2, 1},
      {MsgType::kReply, 3, 16384 - kFrameHeaderBytes},  // the largest frame in one record
      {MsgType::kReply, 4, 16384 - kFrameHeaderBytes + 1},
      {MsgType::kList, 5, kMaxControlBody},
      {MsgType::kData, 0xffffffff, kMaxDataBody},
      {MsgType::kDataEnd, 6, 0},
  };
  // A writer thread, since big frames do not fit in the socket buffer.
  std::thread writer([&] {
    for (const Case& c : cases) {
      Status s = SendFrame(*t.client, c.type, c.id, Pattern(c.size), DeadlineIn(Millis(5000)));
      if (!s.ok()) return;
    }
  });
  for (const Case& c : cases) {
    CAPTURE(c.size);
    Frame f;
    Status s = RecvFrame(*t.server, &f, DeadlineIn(Millis(5000)));
    CHECK_MESSAGE(s.ok(), s.ToString());
    CHECK(f.type() == c.type);
    CHECK(f.header.request_id == c.id);
    CHECK(f.header.body_length == c.size);
    CHECK(f.body == Pattern(c.size));
  }
  writer.join();
}

TEST_CASE("never puts plaintext on the socket") {
  TlsPair t;
  const std::string secret = "Alice's very secret file name.txt";
  REQUIRE(SendFrame(*t.client, MsgType::kStat, 1, secret, DeadlineIn(Millis(1000))).ok());
  const std::string raw = RecvRaw(t.server_fd.get(), 4096);
  CHECK(raw.find("secret") == std::string::npos);
  CHECK(raw.find("DFS!") == std::string::npos);
}

TEST_CASE("refuses to send a body over the frame limit") {
  TlsPair t;
  CHECK(SendFrame(*t.client, MsgType::kReply, 1, std::string(kMaxControlBody + 1, 'x'),
                  DeadlineIn(Millis(100)))
            .code() == Code::kTooLarge);
  CHECK(SendFrame(*t.client, MsgType::kData, 1, std::string(kMaxDataBody + 1, 'x'),
                  DeadlineIn(Millis(100)))
            .code() == Code::kTooLarge);
  // Nothing was sent.
  CHECK(t.server->WaitReadable(-1, Millis(50)).code() == Code::kTimeout);
}

TEST_CASE("refuses a frame with a bad header before reading or allocating its body") {
  struct Case {
    std::string_view what;
    std::string header;
    uint32_t max_body;
  };
  std::string bad_magic = HeaderBytes(MsgType::kPing, 0);
  bad_magic[0] = 'H';  // e.g. an HTTP client: "HTTP/1.1 ..."
  std::string bad_type = HeaderBytes(MsgType::kPing, 0);
  bad_type[5] = 99;
  std::string old_version = HeaderBytes(MsgType::kPing, 0);
  old_version[4] = 1;
  const Case cases[] = {
      {"bad magic", bad_magic, kMaxDataBody},
      {"http request", "GET / HTTP/1.1\r\n\r\n", kMaxDataBody},
      {"unknown type", bad_type, kMaxDataBody},
      {"protocol version 1", old_version, kMaxDataBody},
      {"control body of 4 GiB", HeaderBytes(MsgType::kReply, 0xffffffff), kMaxDataBody},
      {"control body over 64 KiB", HeaderBytes(MsgType::kList, kMaxControlBody + 1), kMaxDataBody},
      {"data body over 1 MiB", HeaderBytes(MsgType::kData, kMaxDataBody + 1), kMaxDataBody},
      {"hello over the handshake limit", HeaderBytes(MsgType::kHello, kMaxHandshakeBody + 1),
       kMaxHandshakeBody},
      {"data frame before login", HeaderBytes(MsgType::kData, 4096), kMaxHandshakeBody},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    TlsPair t;
    // The header alone: a receiver that waited for the body would time out.
    REQUIRE(t.client->Write(c.header.data(), c.header.size(), DeadlineIn(Millis(1000))).ok());
    Frame f;
    g_largest_allocation = 0;
    const auto start = Clock::now();
    Status s = RecvFrame(*t.server, &f, DeadlineIn(Millis(2000)), c.max_body);
    CHECK(s.code() == Code::kProtocol);
    CHECK(Since(start) < Millis(1000));
    CHECK(f.body.capacity() < 4096);
    CHECK(g_largest_allocation.load() < 4096);
  }
}

TEST_CASE("accepts a handshake frame exactly at max_body") {
  TlsPair t;
  const std::string body(kMaxHandshakeBody, 'h');
  REQUIRE(SendFrame(*t.client, MsgType::kHello, 1, body, DeadlineIn(Millis(1000))).ok());
  Frame f;
  REQUIRE(RecvFrame(*t.server, &f, DeadlineIn(Millis(1000)), kMaxHandshakeBody).ok());
  CHECK(f.body == body);
  // The same limit refuses one byte more.
  REQUIRE(SendFrame(*t.client, MsgType::kHello, 2, body + "h", DeadlineIn(Millis(1000))).ok());
  CHECK(RecvFrame(*t.server, &f, DeadlineIn(Millis(1000)), kMaxHandshakeBody).code() ==
        Code::kProtocol);
}

TEST_CASE("refuses a TLS record with a flipped byte with kProtocol") {
  TlsPair t;
  // A frame sealed by the client's TLS, taken off the wire before the
  // server's TLS sees it, then put back with one byte changed (as a relay on
  // the path could).
  REQUIRE(SendFrame(*t.client, MsgType::kPing, 5, "tamper-proof", DeadlineIn(Millis(1000))).ok());
  std::string record = RecvRaw(t.server_fd.get(), 4096);
  REQUIRE(record.size() > 5 + 16 + 12);  // record header, tag, some payload
  SUBCASE("in the payload") { record[5 + 3] = static_cast<char>(record[5 + 3] ^ 0x01); }
  SUBCASE("in the tag") { record.back() = static_cast<char>(record.back() ^ 0x80); }
  SUBCASE("in the record header") { record[0] = static_cast<char>(record[0] ^ 0x01); }
  SendRaw(t.client_fd, record);
  Frame f;
  Status s = RecvFrame(*t.server, &f, DeadlineIn(Millis(2000)));
  CHECK(s.code() == Code::kProtocol);
}

TEST_CASE("refuses a record replayed on the same connection") {
  TlsPair t;
  REQUIRE(SendFrame(*t.client, MsgType::kPing, 5, "once", DeadlineIn(Millis(1000))).ok());
  const std::string record = RecvRaw(t.server_fd.get(), 4096);
  SendRaw(t.client_fd, record);
  Frame f;
  REQUIRE(RecvFrame(*t.server, &f, DeadlineIn(Millis(1000))).ok());
  CHECK(f.body == "once");
  SendRaw(t.client_fd, record);  // the very same bytes again
  CHECK(RecvFrame(*t.server, &f, DeadlineIn(Millis(1000))).code() == Code::kProtocol);
}

TEST_CASE("times out on a silent peer at the deadline") {
  TlsPair t;
  char buf[4];
  const auto start = Clock::now();
  Status s = t.server->Read(buf, sizeof buf, DeadlineIn(Millis(100)));
  CHECK(s.code() == Code::kTimeout);
  CHECK(Since(start) >= Millis(90));
  CHECK(Since(start) < Millis(2000));

  // A peer that sends part of a frame and stops.
  REQUIRE(t.client->Write("DFS!", 4, DeadlineIn(Millis(100))).ok());
  Frame f;
  CHECK(RecvFrame(*t.server, &f, DeadlineIn(Millis(100))).code() == Code::kTimeout);
}

TEST_CASE("gives up at a deadline that already passed") {
  TlsPair t;
  char buf[1];
  CHECK(t.server->Read(buf, 1, Clock::now() - Millis(1)).code() == Code::kTimeout);
}

TEST_CASE("times out a handshake with a silent or stalled peer") {
  TempDir dir;
  auto server_ctx = ServerContext(dir.str());
  auto client_ctx = ClientContext();
  SUBCASE("a server waiting for a client that never speaks") {
    Pair p;
    const auto start = Clock::now();
    auto ch = TlsChannel::Accept(p.b.get(), *server_ctx, DeadlineIn(Millis(150)));
    REQUIRE_FALSE(ch.ok());
    CHECK(ch.status().code() == Code::kTimeout);
    CHECK(Since(start) >= Millis(140));
    CHECK(Since(start) < Millis(2000));
  }
  SUBCASE("a client waiting for a server that never answers") {
    Pair p;
    const auto start = Clock::now();
    auto ch = TlsChannel::Connect(std::move(p.a), *client_ctx, DeadlineIn(Millis(150)));
    REQUIRE_FALSE(ch.ok());
    CHECK(ch.status().code() == Code::kTimeout);
    CHECK(Since(start) < Millis(2000));
  }
}

TEST_CASE("refuses a peer that does not speak TLS 1.3") {
  TempDir dir;
  auto server_ctx = ServerContext(dir.str());
  SUBCASE("a client from before TLS sends a plain frame") {
    Pair p;
    SendRaw(p.a.get(), HeaderBytes(MsgType::kHello, 0));
    auto ch = TlsChannel::Accept(p.b.get(), *server_ctx, DeadlineIn(Millis(2000)));
    REQUIRE_FALSE(ch.ok());
    CHECK(ch.status().code() == Code::kProtocol);
  }
  SUBCASE("a TLS 1.2 client") {
    SslCtxPtr old(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    REQUIRE(old);
    SSL_CTX_set_max_proto_version(old.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(old.get(), SSL_VERIFY_NONE, nullptr);
    TlsClientContext old_client(std::move(old));
    Pair p;
    Result<std::unique_ptr<TlsChannel>> accepted = Status::Unavailable("not run");
    std::thread acceptor(
        [&] { accepted = TlsChannel::Accept(p.b.get(), *server_ctx, DeadlineIn(Millis(2000))); });
    auto connected = TlsChannel::Connect(std::move(p.a), old_client, DeadlineIn(Millis(2000)));
    acceptor.join();
    CHECK_FALSE(connected.ok());
    REQUIRE_FALSE(accepted.ok());
    CHECK(accepted.status().code() == Code::kProtocol);
  }
}

// OpenSSL 3 reports an EOF without a TLS close_notify (every close:
// ~TlsChannel sends none) as an error unless told otherwise.
TEST_CASE("reports a closed peer as kUnavailable") {
  SigpipeCounter sigpipes;  // see the SIGPIPE test below
  SUBCASE("before anything was sent") {
    TlsPair t;
    t.DropClient();
    char buf[4];
    CHECK(t.server->Read(buf, sizeof buf, DeadlineIn(Millis(1000))).code() == Code::kUnavailable);
  }
  SUBCASE("in the middle of a frame body") {
    TlsPair t;
    const std::string header = HeaderBytes(MsgType::kReply, 100);
    REQUIRE(t.client->Write(header.data(), header.size(), DeadlineIn(Millis(100))).ok());
    REQUIRE(t.client->Write("only ten b", 10, DeadlineIn(Millis(100))).ok());
    t.DropClient();
    Frame f;
    CHECK(RecvFrame(*t.server, &f, DeadlineIn(Millis(1000))).code() == Code::kUnavailable);
  }
  SUBCASE("when the server side closes") {
    TlsPair t;
    t.server.reset();
    t.server_fd.Reset();
    Frame f;
    CHECK(RecvFrame(*t.client, &f, DeadlineIn(Millis(1000))).code() == Code::kUnavailable);
  }
  SUBCASE("when sending") {
    TlsPair t;
    t.server.reset();
    t.server_fd.Reset();
    Status s;
    // The first write may still be buffered by the kernel; the next ones fail.
    const std::string body(kMaxControlBody, 'x');
    for (int i = 0; i < 8 && s.ok(); ++i)
      s = SendFrame(*t.client, MsgType::kReply, 1, body, DeadlineIn(Millis(1000)));
    CHECK(s.code() == Code::kUnavailable);
  }
}

// The library must not raise SIGPIPE: the old SendAll used MSG_NOSIGNAL, and
// a process that does not ignore SIGPIPE (dfc, a test, any embedder) dies of
// it. OpenSSL's socket BIO uses write(2), also for the alert it sends when
// it reads an unexpected EOF.
TEST_CASE("raises no SIGPIPE when the peer is gone") {
  SigpipeCounter sigpipes;
  SUBCASE("sending") {
    TlsPair t;
    t.server.reset();
    t.server_fd.Reset();
    Status s;
    const std::string body(kMaxControlBody, 'x');
    for (int i = 0; i < 8 && s.ok(); ++i)
      s = SendFrame(*t.client, MsgType::kReply, 1, body, DeadlineIn(Millis(1000)));
    CHECK_FALSE(s.ok());
  }
  SUBCASE("reading") {
    TlsPair t;
    t.server.reset();
    t.server_fd.Reset();
    Frame f;
    CHECK_FALSE(RecvFrame(*t.client, &f, DeadlineIn(Millis(1000))).ok());
  }
  SUBCASE("after an interrupt") {
    TlsPair t;
    t.client->Interrupt();
    Frame f;
    CHECK_FALSE(RecvFrame(*t.client, &f, DeadlineIn(Millis(1000))).ok());
  }
  CHECK_MESSAGE(sigpipes.count() == 0,
                "SIGPIPE raised: it kills a process that does not ignore it");
}

TEST_CASE("waits for readable data, a stop signal or the timeout") {
  TlsPair t;
  Pair stop;
  CHECK(t.server->WaitReadable(stop.b.get(), Millis(50)).code() == Code::kTimeout);
  CHECK(t.server->WaitReadable(-1, Millis(0)).code() == Code::kTimeout);

  SendRaw(stop.a.get(), "s");
  CHECK(t.server->WaitReadable(stop.b.get(), Millis(1000)).code() == Code::kCancelled);

  TlsPair q;
  REQUIRE(q.client->Write("d", 1, DeadlineIn(Millis(100))).ok());
  CHECK(q.server->WaitReadable(-1, Millis(1000)).ok());

  // Bytes TLS already decrypted count as readable even when the socket is drained.
  REQUIRE(q.client->Write("ef", 2, DeadlineIn(Millis(100))).ok());
  char c;
  REQUIRE(q.server->Read(&c, 1, DeadlineIn(Millis(1000))).ok());
  CHECK(c == 'd');
  REQUIRE(q.server->Read(&c, 1, DeadlineIn(Millis(1000))).ok());
  CHECK(c == 'e');
  CHECK(q.server->WaitReadable(-1, Millis(0)).ok());  // 'f' is buffered inside TLS
  REQUIRE(q.server->Read(&c, 1, DeadlineIn(Millis(1000))).ok());
  CHECK(c == 'f');
}

TEST_CASE("tells an idle connection from one with unread bytes or a closed peer") {
  SigpipeCounter sigpipes;  // see the SIGPIPE test above
  TlsPair t;
  CHECK(t.client->LooksIdle());
  CHECK(t.server->LooksIdle());
  REQUIRE(t.server->Write("x", 1, DeadlineIn(Millis(100))).ok());
  REQUIRE(t.client->WaitReadable(-1, Millis(1000)).ok());
  CHECK_FALSE(t.client->LooksIdle());  // a stale reply waits
  char c;
  REQUIRE(t.client->Read(&c, 1, DeadlineIn(Millis(1000))).ok());
  CHECK(t.client->LooksIdle());
  t.server.reset();
  t.server_fd.Reset();
  REQUIRE(t.client->WaitReadable(-1, Millis(1000)).ok());
  CHECK_FALSE(t.client->LooksIdle());  // closed by the server
}

TEST_CASE("an interrupt ends a blocked read at once, from another thread") {
  SigpipeCounter sigpipes;  // see the SIGPIPE test above
  TlsPair t;
  Status s;
  const auto start = Clock::now();
  std::thread reader([&] {
    char buf[16];
    s = t.server->Read(buf, sizeof buf, DeadlineIn(Millis(5000)));
  });
  std::this_thread::sleep_for(Millis(100));
  t.server->Interrupt();
  reader.join();
  CHECK_FALSE(s.ok());
  CHECK(s.code() != Code::kTimeout);
  CHECK(Since(start) < Millis(2000));
  // And every later operation fails too.
  CHECK_FALSE(t.server->Write("x", 1, DeadlineIn(Millis(500))).ok());
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
  TlsPair t;
  const Deadline deadline = DeadlineIn(Millis(1000));
  REQUIRE(SendMessage(*t.server, MsgType::kReply, 9, StatFsReply{1, 2, 3, 4, 5}, deadline).ok());
  REQUIRE(SendErrorFrame(*t.server, 10,
                         Status::AuthFailed("Invalid Username/Password. Please try again."),
                         deadline)
              .ok());

  Frame f;
  REQUIRE(RecvFrame(*t.client, &f, deadline).ok());
  CHECK(f.header.request_id == 9);
  auto fs = ParseReply<StatFsReply>(f);
  REQUIRE(fs.ok());
  CHECK(fs->files_free == 5);

  REQUIRE(RecvFrame(*t.client, &f, deadline).ok());
  CHECK(f.header.request_id == 10);
  CHECK(f.type() == MsgType::kError);
  auto e = ParseReply<StatFsReply>(f);
  CHECK(e.status().code() == Code::kAuthFailed);
  CHECK(e.status().message() == "Invalid Username/Password. Please try again.");
}

}  // namespace
}  // namespace dfs
