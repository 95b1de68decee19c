// The logic of the dfcfs mount, free of FUSE headers: path operations on top
// of dfs::client::Client with errno-style results, a spool for writes, file
// handles and a short metadata cache. fuse_ops.cc adapts it to libfuse.
//
// Consistency is close-to-open: open() always asks the servers, and close()
// (flush) and fsync() upload a file written through this mount and report the
// upload's error, so `cp` fails loudly when the upload failed. In between,
// attributes and listings may be up to the cache TTL (~1 s) old.
//
// Open files: every path open in this mount has one OpenFile, shared by all
// its handles, so handles of one file see each other's writes as on a local
// disk. Reads of a file nobody writes here stream from the servers (each
// handle reads the version that was newest when it was opened). The first
// write-open gives the OpenFile a spool file, filled with the current content
// unless O_TRUNC or create; from then on every handle of the path reads and
// writes the spool, getattr reports the spool's size and mtime, and
// flush/fsync upload it when dirty. rename moves the OpenFile to the new path;
// unlink (or being renamed over) detaches it: its handles keep working (fstat
// too: libfuse renames it to a hidden ".fuse_hidden*" name that exists only in
// this mount) and it is never uploaded again. Nothing is uploaded in release.
//
// Incomplete files: a file whose newest version cannot be rebuilt is listed as
// "NAME [incomplete]"; both names stat as the file, opening either fails with
// EIO at once, and the xattr user.dfs.status describes what is missing.
//
// Thread-safe: every method may be called from many threads at once.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fuse_client/client/client.h"
#include "fuse_client/fuse/meta_cache.h"
#include "fuse_client/fuse/spool.h"
#include "shared/util/mutex.h"
#include "shared/util/thread_annotations.h"

namespace spdlog {
class logger;
}

namespace dfs::fuse {

// The extended attribute that describes a file's pieces and servers.
inline constexpr std::string_view kStatusXattr = "user.dfs.status";
// On the mount root: the mount's counters in Prometheus text format
// (FileSystem::StatsText); read-only, not listed.
inline constexpr std::string_view kStatsXattr = "user.dfs.stats";

// What the mount did, for kStatsXattr. Relaxed atomics.
struct MountStats {
  std::atomic<uint64_t> lookups_cached{0};  // answered from the listing cache
  std::atomic<uint64_t> lookups_asked{0};   // asked of the servers
  std::atomic<uint64_t> listings{0};        // folders listed on the servers
  std::atomic<uint64_t> uploads{0};
  std::atomic<uint64_t> upload_bytes{0};
  std::atomic<uint64_t> upload_failures{0};
  std::atomic<uint64_t> downloads{0};  // whole files fetched into a spool (open for writing)
  std::atomic<uint64_t> read_bytes{0};
};

// Who asks: the process behind a FUSE request.
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct FsOptions {
  uid_t uid = 0;  // owner of the root folder and of folders without a record
  gid_t gid = 0;
  // The kernel checks modes and owners itself (default_permissions): chown
  // need not be checked here.
  bool kernel_checks_permissions = false;
  std::chrono::milliseconds cache_ttl{1000};  // listings and lookups
  // Tells the kernel to forget what it caches of a path (attributes, pages):
  // called when open finds a version other than the one last reported. May
  // be empty (tests without a kernel).
  std::function<void(const std::string& fuse_path)> forget_kernel_cache;
};

struct DirEntry {
  std::string name;
  uint32_t mode = 0;  // st_mode: type and permission bits
  // With `attrs`, every attribute of the name (for readdirplus: `ls -l`
  // then needs no lookup per name); else only st_mode is meaningful.
  bool attrs = false;
  struct stat st {};
};

// What one open folder lists, fixed by its first readdir so that offsets
// stay valid while the cache moves on: ".", "..", the entries of `listing`,
// then `local`. It shares the cached listing rather than copying it (a
// folder of 100,000 names would cost 18 MB more per open handle).
struct DirSnapshot {
  std::string dir;
  std::shared_ptr<const client::Listing> listing;
  // Listed names open for writing here: their attributes are the spool's
  // (getattr asks), and an incomplete one is shown without the suffix.
  std::set<std::string, std::less<>> open_here;
  std::vector<std::string> local;  // open for writing here and not listed
  size_t size() const { return 2 + listing->entries.size() + local.size(); }
};

class FileSystem {
 public:
  // `client` must outlive the FileSystem.
  FileSystem(client::Client* client, Spool spool, FsOptions options);
  ~FileSystem();
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;

  // Conventions for every method below:
  // - `path` is a FUSE path ("/a/b") or a relative one ("a/b"); "" or "/" is the root.
  // - `fh`, when set, is a handle from Open, Create or OpenDir; it wins over `path`
  //   (the path may be empty or stale then).
  // - The result is 0 (or a byte count) on success and -errno on failure.

  int GetAttr(std::string_view path, std::optional<uint64_t> fh, struct stat* st);

  int OpenDir(std::string_view path, uint64_t* fh);
  // ".", ".." and every name, incomplete files as "NAME [incomplete]", for
  // readdir by offset: at offset 0 the folder is read (again, as
  // rewinddir(3) asks) and kept in the handle; later offsets index into what
  // was kept, so entries neither repeat nor go missing between calls.
  // EntryAt() gives entry i of the snapshot.
  int ReadDirAt(uint64_t fh, uint64_t offset, std::shared_ptr<const DirSnapshot>* out);
  DirEntry EntryAt(const DirSnapshot& snapshot, size_t i) const;
  int ReleaseDir(uint64_t fh);

  // `flags` as given to open(2) (the kernel strips O_CREAT/O_EXCL).
  int Open(std::string_view path, int flags, uint64_t* fh);
  // A new empty file (mode: permission bits, umask already applied), owned by `caller`.
  int Create(std::string_view path, uint32_t mode, int flags, uint64_t* fh, Caller caller);
  // Returns the bytes read; short only at end of file.
  int Read(uint64_t fh, char* buf, size_t size, int64_t offset);
  // Returns `size`. Handles opened with O_APPEND always write at the end.
  int Write(uint64_t fh, const char* buf, size_t size, int64_t offset);
  // Upload if dirty (any handle of the path may trigger it); the upload's error.
  int Flush(uint64_t fh);
  int Fsync(uint64_t fh);
  int Release(uint64_t fh);

  // Through a handle: truncates the spool (uploaded at close). By path: the
  // spool of an open file, or download + truncate + upload now.
  int Truncate(std::string_view path, std::optional<uint64_t> fh, int64_t size);

  int Mkdir(std::string_view path, uint32_t mode, Caller caller);
  // A symbolic link `path` to `target` (stored as the content of a file of
  // type S_IFLNK, never followed by dfs).
  int Symlink(std::string_view target, std::string_view path, Caller caller);
  // The target, NUL-terminated and cut to `size` - 1 bytes (readlink(2)
  // through FUSE); EINVAL for anything but a link.
  int ReadLink(std::string_view path, char* buf, size_t size);
  // A fifo, socket or (for root) device node: a record with no content. A
  // regular file too (an empty one).
  int Mknod(std::string_view path, uint32_t mode, uint64_t rdev, Caller caller);
  int Rmdir(std::string_view path);
  int Unlink(std::string_view path);
  // `flags`: 0 or RENAME_NOREPLACE; RENAME_EXCHANGE is EINVAL.
  int Rename(std::string_view from, std::string_view to, unsigned int flags);

  int Chmod(std::string_view path, std::optional<uint64_t> fh, uint32_t mode);
  // -1 leaves that id as it is. As on a local disk, only root gives files
  // away; the owner may change the group to its own (EPERM otherwise).
  int Chown(std::string_view path, std::optional<uint64_t> fh, uid_t uid, gid_t gid, Caller caller);
  // times[1] is the mtime (UTIME_NOW, UTIME_OMIT honored); atime is not kept.
  // nullptr means now. A directory accepts and ignores it.
  int Utimens(std::string_view path, std::optional<uint64_t> fh, const struct timespec* times);

  int StatFs(struct statvfs* st);

  // The mount's counters, its client's traffic and repair work, in
  // Prometheus text format (version 0.0.4).
  std::string StatsText() const;

  // Extended attributes: the user.* ones a file keeps (xattrs.h; stored with
  // its content, carried to each new version as O_TRUNC keeps them on a
  // local disk), and the read-only kStatusXattr of a file (not listed, so
  // that tools copying attributes leave it). Other namespaces: ENODATA on
  // get, ENOTSUP on set. Folders keep none (ENOTSUP). With size 0, get and
  // list return the size needed; ERANGE when `size` is too small.
  int GetXattr(std::string_view path, std::string_view name, char* value, size_t size);
  int ListXattr(std::string_view path, char* list, size_t size);
  // `flags`: 0, XATTR_CREATE (EEXIST if set) or XATTR_REPLACE (ENODATA if
  // not). ENOSPC when the file's attributes would exceed kMaxXattrBytes.
  int SetXattr(std::string_view path, std::string_view name, std::string_view value, int flags);
  int RemoveXattr(std::string_view path, std::string_view name);

 private:
  struct OpenFile;
  struct Handle;
  struct Resolved {
    std::string path;  // the real name (without " [incomplete]")
    client::Entry entry;
  };

  // Handles.
  uint64_t AddHandle(std::shared_ptr<Handle> handle) EXCLUDES(handles_mu_);
  std::shared_ptr<Handle> FindHandle(uint64_t fh) const EXCLUDES(handles_mu_);
  std::shared_ptr<Handle> TakeHandle(uint64_t fh) EXCLUDES(handles_mu_);

  // Open files. The OpenFile& functions take the file's lock themselves.
  std::shared_ptr<OpenFile> FindOpenFile(const std::string& path) const EXCLUDES(files_mu_);
  // Like FindOpenFile, but only a file with a spool (written in this mount).
  std::shared_ptr<OpenFile> FindSpooled(const std::string& path) const EXCLUDES(files_mu_);
  // The open file of `path` with one more handle, created when there is none.
  std::shared_ptr<OpenFile> AcquireOpenFile(const std::string& path) EXCLUDES(files_mu_);
  // Gives `file` a spool if it has none: empty for `create_mode` (a new file
  // owned by `owner`) or O_TRUNC, else the file's current content. With
  // O_TRUNC, an existing spool is emptied.
  Status EnsureSpool(OpenFile& file, const std::string& path, int flags,
                     std::optional<uint32_t> create_mode, Caller owner = {});
  // Drops one handle; the last one removes the open file from the path table.
  void DetachOpenFile(const std::shared_ptr<OpenFile>& file) EXCLUDES(files_mu_);
  // Detaches whatever open file lives at `path`: never uploaded again.
  void OrphanOpenFile(const std::string& path) EXCLUDES(files_mu_);
  // libfuse's way to unlink an open file: rename it to a hidden name. The file
  // is deleted on the servers; its OpenFile lives on under `hidden`.
  int Hide(const std::string& path, const std::string& hidden) EXCLUDES(files_mu_);
  // Moves the open files at or below `from` to `to`, orphaning what was at `to`.
  void MoveOpenFiles(const std::string& from, const std::string& to) EXCLUDES(files_mu_);
  Status Upload(OpenFile& file);
  Status TruncateSpool(OpenFile& file, int64_t size);
  // Marks a write or truncate of the spool as under way (before the syscall).
  void BeginChange(OpenFile& file);
  // Ends the write BeginChange started: feeds the bytes just written at
  // `offset` (nullopt: an append, or a failed write) to the file's running
  // MD5, or drops it when they are not the next bytes in order.
  void HashWrite(OpenFile& file, std::optional<uint64_t> offset, const char* buf, size_t size);
  void MarkWritten(OpenFile& file);
  int FillOpenFileAttr(OpenFile& file, struct stat* st) const;

  // Metadata.
  // One name; `fresh` skips the cache (and refreshes it). With
  // `inline_pieces` (fresh only), small pieces come along (Client::Stat).
  Result<client::Entry> Lookup(const std::string& path, bool fresh,
                               client::InlinePieces* inline_pieces = nullptr);
  // Like Lookup, and "NAME [incomplete]" finds the incomplete file NAME.
  Result<Resolved> Resolve(const std::string& path, bool fresh,
                           client::InlinePieces* inline_pieces = nullptr);
  Result<std::shared_ptr<const client::Listing>> GetListing(const std::string& dir);
  // `path` names the entry (its inode number).
  void FillAttr(const client::Entry& entry, const std::string& path, struct stat* st) const;
  // Shared by Chmod, Chown and Utimens: records the change in an open, dirty
  // file (its upload carries it) or sends SetAttr.
  int SetAttrs(std::string_view path, std::optional<uint64_t> fh, const client::AttrChange& change);
  // The user.* attributes of `path` now: an open file's (written in this
  // mount) or the newest version's (cached by version). *file: the open
  // file with a spool, if any.
  Result<XattrMap> XattrsOfPath(const std::string& path, std::shared_ptr<OpenFile>* file);
  Result<XattrMap> XattrsOfVersion(const client::FileVersion& v) EXCLUDES(xattrs_mu_);
  // Applies `edit` to the attributes of `path` and stores the result.
  int EditXattrs(std::string_view fuse_path, const std::function<int(XattrMap&)>& edit);
  // Symlink and Mknod: a new file of `content` (stored now) at `path`.
  int MakeNode(std::string_view path, std::string_view content, const client::FileAttrs& attrs);

  // Inode numbers, stable for the life of the mount (and across mounts for
  // a path never renamed): a hash of the path, kept by a renamed file.
  uint64_t InodeOf(const std::string& path) const EXCLUDES(inodes_mu_);
  void MoveInode(const std::string& from, const std::string& to) EXCLUDES(inodes_mu_);

  client::Client* const client_;
  const Spool spool_;
  const FsOptions options_;
  const int64_t mount_time_ns_;  // mtime shown for directories
  const std::shared_ptr<spdlog::logger> log_;
  MetaCache cache_;
  mutable MountStats stats_;

  // Lock order: files_mu_ before OpenFile::mu. handles_mu_, Handle::reader_mu
  // and the cache's lock are leaves. None is held across a network call or
  // spool I/O.
  mutable Mutex files_mu_;  // guards open_files_ and every OpenFile::handles
  std::map<std::string, std::shared_ptr<OpenFile>, std::less<>> open_files_ GUARDED_BY(files_mu_);

  mutable Mutex handles_mu_;  // guards handles_ and next_handle_; leaf lock
  std::unordered_map<uint64_t, std::shared_ptr<Handle>> handles_ GUARDED_BY(handles_mu_);
  uint64_t next_handle_ GUARDED_BY(handles_mu_) = 1;

  mutable Mutex inodes_mu_;  // leaf lock
  std::unordered_map<std::string, uint64_t> moved_inodes_ GUARDED_BY(inodes_mu_);
  // Link targets by content id (a version's content never changes).
  mutable Mutex links_mu_;  // leaf lock
  std::map<Cid, std::string> link_targets_ GUARDED_BY(links_mu_);
  // Extended attributes by version (content id and stamp: a change of
  // them comes with a new stamp).
  mutable Mutex xattrs_mu_;  // leaf lock
  std::map<std::pair<Cid, Stamp>, XattrMap> xattrs_ GUARDED_BY(xattrs_mu_);
};

}  // namespace dfs::fuse
