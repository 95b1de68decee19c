// The dfs client library: every user-visible operation (list, stat, put, get,
// random reads, mkdir, rmdir, unlink, rename, attributes, statfs, repair)
// against N storage servers. No FUSE header here: dfc and dfcfs are thin
// front ends over this class, and tests drive it directly.
//
// The client trusts no server (DESIGN.md "Trust model"): every record it
// writes is signed with the user's record key for its path, every record it
// reads is verified (version.h CheckRecord; one that fails is absent, logged
// once and reported by Describe), and everything a server sends is bounded
// (listings, data streams, piece indexes).
//
// Thread-safe: every method may be called from many threads at once.
// Paths are relative to the user's root: "", "a", "a/b.txt" ("/a/b" works too).
// Errors: kNotFound, kExists, kNotEmpty, kNotDir, kIsDir, kInvalidArgument,
// kNameTooLong, kAuthFailed (message kAuthFailedMessage), kUntrusted (a
// server's key is not the pinned one; the message names the server and both
// fingerprints), kIncomplete ("File is incomplete."), kUnavailable (not
// enough servers), kCorrupt, kTimeout, kProtocol, kIoError (local file errors).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fuse_client/client/connection.h"
#include "fuse_client/client/list_merge.h"
#include "fuse_client/client/version.h"
#include "fuse_client/client/work_pool.h"
#include "shared/config/config.h"
#include "shared/format/xattrs.h"
#include "shared/placement/placement.h"
#include "shared/util/mutex.h"
#include "shared/util/thread_annotations.h"

namespace dfs::client {

inline constexpr char kIncompleteMessage[] = "File is incomplete.";
// Most entries one server may send for one folder; more is kProtocol.
inline constexpr size_t kMaxListEntries = size_t{1} << 20;
// And what one server's listing may cost in memory while it is merged
// (list_merge.h: records waiting, plus 256 bytes per name handed on; about
// 500,000 names: folders of 500,000 files, or of 250,000 files and as many
// subfolders).
inline constexpr size_t kMaxListBytes = size_t{128} << 20;
// A listing must deliver this many more bytes within Options::request_timeout
// of the last such step (a folder of 100,000 files takes seconds to list; a
// hung server is still given up after request_timeout).
inline constexpr uint64_t kListProgressBytes = 32 * 1024;
// Stat() looks again (for up to ~0.8 s) at a version younger than this that
// looks incomplete: its commit is most likely still under way.
inline constexpr uint64_t kCommitWindowNs = 30'000'000'000ull;
// Of those, records that fail CheckRecord kept per server listing (for
// reports and heal); the rest are counted against the cap and dropped.
inline constexpr size_t kMaxRejectedKept = 4096;

struct Entry {
  std::string name;
  bool is_dir = false;
  // A folder's attributes (mode, owner, mtime), when it has a record (folders
  // made before records existed have none), and its subfolders.
  Boxed<PieceHeader> folder;
  uint32_t subdirs = 0;
  FileVersion file;  // meaningful when !is_dir
  // Convenience for stat-like callers.
  uint64_t size() const { return is_dir ? 0 : file.size(); }
  bool complete() const { return is_dir || file.complete(); }
};

struct Listing {
  // Sorted by name; deleted files left out. A deque: a folder of 100,000
  // names grows in place instead of being copied at every doubling.
  std::deque<Entry> entries;
  std::vector<int> unreachable;  // servers (0-based) that did not answer
};

// What each server holds in one folder, before resolution.
struct RawListing {
  using Name = NameRecords;
  std::map<std::string, Name> names;
  std::vector<int> unreachable;
};

// Sealed bytes of whole pieces of one version, by piece index (Stat, Open).
using InlinePieces = std::map<int, std::string>;

// What a put stores besides the content.
struct FileAttrs {
  // st_mode: permission bits (07777), and the type: regular (S_IFREG or
  // 0), symbolic link (the content is the target), fifo, socket, device.
  uint32_t mode = 0644;
  int64_t mtime_ns = 0;              // 0 = now
  std::optional<uint32_t> uid, gid;  // unset: this process's effective ids
  uint64_t rdev = 0;                 // device nodes only
  XattrMap xattrs;                   // user.* extended attributes (xattrs.h)
};

// The attributes a record carries (mode, mtime, owner, rdev), to make another.
FileAttrs AttrsOf(const PieceHeader& h);

// An attribute change (SetAttr): what is set; the rest stays.
struct AttrChange {
  std::optional<uint32_t> mode;  // permission bits (07777); the type stays
  std::optional<int64_t> mtime_ns;
  std::optional<uint32_t> uid, gid;
  bool empty() const { return !mode && !mtime_ns && !uid && !gid; }
};

struct PutResult {
  uint64_t size = 0;
  bool degraded = false;           // some piece has fewer copies than the scheme wants
  std::vector<std::string> notes;  // human-readable: which servers/pieces missed
  // The version now stored (what a Stat would find), unless a newer upload
  // of the same name won (then exists is false).
  FileVersion version;
};

struct FsStats {
  uint64_t total_bytes = 0;  // usable capacity (raw / copies)
  uint64_t free_bytes = 0;
  uint64_t avail_bytes = 0;
  int servers_up = 0;
};

// One server as `dfc status` shows it (status.cc).
struct ServerStatus {
  std::string name;     // "DFS1"
  std::string address;  // "127.0.0.1:10001"
  bool up = false;
  std::string reason;  // when down: refused, timeout, auth failed, key changed, ...
  double rtt_ms = 0;   // one StatFs round trip
  std::string version;
  uint64_t total_bytes = 0, avail_bytes = 0;  // of the disk it stores on
  uint64_t user_bytes = 0;  // this user's piece files there (from the records listed)
  uint64_t hints_for = 0;   // changes it missed, waiting on the other servers
};
struct ClusterStatus {
  std::vector<ServerStatus> servers;
  uint64_t files = 0, folders = 0;
  uint64_t incomplete = 0;        // cannot be read now (a piece on no server that answers)
  uint64_t degraded = 0;          // readable, but some piece has fewer copies than the scheme wants
  uint64_t hints = 0;             // changes waiting for a server (sum of hints_for)
  bool folders_unlisted = false;  // some folder could not be listed (counts are low)
  // 0 healthy, 1 degraded (a server down, a file degraded, hints waiting),
  // 2 some file unreadable: `dfc status`'s exit status.
  int Severity() const;
};

struct HealReport {
  int files_checked = 0;
  int pieces_copied = 0;
  int stale_removed = 0;
  int unrepairable = 0;
  int hints_handed_off = 0;  // paths a server missed, brought up to date (handoff.cc)
  int extra_removed = 0;     // extra copies hinted handoff had made, dropped
  int hints_pending = 0;     // hinted paths that could not be settled yet
  int copies_verified = 0;   // with verify: piece copies read whole and checked (good or not)
  int corrupt_repaired = 0;  // copies that failed the check, replaced from a good copy
  int corrupt_left = 0;      // copies that failed the check and could not be replaced
  std::vector<std::string> notes;
};

// What a long-running client did for the cluster's health (the mount's
// user.dfs.stats). Relaxed atomics.
struct RepairStats {
  std::atomic<uint64_t> hints_written{0};      // changes a down server missed, noted
  std::atomic<uint64_t> paths_handed_off{0};   // of those, brought up to date
  std::atomic<uint64_t> pieces_handed_off{0};  // piece copies the handoff made
  std::atomic<uint64_t> degraded_uploads{0};   // uploads with fewer copies than wanted
  std::atomic<uint64_t> read_repairs{0};       // piece copies a read put back
  std::atomic<uint64_t> read_retries{0};       // reads that turned to another copy
};

class Reader;

class Client {
 public:
  // Derives the user's keys (slow and memory-hard: scrypt). Does not contact
  // any server.
  explicit Client(ClientConfig config, Options options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientConfig& config() const { return config_; }
  const Scheme& scheme() const { return scheme_; }
  ServerPool& pool() { return *pool_; }

  // Authenticates with every reachable server. kAuthFailed if any refuses,
  // kUntrusted if any presents a key that is not the pinned one;
  // kUnavailable if none answers.
  Status Ping();

  // LIST of one directory on all reachable servers, merged.
  Result<Listing> List(std::string_view dir);
  // What each server holds in `dir` (normalized), records screened. A server
  // that sends more than kMaxListEntries entries, or its entries out of
  // order, counts as unreachable (kProtocol); names that fail ValidateName
  // are skipped.
  Result<RawListing> ListRaw(const std::string& dir);
  // The same, name by name in order as the servers' listings stream in
  // (list_merge.h), without holding the whole folder. `sink` runs under the
  // merge's lock. When servers skipped for back-off must be asked after
  // all (some file looked incomplete without them), the listing is taken
  // again: `restart` is called first, and the names come once more.
  // *failed: the servers whose listing failed, possibly midway: the folder
  // names they alone sent (folders carry no MAC) must then be dropped;
  // their file records verified, so they stand.
  using NameSink = std::function<void(std::string&& name, NameRecords&& records)>;
  Status StreamListing(const std::string& dir, const NameSink& sink,
                       const std::function<void()>& restart, std::vector<int>* unreachable,
                       std::vector<bool>* failed);
  // One name: a directory, or a file with its resolved version. The root "" is a directory.
  // With `inline_pieces`, the servers also send the sealed bytes of small
  // pieces (StatRequest::inline_max); those of the resolved version are
  // stored there by piece index, for Open().
  Result<Entry> Stat(std::string_view path, InlinePieces* inline_pieces = nullptr);

  // Uploads the whole content of `fd` (read with pread from offset 0 to its
  // current size) as `path`. The previous version stays if this fails.
  // `known`, when given, is the MD5 of the first known->size bytes of the
  // file (the mount computes it while a file is written in order); it is
  // used when the file has exactly that size, else the content is hashed
  // here with one more pass over the file.
  struct KnownDigest {
    uint64_t size = 0;
    Digest16 md5{};
  };
  // `progress`, when given, counts the bytes of content sent so far, over
  // every copy (the whole is size x copies), for a progress display.
  Result<PutResult> Put(int fd, std::string_view path, const FileAttrs& attrs,
                        const std::optional<KnownDigest>& known = std::nullopt,
                        std::atomic<uint64_t>* progress = nullptr);
  // Downloads a complete file into `fd` with pwrite at offset 0..size (the
  // caller truncates/creates it). Each piece is fetched once, pieces from
  // different servers in parallel. kIncomplete when a piece has no holder.
  // `progress`, when given, counts the bytes written to fd so far.
  Status Get(const FileVersion& version, int fd, std::atomic<uint64_t>* progress = nullptr);
  Status Get(std::string_view path, int fd);
  // Random-access reads of one version (for the mount). `inline_pieces`
  // from Stat are used instead of fetching those pieces (one that does not
  // decrypt is fetched as usual).
  Result<std::unique_ptr<Reader>> Open(const FileVersion& version,
                                       const InlinePieces& inline_pieces = {});

  // Put() of `content` held in memory (a symbolic link's target, a special
  // file's nothing).
  Result<PutResult> PutBytes(std::string_view path, std::string_view content,
                             const FileAttrs& attrs);
  // The whole content of a small file (at most kMaxLinkBytes): a symbolic
  // link's target.
  Result<std::string> ReadSmall(const FileVersion& version, const InlinePieces& inline_pieces = {});
  static constexpr uint64_t kMaxLinkBytes = 4095;  // PATH_MAX less the NUL

  Status Mkdir(std::string_view path, const FileAttrs& attrs = {});
  Status Rmdir(std::string_view path);
  // Writes a tombstone newer than every record of the name. `known`, when
  // given, is what a recent Stat or List said of the name (saves a round
  // trip): a tombstone newer than its version and than now is written; a
  // newer version written since by another client wins over it on the
  // servers, as any later write wins over an earlier delete.
  Status Unlink(std::string_view path, const Entry* known = nullptr);
  // Files keep their content (no re-upload): new headers signed for the new
  // path, a tombstone for the old one. A folder moves file by file (records
  // are bound to their path), then the old folder is removed; this is not
  // atomic: after a failure some files are under each name, each one whole.
  Status Rename(std::string_view from, std::string_view to);
  // New signed headers for every piece (a file) or a new folder record.
  Status SetAttr(std::string_view path, const AttrChange& change);
  // The user.* extended attributes of a file (xattrs.h): those of its
  // newest record, read from a server that holds that record (one GET)
  // when it has any. A folder has none (an empty map).
  Result<XattrMap> GetXattrs(std::string_view path);
  Result<XattrMap> XattrsOf(const FileVersion& version);
  // Replaces the extended attributes of a file: new signed headers and the
  // attributes sealed anew, on every server (kSetAttr). kNoSpace beyond
  // kMaxXattrBytes; kInvalidArgument for a folder (folders keep none).
  Status SetXattrs(std::string_view path, const XattrMap& xattrs);
  Result<FsStats> StatFs();
  // Every server's state, and the state of every file (a walk of every
  // folder: one LIST each, no content read) and of the hints (status.cc).
  Result<ClusterStatus> GetClusterStatus();

  const RepairStats& repair_stats() const { return repair_stats_; }

  // Human-readable state of a file: complete or which pieces/servers are
  // missing, and which servers sent records that failed verification.
  Result<std::string> Describe(std::string_view path);
  // Hands off every hint (HandOff() for each server), then re-copies
  // missing pieces to their placement servers, removes stale pieces and
  // extra copies, and collects tombstones once every server has them.
  // Recurses into subdirectories.
  // `progress`, when given, is called after each file with the report so far.
  // With `verify` (scrub), every copy of every piece is also read whole and
  // each chunk's tag checked (decrypted in memory, never written), and a
  // copy that fails is replaced from one that passes.
  using HealProgress = std::function<void(const HealReport&)>;
  Result<HealReport> Heal(std::string_view dir, const HealProgress& progress = nullptr,
                          bool verify = false);

  // ---- hinted handoff (handoff.cc; DESIGN.md "Versions") ----

  // Brings every path that server `target` missed (the hints for it that the
  // other servers keep) up to date on `target`, deepest paths first, and
  // drops each hint once its path is settled. kUnavailable when `target`
  // does not answer. Hints that fail verification are logged and left
  // alone. Returns how many paths were settled.
  Result<int> HandOff(int target, HealReport* report);
  // The hints for server `target_name` that `server` keeps, in id order, up
  // to about `max` of them (paged kHintList).
  Result<std::vector<Hint>> ListHintsOn(int server, const std::string& target_name, size_t max);
  // Starts a thread that hands hints off by itself: every kHandOffPoll while
  // this client wrote hints that are not handed off yet, and every
  // kHandOffScan for hints other clients left. Logs what it did. Stopped by
  // the destructor. For long-running clients (the mount, dfc heal --watch).
  void StartHandOffThread() EXCLUDES(handoff_mu_);
  static constexpr std::chrono::seconds kHandOffPoll{3};
  static constexpr std::chrono::seconds kHandOffScan{60};

  // ---- internals shared with Reader and transfers ----

  // Calls fn(server) for every server in parallel; returns the results in server order.
  template <typename T>
  std::vector<Result<T>> ForEachServer(const std::function<Result<T>(int)>& fn);
  // Fetches sealed chunks [first, last) of piece k of `v` and hands each
  // decrypted chunk to `sink(chunk_index, bytes)`, in order. On a transfer
  // failure it continues from the failed chunk on another holder; a holder
  // whose reply header does not verify, names another content or range, or
  // whose stream carries more than it announced, is such a failure.
  using ChunkSink = std::function<Status(uint64_t chunk, std::span<const uint8_t> plain)>;
  Status ReadChunks(const FileVersion& v, int piece, uint64_t first, uint64_t last,
                    int preferred_server, const ChunkSink& sink);
  // Decrypts a whole sealed piece k of `v`, handing each chunk to `sink`
  // in order. kCorrupt when it does not decrypt (or has the wrong length).
  Status OpenSealedPiece(const FileVersion& v, int piece, std::string_view sealed,
                         const ChunkSink& sink) const;
  // The holder of piece k to ask first, spreading pieces over servers.
  int PreferredHolder(const FileVersion& v, int piece) const;
  // Runs fn(0..n-1) in parallel on the client's workers (see work_pool.h).
  void RunAll(size_t n, const std::function<void(size_t)>& fn) { workers_->RunAll(n, fn); }

 private:
  // `xattrs`: the sealed extended attributes base describes, after each piece.
  Status PutPieces(int fd, const std::string& dir, const std::string& name, const PieceHeader& base,
                   std::string_view xattrs, PutResult* result,
                   std::atomic<uint64_t>* progress = nullptr);
  // A put that failed after some servers committed (`committed`, by
  // server) puts the previous version back on them (kRevert), so that it
  // stays whole: DESIGN.md "a failed put never harms the previous version".
  void RevertCommit(const std::string& dir, const std::string& name, const PieceHeader& base,
                    const std::vector<Result<CommitReply>>& committed);
  Status EnsureDirOn(int server, const std::string& dir);
  // EnsureDirOn on every server, the folder itself with `record` when given:
  // OK when one did it and none refused.
  Status MakeDirEverywhere(const std::string& path,
                           const std::optional<PieceHeader>& record = std::nullopt);
  // The record of folder `path` with `attrs`, a new stamp after `after`, signed.
  PieceHeader MakeFolderRecord(const std::string& path, const FileAttrs& attrs,
                               const Stamp& after) const;
  // SetAttr of folder `path` (`e` as Stat found it): a new record.
  Status SetFolderAttr(const std::string& path, const Entry& e, const AttrChange& change);
  // Sends folder `path`'s record to server `s` (kFolder; `create`: make it).
  Status SendFolderRecord(int s, const std::string& path, const PieceHeader& record, bool create);
  // kNotFound unless the name is a folder or an existing file.
  Result<Entry> StatIn(const std::string& dir, const std::string& name);
  // Like StatIn, but a file that does not exist (deleted, or no record
  // verified) is returned too (entry.file.exists false), with its rejected
  // records; kNotFound only when no server holds anything of the name.
  Result<Entry> StatRecords(const std::string& dir, const std::string& name,
                            InlinePieces* inline_pieces = nullptr);
  // kStat of dir/name on every server, results in server order: server
  // `probe` is asked even in back-off, server `skip` not at all (kUnavailable).
  std::vector<Result<StatReply>> StatEach(const std::string& dir, const std::string& name,
                                          int probe = -1, int skip = -1);
  // Screens the records of dir/name read from the servers (version.h) and
  // logs each rejected one at warn, once per (server, path).
  ScreenedRecords Screen(const std::string& dir, const std::string& name,
                         std::vector<Observed> seen);
  // Logs (once per server and path) the records of dir/name that failed.
  void ReportRejected(const std::string& dir, const std::string& name,
                      const std::vector<RejectedRecord>& rejected);
  // Logs "DFSn WHAT: 'PATH' (ignored)" at warn, once per (server, path) and
  // for at most kMaxWarned of them.
  void WarnOnce(int server, const std::string& path, const std::string& what) EXCLUDES(warned_mu_);
  // A stamp newer than now and than `after` (a clock behind another
  // client's must not lose a rename, delete or attribute change).
  static Stamp NewStamp(const Stamp& after);
  // The tombstone of `path` with `stamp`, signed.
  PieceHeader MakeTombstone(const std::string& path, const Stamp& stamp) const;
  // A header of `kind` with no piece (tombstone, folder record) of this
  // client's scheme with `stamp`; the caller fills the rest and signs it.
  PieceHeader RecordHeader(PieceKind kind, const Stamp& stamp) const;
  // One header per piece index of `base`'s content with `stamp`, signed for `path`.
  // The mode keeps its type and permission bits (kModeTypeMask, kModeBits).
  std::vector<PieceHeader> PieceHeadersFor(PieceHeader base, const Stamp& stamp,
                                           const std::string& path) const;
  // kSetAttr of dir/name on every server: `base`'s attributes in new
  // headers with a new stamp, `xattrs` (the sealed extended attributes
  // base.xattr_bytes describes) after the content.
  Status ReplaceHeaders(const std::string& dir, const std::string& name, const PieceHeader& base,
                        std::string xattrs);
  // Moves the content of `v` to to_dir/to_name (RenameRequest on every server).
  Status RenameFile(const FileVersion& v, const std::string& to_dir, const std::string& to_name,
                    const Stamp& after);
  // Moves folder `from` to `to` (absent or an empty folder), file by file.
  Status MoveTree(const std::string& from, const std::string& to);
  Status HealDir(const std::string& dir, HealReport* report, const HealProgress& progress,
                 bool verify);
  // Reads every copy of every piece of `v` whole, checking each chunk's
  // tag, and replaces a copy that fails from one that passes.
  void VerifyCopies(const FileVersion& v, HealReport* report);
  // Reads piece `piece` of `v` from `server` alone, checking every chunk.
  Status VerifyCopy(const FileVersion& v, int piece, int server);
  // Settles one file on every server that answered. *settled (when given)
  // is false when something could not be done now (a copy, a purge, a piece
  // with no holder).
  // *after (when given): the version with the holders it has now.
  Status HealFile(const std::string& dir, const std::string& name, const RawListing::Name& slot,
                  bool all_up, HealReport* report, bool* settled = nullptr,
                  FileVersion* after = nullptr);
  // Drops the copies of v's pieces on servers outside their placement once
  // every placement holder of that piece has it. Returns how many servers
  // dropped some; false in *settled when a drop failed.
  int DropExtraCopies(const FileVersion& v, bool* settled);

  // Hints that server `target` missed the change of `path` made at `stamp`:
  // stored on two other servers that answer (fewer when fewer answer;
  // logged at warn when none does), and remembered for the handoff thread.
  void AddHints(int target, const std::string& path, const Stamp& stamp) EXCLUDES(handoff_mu_);
  // AddHints() for every server whose result in `results` is a network failure.
  template <typename T>
  void HintFailed(const std::vector<Result<T>>& results, const std::string& path,
                  const Stamp& stamp) {
    for (size_t s = 0; s < results.size(); ++s)
      if (!results[s].ok() && IsNetworkFailure(results[s].status()))
        AddHints(static_cast<int>(s), path, stamp);
  }
  // Brings `path` on `target` up to date (one hint's work); *settled false
  // when it has to be tried again later.
  Status SettlePath(int target, const std::string& path, HealReport* report, bool* settled);
  void HandOffLoop() EXCLUDES(handoff_mu_);
  bool HandOffStopping() EXCLUDES(handoff_mu_);
  // OK when a GET reply of `server` is for the requested range and carries a
  // header of piece `piece` of v's content that verifies for v's path; else
  // kProtocol (range) or kCorrupt (header). The caller breaks the connection.
  Status CheckGetReply(const FileVersion& v, int piece, int server, const GetRequest& req,
                       const GetReply& reply);
  // Copies the content of piece `piece` of `v` from server `from` to `to`,
  // with v's newest header and extended attributes (`newest_xattrs` when
  // the caller has them, else read here: XattrTrailer).
  Status CopyPiece(const FileVersion& v, int piece, int from, int to,
                   const std::string* newest_xattrs = nullptr);
  // The sealed extended attributes of v's newest record ("" for none), from
  // a holder whose copy carries that record.
  Result<std::string> XattrTrailer(const FileVersion& v);
  // Copies each piece of `v` to every reachable placement server lacking it.
  // Returns the number of pieces copied; failures are noted in `notes`.
  // With `after`, each copy made is added to after->holders.
  int RepairPieces(const FileVersion& v, std::vector<std::string>* notes,
                   FileVersion* after = nullptr);
  Status Purge(int server, const PurgeRequest& req);

  ClientConfig config_;
  Options options_;
  Scheme scheme_;
  UserKeys keys_;
  RepairStats repair_stats_;
  std::unique_ptr<ServerPool> pool_;
  // Every fan-out (one request per server, one transfer per piece) runs here.
  std::unique_ptr<WorkPool> workers_;

  Mutex handoff_mu_;  // guards the handoff thread's state; leaf lock, never held across I/O
  CondVar handoff_cv_;
  // Targets this client wrote hints for, with a count of hints written (a
  // round that saw count c clears the target only if it is still c).
  std::map<int, uint64_t> hinted_ GUARDED_BY(handoff_mu_);
  bool handoff_stop_ GUARDED_BY(handoff_mu_) = false;
  std::thread handoff_thread_;

  static constexpr size_t kMaxWarned = 4096;
  Mutex warned_mu_;  // guards warned_; leaf lock, never held across I/O or logging
  // (server, path) already logged
  std::set<std::pair<int, std::string>> warned_ GUARDED_BY(warned_mu_);
};

// Random reads of one version with a small decrypted-chunk cache and
// sequential read-ahead. Thread-safe.
class Reader {
 public:
  Reader(Client* client, FileVersion version, const InlinePieces& inline_pieces = {});
  // Waits for the background read-ahead still running (bounded by the
  // client's deadlines).
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  const FileVersion& version() const { return version_; }
  // Reads up to `len` bytes at `offset` into `out`; returns the bytes read
  // (short only at end of file).
  Result<size_t> Read(uint64_t offset, size_t len, char* out);

 private:
  using ChunkKey = std::pair<int, uint64_t>;  // (piece, chunk)
  struct CachedChunk {
    std::shared_ptr<const std::string> plain;
    uint64_t used = 0;
  };
  // A chunk one read needs, and the file offset of its first byte.
  struct Need {
    ChunkKey key;
    uint64_t file_start;
  };
  // Fetches chunks [first, last) of `piece` into the cache (which the fetch
  // locks as each chunk lands), from `server` first (-1: the preferred
  // holder).
  Status Fetch(int piece, uint64_t first, uint64_t last, int server = -1) EXCLUDES(mu_);
  // Once reads are sequential, keeps kReadAheadChunks past `from` (a file
  // offset) fetched or in flight: background requests of up to
  // kReadAheadJobChunks, alternating between a piece's holders, so a
  // sequential reader streams from two servers at once and never waits for
  // a round trip it could have started earlier.
  void StartReadAhead(uint64_t from) REQUIRES(mu_);
  void ReadAheadJob(int piece, uint64_t first, uint64_t last, int server) EXCLUDES(mu_);
  // The chunks covering file bytes [from, to), in file order.
  std::vector<Need> ChunksCovering(uint64_t from, uint64_t to) const;
  // Read() in pieces small enough that their chunks always fit the cache.
  Result<size_t> ReadSegment(uint64_t offset, size_t len, char* out) EXCLUDES(mu_);
  // Drops the pins a read took on its chunks.
  void Unpin(const std::vector<Need>& needs) REQUIRES(mu_);

  static constexpr size_t kCacheChunks = 96;        // 6 MiB of 64 KiB chunks
  static constexpr uint64_t kMaxWindowChunks = 16;  // read-ahead up to 1 MiB per piece
  static constexpr uint64_t kReadAheadChunks = 64;  // background: 4 MiB of 64 KiB chunks
  static constexpr uint64_t kReadAheadJobChunks = 8;
  static constexpr int kMaxReadAheadJobs = 4;

  Client* client_;
  const FileVersion version_;
  Mutex mu_;         // guards everything below; leaf lock, never held across I/O
  CondVar fetched_;  // signalled when in-flight chunks land or fail
  std::map<ChunkKey, CachedChunk> cache_ GUARDED_BY(mu_);
  std::set<ChunkKey> inflight_ GUARDED_BY(mu_);
  // Chunks some read still has to copy out: never evicted (the cache may
  // briefly exceed kCacheChunks instead), so concurrent reads cannot evict
  // each other's chunks and fetch them again.
  std::map<ChunkKey, int> pins_ GUARDED_BY(mu_);
  uint64_t tick_ GUARDED_BY(mu_) = 0;
  // End of the previous read, to detect sequential access.
  uint64_t next_offset_ GUARDED_BY(mu_) = 0;
  uint64_t window_chunks_ GUARDED_BY(mu_) = 1;
  int jobs_ GUARDED_BY(mu_) = 0;  // read-ahead requests running
  CondVar jobs_done_;             // signalled when jobs_ drops
};

template <typename T>
std::vector<Result<T>> Client::ForEachServer(const std::function<Result<T>(int)>& fn) {
  const int n = pool_->size();
  std::vector<std::optional<Result<T>>> slots(static_cast<size_t>(n));
  workers_->RunAll(static_cast<size_t>(n),
                   [&](size_t i) { slots[i].emplace(fn(static_cast<int>(i))); });
  std::vector<Result<T>> out;
  out.reserve(static_cast<size_t>(n));
  for (auto& s : slots) out.push_back(std::move(*s));
  return out;
}

}  // namespace dfs::client
