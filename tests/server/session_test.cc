// Tests of dfs_server/server.h and session.h: a Server runs in-process on
// 127.0.0.1 (port 0) and the tests speak the wire protocol to it over real
// TLS connections, as a client would.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "dfs_server/server.h"
#include "dfs_server/session.h"
#include "shared/net/socket.h"
#include "shared/net/tls.h"
#include "shared/protocol/auth.h"
#include "tests/server/server_test_util.h"

namespace dfs::server {
namespace {

namespace fs = std::filesystem;
using testing::MakeHeader;
using testing::SealedBytes;
using testing::StampAt;
using testing::TempDir;

// The server runs in this process, and a write to a socket its peer closed
// raises SIGPIPE: ignore it, as dfs_server's main() does.
const bool kSigpipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

constexpr char kServerName[] = "DFS1";

// DeriveUserKeys is slow on purpose (scrypt): once per user and password.
const UserKeys& KeysOf(const std::string& user, const std::string& password) {
  static std::map<std::pair<std::string, std::string>, UserKeys> cache;
  auto it = cache.find({user, password});
  if (it == cache.end())
    it = cache.emplace(std::pair(user, password), DeriveUserKeys(user, password)).first;
  return it->second;
}

// What a client derives to log in on server `server`.
Key VerifierOf(const std::string& user, const std::string& password,
               const std::string& server = kServerName) {
  return ServerVerifier(KeysOf(user, password).auth, server);
}
Key AliceVerifier() { return VerifierOf("alice", "alice-pw"); }
Key BobVerifier() { return VerifierOf("bob", "bob-pw"); }

Deadline Soon() { return DeadlineIn(Millis(5000)); }

Millis Since(Clock::time_point start) {
  return std::chrono::duration_cast<Millis>(Clock::now() - start);
}

// Server options for tests: named DFS1, failed logins answered at once.
ServerOptions TestOptions() {
  ServerOptions options;
  options.session.server_name = kServerName;
  options.session.auth_failure_delay = Millis(10);
  return options;
}

// A Server on 127.0.0.1 with users "alice" and "bob" (dfs.conf lines made by
// --hash-password for DFS1), run on a thread.
class RunningServer {
 public:
  explicit RunningServer(ServerOptions options = TestOptions(), ServerConfig config = {}) {
    options.root = tmp_.str();
    options.bind_address = "127.0.0.1";
    options.port = 0;
    config.users.emplace("alice", "$dfs2$" + ToHex(AliceVerifier()));
    config.users.emplace("bob", "$dfs2$" + ToHex(BobVerifier()));
    auto keys = AuthKeys::FromConfig(config, "test.conf", options.session.server_name);
    REQUIRE_MESSAGE(keys.ok(), keys.status().ToString());
    auto server = Server::Start(options, std::move(keys).value());
    REQUIRE_MESSAGE(server.ok(), server.status().ToString());
    server_ = std::move(server).value();
    runner_ = std::thread([this] { run_status_ = server_->Run(); });
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;
  ~RunningServer() { Stop(); }

  // Requests a stop and waits for Run() to return; the time it took.
  Millis Stop() {
    const auto start = Clock::now();
    server_->RequestStop();
    if (runner_.joinable()) runner_.join();
    return Since(start);
  }

  uint16_t port() const { return server_->port(); }
  const std::string& fingerprint() const { return server_->fingerprint(); }
  const fs::path& root() const { return tmp_.path(); }
  const Status& run_status() const { return run_status_; }
  size_t StagedFiles() const {
    const fs::path dir = root() / ".staging" / "alice";
    if (!fs::exists(dir)) return 0;
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
  }

 private:
  TempDir tmp_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
  Status run_status_;
};

const TlsClientContext& ClientTls() {
  static const std::unique_ptr<TlsClientContext> ctx = [] {
    auto c = TlsClientContext::Create();
    REQUIRE_MESSAGE(c.ok(), c.status().ToString());
    return std::move(c).value();
  }();
  return *ctx;
}

using Channel = std::unique_ptr<TlsChannel>;

UniqueFd ConnectRaw(uint16_t port) {
  auto fd = ConnectTcp("127.0.0.1", port, Millis(2000));
  REQUIRE_MESSAGE(fd.ok(), fd.status().ToString());
  return std::move(fd).value();
}

// A TCP connection with its TLS handshake done.
Channel Connect(uint16_t port) {
  auto ch = TlsChannel::Connect(ConnectRaw(port), ClientTls(), Soon());
  REQUIRE_MESSAGE(ch.ok(), ch.status().ToString());
  return std::move(ch).value();
}

Frame Receive(TlsChannel& ch) {
  Frame f;
  Status s = RecvFrame(ch, &f, Soon());
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return f;
}

template <typename T>
Frame Call(TlsChannel& ch, MsgType type, uint32_t id, const T& msg) {
  REQUIRE(SendMessage(ch, type, id, msg, Soon()).ok());
  Frame f = Receive(ch);
  CHECK(f.header.request_id == id);
  return f;
}

// The status of a reply frame: OK for kReply, the error for kError.
Status StatusOf(const Frame& f) {
  if (f.type() == MsgType::kError) return DecodeError(f.body);
  return f.type() == MsgType::kReply ? Status::Ok() : Status::Protocol("not a reply");
}

// True when the socket under ch has reached its end (the server closed it).
bool AtEof(const TlsChannel& ch) {
  char b;
  const ssize_t n = ::recv(ch.fd(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
}

// True when the server closed the connection within `limit` (after any
// frames still queued). Judged on the socket: the TLS layer reports a close
// without a TLS goodbye as an error of its own.
bool ClosedByServer(TlsChannel& ch, Millis limit = Millis(5000)) {
  const Deadline deadline = DeadlineIn(limit);
  for (int i = 0; i < 4; ++i) {
    Frame f;
    Status s = RecvFrame(ch, &f, deadline);
    if (s.code() == Code::kTimeout) return false;  // still open
    if (!s.ok()) return AtEof(ch);
  }
  return false;
}

struct LoginResult {
  Status status;
  Challenge challenge;
};

// Runs the handshake with `verifier`; the proof is bound to `binding`
// (normally the channel's own). Returns the server's verdict.
LoginResult LogIn(TlsChannel& ch, const std::string& user, const Key& verifier,
                  std::optional<Key> binding = std::nullopt) {
  LoginResult out;
  HelloRequest hello{user, {}};
  RandomBytes(hello.client_nonce.data(), hello.client_nonce.size());
  auto challenge = ParseReply<Challenge>(Call(ch, MsgType::kHello, 1, hello));
  if (!challenge.ok()) {
    out.status = challenge.status();
    return out;
  }
  out.challenge = *challenge;
  const Key b = binding.value_or(ch.binding());
  ProofRequest proof{ClientProof(verifier, b, hello.client_nonce, challenge->server_nonce, user)};
  auto ok = ParseReply<AuthOk>(Call(ch, MsgType::kProof, 2, proof));
  if (!ok.ok()) {
    out.status = ok.status();
    return out;
  }
  if (ok->server_proof !=
      ServerProof(verifier, b, hello.client_nonce, challenge->server_nonce, user))
    out.status = Status::AuthFailed("server proof does not match");
  return out;
}

Status Login(TlsChannel& ch, const std::string& user, const Key& verifier) {
  return LogIn(ch, user, verifier).status;
}

Channel LoggedIn(uint16_t port, const std::string& user = "alice") {
  Channel ch = Connect(port);
  Status s = Login(*ch, user, user == "bob" ? BobVerifier() : AliceVerifier());
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return ch;
}

Status Ping(TlsChannel& ch, uint32_t id = 99) {
  return StatusOf(Call(ch, MsgType::kPing, id, Empty{}));
}

// Sends a piece in data frames of `frame_bytes`; returns the final reply.
Status PutPiece(TlsChannel& ch, const std::string& dir, const std::string& name,
                const PieceHeader& h, const std::string& data, size_t frame_bytes = kMaxDataBody) {
  Status begun = StatusOf(Call(ch, MsgType::kPutBegin, 10, PutBeginRequest{dir, name, h}));
  if (!begun.ok()) return begun;
  for (size_t pos = 0; pos < data.size(); pos += frame_bytes)
    REQUIRE(
        SendFrame(ch, MsgType::kData, 10, std::string_view(data).substr(pos, frame_bytes), Soon())
            .ok());
  REQUIRE(SendFrame(ch, MsgType::kDataEnd, 10, "", Soon()).ok());
  Frame f = Receive(ch);
  CHECK(f.header.request_id == 10);
  return StatusOf(f);
}

// kStage: the request and the stream at once, then the one reply.
Status StagePieces(TlsChannel& ch, const std::string& dir, const std::string& name,
                   const std::vector<PieceHeader>& headers, const std::string& data,
                   size_t frame_bytes = kMaxDataBody) {
  REQUIRE(SendMessage(ch, MsgType::kStage, 11, StageRequest{dir, name, headers}, Soon()).ok());
  for (size_t pos = 0; pos < data.size(); pos += frame_bytes)
    REQUIRE(
        SendFrame(ch, MsgType::kData, 11, std::string_view(data).substr(pos, frame_bytes), Soon())
            .ok());
  REQUIRE(SendFrame(ch, MsgType::kDataEnd, 11, "", Soon()).ok());
  Frame f = Receive(ch);
  CHECK(f.header.request_id == 11);
  return StatusOf(f);
}

// GET: the reply, then the data until kDataEnd (or a kError).
Result<std::string> GetPiece(TlsChannel& ch, const GetRequest& req, GetReply* reply) {
  auto r = ParseReply<GetReply>(Call(ch, MsgType::kGet, 20, req));
  if (!r.ok()) return r.status();
  *reply = *r;
  std::string data;
  for (;;) {
    Frame f = Receive(ch);
    CHECK(f.header.request_id == 20);
    if (f.type() == MsgType::kDataEnd) return data;
    if (f.type() == MsgType::kError) return DecodeError(f.body);
    REQUIRE(f.type() == MsgType::kData);
    CHECK(f.body.size() <= kMaxDataBody);
    data += f.body;
  }
}

template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 200; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(Millis(10));
  }
  return pred();
}

// Raw bytes of a frame header, for frames the library would not send.
std::string HeaderBytes(MsgType type, uint32_t id, uint32_t len) {
  uint8_t h[kFrameHeaderBytes];
  EncodeFrameHeader({type, id, len}, h);
  return std::string(reinterpret_cast<char*>(h), sizeof h);
}

// ---- Login ----

TEST_CASE("authenticates a user, proves itself and answers a ping") {
  RunningServer server;
  Channel ch = Connect(server.port());
  CHECK(ch->peer_fingerprint() == server.fingerprint());
  LoginResult login = LogIn(*ch, "alice", AliceVerifier());
  REQUIRE_MESSAGE(login.status.ok(), login.status.ToString());
  CHECK(login.challenge.server_name == "DFS1");
  CHECK(Ping(*ch, 12345).ok());
  CHECK(fs::is_directory(server.root() / "alice"));
}

TEST_CASE("accepts a plain password from dfs.conf") {
  ServerConfig config;
  config.users["carol"] = "SimplePassword";
  RunningServer server(TestOptions(), config);
  Channel ch = Connect(server.port());
  CHECK(Login(*ch, "carol", VerifierOf("carol", "SimplePassword")).ok());
  CHECK(Ping(*ch).ok());
}

TEST_CASE("refuses a wrong password with the exact message, after the delay, and closes") {
  ServerOptions options = TestOptions();
  options.session.auth_failure_delay = Millis(300);
  RunningServer server(options);
  Channel ch = Connect(server.port());
  HelloRequest hello{"alice", {}};
  RandomBytes(hello.client_nonce.data(), hello.client_nonce.size());
  auto challenge = ParseReply<Challenge>(Call(*ch, MsgType::kHello, 1, hello));
  REQUIRE(challenge.ok());
  const Key wrong = VerifierOf("alice", "not-alice-pw");
  const auto start = Clock::now();
  Frame f = Call(*ch, MsgType::kProof, 2,
                 ProofRequest{ClientProof(wrong, ch->binding(), hello.client_nonce,
                                          challenge->server_nonce, "alice")});
  CHECK(Since(start) >= Millis(290));
  CHECK(f.type() == MsgType::kError);
  Status s = DecodeError(f.body);
  CHECK(s.code() == Code::kAuthFailed);
  CHECK(s.message() == "Invalid Username/Password. Please try again.");
  CHECK(ClosedByServer(*ch));
}

TEST_CASE("answers an unknown user exactly like a wrong password") {
  ServerOptions options = TestOptions();
  options.session.auth_failure_delay = Millis(200);
  RunningServer server(options);
  Channel ch = Connect(server.port());
  const auto start = Clock::now();
  LoginResult login = LogIn(*ch, "mallory", AliceVerifier());
  CHECK(Since(start) >= Millis(190));
  CHECK(login.challenge.server_name == "DFS1");  // a challenge like any other
  CHECK(login.challenge.server_nonce != Key{});
  CHECK(login.status.code() == Code::kAuthFailed);
  CHECK(login.status.message() == kAuthFailedMessage);
  CHECK(ClosedByServer(*ch));
  CHECK_FALSE(fs::exists(server.root() / "mallory"));
}

TEST_CASE("a verifier for another server or another user does not log in") {
  RunningServer server;
  struct Case {
    std::string_view what;
    std::string user;
    Key verifier;
  };
  const Case cases[] = {
      {"alice's verifier of DFS2", "alice", VerifierOf("alice", "alice-pw", "DFS2")},
      {"alice's auth key itself", "alice", KeysOf("alice", "alice-pw").auth},
      {"bob's verifier as alice", "alice", BobVerifier()},
      {"alice's verifier as bob", "bob", AliceVerifier()},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Channel ch = Connect(server.port());
    Status s = Login(*ch, c.user, c.verifier);
    CHECK(s.code() == Code::kAuthFailed);
    CHECK(s.message() == kAuthFailedMessage);
  }
}

TEST_CASE("a $dfs2$ line made for DFS2 does not log in on DFS1") {
  ServerConfig config;
  config.users["dave"] = HashedSecret("dave", "dave-pw", "DFS2");
  RunningServer server(TestOptions(), config);
  Channel ch = Connect(server.port());
  CHECK(Login(*ch, "dave", VerifierOf("dave", "dave-pw", "DFS1")).code() == Code::kAuthFailed);
}

TEST_CASE("refuses a proof bound to another TLS channel (a relay in the middle)") {
  // A relay terminates the client's TLS with a key of its own and opens its
  // own TLS to the server, passing the frames through. It cannot make the
  // proof the server expects: that needs the verifier.
  RunningServer server;
  TempDir relay_dir;
  auto relay_tls = TlsServerContext::LoadOrCreate(relay_dir.str(), "DFS1");
  REQUIRE(relay_tls.ok());

  for (bool client_uses_upstream_binding : {false, true}) {
    CAPTURE(client_uses_upstream_binding);
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    UniqueFd client_fd(fds[0]), relay_fd(fds[1]);
    Result<Channel> relay_in = Status::Unavailable("not run");
    std::thread acceptor(
        [&] { relay_in = TlsChannel::Accept(relay_fd.get(), **relay_tls, Soon()); });
    auto client = TlsChannel::Connect(std::move(client_fd), ClientTls(), Soon());
    acceptor.join();
    REQUIRE(client.ok());
    REQUIRE(relay_in.ok());
    Channel upstream = Connect(server.port());
    // The client could tell by the key; this one does not look.
    CHECK((*client)->peer_fingerprint() != server.fingerprint());
    CHECK((*client)->binding() != upstream->binding());

    // One frame each way through the relay.
    auto relay = [&](TlsChannel& from, TlsChannel& to) {
      Frame f = Receive(from);
      REQUIRE(SendFrame(to, f.type(), f.header.request_id, f.body, Soon()).ok());
    };
    TlsChannel& c = **client;
    HelloRequest hello{"alice", {}};
    RandomBytes(hello.client_nonce.data(), hello.client_nonce.size());
    REQUIRE(SendMessage(c, MsgType::kHello, 1, hello, Soon()).ok());
    relay(**relay_in, *upstream);
    relay(*upstream, **relay_in);
    auto challenge = ParseReply<Challenge>(Receive(c));
    REQUIRE(challenge.ok());
    // The honest client binds its proof to the channel it sees. The other
    // pass shows that only the binding stops the relay: a proof bound to
    // the relay's upstream channel (which the relay cannot compute) passes.
    const Key binding = client_uses_upstream_binding ? upstream->binding() : c.binding();
    ProofRequest proof{ClientProof(AliceVerifier(), binding, hello.client_nonce,
                                   challenge->server_nonce, "alice")};
    REQUIRE(SendMessage(c, MsgType::kProof, 2, proof, Soon()).ok());
    relay(**relay_in, *upstream);
    relay(*upstream, **relay_in);
    Frame reply = Receive(c);
    if (client_uses_upstream_binding) {
      auto ok = ParseReply<AuthOk>(reply);
      REQUIRE(ok.ok());
      // ...and the server's proof, bound to the upstream channel, would not
      // convince a client checking it against its own channel.
      CHECK(ok->server_proof != ServerProof(AliceVerifier(), c.binding(), hello.client_nonce,
                                            challenge->server_nonce, "alice"));
    } else {
      Status s = StatusOf(reply);
      CHECK(s.code() == Code::kAuthFailed);
      CHECK(s.message() == kAuthFailedMessage);
      CHECK(ClosedByServer(*upstream));
    }
    relay_in->reset();  // before relay_fd closes
  }
}

TEST_CASE("refuses a request before authentication and closes the connection") {
  RunningServer server;
  Channel ch = Connect(server.port());
  Status s = StatusOf(Call(*ch, MsgType::kStat, 5, StatRequest{"", "a"}));
  CHECK(s.code() == Code::kPermission);
  CHECK(s.message() == "not authenticated");
  CHECK(ClosedByServer(*ch));

  Channel proof_first = Connect(server.port());
  s = StatusOf(Call(*proof_first, MsgType::kProof, 1, ProofRequest{}));
  CHECK(s.code() == Code::kPermission);
  CHECK(ClosedByServer(*proof_first));
}

TEST_CASE("a second hello closes the connection") {
  RunningServer server;
  Channel ch = Connect(server.port());
  HelloRequest hello{"alice", {}};
  REQUIRE(ParseReply<Challenge>(Call(*ch, MsgType::kHello, 1, hello)).ok());
  Frame f = Call(*ch, MsgType::kHello, 2, hello);
  Status s = StatusOf(f);
  CHECK(s.code() == Code::kProtocol);
  CHECK(s.message().find("second hello") != std::string::npos);
  CHECK(ClosedByServer(*ch));
}

TEST_CASE("a frame over the handshake limit before login closes the connection") {
  RunningServer server;
  struct Case {
    std::string_view what;
    bool hello_first;
    MsgType type;
    uint32_t length;
  };
  const Case cases[] = {
      {"an oversized hello", false, MsgType::kHello, kMaxHandshakeBody + 1},
      {"an oversized proof", true, MsgType::kProof, kMaxHandshakeBody + 1},
      {"a control-sized request", false, MsgType::kStat, kMaxControlBody},
      {"a data frame", true, MsgType::kData, kMaxDataBody},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Channel ch = Connect(server.port());
    if (c.hello_first)
      REQUIRE(ParseReply<Challenge>(Call(*ch, MsgType::kHello, 1, HelloRequest{"alice", {}})).ok());
    // The header alone: the server refuses it before any body arrives.
    const std::string header = HeaderBytes(c.type, 3, c.length);
    REQUIRE(ch->Write(header.data(), header.size(), Soon()).ok());
    Frame f = Receive(*ch);
    Status s = StatusOf(f);
    CHECK(s.code() == Code::kProtocol);
    CHECK(s.message().find("exceeds the limit of " + std::to_string(kMaxHandshakeBody)) !=
          std::string::npos);
    CHECK(ClosedByServer(*ch));
  }
  // A hello exactly at the limit is read (and answered: an unknown user).
  Channel ch = Connect(server.port());
  HelloRequest big{std::string(kMaxHandshakeBody - 2 - 32, 'u'), {}};
  REQUIRE(EncodeMessage(big).size() == kMaxHandshakeBody);
  CHECK(ParseReply<Challenge>(Call(*ch, MsgType::kHello, 1, big)).ok());
}

TEST_CASE("closes a connection that does not log in by the login deadline") {
  ServerOptions options = TestOptions();
  options.session.handshake_timeout = Millis(300);
  RunningServer server(options);
  SUBCASE("silent from the start (no TLS)") {
    UniqueFd fd = ConnectRaw(server.port());
    const auto start = Clock::now();
    pollfd p{fd.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 3000) == 1);
    char b;
    CHECK(::recv(fd.get(), &b, 1, 0) <= 0);
    CHECK(Since(start) >= Millis(250));
    CHECK(Since(start) < Millis(1500));
  }
  SUBCASE("TLS done, then silent") {
    const auto start = Clock::now();
    Channel ch = Connect(server.port());
    CHECK(ClosedByServer(*ch, Millis(3000)));
    CHECK(Since(start) >= Millis(250));
    CHECK(Since(start) < Millis(1500));
  }
  SUBCASE("hello sent, no proof") {
    const auto start = Clock::now();
    Channel ch = Connect(server.port());
    REQUIRE(ParseReply<Challenge>(Call(*ch, MsgType::kHello, 1, HelloRequest{"alice", {}})).ok());
    CHECK(ClosedByServer(*ch, Millis(3000)));
    CHECK(Since(start) >= Millis(250));
    CHECK(Since(start) < Millis(1500));
  }
  SUBCASE("a logged-in connection is not held to it") {
    Channel ch = LoggedIn(server.port());
    std::this_thread::sleep_for(Millis(500));
    CHECK(Ping(*ch).ok());
  }
}

TEST_CASE("idle connections that never log in do not keep a client out") {
  ServerOptions options = TestOptions();
  options.max_pending = 4;
  options.max_pending_per_address = 4;
  RunningServer server(options);
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(ConnectRaw(server.port()));
  const auto start = Clock::now();
  Channel ch = Connect(server.port());
  Status s = Login(*ch, "alice", AliceVerifier());
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(Since(start) < Millis(1000));
  CHECK(Ping(*ch).ok());
  // The idle ones beyond the budget were cut off.
  auto cut_off = [&] {
    int n = 0;
    for (const UniqueFd& fd : idle) {
      char b;
      if (::recv(fd.get(), &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) ++n;
    }
    return n;
  };
  CHECK(Eventually([&] { return cut_off() >= 16; }));
}

TEST_CASE("limits the logged-in connections of one user") {
  ServerOptions options = TestOptions();
  options.max_connections_per_user = 2;
  RunningServer server(options);
  std::optional<Channel> first = LoggedIn(server.port());
  Channel second = LoggedIn(server.port());
  Channel third = Connect(server.port());
  Status busy = Login(*third, "alice", AliceVerifier());
  CHECK(busy.code() == Code::kBusy);
  CHECK(busy.message().find("server busy") == 0);
  CHECK(ClosedByServer(*third));
  // Another user still gets in, and the first two still work.
  Channel bob = LoggedIn(server.port(), "bob");
  CHECK(Ping(*bob).ok());
  CHECK(Ping(**first).ok());
  CHECK(Ping(*second).ok());
  // Once one of alice's leaves, there is room for her again.
  first.reset();
  CHECK(Eventually([&] {
    Channel next = Connect(server.port());
    return Login(*next, "alice", AliceVerifier()).ok();
  }));
}

TEST_CASE("tells logins over the connection limit that the server is busy") {
  ServerOptions options = TestOptions();
  options.max_connections = 1;
  RunningServer server(options);
  std::optional<Channel> first = LoggedIn(server.port());
  Channel second = Connect(server.port());
  Status busy = Login(*second, "bob", BobVerifier());
  CHECK(busy.code() == Code::kBusy);
  CHECK(busy.message().find("server busy") == 0);
  CHECK(ClosedByServer(*second));
  CHECK(Ping(**first).ok());

  // Once the first one leaves, there is room again.
  first.reset();
  CHECK(Eventually([&] {
    Channel next = Connect(server.port());
    return Login(*next, "bob", BobVerifier()).ok();
  }));
}

// ---- AuthKeys ----

TEST_CASE("reads dfs.conf secrets for this server's name and counts plain passwords") {
  ServerConfig config;
  config.users["alice"] = "$dfs2$" + ToHex(AliceVerifier());
  config.users["carol"] = "SimplePassword";
  int plain = -1;
  auto keys = AuthKeys::FromConfig(config, "dfs.conf", "DFS1", &plain);
  REQUIRE_MESSAGE(keys.ok(), keys.status().ToString());
  CHECK(plain == 1);
  CHECK(keys->size() == 2);
  bool known = false;
  CHECK(keys->KeyFor("alice", &known) == AliceVerifier());
  CHECK(known);
  CHECK(keys->KeyFor("carol", &known) == VerifierOf("carol", "SimplePassword", "DFS1"));
  CHECK(known);
  // An unknown user gets a key like any other, that no proof matches.
  const Key& dummy = keys->KeyFor("mallory", &known);
  CHECK_FALSE(known);
  CHECK(dummy != Key{});
  CHECK(dummy != AliceVerifier());
}

TEST_CASE("refuses a retired or malformed secret, naming the file and the user") {
  for (std::string secret : {"$dfs1$" + std::string(64, 'a'), std::string("$dfs2$abc")}) {
    CAPTURE(secret);
    ServerConfig config;
    config.users["alice"] = secret;
    auto keys = AuthKeys::FromConfig(config, "/etc/dfs.conf", "DFS1");
    REQUIRE_FALSE(keys.ok());
    CHECK(keys.status().code() == Code::kInvalidArgument);
    CHECK(keys.status().message().rfind("/etc/dfs.conf: user 'alice': ", 0) == 0);
  }
}

// ---- Requests ----

TEST_CASE("a malformed frame closes only that connection") {
  RunningServer server;
  Channel good = LoggedIn(server.port());
  Channel bad = LoggedIn(server.port());
  const std::string garbage(16, 'x');
  REQUIRE(bad->Write(garbage.data(), garbage.size(), Soon()).ok());
  Frame f = Receive(*bad);
  CHECK(StatusOf(f).code() == Code::kProtocol);
  CHECK(ClosedByServer(*bad));
  CHECK(Ping(*good).ok());

  // A body that does not decode, and a type that makes no sense, do the same.
  Channel bad_body = LoggedIn(server.port());
  REQUIRE(SendFrame(*bad_body, MsgType::kStat, 3, "abc", Soon()).ok());
  f = Receive(*bad_body);
  CHECK(f.header.request_id == 3);
  CHECK(StatusOf(f).code() == Code::kProtocol);
  CHECK(ClosedByServer(*bad_body));
  Channel bad_type = LoggedIn(server.port());
  REQUIRE(SendFrame(*bad_type, MsgType::kDataEnd, 4, "", Soon()).ok());
  CHECK(StatusOf(Receive(*bad_type)).code() == Code::kProtocol);
  CHECK(ClosedByServer(*bad_type));
  // A hello after login is out of place too.
  Channel hello_again = LoggedIn(server.port());
  CHECK(StatusOf(Call(*hello_again, MsgType::kHello, 5, HelloRequest{"bob", {}})).code() ==
        Code::kProtocol);
  CHECK(ClosedByServer(*hello_again));
  CHECK(Ping(*good).ok());
}

TEST_CASE("rejects a body longer than the frame limit before reading it") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  const std::string header = HeaderBytes(MsgType::kPing, 7, kMaxControlBody + 1);
  REQUIRE(ch->Write(header.data(), header.size(), Soon()).ok());
  Status s = StatusOf(Receive(*ch));
  CHECK(s.code() == Code::kProtocol);
  CHECK(s.message().find("exceeds the limit") != std::string::npos);
  CHECK(ClosedByServer(*ch));
}

TEST_CASE("answers a failed request with an error and keeps the connection") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  Frame f = Call(*ch, MsgType::kStat, 41, StatRequest{"", "missing"});
  CHECK(StatusOf(f).code() == Code::kNotFound);
  f = Call(*ch, MsgType::kMkdir, 42, PathRequest{"../escape"});
  CHECK(StatusOf(f).code() == Code::kInvalidArgument);
  f = Call(*ch, MsgType::kMkdir, 43, PathRequest{"bad\x1bname"});
  CHECK(StatusOf(f).code() == Code::kInvalidArgument);
  CHECK(Ping(*ch).ok());
}

TEST_CASE("puts, commits, lists and gets a piece over the wire") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  REQUIRE(StatusOf(Call(*ch, MsgType::kMkdir, 3, PathRequest{"docs"})).ok());

  const Cid cid = RandomCid();
  // 10 MiB file: piece 1 is 2.5 MiB, so the data takes several frames.
  const PieceHeader h = MakeHeader(cid, StampAt(100), 1, 10u << 20, kDefaultChunkBytes);
  const std::string data = SealedBytes(h);
  REQUIRE(data.size() > 2 * kMaxDataBody);
  REQUIRE(PutPiece(*ch, "docs", "f.bin", h, data).ok());
  auto committed = ParseReply<CommitReply>(
      Call(*ch, MsgType::kCommit, 4, CommitRequest{"docs", "f.bin", cid, StampAt(100)}));
  REQUIRE(committed.ok());
  CHECK(committed->committed == std::vector<uint8_t>{1});
  CHECK(server.StagedFiles() == 0);

  auto listed = ParseReply<ListReply>(Call(*ch, MsgType::kList, 5, ListRequest{"docs"}));
  REQUIRE(listed.ok());
  CHECK_FALSE(listed->more);
  REQUIRE(listed->entries.size() == 1);
  CHECK(listed->entries[0].name == "f.bin");
  CHECK(listed->entries[0].header.cid == cid);

  GetReply reply;
  GetRequest get{"docs", "f.bin", 1, cid, 0, UINT64_MAX};
  auto all = GetPiece(*ch, get, &reply);
  REQUIRE(all.ok());
  CHECK(reply.offset == 0);
  CHECK(reply.length == data.size());
  CHECK(reply.header.stamp == StampAt(100));
  CHECK(*all == data);

  get.offset = 1000;
  get.length = 50;
  auto part = GetPiece(*ch, get, &reply);
  REQUIRE(part.ok());
  CHECK(*part == data.substr(1000, 50));

  get.cid = RandomCid();
  Status stale = StatusOf(Call(*ch, MsgType::kGet, 6, get));
  CHECK(stale.code() == Code::kStale);
  CHECK(Ping(*ch).ok());
}

TEST_CASE("a piece of the wrong length is refused after its stream and nothing stays staged") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  const PieceHeader h = MakeHeader(RandomCid(), StampAt(1), 2);
  const std::string data = SealedBytes(h);
  Status shorter = PutPiece(*ch, "", "a", h, data.substr(0, data.size() - 1));
  CHECK(shorter.code() == Code::kInvalidArgument);
  CHECK(shorter.message().find("piece length mismatch") != std::string::npos);
  Status longer = PutPiece(*ch, "", "a", h, data + "extra", 64);
  CHECK(longer.code() == Code::kInvalidArgument);
  CHECK(Ping(*ch).ok());
  CHECK(server.StagedFiles() == 0);

  // A put into a missing folder is refused before any data is sent.
  Status missing = StatusOf(Call(*ch, MsgType::kPutBegin, 8, PutBeginRequest{"nope", "a", h}));
  CHECK(missing.code() == Code::kNotFound);
  CHECK(missing.message() == "no such directory 'nope'");
  CHECK(Ping(*ch).ok());
}

TEST_CASE("a request in the middle of a piece stream closes the connection and drops the piece") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  const PieceHeader h = MakeHeader(RandomCid(), StampAt(1), 1);
  REQUIRE(StatusOf(Call(*ch, MsgType::kPutBegin, 3, PutBeginRequest{"", "a", h})).ok());
  REQUIRE(SendFrame(*ch, MsgType::kData, 3, "abc", Soon()).ok());
  REQUIRE(SendMessage(*ch, MsgType::kPing, 4, Empty{}, Soon()).ok());
  CHECK(StatusOf(Receive(*ch)).code() == Code::kProtocol);
  CHECK(ClosedByServer(*ch));
  CHECK(Eventually([&] { return server.StagedFiles() == 0; }));
}

TEST_CASE("stages two pieces in one request, the stream cut anywhere, then commits them") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  const Cid cid = RandomCid();
  // 3 MiB file: pieces of 768 KiB, so frames of 700 KiB straddle the pieces.
  const PieceHeader h2 = MakeHeader(cid, StampAt(7), 2, 3u << 20, kDefaultChunkBytes);
  const PieceHeader h3 = MakeHeader(cid, StampAt(7), 3, 3u << 20, kDefaultChunkBytes);
  const std::string d2 = SealedBytes(h2);
  const std::string d3 = SealedBytes(h3);
  REQUIRE(StagePieces(*ch, "", "f.bin", {h2, h3}, d2 + d3, 700 << 10).ok());
  CHECK(server.StagedFiles() == 2);
  auto committed = ParseReply<CommitReply>(
      Call(*ch, MsgType::kCommit, 4, CommitRequest{"", "f.bin", cid, StampAt(7)}));
  REQUIRE(committed.ok());
  CHECK(committed->committed == std::vector<uint8_t>{2, 3});
  GetReply reply;
  auto got2 = GetPiece(*ch, GetRequest{"", "f.bin", 2, cid, 0, UINT64_MAX}, &reply);
  auto got3 = GetPiece(*ch, GetRequest{"", "f.bin", 3, cid, 0, UINT64_MAX}, &reply);
  REQUIRE(got2.ok());
  REQUIRE(got3.ok());
  CHECK(*got2 == d2);
  CHECK(*got3 == d3);
}

TEST_CASE("a stat sends the first piece of the server's pair inline when it is small") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  auto store = [&](const std::string& name, std::vector<int> pieces, uint64_t size) {
    const Cid cid = RandomCid();
    std::vector<PieceHeader> headers;
    std::string data;
    for (int k : pieces) {
      headers.push_back(MakeHeader(cid, StampAt(5), k, size, kDefaultChunkBytes));
      data += SealedBytes(headers.back());
    }
    REQUIRE(StagePieces(*ch, "", name, headers, data).ok());
    REQUIRE(ParseReply<CommitReply>(
                Call(*ch, MsgType::kCommit, 4, CommitRequest{"", name, cid, StampAt(5)}))
                .ok());
    return headers;
  };
  auto stat = [&](const std::string& name, uint32_t inline_max) {
    auto r = ParseReply<StatReply>(Call(*ch, MsgType::kStat, 5, StatRequest{"", name, inline_max}));
    REQUIRE(r.ok());
    return *r;
  };
  const auto pair23 = store("a", {2, 3}, 4000);
  StatReply a = stat("a", kMaxInlineBytes);
  CHECK(a.inline_piece == 2);
  CHECK(a.inline_data == SealedBytes(pair23[0]));
  CHECK(stat("a", 0).inline_piece == 0);    // not asked
  CHECK(stat("a", 100).inline_piece == 0);  // longer than asked

  const auto pair41 = store("b", {1, 4}, 4000);  // the pair (4, 1): 4 comes first
  StatReply b = stat("b", kMaxInlineBytes);
  CHECK(b.inline_piece == 4);
  CHECK(b.inline_data == SealedBytes(pair41[1]));

  store("big", {1, 2}, 1u << 20);  // pieces of 256 KiB: never inline
  CHECK(stat("big", UINT32_MAX).inline_piece == 0);
}

TEST_CASE("a refused stage request reads its whole stream and keeps the connection") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  const PieceHeader h = MakeHeader(RandomCid(), StampAt(1), 1);
  Status missing = StagePieces(*ch, "nope", "a", {h}, SealedBytes(h), 10);
  CHECK(missing.code() == Code::kNotFound);
  CHECK(missing.message() == "no such directory 'nope'");
  CHECK(Ping(*ch).ok());

  // Pieces of two different uploads.
  const PieceHeader other = MakeHeader(RandomCid(), StampAt(1), 2);
  Status mixed = StagePieces(*ch, "", "a", {h, other}, SealedBytes(h) + SealedBytes(other));
  CHECK(mixed.code() == Code::kInvalidArgument);
  CHECK(Ping(*ch).ok());

  // Fewer bytes than the headers announce.
  const std::string data = SealedBytes(h);
  Status shorter = StagePieces(*ch, "", "a", {h}, data.substr(0, data.size() - 1));
  CHECK(shorter.code() == Code::kInvalidArgument);
  CHECK(shorter.message().find("piece length mismatch") != std::string::npos);
  CHECK(Ping(*ch).ok());
  CHECK(server.StagedFiles() == 0);
}

TEST_CASE("more stage data than the headers announce closes the connection") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  const PieceHeader h = MakeHeader(RandomCid(), StampAt(1), 1);
  REQUIRE(SendMessage(*ch, MsgType::kStage, 3, StageRequest{"", "a", {h}}, Soon()).ok());
  REQUIRE(SendFrame(*ch, MsgType::kData, 3, SealedBytes(h) + "x", Soon()).ok());
  CHECK(StatusOf(Receive(*ch)).code() == Code::kProtocol);
  CHECK(ClosedByServer(*ch));
  CHECK(Eventually([&] { return server.StagedFiles() == 0; }));
}

TEST_CASE("splits a long listing into frames under the control limit") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  // 600 tombstones with long names: about 200 KiB of entries.
  PieceHeader t;
  t.kind = PieceKind::kTombstone;
  t.piece = 0;
  const std::string raw = t.Encode();
  for (int i = 0; i < 600; ++i) {
    std::string name = std::to_string(i) + std::string(200, 'n');
    std::ofstream(server.root() / "alice" / PieceFileName(name, 0), std::ios::binary) << raw;
  }
  REQUIRE(SendMessage(*ch, MsgType::kList, 9, ListRequest{""}, Soon()).ok());
  size_t entries = 0, frames = 0;
  for (;;) {
    Frame f = Receive(*ch);
    CHECK(f.header.request_id == 9);
    CHECK(f.body.size() <= kMaxControlBody);
    auto batch = ParseReply<ListReply>(f);
    REQUIRE(batch.ok());
    ++frames;
    entries += batch->entries.size();
    if (!batch->more) break;
  }
  CHECK(entries == 600);
  CHECK(frames >= 3);

  auto empty = ParseReply<ListReply>(Call(*ch, MsgType::kList, 10, ListRequest{"void"}));
  CHECK(empty.status().code() == Code::kNotFound);
  REQUIRE(StatusOf(Call(*ch, MsgType::kMkdir, 11, PathRequest{"void"})).ok());
  empty = ParseReply<ListReply>(Call(*ch, MsgType::kList, 12, ListRequest{"void"}));
  REQUIRE(empty.ok());
  CHECK_FALSE(empty->more);
  CHECK(empty->entries.empty());
}

// ---- Stop ----

TEST_CASE("stops at once when every connection is idle") {
  RunningServer server;
  Channel ch = LoggedIn(server.port());
  Channel pending = Connect(server.port());  // not logged in either
  Millis took = server.Stop();
  CHECK(took < Millis(2000));
  CHECK(server.run_status().ok());
  CHECK(ClosedByServer(*ch));
  CHECK(ClosedByServer(*pending));
  CHECK_FALSE(ConnectTcp("127.0.0.1", server.port(), Millis(500)).ok());
}

TEST_CASE("cuts off a request still running after the grace period") {
  ServerOptions options = TestOptions();
  options.grace = Millis(300);
  RunningServer server(options);
  Channel ch = LoggedIn(server.port());
  // A put that stalls halfway.
  const PieceHeader h = MakeHeader(RandomCid(), StampAt(1), 1);
  REQUIRE(StatusOf(Call(*ch, MsgType::kPutBegin, 3, PutBeginRequest{"", "a", h})).ok());
  REQUIRE(SendFrame(*ch, MsgType::kData, 3, "abc", Soon()).ok());
  CHECK(Eventually([&] { return server.StagedFiles() == 1; }));
  Millis took = server.Stop();
  CHECK(took >= Millis(250));
  CHECK(took < Millis(3000));
  CHECK(ClosedByServer(*ch));
  CHECK(server.StagedFiles() == 0);
}

}  // namespace
}  // namespace dfs::server
