// Integration: authentication and what a wrong password, a stolen dfs.conf
// line or a misnamed server can (not) do.
#include <signal.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shared/net/socket.h"
#include "shared/net/tls.h"
#include "shared/protocol/auth.h"
#include "tests/integration/helpers.h"

namespace dfs::testing {
namespace {

// Logs in on one server directly (TLS, hello, proof) with `verifier`: the
// server's verdict, without any client library logic in between.
Status LoginOn(uint16_t port, const std::string& fingerprint, const std::string& user,
               const Key& verifier) {
  auto tls = TlsClientContext::Create();
  REQUIRE(tls.ok());
  auto fd = ConnectTcp("127.0.0.1", port, Millis(2000));
  REQUIRE(fd.ok());
  const Deadline deadline = DeadlineIn(Millis(5000));
  auto ch = TlsChannel::Connect(std::move(fd).value(), **tls, deadline);
  REQUIRE_MESSAGE(ch.ok(), ch.status().ToString());
  TlsChannel& c = **ch;
  CHECK(c.peer_fingerprint() == fingerprint);
  HelloRequest hello{user, {}};
  dfs::RandomBytes(hello.client_nonce.data(), hello.client_nonce.size());
  REQUIRE(SendMessage(c, MsgType::kHello, 1, hello, deadline).ok());
  Frame f;
  REQUIRE(RecvFrame(c, &f, deadline).ok());
  auto challenge = ParseReply<Challenge>(f);
  REQUIRE(challenge.ok());
  ProofRequest proof{
      ClientProof(verifier, c.binding(), hello.client_nonce, challenge->server_nonce, user)};
  REQUIRE(SendMessage(c, MsgType::kProof, 2, proof, deadline).ok());
  REQUIRE(RecvFrame(c, &f, deadline).ok());
  auto ok = ParseReply<AuthOk>(f);
  if (!ok.ok()) return ok.status();
  if (ok->server_proof !=
      ServerProof(verifier, c.binding(), hello.client_nonce, challenge->server_nonce, user))
    return Status::AuthFailed("the server's proof does not match");
  return Status::Ok();
}

Key VerifierOf(const std::string& user, const std::string& password, const std::string& server) {
  return ServerVerifier(DeriveUserKeys(user, password).auth, server);
}

// Four single-server clusters named DFS1..DFS4 (--name), each with a
// dfs.conf of its own, as four separate machines would have.
struct SeparateServers {
  std::vector<std::unique_ptr<Cluster>> clusters;
  TempDir tmp{"dfs-auth"};

  // users_of(name) gives the dfs.conf users (name -> secret) of server `name`.
  template <typename UsersOf>
  explicit SeparateServers(UsersOf users_of) {
    for (int i = 1; i <= 4; ++i) {
      const std::string name = "DFS" + std::to_string(i);
      Cluster::Options options;
      options.servers = 1;
      options.users = users_of(name);
      options.extra_args = {"--name", name};
      clusters.push_back(std::make_unique<Cluster>(options));
    }
  }
  ClientConfig ConfigFor(const std::string& user, const std::string& password) const {
    ClientConfig cfg;
    for (int i = 0; i < 4; ++i)
      cfg.servers.push_back({"DFS" + std::to_string(i + 1), "127.0.0.1", clusters[i]->port(0),
                             clusters[i]->fingerprint(0)});
    cfg.username = user;
    cfg.password = password;
    cfg.known_servers = tmp / "known_servers";
    return cfg;
  }
  std::unique_ptr<client::Client> MakeClient(const std::string& user,
                                             const std::string& password) const {
    return std::make_unique<client::Client>(ConfigFor(user, password), FastOptions());
  }
};

TEST_CASE("a wrong password or an unknown user gets exactly the classic message") {
  Cluster cluster;
  for (const auto& login :
       {std::pair<std::string, std::string>{"Alice", "wrong"}, {"Mallory", "SimplePassword"}}) {
    const auto& [user, password] = login;
    CAPTURE(login.first);
    const std::string conf = cluster.WriteClientConfig(user, password);
    for (const char* cmd : {"list", "put", "get"}) {
      std::vector<std::string> words = {cmd};
      if (std::string(cmd) == "put") words.push_back(conf);
      if (std::string(cmd) == "get") words.push_back("x");
      auto r = Dfc(conf, words);
      CHECK(r.exit_code == 1);
      CHECK(r.err == "Invalid Username/Password. Please try again.\n");
      CHECK(r.out.empty());
    }
    auto c = MakeClient(cluster, user, password);
    Status s = c->Ping();
    CHECK(s.code() == Code::kAuthFailed);
    CHECK(s.message() == kAuthFailedMessage);
  }
}

TEST_CASE("a user with the right name and a wrong password cannot read the content") {
  Cluster cluster;
  {
    auto alice = MakeClient(cluster);
    REQUIRE(PutBytes(*alice, "private.txt", "only Alice may read this").ok());
  }
  // The operator changes Alice's password on every server; a client that
  // authenticates with the new password still cannot decrypt old content.
  WriteFile(cluster.server_conf(), "Alice NewPassword\nBob BobPassword\n");
  for (int i = 0; i < cluster.size(); ++i) cluster.Restart(i);
  auto intruder = MakeClient(cluster, "Alice", "NewPassword");
  REQUIRE(intruder->Ping().ok());
  // The records of Alice's files were signed with her old record key: to
  // the intruder they are forgeries, and so absent (and reported).
  auto listing = intruder->List("");
  REQUIRE(listing.ok());
  CHECK(listing->entries.empty());
  auto raw = intruder->ListRaw("");
  REQUIRE(raw.ok());
  REQUIRE(raw->names.count("private.txt") == 1);
  CHECK(raw->names.at("private.txt").headers.empty());
  CHECK_FALSE(raw->names.at("private.txt").rejected.empty());
  auto got = GetBytes(*intruder, "private.txt");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().code() == Code::kNotFound);  // absent, never decrypted
}

TEST_CASE("per-server hashed secrets in dfs.conf authenticate like the password they came from") {
  SeparateServers servers([](const std::string& name) {
    return std::map<std::string, std::string>{
        {"Alice", HashedSecret("Alice", "SimplePassword", name)},
        {"Bob", HashedSecret("Bob", "BobPassword", name)}};
  });
  // No server holds the password or a secret that opens another server.
  for (int i = 0; i < 4; ++i) {
    const std::string conf = ReadFile(servers.clusters[i]->server_conf());
    CHECK(conf.find("SimplePassword") == std::string::npos);
    CHECK(conf.find(HashedSecret("Alice", "SimplePassword", "DFS" + std::to_string(i + 1))) !=
          std::string::npos);
  }
  // What a thief who copied DFS1's dfs.conf line can do: log in on DFS1,
  // and nowhere else.
  const Key stolen = VerifierOf("Alice", "SimplePassword", "DFS1");
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    Status s =
        LoginOn(servers.clusters[i]->port(0), servers.clusters[i]->fingerprint(0), "Alice", stolen);
    if (i == 0)
      CHECK_MESSAGE(s.ok(), s.ToString());
    else
      CHECK(s.code() == Code::kAuthFailed);
  }
  auto alice = servers.MakeClient("Alice", "SimplePassword");
  REQUIRE(alice->Ping().ok());
  REQUIRE(PutBytes(*alice, "h.txt", "hashed").ok());
  CHECK(*GetBytes(*alice, "h.txt") == "hashed");
  CHECK(servers.MakeClient("Alice", "wrong")->Ping().code() == Code::kAuthFailed);
  CHECK(servers.MakeClient("Bob", "BobPassword")->Ping().ok());
}

TEST_CASE("a $dfs2$ line hashed for DFS1 logs in on DFS1 only") {
  // Every server reads the same dfs.conf: the line a thief copies from DFS1
  // opens DFS1 and nothing else.
  Cluster cluster;
  WriteFile(cluster.server_conf(),
            "Alice " + HashedSecret("Alice", "SimplePassword", "DFS1") + "\nBob BobPassword\n");
  for (int i = 0; i < cluster.size(); ++i) cluster.Restart(i);
  for (int i = 0; i < cluster.size(); ++i) {
    const std::string name = "DFS" + std::to_string(i + 1);
    CAPTURE(name);
    Status s = LoginOn(cluster.port(i), cluster.fingerprint(i), "Alice",
                       VerifierOf("Alice", "SimplePassword", name));
    if (i == 0) {
      CHECK_MESSAGE(s.ok(), s.ToString());
    } else {
      CHECK(s.code() == Code::kAuthFailed);
      CHECK(s.message() == kAuthFailedMessage);
    }
  }
  // The client, which needs every server, is told the classic message.
  CHECK(MakeClient(cluster)->Ping().code() == Code::kAuthFailed);
  // Bob, with a plain password, still logs in everywhere.
  CHECK(MakeClient(cluster, "Bob", "BobPassword")->Ping().ok());
}

TEST_CASE("dfs_server refuses a retired $dfs1$ line at start and says how to replace it") {
  TempDir tmp("dfs-auth");
  const std::string conf = tmp / "dfs.conf";
  WriteFile(conf, "Alice $dfs1$" + std::string(64, 'a') + "\n");
  auto r =
      Run({BinaryPath("DFS_SERVER"), tmp / "DFS1", "0", "-c", conf, "--bind", "127.0.0.1"}, "", 30);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(conf) != std::string::npos);
  CHECK(r.err.find("Alice") != std::string::npos);
  CHECK(r.err.find("--hash-password") != std::string::npos);
}

TEST_CASE("dfs_server --hash-password prints the dfs.conf line for the named server") {
  const std::string want1 = "Alice " + HashedSecret("Alice", "SimplePassword", "DFS1") + "\n";
  auto by_name = Run({BinaryPath("DFS_SERVER"), "--hash-password", "Alice", "--name", "DFS1"},
                     "SimplePassword\n", 30);
  CHECK(by_name.exit_code == 0);
  CHECK(by_name.out == want1);
  // Without --name, the name is the last component of DIR.
  TempDir tmp("dfs-auth");
  auto by_dir = Run({BinaryPath("DFS_SERVER"), tmp / "DFS3", "--hash-password", "Alice"},
                    "SimplePassword\n", 30);
  CHECK(by_dir.exit_code == 0);
  CHECK(by_dir.out == "Alice " + HashedSecret("Alice", "SimplePassword", "DFS3") + "\n");
  // Without a name at all, it refuses.
  auto nameless =
      Run({BinaryPath("DFS_SERVER"), "--hash-password", "Alice"}, "SimplePassword\n", 30);
  CHECK(nameless.exit_code == 2);
  CHECK(nameless.out.empty());
}

TEST_CASE("a server whose name is not the one in dfc.conf is refused as untrusted") {
  Cluster::Options options;
  options.extra_args = {"--name", "Elsewhere"};
  Cluster cluster(options);
  Status s = MakeClient(cluster)->Ping();
  CHECK(s.code() == Code::kUntrusted);
  CHECK(s.message().find("Elsewhere") != std::string::npos);
  CHECK(s.message().find("--name") != std::string::npos);
}

TEST_CASE(
    "SIGHUP reads dfs.conf again: new users log in, removed ones not, open connections stay") {
  Cluster cluster;
  const int s = 0;
  const uint16_t port = cluster.port(s);
  const std::string fp = cluster.fingerprint(s);
  auto verifier = [&](const std::string& user, const std::string& password) {
    return VerifierOf(user, password, "DFS1");
  };
  // An open, logged-in connection of Alice's, used after each reload.
  auto tls = TlsClientContext::Create();
  REQUIRE(tls.ok());
  auto fd = ConnectTcp("127.0.0.1", port, Millis(2000));
  REQUIRE(fd.ok());
  auto ch = TlsChannel::Connect(std::move(fd).value(), **tls, DeadlineIn(Millis(5000)));
  REQUIRE(ch.ok());
  TlsChannel& alice = **ch;
  uint32_t id = 1;
  {
    const Deadline deadline = DeadlineIn(Millis(5000));
    HelloRequest hello{"Alice", {}};
    dfs::RandomBytes(hello.client_nonce.data(), hello.client_nonce.size());
    REQUIRE(SendMessage(alice, MsgType::kHello, id++, hello, deadline).ok());
    Frame f;
    REQUIRE(RecvFrame(alice, &f, deadline).ok());
    auto challenge = ParseReply<Challenge>(f);
    REQUIRE(challenge.ok());
    ProofRequest proof{ClientProof(verifier("Alice", "SimplePassword"), alice.binding(),
                                   hello.client_nonce, challenge->server_nonce, "Alice")};
    REQUIRE(SendMessage(alice, MsgType::kProof, id++, proof, deadline).ok());
    REQUIRE(RecvFrame(alice, &f, deadline).ok());
    REQUIRE(ParseReply<AuthOk>(f).ok());
  }
  auto alice_pings = [&] {
    const Deadline deadline = DeadlineIn(Millis(5000));
    if (!SendMessage(alice, MsgType::kPing, id++, Empty{}, deadline).ok()) return false;
    Frame f;
    return RecvFrame(alice, &f, deadline).ok() && ParseReply<Empty>(f).ok();
  };
  REQUIRE(alice_pings());
  auto eventually = [&](const std::function<bool()>& done) {
    for (int i = 0; i < 100; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  auto logs_in = [&](const std::string& user, const std::string& password) {
    return LoginOn(port, fp, user, verifier(user, password)).ok();
  };
  REQUIRE_FALSE(logs_in("Carol", "CarolPassword"));

  // Carol added, Bob removed; Alice's connection is left alone.
  WriteFile(cluster.server_conf(), "Alice SimplePassword\nCarol CarolPassword\n");
  cluster.Signal(s, SIGHUP);
  CHECK(eventually([&] { return logs_in("Carol", "CarolPassword"); }));
  CHECK_FALSE(logs_in("Bob", "BobPassword"));
  CHECK(logs_in("Alice", "SimplePassword"));
  CHECK(alice_pings());

  // A dfs.conf that does not parse changes nothing, and is reported.
  WriteFile(cluster.server_conf(), "Alice\n");
  cluster.Signal(s, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(logs_in("Carol", "CarolPassword"));
  CHECK(alice_pings());
  // The server is still up after all that (SIGHUP did not stop it).
  CHECK(cluster.running(s));
  CHECK(LoginOn(port, fp, "Alice", verifier("Alice", "SimplePassword")).ok());
}

}  // namespace
}  // namespace dfs::testing
