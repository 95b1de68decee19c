// Client transfers: PUT (stage every piece on its servers, then commit) and
// traffic-optimized GET (each piece fetched once, pieces in parallel, with
// fallback to the other holder from the chunk where a transfer failed).
// Memory per transfer is bounded by one data frame plus one chunk per piece.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "fuse_client/client/client.h"
#include "shared/protocol/auth.h"
#include "shared/util/file_io.h"
#include "shared/util/log.h"
#include "shared/util/names.h"

namespace dfs::client {
namespace {

// Reads exactly n bytes at offset; a short read means the file shrank.
Status PreadExact(int fd, void* buf, size_t n, uint64_t offset) {
  DFS_ASSIGN_OR_RETURN(size_t got, PreadFull(fd, buf, n, offset, "read of the local file"));
  if (got < n) return Status::IoError("the local file changed while it was being uploaded");
  return Status::Ok();
}

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

struct StageOutcome {
  std::vector<int> staged;  // pieces staged on this server
  Status error;             // why the rest was not
};

// Phase 1 of a put streams to every server at once. A server that hangs
// (stopped, its disk stuck, its network gone quiet) must not hold the put
// for a full data timeout: once a server has staged its pieces, those still
// staging get a grace period (kMinStageGrace, or half of the time the put
// has taken so far, whichever is longer), then their streams are cut off
// (Connection::Abort) and their pieces go to substitutes, with hints.
constexpr std::chrono::milliseconds kMinStageGrace{2000};

class StageRace {
 public:
  explicit StageRace(int servers)
      : start_(std::chrono::steady_clock::now()),
        conns_(static_cast<size_t>(servers), nullptr),
        cut_(static_cast<size_t>(servers), false) {}

  // Server s is staging on `conn` (owned by the caller until End()).
  void Begin(int s, Connection* conn) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    conns_[static_cast<size_t>(s)] = conn;
  }
  // Server s is done (staged when `staged`). A server that staged waits for
  // the others still staging, for the grace period at most, then cuts them
  // off. After End() no one touches s's connection.
  void End(int s, bool staged) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    conns_[static_cast<size_t>(s)] = nullptr;
    changed_.SignalAll();
    if (!staged) return;
    const auto now = std::chrono::steady_clock::now();
    const auto grace =
        std::max<std::chrono::steady_clock::duration>(kMinStageGrace, (now - start_) / 2);
    const auto deadline = now + grace;
    while (Staging() && changed_.WaitUntil(&mu_, deadline)) {
    }
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (conns_[i] == nullptr) continue;
      conns_[i]->Abort();
      cut_[i] = true;
    }
  }
  // Whether server s was cut off.
  bool Cut(int s) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return cut_[static_cast<size_t>(s)];
  }

 private:
  bool Staging() const REQUIRES(mu_) {
    return std::any_of(conns_.begin(), conns_.end(), [](Connection* c) { return c != nullptr; });
  }

  const std::chrono::steady_clock::time_point start_;
  Mutex mu_;  // leaf lock; Abort() under it only shuts a socket down
  CondVar changed_;
  std::vector<Connection*> conns_ GUARDED_BY(mu_);
  std::vector<bool> cut_ GUARDED_BY(mu_);
};

}  // namespace

// Sealed bytes of the pieces of one upload, by piece index - 1. A small
// upload is sealed once, in memory, and each piece goes to both of its
// holders from there; a larger one is read and sealed per server as it
// streams (memory stays bounded), and `pieces` is empty.
struct SealedUpload {
  std::vector<std::string> pieces;
};

// How long a read waits on a server that went quiet (no reply, or no next
// chunk) when another copy of the piece can be asked instead.
constexpr Millis kQuietWithAlternative{2000};

// Uploads of at most this many bytes are sealed once, in memory.
constexpr uint64_t kSealOnceMaxBytes = 4u << 20;

// Seals every piece of the upload described by `base` from `fd`, each
// followed by the sealed extended attributes `xattrs`.
static Result<SealedUpload> SealAll(int fd, const PieceHeader& base, const Key& content_key,
                                    std::string_view xattrs) {
  SealedUpload out;
  ChunkCipher cipher(content_key, base.cid);
  std::vector<uint8_t> plain(base.chunk_bytes);
  for (int k = 1; k <= base.servers; ++k) {
    const uint64_t offset = PieceOffset(base.file_size, base.servers, k);
    const uint64_t size = PieceSize(base.file_size, base.servers, k);
    const uint64_t chunks = ChunkCount(size, base.chunk_bytes);
    std::string sealed;
    sealed.reserve(static_cast<size_t>(SealedSize(size, base.chunk_bytes) + xattrs.size()));
    for (uint64_t j = 0; j < chunks; ++j) {
      const uint64_t start = j * base.chunk_bytes;
      const size_t len = static_cast<size_t>(std::min<uint64_t>(base.chunk_bytes, size - start));
      DFS_RETURN_IF_ERROR(PreadExact(fd, plain.data(), len, offset + start));
      cipher.Seal(static_cast<uint32_t>(k), j, j + 1 == chunks, std::span(plain.data(), len),
                  &sealed);
    }
    sealed.append(xattrs);
    out.pieces.push_back(std::move(sealed));
  }
  return out;
}

// Stages the pieces `headers` on one server in one request (kStage): the
// request, the sealed bytes of every piece (its content, then `xattrs`) in kData frames and a
// kDataEnd go out back to back; one reply comes once the server has fsync'ed them all.
static Status StagePieces(Connection& conn, const Options& opts, int fd, const std::string& dir,
                          const std::string& name, const std::vector<PieceHeader>& headers,
                          const Key& content_key, const SealedUpload& sealed,
                          std::string_view xattrs, std::atomic<uint64_t>* progress) {
  DFS_RETURN_IF_ERROR(conn.Queue(MsgType::kStage, EncodeMessage(StageRequest{dir, name, headers}),
                                 /*new_request=*/true, DeadlineIn(opts.request_timeout)));
  std::string frame;
  auto emit = [&](std::string_view bytes) -> Status {
    while (!bytes.empty()) {
      const size_t take = std::min<size_t>(bytes.size(), kMaxDataBody - frame.size());
      frame.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (frame.size() == kMaxDataBody) {
        DFS_RETURN_IF_ERROR(
            conn.Queue(MsgType::kData, frame, false, DeadlineIn(opts.data_timeout)));
        frame.clear();
      }
    }
    return Status::Ok();
  };
  std::vector<uint8_t> plain;
  std::string sealed_chunk;
  for (const PieceHeader& h : headers) {
    if (!sealed.pieces.empty()) {
      DFS_RETURN_IF_ERROR(emit(sealed.pieces[static_cast<size_t>(h.piece - 1)]));
      if (progress != nullptr) progress->fetch_add(h.piece_size, std::memory_order_relaxed);
      continue;
    }
    ChunkCipher cipher(content_key, h.cid);
    const uint64_t offset = PieceOffset(h.file_size, h.servers, h.piece);
    const uint64_t chunks = ChunkCount(h.piece_size, h.chunk_bytes);
    plain.resize(h.chunk_bytes);
    for (uint64_t j = 0; j < chunks; ++j) {
      const uint64_t start = j * h.chunk_bytes;
      const size_t len =
          static_cast<size_t>(std::min<uint64_t>(h.chunk_bytes, h.piece_size - start));
      DFS_RETURN_IF_ERROR(PreadExact(fd, plain.data(), len, offset + start));
      sealed_chunk.clear();
      cipher.Seal(h.piece, j, j + 1 == chunks, std::span(plain.data(), len), &sealed_chunk);
      DFS_RETURN_IF_ERROR(emit(sealed_chunk));
      if (progress != nullptr) progress->fetch_add(len, std::memory_order_relaxed);
    }
    DFS_RETURN_IF_ERROR(emit(xattrs));
  }
  if (!frame.empty())
    DFS_RETURN_IF_ERROR(conn.Queue(MsgType::kData, frame, false, DeadlineIn(opts.data_timeout)));
  DFS_RETURN_IF_ERROR(conn.Queue(MsgType::kDataEnd, "", false, DeadlineIn(opts.data_timeout)));
  // The server fsyncs the staged pieces before it answers: allow for large ones.
  Frame reply;
  DFS_RETURN_IF_ERROR(conn.Recv(&reply, DeadlineIn(opts.data_timeout * 3)));
  return ParseReply<Empty>(reply).status();
}

Result<PutResult> Client::Put(int fd, std::string_view path, const FileAttrs& attrs,
                              const std::optional<KnownDigest>& known,
                              std::atomic<uint64_t>* progress) {
  DFS_ASSIGN_OR_RETURN(ParentAndName p, SplitParent(path));
  if (p.name.empty()) return Status::IsDir("cannot write the root folder");
  const std::string& dir = p.dir;
  const std::string& name = p.name;

  struct stat st {};
  if (::fstat(fd, &st) != 0) return FromErrno(errno, "stat of the local file");
  if (!S_ISREG(st.st_mode)) return Status::Invalid("only regular files can be uploaded");
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  // Placement needs MD5 of the whole content first (unless the caller
  // computed it while the file was written).
  const bool use_known = known && known->size == size;
  Md5 md5;
  if (!use_known) {
    std::vector<uint8_t> buf(1 << 20);
    for (uint64_t off = 0; off < size;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
      DFS_RETURN_IF_ERROR(PreadExact(fd, buf.data(), n, off));
      md5.Update(buf.data(), n);
      off += n;
    }
  }
  const Digest16 digest = use_known ? known->md5 : md5.Final();

  PieceHeader base;
  base.kind = PieceKind::kPiece;
  base.scheme = scheme_.id;
  base.servers = static_cast<uint8_t>(scheme_.servers);
  base.copies = static_cast<uint8_t>(scheme_.copies);
  base.x = static_cast<uint8_t>(ResidueOf(digest, scheme_.servers));
  base.cid = RandomCid();
  base.stamp = Stamp::Now();
  base.file_size = size;
  base.mtime_ns = attrs.mtime_ns != 0 ? attrs.mtime_ns : static_cast<int64_t>(NowNs());
  base.mode = attrs.mode & (kModeTypeMask | kModeBits);
  if (!ValidRecordMode(PieceKind::kPiece, base.mode))
    return Status::Invalid("cannot store a file of type " + std::to_string(base.mode >> 12));
  base.chunk_bytes = kDefaultChunkBytes;
  base.uid = attrs.uid.value_or(static_cast<uint32_t>(::geteuid()));
  base.gid = attrs.gid.value_or(static_cast<uint32_t>(::getegid()));
  base.rdev = attrs.rdev;
  DFS_ASSIGN_OR_RETURN(const std::string xattrs, SealXattrs(keys_.content, base.cid, attrs.xattrs));
  base.xattr_bytes = static_cast<uint16_t>(xattrs.size());

  PutResult result;
  result.size = size;
  DFS_RETURN_IF_ERROR(PutPieces(fd, dir, name, base, xattrs, &result, progress));
  return result;
}

Result<PutResult> Client::PutBytes(std::string_view path, std::string_view content,
                                   const FileAttrs& attrs) {
  UniqueFd fd(::memfd_create("dfs-put", MFD_CLOEXEC));
  if (!fd) return FromErrno(errno, "memfd_create");
  DFS_RETURN_IF_ERROR(WriteAll(fd.get(), content.data(), content.size(), "write memfd"));
  return Put(fd.get(), path, attrs);
}

Status Client::PutPieces(int fd, const std::string& dir, const std::string& name,
                         const PieceHeader& base, std::string_view xattrs, PutResult* result,
                         std::atomic<uint64_t>* progress) {
  const int n = scheme_.servers;
  const std::string path = JoinName(dir, name);
  SealedUpload sealed;
  if (base.file_size <= kSealOnceMaxBytes) {
    DFS_ASSIGN_OR_RETURN(sealed, SealAll(fd, base, keys_.content, xattrs));
  }
  auto header_of = [&](int k) {
    PieceHeader h = base;
    h.piece = static_cast<uint8_t>(k);
    h.piece_size = PieceSize(base.file_size, n, k);
    h.Sign(keys_.record, path);
    return h;
  };
  // Stages `headers` on server s, making the folder there if it lacks it.
  auto stage_on = [&](int s, Lease& lease, const std::vector<PieceHeader>& headers) {
    Status st = StagePieces(*lease, options_, fd, dir, name, headers, keys_.content, sealed, xattrs,
                            progress);
    if (st.code() == Code::kNotFound && !lease->broken()) {
      // The folder is missing on this server (it was down when the folder was made).
      st = EnsureDirOn(s, dir);
      if (st.ok())
        st = StagePieces(*lease, options_, fd, dir, name, headers, keys_.content, sealed, xattrs,
                         progress);
    }
    if (!st.ok()) {
      // A stream cut short leaves the connection unusable.
      lease->MarkBroken();
      (void)lease.Check(st);
    }
    return st;
  };
  // Phase 1: stage the pieces of each server in one request, servers in parallel.
  StageRace race(n);
  auto staged = ForEachServer<StageOutcome>([&](int s) -> Result<StageOutcome> {
    StageOutcome out;
    // A server that refused a connection moments ago may be back: a write
    // asks it anyway (a refusal costs nothing) rather than keep one copy
    // fewer of its pieces. One that missed a deadline waits for the prober.
    auto lease = pool_->Acquire(s, /*probe=*/!pool_->Hung(s));
    if (!lease.ok()) {
      if (lease.status().code() == Code::kAuthFailed || lease.status().code() == Code::kUntrusted)
        return lease.status();
      out.error = lease.status();
      return out;
    }
    std::vector<PieceHeader> headers;
    for (int k : PiecesOnServer(scheme_, base.x, s + 1)) headers.push_back(header_of(k));
    if (headers.empty()) return out;
    race.Begin(s, &**lease);
    Status st = stage_on(s, *lease, headers);
    race.End(s, st.ok());
    if (!st.ok() && race.Cut(s)) {
      st = Status::Timeout("cut off: still staging well after the other servers had finished");
      pool_->MarkDown(s, st.Annotate(pool_->name(s)));
    }
    if (!st.ok()) {
      out.error = st.Annotate(pool_->name(s));
      return out;
    }
    for (const PieceHeader& h : headers) out.staged.push_back(h.piece);
    return out;
  });
  for (int s = 0; s < n; ++s)
    if (!staged[s].ok()) return staged[s].status();  // authentication or an untrusted key

  // Hinted handoff: each piece a server failed to stage gets a copy on a
  // substitute, another server that staged its own pieces, so that it still
  // has its copies; the server that failed gets a hint (below, before the
  // commit, so that no committed change goes without one).
  std::vector<std::vector<PieceHeader>> extra(static_cast<size_t>(n));
  std::vector<int> missed;  // servers that staged none of their pieces
  {
    std::vector<std::vector<int>> holding(static_cast<size_t>(n));
    for (int s = 0; s < n; ++s)
      for (int k : staged[s]->staged) holding[k - 1].push_back(s);
    for (int k = 1; k <= n; ++k) {
      auto& have = holding[k - 1];
      for (int s1 : ServersForPiece(scheme_, base.x, k)) {
        const int failed = s1 - 1;
        if (staged[failed]->error.ok()) continue;
        if (std::find(missed.begin(), missed.end(), failed) == missed.end())
          missed.push_back(failed);
        for (int i = 1; i < n && static_cast<int>(have.size()) < scheme_.copies; ++i) {
          const int sub = (failed + i) % n;
          if (!staged[sub]->error.ok() || staged[sub]->staged.empty() ||
              std::find(have.begin(), have.end(), sub) != have.end())
            continue;
          have.push_back(sub);
          extra[sub].push_back(header_of(k));
        }
      }
    }
  }
  if (!missed.empty()) {
    auto substituted = ForEachServer<Empty>([&](int s) -> Result<Empty> {
      if (extra[s].empty()) return Empty{};
      DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
      DFS_RETURN_IF_ERROR(stage_on(s, lease, extra[s]));
      return Empty{};
    });
    for (int s = 0; s < n; ++s) {
      if (extra[s].empty()) continue;
      if (!substituted[s].ok()) {
        Logger("client")->info("{}: no copy in place of a server that is down: {}", Escaped(path),
                               substituted[s].status().Annotate(pool_->name(s)).message());
        continue;
      }
      for (const PieceHeader& h : extra[s]) staged[s]->staged.push_back(h.piece);
    }
    for (int s : missed) AddHints(s, path, base.stamp);
  }

  std::vector<std::vector<int>> holders(static_cast<size_t>(n));
  std::vector<std::pair<std::string, Status>> errors;
  for (int s = 0; s < n; ++s) {
    for (int k : staged[s]->staged) holders[k - 1].push_back(s);
    if (!staged[s]->error.ok()) errors.emplace_back(pool_->name(s), staged[s]->error);
  }
  auto abort_all = [&] {
    ForEachServer<Empty>([&](int s) -> Result<Empty> {
      if (staged[s]->staged.empty()) return Empty{};
      DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
      return lease.Check(lease->Call<AbortRequest, Empty>(MsgType::kAbort, AbortRequest{base.cid},
                                                          DeadlineIn(options_.request_timeout)));
    });
  };
  for (int k = 1; k <= n; ++k) {
    if (!holders[k - 1].empty()) continue;
    abort_all();
    std::string why;
    for (const auto& [server, st] : errors) why += (why.empty() ? "" : "; ") + st.message();
    // A refusal by a server that answered (no space, a folder in the way...) is
    // more telling than "unavailable".
    for (const auto& [server, st] : errors)
      if (!IsNetworkFailure(st)) return Status(st.code(), "upload failed: " + st.message());
    return Status::Unavailable("upload failed: piece " + std::to_string(k) +
                               " could not be stored on any of its servers (" + why + ")");
  }

  // Phase 2: commit on every server that staged something.
  CommitRequest commit{dir, name, base.cid, base.stamp};
  auto committed = ForEachServer<CommitReply>([&](int s) -> Result<CommitReply> {
    if (staged[s]->staged.empty()) return CommitReply{};
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
    return lease.Check(lease->Call<CommitRequest, CommitReply>(MsgType::kCommit, commit,
                                                               DeadlineIn(options_.data_timeout)));
  });
  std::vector<ServerSet> placed(static_cast<size_t>(n));
  for (int s = 0; s < n; ++s) {
    if (!committed[s].ok()) {
      if (!IsNetworkFailure(committed[s].status()) &&
          committed[s].status().code() != Code::kNotFound) {
        abort_all();
        RevertCommit(dir, name, base, committed);
        return Status(committed[s].status().code(),
                      "upload failed: " + committed[s].status().Annotate(pool_->name(s)).message());
      }
      errors.emplace_back(pool_->name(s), committed[s].status().Annotate(pool_->name(s)));
      // It staged but may not have committed: what it holds is settled
      // once it answers again.
      if (IsNetworkFailure(committed[s].status())) AddHints(s, path, base.stamp);
      continue;
    }
    // Only what this server staged counts, whatever it claims.
    const std::vector<int>& mine = staged[s]->staged;
    for (uint8_t k : committed[s]->committed)
      if (k >= 1 && k <= n && std::find(mine.begin(), mine.end(), k) != mine.end())
        placed[k - 1].push_back(s);
  }
  for (int k = 1; k <= n; ++k) {
    if (placed[k - 1].empty()) {
      // Servers keep the newer of two concurrent uploads: if one beat ours,
      // ours is simply superseded (last writer wins), not failed.
      auto now = StatIn(dir, name);
      if (now.ok() && !now->is_dir && base.stamp < now->file.newest.stamp) {
        result->notes.push_back("superseded by a newer upload of the same name");
        return Status::Ok();
      }
      RevertCommit(dir, name, base, committed);
      return Status::Unavailable("upload failed: piece " + std::to_string(k) +
                                 " could not be committed on any server");
    }
    if (static_cast<int>(placed[k - 1].size()) < scheme_.copies) {
      if (!result->degraded) repair_stats_.degraded_uploads.fetch_add(1, std::memory_order_relaxed);
      result->degraded = true;
      std::string missing;
      for (int s : ServersForPiece(scheme_, base.x, k)) {
        if (!placed[k - 1].contains(s - 1))
          missing += (missing.empty() ? "" : ", ") + pool_->name(s - 1);
      }
      result->notes.push_back("piece " + std::to_string(k) + " stored once (missing on " + missing +
                              ")");
    }
  }
  if (result->degraded)
    Logger("client")->info("degraded upload of {}: {}", Escaped(path), result->notes.front());
  FileVersion& v = result->version;
  v.dir = dir;
  v.name = name;
  v.exists = true;
  v.newest = base;
  v.newest.piece = 1;
  v.newest.piece_size = PieceSize(base.file_size, n, 1);
  v.holders = std::move(placed);
  return Status::Ok();
}

void Client::RevertCommit(const std::string& dir, const std::string& name, const PieceHeader& base,
                          const std::vector<Result<CommitReply>>& committed) {
  // The previous version: the newest verified record older than this upload.
  auto seen = StatEach(dir, name);
  std::vector<Observed> older;
  for (int s = 0; s < pool_->size(); ++s)
    if (seen[s].ok())
      for (const PieceHeader& h : seen[s]->pieces)
        if (h.stamp < base.stamp) older.push_back({s, h});
  const FileVersion previous = Resolve(dir, name, Screen(dir, name, std::move(older)).accepted);
  RevertRequest revert{dir, name, base.cid, previous.exists ? previous.newest.cid : Cid{}};
  ForEachServer<Empty>([&](int s) -> Result<Empty> {
    if (!committed[s].ok() || committed[s]->committed.empty()) return Empty{};
    DFS_ASSIGN_OR_RETURN(Lease lease, pool_->Acquire(s));
    auto r = lease.Check(lease->Call<RevertRequest, Empty>(MsgType::kRevert, revert,
                                                           DeadlineIn(options_.request_timeout)));
    if (!r.ok())
      Logger("client")->warn("{}: could not undo the failed upload's commit on {}: {}",
                             Escaped(JoinName(dir, name)), pool_->name(s),
                             EscapeControl(r.status().ToString()));
    return r;
  });
}

int Client::PreferredHolder(const FileVersion& v, int piece) const {
  const auto& holders = v.holders[static_cast<size_t>(piece - 1)];
  if (holders.empty()) return -1;
  Scheme sc{v.newest.servers, v.newest.copies, v.newest.scheme};
  // Placement order puts each piece's first holder on a different server,
  // so a whole-file read spreads over all servers.
  for (int s : ServersForPiece(sc, v.newest.x, piece)) {
    const int idx = s - 1;
    if (holders.contains(idx) && pool_->MaybeUp(idx)) return idx;
  }
  for (int s : holders)
    if (pool_->MaybeUp(s)) return s;
  return holders.front();
}

Status Client::ReadChunks(const FileVersion& v, int piece, uint64_t first, uint64_t last,
                          int preferred_server, const ChunkSink& sink) {
  const PieceHeader& meta = v.newest;
  const uint64_t piece_size = PieceSize(meta.file_size, meta.servers, piece);
  const uint64_t chunks = ChunkCount(piece_size, meta.chunk_bytes);
  last = std::min(last, chunks);
  if (first >= last) return Status::Ok();
  const uint64_t sealed_chunk = uint64_t{meta.chunk_bytes} + kTagBytes;
  const uint64_t sealed_size = SealedSize(piece_size, meta.chunk_bytes);

  std::vector<int> order;
  if (preferred_server >= 0) order.push_back(preferred_server);
  for (int s : v.holders[static_cast<size_t>(piece - 1)])
    if (s != preferred_server) order.push_back(s);
  if (order.empty())
    return Status::Incomplete(std::string(kIncompleteMessage) + " (piece " + std::to_string(piece) +
                              " has no reachable copy)");

  uint64_t next = first;
  Status last_error =
      Status::Unavailable("no copy of piece " + std::to_string(piece) + " answered");
  // An untrusted server key is the more telling error: keep it.
  auto note_error = [&](Status st) {
    if (last_error.code() != Code::kUntrusted || st.code() == Code::kUntrusted)
      last_error = std::move(st);
  };
  std::vector<uint8_t> plain(meta.chunk_bytes);
  ChunkCipher cipher(keys_.content, meta.cid);
  std::vector<int> corrupt;  // servers whose copy failed a chunk's check
  int finished_on = -1;      // the server that delivered the last chunk
  for (size_t attempt = 0; attempt < order.size(); ++attempt) {
    const int server = order[attempt];
    if (next >= last) break;
    // Another copy asked for what the one before did not deliver.
    if (attempt > 0) repair_stats_.read_retries.fetch_add(1, std::memory_order_relaxed);
    // With another copy to turn to, a server that goes quiet is left after
    // kQuietWithAlternative instead of the full deadline (a hung server
    // costs a reader seconds, not tens of them); the last copy gets it all.
    const bool alternative = attempt + 1 < order.size();
    const Millis reply_wait = alternative
                                  ? std::min(options_.request_timeout, kQuietWithAlternative)
                                  : options_.request_timeout;
    const Millis stream_wait = alternative ? std::min(options_.data_timeout, kQuietWithAlternative)
                                           : options_.data_timeout;
    auto acquired = pool_->Acquire(server);
    if (!acquired.ok()) {
      note_error(acquired.status());
      continue;
    }
    Lease& lease = *acquired;
    GetRequest req;
    req.dir = v.dir;
    req.name = v.name;
    req.piece = static_cast<uint8_t>(piece);
    req.cid = meta.cid;
    req.offset = next * sealed_chunk;
    req.length = std::min(last * sealed_chunk, sealed_size) - req.offset;
    auto reply =
        lease.Check(lease->Call<GetRequest, GetReply>(MsgType::kGet, req, DeadlineIn(reply_wait)));
    if (!reply.ok()) {
      note_error(reply.status().Annotate(pool_->name(server)));
      continue;
    }
    if (Status bad = CheckGetReply(v, piece, server, req, *reply); !bad.ok()) {
      lease->MarkBroken();  // the stream that follows is not read
      (void)lease.Check(bad);
      note_error(std::move(bad));
      continue;
    }
    // Peel whole sealed chunks off the incoming frames.
    std::string buf;
    size_t pos = 0;
    uint64_t received = 0;  // never more than the reply announced
    Status st;
    bool ended = false;
    ProgressDeadline progress(stream_wait, meta.chunk_bytes);
    while (st.ok() && !ended) {
      Frame f;
      st = lease.Check(lease->Recv(&f, progress.get()));
      if (!st.ok()) break;
      if (f.type() == MsgType::kError) {
        st = DecodeError(f.body);
        if (st.ok()) st = Status::Protocol("error frame without an error");
        break;
      }
      if (f.type() == MsgType::kDataEnd) {
        ended = true;
      } else if (f.type() == MsgType::kData) {
        if (f.body.empty()) {
          st = lease.Check(Status::Protocol(pool_->name(server) + " sent an empty data frame"));
          break;
        }
        if (f.body.size() > reply->length - received) {
          st = lease.Check(Status::Protocol(pool_->name(server) + " sent more than the " +
                                            std::to_string(reply->length) + " bytes it announced"));
          break;
        }
        received += f.body.size();
        progress.Add(f.body.size());
        if (pos > 0 && pos == buf.size()) {
          buf.clear();
          pos = 0;
        }
        buf.append(f.body);
      } else {
        st = lease.Check(Status::Protocol("unexpected frame in a piece stream"));
        break;
      }
      while (next < last) {
        const uint64_t plain_len =
            std::min<uint64_t>(meta.chunk_bytes, piece_size - next * meta.chunk_bytes);
        const size_t need = static_cast<size_t>(plain_len + kTagBytes);
        if (buf.size() - pos < need) break;
        st = cipher.Open(static_cast<uint32_t>(piece), next, next + 1 == chunks,
                         std::span(reinterpret_cast<const uint8_t*>(buf.data()) + pos, need),
                         plain.data());
        if (!st.ok()) {
          st = st.Annotate(pool_->name(server));
          break;
        }
        pos += need;
        Status sink_status = sink(next, std::span<const uint8_t>(plain.data(), plain_len));
        if (!sink_status.ok()) {
          lease->MarkBroken();
          return sink_status;
        }
        ++next;
      }
      if (pos > (1u << 20)) {
        buf.erase(0, pos);
        pos = 0;
      }
    }
    if (ended && next < last && st.ok())
      st = Status::Protocol(pool_->name(server) + " ended the piece stream early");
    if (!ended) lease->MarkBroken();  // stopped mid-stream: cannot resync
    if (!st.ok()) {
      Logger("client")->info("piece {} of {} from {} failed at chunk {}: {}", piece,
                             Escaped(JoinName(v.dir, v.name)), pool_->name(server), next,
                             EscapeControl(st.ToString()));
      if (st.code() == Code::kCorrupt) corrupt.push_back(server);
      note_error(st);
    }
    if (next >= last) finished_on = server;
  }
  if (next < last) return last_error;
  // Read repair: a copy that failed its check is replaced from the one that
  // passed, once that one passed whole (not only the chunks read here).
  Status source_ok = corrupt.empty() ? Status::Ok() : VerifyCopy(v, piece, finished_on);
  for (int bad : corrupt) {
    Status fixed = source_ok.ok() ? CopyPiece(v, piece, finished_on, bad) : source_ok;
    if (fixed.ok())
      Logger("client")->warn("piece {} of {} on {} was corrupt: replaced from {}", piece,
                             Escaped(JoinName(v.dir, v.name)), pool_->name(bad),
                             pool_->name(finished_on));
    else
      Logger("client")->warn("piece {} of {} on {} is corrupt; replacing it failed: {}", piece,
                             Escaped(JoinName(v.dir, v.name)), pool_->name(bad),
                             EscapeControl(fixed.ToString()));
  }
  return Status::Ok();
}

Status Client::CheckGetReply(const FileVersion& v, int piece, int server, const GetRequest& req,
                             const GetReply& reply) {
  if (reply.offset != req.offset || reply.length != req.length)
    return Status::Protocol(pool_->name(server) + " answered with another range");
  const PieceHeader& h = reply.header;
  const std::string path = JoinName(v.dir, v.name);
  if (!AcceptRecord(h, keys_.record, path, scheme_) || h.tombstone() || h.piece != piece ||
      h.cid != v.newest.cid || h.file_size != v.newest.file_size ||
      h.chunk_bytes != v.newest.chunk_bytes) {
    WarnOnce(server, path, "sent a piece header that failed verification");
    return Status::Corrupt(pool_->name(server) + ": piece " + std::to_string(piece) + " of " +
                           Escaped(path) + " failed verification");
  }
  return Status::Ok();
}

Status Client::Get(std::string_view path, int fd) {
  DFS_ASSIGN_OR_RETURN(Entry e, Stat(path));
  if (e.is_dir) return Status::IsDir(Escaped(path) + " is a folder");
  return Get(e.file, fd);
}

Status Client::Get(const FileVersion& v, int fd, std::atomic<uint64_t>* progress) {
  if (!v.exists) return Status::NotFound("no such file " + Escaped(JoinName(v.dir, v.name)));
  if (!v.complete()) return Status::Incomplete(kIncompleteMessage);
  const int pieces = v.pieces();
  std::vector<Status> results(static_cast<size_t>(pieces));
  RunAll(static_cast<size_t>(pieces), [&](size_t i) {
    const int k = static_cast<int>(i) + 1;
    const uint64_t base = PieceOffset(v.size(), pieces, k);
    const uint32_t chunk = v.newest.chunk_bytes;
    results[i] = ReadChunks(v, k, 0, UINT64_MAX, PreferredHolder(v, k),
                            [&](uint64_t j, std::span<const uint8_t> plain) {
                              Status w = PwriteAll(fd, plain.data(), plain.size(), base + j * chunk,
                                                   "write of the local file");
                              if (w.ok() && progress != nullptr)
                                progress->fetch_add(plain.size(), std::memory_order_relaxed);
                              return w;
                            });
  });
  for (auto& s : results)
    if (!s.ok()) return s;
  // Read repair: a server that missed this version while it was down gets
  // its pieces back now (sealed bytes are copied; nothing is re-encrypted).
  std::vector<std::string> notes;
  const int copied = RepairPieces(v, &notes);
  repair_stats_.read_repairs.fetch_add(static_cast<uint64_t>(copied), std::memory_order_relaxed);
  if (copied > 0)
    Logger("client")->info("repaired {} piece(s) of {}", copied, Escaped(JoinName(v.dir, v.name)));
  for (const auto& n : notes) Logger("client")->info("repair: {}", EscapeControl(n));
  return Status::Ok();
}

}  // namespace dfs::client
