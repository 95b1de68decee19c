// Client::GetClusterStatus: what `dfc status` shows of the whole cluster.
#include <algorithm>
#include <chrono>
#include <set>

#include "fuse_client/client/client.h"
#include "shared/format/hint.h"
#include "shared/util/names.h"

namespace dfs::client {
namespace {

// Most hints counted per server (the count says "at least" beyond it).
constexpr size_t kMaxHintsCounted = 100000;

// Why a server did not answer, in a word or two.
std::string ReasonOf(const dfs::Status& s) {
  switch (s.code()) {
    case Code::kTimeout:
      return "timeout";
    case Code::kAuthFailed:
      return "auth failed";
    case Code::kUntrusted:
      return "key changed";
    default:
      break;
  }
  const std::string& m = s.message();
  if (m.find("refused") != std::string::npos) return "refused";
  if (m.find("back-off") != std::string::npos || m.find("backoff") != std::string::npos)
    return "not answering (retried shortly)";
  return s.ToString();
}

}  // namespace

int ClusterStatus::Severity() const {
  if (incomplete > 0) return 2;
  const bool all_up =
      std::all_of(servers.begin(), servers.end(), [](const ServerStatus& s) { return s.up; });
  return all_up && degraded == 0 && hints == 0 && !folders_unlisted ? 0 : 1;
}

Result<ClusterStatus> Client::GetClusterStatus() {
  ClusterStatus out;
  const int n = pool_->size();
  out.servers.resize(static_cast<size_t>(n));
  for (int s = 0; s < n; ++s) {
    const ServerAddress& a = config_.servers[static_cast<size_t>(s)];
    ServerStatus& st = out.servers[static_cast<size_t>(s)];
    st.name = a.name;
    st.address = (a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host) + ":" +
                 std::to_string(a.port);
  }

  // Each server: one StatFs, timed (a probe, so a server in back-off is asked too).
  auto asked = ForEachServer<StatFsReply>([&](int s) -> Result<StatFsReply> {
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s, /*probe=*/true));
    DFS_ASSIGN_OR_RETURN(StatFsReply r,
                         lease.Check(lease->Call<Empty, StatFsReply>(
                             MsgType::kStatFs, Empty{}, DeadlineIn(options_.request_timeout))));
    // The round trip of a ping on the open connection (no handshake in it).
    const auto t0 = std::chrono::steady_clock::now();
    DFS_RETURN_IF_ERROR(lease
                            .Check(lease->Call<Empty, Empty>(MsgType::kPing, Empty{},
                                                             DeadlineIn(options_.request_timeout)))
                            .status());
    out.servers[static_cast<size_t>(s)].rtt_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return r;
  });
  for (int s = 0; s < n; ++s) {
    ServerStatus& st = out.servers[static_cast<size_t>(s)];
    const auto& r = asked[static_cast<size_t>(s)];
    if (!r.ok()) {
      st.reason = ReasonOf(r.status());
      st.rtt_ms = 0;
      continue;
    }
    st.up = true;
    st.version = r->version;
    st.total_bytes = r->total_bytes;
    st.avail_bytes = r->avail_bytes;
  }
  if (std::none_of(out.servers.begin(), out.servers.end(),
                   [](const ServerStatus& s) { return s.up; }))
    return out;  // nothing more to learn

  // Hints: for each server, the changes it missed, kept by the others
  // (each hint is stored twice: counted once, by its id).
  for (int target = 0; target < n; ++target) {
    auto listed = ForEachServer<std::vector<Hint>>([&](int s) -> Result<std::vector<Hint>> {
      if (s == target || !out.servers[static_cast<size_t>(s)].up) return std::vector<Hint>{};
      return ListHintsOn(s, pool_->name(target), kMaxHintsCounted);
    });
    std::set<std::string> all;
    for (const auto& hints : listed)
      if (hints.ok())
        for (const Hint& h : *hints) all.insert(HintId(h));
    out.servers[static_cast<size_t>(target)].hints_for = all.size();
    out.hints += all.size();
  }

  // Every file: complete, degraded or incomplete, and the bytes each server holds.
  std::vector<std::string> folders = {""};
  while (!folders.empty()) {
    const std::string dir = std::move(folders.back());
    folders.pop_back();
    auto listing = List(dir);
    if (!listing.ok()) {
      out.folders_unlisted = true;
      continue;
    }
    for (const Entry& e : listing->entries) {
      if (e.is_dir) {
        ++out.folders;
        folders.push_back(JoinName(dir, e.name));
        continue;
      }
      ++out.files;
      const FileVersion& v = e.file;
      if (!v.complete()) {
        ++out.incomplete;
        continue;
      }
      bool degraded = false;
      for (int k = 1; k <= v.pieces(); ++k) {
        const auto& holders = v.holders[static_cast<size_t>(k - 1)];
        if (static_cast<int>(holders.size()) < v.newest.copies) degraded = true;
        const uint64_t bytes = kPieceHeaderBytes +
                               SealedSize(PieceSize(v.size(), v.pieces(), k), v.newest.chunk_bytes);
        for (int s : holders) out.servers[static_cast<size_t>(s)].user_bytes += bytes;
      }
      if (degraded) ++out.degraded;
    }
  }
  return out;
}

}  // namespace dfs::client
