// Security: a malicious server (it knows the user's verifier for its own
// name, so the login succeeds) cannot crash the client, make it grow without
// bound, hang it, or make it apply what a header says unchecked. Three
// honest fake servers and one hostile one (DFS1), all in this process;
// dfc runs against them too, so that a crash shows as a signal, not as the
// end of this test program.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "fuse_client/client/client.h"
#include "shared/util/fd.h"
#include "tests/security/fake_server.h"
#include "tests/security/security_util.h"
#include "tests/support/sanitizers.h"

namespace dfs::testing {
namespace {

namespace fs = std::filesystem;
using Behavior = FakeServer::Behavior;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kMemoryBound = 300 * kMiB;

// Memory bounds hold in the plain build (tests/support/sanitizers.h).
void CheckMemoryBound(uint64_t growth) {
  if (kMemoryMeasurable)
    CHECK(growth < kMemoryBound);
  else
    MESSAGE("memory bound not checked under AddressSanitizer");
}

client::Options Fast() {
  client::Options o;
  o.connect_timeout = Millis(1000);
  o.request_timeout = Millis(2000);
  o.data_timeout = Millis(5000);
  o.backoff = Millis(2000);
  return o;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Downloads `path` with the client library; the bytes, or the failure.
Result<std::string> GetBytes(client::Client& c, const std::string& path) {
  TempDir tmp("dfs-get");
  const std::string out = tmp / "out";
  UniqueFd fd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(fd.valid());
  Status s = c.Get(path, fd.get());
  if (!s.ok()) return s;
  return ReadFile(out);
}

std::vector<std::string> Names(const client::Listing& listing) {
  std::vector<std::string> names;
  for (const auto& e : listing.entries) names.push_back(e.name);
  return names;
}

// A header DFS1 makes up for `name`: piece 50 of a file spread over 64
// servers, a year ahead, signed with the user's record key or (`valid`
// false) with a key of its own.
PieceHeader WideHeader(const std::string& name, bool valid) {
  PieceHeader h;
  h.servers = 64;
  h.copies = 2;
  h.piece = 50;
  h.x = 40;
  h.cid = RandomCid();
  h.stamp = Stamp::Now();
  h.stamp.time_ns += uint64_t{365} * 24 * 3600 * 1000000000;
  h.file_size = 1000000;
  h.piece_size = PieceSize(h.file_size, 64, 50);
  h.chunk_bytes = kDefaultChunkBytes;
  Key other{};
  dfs::RandomBytes(other.data(), other.size());
  h.Sign(valid ? AliceKeys().record : other, name);
  return h;
}

TEST_CASE("a server that lists forever is cut off and the client's memory stays bounded") {
  Behavior hostile{.endless_list = true};
  SUBCASE("folder entries") { hostile.list_entries = Behavior::Entries::kFolders; }
  SUBCASE("genuine records replayed") { hostile.list_entries = Behavior::Entries::kReplayed; }
  SUBCASE("forged records") { hostile.list_entries = Behavior::Entries::kForged; }
  FakeCluster fakes({{0, hostile}});
  const std::string content = RandomBytes(100000, 1);
  fakes.AddFileEverywhere(SealFile(AliceKeys(), "good.txt", content));
  client::Client c(fakes.Config());  // default timeouts, as dfc and the mount use

  ResetPeakMemory();
  const uint64_t base = PeakMemory();
  const auto start = std::chrono::steady_clock::now();
  auto listing = c.List("");
  const double seconds = SecondsSince(start);
  const uint64_t growth = PeakMemory() - base;
  MESSAGE("endless listing: ", seconds, " s, peak memory +", growth / kMiB, " MiB, ",
          fakes.server(0).bytes_sent() / kMiB, " MiB sent by DFS1");
  CHECK(seconds < 30);
  CheckMemoryBound(growth);
  CHECK(fakes.server(0).bytes_sent() > 0);
  REQUIRE_MESSAGE(listing.ok(), listing.status().ToString());
  CHECK(Names(*listing) == std::vector<std::string>{"good.txt"});
  if (listing->entries.size() == 1) CHECK(listing->entries[0].complete());

  auto r = Dfc(fakes.conf_path(), {"list"}, "", 90);
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "good.txt\n");
  CHECK(r.seconds < 30);
}

TEST_CASE("a server that lists forever with the longest names is cut off, memory bounded") {
  // Folder entries with 251-byte names: a bound on the count of entries
  // alone would let one server cost the client several hundred MiB.
  FakeCluster fakes({{0, Behavior{.endless_list = true,
                                  .list_entries = Behavior::Entries::kFolders,
                                  .list_name_bytes = 251}}});
  fakes.AddFileEverywhere(SealFile(AliceKeys(), "good.txt", RandomBytes(1000, 1)));
  client::Client c(fakes.Config());  // default timeouts, as dfc and the mount use

  ResetPeakMemory();
  const uint64_t base = PeakMemory();
  const auto start = std::chrono::steady_clock::now();
  auto listing = c.List("");
  const double seconds = SecondsSince(start);
  const uint64_t growth = PeakMemory() - base;
  MESSAGE("endless listing, long names: ", seconds, " s, peak memory +", growth / kMiB, " MiB, ",
          fakes.server(0).bytes_sent() / kMiB, " MiB sent by DFS1");
  CHECK(seconds < 30);
  CheckMemoryBound(growth);
  REQUIRE_MESSAGE(listing.ok(), listing.status().ToString());
  CHECK(Names(*listing) == std::vector<std::string>{"good.txt"});
}

TEST_CASE("a server that streams past the announced length is cut off, memory bounded") {
  FakeCluster fakes({{0, Behavior{.endless_get = true}}});
  const std::string content = RandomBytes(4 * kMiB + 3, 2);
  fakes.AddFileEverywhere(SealFile(AliceKeys(), "big.bin", content));
  client::Client c(fakes.Config(), Fast());

  ResetPeakMemory();
  const uint64_t base = PeakMemory();
  const auto start = std::chrono::steady_clock::now();
  auto got = GetBytes(c, "big.bin");
  const double seconds = SecondsSince(start);
  const uint64_t growth = PeakMemory() - base;
  MESSAGE("endless get: ", seconds, " s, peak memory +", growth / kMiB, " MiB");
  CHECK(seconds < 30);
  CheckMemoryBound(growth);
  CHECK(fakes.server(0).bytes_sent() > 0);  // DFS1 was asked for its piece
  REQUIRE_MESSAGE(got.ok(), got.status().ToString());
  CHECK(*got == content);

  TempDir work;
  auto r = Dfc(fakes.conf_path(), {"get", "big.bin", "-o", work / "big.bin"}, "", 90);
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.seconds < 30);
  if (r.exit_code == 0) CHECK(ReadFile(work / "big.bin") == content);
}

TEST_CASE("a server that sends empty data frames forever does not hang the client") {
  FakeCluster fakes({{0, Behavior{.empty_frames = true}}});
  const std::string content = RandomBytes(1 * kMiB, 3);
  fakes.AddFileEverywhere(SealFile(AliceKeys(), "drip.bin", content));
  client::Client c(fakes.Config(), Fast());
  const auto start = std::chrono::steady_clock::now();
  auto got = GetBytes(c, "drip.bin");
  const double seconds = SecondsSince(start);
  MESSAGE("empty frames: ", seconds, " s");
  // The fake gives up after FakeServer::kEndlessSeconds; the client must stop far earlier.
  CHECK(seconds < 30);
  REQUIRE_MESSAGE(got.ok(), got.status().ToString());
  CHECK(*got == content);
}

TEST_CASE("a header claiming 64 servers is ignored, never a crash") {
  FakeCluster fakes;
  const std::string content = RandomBytes(200000, 4);
  fakes.AddFileEverywhere(SealFile(AliceKeys(), "good.txt", content));
  for (bool valid : {false, true}) {
    fakes.server(0).AddRecord("good.txt", WideHeader("good.txt", valid));
    fakes.server(0).AddRecord("wide.txt", WideHeader("wide.txt", valid));
  }
  PieceHeader wide_tombstone = WideHeader("good.txt", true);
  wide_tombstone.kind = PieceKind::kTombstone;
  wide_tombstone.piece = 0;
  wide_tombstone.piece_size = 0;
  wide_tombstone.file_size = 0;
  wide_tombstone.Sign(AliceKeys().record, "good.txt");
  fakes.server(1).AddRecord("good.txt", wide_tombstone);

  // dfc first: a crash would be a signal (exit_code -1), not the end of this program.
  const std::string& conf = fakes.conf_path();
  TempDir work;
  auto r = Dfc(conf, {"status", "wide.txt"});
  CAPTURE(r.err);
  CHECK(r.exit_code != -1);
  CHECK_FALSE(Contains(r.out, "complete:"));
  r = Dfc(conf, {"status", "good.txt"});
  CHECK(r.exit_code == 0);
  CHECK(Contains(r.out, "DFS1"));
  CHECK(Contains(r.out, "DFS2"));
  r = Dfc(conf, {"list"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "good.txt\n");
  r = Dfc(conf, {"get", "good.txt", "-o", work / "good.txt"});
  CHECK(r.exit_code == 0);
  if (r.exit_code == 0) CHECK(ReadFile(work / "good.txt") == content);
  r = Dfc(conf, {"get", "wide.txt", "-o", work / "wide.txt"});
  CHECK(r.exit_code == 1);
  CHECK_FALSE(fs::exists(work / "wide.txt"));
  r = Dfc(conf, {"heal"});
  CHECK(r.exit_code != -1);

  // The library, in this process.
  client::Client c(fakes.Config(), Fast());
  auto listing = c.List("");
  REQUIRE_MESSAGE(listing.ok(), listing.status().ToString());
  CHECK(Names(*listing) == std::vector<std::string>{"good.txt"});
  auto entry = c.Stat("good.txt");
  REQUIRE(entry.ok());
  CHECK(entry->file.newest.servers == 4);
  CHECK(entry->file.pieces() == 4);
  CHECK(entry->file.size() == content.size());
  CHECK(entry->file.rejected.size() >= 3);
  auto described = c.Describe("good.txt");
  REQUIRE(described.ok());
  CHECK(Contains(*described, "complete"));
  (void)c.Describe("wide.txt");
  CHECK(c.Stat("wide.txt").status().code() == Code::kNotFound);
  auto got = GetBytes(c, "good.txt");
  REQUIRE(got.ok());
  CHECK(*got == content);
  (void)c.Heal("");
}

TEST_CASE("absurd sizes from a server are refused before any use") {
  FakeCluster fakes;
  const std::string content = RandomBytes(150000, 5);
  const SealedFile good = SealFile(AliceKeys(), "good.txt", content);
  fakes.AddFileEverywhere(good);

  SUBCASE("a file size of 2^63 with a valid MAC") {
    PieceHeader h = good.headers[0];
    h.cid = RandomCid();
    h.stamp.time_ns += 1000000000;
    h.file_size = uint64_t{1} << 63;
    h.piece_size = h.file_size / 4;
    h.Sign(AliceKeys().record, "good.txt");
    fakes.server(0).AddRecord("good.txt", h);
  }
  SUBCASE("a piece size that does not match the file size, valid MAC") {
    PieceHeader h = good.headers[1];
    h.cid = RandomCid();
    h.stamp.time_ns += 1000000000;
    h.piece_size = uint64_t{1} << 50;  // a 1 PiB piece of a 150 KB file
    h.Sign(AliceKeys().record, "good.txt");
    fakes.server(0).AddRecord("good.txt", h);
  }
  SUBCASE("a file size of 2^64-1 with a bad MAC") {
    PieceHeader h = good.headers[2];
    h.file_size = ~uint64_t{0};
    h.piece_size = ~uint64_t{0};
    fakes.server(0).AddRecord("good.txt", h);
  }

  TempDir work;
  auto r = Dfc(fakes.conf_path(), {"list"});
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "good.txt\n");
  r = Dfc(fakes.conf_path(), {"status", "good.txt"});
  CHECK(r.exit_code == 0);
  r = Dfc(fakes.conf_path(), {"get", "good.txt", "-o", work / "good.txt"});
  CHECK(r.exit_code == 0);
  if (r.exit_code == 0) {
    CHECK(ReadFile(work / "good.txt") == content);
    CHECK(fs::file_size(work / "good.txt") == content.size());
  }

  client::Client c(fakes.Config(), Fast());
  auto entry = c.Stat("good.txt");
  REQUIRE_MESSAGE(entry.ok(), entry.status().ToString());
  CHECK(entry->file.size() == content.size());
  auto got = GetBytes(c, "good.txt");
  REQUIRE(got.ok());
  CHECK(*got == content);
}

TEST_CASE("a huge but well-formed size from one server alone does not make dfc write it") {
  // 16 TiB, signed (as a buggy client of the user might), but no server has the data.
  FakeCluster fakes;
  PieceHeader h = SealFile(AliceKeys(), "huge.bin", "x").headers[0];
  h.file_size = kMaxFileSize;
  for (int k = 1; k <= 4; ++k) {
    h.piece = static_cast<uint8_t>(k);
    h.piece_size = PieceSize(h.file_size, 4, k);
    h.Sign(AliceKeys().record, "huge.bin");
    fakes.server(0).AddRecord("huge.bin", h);
  }
  TempDir work;
  auto r = Dfc(fakes.conf_path(), {"get", "huge.bin", "-o", work / "huge.bin"}, "", 60);
  CAPTURE(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.seconds < 30);
  CHECK_FALSE(fs::exists(work / "huge.bin"));
  for (const auto& e : fs::directory_iterator(work.path())) CHECK(fs::file_size(e.path()) == 0);
}

TEST_CASE("dfc get never applies setuid or setgid bits from a header") {
  FakeCluster fakes;
  fakes.AddFileEverywhere(SealFile(AliceKeys(), "tool", "#!/bin/sh\necho hi\n", 04755));
  fakes.AddFileEverywhere(SealFile(AliceKeys(), "group-tool", "#!/bin/sh\necho hi\n", 02775));
  fakes.AddFileEverywhere(SealFile(AliceKeys(), "sticky", "data", 01777));
  TempDir work;
  for (const char* name : {"tool", "group-tool", "sticky"}) {
    CAPTURE(name);
    const std::string out = work / name;
    auto r = Dfc(fakes.conf_path(), {"get", name, "-o", out});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    struct stat st {};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 07000) == 0);
  }
  struct stat st {};
  REQUIRE(::stat((work / "tool").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0755);
}

}  // namespace
}  // namespace dfs::testing
