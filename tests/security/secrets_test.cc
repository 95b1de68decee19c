// Security: what the dfs.conf of one server opens. A "$dfs2$" line made
// with `dfs_server --hash-password USER --name DFS1` logs USER in on the
// server named DFS1 and nowhere else, and is no content or record key.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "fuse_client/client/connection.h"
#include "shared/protocol/auth.h"
#include "tests/security/security_util.h"

namespace dfs::testing {
namespace {

// `dfs_server --hash-password Alice --name NAME` with the password on stdin:
// the secret of the dfs.conf line ("$dfs2$...").
std::string HashedLine(const std::string& server_name) {
  auto r = Run({BinaryPath("DFS_SERVER"), "--hash-password", kAlice, "--name", server_name},
               std::string(kAlicePassword) + "\n");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK_FALSE(Contains(r.out, kAlicePassword));
  const std::string prefix = std::string(kAlice) + " $dfs2$";
  REQUIRE(r.out.rfind(prefix, 0) == 0);
  std::string line = r.out.substr(std::string(kAlice).size() + 1);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

// One dfs_server named `name` whose dfs.conf holds Alice's `secret` only.
std::unique_ptr<Cluster> ServerNamed(const std::string& name, const std::string& secret) {
  Cluster::Options options;
  options.servers = 1;
  options.users = {{kAlice, secret}};
  options.extra_args = {"--name", name};
  return std::make_unique<Cluster>(options);
}

// A TLS connection and login as Alice with `verifier` on the only server
// of `cluster`, which dfc.conf would call `name`.
Status LoginOn(const Cluster& cluster, const std::string& name, const Key& verifier) {
  auto tls = TlsClientContext::Create();
  REQUIRE(tls.ok());
  ServerAddress addr{name, "127.0.0.1", cluster.port(0), cluster.fingerprint(0)};
  TempDir tmp("dfs-known");
  client::KnownServers trust(tmp / "known_servers");
  auto conn =
      client::Connection::Open(addr, kAlice, verifier, **tls, &trust, client::Options{}, nullptr);
  return conn.status();
}

TEST_CASE("a $dfs2$ line hashed for DFS1 logs in on DFS1 and is refused on DFS2") {
  const std::string line1 = HashedLine("DFS1");
  const std::string line2 = HashedLine("DFS2");
  CHECK(line1 != line2);
  auto dfs1 = ServerNamed("DFS1", line1);
  auto dfs2 = ServerNamed("DFS2", line2);
  auto dfs2_with_line1 = ServerNamed("DFS2", line1);  // DFS1's line copied into DFS2's dfs.conf

  const UserKeys& keys = AliceKeys();
  CHECK(LoginOn(*dfs1, "DFS1", ServerVerifier(keys.auth, "DFS1")).ok());
  CHECK(LoginOn(*dfs2, "DFS2", ServerVerifier(keys.auth, "DFS2")).ok());
  Status refused = LoginOn(*dfs2_with_line1, "DFS2", ServerVerifier(keys.auth, "DFS2"));
  CHECK(refused.code() == Code::kAuthFailed);
  CHECK(refused.message() == kAuthFailedMessage);

  // The thief of DFS1's line holds DFS1's verifier: it opens DFS1 (which
  // the thief already owns) and nothing else, and it is no content key.
  Key stolen{};
  REQUIRE(FromHex(line1.substr(6), stolen));
  CHECK(LoginOn(*dfs1, "DFS1", stolen).ok());
  refused = LoginOn(*dfs2, "DFS2", stolen);
  CHECK(refused.code() == Code::kAuthFailed);
  CHECK(refused.message() == kAuthFailedMessage);
  CHECK(stolen != keys.auth);
  CHECK(stolen != keys.content);
  CHECK(stolen != keys.record);

  // The same through dfc: DFS1 + DFS2 with their own lines work; with
  // DFS1's line on DFS2, exactly the classic message.
  TempDir work;
  auto conf = [&](const Cluster& second) {
    const std::string path = work / "dfc.conf";
    WriteFile(path, "Server DFS1 127.0.0.1:" + std::to_string(dfs1->port(0)) +
                        "\nServer DFS2 127.0.0.1:" + std::to_string(second.port(0)) +
                        "\nUsername: Alice\nPassword: SimplePassword\nFingerprint DFS1 " +
                        dfs1->fingerprint(0) + "\nFingerprint DFS2 " + second.fingerprint(0) +
                        "\nKnownServers " + (work / "known_servers") + "\n");
    return path;
  };
  auto r = Dfc(conf(*dfs2), {"list"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  r = Dfc(conf(*dfs2_with_line1), {"list"});
  CHECK(r.exit_code == 1);
  CHECK(r.err == std::string(kAuthFailedMessage) + "\n");
}

TEST_CASE("a server started under another name does not accept a line hashed for DFS1") {
  const std::string line1 = HashedLine("DFS1");
  // The folder is DFS1 but the server is named DFS3: its challenge says so,
  // and the client, expecting DFS1, stops before it proves anything.
  Cluster::Options options;
  options.servers = 1;
  options.users = {{kAlice, line1}};
  options.extra_args = {"--name", "DFS3"};
  Cluster renamed(options);
  Status s = LoginOn(renamed, "DFS1", ServerVerifier(AliceKeys().auth, "DFS1"));
  CHECK_FALSE(s.ok());
  CHECK(s.code() != Code::kOk);
  // Under the name it really has, Alice's verifier for DFS3 is not the stored one.
  s = LoginOn(renamed, "DFS3", ServerVerifier(AliceKeys().auth, "DFS3"));
  CHECK(s.code() == Code::kAuthFailed);
}

}  // namespace
}  // namespace dfs::testing
