// Security: one server cannot make a client accept, prefer or propagate a
// record it forged. A tombstone of another file copied under a victim's
// name, or a header with a new content id and a stamp in the future, on
// one server's disk: the victim stays readable and listed, `dfc heal`
// deletes none of its pieces anywhere, and `dfc status` reports the record.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <string>

#include "shared/format/piece_header.h"
#include "tests/security/security_util.h"

namespace dfs::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kVictim[] = "victim.bin";

// The piece and tombstone files of `name` in `folder`: file name -> bytes.
std::map<std::string, std::string> RecordsOf(const std::string& folder, const std::string& name) {
  std::map<std::string, std::string> out;
  const std::string prefix = "." + name + ".";
  for (const auto& e : fs::directory_iterator(folder)) {
    const std::string file = e.path().filename().string();
    if (file.rfind(prefix, 0) == 0) out[file] = ReadFile(e.path().string());
  }
  return out;
}

// "N record(s) on SERVER ..." in `text`: the status names the server that sent it.
bool MentionsRejected(const std::string& text, const std::string& server) {
  const auto at = text.find("record");
  return at != std::string::npos && text.find(server, at) != std::string::npos;
}

TEST_CASE("a record copied or forged on one server neither hides a file nor makes heal delete it") {
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  const std::string content = RandomBytes(300000, 5);
  WriteFile(work / kVictim, content);
  WriteFile(work / "other.bin", "a file that will be deleted");
  REQUIRE(Dfc(conf, {"put", work / kVictim}).exit_code == 0);
  REQUIRE(Dfc(conf, {"put", work / "other.bin"}).exit_code == 0);
  REQUIRE(Dfc(conf, {"rm", "other.bin"}).exit_code == 0);

  const std::string alice1 = cluster.server_dir(0) + "/" + kAlice;
  const std::string tombstone = alice1 + "/.other.bin.0";
  REQUIRE(fs::exists(tombstone));
  std::map<int, std::map<std::string, std::string>> genuine;
  for (int i = 0; i < cluster.size(); ++i) {
    genuine[i] = RecordsOf(cluster.server_dir(i) + "/" + kAlice, kVictim);
    REQUIRE(genuine[i].size() == 2);  // two pieces of every file on every server
  }

  bool copy_tombstone = false, forge_header = false;
  SUBCASE("the tombstone of another file, newer than the victim") { copy_tombstone = true; }
  SUBCASE("a header with a new content id and a stamp a year ahead") { forge_header = true; }
  SUBCASE("both") { copy_tombstone = forge_header = true; }

  if (copy_tombstone)
    fs::copy_file(tombstone, alice1 + "/." + kVictim + ".0", fs::copy_options::overwrite_existing);
  if (forge_header) {
    // From DFS1's own genuine header: new cid, a stamp one year ahead, the
    // old MAC (the server does not hold the record key), as a piece DFS1
    // does not hold, followed by junk of the right length.
    const auto& mine = genuine[0];
    auto h = PieceHeader::Decode(mine.begin()->second.substr(0, kPieceHeaderBytes));
    REQUIRE(h.ok());
    PieceHeader forged = *h;
    forged.cid = RandomCid();
    forged.stamp.time_ns += uint64_t{365} * 24 * 3600 * 1000000000;
    int k = 1;
    while (mine.count("." + std::string(kVictim) + "." + std::to_string(k))) ++k;
    REQUIRE(k <= 4);
    forged.piece = static_cast<uint8_t>(k);
    forged.piece_size = PieceSize(forged.file_size, 4, k);
    WriteFile(alice1 + "/" + PieceFileName(kVictim, k),
              forged.Encode() + std::string(forged.sealed_size(), 'F'));
  }

  auto r = Dfc(conf, {"get", kVictim, "-o", work / "back.bin"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  if (r.exit_code == 0) CHECK(ReadFile(work / "back.bin") == content);

  r = Dfc(conf, {"list"});
  CHECK(r.exit_code == 0);
  CHECK(Contains("\n" + r.out, "\n" + std::string(kVictim) + "\n"));

  r = Dfc(conf, {"status", kVictim});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(MentionsRejected(r.out, "DFS1"), r.out);

  r = Dfc(conf, {"heal"});
  CHECK(r.exit_code != -1);
  for (int i = 0; i < cluster.size(); ++i) {
    CAPTURE(i);
    const auto now = RecordsOf(cluster.server_dir(i) + "/" + kAlice, kVictim);
    for (const auto& record : genuine[i]) {
      const auto& [file, bytes] = record;
      CAPTURE(record.first);
      REQUIRE(now.count(file));
      CHECK(now.at(file) == bytes);
    }
  }

  // Still whole and readable after the repair.
  r = Dfc(conf, {"get", kVictim, "-o", work / "again.bin"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  if (r.exit_code == 0) CHECK(ReadFile(work / "again.bin") == content);
  r = Dfc(conf, {"list"});
  CHECK(Contains("\n" + r.out, "\n" + std::string(kVictim) + "\n"));
}

TEST_CASE("a client deletes for real after a forged tombstone was ignored") {
  // The forged record must not get in the way of the user's own delete either.
  Cluster cluster;
  const std::string conf = cluster.WriteClientConfig(kAlice, kAlicePassword);
  TempDir work;
  WriteFile(work / kVictim, "victim content");
  WriteFile(work / "other.bin", "other");
  REQUIRE(Dfc(conf, {"put", work / "other.bin"}).exit_code == 0);
  REQUIRE(Dfc(conf, {"rm", "other.bin"}).exit_code == 0);
  REQUIRE(Dfc(conf, {"put", work / kVictim}).exit_code == 0);
  // An older tombstone of another name, copied on DFS2.
  const std::string alice2 = cluster.server_dir(1) + "/" + kAlice;
  fs::copy_file(alice2 + "/.other.bin.0", alice2 + "/." + kVictim + ".0",
                fs::copy_options::overwrite_existing);
  CHECK(Dfc(conf, {"list"}).out == std::string(kVictim) + "\n");
  auto r = Dfc(conf, {"rm", kVictim});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(Dfc(conf, {"list"}).out.empty());
  r = Dfc(conf, {"get", kVictim, "-o", work / "gone.bin"});
  CHECK(r.exit_code == 1);
}

}  // namespace
}  // namespace dfs::testing
