// Client: metadata operations (list, stat, mkdir, rmdir, unlink, rename,
// attributes, statfs, describe). Transfers live in transfer.cc, repair in heal.cc.
#include "fuse_client/client/client.h"

#include <algorithm>
#include <map>

#include "shared/protocol/auth.h"
#include "shared/util/log.h"
#include "shared/util/names.h"

namespace dfs::client {
namespace {

// Summarizes why no server could do something: "DFS1: ...; DFS2: ...".
std::string JoinErrors(const std::vector<std::pair<std::string, Status>>& errors) {
  std::string out;
  for (const auto& [name, s] : errors) {
    if (!out.empty()) out += "; ";
    out += s.message().rfind(name, 0) == 0 ? s.message() : name + ": " + s.message();
  }
  return out;
}

}  // namespace

Client::Client(ClientConfig config, Options options)
    : config_(std::move(config)), options_(options) {
  scheme_.servers = static_cast<int>(config_.servers.size());
  scheme_.copies = std::min(2, scheme_.servers);
  keys_ = DeriveUserKeys(config_.username, config_.password);
  pool_ = std::make_unique<ServerPool>(config_.servers, config_.username, keys_.auth, options_);
}

Client::~Client() = default;

// Collects the outcome of a fan-out: the first authentication failure wins;
// otherwise, when no server answered, kUnavailable naming each server's error.
template <typename T>
static Status FanOutStatus(ServerPool& pool, const std::vector<Result<T>>& results, int* answered) {
  std::vector<std::pair<std::string, Status>> errors;
  *answered = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const Status& s = results[i].status();
    if (s.code() == Code::kAuthFailed) return Status::AuthFailed(kAuthFailedMessage);
    if (results[i].ok() || !IsNetworkFailure(s))
      ++*answered;
    else
      errors.emplace_back(pool.name(static_cast<int>(i)), s);
  }
  if (*answered == 0)
    return Status::Unavailable("no server is reachable (" + JoinErrors(errors) + ")");
  return Status::Ok();
}

Status Client::Ping() {
  auto results = ForEachServer<Empty>([&](int s) -> Result<Empty> {
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
    return lease.Check(
        lease->Call<Empty, Empty>(MsgType::kPing, Empty{}, DeadlineIn(options_.request_timeout)));
  });
  int answered = 0;
  return FanOutStatus(*pool_, results, &answered);
}

Result<RawListing> Client::ListRaw(const std::string& dir) {
  using Entries = std::vector<ListEntry>;
  const std::vector<bool> skipped = pool_->InBackoff();
  bool probing = false;
  auto list_on = [&](int s) -> Result<Entries> {
    if (probing && !skipped[s]) return Status::Unavailable("not probed");
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s, probing));
    const Deadline deadline = DeadlineIn(options_.request_timeout);
    ListRequest req{dir};
    DFS_RETURN_IF_ERROR(lease.Check(lease->Send(MsgType::kList, EncodeMessage(req), deadline)));
    Entries all;
    for (;;) {
      Frame f;
      DFS_RETURN_IF_ERROR(lease.Check(lease->Recv(&f, deadline)));
      DFS_ASSIGN_OR_RETURN(ListReply reply, lease.Check(ParseReply<ListReply>(f)));
      for (auto& e : reply.entries) all.push_back(std::move(e));
      if (!reply.more) return all;
    }
  };
  auto results = ForEachServer<Entries>(list_on);
  // Servers skipped for back-off may be back: ask them when otherwise some
  // file would look incomplete.
  if (std::find(skipped.begin(), skipped.end(), true) != skipped.end()) {
    std::map<std::string, std::vector<Observed>> files;
    for (size_t i = 0; i < results.size(); ++i)
      if (results[i].ok())
        for (const auto& e : *results[i])
          if (!e.is_dir) files[e.name].push_back({static_cast<int>(i), e.header});
    bool incomplete = false;
    for (const auto& [name, seen] : files) {
      FileVersion v = Resolve(dir, name, seen);
      if (v.exists && !v.complete()) incomplete = true;
    }
    if (incomplete) {
      probing = true;
      auto again = ForEachServer<Entries>(list_on);
      for (size_t i = 0; i < again.size(); ++i)
        if (skipped[i]) results[i] = std::move(again[i]);
    }
  }
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));

  RawListing raw;
  int found = 0;
  Status first_error;
  for (size_t i = 0; i < results.size(); ++i) {
    const int server = static_cast<int>(i);
    if (!results[i].ok()) {
      if (IsNetworkFailure(results[i].status()))
        raw.unreachable.push_back(server);
      else if (first_error.ok())
        first_error = results[i].status();
      continue;
    }
    ++found;
    for (auto& e : *results[i]) {
      auto& slot = raw.names[e.name];
      if (e.is_dir)
        slot.dir_on.push_back(server);
      else
        slot.headers.push_back({server, e.header});
    }
  }
  if (found == 0)
    return first_error.ok() ? Status::NotFound("no such folder '" + dir + "'") : first_error;
  return raw;
}

Result<Listing> Client::List(std::string_view dir_in) {
  DFS_ASSIGN_OR_RETURN(std::string dir, NormalizeDir(dir_in));
  DFS_ASSIGN_OR_RETURN(RawListing raw, ListRaw(dir));
  Listing listing;
  listing.unreachable = std::move(raw.unreachable);
  for (auto& [name, slot] : raw.names) {
    Entry e;
    e.name = name;
    if (!slot.dir_on.empty()) {
      e.is_dir = true;
    } else {
      e.file = Resolve(dir, name, slot.headers);
      if (!e.file.exists) continue;
    }
    listing.entries.push_back(std::move(e));
  }
  return listing;
}

Result<Entry> Client::Stat(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) {
    Entry root;
    root.is_dir = true;
    return root;
  }
  return StatIn(p.dir, p.name);
}

Result<Entry> Client::StatIn(const std::string& dir, const std::string& name) {
  const std::vector<bool> skipped = pool_->InBackoff();
  bool probing = false;
  auto stat_on = [&](int s) -> Result<StatReply> {
    if (probing && !skipped[s]) return Status::Unavailable("not probed");
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s, probing));
    return lease.Check(lease->Call<StatRequest, StatReply>(MsgType::kStat, StatRequest{dir, name},
                                                           DeadlineIn(options_.request_timeout)));
  };
  auto results = ForEachServer<StatReply>(stat_on);
  auto resolve = [&]() -> Result<Entry> {
    int answered = 0;
    DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
    Entry e;
    e.name = name;
    std::vector<Observed> seen;
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) {
        Code c = results[i].status().code();
        // A server that lacks the parent folder simply holds nothing of it.
        if (c != Code::kNotFound && c != Code::kNotDir && !IsNetworkFailure(results[i].status()))
          return results[i].status();
        continue;
      }
      if (results[i]->is_dir) e.is_dir = true;
      for (const auto& h : results[i]->pieces) seen.push_back({static_cast<int>(i), h});
    }
    if (e.is_dir) return e;
    e.file = Resolve(dir, name, seen);
    if (!e.file.exists)
      return Status::NotFound("no such file or folder '" + JoinName(dir, name) + "'");
    return e;
  };
  auto entry = resolve();
  // A server skipped for back-off may be back and hold what is missing.
  const bool any_skipped = std::find(skipped.begin(), skipped.end(), true) != skipped.end();
  if (any_skipped &&
      (entry.ok() ? !entry->is_dir && !entry->file.complete() : IsNetworkFailure(entry.status()))) {
    probing = true;
    auto again = ForEachServer<StatReply>(stat_on);
    for (size_t i = 0; i < again.size(); ++i)
      if (skipped[i]) results[i] = std::move(again[i]);
    entry = resolve();
  }
  return entry;
}

Status Client::EnsureDirOn(int server, const std::string& dir) {
  DFS_ASSIGN_OR_RETURN(auto parts, SplitPath(dir));
  DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(server));
  std::string prefix;
  for (const auto& part : parts) {
    prefix = JoinName(prefix, part);
    auto r = lease.Check(lease->Call<PathRequest, Empty>(MsgType::kMkdir, PathRequest{prefix},
                                                         DeadlineIn(options_.request_timeout)));
    if (!r.ok() && r.status().code() != Code::kExists) return r.status();
  }
  return Status::Ok();
}

Status Client::Mkdir(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::Exists("the root folder exists");
  const std::string full = JoinName(p.dir, p.name);
  auto existing = StatIn(p.dir, p.name);
  if (existing.ok()) return Status::Exists("'" + full + "' already exists");
  if (existing.status().code() != Code::kNotFound) return existing.status();
  if (!p.dir.empty()) {
    DFS_ASSIGN_OR_RETURN(Entry parent, Stat(p.dir));
    if (!parent.is_dir) return Status::NotDir("'" + p.dir + "' is not a folder");
  }
  auto results = ForEachServer<Empty>([&](int s) -> Result<Empty> {
    Status st = EnsureDirOn(s, full);
    if (!st.ok()) return st;
    return Empty{};
  });
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
  for (const auto& r : results)
    if (r.ok()) return Status::Ok();
  for (const auto& r : results)
    if (!IsNetworkFailure(r.status())) return r.status();
  return results.front().status();
}

Status Client::Rmdir(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::Invalid("cannot remove the root folder");
  const std::string full = JoinName(p.dir, p.name);
  DFS_ASSIGN_OR_RETURN(Entry e, StatIn(p.dir, p.name));
  if (!e.is_dir) return Status::NotDir("'" + full + "' is not a folder");
  DFS_ASSIGN_OR_RETURN(Listing l, List(full));
  if (!l.entries.empty()) return Status::NotEmpty("folder '" + full + "' is not empty");
  auto results = ForEachServer<Empty>([&](int s) -> Result<Empty> {
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
    return lease.Check(lease->Call<PathRequest, Empty>(MsgType::kRmdir, PathRequest{full},
                                                       DeadlineIn(options_.request_timeout)));
  });
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
  for (const auto& r : results)
    if (!r.ok() && !IsNetworkFailure(r.status()) && r.status().code() != Code::kNotFound)
      return r.status();
  return Status::Ok();
}

// Sends one request to every server; succeeds when at least one server did
// it and no reachable server refused it.
template <typename Req>
static Status Broadcast(Client& c, MsgType type, const Req& req, Millis timeout,
                        const std::function<bool(const Status&)>& ignorable = nullptr) {
  auto results = c.ForEachServer<Empty>([&](int s) -> Result<Empty> {
    DFS_ASSIGN_OR_RETURN(Lease lease, c.pool().Acquire(s));
    return lease.Check(lease->Call<Req, Empty>(type, req, DeadlineIn(timeout)));
  });
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(c.pool(), results, &answered));
  bool any_ok = false;
  for (const auto& r : results) {
    if (r.ok()) {
      any_ok = true;
    } else if (!IsNetworkFailure(r.status()) && !(ignorable && ignorable(r.status()))) {
      return r.status();
    }
  }
  if (!any_ok) return Status::Unavailable("no server completed the request");
  return Status::Ok();
}

Status Client::Unlink(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::IsDir("cannot remove the root folder");
  DFS_ASSIGN_OR_RETURN(Entry e, StatIn(p.dir, p.name));
  if (e.is_dir) return Status::IsDir("'" + JoinName(p.dir, p.name) + "' is a folder");
  DeleteRequest req{p.dir, p.name, Stamp::Now()};
  // A server lacking the folder holds nothing to delete.
  return Broadcast(*this, MsgType::kDelete, req, options_.request_timeout,
                   [](const Status& s) { return s.code() == Code::kNotFound; });
}

Status Client::Rename(std::string_view from, std::string_view to) {
  DFS_ASSIGN_OR_RETURN(ParentAndName src, SplitParent(from));
  DFS_ASSIGN_OR_RETURN(ParentAndName dst, SplitParent(to));
  if (src.name.empty() || dst.name.empty()) return Status::Invalid("cannot rename the root folder");
  const std::string src_full = JoinName(src.dir, src.name);
  const std::string dst_full = JoinName(dst.dir, dst.name);
  DFS_ASSIGN_OR_RETURN(Entry s, StatIn(src.dir, src.name));
  if (src_full == dst_full) return Status::Ok();
  if (!dst.dir.empty()) {
    DFS_ASSIGN_OR_RETURN(Entry parent, Stat(dst.dir));
    if (!parent.is_dir) return Status::NotDir("'" + dst.dir + "' is not a folder");
  }
  auto d = StatIn(dst.dir, dst.name);
  if (!d.ok() && d.status().code() != Code::kNotFound) return d.status();
  if (s.is_dir) {
    if (dst_full.rfind(src_full + "/", 0) == 0)
      return Status::Invalid("cannot move a folder into itself");
    if (d.ok()) {
      if (!d->is_dir) return Status::NotDir("'" + dst_full + "' is not a folder");
      DFS_RETURN_IF_ERROR(Rmdir(dst_full));  // kNotEmpty unless empty
    }
    return Broadcast(*this, MsgType::kRenameDir, RenameDirRequest{src_full, dst_full},
                     options_.request_timeout,
                     [](const Status& st) { return st.code() == Code::kNotFound; });
  }
  if (d.ok() && d->is_dir) return Status::IsDir("'" + dst_full + "' is a folder");
  RenameRequest req{src.dir, src.name, dst.dir, dst.name, s.file.newest.cid, Stamp::Now()};
  auto results = ForEachServer<Empty>([&](int sv) -> Result<Empty> {
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(sv));
    auto r = lease.Check(lease->Call<RenameRequest, Empty>(MsgType::kRename, req,
                                                           DeadlineIn(options_.request_timeout)));
    if (!r.ok() && r.status().code() == Code::kNotFound) {
      // This server lacks one of the folders (it was down when they were made).
      DFS_RETURN_IF_ERROR(EnsureDirOn(sv, dst.dir));
      DFS_RETURN_IF_ERROR(EnsureDirOn(sv, src.dir));
      r = lease.Check(lease->Call<RenameRequest, Empty>(MsgType::kRename, req,
                                                        DeadlineIn(options_.request_timeout)));
    }
    return r;
  });
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
  for (const auto& r : results)
    if (!r.ok() && !IsNetworkFailure(r.status())) return r.status();
  return Status::Ok();
}

Status Client::SetAttr(std::string_view path, std::optional<uint32_t> mode,
                       std::optional<int64_t> mtime_ns) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::Ok();
  DFS_ASSIGN_OR_RETURN(Entry e, StatIn(p.dir, p.name));
  if (e.is_dir) return Status::Ok();  // folders have no stored attributes
  SetAttrRequest req;
  req.dir = p.dir;
  req.name = p.name;
  req.cid = e.file.newest.cid;
  req.stamp = Stamp::Now();
  req.set_mode = mode.has_value();
  req.mode = mode.value_or(0) & 07777;
  req.set_mtime = mtime_ns.has_value();
  req.mtime_ns = mtime_ns.value_or(0);
  return Broadcast(*this, MsgType::kSetAttr, req, options_.request_timeout,
                   [](const Status& s) { return s.code() == Code::kNotFound; });
}

Result<FsStats> Client::StatFs() {
  auto results = ForEachServer<StatFsReply>([&](int s) -> Result<StatFsReply> {
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
    return lease.Check(lease->Call<Empty, StatFsReply>(MsgType::kStatFs, Empty{},
                                                       DeadlineIn(options_.request_timeout)));
  });
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
  FsStats st;
  for (const auto& r : results) {
    if (!r.ok()) continue;
    ++st.servers_up;
    st.total_bytes += r->total_bytes;
    st.free_bytes += r->free_bytes;
    st.avail_bytes += r->avail_bytes;
  }
  const uint64_t copies = static_cast<uint64_t>(scheme_.copies);
  st.total_bytes /= copies;
  st.free_bytes /= copies;
  st.avail_bytes /= copies;
  return st;
}

Result<std::string> Client::Describe(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(Entry e, Stat(path));
  if (e.is_dir) return std::string("folder");
  const FileVersion& v = e.file;
  Scheme sc{v.newest.servers, v.newest.copies, v.newest.scheme};
  std::string out = v.complete() ? "complete" : "incomplete";
  out += ": " + std::to_string(v.size()) + " bytes, " + std::to_string(v.pieces()) + " pieces";
  for (int k = 1; k <= v.pieces(); ++k) {
    out += "; piece " + std::to_string(k) + ": ";
    const auto& holders = v.holders[static_cast<size_t>(k - 1)];
    if (holders.empty()) {
      out += "MISSING (expected on";
      for (int s : ServersForPiece(sc, v.newest.x, k)) {
        std::string name = s - 1 < pool_->size() ? pool_->name(s - 1) : "DFS" + std::to_string(s);
        out += " " + name + (pool_->MaybeUp(s - 1) ? "" : " [down]");
      }
      out += ")";
      continue;
    }
    for (size_t i = 0; i < holders.size(); ++i) out += (i ? ", " : "") + pool_->name(holders[i]);
  }
  return out;
}

}  // namespace dfs::client
