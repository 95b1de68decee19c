// Hinted handoff (DESIGN.md "Versions"): while a server is unreachable, a
// change it misses leaves a hint on two live servers (and, for a put, its
// pieces on substitute servers: transfer.cc); once it answers again, a
// running client brings each hinted path up to date on it and drops the
// hints. Hints only say where to look: what a path's newest version is
// always comes from its verified records (heal.cc HealFile).
#include <algorithm>

#include "fuse_client/client/client.h"
#include "shared/format/hint.h"
#include "shared/util/log.h"
#include "shared/util/names.h"

namespace dfs::client {
namespace {

spdlog::logger& Log() {
  static const std::shared_ptr<spdlog::logger> logger = Logger("repair");
  return *logger;
}

// Hints read from one server in one handoff round; the rest wait for the next.
constexpr size_t kMaxHintsPerRound = 20000;

// Folder depth of a path: "a" 0, "a/b" 1.
size_t Depth(const std::string& path) {
  return static_cast<size_t>(std::count(path.begin(), path.end(), '/'));
}

}  // namespace

void Client::AddHints(int target, const std::string& path, const Stamp& stamp) {
  repair_stats_.hints_written.fetch_add(1, std::memory_order_relaxed);
  const Hint hint = MakeHint(keys_.record, pool_->name(target), path, stamp);
  const int n = pool_->size();
  int stored = 0;
  std::string why;
  for (int i = 1; i < n && stored < scheme_.copies; ++i) {
    const int s = (target + i) % n;
    if (!pool_->MaybeUp(s)) continue;
    Status st = [&]() -> Status {
      DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
      return lease
          .Check(lease->Call<Hint, Empty>(MsgType::kHintAdd, hint,
                                          DeadlineIn(options_.request_timeout)))
          .status();
    }();
    if (st.ok()) {
      ++stored;
    } else {
      why += (why.empty() ? "" : "; ") + st.Annotate(pool_->name(s)).message();
    }
  }
  if (stored == 0) {
    Log().warn(
        "{} missed the change of {} and no server could keep a hint of it ({}): run dfc "
        "heal once it is back",
        pool_->name(target), Escaped(path), why);
  } else {
    Log().debug("hint: {} missed {} (kept on {} server(s))", pool_->name(target), Escaped(path),
                stored);
  }
  {
    MutexLock lock(&handoff_mu_);
    ++hinted_[target];
  }
  handoff_cv_.SignalAll();
}

Result<std::vector<Hint>> Client::ListHintsOn(int server, const std::string& target_name,
                                              size_t max) {
  std::vector<Hint> out;
  DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(server));
  HintListRequest req{target_name, ""};
  for (;;) {
    DFS_ASSIGN_OR_RETURN(HintListReply page,
                         lease.Check(lease->Call<HintListRequest, HintListReply>(
                             MsgType::kHintList, req, DeadlineIn(options_.request_timeout))));
    for (Hint& h : page.hints) out.push_back(std::move(h));
    if (!page.more || page.hints.empty() || out.size() >= max) return out;
    req.after = HintId(out.back());
  }
}

Result<int> Client::HandOff(int target, HealReport* report) {
  {
    // Is it back? (Also ends its back-off when it is.)
    DFS_ASSIGN_OR_RETURN(Lease probe, pool_->Acquire(target, /*probe=*/true));
  }
  const std::string& target_name = pool_->name(target);
  auto listed = ForEachServer<std::vector<Hint>>([&](int s) -> Result<std::vector<Hint>> {
    if (s == target) return std::vector<Hint>{};
    return ListHintsOn(s, target_name, kMaxHintsPerRound);
  });
  // Every copy of the hints of each path, by path.
  std::map<std::string, std::vector<std::pair<int, Hint>>> by_path;
  for (int s = 0; s < pool_->size(); ++s) {
    if (!listed[s].ok()) {
      // Its hints wait for the next round: the target stays pending.
      if (s != target) ++report->hints_pending;
      continue;
    }
    for (Hint& h : *listed[s]) {
      if (h.target != target_name || !ValidateHint(h).ok() || !VerifyHint(keys_.record, h)) {
        WarnOnce(s, h.path, "kept a hint that failed authentication");
        continue;
      }
      by_path[h.path].emplace_back(s, std::move(h));
    }
  }
  // Deepest first: what was in a folder settles before the folder.
  std::vector<const std::string*> order;
  order.reserve(by_path.size());
  for (const auto& entry : by_path) order.push_back(&entry.first);
  std::stable_sort(order.begin(), order.end(), [](const std::string* a, const std::string* b) {
    return Depth(*a) > Depth(*b);
  });
  int settled_paths = 0;
  for (const std::string* path : order) {
    bool settled = true;
    Status st = SettlePath(target, *path, report, &settled);
    if (!st.ok()) {
      report->notes.push_back(Escaped(*path) + " on " + target_name + ": " + st.ToString());
      if (IsNetworkFailure(st) && !pool_->MaybeUp(target)) {
        report->hints_pending += static_cast<int>(order.size()) - settled_paths;
        return st;  // it went away again
      }
      settled = false;
    }
    if (!settled) {
      ++report->hints_pending;
      continue;
    }
    for (const auto& [server, hint] : by_path[*path]) {
      auto lease = pool_->Acquire(server);
      if (!lease.ok()) continue;  // dropped in a later round (settling again is harmless)
      (void)lease->Check(lease.value()->Call<Hint, Empty>(MsgType::kHintDrop, hint,
                                                          DeadlineIn(options_.request_timeout)));
    }
    ++settled_paths;
  }
  report->hints_handed_off += settled_paths;
  return settled_paths;
}

Status Client::SettlePath(int target, const std::string& path, HealReport* report, bool* settled) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  auto results = StatEach(p.dir, p.name, /*probe=*/target);
  if (!results[target].ok() && IsNetworkFailure(results[target].status()))
    return results[target].status();
  // What the servers that did not miss the change say.
  int others = 0;
  bool others_dir = false;
  bool others_hold = false;
  bool all_up = true;
  NameRecords slot;
  std::vector<Observed> seen;
  for (int s = 0; s < pool_->size(); ++s) {
    const auto& r = results[static_cast<size_t>(s)];
    if (!r.ok()) {
      if (IsNetworkFailure(r.status())) {
        all_up = false;
        continue;
      }
      const Code c = r.status().code();
      if (c != Code::kNotFound && c != Code::kNotDir) return r.status().Annotate(pool_->name(s));
      if (s != target) ++others;
      continue;
    }
    if (s != target) {
      ++others;
      others_dir = others_dir || r->is_dir;
      others_hold = others_hold || !r->pieces.empty();
    }
    if (r->is_dir) slot.dir_on.push_back(s);
    for (const PieceHeader& h : r->pieces) {
      if (!h.folder())
        seen.push_back({s, h});
      else if (CheckFolderRecord(h, keys_.record, path) == RecordCheck::kAccepted)
        KeepNewest(&slot.folder, h);
    }
  }
  if (others == 0) {
    *settled = false;  // nobody to learn the change from now
    return Status::Ok();
  }
  const bool target_dir = results[target].ok() && results[target]->is_dir;
  if (others_dir) {
    // Made (or its attributes changed) while the target was down.
    if (slot.folder) {
      DFS_RETURN_IF_ERROR(EnsureDirOn(target, p.dir));
      return SendFolderRecord(target, path, *slot.folder, /*create=*/true);
    }
    if (!target_dir) DFS_RETURN_IF_ERROR(EnsureDirOn(target, path));
    return Status::Ok();
  }
  if (target_dir) {
    // Removed while the target was down; what was in it settled first
    // (deepest first). A subfolder still there waits for the next round.
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(target));
    auto r = lease.Check(lease->Call<PathRequest, Empty>(MsgType::kRmdir, PathRequest{path},
                                                         DeadlineIn(options_.request_timeout)));
    if (!r.ok()) {
      if (r.status().code() != Code::kNotEmpty) return r.status();
      *settled = false;
      return Status::Ok();
    }
    ++report->stale_removed;
  }
  if (seen.empty()) return Status::Ok();  // nothing of the name anywhere
  if (!others_hold && !p.dir.empty()) {
    // Only the target holds records of this file. If the others lack its
    // folder, the folder was removed while the target was down: its own
    // hint settles it (never copy these records back out).
    bool folder_elsewhere = false;
    DFS_ASSIGN_OR_RETURN(ParentAndName parent, SplitParent(p.dir));
    for (const auto& r : StatEach(parent.dir, parent.name, /*probe=*/-1, /*skip=*/target))
      folder_elsewhere = folder_elsewhere || (r.ok() && r->is_dir);
    if (!folder_elsewhere) return Status::Ok();
  }
  if (others_hold && !p.dir.empty() && !results[target].ok())
    DFS_RETURN_IF_ERROR(EnsureDirOn(target, p.dir));  // it may lack the folder too
  ScreenedRecords screened = Screen(p.dir, p.name, std::move(seen));
  slot.headers = std::move(screened.accepted);
  slot.rejected = std::move(screened.rejected);
  FileVersion after;
  bool healed = true;
  DFS_RETURN_IF_ERROR(HealFile(p.dir, p.name, slot, all_up, report, &healed, &after));
  if (!healed) *settled = false;
  if (after.exists) {
    // The target holds each of its pieces now.
    const Scheme sc{after.newest.servers, after.newest.copies, after.newest.scheme};
    for (int k : PiecesOnServer(sc, after.newest.x, target + 1)) {
      const auto& holders = after.holders[static_cast<size_t>(k - 1)];
      if (!holders.contains(target)) *settled = false;
    }
  }
  return Status::Ok();
}

void Client::StartHandOffThread() {
  MutexLock lock(&handoff_mu_);
  if (handoff_thread_.joinable() || handoff_stop_) return;
  handoff_thread_ = std::thread([this] { HandOffLoop(); });
}

bool Client::HandOffStopping() {
  MutexLock lock(&handoff_mu_);
  return handoff_stop_;
}

void Client::HandOffLoop() {
  using Clock = std::chrono::steady_clock;
  // The first scan for hints other clients left comes soon after start.
  Clock::time_point scan_at = Clock::now() + std::chrono::seconds(5);
  Clock::time_point last_round = Clock::now();
  for (;;) {
    std::map<int, uint64_t> hinted;
    {
      MutexLock lock(&handoff_mu_);
      for (;;) {
        if (handoff_stop_) return;
        const Clock::time_point when =
            hinted_.empty() ? scan_at : std::min(scan_at, last_round + kHandOffPoll);
        if (Clock::now() >= when) break;
        (void)handoff_cv_.WaitUntil(&handoff_mu_, when);
      }
      hinted = hinted_;
    }
    const Clock::time_point now = Clock::now();
    last_round = now;
    std::vector<int> targets;
    if (now >= scan_at) {
      scan_at = now + kHandOffScan;
      for (int s = 0; s < pool_->size(); ++s) targets.push_back(s);
    } else {
      for (const auto& entry : hinted) targets.push_back(entry.first);
    }
    for (int target : targets) {
      if (HandOffStopping()) return;
      HealReport report;
      auto done = HandOff(target, &report);
      if (done.ok() && *done > 0) {
        repair_stats_.paths_handed_off.fetch_add(static_cast<uint64_t>(*done),
                                                 std::memory_order_relaxed);
        repair_stats_.pieces_handed_off.fetch_add(static_cast<uint64_t>(report.pieces_copied),
                                                  std::memory_order_relaxed);
        Log().warn(
            "handed off {} change(s) that {} missed: {} piece(s) copied, {} stale "
            "cop(ies) removed, {} extra cop(ies) dropped",
            *done, pool_->name(target), report.pieces_copied, report.stale_removed,
            report.extra_removed);
      }
      for (const std::string& note : report.notes) Log().info("handoff: {}", EscapeControl(note));
      if (!done.ok() || report.hints_pending > 0) continue;
      MutexLock lock(&handoff_mu_);
      auto it = hinted_.find(target);
      const auto seen = hinted.find(target);
      // Unless a hint for it was written meanwhile, nothing is pending.
      if (it != hinted_.end() && seen != hinted.end() && it->second == seen->second)
        hinted_.erase(it);
    }
  }
}

}  // namespace dfs::client
