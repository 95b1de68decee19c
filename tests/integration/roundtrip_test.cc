// Integration: round trips, on-disk placement and encryption against four
// real dfs_server processes.
#include <dirent.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "shared/crypto/crypto.h"
#include "shared/format/piece_header.h"
#include "shared/placement/placement.h"
#include "tests/integration/helpers.h"

namespace dfs::testing {
namespace {

namespace fs = std::filesystem;

int PlacementResidue(const std::string& content) {
  Md5 md5;
  md5.Update(content.data(), content.size());
  return ResidueOf(md5.Final(), 4);
}

// Piece indexes stored for `name` in `dir` (names like ".name.K").
std::vector<int> PiecesOnDisk(const std::string& dir, const std::string& name) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n;
    int k = 0;
    if (ParsePieceFileName(e.path().filename().string(), &n, &k) && n == name && k > 0)
      out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("files of 0, 1, 3, 5 bytes, text and several MiB of random bytes round-trip exactly") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"one", "x"},
      {"three", "abc"},
      {"five", "hello"},
      {"text.txt", "The quick brown fox jumps over the lazy dog.\nSecond line\n"},
      {"random.bin", RandomBytes(5 * 1024 * 1024 + 7, 42)},
      {"chunk-edge.bin", RandomBytes(4 * 65536, 7)},
  };
  for (const auto& one : cases) {
    const auto& [name, content] = one;
    CAPTURE(one.first);
    auto put = PutBytes(*c, name, content);
    REQUIRE_MESSAGE(put.ok(), put.status().ToString());
    CHECK_FALSE(put->degraded);
    auto got = GetBytes(*c, name);
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(*got == content);
    auto st = c->Stat(name);
    REQUIRE(st.ok());
    CHECK(st->file.size() == content.size());
  }
  auto listing = c->List("");
  REQUIRE(listing.ok());
  CHECK(listing->entries.size() == cases.size());
}

TEST_CASE("pieces lie on disk exactly where Table 1 puts them") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  // Enough different contents to hit every residue x = 0..3.
  std::vector<bool> seen(4, false);
  for (int i = 0; i < 40 && std::count(seen.begin(), seen.end(), true) < 4; ++i) {
    const std::string content = "content number " + std::to_string(i);
    const int x = PlacementResidue(content);
    if (seen[x]) continue;
    seen[x] = true;
    const std::string name = "file" + std::to_string(i) + ".txt";
    REQUIRE(PutBytes(*c, name, content).ok());
    CAPTURE(x);
    for (int server = 1; server <= 4; ++server) {
      CAPTURE(server);
      auto expected = PiecesOnServer(Scheme{}, x, server);
      std::sort(expected.begin(), expected.end());
      CHECK(PiecesOnDisk(cluster.server_dir(server - 1) + "/Alice", name) == expected);
      // Each piece file carries a header naming its piece and x.
      for (int k : expected) {
        std::string raw =
            ReadFile(cluster.server_dir(server - 1) + "/Alice/" + PieceFileName(name, k));
        auto h = PieceHeader::Decode(raw);
        REQUIRE(h.ok());
        CHECK(h->piece == k);
        CHECK(h->x == x);
        CHECK(h->file_size == content.size());
      }
    }
  }
  CHECK(std::count(seen.begin(), seen.end(), true) == 4);
}

TEST_CASE("no plaintext reaches a server's disk") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  std::string marker = "TOP-SECRET-MARKER-0123456789";
  std::string content;
  for (int i = 0; i < 2000; ++i) content += marker;
  REQUIRE(PutBytes(*c, "secret.txt", content).ok());
  for (int s = 0; s < 4; ++s) {
    for (const auto& e : fs::recursive_directory_iterator(cluster.server_dir(s))) {
      if (!e.is_regular_file()) continue;
      std::string bytes = ReadFile(e.path().string());
      CHECK_MESSAGE(bytes.find("TOP-SECRET") == std::string::npos, e.path().string());
    }
  }
}

TEST_CASE("subfolders hold files and list with a trailing slash marker") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  REQUIRE(c->Mkdir("docs").ok());
  REQUIRE(c->Mkdir("docs/deep").ok());
  CHECK(c->Mkdir("docs").code() == Code::kExists);
  CHECK(c->Mkdir("missing/child").code() == Code::kNotFound);
  REQUIRE(PutBytes(*c, "docs/a.txt", "in docs").ok());
  REQUIRE(PutBytes(*c, "docs/deep/b.txt", "deeper").ok());
  auto root = c->List("");
  REQUIRE(root.ok());
  REQUIRE(root->entries.size() == 1);
  CHECK(root->entries[0].is_dir);
  auto docs = c->List("docs/");
  REQUIRE(docs.ok());
  REQUIRE(docs->entries.size() == 2);
  CHECK(docs->entries[0].name == "a.txt");
  CHECK(docs->entries[1].name == "deep");
  CHECK(docs->entries[1].is_dir);
  CHECK(*GetBytes(*c, "docs/deep/b.txt") == "deeper");
  CHECK(c->Rmdir("docs").code() == Code::kNotEmpty);
  REQUIRE(c->Unlink("docs/deep/b.txt").ok());
  REQUIRE(c->Rmdir("docs/deep").ok());
  CHECK(c->Stat("docs/deep").status().code() == Code::kNotFound);
}

TEST_CASE("delete, rename and overwrite keep every reader on a whole version") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  REQUIRE(PutBytes(*c, "a", "first version").ok());
  REQUIRE(PutBytes(*c, "a", "second, longer version").ok());
  CHECK(*GetBytes(*c, "a") == "second, longer version");
  REQUIRE(c->Rename("a", "b").ok());
  CHECK(c->Stat("a").status().code() == Code::kNotFound);
  CHECK(*GetBytes(*c, "b") == "second, longer version");
  REQUIRE(PutBytes(*c, "c", "other").ok());
  REQUIRE(c->Rename("c", "b").ok());  // over an existing file
  CHECK(*GetBytes(*c, "b") == "other");
  REQUIRE(c->Unlink("b").ok());
  CHECK(c->Stat("b").status().code() == Code::kNotFound);
  CHECK(c->List("")->entries.empty());
}

TEST_CASE("Bob sees none of Alice's files") {
  Cluster cluster;
  auto alice = MakeClient(cluster);
  auto bob = MakeClient(cluster, "Bob", "BobPassword");
  REQUIRE(PutBytes(*alice, "diary.txt", "dear diary").ok());
  REQUIRE(PutBytes(*bob, "notes.txt", "bob's").ok());
  auto bl = bob->List("");
  REQUIRE(bl.ok());
  REQUIRE(bl->entries.size() == 1);
  CHECK(bl->entries[0].name == "notes.txt");
  CHECK(bob->Stat("diary.txt").status().code() == Code::kNotFound);
  CHECK(!GetBytes(*bob, "diary.txt").ok());
  CHECK(fs::exists(cluster.server_dir(0) + "/Bob"));
  CHECK(fs::exists(cluster.server_dir(0) + "/Alice"));
}

TEST_CASE("two clients uploading at once both succeed and nobody sees a mixed file") {
  Cluster cluster;
  auto c1 = MakeClient(cluster);
  auto c2 = MakeClient(cluster);
  const std::string a = RandomBytes(3 * 1024 * 1024, 1), b = RandomBytes(3 * 1024 * 1024 + 1, 2);
  for (int round = 0; round < 3; ++round) {
    Status s1, s2, s3, s4;
    std::thread t1([&] {
      s1 = PutBytes(*c1, "shared.bin", a).status();
      s3 = PutBytes(*c1, "one.bin", a).status();
    });
    std::thread t2([&] {
      s2 = PutBytes(*c2, "shared.bin", b).status();
      s4 = PutBytes(*c2, "two.bin", b).status();
    });
    t1.join();
    t2.join();
    REQUIRE_MESSAGE(s1.ok(), s1.ToString());
    REQUIRE_MESSAGE(s2.ok(), s2.ToString());
    REQUIRE_MESSAGE(s3.ok(), s3.ToString());
    REQUIRE_MESSAGE(s4.ok(), s4.ToString());
    auto got = GetBytes(*c1, "shared.bin");
    REQUIRE(got.ok());
    CHECK((*got == a || *got == b));
    CHECK(*GetBytes(*c2, "one.bin") == a);
    CHECK(*GetBytes(*c1, "two.bin") == b);
  }
}

TEST_CASE("a whole-file get receives the file size plus small framing and tag overhead") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const size_t size = 8 * 1024 * 1024 + 3;
  REQUIRE(PutBytes(*c, "big.bin", RandomBytes(size, 9)).ok());
  auto entry = c->Stat("big.bin");
  REQUIRE(entry.ok());
  const uint64_t before = c->pool().traffic().received;
  TempDir tmp;
  UniqueFd fd(::open((tmp / "out").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  REQUIRE(c->Get(entry->file, fd.get()).ok());
  const uint64_t received = c->pool().traffic().received - before;
  // 16-byte tag per 64 KiB chunk (0.02 %) plus frame and reply headers.
  CHECK(received >= size);
  CHECK(received < size + size / 1000 + 16 * 1024);
  MESSAGE("GET of " << size << " bytes received " << received << " bytes (ratio "
                    << static_cast<double>(received) / static_cast<double>(size) << ")");
}

// Uploads `content` as `name` and returns the version the servers hold.
client::FileVersion PutAndStat(client::Client& c, const std::string& name,
                               const std::string& content) {
  REQUIRE(PutBytes(c, name, content).ok());
  auto entry = c.Stat(name);
  REQUIRE(entry.ok());
  return entry->file;
}

TEST_CASE("random reads fetch only the chunks they cover and return the right bytes") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const std::string content = RandomBytes(3 * 1024 * 1024 + 11, 5);
  const client::FileVersion version = PutAndStat(*c, "r.bin", content);
  auto reader = c->Open(version);
  REQUIRE(reader.ok());
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) {
    uint64_t off = rng() % (content.size() + 100);
    size_t len = rng() % 300000;
    std::string buf(len, '\0');
    auto n = (*reader)->Read(off, len, buf.data());
    REQUIRE(n.ok());
    size_t expect = off >= content.size() ? 0 : std::min<size_t>(len, content.size() - off);
    REQUIRE(*n == expect);
    CHECK(buf.substr(0, *n) == content.substr(std::min<size_t>(off, content.size()), *n));
  }
  // A small read inside one chunk far into the file costs that chunk, not the file.
  auto fresh = c->Open(version);
  const uint64_t before = c->pool().traffic().received;
  std::string small(100, '\0');
  const uint64_t at = PieceOffset(content.size(), 4, 3) + 2 * 65536 + 10;
  auto n = (*fresh)->Read(at, 100, small.data());
  REQUIRE(n.ok());
  CHECK(small == content.substr(at, 100));
  CHECK(c->pool().traffic().received - before < 2 * 65536);
}

// Reads `reader` from `from` to the end in steps of `step` bytes, as the
// kernel does for a sequential reader; the bytes, or the first failure.
Result<std::string> ReadSequentially(client::Reader& reader, uint64_t from, uint64_t size,
                                     size_t step) {
  std::string out;
  std::string buf(step, '\0');
  for (uint64_t off = from; off < size;) {
    auto n = reader.Read(off, step, buf.data());
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    out.append(buf, 0, *n);
    off += *n;
  }
  return out;
}

TEST_CASE("sequential reads stream ahead and still fetch each chunk once") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const std::string content = RandomBytes(12 * 1024 * 1024 + 7, 17);
  const client::FileVersion version = PutAndStat(*c, "seq.bin", content);
  for (size_t step : {size_t{4096}, size_t{128 * 1024}, size_t{1024 * 1024}}) {
    CAPTURE(step);
    auto reader = c->Open(version);
    REQUIRE(reader.ok());
    const uint64_t before = c->pool().traffic().received;
    auto got = ReadSequentially(**reader, 0, content.size(), step);
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(*got == content);
    // Read-ahead crosses pieces and holders but never fetches a chunk twice:
    // what arrives is the file plus tags and framing.
    const uint64_t received = c->pool().traffic().received - before;
    CHECK(received >= content.size());
    CHECK(received < content.size() + content.size() / 50);
  }
}

TEST_CASE("a reader closed while it reads ahead, and readers sharing one, stay correct") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const std::string content = RandomBytes(8 * 1024 * 1024 + 3, 18);
  const client::FileVersion version = PutAndStat(*c, "ra.bin", content);
  // Dropped right after a sequential start: the background requests finish
  // (or fail) before the reader goes away.
  for (int i = 0; i < 10; ++i) {
    auto reader = c->Open(version);
    REQUIRE(reader.ok());
    std::string buf(256 * 1024, '\0');
    for (uint64_t off = 0; off < 2 * 1024 * 1024; off += buf.size()) {
      auto n = (*reader)->Read(off, buf.size(), buf.data());
      REQUIRE(n.ok());
      CHECK(std::string_view(buf.data(), *n) == std::string_view(content).substr(off, *n));
    }
  }
  // Three threads reading one reader sequentially from different places.
  auto reader = c->Open(version);
  REQUIRE(reader.ok());
  std::vector<std::string> parts(3);
  std::vector<Status> errors(3);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      const uint64_t from = t * content.size() / 3;
      const uint64_t to = (t + 1) * content.size() / 3;
      auto got = ReadSequentially(**reader, from, to, 64 * 1024 + 1);
      if (!got.ok()) {
        errors[t] = got.status();
        return;
      }
      parts[t] = got->substr(0, to - from);
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < 3; ++t) {
    CAPTURE(t);
    CHECK(errors[t].ok());
    const uint64_t from = t * content.size() / 3;
    const uint64_t to = (t + 1) * content.size() / 3;
    CHECK(parts[t] == content.substr(from, to - from));
  }
}

TEST_CASE("sequential reads with one holder of every piece gone read from the other") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const std::string content = RandomBytes(6 * 1024 * 1024 + 5, 19);
  const client::FileVersion version = PutAndStat(*c, "down.bin", content);
  cluster.Kill(1);
  auto reader = c->Open(version);
  REQUIRE(reader.ok());
  auto got = ReadSequentially(**reader, 0, content.size(), 128 * 1024);
  REQUIRE_MESSAGE(got.ok(), got.status().ToString());
  CHECK(*got == content);
}

// Sizes of the piece files of dir/name on every server, by file name.
std::map<std::string, std::vector<uintmax_t>> PieceFileSizes(const Cluster& cluster,
                                                             const std::string& dir,
                                                             const std::string& name) {
  std::map<std::string, std::vector<uintmax_t>> out;
  for (int s = 0; s < cluster.size(); ++s) {
    const fs::path folder = fs::path(cluster.server_dir(s)) / "Alice" / dir;
    if (!fs::exists(folder)) continue;
    for (const auto& e : fs::directory_iterator(folder)) {
      const std::string file = e.path().filename().string();
      if (file.starts_with("." + name + ".") && file != "." + name + ".0")
        out[file].push_back(e.file_size());
    }
  }
  return out;
}

TEST_CASE("extended attributes are sealed with every piece and follow the file") {
  Cluster cluster;
  auto c = MakeClient(cluster);
  const std::string content = RandomBytes(300'000, 23);
  TempDir tmp("dfs-xattr");
  const std::string local = tmp / "src";
  WriteFile(local, content);
  client::FileAttrs attrs;
  attrs.xattrs = {{"user.color", "blue"}, {"user.secret", "XATTR-PLAINTEXT-MARKER"}};
  {
    UniqueFd fd(::open(local.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(c->Mkdir("a").ok());
    auto put = c->Put(fd.get(), "a/f", attrs);
    REQUIRE_MESSAGE(put.ok(), put.status().ToString());
  }
  auto got = c->GetXattrs("a/f");
  REQUIRE_MESSAGE(got.ok(), got.status().ToString());
  CHECK(*got == attrs.xattrs);
  CHECK(*GetBytes(*c, "a/f") == content);
  // Every piece file carries them (same size on both holders), sealed.
  auto sizes = PieceFileSizes(cluster, "a", "f");
  CHECK(sizes.size() == 4);
  for (const auto& entry : sizes) {
    const auto& each = entry.second;
    CAPTURE(entry.first);
    CHECK(each.size() == 2);
    CHECK(each.front() == each.back());
  }
  for (int s = 0; s < 4; ++s)
    for (const auto& e : fs::recursive_directory_iterator(cluster.server_dir(s)))
      if (e.is_regular_file())
        CHECK_MESSAGE(ReadFile(e.path().string()).find("XATTR-PLAINTEXT") == std::string::npos,
                      e.path().string());

  SUBCASE("set, chmod and rename keep the content and carry the attributes") {
    const XattrMap next = {{"user.color", "green"}, {"user.more", std::string(1000, 'm')}};
    REQUIRE(c->SetXattrs("a/f", next).ok());
    CHECK(*c->GetXattrs("a/f") == next);
    client::AttrChange chmod;
    chmod.mode = 0600;
    REQUIRE(c->SetAttr("a/f", chmod).ok());
    CHECK(*c->GetXattrs("a/f") == next);
    REQUIRE(c->Rename("a/f", "g").ok());
    CHECK(*c->GetXattrs("g") == next);
    CHECK(c->GetXattrs("a/f").status().code() == Code::kNotFound);
    CHECK(*GetBytes(*c, "g") == content);
    REQUIRE(c->SetXattrs("g", {}).ok());
    CHECK(c->GetXattrs("g")->empty());
    CHECK(*GetBytes(*c, "g") == content);
    CHECK(c->Stat("g")->file.newest.xattr_bytes == 0);
  }
  SUBCASE("a server that missed a change gets it, and every copy then serves it") {
    cluster.Kill(1);
    const XattrMap next = {{"user.while", "DFS2 was down"}};
    REQUIRE(c->SetXattrs("a/f", next).ok());
    cluster.Restart(1);
    auto healed = c->Heal("");
    REQUIRE_MESSAGE(healed.ok(), healed.status().ToString());
    CHECK(cluster.HintFiles().empty());
    auto after = PieceFileSizes(cluster, "a", "f");
    for (const auto& entry : after) {
      const auto& each = entry.second;
      CAPTURE(entry.first);
      REQUIRE(each.size() == 2);
      CHECK(each.front() == each.back());
    }
    // Each server in turn gone: the attributes still come from a copy with the newest record.
    for (int s = 0; s < 4; ++s) {
      CAPTURE(s);
      cluster.Kill(s);
      auto fresh = MakeClient(cluster);
      auto x = fresh->GetXattrs("a/f");
      REQUIRE_MESSAGE(x.ok(), x.status().ToString());
      CHECK(*x == next);
      cluster.Restart(s);
    }
  }
  SUBCASE("a copy rebuilt by heal carries the newest attributes") {
    const XattrMap next = {{"user.healed", "yes"}};
    REQUIRE(c->SetXattrs("a/f", next).ok());
    const auto before = PieceFileSizes(cluster, "a", "f");
    for (const auto& e : fs::directory_iterator(fs::path(cluster.server_dir(2)) / "Alice" / "a"))
      if (e.path().filename().string().starts_with(".f.")) fs::remove(e.path());
    REQUIRE(c->Heal("").ok());
    CHECK(PieceFileSizes(cluster, "a", "f") == before);
    // DFS3 alone: its rebuilt copies serve the attributes.
    for (int s : {0, 1, 3}) cluster.Kill(s);
    auto fresh = MakeClient(cluster);
    auto x = fresh->GetXattrs("a/f");
    REQUIRE_MESSAGE(x.ok(), x.status().ToString());
    CHECK(*x == next);
    for (int s : {0, 1, 3}) cluster.Restart(s);
  }
}

}  // namespace
}  // namespace dfs::testing
