// The randomized differential test of tests/support/random_ops.h under
// faults: a real mount over four real servers, one of which is killed
// (SIGKILL) or stopped (SIGSTOP) and brought back every 100-200 steps. Never
// more than one server is down, so every result must be what a local folder
// gives; the mount must hand every hint back within 30 s of each return.
// DFS_SEED replays the operations and the choice of servers (not the timing).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/mount.h"
#include "tests/support/random_ops.h"

namespace dfs::testing {
namespace {

using Clock = std::chrono::steady_clock;

// How long the mount skips a server that refused a connection, and how often
// it probes one that missed a deadline (client Options::backoff): a server
// that came back can look down to the mount for that long.
constexpr auto kMountBackoff = std::chrono::seconds(3);
// How long after a server's return its hints may still be on the others.
constexpr auto kHandOffLimit = std::chrono::seconds(30);

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Waits until no server holds a hint or `deadline` passes; the hints left.
std::vector<std::string> WaitForHandOff(const Cluster& cluster, Clock::time_point deadline) {
  std::vector<std::string> hints = cluster.HintFiles();
  while (!hints.empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    hints = cluster.HintFiles();
  }
  return hints;
}

// The last `n` lines of `text`.
std::string LastLines(const std::string& text, size_t n) {
  size_t start = text.size();
  if (start > 0 && text[start - 1] == '\n') --start;
  for (; n > 0 && start > 0; --n) {
    const size_t nl = text.rfind('\n', start - 1);
    if (nl == std::string::npos) return text;
    start = nl;
  }
  return text.substr(start == 0 ? 0 : start + 1);
}

// What a failed hand-off check prints: the hints left and the mount's log.
std::string HandOffFailure(const std::vector<std::string>& hints, const Mount& mount) {
  std::string out = "hints left:\n";
  for (const auto& h : hints) out += "  " + h + "\n";
  return out + "dfcfs log, last lines:\n" + LastLines(mount.Log(), 80);
}

// Takes one server at a time down and brings it back: each turn, every
// 100-200 steps, restarts the killed server or resumes the stopped one, or,
// when all run, kills or stops a random one. Before it takes one down, the
// last one back must be up as the mount sees it too (out of its back-off)
// and have every hint handed back (REQUIREd within kHandOffLimit): one
// server down at a time holds for the mount, not only for the processes.
// The destructor resumes a stopped server, so a test that fails midway
// leaves no process stopped.
class Chaos {
 public:
  Chaos(Cluster& cluster, const Mount& mount, uint64_t seed)
      : cluster_(cluster), mount_(mount), rng_(seed) {
    next_turn_ = NextGap();
  }
  ~Chaos() {
    if (down_ >= 0 && stopped_) cluster_.Resume(down_);
  }
  Chaos(const Chaos&) = delete;
  Chaos& operator=(const Chaos&) = delete;

  // For RunRandomOperations' between_steps.
  void BetweenSteps(int step) {
    if (step < next_turn_) return;
    if (down_ >= 0) {
      BringBack(step);
    } else {
      WaitUntilSettled(step);
      TakeDown(step);
    }
    next_turn_ = step + NextGap();
  }

  // Restarts or resumes the server that is down, if any.
  void BringBack(int step) {
    if (down_ < 0) return;
    if (stopped_)
      cluster_.Resume(down_);
    else
      cluster_.Restart(down_);
    Note(step, stopped_ ? "resume" : "restart");
    down_ = -1;
    returned_at_ = Clock::now();
  }

  // When the last server came back (the start, if none was down).
  Clock::time_point returned_at() const { return returned_at_; }
  // What happened so far, one "step N: kill DFSi" a line.
  const std::string& events() const { return events_; }
  int downs() const { return downs_; }

 private:
  int NextGap() { return 100 + static_cast<int>(rng_() % 101); }

  void WaitUntilSettled(int step) {
    const auto t0 = Clock::now();
    std::this_thread::sleep_until(returned_at_ + kMountBackoff + std::chrono::seconds(1));
    const auto hints = WaitForHandOff(cluster_, returned_at_ + kHandOffLimit);
    REQUIRE_MESSAGE(hints.empty(), "step " << step << ": not handed off 30 s after the return\n"
                                           << HandOffFailure(hints, mount_));
    events_ += "  step " + std::to_string(step) + ": waited " + std::to_string(SecondsSince(t0)) +
               " s for the hand-off\n";
  }

  void TakeDown(int step) {
    down_ = static_cast<int>(rng_() % static_cast<uint64_t>(cluster_.size()));
    stopped_ = rng_() % 2 == 0;
    if (stopped_)
      cluster_.Pause(down_);
    else
      cluster_.Kill(down_);
    Note(step, stopped_ ? "stop" : "kill");
    ++downs_;
  }

  void Note(int step, const char* what) {
    events_ +=
        "  step " + std::to_string(step) + ": " + what + " DFS" + std::to_string(down_ + 1) + "\n";
  }

  Cluster& cluster_;
  const Mount& mount_;
  std::mt19937_64 rng_;
  int next_turn_ = 0;
  int down_ = -1;         // the server that is down (0-based), or -1
  bool stopped_ = false;  // down_ is stopped (SIGSTOP), not killed
  Clock::time_point returned_at_ = Clock::now();
  int downs_ = 0;
  std::string events_;
};

TEST_CASE("random operations match a local folder while servers are killed and restarted") {
  RequireFuse();
  const uint64_t seed = RandomSeedFromEnv();
  const int steps = RandomStepsFromEnv(1500);
  MESSAGE("random operations with faults: DFS_SEED=", seed, " steps=", steps);
  Cluster cluster;
  TempDir local("dfcfs-chaos");
  const std::string conf = cluster.WriteClientConfig("Alice", "SimplePassword");
  Mount m(conf, local / "mnt");
  // Declared after the mount: a stopped server runs again before the unmount.
  Chaos chaos(cluster, m, seed ^ 0x9e3779b97f4a7c15ULL);
  INFO("servers taken down and brought back:\n", chaos.events());

  const auto t0 = Clock::now();
  const bool ok = RunRandomOperations(local / "ref", m.dir(), seed, steps,
                                      [&](int step) { chaos.BetweenSteps(step); });
  chaos.BringBack(steps);
  MESSAGE(steps << " steps with " << chaos.downs() << " servers taken down in " << SecondsSince(t0)
                << " s");
  if (!ok) {
    MESSAGE("dfcfs log, last lines:\n" << LastLines(m.Log(), 80));
    return;
  }

  // Every hint handed back to its server, by the mount alone.
  const auto hints = WaitForHandOff(cluster, chaos.returned_at() + kHandOffLimit);
  MESSAGE("hints handed off " << SecondsSince(chaos.returned_at())
                              << " s after the last server came back");
  CHECK_MESSAGE(hints.empty(), HandOffFailure(hints, m));

  // Everything the local folder has, the servers have, as a fresh mount sees it.
  Mount fresh(conf, local / "mnt-check");
  CheckSameFiles(local / "ref", fresh.dir());
  // Nothing of the test (e.g. a descriptor a restarted server inherited) keeps it busy.
  CHECK(m.Unmount() == 0);
}

}  // namespace
}  // namespace dfs::testing
