// Tests of dfs_server/server.h and session.h: a Server runs in-process on
// 127.0.0.1 (port 0) and the tests speak the wire protocol over real sockets.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "dfs_server/server.h"
#include "dfs_server/session.h"
#include "shared/net/socket.h"
#include "shared/protocol/auth.h"
#include "tests/server/server_test_util.h"

namespace dfs::server {
namespace {

namespace fs = std::filesystem;
using testing::MakeHeader;
using testing::SealedBytes;
using testing::StampAt;
using testing::TempDir;

Key AliceKey() {
  Key k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 3 + 1);
  return k;
}

Deadline Soon() { return DeadlineIn(Millis(5000)); }

// A Server on 127.0.0.1 with user "alice" (key AliceKey()), run on a thread.
class RunningServer {
 public:
  explicit RunningServer(ServerOptions options = {}, ServerConfig config = {}) {
    options.root = tmp_.str();
    options.bind_address = "127.0.0.1";
    options.port = 0;
    config.users["alice"] = "$dfs1$" + ToHex(AliceKey());
    auto keys = AuthKeys::FromConfig(config, "test.conf");
    REQUIRE(keys.ok());
    auto server = Server::Start(options, std::move(keys).value());
    REQUIRE(server.ok());
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
    return std::chrono::duration_cast<Millis>(Clock::now() - start);
  }

  uint16_t port() const { return server_->port(); }
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

UniqueFd Connect(uint16_t port) {
  auto fd = ConnectTcp("127.0.0.1", port, Millis(2000));
  REQUIRE(fd.ok());
  return std::move(fd).value();
}

Frame Receive(int fd) {
  Frame f;
  Status s = RecvFrame(fd, &f, Soon());
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return f;
}

template <typename T>
Frame Call(int fd, MsgType type, uint32_t id, const T& msg) {
  REQUIRE(SendMessage(fd, type, id, msg, Soon()).ok());
  Frame f = Receive(fd);
  CHECK(f.header.request_id == id);
  return f;
}

// The status of a reply frame: OK for kReply, the error for kError.
Status StatusOf(const Frame& f) {
  if (f.type() == MsgType::kError) return DecodeError(f.body);
  return f.type() == MsgType::kReply ? Status::Ok() : Status::Protocol("not a reply");
}

// True when the server closed the connection (after any frames still queued).
bool ClosedByServer(int fd) {
  for (int i = 0; i < 4; ++i) {
    Frame f;
    Status s = RecvFrame(fd, &f, Soon());
    if (s.code() == Code::kUnavailable) return true;
    if (!s.ok()) return false;  // timeout: still open
  }
  return false;
}

// Runs the handshake; returns the server's verdict.
Status Login(int fd, const std::string& user, const Key& key) {
  HelloRequest hello{user, {}};
  RandomBytes(hello.client_nonce.data(), hello.client_nonce.size());
  Frame f = Call(fd, MsgType::kHello, 1, hello);
  auto challenge = ParseReply<Challenge>(f);
  if (!challenge.ok()) return challenge.status();
  ProofRequest proof{ClientProof(key, hello.client_nonce, challenge->server_nonce)};
  auto ok = ParseReply<AuthOk>(Call(fd, MsgType::kProof, 2, proof));
  if (!ok.ok()) return ok.status();
  if (ok->server_proof != ServerProof(key, hello.client_nonce, challenge->server_nonce))
    return Status::AuthFailed("server proof does not match");
  return Status::Ok();
}

UniqueFd LoggedIn(uint16_t port) {
  UniqueFd fd = Connect(port);
  Status s = Login(fd.get(), "alice", AliceKey());
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return fd;
}

Status Ping(int fd, uint32_t id = 99) { return StatusOf(Call(fd, MsgType::kPing, id, Empty{})); }

// Sends a piece in data frames of `frame_bytes`; returns the final reply.
Status PutPiece(int fd, const std::string& dir, const std::string& name, const PieceHeader& h,
                const std::string& data, size_t frame_bytes = kMaxDataBody) {
  Status begun = StatusOf(Call(fd, MsgType::kPutBegin, 10, PutBeginRequest{dir, name, h}));
  if (!begun.ok()) return begun;
  for (size_t pos = 0; pos < data.size(); pos += frame_bytes)
    REQUIRE(
        SendFrame(fd, MsgType::kData, 10, std::string_view(data).substr(pos, frame_bytes), Soon())
            .ok());
  REQUIRE(SendFrame(fd, MsgType::kDataEnd, 10, "", Soon()).ok());
  Frame f = Receive(fd);
  CHECK(f.header.request_id == 10);
  return StatusOf(f);
}

// GET: the reply, then the data until kDataEnd (or a kError).
Result<std::string> GetPiece(int fd, const GetRequest& req, GetReply* reply) {
  auto r = ParseReply<GetReply>(Call(fd, MsgType::kGet, 20, req));
  if (!r.ok()) return r.status();
  *reply = *r;
  std::string data;
  for (;;) {
    Frame f = Receive(fd);
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

TEST_CASE("authenticates a user, proves itself and answers a ping") {
  RunningServer server;
  UniqueFd fd = LoggedIn(server.port());
  CHECK(Ping(fd.get(), 12345).ok());
  CHECK(fs::is_directory(server.root() / "alice"));
}

TEST_CASE("accepts a plain password from dfs.conf") {
  ServerConfig config;
  config.users["bob"] = "SimplePassword";
  RunningServer server({}, config);
  UniqueFd fd = Connect(server.port());
  CHECK(Login(fd.get(), "bob", DeriveUserKeys("bob", "SimplePassword").auth).ok());
  CHECK(Ping(fd.get()).ok());
}

TEST_CASE("refuses a wrong password with the exact message and closes the connection") {
  RunningServer server;
  UniqueFd fd = Connect(server.port());
  Key wrong = AliceKey();
  wrong[0] ^= 1;
  Status s = Login(fd.get(), "alice", wrong);
  CHECK(s.code() == Code::kAuthFailed);
  CHECK(s.message() == "Invalid Username/Password. Please try again.");
  CHECK(ClosedByServer(fd.get()));
}

TEST_CASE("answers an unknown user exactly like a wrong password") {
  RunningServer server;
  UniqueFd fd = Connect(server.port());
  Status s = Login(fd.get(), "mallory", AliceKey());
  CHECK(s.code() == Code::kAuthFailed);
  CHECK(s.message() == kAuthFailedMessage);
  CHECK(ClosedByServer(fd.get()));
  CHECK_FALSE(fs::exists(server.root() / "mallory"));
}

TEST_CASE("refuses a request before authentication and closes the connection") {
  RunningServer server;
  UniqueFd fd = Connect(server.port());
  Status s = StatusOf(Call(fd.get(), MsgType::kStat, 5, StatRequest{"", "a"}));
  CHECK(s.code() == Code::kPermission);
  CHECK(s.message() == "not authenticated");
  CHECK(ClosedByServer(fd.get()));

  UniqueFd proof_first = Connect(server.port());
  s = StatusOf(Call(proof_first.get(), MsgType::kProof, 1, ProofRequest{}));
  CHECK(s.code() == Code::kPermission);
  CHECK(ClosedByServer(proof_first.get()));
}

TEST_CASE("a malformed frame closes only that connection") {
  RunningServer server;
  UniqueFd good = LoggedIn(server.port());
  UniqueFd bad = LoggedIn(server.port());
  const std::string garbage(16, 'x');
  REQUIRE(SendAll(bad.get(), garbage.data(), garbage.size(), Soon()).ok());
  Frame f = Receive(bad.get());
  CHECK(StatusOf(f).code() == Code::kProtocol);
  CHECK(ClosedByServer(bad.get()));
  CHECK(Ping(good.get()).ok());

  // A body that does not decode, and a type that makes no sense, do the same.
  UniqueFd bad_body = LoggedIn(server.port());
  REQUIRE(SendFrame(bad_body.get(), MsgType::kStat, 3, "abc", Soon()).ok());
  f = Receive(bad_body.get());
  CHECK(f.header.request_id == 3);
  CHECK(StatusOf(f).code() == Code::kProtocol);
  CHECK(ClosedByServer(bad_body.get()));
  UniqueFd bad_type = LoggedIn(server.port());
  REQUIRE(SendFrame(bad_type.get(), MsgType::kDataEnd, 4, "", Soon()).ok());
  CHECK(StatusOf(Receive(bad_type.get())).code() == Code::kProtocol);
  CHECK(ClosedByServer(bad_type.get()));
  CHECK(Ping(good.get()).ok());
}

TEST_CASE("rejects a body longer than the frame limit before reading it") {
  RunningServer server;
  UniqueFd fd = LoggedIn(server.port());
  uint8_t header[kFrameHeaderBytes];
  EncodeFrameHeader({MsgType::kPing, 7, kMaxControlBody + 1}, header);
  REQUIRE(SendAll(fd.get(), header, sizeof header, Soon()).ok());
  Status s = StatusOf(Receive(fd.get()));
  CHECK(s.code() == Code::kProtocol);
  CHECK(s.message().find("exceeds the limit") != std::string::npos);
  CHECK(ClosedByServer(fd.get()));
}

TEST_CASE("answers a failed request with an error and keeps the connection") {
  RunningServer server;
  UniqueFd fd = LoggedIn(server.port());
  Frame f = Call(fd.get(), MsgType::kStat, 41, StatRequest{"", "missing"});
  CHECK(StatusOf(f).code() == Code::kNotFound);
  f = Call(fd.get(), MsgType::kMkdir, 42, PathRequest{"../escape"});
  CHECK(StatusOf(f).code() == Code::kInvalidArgument);
  CHECK(Ping(fd.get()).ok());
}

TEST_CASE("puts, commits, lists and gets a piece over the wire") {
  RunningServer server;
  UniqueFd fd = LoggedIn(server.port());
  REQUIRE(StatusOf(Call(fd.get(), MsgType::kMkdir, 3, PathRequest{"docs"})).ok());

  const Cid cid = RandomCid();
  // 10 MiB file: piece 1 is 2.5 MiB, so the data takes several frames.
  const PieceHeader h = MakeHeader(cid, StampAt(100), 1, 10u << 20, kDefaultChunkBytes);
  const std::string data = SealedBytes(h);
  REQUIRE(data.size() > 2 * kMaxDataBody);
  REQUIRE(PutPiece(fd.get(), "docs", "f.bin", h, data).ok());
  auto committed = ParseReply<CommitReply>(
      Call(fd.get(), MsgType::kCommit, 4, CommitRequest{"docs", "f.bin", cid, StampAt(100)}));
  REQUIRE(committed.ok());
  CHECK(committed->committed == std::vector<uint8_t>{1});
  CHECK(server.StagedFiles() == 0);

  auto listed = ParseReply<ListReply>(Call(fd.get(), MsgType::kList, 5, ListRequest{"docs"}));
  REQUIRE(listed.ok());
  CHECK_FALSE(listed->more);
  REQUIRE(listed->entries.size() == 1);
  CHECK(listed->entries[0].name == "f.bin");
  CHECK(listed->entries[0].header.cid == cid);

  GetReply reply;
  GetRequest get{"docs", "f.bin", 1, cid, 0, UINT64_MAX};
  auto all = GetPiece(fd.get(), get, &reply);
  REQUIRE(all.ok());
  CHECK(reply.offset == 0);
  CHECK(reply.length == data.size());
  CHECK(reply.header.stamp == StampAt(100));
  CHECK(*all == data);

  get.offset = 1000;
  get.length = 50;
  auto part = GetPiece(fd.get(), get, &reply);
  REQUIRE(part.ok());
  CHECK(*part == data.substr(1000, 50));

  get.cid = RandomCid();
  Status stale = StatusOf(Call(fd.get(), MsgType::kGet, 6, get));
  CHECK(stale.code() == Code::kStale);
  CHECK(Ping(fd.get()).ok());
}

TEST_CASE("a piece of the wrong length is refused after its stream and nothing stays staged") {
  RunningServer server;
  UniqueFd fd = LoggedIn(server.port());
  const PieceHeader h = MakeHeader(RandomCid(), StampAt(1), 2);
  const std::string data = SealedBytes(h);
  Status shorter = PutPiece(fd.get(), "", "a", h, data.substr(0, data.size() - 1));
  CHECK(shorter.code() == Code::kInvalidArgument);
  CHECK(shorter.message().find("piece length mismatch") != std::string::npos);
  Status longer = PutPiece(fd.get(), "", "a", h, data + "extra", 64);
  CHECK(longer.code() == Code::kInvalidArgument);
  CHECK(Ping(fd.get()).ok());
  CHECK(server.StagedFiles() == 0);

  // A put into a missing folder is refused before any data is sent.
  Status missing = StatusOf(Call(fd.get(), MsgType::kPutBegin, 8, PutBeginRequest{"nope", "a", h}));
  CHECK(missing.code() == Code::kNotFound);
  CHECK(missing.message() == "no such directory 'nope'");
  CHECK(Ping(fd.get()).ok());
}

TEST_CASE("a request in the middle of a piece stream closes the connection and drops the piece") {
  RunningServer server;
  UniqueFd fd = LoggedIn(server.port());
  const PieceHeader h = MakeHeader(RandomCid(), StampAt(1), 1);
  REQUIRE(StatusOf(Call(fd.get(), MsgType::kPutBegin, 3, PutBeginRequest{"", "a", h})).ok());
  REQUIRE(SendFrame(fd.get(), MsgType::kData, 3, "abc", Soon()).ok());
  REQUIRE(SendMessage(fd.get(), MsgType::kPing, 4, Empty{}, Soon()).ok());
  CHECK(StatusOf(Receive(fd.get())).code() == Code::kProtocol);
  CHECK(ClosedByServer(fd.get()));
  CHECK(Eventually([&] { return server.StagedFiles() == 0; }));
}

TEST_CASE("splits a long listing into frames under the control limit") {
  RunningServer server;
  UniqueFd fd = LoggedIn(server.port());
  // 600 tombstones with long names: about 200 KiB of entries.
  PieceHeader t;
  t.kind = PieceKind::kTombstone;
  t.piece = 0;
  const std::string raw = t.Encode();
  for (int i = 0; i < 600; ++i) {
    std::string name = std::to_string(i) + std::string(200, 'n');
    std::ofstream(server.root() / "alice" / PieceFileName(name, 0), std::ios::binary) << raw;
  }
  REQUIRE(SendMessage(fd.get(), MsgType::kList, 9, ListRequest{""}, Soon()).ok());
  size_t entries = 0, frames = 0;
  for (;;) {
    Frame f = Receive(fd.get());
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

  auto empty = ParseReply<ListReply>(Call(fd.get(), MsgType::kList, 10, ListRequest{"void"}));
  CHECK(empty.status().code() == Code::kNotFound);
  REQUIRE(StatusOf(Call(fd.get(), MsgType::kMkdir, 11, PathRequest{"void"})).ok());
  empty = ParseReply<ListReply>(Call(fd.get(), MsgType::kList, 12, ListRequest{"void"}));
  REQUIRE(empty.ok());
  CHECK_FALSE(empty->more);
  CHECK(empty->entries.empty());
}

TEST_CASE("tells connections over the limit that the server is busy") {
  ServerOptions options;
  options.max_connections = 1;
  RunningServer server(options);
  std::optional<UniqueFd> first = LoggedIn(server.port());
  UniqueFd second = Connect(server.port());
  Frame f = Receive(second.get());
  Status busy = StatusOf(f);
  CHECK(busy.code() == Code::kBusy);
  CHECK(busy.message() == "server busy");
  CHECK(ClosedByServer(second.get()));
  CHECK(Ping(first->get()).ok());

  // Once the first one leaves, there is room again.
  first.reset();
  CHECK(Eventually([&] {
    UniqueFd next = Connect(server.port());
    Frame reply;
    return SendMessage(next.get(), MsgType::kHello, 1, HelloRequest{"alice", {}}, Soon()).ok() &&
           RecvFrame(next.get(), &reply, Soon()).ok() && reply.type() == MsgType::kReply;
  }));
}

TEST_CASE("stops at once when every connection is idle") {
  RunningServer server;
  UniqueFd fd = LoggedIn(server.port());
  Millis took = server.Stop();
  CHECK(took < Millis(2000));
  CHECK(server.run_status().ok());
  CHECK(ClosedByServer(fd.get()));
  CHECK_FALSE(ConnectTcp("127.0.0.1", server.port(), Millis(500)).ok());
}

TEST_CASE("cuts off a request still running after the grace period") {
  ServerOptions options;
  options.grace = Millis(300);
  RunningServer server(options);
  UniqueFd fd = LoggedIn(server.port());
  // A put that stalls halfway.
  const PieceHeader h = MakeHeader(RandomCid(), StampAt(1), 1);
  REQUIRE(StatusOf(Call(fd.get(), MsgType::kPutBegin, 3, PutBeginRequest{"", "a", h})).ok());
  REQUIRE(SendFrame(fd.get(), MsgType::kData, 3, "abc", Soon()).ok());
  CHECK(Eventually([&] { return server.StagedFiles() == 1; }));
  Millis took = server.Stop();
  CHECK(took >= Millis(250));
  CHECK(took < Millis(3000));
  CHECK(ClosedByServer(fd.get()));
  CHECK(server.StagedFiles() == 0);
}

}  // namespace
}  // namespace dfs::server
