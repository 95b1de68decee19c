// Client: metadata operations (list, stat, mkdir, rmdir, unlink, rename,
// attributes, statfs, describe). Transfers live in transfer.cc, repair in heal.cc.
#include "fuse_client/client/client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
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
  pool_ = std::make_unique<ServerPool>(config_, keys_.auth, options_);
  // Enough for a few fan-outs at once; a fan-out that finds every worker
  // busy runs its remaining tasks on the calling thread (work_pool.h).
  workers_ = std::make_unique<WorkPool>(std::max(8, 4 * scheme_.servers));
}

Client::~Client() {
  {
    MutexLock lock(&handoff_mu_);
    handoff_stop_ = true;
  }
  handoff_cv_.SignalAll();
  if (handoff_thread_.joinable()) handoff_thread_.join();
}

// Collects the outcome of a fan-out: the first authentication failure (exactly
// kAuthFailedMessage) or untrusted server key (its message intact: it names
// the server and both fingerprints) wins; otherwise, when no server answered,
// kUnavailable naming each server's error.
template <typename T>
static Status FanOutStatus(ServerPool& pool, const std::vector<Result<T>>& results, int* answered) {
  std::vector<std::pair<std::string, Status>> errors;
  *answered = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const Status& s = results[i].status();
    if (s.code() == Code::kAuthFailed) return Status::AuthFailed(kAuthFailedMessage);
    if (s.code() == Code::kUntrusted) return s;
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

Status Client::StreamListing(const std::string& dir, const NameSink& sink,
                             const std::function<void()>& restart, std::vector<int>* unreachable,
                             std::vector<bool>* failed) {
  const std::vector<bool> skipped = pool_->InBackoff();
  const bool any_skipped = std::find(skipped.begin(), skipped.end(), true) != skipped.end();
  // One listing from every server (probing those skipped for back-off when
  // `probing`; otherwise Acquire() refuses them at once), merged into `sink`
  // as it streams in.
  auto pass = [&](bool probing, bool* incomplete) {
    ListMerge merge(pool_->size(), kMaxListBytes, [&](std::string&& name, NameRecords&& records) {
      ReportRejected(dir, name, records.rejected);
      if (any_skipped && !probing && records.dir_on.empty() && !records.headers.empty()) {
        FileVersion v = Resolve(dir, name, records.headers);
        if (v.exists && !v.complete()) *incomplete = true;
      }
      sink(std::move(name), std::move(records));
    });
    auto list_on = [&](int s) -> Result<Empty> {
      DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s, probing && skipped[s]));
      ListRequest req{dir};
      DFS_RETURN_IF_ERROR(lease.Check(
          lease->Send(MsgType::kList, EncodeMessage(req), DeadlineIn(options_.request_timeout))));
      // A big folder takes a while (a server reads every piece header): the
      // deadline moves with progress, one listing frame's worth at a time.
      ProgressDeadline progress(options_.request_timeout, kListProgressBytes);
      size_t received = 0;
      size_t rejected_kept = 0;
      for (;;) {
        Frame f;
        DFS_RETURN_IF_ERROR(lease.Check(lease->Recv(&f, progress.get())));
        progress.Add(f.body.size());
        DFS_ASSIGN_OR_RETURN(ListReply reply, lease.Check(ParseReply<ListReply>(f)));
        if (reply.entries.size() > kMaxListEntries - received)
          return lease.Check(Status::Protocol(pool_->name(s) + ": listing exceeds " +
                                              std::to_string(kMaxListEntries) + " entries"));
        received += reply.entries.size();
        std::vector<ListMerge::Record> batch;
        batch.reserve(reply.entries.size());
        for (auto& e : reply.entries) {
          if (!ValidateName(e.name).ok()) {
            WarnOnce(s, JoinName(dir, e.name), "listed an invalid name");
            continue;
          }
          // Only a bounded number of failed records is kept (for reports and
          // heal), so a server sending forged records costs memory for the
          // genuine ones alone.
          RecordCheck check = RecordCheck::kAccepted;
          if (!e.is_dir)
            check = e.header.folder()
                        ? CheckFolderRecord(e.header, keys_.record, JoinName(dir, e.name))
                        : CheckRecord(e.header, keys_.record, JoinName(dir, e.name), scheme_);
          if (check != RecordCheck::kAccepted && ++rejected_kept > kMaxRejectedKept) continue;
          batch.push_back({std::move(e), check});
        }
        if (Status added = merge.Add(s, std::move(batch)); !added.ok())
          return lease.Check(Status::Protocol(pool_->name(s) + ": " + added.message()));
        if (!reply.more) return Empty{};
      }
    };
    return ForEachServer<Empty>([&](int s) -> Result<Empty> {
      Result<Empty> r = list_on(s);
      merge.Finish(s);
      return r;
    });
  };
  bool incomplete = false;
  auto results = pass(false, &incomplete);
  // Servers skipped for back-off may be back: ask them when otherwise some
  // file would look incomplete.
  if (incomplete) {
    restart();
    results = pass(true, &incomplete);
  }
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
  int found = 0;
  Status first_error;
  failed->assign(results.size(), false);
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) (*failed)[i] = true;
    if (results[i].ok()) {
      ++found;
    } else if (IsNetworkFailure(results[i].status())) {
      unreachable->push_back(static_cast<int>(i));
    } else if (first_error.ok()) {
      first_error = results[i].status();
    }
  }
  if (found == 0)
    return first_error.ok() ? Status::NotFound("no such folder " + Escaped(dir)) : first_error;
  return Status::Ok();
}

// Whether a folder that `have` of the `answered` servers hold stands.
// Folders carry no versions yet: a folder at least half of the servers that
// answered hold stands; one fewer hold is a folder removed while those few
// were down (it does not come back), or one made while most servers were
// down (it appears once hints make it on the others).
static bool FolderStands(size_t have, size_t answered) { return have > 0 && 2 * have >= answered; }

// Whether a folder of this name stands once the servers that failed midway
// are left out (see StreamListing; they are dropped from dir_on) and the
// majority of those that answered is asked (FolderStands).
static bool KeepFolder(std::vector<int>* dir_on, const std::vector<bool>& failed) {
  std::erase_if(*dir_on, [&](int s) { return failed[static_cast<size_t>(s)]; });
  const auto answered = static_cast<size_t>(std::count(failed.begin(), failed.end(), false));
  return FolderStands(dir_on->size(), answered);
}

Result<RawListing> Client::ListRaw(const std::string& dir) {
  RawListing raw;
  std::vector<bool> failed;
  DFS_RETURN_IF_ERROR(StreamListing(
      dir,
      [&](std::string&& name, NameRecords&& records) {
        raw.names.emplace_hint(raw.names.end(), std::move(name), std::move(records));
      },
      [&] { raw.names.clear(); }, &raw.unreachable, &failed));
  // Raw: folders that only a minority holds are kept (heal settles them);
  // those only failed servers sent are not.
  if (std::find(failed.begin(), failed.end(), true) != failed.end()) {
    for (auto it = raw.names.begin(); it != raw.names.end();) {
      RawListing::Name& slot = it->second;
      const bool had_dir = !slot.dir_on.empty();
      std::erase_if(slot.dir_on, [&](int s) { return failed[static_cast<size_t>(s)]; });
      const bool gone =
          had_dir && slot.dir_on.empty() && slot.headers.empty() && slot.rejected.empty();
      it = gone ? raw.names.erase(it) : std::next(it);
    }
  }
  return raw;
}

Result<Listing> Client::List(std::string_view dir_in) {
  DFS_ASSIGN_OR_RETURN(std::string dir, NormalizeDir(dir_in));
  Listing listing;
  // What the servers sent of each folder entry (by index in listing.entries):
  // a folder only a failed server listed falls back to its file records.
  std::vector<std::pair<size_t, NameRecords>> folders;
  std::vector<bool> failed;
  DFS_RETURN_IF_ERROR(StreamListing(
      dir,
      [&](std::string&& name, NameRecords&& records) {
        Entry e;
        if (!records.dir_on.empty()) {
          e.is_dir = true;
          e.folder = records.folder;
          e.subdirs = records.subdirs;
          folders.emplace_back(listing.entries.size(), std::move(records));
        } else {
          e.file = Resolve(dir, name, records.headers, std::move(records.rejected));
          if (!e.file.exists) return;
        }
        e.name = std::move(name);
        listing.entries.push_back(std::move(e));
      },
      [&] {
        listing.entries.clear();
        folders.clear();
      },
      &listing.unreachable, &failed));
  if (!folders.empty()) {
    std::vector<bool> drop(listing.entries.size(), false);
    bool any = false;
    for (auto& [index, records] : folders) {
      if (KeepFolder(&records.dir_on, failed)) continue;
      Entry& e = listing.entries[index];
      e.is_dir = false;
      e.file = Resolve(dir, e.name, records.headers, std::move(records.rejected));
      if (!e.file.exists) drop[index] = any = true;
    }
    if (any) {
      size_t i = 0;
      std::erase_if(listing.entries, [&](const Entry&) { return drop[i++]; });
    }
  }
  return listing;
}

Result<Entry> Client::Stat(std::string_view path, InlinePieces* inline_pieces) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) {
    // The root always exists; its record, if any server keeps one, has its attributes.
    Entry root;
    root.is_dir = true;
    for (const auto& r : StatEach("", "")) {
      if (!r.ok()) continue;
      root.subdirs = std::max(root.subdirs, r->subdirs);
      for (const PieceHeader& h : r->pieces)
        if (CheckFolderRecord(h, keys_.record, "") == RecordCheck::kAccepted)
          KeepNewest(&root.folder, h);
    }
    return root;
  }
  DFS_ASSIGN_OR_RETURN(Entry e, StatRecords(p.dir, p.name, inline_pieces));
  // A version written moments ago that looks incomplete is most likely
  // being committed right now, server by server: look again shortly
  // rather than fail a reader because a writer is in progress.
  const uint64_t now_ns = Stamp::Now().time_ns;
  for (int wait_ms = 25; wait_ms <= 400 && !e.is_dir && e.file.exists && !e.file.complete() &&
                         e.file.newest.stamp.time_ns + kCommitWindowNs > now_ns;
       wait_ms *= 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    if (inline_pieces != nullptr) inline_pieces->clear();
    DFS_ASSIGN_OR_RETURN(e, StatRecords(p.dir, p.name, inline_pieces));
  }
  if (!e.is_dir && !e.file.exists)
    return Status::NotFound("no such file or folder " + Escaped(JoinName(p.dir, p.name)));
  return e;
}

Result<Entry> Client::StatIn(const std::string& dir, const std::string& name) {
  DFS_ASSIGN_OR_RETURN(Entry e, StatRecords(dir, name));
  if (!e.is_dir && !e.file.exists)
    return Status::NotFound("no such file or folder " + Escaped(JoinName(dir, name)));
  return e;
}

Result<Entry> Client::StatRecords(const std::string& dir, const std::string& name,
                                  InlinePieces* inline_pieces) {
  const std::vector<bool> skipped = pool_->InBackoff();
  bool probing = false;
  const StatRequest request{dir, name, inline_pieces != nullptr ? kMaxInlineBytes : 0};
  auto stat_on = [&](int s) -> Result<StatReply> {
    if (probing && !skipped[s]) return Status::Unavailable("not probed");
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s, probing));
    return lease.Check(lease->Call<StatRequest, StatReply>(MsgType::kStat, request,
                                                           DeadlineIn(options_.request_timeout)));
  };
  auto results = ForEachServer<StatReply>(stat_on);
  auto resolve = [&]() -> Result<Entry> {
    int answered = 0;
    DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
    Entry e;
    e.name = name;
    std::vector<Observed> seen;
    size_t dirs = 0;
    const std::string path = JoinName(dir, name);
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) {
        Code c = results[i].status().code();
        // A server that lacks the parent folder simply holds nothing of it.
        if (c != Code::kNotFound && c != Code::kNotDir && !IsNetworkFailure(results[i].status()))
          return results[i].status();
        continue;
      }
      if (results[i]->is_dir) {
        ++dirs;
        e.subdirs = std::max(e.subdirs, results[i]->subdirs);
      }
      for (const auto& h : results[i]->pieces) {
        if (!h.folder()) {
          seen.push_back({static_cast<int>(i), h});
        } else if (CheckFolderRecord(h, keys_.record, path) == RecordCheck::kAccepted) {
          KeepNewest(&e.folder, h);
        } else {
          WarnOnce(static_cast<int>(i), path, "sent a folder record that failed authentication");
        }
      }
    }
    e.is_dir = FolderStands(dirs, static_cast<size_t>(answered));
    if (e.is_dir) return e;
    e.folder.reset();
    const bool any = !seen.empty();
    ScreenedRecords screened = Screen(dir, name, std::move(seen));
    e.file = Resolve(dir, name, screened.accepted, std::move(screened.rejected));
    if (!any) return Status::NotFound("no such file or folder " + Escaped(JoinName(dir, name)));
    return e;
  };
  auto entry = resolve();
  // A server skipped for back-off may be back and hold what is missing.
  const bool any_skipped = std::find(skipped.begin(), skipped.end(), true) != skipped.end();
  if (any_skipped && (entry.ok() ? !entry->is_dir && entry->file.exists && !entry->file.complete()
                                 : IsNetworkFailure(entry.status()))) {
    probing = true;
    auto again = ForEachServer<StatReply>(stat_on);
    for (size_t i = 0; i < again.size(); ++i)
      if (skipped[i]) results[i] = std::move(again[i]);
    entry = resolve();
  }
  if (inline_pieces != nullptr && entry.ok() && !entry->is_dir && entry->file.exists) {
    // Pieces of the resolved version only; the bytes are checked when they
    // are decrypted (Open), so a server cannot slip in anything else.
    const FileVersion& v = entry->file;
    for (const auto& r : results) {
      if (!r.ok() || r->inline_piece == 0 || r->inline_piece > v.pieces()) continue;
      for (const PieceHeader& h : r->pieces) {
        if (h.piece == r->inline_piece && !h.tombstone() && h.cid == v.newest.cid &&
            h.sealed_size() == r->inline_data.size()) {
          inline_pieces->try_emplace(h.piece, r->inline_data);
          break;
        }
      }
    }
  }
  return entry;
}

std::vector<Result<StatReply>> Client::StatEach(const std::string& dir, const std::string& name,
                                                int probe, int skip) {
  const StatRequest req{dir, name, 0};
  return ForEachServer<StatReply>([&](int s) -> Result<StatReply> {
    if (s == skip) return Status::Unavailable("not asked");
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s, /*probe=*/s == probe));
    return lease.Check(lease->Call<StatRequest, StatReply>(MsgType::kStat, req,
                                                           DeadlineIn(options_.request_timeout)));
  });
}

ScreenedRecords Client::Screen(const std::string& dir, const std::string& name,
                               std::vector<Observed> seen) {
  ScreenedRecords out = ScreenRecords(std::move(seen), keys_.record, JoinName(dir, name), scheme_);
  ReportRejected(dir, name, out.rejected);
  return out;
}

void Client::ReportRejected(const std::string& dir, const std::string& name,
                            const std::vector<RejectedRecord>& rejected) {
  if (rejected.empty()) return;
  const std::string path = JoinName(dir, name);
  for (const RejectedRecord& r : rejected) {
    switch (r.why) {
      case RecordCheck::kBadMac:
        WarnOnce(r.server, path, "sent a record that failed authentication");
        break;
      case RecordCheck::kOtherScheme:
        WarnOnce(r.server, path, "sent a record of another server layout");
        break;
      case RecordCheck::kBadPiece:
      case RecordCheck::kAccepted:
        WarnOnce(r.server, path, "sent a record with an invalid piece index");
        break;
    }
  }
}

void Client::WarnOnce(int server, const std::string& path, const std::string& what) {
  bool last = false;
  {
    MutexLock lock(&warned_mu_);
    if (warned_.size() > kMaxWarned) return;
    if (!warned_.emplace(server, path).second) return;
    last = warned_.size() > kMaxWarned;
  }
  Logger("client")->warn("{} {}: {} (ignored)", pool_->name(server), what, Escaped(path));
  if (last) Logger("client")->warn("too many rejected records: further ones are not logged");
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

PieceHeader Client::RecordHeader(PieceKind kind, const Stamp& stamp) const {
  PieceHeader h;
  h.kind = kind;
  h.scheme = scheme_.id;
  h.servers = static_cast<uint8_t>(scheme_.servers);
  h.copies = static_cast<uint8_t>(scheme_.copies);
  h.piece = 0;
  h.stamp = stamp;
  return h;
}

FileAttrs AttrsOf(const PieceHeader& h) {
  FileAttrs attrs;
  attrs.mode = h.mode;
  attrs.mtime_ns = h.mtime_ns;
  attrs.uid = h.uid;
  attrs.gid = h.gid;
  attrs.rdev = h.rdev;
  return attrs;
}

PieceHeader Client::MakeFolderRecord(const std::string& path, const FileAttrs& attrs,
                                     const Stamp& after) const {
  PieceHeader h = RecordHeader(PieceKind::kFolder, NewStamp(after));
  h.mode = S_IFDIR | (attrs.mode & kModeBits);
  h.mtime_ns = attrs.mtime_ns != 0 ? attrs.mtime_ns : static_cast<int64_t>(h.stamp.time_ns);
  h.uid = attrs.uid.value_or(static_cast<uint32_t>(::geteuid()));
  h.gid = attrs.gid.value_or(static_cast<uint32_t>(::getegid()));
  h.Sign(keys_.record, path);
  return h;
}

Status Client::SendFolderRecord(int s, const std::string& path, const PieceHeader& record,
                                bool create) {
  DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
  return lease
      .Check(lease->Call<FolderRequest, Empty>(MsgType::kFolder,
                                               FolderRequest{path, create, record},
                                               DeadlineIn(options_.request_timeout)))
      .status();
}

Status Client::MakeDirEverywhere(const std::string& path,
                                 const std::optional<PieceHeader>& record) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  auto results = ForEachServer<Empty>([&](int s) -> Result<Empty> {
    if (!record) {
      DFS_RETURN_IF_ERROR(EnsureDirOn(s, path));
      return Empty{};
    }
    Status st = SendFolderRecord(s, path, *record, /*create=*/true);
    if (st.code() == Code::kNotFound) {
      // This server lacks a folder above (it was down when that was made).
      DFS_RETURN_IF_ERROR(EnsureDirOn(s, p.dir));
      st = SendFolderRecord(s, path, *record, /*create=*/true);
    }
    if (!st.ok()) return st;
    return Empty{};
  });
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
  for (const auto& r : results) {
    if (!r.ok()) continue;
    HintFailed(results, path, record ? record->stamp : Stamp::Now());
    return Status::Ok();
  }
  for (const auto& r : results)
    if (!IsNetworkFailure(r.status())) return r.status();
  return results.front().status();
}

Status Client::Mkdir(std::string_view path, const FileAttrs& attrs) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::Exists("the root folder exists");
  const std::string full = JoinName(p.dir, p.name);
  auto existing = StatIn(p.dir, p.name);
  if (existing.ok()) return Status::Exists(Escaped(full) + " already exists");
  if (existing.status().code() != Code::kNotFound) return existing.status();
  if (!p.dir.empty()) {
    DFS_ASSIGN_OR_RETURN(Entry parent, Stat(p.dir));
    if (!parent.is_dir) return Status::NotDir(Escaped(p.dir) + " is not a folder");
  }
  return MakeDirEverywhere(full, MakeFolderRecord(full, attrs, Stamp{}));
}

Status Client::Rmdir(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::Invalid("cannot remove the root folder");
  const std::string full = JoinName(p.dir, p.name);
  DFS_ASSIGN_OR_RETURN(Entry e, StatIn(p.dir, p.name));
  if (!e.is_dir) return Status::NotDir(Escaped(full) + " is not a folder");
  DFS_ASSIGN_OR_RETURN(Listing l, List(full));
  if (!l.entries.empty()) return Status::NotEmpty("folder " + Escaped(full) + " is not empty");
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
  HintFailed(results, full, Stamp::Now());
  return Status::Ok();
}

// Sends one request to every server; succeeds when at least one server did
// it and no reachable server refused it.
// *results (when given): each server's outcome.
template <typename Req>
static Status Broadcast(Client& c, MsgType type, const Req& req, Millis timeout,
                        const std::function<bool(const Status&)>& ignorable = nullptr,
                        std::vector<Result<Empty>>* outcomes = nullptr) {
  std::vector<Result<Empty>> local;
  std::vector<Result<Empty>>& results = outcomes != nullptr ? *outcomes : local;
  results = c.ForEachServer<Empty>([&](int s) -> Result<Empty> {
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

Stamp Client::NewStamp(const Stamp& after) {
  Stamp s = Stamp::Now();
  if (s.time_ns <= after.time_ns) s.time_ns = after.time_ns + 1;
  return s;
}

PieceHeader Client::MakeTombstone(const std::string& path, const Stamp& stamp) const {
  PieceHeader t = RecordHeader(PieceKind::kTombstone, stamp);
  t.mtime_ns = static_cast<int64_t>(stamp.time_ns);
  t.mode = 0;
  t.uid = static_cast<uint32_t>(::geteuid());
  t.gid = static_cast<uint32_t>(::getegid());
  t.Sign(keys_.record, path);
  return t;
}

std::vector<PieceHeader> Client::PieceHeadersFor(PieceHeader base, const Stamp& stamp,
                                                 const std::string& path) const {
  base.kind = PieceKind::kPiece;
  base.stamp = stamp;
  base.mode &= kModeTypeMask | kModeBits;
  std::vector<PieceHeader> out;
  out.reserve(base.servers);
  for (int k = 1; k <= base.servers; ++k) {
    PieceHeader h = base;
    h.piece = static_cast<uint8_t>(k);
    h.piece_size = PieceSize(h.file_size, h.servers, k);
    h.Sign(keys_.record, path);
    out.push_back(h);
  }
  return out;
}

Status Client::Unlink(std::string_view path, const Entry* known) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::IsDir("cannot remove the root folder");
  Entry e;
  if (known != nullptr && !known->is_dir && known->file.exists) {
    e = *known;
  } else {
    DFS_ASSIGN_OR_RETURN(e, StatIn(p.dir, p.name));
  }
  const std::string full = JoinName(p.dir, p.name);
  if (e.is_dir) return Status::IsDir(Escaped(full) + " is a folder");
  DeleteRequest req{p.dir, p.name, MakeTombstone(full, NewStamp(e.file.newest.stamp))};
  // A server lacking the folder holds nothing to delete.
  std::vector<Result<Empty>> results;
  DFS_RETURN_IF_ERROR(Broadcast(
      *this, MsgType::kDelete, req, options_.request_timeout,
      [](const Status& s) { return s.code() == Code::kNotFound; }, &results));
  HintFailed(results, full, req.tombstone.stamp);
  return Status::Ok();
}

Status Client::RenameFile(const FileVersion& v, const std::string& to_dir,
                          const std::string& to_name, const Stamp& after) {
  const Stamp stamp = NewStamp(std::max(after, v.newest.stamp));
  RenameRequest req;
  req.from_dir = v.dir;
  req.from_name = v.name;
  req.to_dir = to_dir;
  req.to_name = to_name;
  req.cid = v.newest.cid;
  req.headers = PieceHeadersFor(v.newest, stamp, JoinName(to_dir, to_name));
  req.tombstone = MakeTombstone(JoinName(v.dir, v.name), stamp);
  DFS_ASSIGN_OR_RETURN(req.xattrs, XattrTrailer(v));
  auto results = ForEachServer<Empty>([&](int sv) -> Result<Empty> {
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(sv));
    auto r = lease.Check(lease->Call<RenameRequest, Empty>(MsgType::kRename, req,
                                                           DeadlineIn(options_.request_timeout)));
    if (!r.ok() && r.status().code() == Code::kNotFound) {
      // This server lacks one of the folders (it was down when they were made).
      DFS_RETURN_IF_ERROR(EnsureDirOn(sv, to_dir));
      DFS_RETURN_IF_ERROR(EnsureDirOn(sv, v.dir));
      r = lease.Check(lease->Call<RenameRequest, Empty>(MsgType::kRename, req,
                                                        DeadlineIn(options_.request_timeout)));
    }
    return r;
  });
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
  for (const auto& r : results)
    if (!r.ok() && !IsNetworkFailure(r.status())) return r.status();
  const std::string to_path = JoinName(to_dir, to_name);
  bool any_missed = false;
  for (const auto& r : results) any_missed = any_missed || !r.ok();
  if (!any_missed) return Status::Ok();
  // A server that missed the rename: the moved pieces it holds have one
  // copy left under the new name; each gets one on a substitute, and the
  // server gets hints for both names.
  FileVersion moved = v;
  moved.dir = to_dir;
  moved.name = to_name;
  moved.newest = req.headers.front();
  for (auto& holders : moved.holders)
    holders.erase_if([&](int s) { return !results[static_cast<size_t>(s)].ok(); });
  const int n = pool_->size();
  for (int k = 1; k <= moved.pieces(); ++k) {
    auto& holders = moved.holders[static_cast<size_t>(k - 1)];
    if (holders.empty()) continue;
    for (int s1 : ServersForPiece(scheme_, v.newest.x, k)) {
      const int failed = s1 - 1;
      if (results[static_cast<size_t>(failed)].ok()) continue;
      for (int i = 1; i < n && static_cast<int>(holders.size()) < scheme_.copies; ++i) {
        const int sub = (failed + i) % n;
        if (!results[static_cast<size_t>(sub)].ok() || holders.contains(sub)) continue;
        if (CopyPiece(moved, k, holders.front(), sub, &req.xattrs).ok()) holders.push_back(sub);
      }
    }
  }
  HintFailed(results, to_path, stamp);
  HintFailed(results, JoinName(v.dir, v.name), stamp);
  return Status::Ok();
}

Status Client::MoveTree(const std::string& from, const std::string& to) {
  // The folder keeps its attributes under the new name (a new record, as
  // records are bound to their path).
  std::optional<PieceHeader> record;
  DFS_ASSIGN_OR_RETURN(ParentAndName src, SplitParent(from));
  if (auto e = StatIn(src.dir, src.name); e.ok() && e->folder)
    record = MakeFolderRecord(to, AttrsOf(*e->folder), e->folder->stamp);
  DFS_RETURN_IF_ERROR(MakeDirEverywhere(to, record));
  DFS_ASSIGN_OR_RETURN(RawListing raw, ListRaw(from));
  for (const auto& [name, slot] : raw.names) {
    if (!slot.dir_on.empty()) {
      DFS_RETURN_IF_ERROR(MoveTree(JoinName(from, name), JoinName(to, name)));
      continue;
    }
    FileVersion v = Resolve(from, name, slot.headers, slot.rejected);
    if (!v.exists) continue;  // deleted: its tombstone goes with the old folder
    DFS_RETURN_IF_ERROR(RenameFile(v, to, name, Stamp{}));
  }
  std::vector<Result<Empty>> results;
  DFS_RETURN_IF_ERROR(Broadcast(
      *this, MsgType::kRmdir, PathRequest{from}, options_.request_timeout,
      [](const Status& st) { return st.code() == Code::kNotFound; }, &results));
  HintFailed(results, from, Stamp::Now());
  return Status::Ok();
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
    if (!parent.is_dir) return Status::NotDir(Escaped(dst.dir) + " is not a folder");
  }
  auto d = StatIn(dst.dir, dst.name);
  if (!d.ok() && d.status().code() != Code::kNotFound) return d.status();
  if (s.is_dir) {
    if (dst_full.rfind(src_full + "/", 0) == 0)
      return Status::Invalid("cannot move a folder into itself");
    if (d.ok()) {
      if (!d->is_dir) return Status::NotDir(Escaped(dst_full) + " is not a folder");
      DFS_ASSIGN_OR_RETURN(Listing inside, List(dst_full));
      if (!inside.entries.empty())
        return Status::NotEmpty("folder " + Escaped(dst_full) + " is not empty");
    }
    // Records are bound to their path: a folder cannot simply be renamed on
    // the servers, each file gets headers signed for its new path.
    return MoveTree(src_full, dst_full);
  }
  if (d.ok() && d->is_dir) return Status::IsDir(Escaped(dst_full) + " is a folder");
  return RenameFile(s.file, dst.dir, dst.name, d.ok() ? d->file.newest.stamp : Stamp{});
}

Status Client::SetFolderAttr(const std::string& path, const Entry& e, const AttrChange& change) {
  // A folder without a record so far shows the defaults (0755, this user).
  FileAttrs attrs = e.folder ? AttrsOf(*e.folder) : FileAttrs{.mode = 0755};
  const Stamp after = e.folder ? e.folder->stamp : Stamp{};
  if (change.mode) attrs.mode = *change.mode;
  if (change.mtime_ns) attrs.mtime_ns = *change.mtime_ns;
  if (change.uid) attrs.uid = *change.uid;
  if (change.gid) attrs.gid = *change.gid;
  const PieceHeader record = MakeFolderRecord(path, attrs, after);
  auto results = ForEachServer<Empty>([&](int s) -> Result<Empty> {
    DFS_RETURN_IF_ERROR(SendFolderRecord(s, path, record, /*create=*/false));
    return Empty{};
  });
  int answered = 0;
  DFS_RETURN_IF_ERROR(FanOutStatus(*pool_, results, &answered));
  bool any_ok = false;
  for (const auto& r : results) {
    if (r.ok()) {
      any_ok = true;
    } else if (!IsNetworkFailure(r.status()) && r.status().code() != Code::kNotFound) {
      return r.status();
    }
  }
  if (!any_ok) return Status::Unavailable("no server holds folder " + Escaped(path));
  if (!path.empty()) HintFailed(results, path, record.stamp);
  return Status::Ok();
}

Status Client::SetAttr(std::string_view path, const AttrChange& change) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) {
    DFS_ASSIGN_OR_RETURN(Entry root, Stat(""));
    return SetFolderAttr("", root, change);
  }
  DFS_ASSIGN_OR_RETURN(Entry e, StatIn(p.dir, p.name));
  if (e.is_dir) return SetFolderAttr(JoinName(p.dir, p.name), e, change);
  PieceHeader base = e.file.newest;
  if (change.mode) base.mode = (base.mode & kModeTypeMask) | (*change.mode & kModeBits);
  if (change.mtime_ns) base.mtime_ns = *change.mtime_ns;
  if (change.uid) base.uid = *change.uid;
  if (change.gid) base.gid = *change.gid;
  // The extended attributes stay: each copy gets the newest (a copy that
  // missed a change of them catches up here).
  DFS_ASSIGN_OR_RETURN(std::string xattrs, XattrTrailer(e.file));
  return ReplaceHeaders(p.dir, p.name, base, std::move(xattrs));
}

Result<XattrMap> Client::GetXattrs(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return XattrMap{};
  DFS_ASSIGN_OR_RETURN(Entry e, StatIn(p.dir, p.name));
  if (e.is_dir) return XattrMap{};
  return XattrsOf(e.file);
}

Result<XattrMap> Client::XattrsOf(const FileVersion& version) {
  DFS_ASSIGN_OR_RETURN(std::string trailer, XattrTrailer(version));
  return OpenXattrs(keys_.content, version.newest.cid, trailer);
}

Status Client::SetXattrs(std::string_view path, const XattrMap& xattrs) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::Invalid("folders keep no extended attributes");
  DFS_ASSIGN_OR_RETURN(Entry e, StatIn(p.dir, p.name));
  if (e.is_dir) return Status::Invalid("folders keep no extended attributes");
  PieceHeader base = e.file.newest;
  DFS_ASSIGN_OR_RETURN(std::string trailer, SealXattrs(keys_.content, base.cid, xattrs));
  base.xattr_bytes = static_cast<uint16_t>(trailer.size());
  return ReplaceHeaders(p.dir, p.name, base, std::move(trailer));
}

Status Client::ReplaceHeaders(const std::string& dir, const std::string& name,
                              const PieceHeader& base, std::string xattrs) {
  SetAttrRequest req;
  req.dir = dir;
  req.name = name;
  req.cid = base.cid;
  req.headers = PieceHeadersFor(base, NewStamp(base.stamp), JoinName(dir, name));
  req.xattrs = std::move(xattrs);
  std::vector<Result<Empty>> results;
  DFS_RETURN_IF_ERROR(Broadcast(
      *this, MsgType::kSetAttr, req, options_.request_timeout,
      [](const Status& s) { return s.code() == Code::kNotFound; }, &results));
  HintFailed(results, JoinName(dir, name), req.headers.front().stamp);
  return Status::Ok();
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
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return std::string("folder");
  DFS_ASSIGN_OR_RETURN(Entry e, StatRecords(p.dir, p.name));
  if (e.is_dir) return std::string("folder");
  const FileVersion& v = e.file;
  const std::string rejected = DescribeRejected(v.rejected, [&](int s) { return pool_->name(s); });
  if (!v.exists) {
    if (rejected.empty())
      return Status::NotFound("no such file or folder " + Escaped(JoinName(p.dir, p.name)));
    return std::string(v.newest.tombstone() ? "deleted" : "no valid record") + "; " + rejected;
  }
  std::string out = v.complete() ? "complete" : "incomplete";
  out += ": " + std::to_string(v.size()) + " bytes, " + std::to_string(v.pieces()) + " pieces";
  for (int k = 1; k <= v.pieces(); ++k) {
    out += "; piece " + std::to_string(k) + ": ";
    const auto& holders = v.holders[static_cast<size_t>(k - 1)];
    if (holders.empty()) {
      out += "MISSING (expected on";
      for (int s : ServersForPiece(scheme_, v.newest.x, k)) {
        std::string name = s - 1 < pool_->size() ? pool_->name(s - 1) : "DFS" + std::to_string(s);
        out += " " + name + (pool_->MaybeUp(s - 1) ? "" : " [down]");
      }
      out += ")";
      continue;
    }
    for (size_t i = 0; i < holders.size(); ++i) out += (i ? ", " : "") + pool_->name(holders[i]);
  }
  if (!rejected.empty()) out += "; " + rejected;
  return out;
}

}  // namespace dfs::client
