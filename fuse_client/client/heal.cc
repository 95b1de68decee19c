// Repair: bring every server back to the placement of the newest version of
// each file. Missing pieces are copied from a holder (sealed bytes pass
// through the client unchanged: nothing is decrypted), stale pieces and
// superseded tombstones are purged, and a tombstone is collected once every
// server is reachable and no piece of the name remains anywhere. Records that
// fail verification (version.h) are never a reason to delete anything.
#include <algorithm>
#include <optional>

#include "fuse_client/client/client.h"
#include "shared/util/log.h"
#include "shared/util/names.h"

namespace dfs::client {

Result<HealReport> Client::Heal(std::string_view dir_in, const HealProgress& progress,
                                bool verify) {
  DFS_ASSIGN_OR_RETURN(std::string dir, NormalizeDir(dir_in));
  HealReport report;
  pool_->ClearBackoff();  // an explicit repair tries every server now
  // What servers missed while they were down, as their hints say; then the
  // full scan, for what no hint names (a wiped server, a lost hint).
  for (int s = 0; s < pool_->size(); ++s) {
    auto handed = HandOff(s, &report);
    if (!handed.ok() && !IsNetworkFailure(handed.status())) return handed.status();
  }
  DFS_RETURN_IF_ERROR(HealDir(dir, &report, progress, verify));
  return report;
}

Status Client::HealDir(const std::string& dir, HealReport* report, const HealProgress& progress,
                       bool verify) {
  DFS_ASSIGN_OR_RETURN(RawListing raw, ListRaw(dir));
  const bool all_up = raw.unreachable.empty();
  for (int s : raw.unreachable)
    report->notes.push_back(pool_->name(s) + " unreachable: its pieces were not checked");
  for (const auto& [name, slot] : raw.names) {
    if (!slot.dir_on.empty()) {
      const std::string sub = JoinName(dir, name);
      // Folders carry no versions: a majority of the servers that answered
      // decides. A folder most of them lack and that holds nothing live was
      // removed while the others were down; one most of them have was made
      // while the others were down.
      const int answered = pool_->size() - static_cast<int>(raw.unreachable.size());
      const int have = static_cast<int>(slot.dir_on.size());
      if (2 * have < answered) {
        auto inside = List(sub);
        if (inside.ok() && inside->entries.empty()) {
          for (int s : slot.dir_on) {
            auto lease = pool_->Acquire(s);
            Status st = lease.ok() ? lease
                                         ->Check(lease.value()->Call<PathRequest, Empty>(
                                             MsgType::kRmdir, PathRequest{sub},
                                             DeadlineIn(options_.request_timeout)))
                                         .status()
                                   : lease.status();
            if (st.ok())
              ++report->stale_removed;
            else
              report->notes.push_back(Escaped(sub) + ": " + st.Annotate(pool_->name(s)).ToString());
          }
          continue;
        }
      }
      if (2 * have > answered) {
        for (int s = 0; s < pool_->size(); ++s) {
          bool has = std::find(slot.dir_on.begin(), slot.dir_on.end(), s) != slot.dir_on.end();
          bool down =
              std::find(raw.unreachable.begin(), raw.unreachable.end(), s) != raw.unreachable.end();
          if (down) continue;
          // The newest record goes to every server (one that has it ignores it).
          Status st = slot.folder ? EnsureDirOn(s, dir) : Status::Ok();
          if (st.ok() && slot.folder)
            st = SendFolderRecord(s, sub, *slot.folder, /*create=*/true);
          else if (st.ok() && !has)
            st = EnsureDirOn(s, sub);
          if (!st.ok()) report->notes.push_back(st.Annotate(pool_->name(s)).ToString());
        }
      }
      DFS_RETURN_IF_ERROR(HealDir(sub, report, progress, verify));
      continue;
    }
    FileVersion after;
    Status st = HealFile(dir, name, slot, all_up, report, nullptr, &after);
    if (!st.ok()) report->notes.push_back(Escaped(JoinName(dir, name)) + ": " + st.ToString());
    if (verify && st.ok() && after.exists) VerifyCopies(after, report);
    if (progress) progress(*report);
  }
  return Status::Ok();
}

Status Client::Purge(int server, const PurgeRequest& req) {
  DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(server));
  return lease
      .Check(lease->Call<PurgeRequest, Empty>(MsgType::kPurge, req,
                                              DeadlineIn(options_.request_timeout)))
      .status();
}

Status Client::HealFile(const std::string& dir, const std::string& name,
                        const RawListing::Name& slot, bool all_up, HealReport* report,
                        bool* settled, FileVersion* after) {
  bool done = true;
  if (settled == nullptr) settled = &done;
  ++report->files_checked;
  // Only records that verified: a forged one never decides what is stale.
  const std::vector<Observed>& seen = slot.headers;
  FileVersion v = Resolve(dir, name, seen, slot.rejected);
  if (after != nullptr) *after = v;
  if (!v.rejected.empty())
    report->notes.push_back(Escaped(JoinName(dir, name)) + ": " +
                            DescribeRejected(v.rejected, [&](int s) { return pool_->name(s); }));
  if (seen.empty()) return Status::Ok();  // nothing trustworthy to act on
  PurgeRequest purge;
  purge.dir = dir;
  purge.name = name;
  purge.keep = v.newest.stamp;
  purge.keep_cid = v.newest.cid;

  // Servers holding something older than the newest record.
  std::vector<int> stale;
  for (const auto& o : seen) {
    const PieceHeader& h = o.header;
    bool is_stale = v.exists ? (h.tombstone() || h.cid != v.newest.cid)
                             : (!h.tombstone() || h.stamp < v.newest.stamp);
    if (is_stale && std::find(stale.begin(), stale.end(), o.server) == stale.end())
      stale.push_back(o.server);
  }

  if (!v.exists) {
    // Deleted: drop older pieces; once no piece is left anywhere and every
    // server answered, the tombstone has done its job (kept while a server
    // sends records of the name that do not verify: they are not understood).
    bool pieces_left = false;
    for (int s : stale) {
      purge.drop_tombstone = false;
      Status st = Purge(s, purge);
      if (st.ok()) {
        ++report->stale_removed;
      } else {
        pieces_left = true;
        *settled = false;
      }
    }
    if (all_up && !pieces_left && slot.rejected.empty()) {
      purge.drop_tombstone = true;
      for (const auto& o : seen)
        if (o.header.tombstone()) (void)Purge(o.server, purge);
    }
    return Status::Ok();
  }

  if (!v.complete()) {
    *settled = false;
    ++report->unrepairable;
    std::string missing;
    for (int k : v.missing_pieces()) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
    report->notes.push_back(Escaped(JoinName(dir, name)) + ": incomplete, missing piece(s) " +
                            missing);
  }
  FileVersion now = v;
  report->pieces_copied += RepairPieces(v, &report->notes, &now);
  // Servers that hold this content under an older stamp missed an
  // attribute change (or a rename's new headers): they get the newest.
  std::vector<int> outdated;
  for (const auto& o : seen)
    if (!o.header.tombstone() && o.header.cid == v.newest.cid && o.header.stamp < v.newest.stamp &&
        std::find(outdated.begin(), outdated.end(), o.server) == outdated.end())
      outdated.push_back(o.server);
  if (!outdated.empty()) {
    SetAttrRequest req;
    req.dir = dir;
    req.name = name;
    req.cid = v.newest.cid;
    req.headers = PieceHeadersFor(v.newest, v.newest.stamp, JoinName(dir, name));
    auto xattrs = XattrTrailer(v);
    if (xattrs.ok()) req.xattrs = std::move(*xattrs);
    for (int s : outdated) {
      auto lease = pool_->Acquire(s);
      Status st =
          !xattrs.ok() ? xattrs.status()
          : lease.ok()
              ? lease->Check(lease.value()
                                 ->Call<SetAttrRequest, Empty>(MsgType::kSetAttr, req,
                                                               DeadlineIn(options_.request_timeout))
                                 .status())
              : lease.status();
      if (!st.ok()) *settled = false;
    }
  }
  purge.drop_tombstone = true;
  for (int s : stale) {
    if (Purge(s, purge).ok())
      ++report->stale_removed;
    else
      *settled = false;
  }
  report->extra_removed += DropExtraCopies(now, settled);
  // Every placement server that answers holds its pieces now.
  for (int k = 1; k <= now.pieces(); ++k)
    for (int s1 : ServersForPiece(scheme_, now.newest.x, k)) {
      const auto& holders = now.holders[static_cast<size_t>(k - 1)];
      if (pool_->MaybeUp(s1 - 1) && !holders.contains(s1 - 1)) *settled = false;
    }
  if (after != nullptr) *after = std::move(now);
  return Status::Ok();
}

Status Client::VerifyCopy(const FileVersion& v, int piece, int server) {
  FileVersion one = v;
  one.holders[static_cast<size_t>(piece - 1)] = {server};
  return ReadChunks(one, piece, 0, UINT64_MAX, server,
                    [](uint64_t, std::span<const uint8_t>) { return Status::Ok(); });
}

void Client::VerifyCopies(const FileVersion& v, HealReport* report) {
  const std::string path = Escaped(JoinName(v.dir, v.name));
  for (int k = 1; k <= v.pieces(); ++k) {
    std::vector<int> good, bad;
    for (int s : v.holders[static_cast<size_t>(k - 1)]) {
      Status st = VerifyCopy(v, k, s);
      if (st.ok()) {
        good.push_back(s);
        ++report->copies_verified;
      } else if (st.code() == Code::kCorrupt) {
        bad.push_back(s);
        ++report->copies_verified;
      } else {
        report->notes.push_back(path + ": piece " + std::to_string(k) + " on " + pool_->name(s) +
                                " not checked: " + st.ToString());
      }
    }
    for (int s : bad) {
      Status fixed = good.empty() ? Status::Corrupt("no copy passes the check")
                                  : CopyPiece(v, k, good.front(), s);
      if (fixed.ok()) fixed = VerifyCopy(v, k, s);
      if (fixed.ok()) {
        ++report->corrupt_repaired;
        report->notes.push_back(path + ": piece " + std::to_string(k) + " on " + pool_->name(s) +
                                " was corrupt; replaced from " + pool_->name(good.front()));
      } else {
        ++report->corrupt_left;
        report->notes.push_back(path + ": piece " + std::to_string(k) + " on " + pool_->name(s) +
                                " is corrupt and could not be replaced: " + fixed.ToString());
      }
    }
  }
}

int Client::DropExtraCopies(const FileVersion& v, bool* settled) {
  // Piece indexes to drop, by server.
  std::map<int, std::vector<uint8_t>> extra;
  for (int k = 1; k <= v.pieces(); ++k) {
    const auto& holders = v.holders[static_cast<size_t>(k - 1)];
    const std::vector<int> placement = ServersForPiece(scheme_, v.newest.x, k);
    const bool placed = std::all_of(placement.begin(), placement.end(),
                                    [&](int s1) { return holders.contains(s1 - 1); });
    if (!placed) continue;  // an extra copy still stands in for a missing one
    for (int s : holders)
      if (std::find(placement.begin(), placement.end(), s + 1) == placement.end())
        extra[s].push_back(static_cast<uint8_t>(k));
  }
  int dropped = 0;
  for (auto& [server, pieces] : extra) {
    PurgeRequest req;
    req.dir = v.dir;
    req.name = v.name;
    req.keep_cid = v.newest.cid;
    req.keep = v.newest.stamp;
    req.drop_pieces = std::move(pieces);
    if (Purge(server, req).ok())
      ++dropped;
    else
      *settled = false;
  }
  return dropped;
}

int Client::RepairPieces(const FileVersion& v, std::vector<std::string>* notes,
                         FileVersion* after) {
  int copied = 0;
  // The file's newest extended attributes, read once for all its copies
  // (again at the next copy only when reading them failed).
  std::optional<std::string> xattrs;
  for (int k = 1; k <= v.pieces(); ++k) {
    const auto& holders = v.holders[static_cast<size_t>(k - 1)];
    if (holders.empty()) continue;
    for (int s1 : ServersForPiece(scheme_, v.newest.x, k)) {
      const int target = s1 - 1;
      if (target >= pool_->size()) continue;
      if (holders.contains(target)) continue;
      if (!pool_->MaybeUp(target)) continue;
      Status st = Status::Unavailable("no holder answered");
      for (int from : holders) {
        if (!xattrs) {
          auto read = XattrTrailer(v);
          if (!read.ok()) {
            st = read.status();
            continue;
          }
          xattrs = std::move(*read);
        }
        st = CopyPiece(v, k, from, target, &*xattrs);
        if (st.ok()) break;
      }
      if (st.ok()) {
        ++copied;
        if (after != nullptr) after->holders[static_cast<size_t>(k - 1)].push_back(target);
      } else if (notes) {
        notes->push_back(Escaped(JoinName(v.dir, v.name)) + ": piece " + std::to_string(k) +
                         " to " + pool_->name(target) + ": " + st.ToString());
      }
    }
  }
  return copied;
}

Status Client::CopyPiece(const FileVersion& v, int piece, int from, int to,
                         const std::string* newest_xattrs) {
  DFS_ASSIGN_OR_RETURN(Lease src, pool_->Acquire(from));
  DFS_ASSIGN_OR_RETURN(Lease dst, pool_->Acquire(to));
  GetRequest get;
  get.dir = v.dir;
  get.name = v.name;
  get.piece = static_cast<uint8_t>(piece);
  get.cid = v.newest.cid;
  get.offset = 0;
  get.length = SealedSize(PieceSize(v.size(), v.pieces(), piece), v.newest.chunk_bytes);
  // The content comes from `from`; the extended attributes are the newest
  // (the copy on `from` may have missed a change of them).
  std::string fetched;
  if (newest_xattrs == nullptr) {
    DFS_ASSIGN_OR_RETURN(fetched, XattrTrailer(v));
    newest_xattrs = &fetched;
  }
  const std::string& xattrs = *newest_xattrs;
  DFS_ASSIGN_OR_RETURN(GetReply reply,
                       src.Check(src->Call<GetRequest, GetReply>(
                           MsgType::kGet, get, DeadlineIn(options_.request_timeout))));
  if (Status bad = CheckGetReply(v, piece, from, get, reply); !bad.ok()) {
    src->MarkBroken();  // the stream that follows is not read
    return src.Check(bad);
  }
  // The copy carries the newest metadata and stamp of this content, signed
  // anew for this path (the sealed bytes pass through unchanged).
  PieceHeader h = reply.header;
  h.stamp = v.newest.stamp;
  h.CopyAttributes(v.newest);
  h.xattr_bytes = static_cast<uint16_t>(xattrs.size());
  h.Sign(keys_.record, JoinName(v.dir, v.name));
  if (reply.length != h.data_size()) {
    src->MarkBroken();
    return Status::Corrupt("source piece has an unexpected length");
  }
  auto begun = dst.Check(dst->Call<PutBeginRequest, Empty>(
      MsgType::kPutBegin, PutBeginRequest{v.dir, v.name, h}, DeadlineIn(options_.request_timeout)));
  if (!begun.ok()) {
    src->MarkBroken();
    return begun.status();
  }
  uint64_t received = 0;  // never more than the reply announced
  ProgressDeadline progress(options_.data_timeout, kDefaultChunkBytes);
  for (;;) {
    Frame f;
    Status st = src.Check(src->Recv(&f, progress.get()));
    if (st.ok() && f.type() == MsgType::kError) st = DecodeError(f.body);
    if (st.ok() && f.type() != MsgType::kData && f.type() != MsgType::kDataEnd)
      st = Status::Protocol("unexpected frame in a piece stream");
    if (st.ok() && f.type() == MsgType::kData && f.body.empty())
      st = src.Check(Status::Protocol(pool_->name(from) + " sent an empty data frame"));
    if (st.ok() && f.type() == MsgType::kData && f.body.size() > reply.length - received)
      st = src.Check(Status::Protocol(pool_->name(from) + " sent more than the " +
                                      std::to_string(reply.length) + " bytes it announced"));
    if (st.ok() && f.type() == MsgType::kDataEnd && received != reply.length)
      st = src.Check(Status::Protocol(pool_->name(from) + " ended the piece stream early"));
    if (!st.ok()) {
      src->MarkBroken();
      dst->MarkBroken();  // the staged piece is dropped by the server on disconnect
      return st;
    }
    received += f.body.size();
    progress.Add(f.body.size());
    Status sent;
    if (f.type() == MsgType::kDataEnd && !xattrs.empty())
      sent = dst.Check(dst->SendMore(MsgType::kData, xattrs, DeadlineIn(options_.data_timeout)));
    if (sent.ok())
      sent = dst.Check(dst->SendMore(f.type(), f.body, DeadlineIn(options_.data_timeout)));
    if (!sent.ok()) {
      if (f.type() != MsgType::kDataEnd) src->MarkBroken();  // the rest of its stream is unread
      dst->MarkBroken();
      return sent;
    }
    if (f.type() == MsgType::kDataEnd) break;
  }
  Frame ack;
  DFS_RETURN_IF_ERROR(dst.Check(dst->Recv(&ack, DeadlineIn(options_.data_timeout * 3))));
  DFS_RETURN_IF_ERROR(ParseReply<Empty>(ack).status());
  CommitRequest commit{v.dir, v.name, v.newest.cid, v.newest.stamp};
  DFS_ASSIGN_OR_RETURN(CommitReply done,
                       dst.Check(dst->Call<CommitRequest, CommitReply>(
                           MsgType::kCommit, commit, DeadlineIn(options_.data_timeout))));
  if (std::find(done.committed.begin(), done.committed.end(), piece) == done.committed.end())
    return Status::Stale("a newer version arrived while repairing");
  return Status::Ok();
}

}  // namespace dfs::client

namespace dfs::client {

Result<std::string> Client::XattrTrailer(const FileVersion& v) {
  const PieceHeader& newest = v.newest;
  if (!v.exists || newest.xattr_bytes == 0) return std::string();
  const std::string path = JoinName(v.dir, v.name);
  Status last =
      Status::Unavailable("no server holds the newest extended attributes of " + Escaped(path));
  for (int k = 1; k <= v.pieces(); ++k) {
    for (int s : v.holders[static_cast<size_t>(k - 1)]) {
      auto acquired = pool_->Acquire(s);
      if (!acquired.ok()) {
        last = acquired.status();
        continue;
      }
      Lease& lease = *acquired;
      GetRequest get;
      get.dir = v.dir;
      get.name = v.name;
      get.piece = static_cast<uint8_t>(k);
      get.cid = newest.cid;
      get.offset = SealedSize(PieceSize(v.size(), v.pieces(), k), newest.chunk_bytes);
      get.length = newest.xattr_bytes;
      auto reply = lease.Check(lease->Call<GetRequest, GetReply>(
          MsgType::kGet, get, DeadlineIn(options_.request_timeout)));
      if (!reply.ok()) {
        last = reply.status().Annotate(pool_->name(s));
        continue;
      }
      // The stream is small (at most kMaxXattrTrailerBytes): read it whole.
      std::string bytes;
      Status st;
      for (;;) {
        Frame f;
        st = lease.Check(lease->Recv(&f, DeadlineIn(options_.data_timeout)));
        if (!st.ok()) break;
        if (f.type() == MsgType::kError) {
          st = DecodeError(f.body);
          if (st.ok()) st = Status::Protocol("error frame without an error");
          break;
        }
        if (f.type() == MsgType::kDataEnd) break;
        if (f.type() != MsgType::kData || f.body.size() > reply->length - bytes.size()) {
          st = Status::Protocol(pool_->name(s) + " sent an unexpected frame or too much");
          break;
        }
        bytes += f.body;
      }
      if (!st.ok()) {
        lease->MarkBroken();
        last = st;
        continue;
      }
      // Only a copy with the newest record (this copy may have missed a
      // change), whose header verifies, and whose attributes open.
      const PieceHeader& h = reply->header;
      if (h.stamp != newest.stamp || h.xattr_bytes != newest.xattr_bytes ||
          bytes.size() != newest.xattr_bytes) {
        last =
            Status::Stale(pool_->name(s) + " holds older extended attributes of " + Escaped(path));
        continue;
      }
      if (Status bad = CheckGetReply(v, k, s, get, *reply); !bad.ok()) {
        last = bad;
        continue;
      }
      if (auto opened = OpenXattrs(keys_.content, newest.cid, bytes); !opened.ok()) {
        WarnOnce(s, path, "sent extended attributes that failed verification");
        last = opened.status().Annotate(pool_->name(s));
        continue;
      }
      return bytes;
    }
  }
  return last;
}

}  // namespace dfs::client
