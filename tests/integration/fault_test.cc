// Integration: servers killed, stopped (SIGSTOP), never started, and back
// again. Bounds on elapsed time here only catch hangs; they are generous.
#include <chrono>
#include <filesystem>

#include "tests/integration/helpers.h"

namespace dfs::testing {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

TEST_CASE("with any one server killed, put, get and list still work and a put keeps two copies") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const std::string before = RandomBytes(700000, 11);
  REQUIRE(PutBytes(*c, "before.bin", before).ok());
  for (int down = 0; down < 4; ++down) {
    CAPTURE(down);
    cluster.Kill(down);
    auto t0 = std::chrono::steady_clock::now();
    auto got = GetBytes(*c, "before.bin");
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(*got == before);
    const std::string name = "during" + std::to_string(down) + ".bin";
    const std::string content = RandomBytes(300000 + static_cast<size_t>(down), 20 + down);
    auto put = PutBytes(*c, name, content);
    REQUIRE_MESSAGE(put.ok(), put.status().ToString());
    // The pieces of the server that is down went to substitutes (hinted handoff).
    CHECK_FALSE(put->degraded);
    for (const auto& holders : put->version.holders) CHECK(holders.size() == 2);
    CHECK(*GetBytes(*c, name) == content);
    auto listing = c->List("");
    REQUIRE(listing.ok());
    CHECK(listing->unreachable == std::vector<int>{down});
    for (const auto& e : listing->entries) CHECK_MESSAGE(e.complete(), e.name);
    CHECK(Seconds(t0) < 20);
    cluster.Restart(down);
    // Bring the pieces written meanwhile back to two copies before the next failure.
    auto healed = c->Heal("");
    REQUIRE(healed.ok());
    CHECK(healed->unrepairable == 0);
  }
}

TEST_CASE("reading a file repairs the copies a returning server missed") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  cluster.Kill(2);
  const std::string content = RandomBytes(500000, 77);
  auto put = PutBytes(*c, "r.bin", content);
  REQUIRE(put.ok());
  cluster.Restart(2);
  c = MakeClient(cluster);
  CHECK(*GetBytes(*c, "r.bin") == content);  // repairs DFS3's pieces
  // Now DFS3's neighbours can fail one at a time without losing the file.
  for (int down : {1, 3}) {
    cluster.Kill(down);
    auto fresh = MakeClient(cluster);
    auto got = GetBytes(*fresh, "r.bin");
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(*got == content);
    cluster.Restart(down);
  }
}

TEST_CASE("a server that was never started costs nothing after the first try") {
  Cluster cluster;
  cluster.Kill(2);
  auto c = MakeClient(cluster);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    REQUIRE(PutBytes(*c, "f" + std::to_string(i), "data " + std::to_string(i)).ok());
    CHECK(*GetBytes(*c, "f" + std::to_string(i)) == "data " + std::to_string(i));
  }
  CHECK(Seconds(t0) < 15);
}

TEST_CASE("a stopped (SIGSTOP) server never hangs put, get or list") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const std::string content = RandomBytes(2 * 1024 * 1024, 3);
  REQUIRE(PutBytes(*c, "x.bin", content).ok());
  cluster.Pause(1);
  auto t0 = std::chrono::steady_clock::now();
  auto got = GetBytes(*c, "x.bin");
  REQUIRE_MESSAGE(got.ok(), got.status().ToString());
  CHECK(*got == content);
  auto put = PutBytes(*c, "y.bin", "written while DFS2 is stopped");
  REQUIRE_MESSAGE(put.ok(), put.status().ToString());
  CHECK_FALSE(put->degraded);  // its pieces went to substitutes
  auto listing = c->List("");
  REQUIRE(listing.ok());
  CHECK(listing->entries.size() == 2);
  CHECK(Seconds(t0) < 20);
  cluster.Resume(1);
}

TEST_CASE("two adjacent servers down mark files incomplete and get says so") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  REQUIRE(PutBytes(*c, "a.txt", "some content that spans all four pieces").ok());
  cluster.Kill(0);
  cluster.Kill(1);
  auto listing = c->List("");
  REQUIRE(listing.ok());
  REQUIRE(listing->entries.size() == 1);
  CHECK_FALSE(listing->entries[0].complete());
  auto got = GetBytes(*c, "a.txt");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().code() == Code::kIncomplete);
  const std::string conf = cluster.WriteClientConfig("Alice", "SimplePassword");
  auto list = Dfc(conf, {"list"});
  CHECK(list.exit_code == 0);
  CHECK(list.out == "a.txt [incomplete]\n");
  TempDir out;
  auto get = Dfc(conf, {"get", "a.txt"}, out.path());
  CHECK(get.exit_code != 0);
  CHECK(get.err == "File is incomplete.\n");
  CHECK_FALSE(std::filesystem::exists(out / "a.txt"));
  // A put places every piece on the two servers that answer (substitutes
  // for the two that are down, with hints for them).
  auto put = PutBytes(*c, "a.txt", "new");
  REQUIRE_MESSAGE(put.ok(), put.status().ToString());
  CHECK_FALSE(put->degraded);
  CHECK(*GetBytes(*c, "a.txt") == "new");
  cluster.Restart(0);
  cluster.Restart(1);
  c = MakeClient(cluster);
  CHECK(*GetBytes(*c, "a.txt") == "new");
  // With every server down, a put fails and nothing changes.
  for (int s = 0; s < 4; ++s) cluster.Kill(s);
  CHECK_FALSE(PutBytes(*c, "a.txt", "newer").ok());
  for (int s = 0; s < 4; ++s) cluster.Restart(s);
  c = MakeClient(cluster);
  CHECK(*GetBytes(*c, "a.txt") == "new");
}

TEST_CASE("heal re-copies pieces missed while a server was down and drops stale ones") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  REQUIRE(PutBytes(*c, "old.txt", "will be replaced").ok());
  REQUIRE(PutBytes(*c, "gone.txt", "will be deleted").ok());
  cluster.Kill(3);
  REQUIRE(PutBytes(*c, "old.txt", "replaced while DFS4 was down").ok());
  REQUIRE(c->Unlink("gone.txt").ok());
  REQUIRE(PutBytes(*c, "new.txt", "born while DFS4 was down").ok());
  cluster.Restart(3);
  c = MakeClient(cluster);
  // DFS4 came back with stale pieces: readers still see the newest versions.
  CHECK(*GetBytes(*c, "old.txt") == "replaced while DFS4 was down");
  CHECK(c->Stat("gone.txt").status().code() == Code::kNotFound);
  auto report = c->Heal("");
  REQUIRE(report.ok());
  CHECK(report->pieces_copied >= 2);
  CHECK(report->unrepairable == 0);
  // Now any single server can go and every file is still whole.
  for (int down = 0; down < 4; ++down) {
    CAPTURE(down);
    cluster.Kill(down);
    auto fresh = MakeClient(cluster);
    CHECK(*GetBytes(*fresh, "old.txt") == "replaced while DFS4 was down");
    CHECK(*GetBytes(*fresh, "new.txt") == "born while DFS4 was down");
    CHECK(fresh->Stat("gone.txt").status().code() == Code::kNotFound);
    cluster.Restart(down);
  }
}

TEST_CASE("heal settles folders made or removed while a server was down by majority") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  REQUIRE(c->Mkdir("removed").ok());
  cluster.Kill(3);
  REQUIRE(c->Rmdir("removed").ok());
  REQUIRE(c->Mkdir("made").ok());
  cluster.Restart(3);
  c = MakeClient(cluster);
  auto report = c->Heal("");
  REQUIRE(report.ok());
  CHECK(c->Stat("removed").status().code() == Code::kNotFound);
  CHECK_FALSE(std::filesystem::exists(cluster.server_dir(3) + "/Alice/removed"));
  CHECK(std::filesystem::is_directory(cluster.server_dir(3) + "/Alice/made"));
  auto listing = c->List("");
  REQUIRE(listing.ok());
  REQUIRE(listing->entries.size() == 1);
  CHECK(listing->entries[0].name == "made");
}

TEST_CASE("a server stops gracefully on SIGTERM and comes back with its data") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  REQUIRE(PutBytes(*c, "keep.txt", "persisted").ok());
  CHECK(cluster.TerminateStatus(0) == 0);
  cluster.Restart(0);
  cluster.Kill(1);  // DFS1 must now serve its pieces again
  auto fresh = MakeClient(cluster);
  CHECK(*GetBytes(*fresh, "keep.txt") == "persisted");
}

}  // namespace
}  // namespace dfs::testing
