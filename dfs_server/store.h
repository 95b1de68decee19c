// The storage engine of dfs_server: pieces, tombstones and directories of
// every user under one root folder. No networking here; every operation
// returns a Status and is safe to call from many connection threads at once.
//
// Layout (DESIGN.md "On-disk layout of a server"):
//   ROOT/USER/[SUB/DIRS/].NAME.K       piece K (1..64) of file NAME
//   ROOT/USER/[SUB/DIRS/].NAME.0       tombstone of NAME (a header alone)
//   ROOT/.staging/USER/CIDHEX.K        a complete, fsync'ed staged piece
//   ROOT/.staging/USER/CIDHEX.K.part-R a piece being uploaded
//   ROOT/.staging/USER/~R              temporary file of a tombstone or rename
//   ROOT/.hints/USER/TARGET/ID         a hint for server TARGET (messages.h
//                                      Hint; ID = HintId(), its MAC in hex)
//   ROOT/.retired/USER/CIDHEX.K.PATH   a piece an overwrite or delete replaced,
//                                      kept (a hard link) for readers that
//                                      opened it (PATH: a hash of dir/name)
//   ROOT/.max_piece                    the piece bound (below)
//   ROOT/.max_piece.tmp                the bound file being replaced
// Usernames never start with '.', so ".staging", ".hints", ".retired" and
// ".max_piece" never collide with a user.
// A piece reaches its final name only complete and fsync'ed, by rename(2),
// followed by an fsync of the directory.
//
// The piece bound: no piece file ".NAME.K" and no staged piece "CIDHEX.K"
// in this store has K above max_piece(), so an operation on a name looks at
// ".NAME.0" .. ".NAME.<max_piece()>" only, not at all 64 possible indexes.
// It is the highest piece index ever written here, at least
// kDefaultPieceBound (the 4 pieces of the default scheme). It is raised,
// durably, before the first piece above it is staged, and kept in
// ROOT/.max_piece: one line of ASCII, "dfs-max-piece N\n", N decimal 0..64
// without leading zeros. Open() recomputes it by reading every user's folder
// when the file is missing (a new store, or one written by an older server)
// or unreadable, and writes it. Piece files copied into the folders by hand
// from a wider cluster are seen only after removing ROOT/.max_piece.
//
// Directory paths are "" (the user's root) or "a/b"; names are one component.
// Both are validated (names.h) before anything touches the disk: errors
// kInvalidArgument / kNameTooLong. A directory named in a request that does
// not exist is kNotFound "no such directory 'a/b'" for every operation.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dfs_server/folder_cache.h"
#include "shared/format/piece_header.h"
#include "shared/protocol/messages.h"
#include "shared/util/fd.h"
#include "shared/util/mutex.h"
#include "shared/util/status.h"

namespace dfs::server {

// Highest piece index a header can carry (Scheme::valid(): servers <= 64).
inline constexpr int kMaxPieceIndex = 64;
// The lowest piece bound of a store (Store::max_piece()): the 4 pieces of
// the default scheme, so that a 4-server cluster never raises it.
inline constexpr int kDefaultPieceBound = 4;

// Per-user byte counts behind the quotas (store.cc).
class UsageLedger;

// One piece being uploaded into staging. Move-only. Destroying it (or
// Discard()) before Finish() succeeded removes the partial file.
class StagedPiece {
 public:
  StagedPiece(StagedPiece&&) noexcept = default;
  StagedPiece& operator=(StagedPiece&&) = delete;  // would orphan this piece's file
  StagedPiece(const StagedPiece&) = delete;
  StagedPiece& operator=(const StagedPiece&) = delete;
  ~StagedPiece();

  // Appends sealed bytes after the header. kInvalidArgument "piece length
  // mismatch" when the total would exceed header().sealed_size(); errno
  // failures (ENOSPC -> kNoSpace, ...) otherwise. After an error the piece is
  // useless: Discard() it.
  [[nodiscard]] Status Append(std::string_view bytes);
  // Checks the length (kInvalidArgument "piece length mismatch"), fsyncs and
  // publishes the piece in staging as CIDHEX.K, ready for Store::Commit.
  [[nodiscard]] Status Finish();
  // Removes the partial file now (frees the space at once). Idempotent.
  void Discard();

  const PieceHeader& header() const { return header_; }
  uint64_t written() const { return written_; }

 private:
  friend class Store;
  StagedPiece(UniqueFd staging_dir, UniqueFd file, std::string part_name, std::string final_name,
              const PieceHeader& header, std::shared_ptr<UsageLedger> ledger, std::string user,
              uint64_t charged);
  // Gives the bytes charged to the user's quota back (the upload is gone).
  void Refund();

  UniqueFd staging_dir_;    // ROOT/.staging/USER
  UniqueFd file_;           // the open partial file; closed by Finish()/Discard()
  std::string part_name_;   // CIDHEX.K.part-R inside staging_dir_
  std::string final_name_;  // CIDHEX.K
  PieceHeader header_;
  uint64_t written_ = 0;  // sealed bytes appended so far
  bool finished_ = false;
  // Quota accounting: `charged_` bytes (the whole piece) were added to the
  // count of `user_` by BeginPut; they are given back unless Finish() hands
  // them over to the published file. Null/0 for a user without a quota, and
  // in a moved-from piece (shared_ptr moves leave it null).
  std::shared_ptr<UsageLedger> ledger_;
  std::string user_;
  uint64_t charged_ = 0;
};

// An open committed piece, positioned for reading one byte range of its
// sealed data. The file stays readable even if a commit replaces the name.
class PieceReader {
 public:
  const PieceHeader& header() const { return header_; }
  uint64_t offset() const { return offset_; }  // first sealed byte to send
  uint64_t length() const { return length_; }  // sealed bytes to send (clipped)
  // Reads exactly n bytes at sealed offset `pos` (pread after the header).
  // kCorrupt if the file ends before its header says; errno failures otherwise.
  [[nodiscard]] Status ReadExact(uint64_t pos, char* out, size_t n) const;

 private:
  friend class Store;
  UniqueFd file_;
  PieceHeader header_;
  uint64_t offset_ = 0;
  uint64_t length_ = 0;
};

struct StoreOptions {
  // Per-user quota in bytes of piece files (committed and staged, headers
  // included); users not listed have none.
  std::map<std::string, uint64_t, std::less<>> quota_bytes;
  // A put is refused (kNoSpace) unless the file system keeps at least this
  // much free beyond the piece.
  uint64_t reserve_bytes = 64ull << 20;
  // Entries (piece headers and subfolders) of recently listed folders kept
  // in memory, over all folders (folder_cache.h); ~160 bytes each. 0: none.
  size_t list_cache_entries = 65536;
  // How long a piece that an overwrite or delete replaced stays readable
  // (OpenPiece by its content id) for readers that opened that version:
  // like an unlinked inode that is still open on a local disk. 0: not kept.
  std::chrono::seconds retire_for{300};
};

// Thread-safe. Owns the root folder for the life of the process.
class Store {
  struct PrivateTag {  // only Open() constructs a Store
    explicit PrivateTag() = default;
  };

 public:
  // Creates `root` if missing (mkdir -p), empties ROOT/.staging (leftovers
  // of a crash) and reads the piece bound from ROOT/.max_piece, or, when that
  // is missing or unreadable, counts it from the users' folders and writes
  // it. Errors: whatever the file system says (kPermission, ...).
  static Result<std::unique_ptr<Store>> Open(const std::string& root, StoreOptions options = {});

  // Use Open().
  Store(PrivateTag, std::string root, StoreOptions options, UniqueFd root_fd, UniqueFd staging_fd,
        UniqueFd hints_fd, UniqueFd retired_fd, int max_piece);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& root() const { return root_; }

  // The piece bound (see the top of this file): kDefaultPieceBound ..
  // kMaxPieceIndex. Only grows. One atomic load.
  int max_piece() const { return max_piece_.load(std::memory_order_acquire); }

  // Creates ROOT/USER and its staging folder if missing. Call once a user
  // has authenticated. kInvalidArgument for a name that is not a username.
  [[nodiscard]] Status EnsureUser(std::string_view user);

  // Calls `sink` for every entry of `dir`: each subdirectory (is_dir) and each
  // piece or tombstone file (its header; files with a corrupt header are
  // logged and skipped), in order of name (bytewise), then piece index (a
  // folder first), so clients can merge the servers' listings as they
  // arrive. Served from the folder cache while the folder is unchanged.
  // Stops at the first non-OK Status of `sink` and returns it. Errors:
  // kNotFound, kNotDir.
  [[nodiscard]] Status List(std::string_view user, std::string_view dir,
                            const std::function<Status(ListEntry&&)>& sink);

  // What this server holds under dir/name: whether it is a directory and the
  // headers of ".name.0" .. ".name.<max_piece()>" that exist (no higher
  // piece exists). kNotFound if nothing.
  [[nodiscard]] Result<StatReply> Stat(std::string_view user, std::string_view dir,
                                       std::string_view name);

  // Starts staging piece header.piece of content header.cid. REQUIRES
  // nothing of the caller; checks: dir exists (kNotFound "no such directory
  // 'dir'"), header.kind == kPiece (kInvalidArgument), the file system keeps
  // reserve_bytes free after the piece and the user's quota holds it
  // (kNoSpace, before any byte is written).
  [[nodiscard]] Result<StagedPiece> BeginPut(std::string_view user, std::string_view dir,
                                             std::string_view name, const PieceHeader& header);

  // Moves every finished staged piece of `cid` into place as ".name.K",
  // unless ".name.K" or the tombstone is newer than `stamp` (then the staged
  // piece is dropped: a newer write won). Then removes older pieces of other
  // contents and an older tombstone. Returns the piece indexes that now hold
  // `cid`. Idempotent: repeating a commit whose staging is gone returns the
  // pieces in place. Errors: kIsDir (dir/name is a directory), kNotFound
  // "nothing staged" (no staged or committed piece of cid), kInvalidArgument
  // (a staged piece was uploaded with another stamp).
  [[nodiscard]] Result<std::vector<uint8_t>> Commit(std::string_view user, std::string_view dir,
                                                    std::string_view name, const Cid& cid,
                                                    const Stamp& stamp);

  // Undoes a commit of content `failed` (messages.h RevertRequest): its
  // pieces under dir/name give way to the pieces of `restore` that the
  // commit retired (StoreOptions::retire_for), or are dropped. OK when
  // there is nothing to undo.
  [[nodiscard]] Status Revert(std::string_view user, std::string_view dir, std::string_view name,
                              const Cid& failed, const Cid& restore);

  // Removes every staged (or partial) piece of `cid`. OK if there is none.
  [[nodiscard]] Status Abort(std::string_view user, const Cid& cid);

  // Opens piece `piece` (1..64) of dir/name holding `cid` and clips
  // [offset, offset + length) to its sealed data; a piece of `cid` that an
  // overwrite or delete replaced less than retire_for ago is found too.
  // Errors: kNotFound (no such piece), kStale "piece holds other content"
  // (different cid), kInvalidArgument (piece index out of range).
  [[nodiscard]] Result<PieceReader> OpenPiece(std::string_view user, std::string_view dir,
                                              std::string_view name, int piece, const Cid& cid,
                                              uint64_t offset, uint64_t length);

  // Puts `tombstone` (kind kTombstone, else kInvalidArgument) in place as
  // ".name.0" and removes the pieces of dir/name, unless something under that
  // name is newer (then nothing changes, OK). A name this server holds no
  // record of (no piece, no tombstone) gets no tombstone: OK, nothing
  // written. kIsDir if dir/name is a directory.
  [[nodiscard]] Status Delete(std::string_view user, std::string_view dir, std::string_view name,
                              const PieceHeader& tombstone);

  // mkdir: kNotFound (parent missing), kExists, kInvalidArgument (a name that
  // looks like a piece file, ".x.1", is reserved).
  [[nodiscard]] Status Mkdir(std::string_view user, std::string_view path);
  // Stores `record` (a folder record, kind kFolder, signed by the client for
  // `path`) as the folder's own record (kFolderRecordFile inside it) unless
  // the one there is as new or newer. With `create` the folder is made first
  // when missing (its parent must exist: kNotFound otherwise); without, a
  // missing folder is kNotFound. "" is the user's root folder.
  [[nodiscard]] Status SetFolder(std::string_view user, std::string_view path,
                                 const PieceHeader& record, bool create);
  // rmdir: removes the piece and tombstone files inside, then the folder.
  // kNotFound, kNotDir, kNotEmpty (a subdirectory or a foreign file),
  // kInvalidArgument for the root.
  [[nodiscard]] Status Rmdir(std::string_view user, std::string_view path);

  // Moves each piece K of content `cid` of from_dir/from_name that is older
  // than the new stamp to to_dir/to_name with headers[i] (the one with piece
  // index K) as its new header, unless the target piece or tombstone is
  // newer; removes older other contents and an older tombstone of the
  // target; puts `tombstone` under the old name (if it held any record) and
  // drops its older pieces. The stamp is tombstone.stamp; every header must
  // carry it, content `cid`, and the sealed size and chunk size of the piece
  // it replaces (else kInvalidArgument, nothing changed). OK also when this
  // server held nothing of the old name. kIsDir if either name is a
  // directory. Renaming a name to itself is OK and changes nothing.
  // `xattrs`: the extended attributes every header describes; a moved
  // piece that holds others gets these.
  [[nodiscard]] Status Rename(std::string_view user, std::string_view from_dir,
                              std::string_view from_name, std::string_view to_dir,
                              std::string_view to_name, const Cid& cid,
                              const std::vector<PieceHeader>& headers, const PieceHeader& tombstone,
                              std::string_view xattrs = {});

  // Replaces the header of each piece K of content req.cid that is older
  // than req.headers' stamp by the header of index K in req.headers (same
  // cid, sealed content size and chunk size, else kInvalidArgument and
  // nothing changes), and its extended attributes by req.xattrs (which
  // every header must describe). kNotFound if the name holds no piece.
  [[nodiscard]] Status SetAttr(std::string_view user, const SetAttrRequest& req);

  // Removes staged and partial uploads (and temporary files) that nobody has
  // written for longer than `max_age`: uploads abandoned by a dead client.
  // Returns how many files were removed.
  [[nodiscard]] Result<size_t> SweepStaging(std::chrono::seconds max_age);

  // Hints (hinted handoff, messages.h Hint). A server keeps them for its
  // clients and never acts on them: it checks their form (ValidateHint),
  // not their MAC, which only clients can.
  // Stores `hint` durably (write, fsync, rename, fsync the folder); storing
  // the same hint again is OK.
  [[nodiscard]] Status AddHint(std::string_view user, const Hint& hint);
  // The hints for `target` whose HintId() sorts after `after`, in that
  // order, as many as fit in about `max_bytes` of reply (at least one);
  // more is set when some are left. Unreadable hint files are logged and
  // skipped.
  [[nodiscard]] Result<HintListReply> ListHints(std::string_view user, std::string_view target,
                                                std::string_view after, size_t max_bytes);
  // Removes `hint` (OK if it is not there).
  [[nodiscard]] Status DropHint(std::string_view user, const Hint& hint);

  // Removes retired pieces (see OpenPiece) retired longer than
  // StoreOptions::retire_for ago. Returns how many were removed.
  [[nodiscard]] Result<size_t> SweepRetired();

  // Sizes of the file system holding the root.
  [[nodiscard]] Result<StatFsReply> StatFs();

  // Removes pieces of dir/name older than `keep` whose cid is not
  // `keep_cid`; with drop_tombstone also a tombstone not newer than `keep`;
  // and the pieces of `keep_cid` whose index is in `drop_pieces` (extra
  // copies, messages.h PurgeRequest).
  [[nodiscard]] Status Purge(std::string_view user, std::string_view dir, std::string_view name,
                             const Cid& keep_cid, const Stamp& keep, bool drop_tombstone,
                             const std::vector<uint8_t>& drop_pieces = {});

 private:
  class NameLock;
  class FolderChange;

  // Folders, opened O_DIRECTORY relative to the root without following any
  // symbolic link and never outside ROOT/USER (ROOT/.staging/USER): a link
  // on the way is kPermission "refusing to follow a symbolic link in 'a/b'".
  // `dir` is validated and normalized (NormalizeDir) by the caller.
  Result<UniqueFd> OpenUserDir(std::string_view user, std::string_view dir);
  Result<UniqueFd> OpenStagingDir(std::string_view user);
  // Keeps piece file dir_fd/file (header `h`, of dir/name) readable by its
  // cid for StoreOptions::retire_for after it is replaced or unlinked: a
  // hard link in ROOT/.retired/USER. Best effort (a failure is logged):
  // call before the replace or unlink, under the name's stripe lock.
  void Retire(std::string_view user, int dir_fd, const std::string& file, const PieceHeader& h,
              std::string_view dir, std::string_view name);
  // ROOT/.hints/USER/TARGET, created when `create`; an absent one without
  // `create` is an invalid descriptor (no hints), not an error.
  Result<UniqueFd> OpenHintDir(std::string_view user, std::string_view target, bool create);
  // The folder that holds (or will hold) the pieces of file dir/name: validates
  // both, normalizes dir into *normalized, and refuses a name that is a folder.
  Result<UniqueFd> OpenFileDir(std::string_view user, std::string_view dir, std::string_view name,
                               std::string* normalized);
  // Gives piece file dir_fd/file, whose header is `stored`, the header
  // `next` and the extended attributes `xattrs` (next.xattr_bytes bytes
  // after the sealed content), keeping the content. When the file holds
  // these attributes already, only the header is rewritten, in place; else
  // a copy (header, content, attributes) is made in staging, fsync'ed and
  // renamed over the file (and dir_fd fsync'ed), so that a crash leaves
  // one or the other. The caller holds the name's stripe lock.
  Status PlaceHeader(std::string_view user, int staging_fd, int dir_fd, const std::string& file,
                     const PieceHeader& stored, const PieceHeader& next, std::string_view xattrs);
  // Puts `tombstone`, byte for byte, in place as ".name.0" through a
  // temporary file in staging (write, fsync, rename, fsync the folder).
  Status WriteTombstone(std::string_view user, int staging_fd, int dir_fd, std::string_view name,
                        const PieceHeader& tombstone);
  // kNoSpace unless the file system holding the root keeps reserve_bytes
  // free after `bytes` more.
  Status CheckFreeSpace(uint64_t bytes);
  // What the quota counts for `user`: piece and tombstone files under
  // ROOT/USER and every file in ROOT/.staging/USER (folder records, 128
  // bytes each, are not charged). Walks the whole tree.
  Result<uint64_t> ScanUsage(std::string_view user);
  // unlinkat(2) that treats a missing file as done and takes the file's
  // size off the user's count.
  Status UnlinkCounted(std::string_view user, int dir_fd, const std::string& file);
  // renameat(2) that takes the size of a file it replaces off the user's
  // count. Errors name `what`.
  Status RenameCounted(std::string_view user, int from_fd, const std::string& from, int to_fd,
                       const std::string& to, std::string_view what);
  size_t StripeOf(std::string_view user, std::string_view dir, std::string_view name) const;
  // OK once piece index `piece` (1..kMaxPieceIndex) is within the piece bound:
  // at once when it is already (one atomic load), else after RaiseBound().
  // Call before creating any file that holds piece `piece`.
  Status EnsureBound(int piece) {
    if (piece <= max_piece()) return Status::Ok();
    return RaiseBound(piece);
  }
  // Writes `piece` durably to ROOT/.max_piece (unless a concurrent raise
  // already covered it) and only then publishes it in max_piece_.
  Status RaiseBound(int piece) EXCLUDES(bound_mu_);

  std::string root_;
  StoreOptions options_;
  // What LIST read from recently listed folders. Every operation that
  // changes a folder reports it (FolderChange in store.cc) after the change.
  FolderCache folders_;
  // Usage of the users with a quota; shared with their StagedPieces. Its
  // lock is taken after a stripe lock, never before one.
  std::shared_ptr<UsageLedger> usage_;
  UniqueFd root_fd_;     // ROOT
  UniqueFd staging_fd_;  // ROOT/.staging
  UniqueFd hints_fd_;    // ROOT/.hints
  UniqueFd retired_fd_;  // ROOT/.retired

  // Stripe locks over names. Stripe i guards the metadata changes (renames
  // into place, unlinks, header rewrites, tombstones) of every name
  // "USER/dir/name" hashing to i, so that the read-compare-replace of stamps
  // of one name is atomic. Held across the renames and fsyncs of that one
  // name on purpose; never across network I/O. Lock order: when two stripes
  // are needed (Rename), the lower index first; the same stripe once. Taken
  // only through NameLock (store.cc). No member is GUARDED_BY a stripe: what
  // a stripe guards is on disk.
  static constexpr size_t kStripes = 64;
  std::array<Mutex, kStripes> stripes_;

  // The piece bound. Raising it takes bound_mu_, a leaf lock (it may be taken
  // under a stripe lock, and nothing is taken under it). recorded_bound_ is
  // the value in ROOT/.max_piece (or kMaxPieceIndex, unrecorded, when Open()
  // could not count or record it: then nothing is ever raised); max_piece_
  // is set to it only after it is durable, so a writer that sees a piece
  // index within max_piece_ may create that piece, and a crash never leaves
  // a piece above the file.
  Mutex bound_mu_;
  int recorded_bound_ GUARDED_BY(bound_mu_);
  std::atomic<int> max_piece_;  // read without a lock; written under bound_mu_
};

}  // namespace dfs::server
