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
// Usernames never start with '.', so ".staging" never collides with a user.
// A piece reaches its final name only complete and fsync'ed, by rename(2),
// followed by an fsync of the directory.
//
// Directory paths are "" (the user's root) or "a/b"; names are one component.
// Both are validated (names.h) before anything touches the disk: errors
// kInvalidArgument / kNameTooLong. A directory named in a request that does
// not exist is kNotFound "no such directory 'a/b'" for every operation.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/format/piece_header.h"
#include "shared/protocol/messages.h"
#include "shared/util/fd.h"
#include "shared/util/status.h"

namespace dfs::server {

// Highest piece index a header can carry (Scheme::valid(): servers <= 64).
inline constexpr int kMaxPieceIndex = 64;

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
              const PieceHeader& header);

  UniqueFd staging_dir_;    // ROOT/.staging/USER
  UniqueFd file_;           // the open partial file; closed by Finish()/Discard()
  std::string part_name_;   // CIDHEX.K.part-R inside staging_dir_
  std::string final_name_;  // CIDHEX.K
  PieceHeader header_;
  uint64_t written_ = 0;  // sealed bytes appended so far
  bool finished_ = false;
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

// Thread-safe. Owns the root folder for the life of the process.
class Store {
  struct PrivateTag {  // only Open() constructs a Store
    explicit PrivateTag() = default;
  };

 public:
  // Creates `root` if missing (mkdir -p) and empties ROOT/.staging (leftovers
  // of a crash). Errors: whatever the file system says (kPermission, ...).
  static Result<std::unique_ptr<Store>> Open(const std::string& root);

  // Use Open().
  Store(PrivateTag, std::string root, UniqueFd root_fd, UniqueFd staging_fd);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& root() const { return root_; }

  // Creates ROOT/USER and its staging folder if missing. Call once a user
  // has authenticated. kInvalidArgument for a name that is not a username.
  [[nodiscard]] Status EnsureUser(std::string_view user);

  // Calls `sink` for every entry of `dir`: each subdirectory (is_dir) and each
  // piece or tombstone file (its header; files with a corrupt header are
  // logged and skipped). Stops at the first non-OK Status of `sink` and
  // returns it. Errors: kNotFound, kNotDir.
  [[nodiscard]] Status List(std::string_view user, std::string_view dir,
                            const std::function<Status(ListEntry&&)>& sink);

  // What this server holds under dir/name: whether it is a directory and the
  // headers of ".name.0" .. ".name.64" that exist. kNotFound if nothing.
  [[nodiscard]] Result<StatReply> Stat(std::string_view user, std::string_view dir,
                                       std::string_view name);

  // Starts staging piece header.piece of content header.cid. REQUIRES
  // nothing of the caller; checks: dir exists (kNotFound "no such directory
  // 'dir'"), header.kind == kPiece (kInvalidArgument).
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

  // Removes every staged (or partial) piece of `cid`. OK if there is none.
  [[nodiscard]] Status Abort(std::string_view user, const Cid& cid);

  // Opens piece `piece` (1..64) of dir/name holding `cid` and clips
  // [offset, offset + length) to its sealed data. Errors: kNotFound (no such
  // piece), kStale "piece holds other content" (different cid),
  // kInvalidArgument (piece index out of range).
  [[nodiscard]] Result<PieceReader> OpenPiece(std::string_view user, std::string_view dir,
                                              std::string_view name, int piece, const Cid& cid,
                                              uint64_t offset, uint64_t length);

  // Writes a tombstone with `stamp` and removes the pieces of dir/name,
  // unless something under that name is newer (then nothing changes, OK).
  // The tombstone is written even if the name held nothing here. kIsDir if
  // dir/name is a directory.
  [[nodiscard]] Status Delete(std::string_view user, std::string_view dir, std::string_view name,
                              const Stamp& stamp);

  // mkdir: kNotFound (parent missing), kExists, kInvalidArgument (a name that
  // looks like a piece file, ".x.1", is reserved).
  [[nodiscard]] Status Mkdir(std::string_view user, std::string_view path);
  // rmdir: removes the piece and tombstone files inside, then the folder.
  // kNotFound, kNotDir, kNotEmpty (a subdirectory or a foreign file),
  // kInvalidArgument for the root.
  [[nodiscard]] Status Rmdir(std::string_view user, std::string_view path);

  // Moves the pieces of content `cid` of from_dir/from_name that are older
  // than `stamp` to to_dir/to_name with `stamp` in their headers (same cid),
  // unless the target piece or tombstone is newer; removes older other
  // contents and an older tombstone of the target; writes a tombstone with
  // `stamp` under the old name and drops its older pieces of other content.
  // OK also when this server held nothing of the old name. kIsDir if either
  // name is a directory. Renaming a name to itself is OK and changes nothing.
  [[nodiscard]] Status Rename(std::string_view user, std::string_view from_dir,
                              std::string_view from_name, std::string_view to_dir,
                              std::string_view to_name, const Cid& cid, const Stamp& stamp);

  // rename(2) of a directory. kInvalidArgument for the root or a reserved
  // target name; kNotFound, kNotEmpty, kExists, kNotDir as rename(2) says.
  [[nodiscard]] Status RenameDir(std::string_view user, std::string_view from, std::string_view to);

  // Updates mode (& 07777) and/or mtime of the pieces of `cid` older than
  // `stamp`, and gives them `stamp`. kNotFound if the name holds no piece.
  [[nodiscard]] Status SetAttr(std::string_view user, const SetAttrRequest& req);

  // Sizes of the file system holding the root.
  [[nodiscard]] Result<StatFsReply> StatFs();

  // Removes pieces of dir/name older than `keep` whose cid is not
  // `keep_cid`; with drop_tombstone also a tombstone not newer than `keep`.
  [[nodiscard]] Status Purge(std::string_view user, std::string_view dir, std::string_view name,
                             const Cid& keep_cid, const Stamp& keep, bool drop_tombstone);

 private:
  class NameLock;

  // Folders, opened O_DIRECTORY relative to the root.
  Result<UniqueFd> OpenUserDir(std::string_view user, std::string_view dir);
  Result<UniqueFd> OpenStagingDir(std::string_view user);
  // The folder that holds (or will hold) the pieces of file dir/name: validates
  // both, normalizes dir into *normalized, and refuses a name that is a folder.
  Result<UniqueFd> OpenFileDir(std::string_view user, std::string_view dir, std::string_view name,
                               std::string* normalized);
  // Writes a tombstone for name (servers/copies from `like`) into place as
  // ".name.0" through a temporary file in staging.
  Status WriteTombstone(int staging_fd, int dir_fd, std::string_view name, const Stamp& stamp,
                        const PieceHeader* like);
  size_t StripeOf(std::string_view user, std::string_view dir, std::string_view name) const;

  std::string root_;
  UniqueFd root_fd_;     // ROOT
  UniqueFd staging_fd_;  // ROOT/.staging

  // Stripe locks over names. Stripe i guards the metadata changes (renames
  // into place, unlinks, header rewrites, tombstones) of every name
  // "USER/dir/name" hashing to i, so that the read-compare-replace of stamps
  // of one name is atomic. Held across the renames and fsyncs of that one
  // name on purpose; never across network I/O. Lock order: when two stripes
  // are needed (Rename), the lower index first; the same stripe once.
  static constexpr size_t kStripes = 64;
  std::array<std::mutex, kStripes> stripes_;
};

}  // namespace dfs::server
