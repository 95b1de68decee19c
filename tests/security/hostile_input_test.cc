// Security: hostile input on the server's side. Names with control bytes
// are refused by dfc and by the server (requests built by hand); symlinks
// planted in DIR are never followed out of the user's folder; abandoned
// staged uploads are swept while the server runs.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "fuse_client/client/connection.h"
#include "shared/protocol/messages.h"
#include "shared/util/names.h"
#include "tests/security/security_util.h"

namespace dfs::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool HasControlByte(const std::string& text) {
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return true;
  }
  return false;
}

// Output fit for a terminal and a log: no control byte but line ends.
bool PrintsSafely(const std::string& text) {
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && b != '\n') || b == 0x7f) return false;
  }
  return true;
}

// Every path under `dir` whose name has a control byte.
std::vector<std::string> ControlNamesUnder(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& [path, what] : Snapshot(dir))
    if (HasControlByte(path)) out.push_back(path);
  return out;
}

// Whether server i of `cluster` still answers a login (the fixture never
// restarts a server by itself: an answer is the same process).
bool Answers(const Cluster& cluster, int i) {
  auto tls = TlsClientContext::Create();
  REQUIRE(tls.ok());
  TempDir tmp;
  client::KnownServers trust(tmp / "known_servers");
  const std::string name = "DFS" + std::to_string(i + 1);
  ServerAddress addr{name, "127.0.0.1", cluster.port(i), cluster.fingerprint(i)};
  return client::Connection::Open(addr, kAlice, ServerVerifier(AliceKeys().auth, name), **tls,
                                  &trust, client::Options{}, nullptr)
      .ok();
}

const std::vector<std::string>& BadNames() {
  static const std::vector<std::string> names = {
      "esc\x1b[31mred", "new\nFORGED log line", "del\x7f", "bell\x07", "tab\tname", "cr\rname"};
  return names;
}

TEST_CASE("dfc refuses names with control bytes with a clear, escaped error") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  WriteFile(work / "ok.txt", "fine");
  REQUIRE(Dfc(conf, {"put", work / "ok.txt"}).exit_code == 0);

  for (const std::string& name : BadNames()) {
    CAPTURE(Escaped(name));
    WriteFile(work / name, "payload");
    std::vector<std::vector<std::string>> commands = {
        {"put", work / name}, {"mkdir", name}, {"put", work / "ok.txt", name + "/"}};
    for (const auto& words : commands) {
      CAPTURE(words[0]);
      auto r = Dfc(conf, words);
      CAPTURE(Escaped(r.err));
      CHECK(r.exit_code == 1);
      CHECK(Contains(r.err, "control"));
      CHECK(PrintsSafely(r.err));
      CHECK(PrintsSafely(r.out));
      CHECK_FALSE(Contains(r.err, "\nFORGED"));
    }
  }
  for (int i = 0; i < cluster.size(); ++i) CHECK(ControlNamesUnder(cluster.server_dir(i)).empty());
  auto r = Dfc(conf, {"list"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "ok.txt\n");
}

TEST_CASE("the server refuses requests built by hand with control bytes in names") {
  Cluster cluster;
  auto tls = TlsClientContext::Create();
  REQUIRE(tls.ok());
  TempDir tmp;
  client::KnownServers trust(tmp / "known_servers");
  ServerAddress addr{"DFS1", "127.0.0.1", cluster.port(0), cluster.fingerprint(0)};
  auto opened = client::Connection::Open(addr, kAlice, ServerVerifier(AliceKeys().auth, "DFS1"),
                                         **tls, &trust, client::Options{}, nullptr);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  client::Connection& conn = **opened;
  auto soon = [] { return DeadlineIn(Millis(5000)); };

  PieceHeader h;
  h.piece = 1;
  h.file_size = 10;
  h.piece_size = PieceSize(10, 4, 1);
  h.stamp = Stamp::Now();
  h.cid = RandomCid();
  PieceHeader tomb;
  tomb.kind = PieceKind::kTombstone;
  tomb.piece = 0;
  tomb.stamp = Stamp::Now();

  for (const std::string& name : BadNames()) {
    CAPTURE(Escaped(name));
    auto mkdir = conn.Call<PathRequest, Empty>(MsgType::kMkdir, PathRequest{name}, soon());
    CHECK(mkdir.status().code() == Code::kInvalidArgument);
    auto nested = conn.Call<PathRequest, Empty>(MsgType::kMkdir, PathRequest{"ok/" + name}, soon());
    CHECK(nested.status().code() == Code::kInvalidArgument);
    auto stat = conn.Call<StatRequest, StatReply>(MsgType::kStat, StatRequest{"", name}, soon());
    CHECK(stat.status().code() == Code::kInvalidArgument);
    auto list = conn.Call<ListRequest, ListReply>(MsgType::kList, ListRequest{name}, soon());
    CHECK(list.status().code() == Code::kInvalidArgument);
    auto put =
        conn.Call<PutBeginRequest, Empty>(MsgType::kPutBegin, PutBeginRequest{"", name, h}, soon());
    CHECK(put.status().code() == Code::kInvalidArgument);
    auto del =
        conn.Call<DeleteRequest, Empty>(MsgType::kDelete, DeleteRequest{"", name, tomb}, soon());
    CHECK(del.status().code() == Code::kInvalidArgument);
    // A refused request is answered; the connection goes on.
    CHECK(conn.Call<Empty, Empty>(MsgType::kPing, Empty{}, soon()).ok());
  }
  for (int i = 0; i < cluster.size(); ++i) CHECK(ControlNamesUnder(cluster.server_dir(i)).empty());
}

TEST_CASE("a symlink planted in a user's folder is not followed") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  WriteFile(work / "f.txt", "a genuine file");
  REQUIRE(Dfc(conf, {"put", work / "f.txt"}).exit_code == 0);

  // Outside every server's folder: a folder and genuine records to be found.
  TempDir outside("dfs-outside");
  fs::create_directory(outside / "leakdir");
  for (const auto& e : fs::directory_iterator(cluster.server_dir(0) + "/" + kAlice))
    fs::copy_file(e.path(), outside / e.path().filename().string());
  const auto before = Snapshot(outside.path());
  for (int i = 0; i < cluster.size(); ++i)
    fs::create_directory_symlink(outside.path(), cluster.server_dir(i) + "/" + kAlice + "/evil");

  WriteFile(work / "x.txt", "must not land outside");
  std::vector<std::vector<std::string>> attempts = {
      {"put", work / "x.txt", "evil/"},
      {"put", work / "x.txt", "evil/leakdir/"},
      {"list", "evil/"},
      {"list", "evil/leakdir/"},
      {"get", "f.txt", "evil/", "-o", work / "leaked.txt"},
      {"mkdir", "evil/sub"},
      {"rm", "f.txt", "evil/"},
      {"mv", "f.txt", "evil/moved.txt"},
      {"rmdir", "evil/leakdir"},
      {"rmdir", "evil"},
  };
  for (const auto& words : attempts) {
    CAPTURE(words[0]);
    CAPTURE(words.size() > 1 ? words[1] : "");
    auto r = Dfc(conf, words, "", 60);
    CAPTURE(r.err);
    CHECK(r.exit_code != -1);
    CHECK_FALSE(Contains(r.out, "leakdir"));
    CHECK_FALSE(Contains(r.out, "f.txt"));
    const auto now = Snapshot(outside.path());
    CHECK_MESSAGE(now == before, DiffSnapshots(before, now));
  }
  CHECK_FALSE(fs::exists(work / "leaked.txt"));
}

TEST_CASE("a user folder replaced by a symlink is not followed") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  WriteFile(work / "f.txt", "a genuine file");
  REQUIRE(Dfc(conf, {"put", work / "f.txt"}).exit_code == 0);
  REQUIRE(Dfc(conf, {"mkdir", "sub"}).exit_code == 0);

  // Outside: a copy of DFS1's folder of Alice (genuine records) and a folder.
  TempDir outside("dfs-outside");
  fs::copy(cluster.server_dir(0) + "/" + kAlice, outside.path(), fs::copy_options::recursive);
  fs::create_directory(outside / "leakdir");
  const auto before = Snapshot(outside.path());
  for (int i = 0; i < cluster.size(); ++i) {
    const std::string alice = cluster.server_dir(i) + "/" + kAlice;
    fs::rename(alice, alice + ".moved");
    fs::create_directory_symlink(outside.path(), alice);
  }

  WriteFile(work / "x.txt", "must not land outside");
  std::vector<std::vector<std::string>> attempts = {
      {"list"},
      {"list", "sub/"},
      {"get", "f.txt", "-o", work / "leaked.txt"},
      {"put", work / "x.txt"},
      {"put", work / "x.txt", "sub/"},
      {"mkdir", "newdir"},
      {"rm", "f.txt"},
      {"mv", "f.txt", "g.txt"},
      {"rmdir", "sub"},
      {"heal"},
  };
  for (const auto& words : attempts) {
    CAPTURE(words[0]);
    auto r = Dfc(conf, words, "", 60);
    CAPTURE(r.err);
    CHECK(r.exit_code != -1);
    CHECK_FALSE(Contains(r.out, "leakdir"));
    CHECK_FALSE(Contains(r.out, "f.txt"));
    const auto now = Snapshot(outside.path());
    CHECK_MESSAGE(now == before, DiffSnapshots(before, now));
  }
  CHECK_FALSE(fs::exists(work / "leaked.txt"));
}

TEST_CASE("abandoned staged uploads are swept while the server runs") {
  Cluster::Options options;
  options.extra_args = {"--staging-ttl", "2"};
  Cluster cluster(options);
  const std::string conf = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  WriteFile(work / "f.txt", "committed");
  REQUIRE(Dfc(conf, {"put", work / "f.txt"}).exit_code == 0);

  // What a client killed mid-upload leaves: a complete staged piece never
  // committed, a partial one, and a temporary file; an hour old.
  const std::string cid(32, 'a');
  std::vector<std::string> planted;
  for (int i = 0; i < cluster.size(); ++i) {
    const std::string staging = cluster.server_dir(i) + "/.staging/" + kAlice;
    fs::create_directories(staging);
    for (const std::string& file : {cid + ".1", cid + ".2.part-1234", std::string("~5678")}) {
      const std::string path = staging + "/" + file;
      WriteFile(path, RandomBytes(100000, 7));
      const timespec old[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
      REQUIRE(::utimensat(AT_FDCWD, path.c_str(), old, 0) == 0);
      planted.push_back(path);
    }
  }
  auto left = [&] {
    std::vector<std::string> out;
    for (const auto& p : planted)
      if (fs::exists(p)) out.push_back(p);
    return out;
  };
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!left().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(250ms);
  const auto remaining = left();
  CHECK_MESSAGE(remaining.empty(), remaining.size(), " planted files still in staging, e.g. ",
                remaining.empty() ? "" : remaining.front());

  // Swept without a restart: the same processes still serve.
  for (int i = 0; i < cluster.size(); ++i) CHECK(Answers(cluster, i));
  auto r = Dfc(conf, {"list"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "f.txt\n");
  WriteFile(work / "g.txt", "after the sweep");
  CHECK(Dfc(conf, {"put", work / "g.txt"}).exit_code == 0);
  r = Dfc(conf, {"get", "g.txt", "-o", work / "g.back"});
  CHECK(r.exit_code == 0);
  CHECK(ReadFile(work / "g.back") == "after the sweep");
}

}  // namespace
}  // namespace dfs::testing
