// Unit tests of the client's streaming merge of folder listings
// (fuse_client/client/list_merge.h): whatever the interleaving of the
// servers' batches, every name reaches the sink once, in order, with the
// records of every server that sent it, and no earlier than every server
// still sending has gone past it; servers that break the protocol (out of
// order, too many records of a name, beyond the byte bound) are cut off
// without holding up the others.
#include "fuse_client/client/list_merge.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dfs::client {
namespace {

using Record = ListMerge::Record;
using Lines = std::vector<std::string>;

// A folder record of `name`.
Record Dir(std::string name) {
  Record r;
  r.entry.name = std::move(name);
  r.entry.is_dir = true;
  return r;
}

// Piece `k` (0: a tombstone) of `name` with stamp `time`, and the verdict on
// it. The stamp tells records of one name and server apart.
Record Rec(std::string name, int k, uint64_t time = 10,
           RecordCheck check = RecordCheck::kAccepted) {
  Record r;
  r.entry.name = std::move(name);
  r.entry.header.kind = k == 0 ? PieceKind::kTombstone : PieceKind::kPiece;
  r.entry.header.piece = static_cast<uint8_t>(k);
  r.entry.header.stamp = Stamp{time, static_cast<uint64_t>(k)};
  r.entry.header.cid.fill(static_cast<uint8_t>(time));
  r.check = check;
  return r;
}

std::string HeaderLine(const PieceHeader& h, int server) {
  return std::string(h.tombstone() ? "tomb" : "piece") + std::to_string(h.piece) + " t" +
         std::to_string(h.stamp.time_ns) + " @" + std::to_string(server);
}

std::string RejectedLine(RecordCheck why, int server) {
  return "rejected" + std::to_string(static_cast<int>(why)) + " @" + std::to_string(server);
}

// What record `r` from `server` should become in the sink's NameRecords, as
// a line.
std::string Expected(const Record& r, int server) {
  if (r.entry.is_dir) return "dir @" + std::to_string(server);
  if (r.check == RecordCheck::kAccepted) return HeaderLine(r.entry.header, server);
  return RejectedLine(r.check, server);
}

// What the sink was given for one name, one line per record, sorted.
Lines Describe(const NameRecords& records) {
  Lines out;
  for (int s : records.dir_on) out.push_back("dir @" + std::to_string(s));
  for (const Observed& o : records.headers) out.push_back(HeaderLine(o.header, o.server));
  for (const RejectedRecord& r : records.rejected) out.push_back(RejectedLine(r.why, r.server));
  std::sort(out.begin(), out.end());
  return out;
}

// One call of the sink.
struct Got {
  std::string name;
  Lines records;
};

std::vector<std::string> NamesOf(const std::vector<Got>& got) {
  std::vector<std::string> out;
  for (const Got& g : got) out.push_back(g.name);
  return out;
}

bool StrictlyIncreasing(const std::vector<std::string>& names) {
  for (size_t i = 1; i < names.size(); ++i)
    if (!(names[i - 1] < names[i])) return false;
  return true;
}

// The sink's output over all of a merge, checked against a model of the
// merge after every step: the names handed on are exactly those sent that
// are less than the last name of every server still sending (none while
// such a server has sent nothing), each with every record sent of it.
class Harness {
 public:
  explicit Harness(int servers, size_t max_bytes = size_t{1} << 30)
      : sent_(static_cast<size_t>(servers)),
        finished_(static_cast<size_t>(servers), false),
        merge_(servers, max_bytes, [this](std::string&& name, NameRecords&& records) {
          got_.push_back({std::move(name), Describe(records)});
        }) {}
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  // Server s sends `batch`, which must be taken.
  void Add(int s, std::vector<Record> batch) {
    for (const Record& r : batch) sent_[static_cast<size_t>(s)].push_back(r);
    const Status added = merge_.Add(s, std::move(batch));
    REQUIRE_MESSAGE(added.ok(), added.ToString());
    Check();
  }
  void Finish(int s) {
    finished_[static_cast<size_t>(s)] = true;
    merge_.Finish(s);
    Check();
  }
  bool finished(int s) const { return finished_[static_cast<size_t>(s)]; }
  const std::vector<Got>& got() const { return got_; }

  // The lines of every record of `name` sent so far, sorted.
  Lines SentOf(const std::string& name) const {
    Lines out;
    for (size_t s = 0; s < sent_.size(); ++s)
      for (const Record& r : sent_[s])
        if (r.entry.name == name) out.push_back(Expected(r, static_cast<int>(s)));
    std::sort(out.begin(), out.end());
    return out;
  }

  // What must have reached the sink by now, in order.
  std::vector<std::string> Due() const {
    bool blocked = false;
    std::optional<std::string> bound;
    for (size_t s = 0; s < sent_.size(); ++s) {
      if (finished_[s]) continue;
      if (sent_[s].empty()) {
        blocked = true;
      } else if (!bound || sent_[s].back().entry.name < *bound) {
        bound = sent_[s].back().entry.name;
      }
    }
    std::set<std::string> all;
    for (const auto& stream : sent_)
      for (const Record& r : stream) all.insert(r.entry.name);
    std::vector<std::string> due;
    if (blocked) return due;
    for (const std::string& n : all)
      if (!bound || n < *bound) due.push_back(n);
    return due;
  }

  // The names handed on are those due, and each came with every record
  // sent of it (checked once: a name is never sent again once handed on).
  void Check() {
    const std::vector<std::string> names = NamesOf(got_);
    CHECK(StrictlyIncreasing(names));
    CHECK(names == Due());
    for (; checked_ < got_.size(); ++checked_) {
      INFO("name ", got_[checked_].name);
      CHECK(got_[checked_].records == SentOf(got_[checked_].name));
    }
  }

 private:
  std::vector<std::vector<Record>> sent_;
  std::vector<bool> finished_;
  std::vector<Got> got_;
  size_t checked_ = 0;  // got_[0, checked_) checked
  ListMerge merge_;
};

// The listings of three servers: names that sort differently bytewise than
// by letter (upper case, ' ', '.', '0', UTF-8), a name on one server only,
// on all, a folder on some and a file on others, records that failed the
// check, a name with many records, and filler.
std::vector<std::vector<Record>> ThreeStreams() {
  std::vector<std::vector<Record>> s(3);
  s[0].push_back(Dir("A"));
  s[1].push_back(Dir("A"));
  s[0].push_back(Rec("B", 1));
  s[1].push_back(Rec("B", 2));
  s[2].push_back(Rec("B", 3));
  s[2].push_back(Rec("B", 4));
  s[0].push_back(Rec("a", 1));
  s[0].push_back(Rec("a", 2));
  s[1].push_back(Rec("a", 2, 20));
  s[1].push_back(Rec("a", 3, 20));
  s[2].push_back(Rec("a", 0, 30));
  s[2].push_back(Rec("a", 4, 5));
  s[1].push_back(Rec("a b", 1, 10, RecordCheck::kBadMac));
  s[0].push_back(Rec("a.b", 1));
  s[2].push_back(Dir("a.b"));
  s[0].push_back(Rec("a0", 1));
  s[0].push_back(Rec("a0", 1, 11, RecordCheck::kOtherScheme));
  s[0].push_back(Rec("a0", 2));
  s[2].push_back(Rec("a0", 9, 10, RecordCheck::kBadPiece));
  s[1].push_back(Rec("aa", 1));
  for (int k = 0; k <= 4; ++k) s[0].push_back(Rec("b", k, static_cast<uint64_t>(40 + k)));
  s[1].push_back(Rec("b", 3));
  s[1].push_back(Rec("b", 4));
  for (int i = 0; i < 30; ++i) {
    char name[8];
    std::snprintf(name, sizeof name, "f%02d", i);
    if (i % 4 == 3) {
      for (int server = 0; server < 3; ++server)
        s[static_cast<size_t>(server)].push_back(Rec(name, server + 1));
    } else {
      s[static_cast<size_t>(i % 3)].push_back(Rec(name, 1 + i % 4));
      if (i % 5 == 0) s[static_cast<size_t>((i + 1) % 3)].push_back(Dir(name));
    }
  }
  s[2].push_back(Rec("z", 1));
  s[0].push_back(Rec("\xc3\x89", 1));  // "É"
  s[1].push_back(Rec("\xc3\x89", 2));
  for (int server = 0; server < 3; ++server)
    s[static_cast<size_t>(server)].push_back(Rec("\xc3\xa9", server + 2));  // "é"
  for (const auto& stream : s)
    REQUIRE(std::is_sorted(stream.begin(), stream.end(), [](const Record& a, const Record& b) {
      return a.entry.name < b.entry.name;
    }));
  return s;
}

// Every name in `streams`, in order.
std::vector<std::string> AllNames(const std::vector<std::vector<Record>>& streams) {
  std::set<std::string> all;
  for (const auto& stream : streams)
    for (const Record& r : stream) all.insert(r.entry.name);
  return {all.begin(), all.end()};
}

// Plays the servers' streams into a Harness one step at a time: `next`
// picks the server to step (one not finished) and the size of its next
// batch; a server with nothing left to send finishes.
struct Player {
  explicit Player(std::vector<std::vector<Record>> s)
      : streams(std::move(s)), pos(streams.size(), 0), harness(static_cast<int>(streams.size())) {}

  std::vector<std::vector<Record>> streams;
  std::vector<size_t> pos;
  Harness harness;

  bool done() const {
    for (size_t s = 0; s < streams.size(); ++s)
      if (!harness.finished(static_cast<int>(s))) return false;
    return true;
  }
  // Sends up to `n` more records of server s, or finishes it when it has
  // sent all.
  void Step(int s, size_t n) {
    const auto i = static_cast<size_t>(s);
    if (pos[i] == streams[i].size()) {
      harness.Finish(s);
      return;
    }
    const size_t end = std::min(streams[i].size(), pos[i] + n);
    std::vector<Record> batch(streams[i].begin() + static_cast<std::ptrdiff_t>(pos[i]),
                              streams[i].begin() + static_cast<std::ptrdiff_t>(end));
    pos[i] = end;
    harness.Add(s, std::move(batch));
  }
  // Everything that is left of server s, in batches of n, then its end.
  void Drain(int s, size_t n) {
    while (!harness.finished(s)) Step(s, n);
  }
  // The end state: every name once, in order, with all its records.
  void CheckComplete() const {
    REQUIRE(done());
    CHECK(NamesOf(harness.got()) == AllNames(streams));
    for (const Got& g : harness.got()) {
      INFO("name ", g.name);
      CHECK(g.records == harness.SentOf(g.name));
      CHECK_FALSE(g.records.empty());
    }
  }
};

TEST_CASE("one server sending everything before the others start") {
  const std::vector<std::vector<int>> orders = {{0, 1, 2}, {2, 0, 1}, {1, 2, 0}};
  for (const std::vector<int>& order : orders) {
    for (size_t batch : {size_t{1}, size_t{2}, size_t{5}, size_t{1000}}) {
      INFO("order ", order[0], order[1], order[2], " batch ", batch);
      Player p(ThreeStreams());
      for (int s : order) {
        // Sends all; nothing can be handed on while another has sent nothing.
        while (p.pos[static_cast<size_t>(s)] < p.streams[static_cast<size_t>(s)].size())
          p.Step(s, batch);
        if (s != order[2]) CHECK(p.harness.got().empty());
        p.Step(s, batch);  // finishes
      }
      p.CheckComplete();
    }
  }
}

TEST_CASE("servers sending all they have, then finishing in turn") {
  for (size_t batch : {size_t{1}, size_t{3}, size_t{1000}}) {
    INFO("batch ", batch);
    Player p(ThreeStreams());
    for (int s = 0; s < 3; ++s)
      while (p.pos[static_cast<size_t>(s)] < p.streams[static_cast<size_t>(s)].size())
        p.Step(s, batch);
    // All sent, none finished: only names below every server's last are out.
    const std::vector<std::string> out = NamesOf(p.harness.got());
    CHECK_FALSE(out.empty());
    CHECK(out.size() < AllNames(p.streams).size());
    for (int s : {1, 0, 2}) p.Step(s, batch);
    p.CheckComplete();
  }
}

TEST_CASE("round robin in small batches") {
  for (size_t batch : {size_t{1}, size_t{2}, size_t{3}}) {
    INFO("batch ", batch);
    Player p(ThreeStreams());
    for (int turn = 0; !p.done(); ++turn) {
      const int s = turn % 3;
      if (!p.harness.finished(s)) p.Step(s, batch);
    }
    p.CheckComplete();
  }
  // Each server its own batch size, so that names split differently.
  Player p(ThreeStreams());
  for (int turn = 0; !p.done(); ++turn) {
    const int s = turn % 3;
    if (!p.harness.finished(s)) p.Step(s, static_cast<size_t>(s + 1));
  }
  p.CheckComplete();
}

TEST_CASE("random interleavings of random batches") {
  for (uint32_t seed = 1; seed <= 80; ++seed) {
    INFO("seed ", seed);
    std::mt19937 rng(seed);
    Player p(ThreeStreams());
    while (!p.done()) {
      const int s = static_cast<int>(rng() % 3);
      if (p.harness.finished(s)) continue;
      p.Step(s, 1 + rng() % 4);
    }
    p.CheckComplete();
  }
}

TEST_CASE("a name split over batches of one server is handed on once with all its records") {
  Harness h(2);
  h.Add(1, {Rec("m", 3), Rec("z", 1)});
  h.Add(0, {Rec("a", 1), Rec("m", 1)});
  CHECK(NamesOf(h.got()) == std::vector<std::string>{"a"});
  h.Add(0, {Rec("m", 2)});  // more of m: still not past it
  CHECK(NamesOf(h.got()) == std::vector<std::string>{"a"});
  h.Add(0, {Rec("m", 0, 50), Rec("n", 1)});
  REQUIRE(NamesOf(h.got()) == std::vector<std::string>{"a", "m"});
  CHECK(h.got()[1].records == Lines{"piece1 t10 @0", "piece2 t10 @0", "piece3 t10 @1",
                                    "tomb0 t50 @0"});
  h.Finish(0);
  h.Finish(1);
  CHECK(NamesOf(h.got()) == std::vector<std::string>{"a", "m", "n", "z"});
}

TEST_CASE("nothing is handed on before every server still sending has gone past it") {
  std::vector<std::string> got;
  ListMerge merge(3, size_t{1} << 30, [&](std::string&& name, NameRecords&&) {
    got.push_back(std::move(name));
  });
  REQUIRE(merge.Add(0, {Rec("a", 1), Rec("b", 1), Rec("c", 1)}).ok());
  CHECK(got.empty());  // 1 and 2 sent nothing yet
  REQUIRE(merge.Add(1, {Rec("a", 2), Rec("b", 2)}).ok());
  CHECK(got.empty());  // 2 sent nothing yet
  REQUIRE(merge.Add(2, {}).ok());
  CHECK(got.empty());  // nor does an empty batch say anything
  REQUIRE(merge.Add(2, {Rec("c", 3)}).ok());
  CHECK(got == std::vector<std::string>{"a"});  // 1 may still send more of b
  REQUIRE(merge.Add(1, {Rec("b", 3)}).ok());
  CHECK(got.size() == 1);
  REQUIRE(merge.Add(1, {Rec("d", 1)}).ok());
  CHECK(got == std::vector<std::string>{"a", "b"});  // 0 and 2 may send more of c
  merge.Finish(2);
  CHECK(got.size() == 2);  // 0 may still
  merge.Finish(0);
  CHECK(got == std::vector<std::string>{"a", "b", "c"});  // 1 may still send more of d
  merge.Finish(1);
  CHECK(got == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("the last server to finish flushes what is left") {
  Harness h(3);
  h.Add(0, {Rec("a", 1), Rec("b", 1)});
  h.Add(1, {Rec("b", 2), Rec("c", 2), Rec("d", 2)});
  h.Add(2, {Rec("e", 3)});
  CHECK(NamesOf(h.got()) == std::vector<std::string>{"a"});
  h.Finish(2);
  h.Finish(1);
  CHECK(NamesOf(h.got()) == std::vector<std::string>{"a"});
  h.Finish(0);
  CHECK(NamesOf(h.got()) == std::vector<std::string>{"a", "b", "c", "d", "e"});
  CHECK(h.got()[1].records == Lines{"piece1 t10 @0", "piece2 t10 @1"});
}

TEST_CASE("a failed server does not hold up the others") {
  SUBCASE("one that sent nothing") {
    Harness h(3);
    h.Add(0, {Rec("a", 1), Rec("b", 1)});
    h.Add(2, {Rec("a", 3), Rec("c", 3)});
    CHECK(h.got().empty());
    h.Finish(1);
    CHECK(NamesOf(h.got()) == std::vector<std::string>{"a"});
    h.Add(0, {Rec("d", 1)});
    CHECK(NamesOf(h.got()) == std::vector<std::string>{"a", "b"});
    h.Finish(0);
    h.Finish(2);
    CHECK(NamesOf(h.got()) == std::vector<std::string>{"a", "b", "c", "d"});
  }
  SUBCASE("one that failed midway: what it sent still counts") {
    Harness h(3);
    h.Add(1, {Rec("a", 2), Rec("b", 2)});
    h.Add(0, {Rec("a", 1)});
    h.Add(2, {Rec("c", 3)});
    CHECK(h.got().empty());  // 0 may still send more of a
    h.Add(0, {Rec("b", 1), Rec("x", 1)});
    CHECK(NamesOf(h.got()) == std::vector<std::string>{"a"});  // 1 may still send more of b
    h.Finish(1);
    CHECK(NamesOf(h.got()) == std::vector<std::string>{"a", "b"});
    CHECK(h.got()[1].records == Lines{"piece1 t10 @0", "piece2 t10 @1"});
    h.Add(2, {Rec("y", 3)});
    CHECK(NamesOf(h.got()) == std::vector<std::string>{"a", "b", "c"});  // 0 may send more of x
    h.Finish(2);
    h.Finish(0);
    CHECK(NamesOf(h.got()) == std::vector<std::string>{"a", "b", "c", "x", "y"});
  }
  SUBCASE("random interleavings with one server failing early") {
    for (uint32_t seed = 1; seed <= 60; ++seed) {
      INFO("seed ", seed);
      std::mt19937 rng(seed);
      Player p(ThreeStreams());
      const int failing = static_cast<int>(seed % 3);
      const size_t cut = rng() % (p.streams[static_cast<size_t>(failing)].size() + 1);
      while (!p.done()) {
        const int s = static_cast<int>(rng() % 3);
        if (p.harness.finished(s)) continue;
        if (s == failing && p.pos[static_cast<size_t>(s)] >= cut) {
          p.harness.Finish(s);  // fails: sends no more
          continue;
        }
        p.Step(s, 1 + rng() % 4);
      }
      // Every name sent reached the sink once with what was sent of it.
      std::vector<std::vector<Record>> sent = p.streams;
      sent[static_cast<size_t>(failing)].resize(p.pos[static_cast<size_t>(failing)]);
      CHECK(NamesOf(p.harness.got()) == AllNames(sent));
      for (const Got& g : p.harness.got()) CHECK(g.records == p.harness.SentOf(g.name));
    }
  }
}

TEST_CASE("a server going backwards is cut off and what it sent before still counts") {
  std::vector<Got> got;
  ListMerge merge(2, size_t{1} << 30, [&](std::string&& name, NameRecords&& records) {
    got.push_back({std::move(name), Describe(records)});
  });
  const std::vector<Record> from1 = {Rec("a", 2), Rec("b", 2), Rec("c", 2), Rec("z", 2)};
  size_t sent1 = 0;  // of from1
  REQUIRE(merge.Add(0, {Rec("a", 1), Rec("c", 1)}).ok());
  // The names of 0 that stand: those sent before the fault.
  std::vector<std::string> names0 = {"a", "c"};
  SUBCASE("in a later batch") {
    CHECK(merge.Add(0, {Rec("b", 1)}).code() == Code::kProtocol);
  }
  SUBCASE("within one batch") {
    CHECK(merge.Add(0, {Rec("c", 3), Rec("d", 1), Rec("b", 1), Rec("e", 1)}).code() ==
          Code::kProtocol);
    names0.push_back("d");
  }
  SUBCASE("back past a name already handed on") {
    REQUIRE(merge.Add(1, {from1[0], from1[1]}).ok());
    sent1 = 2;
    REQUIRE(NamesOf(got) == std::vector<std::string>{"a"});
    CHECK(merge.Add(0, {Rec("a", 3)}).code() == Code::kProtocol);
  }
  // Refused from now on...
  CHECK(merge.Add(0, {Rec("y", 1)}).code() == Code::kProtocol);
  CHECK(merge.Add(0, {}).code() == Code::kProtocol);
  // ... and no longer waited for: all but z (1 may send more of it) is out.
  REQUIRE(merge.Add(1, std::vector<Record>(from1.begin() + static_cast<std::ptrdiff_t>(sent1),
                                           from1.end()))
              .ok());
  std::vector<std::string> expected = names0;
  expected.insert(expected.end(), {"a", "b", "c"});
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  CHECK(NamesOf(got) == expected);
  merge.Finish(0);
  merge.Finish(1);
  expected.push_back("z");
  REQUIRE(NamesOf(got) == expected);
  // a and c as sent before the fault, and nothing of 0 after it.
  CHECK(got[0].records == Lines{"piece1 t10 @0", "piece2 t10 @1"});
  CHECK(got[1].records == Lines{"piece2 t10 @1"});
  CHECK(std::count(got[2].records.begin(), got[2].records.end(), "piece1 t10 @0") == 1);
  CHECK(std::count(got[2].records.begin(), got[2].records.end(), "piece2 t10 @1") == 1);
  CHECK(got.back().records == Lines{"piece2 t10 @1"});
  merge.Finish(0);  // again: harmless
  CHECK(got.size() == expected.size());
}

TEST_CASE("a server sending too many records of one name is cut off") {
  constexpr size_t kMax = ListMerge::kMaxRecordsPerName;
  std::vector<Got> got;
  ListMerge merge(2, size_t{1} << 30, [&](std::string&& name, NameRecords&& records) {
    got.push_back({std::move(name), Describe(records)});
  });
  // Exactly the bound is fine, and the count is per name.
  std::vector<Record> most;
  for (size_t i = 0; i < kMax; ++i) most.push_back(Rec("a", 1, 100 + i));
  REQUIRE(merge.Add(0, most).ok());
  std::vector<Record> next;
  for (size_t i = 0; i < kMax; ++i) next.push_back(Rec("b", 1, 100 + i));
  SUBCASE("in one batch") {
    next.push_back(Rec("b", 2, 99));
    CHECK(merge.Add(0, std::move(next)).code() == Code::kProtocol);
  }
  SUBCASE("over several batches") {
    std::vector<Record> tail(next.end() - 10, next.end());
    next.resize(next.size() - 10);
    REQUIRE(merge.Add(0, std::move(next)).ok());
    REQUIRE(merge.Add(0, std::move(tail)).ok());
    CHECK(merge.Add(0, {Rec("b", 2, 99)}).code() == Code::kProtocol);
  }
  CHECK(merge.Add(0, {Rec("c", 1)}).code() == Code::kProtocol);
  // Another server's records of the same name are its own.
  std::vector<Record> other;
  for (size_t i = 0; i < kMax; ++i) other.push_back(Rec("b", 3, 100 + i));
  other.push_back(Rec("d", 1));
  REQUIRE(merge.Add(1, std::move(other)).ok());
  merge.Finish(1);
  merge.Finish(0);
  REQUIRE(NamesOf(got) == std::vector<std::string>{"a", "b", "d"});
  CHECK(got[0].records.size() == kMax);
  size_t from0 = 0, from1 = 0;
  for (const std::string& line : got[1].records) {
    if (line.ends_with("@0")) ++from0;
    if (line.ends_with("@1")) ++from1;
  }
  CHECK(from0 <= kMax);
  CHECK(from1 == kMax);
}

// The charge for one record waiting to be merged is the memory it takes,
// roughly: at least the Record itself, and not much beyond it and its name.
constexpr size_t kNameBytes = 6;
constexpr size_t kLeastRecordCharge = sizeof(Record);
constexpr size_t kMostRecordCharge = sizeof(Record) + kNameBytes + 64;

// "n00042" for 42 (i < 100000).
std::string NthName(size_t i) {
  std::string digits = std::to_string(i);
  return "n" + std::string(5 - std::min<size_t>(5, digits.size()), '0') + digits;
}

TEST_CASE("a server streaming names without end is cut off at the byte bound") {
  static_assert(kMostRecordCharge - kLeastRecordCharge < ListMerge::kEmittedBytes);
  REQUIRE(NthName(0).size() == kNameBytes);
  // Ten names handed on and one waiting fit; eleven handed on do not.
  constexpr size_t kPerName = ListMerge::kEmittedBytes + kNameBytes;
  constexpr size_t kBound = 10 * kPerName + kMostRecordCharge;
  std::vector<Got> got;
  ListMerge merge(2, kBound, [&](std::string&& name, NameRecords&& records) {
    got.push_back({std::move(name), Describe(records)});
  });
  merge.Finish(1);  // the other server: out of the way
  for (size_t i = 0; i <= 10; ++i) {
    INFO("name ", i);
    REQUIRE(merge.Add(0, {Rec(NthName(i), 1)}).ok());
    CHECK(got.size() == i);  // all but the last, which may have more records
  }
  CHECK(merge.Add(0, {Rec(NthName(11), 1)}).code() == Code::kProtocol);
  CHECK(merge.Add(0, {Rec(NthName(12), 1)}).code() == Code::kProtocol);
  merge.Finish(0);
  const std::vector<std::string> names = NamesOf(got);
  CHECK(StrictlyIncreasing(names));
  REQUIRE(names.size() >= 11);
  CHECK(names.size() <= 12);
  for (size_t i = 0; i < names.size(); ++i) CHECK(names[i] == NthName(i));
}

TEST_CASE("the byte bound is per server, and a budget far above what is sent is never hit") {
  // Two servers in step: each is charged for its own names only.
  constexpr size_t kPerName = ListMerge::kEmittedBytes + kNameBytes;
  constexpr size_t kNames = 200;
  std::vector<std::string> got;
  ListMerge merge(2, kNames * kPerName + 4 * kMostRecordCharge,
                  [&](std::string&& name, NameRecords&&) { got.push_back(std::move(name)); });
  for (size_t i = 0; i < kNames; ++i) {
    INFO("name ", i);
    REQUIRE(merge.Add(0, {Rec(NthName(i), 1)}).ok());
    REQUIRE(merge.Add(1, {Rec(NthName(i), 2)}).ok());
  }
  merge.Finish(0);
  merge.Finish(1);
  CHECK(got.size() == kNames);
}

TEST_CASE("a server whose records wait for a lagging one is cut off at the byte bound") {
  constexpr size_t kBound = 20 * ListMerge::kEmittedBytes;
  std::vector<Got> got;
  ListMerge merge(3, kBound, [&](std::string&& name, NameRecords&& records) {
    got.push_back({std::move(name), Describe(records)});
  });
  // Server 1 lags (has sent nothing), so everything 0 sends waits.
  REQUIRE(merge.Add(2, {Rec(NthName(0), 3)}).ok());
  size_t taken = 0;  // records 0 sent that were taken
  Status cut;
  SUBCASE("one record at a time") {
    for (size_t i = 0; i < 1000; ++i) {
      cut = merge.Add(0, {Rec(NthName(i), 1)});
      if (!cut.ok()) break;
      ++taken;
    }
  }
  SUBCASE("several records of one name at a time") {
    for (size_t i = 0; i < 1000 && cut.ok(); ++i) {
      std::vector<Record> batch;
      for (int k = 1; k <= 3; ++k) batch.push_back(Rec(NthName(i), k));
      cut = merge.Add(0, std::move(batch));
      if (cut.ok()) taken += 3;
    }
  }
  CHECK(cut.code() == Code::kProtocol);
  CHECK(got.empty());
  // Cut off once the records waiting cost more than the bound, not long
  // before nor after.
  CHECK(taken * kLeastRecordCharge <= kBound);
  CHECK((taken + 3) * kMostRecordCharge > kBound);
  CHECK(merge.Add(0, {Rec("zzz", 1)}).code() == Code::kProtocol);
  // The lagging server is not cut off for it, and what 0 sent before still
  // counts once it arrives.
  REQUIRE(merge.Add(1, {Rec(NthName(0), 2), Rec(NthName(1000), 2)}).ok());
  merge.Finish(1);
  merge.Finish(2);
  const std::vector<std::string> names = NamesOf(got);
  CHECK(StrictlyIncreasing(names));
  REQUIRE(names.size() >= 2);
  CHECK(names.front() == NthName(0));
  CHECK(names.back() == NthName(1000));
  CHECK(std::find(names.begin(), names.end(), "zzz") == names.end());
  for (size_t i = 1; i + 1 < names.size(); ++i) CHECK(names[i] == NthName(i));
  CHECK(got.front().records.size() >= 3);  // from 0, 1 and 2
}

// Four threads, each sending its own sorted stream in random batches, then
// finishing: the sink sees every name once, in order, with all its records.
TEST_CASE("concurrent servers") {
  constexpr int kServers = 4;
  constexpr size_t kUniverse = 3000;
  std::vector<std::vector<Record>> streams(kServers);
  for (int s = 0; s < kServers; ++s) {
    std::mt19937 rng(static_cast<uint32_t>(100 + s));
    for (size_t i = 0; i < kUniverse; ++i) {
      if (rng() % 10 < 4) continue;
      if (rng() % 20 == 0) {
        streams[static_cast<size_t>(s)].push_back(Dir(NthName(i)));
        continue;
      }
      const int records = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < records; ++k) {
        const RecordCheck check = rng() % 15 == 0 ? RecordCheck::kBadMac : RecordCheck::kAccepted;
        streams[static_cast<size_t>(s)].push_back(
            Rec(NthName(i), s + 1, static_cast<uint64_t>(10 + k), check));
      }
    }
  }
  std::map<std::string, Lines> expected;
  for (size_t s = 0; s < streams.size(); ++s)
    for (const Record& r : streams[s])
      expected[r.entry.name].push_back(Expected(r, static_cast<int>(s)));
  for (auto& kv : expected) std::sort(kv.second.begin(), kv.second.end());
  for (int round = 0; round < 5; ++round) {
    INFO("round ", round);
    std::vector<Got> got;  // only the sink touches it while the threads run
    ListMerge merge(kServers, size_t{1} << 30, [&](std::string&& name, NameRecords&& records) {
      got.push_back({std::move(name), Describe(records)});
    });
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int s = 0; s < kServers; ++s) {
      threads.emplace_back([&merge, &failures, &streams, s, round] {
        const std::vector<Record>& stream = streams[static_cast<size_t>(s)];
        std::mt19937 rng(static_cast<uint32_t>(1000 * round + s));
        size_t pos = 0;
        while (pos < stream.size()) {
          const size_t end = std::min(stream.size(), pos + 1 + rng() % 17);
          std::vector<Record> batch(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                                    stream.begin() + static_cast<std::ptrdiff_t>(end));
          pos = end;
          if (!merge.Add(s, std::move(batch)).ok()) ++failures;
          if (rng() % 8 == 0) std::this_thread::yield();
        }
        merge.Finish(s);
      });
    }
    for (std::thread& t : threads) t.join();
    CHECK(failures == 0);
    CHECK(NamesOf(got) == AllNames(streams));
    // Every record of every name, from the server that sent it.
    size_t wrong = 0;
    for (const Got& g : got) {
      auto it = expected.find(g.name);
      if (it == expected.end() || g.records != it->second) {
        if (++wrong == 1) {
          INFO("name ", g.name);
          CHECK(it != expected.end());
          if (it != expected.end()) CHECK(g.records == it->second);
        }
      }
    }
    CHECK(wrong == 0);
  }
}

}  // namespace
}  // namespace dfs::client
