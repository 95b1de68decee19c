// Security: what a machine on the path between dfc and a server can do. A
// listener learns no name, user name or content; a relay that flips or
// injects bytes breaks that one connection and changes nothing on the
// server; a server that presents another key than the one pinned or
// remembered is refused, naming the server and both keys.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "shared/protocol/frame.h"
#include "shared/protocol/messages.h"
#include "tests/security/security_util.h"

namespace dfs::testing {
namespace {

namespace fs = std::filesystem;

// Text that is easy to spot in a recording.
std::string Recognizable(const std::string& marker, int lines) {
  std::string out;
  for (int i = 0; i < lines; ++i) out += marker + " line " + std::to_string(i) + "\n";
  return out;
}

// The old attack in plain text: a kDelete frame with a tombstone far in the future.
std::string PlainDeleteFrame(const std::string& name) {
  DeleteRequest req;
  req.name = name;
  req.tombstone.kind = PieceKind::kTombstone;
  req.tombstone.piece = 0;
  req.tombstone.stamp = Stamp{uint64_t{4} << 60, 1};
  const std::string body = EncodeMessage(req);
  uint8_t header[kFrameHeaderBytes];
  EncodeFrameHeader({MsgType::kDelete, 7, static_cast<uint32_t>(body.size())}, header);
  return std::string(reinterpret_cast<const char*>(header), sizeof header) + body;
}

// A TLS application-data record whose payload is junk.
std::string JunkRecord() {
  std::string payload = RandomBytes(64, 99);
  return std::string("\x17\x03\x03\x00\x40", 5) + payload;
}

TEST_CASE("a recording relay between dfc and a server sees no file name, user name or content") {
  Cluster cluster;
  Relay relay(cluster.port(0));
  const std::string conf =
      WriteConf(cluster, cluster.root() + "/relay.conf", {.ports = {{0, relay.port()}}});
  TempDir work;
  const std::string name = "quarterly-merger-plans.txt";
  const std::string folder = "board-minutes-folder";
  const std::string marker = "TOP-SECRET-CONTENT-7f3a9c";
  const std::string content = Recognizable(marker, 6000);  // ~200 KB
  WriteFile(work / name, content);

  CHECK(Dfc(conf, {"mkdir", folder}).exit_code == 0);
  auto r = Dfc(conf, {"put", work / name});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(Dfc(conf, {"put", work / name, folder + "/"}).exit_code == 0);
  r = Dfc(conf, {"list"});
  CHECK(r.exit_code == 0);
  CHECK(Contains(r.out, name));
  r = Dfc(conf, {"list", folder + "/"});
  CHECK(Contains(r.out, name));
  r = Dfc(conf, {"get", name, "-o", work / "back.txt"});
  CHECK(r.exit_code == 0);
  CHECK(ReadFile(work / "back.txt") == content);

  const std::string seen = relay.Recorded();
  CHECK(relay.connections() >= 1);
  // DFS1 holds half of every file: the pieces really went through the relay.
  CHECK(seen.size() > content.size() / 2);
  CHECK_FALSE(Contains(seen, name));
  CHECK_FALSE(Contains(seen, "quarterly"));
  CHECK_FALSE(Contains(seen, folder));
  CHECK_FALSE(Contains(seen, kAlice));
  CHECK_FALSE(Contains(seen, kAlicePassword));
  CHECK_FALSE(Contains(seen, marker));
  CHECK_FALSE(Contains(seen, "line 1234\n"));
}

TEST_CASE("a relay that flips or injects bytes after the handshake changes nothing on the server") {
  Cluster cluster;
  const std::string direct = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  WriteFile(work / "victim.txt", Recognizable("victim", 2000));

  struct Case {
    const char* what;
    Relay::Tamper tamper;
  };
  const std::vector<Case> cases = {
      {"a flipped byte in the server's first record", {.flip_to_client = 1}},
      {"a flipped byte in the server's second record", {.flip_to_client = 2}},
      {"a plain-text delete injected towards the server",
       {.inject_to_server = PlainDeleteFrame("victim.txt")}},
      {"a forged TLS record injected towards the server", {.inject_to_server = JunkRecord()}},
      {"a forged TLS record injected towards the client",
       {.inject_to_client = JunkRecord(), .inject_to_client_at = 1}},
      {"a forged TLS record injected before the login answer",
       {.inject_to_client = JunkRecord(), .inject_to_client_at = 2}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    // A fresh version on every server, DFS1 included.
    REQUIRE(Dfc(direct, {"put", work / "victim.txt"}).exit_code == 0);
    const auto before = Snapshot(cluster.server_dir(0));
    {
      Relay relay(cluster.port(0), c.tamper);
      const std::string conf =
          WriteConf(cluster, cluster.root() + "/tampered.conf", {.ports = {{0, relay.port()}}});
      auto r = Dfc(conf, {"rm", "victim.txt"}, "", 60);
      CAPTURE(r.err);
      CHECK(r.exit_code != -1);  // neither killed by a signal nor hung
      CHECK(r.seconds < 30);
      CHECK(relay.connections() >= 1);
      CHECK(relay.tampered() >= 1);
    }
    const auto after = Snapshot(cluster.server_dir(0));
    CHECK_MESSAGE(before == after, DiffSnapshots(before, after));
    // The server still serves honest clients.
    CHECK(Dfc(direct, {"list"}).exit_code == 0);
  }
}

TEST_CASE("a relay that corrupts the server's stream never makes dfc return wrong bytes") {
  Cluster cluster;
  const std::string direct = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  const std::string content = RandomBytes(1500000, 17);
  WriteFile(work / "big.bin", content);
  REQUIRE(Dfc(direct, {"put", work / "big.bin"}).exit_code == 0);

  // Records 1-2 are the login, 3 the stat reply, from 4 on the piece data.
  for (int flip : {3, 4, 5, 8, 20}) {
    CAPTURE(flip);
    Relay relay(cluster.port(0), {.flip_to_client = flip});
    const std::string conf =
        WriteConf(cluster, cluster.root() + "/tampered.conf", {.ports = {{0, relay.port()}}});
    const std::string out = work / ("out-" + std::to_string(flip));
    auto r = Dfc(conf, {"get", "big.bin", "-o", out}, "", 60);
    CAPTURE(r.err);
    CHECK(r.seconds < 30);
    // Every piece DFS1 holds has a second copy: the get falls back and succeeds.
    CHECK(r.exit_code == 0);
    if (r.exit_code == 0) CHECK(ReadFile(out) == content);
    r = Dfc(conf, {"list"}, "", 60);
    CHECK(r.seconds < 30);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "big.bin\n");
  }
}

TEST_CASE("dfs_server --fingerprint DIR prints the key the server presents") {
  Cluster cluster({.servers = 1});
  auto r = Run({BinaryPath("DFS_SERVER"), "--fingerprint", cluster.server_dir(0)});
  CHECK(r.exit_code == 0);
  CHECK(r.out == cluster.fingerprint(0) + "\n");
  CHECK(cluster.fingerprint(0).rfind("SHA256:", 0) == 0);
}

TEST_CASE("a server whose key changed since the first connection is refused loudly") {
  Cluster cluster;
  const std::string conf = WriteConf(cluster, cluster.root() + "/tofu.conf", {.pin = false});
  TempDir work;
  WriteFile(work / "before.txt", "before");
  auto r = Dfc(conf, {"put", work / "before.txt"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  r = Dfc(conf, {"list"});
  CHECK(r.exit_code == 0);
  const std::string old_key = cluster.fingerprint(1);
  CHECK(Contains(ReadFile(cluster.known_servers()), old_key));

  // DFS2 comes back with a new key (as an impostor at its address would).
  cluster.Kill(1);
  fs::remove_all(fs::path(cluster.server_dir(1)) / ".identity");
  cluster.Restart(1);
  const std::string new_key = cluster.fingerprint(1);
  REQUIRE(new_key.rfind("SHA256:", 0) == 0);
  REQUIRE(new_key != old_key);

  r = Dfc(conf, {"list"});
  CAPTURE(r.err);
  CHECK(r.exit_code > 0);
  CHECK(Contains(r.err, "DFS2"));
  CHECK(Contains(r.err, old_key));
  CHECK(Contains(r.err, new_key));

  // Nothing of a new file reaches the server that is not trusted.
  WriteFile(work / "after.txt", "after");
  const auto before = Snapshot(cluster.server_dir(1));
  r = Dfc(conf, {"put", work / "after.txt"});
  CAPTURE(r.err);
  CHECK(r.exit_code != -1);
  CHECK(Contains(r.err, "DFS2"));
  const auto after = Snapshot(cluster.server_dir(1));
  CHECK_MESSAGE(before == after, DiffSnapshots(before, after));
  // The remembered key is not replaced behind the user's back.
  CHECK(Contains(ReadFile(cluster.known_servers()), old_key));
  CHECK_FALSE(Contains(ReadFile(cluster.known_servers()), new_key));
}

TEST_CASE("a server that does not present the pinned key is refused loudly") {
  Cluster cluster;
  // DFS2 pinned to DFS1's key: whatever answers at DFS2's address is not it.
  const std::string conf = WriteConf(cluster, cluster.root() + "/pinned.conf",
                                     {.fingerprints = {{1, cluster.fingerprint(0)}}});
  auto r = Dfc(conf, {"list"});
  CAPTURE(r.err);
  CHECK(r.exit_code > 0);
  CHECK(Contains(r.err, "DFS2"));
  CHECK(Contains(r.err, cluster.fingerprint(0)));
  CHECK(Contains(r.err, cluster.fingerprint(1)));
  // Pinning a key does not remember anything on the side.
  if (fs::exists(cluster.known_servers()))
    CHECK_FALSE(Contains(ReadFile(cluster.known_servers()), cluster.fingerprint(1)));
}

}  // namespace
}  // namespace dfs::testing
