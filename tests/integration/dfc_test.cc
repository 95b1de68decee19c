// Integration: the dfc command line against real servers.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/integration/helpers.h"

namespace dfs::testing {
namespace {

namespace fs = std::filesystem;

TEST_CASE("dfc put, list, get, mkdir and rm work one shot with classic output") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig("Alice", "SimplePassword");
  TempDir work;
  WriteFile(work / "1.txt", "one\n");
  WriteFile(work / "data.bin", RandomBytes(1000003, 4));

  auto r = Dfc(conf, {"put", work / "1.txt"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(Dfc(conf, {"mkdir", "sub"}).exit_code == 0);
  CHECK(Dfc(conf, {"put", work / "data.bin", "sub/"}).exit_code == 0);

  r = Dfc(conf, {"list"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "1.txt\nsub/\n");
  r = Dfc(conf, {"list", "sub/"});
  CHECK(r.out == "data.bin\n");

  TempDir out;
  r = Dfc(conf, {"get", "1.txt"}, out.path());
  CHECK(r.exit_code == 0);
  CHECK(ReadFile(out / "1.txt") == "one\n");
  r = Dfc(conf, {"get", "data.bin", "sub/", "-o", out / "copy.bin"});
  CHECK(r.exit_code == 0);
  CHECK(ReadFile(out / "copy.bin") == ReadFile(work / "data.bin"));

  r = Dfc(conf, {"get", "nope.txt"}, out.path());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("nope.txt") != std::string::npos);
  CHECK_FALSE(fs::exists(out / "nope.txt"));

  CHECK(Dfc(conf, {"rm", "data.bin", "sub/"}).exit_code == 0);
  CHECK(Dfc(conf, {"list", "sub/"}).out.empty());
  CHECK(Dfc(conf, {"rm", "data.bin", "sub/"}).exit_code == 1);
  CHECK(Dfc(conf, {"put", work / "missing.txt"}).exit_code == 1);
  CHECK(Dfc(conf, {"frobnicate"}).exit_code == 2);
}

// Checks `json` with Python's parser and runs `check` (a Python expression
// over d, the parsed object) on it; returns what went wrong, "" if nothing.
std::string JsonCheck(const std::string& json, const std::string& check) {
  const CommandResult r = Run({"/usr/bin/env", "python3", "-c",
                               "import json,sys\nd=json.load(sys.stdin)\nassert " + check + ", d"},
                              json);
  if (r.exit_code == 0) return "";
  return "exit " + std::to_string(r.exit_code) + ": " + (r.err.empty() ? "(no message)" : r.err);
}

TEST_CASE("dfc status shows each server and the files' state; its exit status says how bad") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig("Alice", "SimplePassword");
  TempDir work;
  WriteFile(work / "a.txt", RandomBytes(5000, 1));
  REQUIRE(Dfc(conf, {"mkdir", "sub"}).exit_code == 0);
  REQUIRE(Dfc(conf, {"put", work / "a.txt", "sub/"}).exit_code == 0);

  auto r = Dfc(conf, {"status"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("SERVER") == 0);
  for (const char* name : {"DFS1", "DFS2", "DFS3", "DFS4"})
    CHECK(r.out.find(name) != std::string::npos);
  CHECK(r.out.find("1 files in 1 folders: 0 unreadable now, 0 with fewer copies") !=
        std::string::npos);
  CHECK(r.out.find("state: healthy") != std::string::npos);
  r = Dfc(conf, {"status", "--json"});
  CHECK(r.exit_code == 0);
  CHECK(JsonCheck(r.out,
                  "d['state']=='healthy' and d['files']==1 and d['folders']==1 and "
                  "len(d['servers'])==4 and all(s['up'] and s['version'] and s['user_bytes']>0 "
                  "and s['avail_bytes']>0 and s['rtt_ms']>=0 for s in d['servers'])") == "");

  // Hung: a timeout; degraded, exit 1.
  cluster.Pause(1);
  r = Dfc(conf, {"status"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("down: timeout") != std::string::npos);
  CHECK(r.out.find("state: degraded") != std::string::npos);
  cluster.Resume(1);

  // Killed, and a put made meanwhile: refused, changes waiting for it.
  cluster.Kill(1);
  WriteFile(work / "b.txt", "made while DFS2 was down");
  REQUIRE(Dfc(conf, {"put", work / "b.txt"}).exit_code == 0);
  r = Dfc(conf, {"status", "--json"});
  CHECK(r.exit_code == 1);
  CHECK(JsonCheck(r.out,
                  "d['state']=='degraded' and not d['servers'][1]['up'] and "
                  "d['servers'][1]['reason']=='refused' and d['servers'][1]['hints_waiting']>0 and "
                  "d['hints_waiting']>0 and d['incomplete']==0") == "");

  // Two neighbours down: a piece of every file is on neither; exit 2.
  cluster.Kill(2);
  r = Dfc(conf, {"status"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("state: unreadable") != std::string::npos);

  CHECK(r.out.find("last heal from this machine: none recorded") != std::string::npos);

  // Back, and healed: healthy again, and the heal is remembered.
  cluster.Restart(1);
  cluster.Restart(2);
  REQUIRE(Dfc(conf, {"heal"}).exit_code == 0);
  r = Dfc(conf, {"status"});
  CHECK_MESSAGE(r.exit_code == 0, r.out);
  CHECK_MESSAGE(r.out.find("last heal from this machine: 20") != std::string::npos, r.out);
  CHECK_MESSAGE(r.out.find(", checked ") != std::string::npos, r.out);
  r = Dfc(conf, {"status", "--json"});
  CHECK_MESSAGE(JsonCheck(r.out,
                          "d['last_heal']['files_checked'] >= 2 and "
                          "d['last_heal']['verified'] is False and "
                          "d['last_heal']['time_ns'] > 1.7e18")
                    .empty(),
                r.out);

  // DFS1 no longer knows Alice (dfs.conf read again): auth failed.
  WriteFile(cluster.server_conf(), "Bob BobPassword\n");
  cluster.Signal(0, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  r = Dfc(conf, {"status", "--json"});
  CHECK(r.exit_code >= 1);
  CHECK_MESSAGE(JsonCheck(r.out,
                          "not d['servers'][0]['up'] and "
                          "d['servers'][0]['reason']=='auth failed' and "
                          "all(s['up'] for s in d['servers'][1:])")
                    .empty(),
                r.out);
  WriteFile(cluster.server_conf(), "Alice SimplePassword\nBob BobPassword\n");
  cluster.Signal(0, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK_MESSAGE(Dfc(conf, {"status"}).exit_code == 0, Dfc(conf, {"status"}).out);

  // DFS4 with a new key (its identity lost): not the pinned key.
  cluster.Kill(3);
  fs::remove_all(fs::path(cluster.server_dir(3)) / ".identity");
  cluster.Restart(3);
  r = Dfc(conf, {"status"});
  CHECK(r.exit_code >= 1);
  CHECK_MESSAGE(r.out.find("key changed") != std::string::npos, r.out);
  r = Dfc(conf, {"status", "--json"});
  CHECK_MESSAGE(JsonCheck(r.out,
                          "not d['servers'][3]['up'] and "
                          "d['servers'][3]['reason']=='key changed'")
                    .empty(),
                r.out);
}

TEST_CASE("dfc without a command runs a prompt that survives a server dying") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig("Alice", "SimplePassword");
  TempDir work;
  WriteFile(work / "p.txt", "prompted\n");
  std::string script = "help\nput " + (work / "p.txt") + "\nlist\nbogus\nget p.txt -o " +
                       (work / "back.txt") + "\nexit\n";
  auto r = Dfc(conf, {}, "", script);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("commands:") != std::string::npos);
  CHECK(r.out.find("p.txt\n") != std::string::npos);
  CHECK(r.err.find("unknown command 'bogus'") != std::string::npos);
  CHECK(ReadFile(work / "back.txt") == "prompted\n");

  cluster.Kill(2);
  r = Dfc(conf, {}, "", "list\nlist\nget p.txt -o " + (work / "again.txt") + "\n");
  CHECK(r.exit_code == 0);
  CHECK(r.seconds < 20);
  CHECK(ReadFile(work / "again.txt") == "prompted\n");
}

TEST_CASE("dfc reports a bad config with its file and line and exits 2") {
  Cluster cluster;
  TempDir work;
  WriteFile(work / "bad.conf", "Server DFS1 127.0.0.1:1\nPort 5\n");
  auto r = Dfc(work / "bad.conf", {"list"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("bad.conf:2: unknown key 'Port'") != std::string::npos);
  r = Dfc(work / "absent.conf", {"list"});
  CHECK(r.exit_code == 2);
}

TEST_CASE("a degraded dfc put warns on stderr and still succeeds") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig("Alice", "SimplePassword");
  TempDir work;
  WriteFile(work / "d.txt", "degraded but stored");
  // With one server down its pieces go to substitutes: only with three
  // down is some piece stored once.
  cluster.Kill(1);
  cluster.Kill(2);
  cluster.Kill(3);
  auto r = Dfc(conf, {"put", work / "d.txt"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("degraded") != std::string::npos);
  CHECK(r.seconds < 20);
  r = Dfc(conf, {"get", "d.txt", "-o", work / "d.back"});
  CHECK(r.exit_code == 0);
  CHECK(ReadFile(work / "d.back") == "degraded but stored");
}

TEST_CASE("dfc list --json and heal --json print documented JSON") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig("Alice", "SimplePassword");
  TempDir work;
  WriteFile(work / "a \"quoted\".txt", "12345");
  REQUIRE(Dfc(conf, {"mkdir", "sub"}).exit_code == 0);
  REQUIRE(Dfc(conf, {"put", work / "a \"quoted\".txt"}).exit_code == 0);
  auto r = Dfc(conf, {"list", "--json"});
  REQUIRE(r.exit_code == 0);
  CHECK_MESSAGE(JsonCheck(r.out,
                          "d['folder'] == '' and len(d['entries']) == 2 and "
                          "d['entries'][0] == {'name': 'a \"quoted\".txt', 'type': 'file', "
                          "'size': 5, 'mode': d['entries'][0]['mode'], "
                          "'mtime_ns': d['entries'][0]['mtime_ns'], 'uid': "
                          "d['entries'][0]['uid'], 'gid': d['entries'][0]['gid'], "
                          "'complete': True} and d['entries'][1]['name'] == 'sub' and "
                          "d['entries'][1]['type'] == 'folder'")
                    .empty(),
                r.out);
  r = Dfc(conf, {"list", "--json", "sub/"});
  CHECK_MESSAGE(JsonCheck(r.out, "d == {'folder': 'sub/', 'entries': []}").empty(), r.out);
  CHECK(Dfc(conf, {"list", "--jsn"}).exit_code == 2);

  cluster.Kill(2);
  r = Dfc(conf, {"heal", "--json"});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(JsonCheck(r.out,
                          "d['files_checked'] == 1 and d['unrepairable'] == 0 and "
                          "d['exit'] == 0 and isinstance(d['notes'], list) and "
                          "d['verified'] is False")
                    .empty(),
                r.out);
  // DFS3's copies removed: heal copies them back and says so.
  cluster.Restart(2);
  for (const auto& e : fs::recursive_directory_iterator(cluster.server_dir(2)))
    if (e.is_regular_file() && e.path().filename().string().starts_with(".a "))
      fs::remove(e.path());
  r = Dfc(conf, {"heal", "--verify", "--json"});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(JsonCheck(r.out,
                          "d['pieces_copied'] == 2 and d['verified'] is True and "
                          "d['copies_verified'] >= 8 and d['corrupt_left'] == 0")
                    .empty(),
                r.out);
}

TEST_CASE("dfc put and get show progress on a terminal only; -q is quiet, -v names the servers") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig("Alice", "SimplePassword");
  TempDir work;
  WriteFile(work / "big.bin", RandomBytes(24 << 20, 5));
  // Piped: results only, no progress.
  auto r = Dfc(conf, {"put", work / "big.bin"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "Uploaded big.bin (25165824 bytes)\n");
  CHECK(r.err.find('\r') == std::string::npos);
  // Under a pseudo-terminal (script(1)): a progress line that is erased at the end.
  if (!fs::exists("/usr/bin/script")) {
    MESSAGE("SKIPPED the terminal part: script(1) is not installed");
  } else {
    for (const std::string& command :
         {"put " + work / "big.bin", "get big.bin -o " + work / "back.bin"}) {
      CAPTURE(command);
      auto t = Run(
          {"/usr/bin/script", "-qec", BinaryPath("DFC") + " " + conf + " " + command, "/dev/null"});
      CHECK(t.exit_code == 0);
      const std::string verb = command.substr(0, 3);
      CHECK_MESSAGE(t.out.find("\r" + verb + " big.bin: ") != std::string::npos, t.out);
      CHECK_MESSAGE(t.out.find(" of 24.0 MiB") != std::string::npos, t.out);  // get: the size
      CHECK(t.out.find("\r\033[K") != std::string::npos);                     // erased
    }
    CHECK(ReadFile(work / "back.bin") == ReadFile(work / "big.bin"));
    auto q = Run({"/usr/bin/script", "-qec",
                  BinaryPath("DFC") + " " + conf + " -q put " + work / "big.bin", "/dev/null"});
    CHECK(q.exit_code == 0);
    CHECK_MESSAGE(q.out.empty(), q.out);
  }
  r = Dfc(conf, {"put", "-v", work / "big.bin"});
  CHECK(r.exit_code == 0);
  for (const char* piece : {"piece 1: DFS", "piece 2: DFS", "piece 3: DFS", "piece 4: DFS"})
    CHECK_MESSAGE(r.out.find(piece) != std::string::npos, r.out);
  r = Dfc(conf, {"get", "big.bin", "-q", "-o", work / "q.bin"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  CHECK(ReadFile(work / "q.bin") == ReadFile(work / "big.bin"));
}

}  // namespace
}  // namespace dfs::testing
