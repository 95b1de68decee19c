// The logic of the dfcfs mount (see fs.h).
#include "fuse_client/fuse/fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <malloc.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "fuse_client/fuse/paths.h"
#include "fuse_client/fuse/status_errno.h"
#include "shared/util/file_io.h"
#include "shared/util/log.h"
#include "shared/util/names.h"
#include "shared/util/prometheus.h"

namespace dfs::fuse {
namespace {

constexpr uint32_t kDirMode = 0755;
// Permission bits only: a mode from a stored record (or chmod) never makes a
// setuid, setgid or sticky file.
constexpr uint32_t kPermBits = 07777;
// An unlinked file still open for reading is copied to a spool up to this size;
// larger ones read as stale (ESTALE) once deleted on the servers.
constexpr uint64_t kKeepOnUnlinkMaxBytes = 256ull << 20;
constexpr blksize_t kBlockSize = 65536;
// Link targets kept in memory (by content id) before the table starts over.
constexpr size_t kMaxLinkTargetsKept = 4096;
// Sets of extended attributes kept by version (XattrsOfVersion).
constexpr size_t kMaxXattrSetsKept = 4096;
// How old a listing unlink may take a file's version from (see Unlink).
constexpr std::chrono::seconds kUnlinkKnownAge{30};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

timespec ToTimespec(int64_t ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

int Errno(const Status& s) { return -ToErrno(s); }

// libfuse keeps an open file that is unlinked (or renamed over) alive under a
// hidden name in the same folder, ".fuse_hiddenXXXXXXXX", until its last
// release. Such names live only in this mount, never on the servers.
constexpr std::string_view kHiddenPrefix = ".fuse_hidden";
bool IsHidden(std::string_view path) { return BaseOf(path).starts_with(kHiddenPrefix); }

client::Entry DirectoryEntry() {
  client::Entry e;
  e.is_dir = true;
  return e;
}

}  // namespace

// A path open in this mount: its spool, once written here, and pending attributes.
struct FileSystem::OpenFile {
  OpenFile(std::string p, const Mutex* files_mu) : handles(files_mu), path(std::move(p)) {}

  // The spool's descriptor, or -1. Once set it stays until the OpenFile dies,
  // so I/O on it needs no lock.
  int SpoolFd() EXCLUDES(mu) {
    MutexLock lock(&mu);
    return spool.get();
  }

  ExternallyGuarded<int> handles;  // by FileSystem::files_mu_: handles.Get(&files_mu_)

  Mutex mu;                         // guards the fields below; taken after files_mu_, else a leaf
  UniqueFd spool GUARDED_BY(mu);    // set once, by the first write-open
  std::string path GUARDED_BY(mu);  // where the next upload goes
  uint32_t mode GUARDED_BY(mu) = 0644;  // permission bits (meaningful with a spool)
  uint32_t uid GUARDED_BY(mu) = 0;      // owner (meaningful with a spool)
  uint32_t gid GUARDED_BY(mu) = 0;
  int64_t mtime_ns GUARDED_BY(mu) = 0;     // last write, truncate or utimens (with a spool)
  bool dirty GUARDED_BY(mu) = false;       // the spool differs from what the servers have
  bool orphaned GUARDED_BY(mu) = false;    // unlinked or renamed over: never uploaded again
  uint64_t generation GUARDED_BY(mu) = 0;  // bumped by every change: a racing upload stays dirty
  // MD5 of the spool's bytes [0, md5_end) while the file is written in order
  // from its start (cp, editors saving, compilers): the upload then needs no
  // pass of its own to place the pieces. Dropped by any other write.
  std::optional<Md5> md5 GUARDED_BY(mu);
  uint64_t md5_end GUARDED_BY(mu) = 0;
  // Writes and truncates under way (from BeginChange to the end of the
  // change): two at once drop the MD5, and an upload uses it only when none
  // is under way, so no race can leave a digest of other bytes.
  int changing GUARDED_BY(mu) = 0;
  // One upload at a time: a later upload must carry a later stamp and the
  // later content, so a slow earlier one can never win over it.
  bool uploading GUARDED_BY(mu) = false;
  CondVar upload_done;                       // signalled when `uploading` goes false
  std::optional<client::Entry> hidden_entry  // attributes once hidden, if no spool
      GUARDED_BY(mu);
  // The extended attributes the next upload carries (with a spool): the
  // version's it was opened from (kept, as O_TRUNC keeps them), and every
  // change made since.
  XattrMap xattrs GUARDED_BY(mu);
};

// One open(2) or opendir(2). Immutable after creation but for `reader`.
struct FileSystem::Handle {
  bool is_dir = false;
  std::string path;                // at open time; for directories and f*() on read handles
  bool append = false;             // O_APPEND: every write goes to the end of the spool
  std::shared_ptr<OpenFile> file;  // every file handle has one
  client::Entry entry;             // the version `reader` reads

  std::shared_ptr<client::Reader> CurrentReader() EXCLUDES(reader_mu) {
    MutexLock lock(&reader_mu);
    return reader;
  }
  Mutex reader_mu;  // guards reader; leaf lock
  // Remote reads while `file` has no spool.
  std::shared_ptr<client::Reader> reader GUARDED_BY(reader_mu);
  // A folder's entries as read at offset 0, served by offset after that.
  Mutex dir_mu;  // guards dir_snapshot; leaf lock
  std::shared_ptr<const DirSnapshot> dir_snapshot GUARDED_BY(dir_mu);
};

FileSystem::FileSystem(client::Client* client, Spool spool, FsOptions options)
    : client_(client),
      spool_(std::move(spool)),
      options_(options),
      mount_time_ns_(NowNs()),
      log_(Logger("fuse")),
      cache_(options.cache_ttl) {}

FileSystem::~FileSystem() = default;

// ---- handles ----

uint64_t FileSystem::AddHandle(std::shared_ptr<Handle> handle) {
  MutexLock lock(&handles_mu_);
  uint64_t fh = next_handle_++;
  handles_.emplace(fh, std::move(handle));
  return fh;
}

std::shared_ptr<FileSystem::Handle> FileSystem::FindHandle(uint64_t fh) const {
  MutexLock lock(&handles_mu_);
  auto it = handles_.find(fh);
  return it == handles_.end() ? nullptr : it->second;
}

std::shared_ptr<FileSystem::Handle> FileSystem::TakeHandle(uint64_t fh) {
  MutexLock lock(&handles_mu_);
  auto it = handles_.find(fh);
  if (it == handles_.end()) return nullptr;
  auto h = std::move(it->second);
  handles_.erase(it);
  return h;
}

// ---- open files ----

std::shared_ptr<FileSystem::OpenFile> FileSystem::FindOpenFile(const std::string& path) const {
  MutexLock lock(&files_mu_);
  auto it = open_files_.find(path);
  return it == open_files_.end() ? nullptr : it->second;
}

std::shared_ptr<FileSystem::OpenFile> FileSystem::FindSpooled(const std::string& path) const {
  auto file = FindOpenFile(path);
  return file && file->SpoolFd() >= 0 ? file : nullptr;
}

std::shared_ptr<FileSystem::OpenFile> FileSystem::AcquireOpenFile(const std::string& path) {
  MutexLock lock(&files_mu_);
  auto& slot = open_files_[path];
  if (!slot) slot = std::make_shared<OpenFile>(path, &files_mu_);
  ++slot->handles.Get(&files_mu_);
  return slot;
}

Status FileSystem::EnsureSpool(OpenFile& file, const std::string& path, int flags,
                               std::optional<uint32_t> create_mode, Caller owner) {
  const bool truncate = (flags & O_TRUNC) != 0 || create_mode.has_value();
  if (file.SpoolFd() >= 0) return truncate ? TruncateSpool(file, 0) : Status::Ok();

  // Build the spool without holding any lock; if another thread attaches one
  // first, ours is dropped.
  DFS_ASSIGN_OR_RETURN(UniqueFd fd, spool_.Create());
  uint32_t mode = 0644;
  uint32_t uid = owner.uid;
  uint32_t gid = owner.gid;
  int64_t mtime_ns = NowNs();
  bool dirty = true;
  XattrMap xattrs;
  if (create_mode) {
    mode = *create_mode & kPermBits;
  } else {
    DFS_ASSIGN_OR_RETURN(Resolved r, Resolve(path, /*fresh=*/true));
    if (r.entry.is_dir) return Status::IsDir(Escaped(path) + " is a directory");
    if (r.path != path) return Status::Incomplete(client::kIncompleteMessage);
    if (r.entry.file.newest.file_type() != S_IFREG)
      return Status::Invalid(Escaped(path) + " is not a regular file");
    mode = r.entry.file.newest.mode & kPermBits;
    uid = r.entry.file.newest.uid;
    gid = r.entry.file.newest.gid;
    DFS_ASSIGN_OR_RETURN(xattrs, XattrsOfVersion(r.entry.file));
    if (!truncate) {
      stats_.downloads.fetch_add(1, std::memory_order_relaxed);
      if (Status s = client_->Get(r.entry.file, fd.get()); !s.ok()) {
        log_->info("open {}: download failed: {}", Escaped(path), EscapeControl(s.ToString()));
        return s;
      }
      mtime_ns = r.entry.file.newest.mtime_ns;
      dirty = false;
    }
  }
  {
    MutexLock lock(&file.mu);
    if (!file.spool) {
      file.spool = std::move(fd);
      file.mode = mode;
      file.uid = uid;
      file.gid = gid;
      file.mtime_ns = mtime_ns;
      file.dirty = dirty;
      file.xattrs = std::move(xattrs);
      ++file.generation;
      file.md5.reset();
      file.md5_end = 0;
      if (dirty) file.md5.emplace();  // empty so far: written in order from here
      return Status::Ok();
    }
  }
  return truncate ? TruncateSpool(file, 0) : Status::Ok();
}

void FileSystem::DetachOpenFile(const std::shared_ptr<OpenFile>& file) {
  std::string lost;  // path of changes that never reached the servers
  {
    MutexLock lock(&files_mu_);
    if (--file->handles.Get(&files_mu_) > 0) return;
    MutexLock file_lock(&file->mu);
    if (file->dirty && file->spool && !file->orphaned) lost = file->path;
    auto it = open_files_.find(file->path);
    if (it != open_files_.end() && it->second == file) open_files_.erase(it);
  }
  if (!lost.empty())
    log_->warn("{}: closed with changes that could not be uploaded", Escaped(lost));
}

void FileSystem::OrphanOpenFile(const std::string& path) {
  MutexLock lock(&files_mu_);
  auto it = open_files_.find(path);
  if (it == open_files_.end()) return;
  {
    MutexLock file_lock(&it->second->mu);
    it->second->orphaned = true;
  }
  open_files_.erase(it);
}

void FileSystem::MoveOpenFiles(const std::string& from, const std::string& to) {
  MutexLock lock(&files_mu_);
  if (auto it = open_files_.find(to); it != open_files_.end()) {
    MutexLock file_lock(&it->second->mu);
    it->second->orphaned = true;
    open_files_.erase(it);
  }
  std::vector<std::pair<std::string, std::shared_ptr<OpenFile>>> moved;
  for (auto it = open_files_.lower_bound(from);
       it != open_files_.end() && it->first.starts_with(from);) {
    if (!IsUnder(it->first, from)) {
      ++it;
      continue;
    }
    moved.emplace_back(to + it->first.substr(from.size()), std::move(it->second));
    it = open_files_.erase(it);
  }
  for (auto& [path, file] : moved) {
    {
      MutexLock file_lock(&file->mu);
      file->path = path;
      ++file->generation;
    }
    open_files_[path] = std::move(file);
  }
}

void FileSystem::MarkWritten(OpenFile& file) {
  int64_t now = NowNs();
  MutexLock lock(&file.mu);
  file.dirty = true;
  file.mtime_ns = now;
  ++file.generation;
}

void FileSystem::BeginChange(OpenFile& file) {
  MutexLock lock(&file.mu);
  if (++file.changing > 1) file.md5.reset();
}

Status FileSystem::TruncateSpool(OpenFile& file, int64_t size) {
  const int fd = file.SpoolFd();
  if (fd < 0) return Status::Invalid("file is not open for writing");
  BeginChange(file);
  const int err = ::ftruncate(fd, size) == 0 ? 0 : errno;
  {
    MutexLock lock(&file.mu);
    --file.changing;
    if (err != 0) {
      file.md5.reset();
    } else if (size == 0) {
      file.md5.emplace();
      file.md5_end = 0;
    } else if (static_cast<uint64_t>(size) < file.md5_end) {
      file.md5.reset();  // hashed bytes are gone
    }
  }
  if (err != 0) return FromErrno(err, "truncate spool file");
  MarkWritten(file);
  return Status::Ok();
}

void FileSystem::HashWrite(OpenFile& file, std::optional<uint64_t> offset, const char* buf,
                           size_t size) {
  MutexLock lock(&file.mu);
  --file.changing;
  if (!file.md5) return;
  if (offset && *offset == file.md5_end) {
    file.md5->Update(buf, size);
    file.md5_end += size;
  } else {
    file.md5.reset();  // out of order, or an append at an offset we do not know
  }
}

Status FileSystem::Upload(OpenFile& file) {
  std::string path;
  client::FileAttrs attrs;
  uint64_t generation = 0;
  int fd = -1;
  std::optional<client::Client::KnownDigest> known;
  {
    MutexLock lock(&file.mu);
    while (file.uploading) file.upload_done.Wait(&file.mu);
    if (!file.spool || !file.dirty || file.orphaned) return Status::Ok();
    file.uploading = true;
    fd = file.spool.get();
    path = file.path;
    attrs.mode = file.mode;
    attrs.mtime_ns = file.mtime_ns;
    attrs.uid = file.uid;
    attrs.gid = file.gid;
    attrs.xattrs = file.xattrs;
    generation = file.generation;
    if (file.md5 && file.changing == 0)
      known = client::Client::KnownDigest{file.md5_end, file.md5->Peek()};
  }
  auto put = client_->Put(fd, path, attrs, known);
  if (put.ok()) {
    stats_.uploads.fetch_add(1, std::memory_order_relaxed);
    stats_.upload_bytes.fetch_add(put->size, std::memory_order_relaxed);
  } else {
    stats_.upload_failures.fetch_add(1, std::memory_order_relaxed);
  }
  {
    MutexLock lock(&file.mu);
    file.uploading = false;
    if (put.ok() && file.generation == generation && file.path == path) file.dirty = false;
  }
  file.upload_done.SignalAll();
  cache_.Invalidate(path);
  if (put.ok() && put->version.exists) {
    client::Entry e;
    e.name = std::string(BaseOf(path));
    e.file = put->version;
    cache_.PutEntry(path, std::move(e), cache_.Begin());
  }
  if (!put.ok()) {
    log_->warn("upload of {} failed: {}", Escaped(path), EscapeControl(put.status().ToString()));
    return put.status();
  }
  if (put->degraded) {
    std::string notes;
    for (const auto& n : put->notes) notes += (notes.empty() ? "" : "; ") + n;
    log_->warn("{} uploaded with fewer copies than wanted: {}", Escaped(path),
               EscapeControl(notes));
  }
  return Status::Ok();
}

int FileSystem::FillOpenFileAttr(OpenFile& file, struct stat* st) const {
  struct stat spool {};
  if (::fstat(file.SpoolFd(), &spool) != 0) return Errno(FromErrno(errno, "stat spool file"));
  client::Entry e;
  std::string path;
  {
    MutexLock lock(&file.mu);
    e.file.newest.mode = file.mode;
    e.file.newest.mtime_ns = file.mtime_ns;
    e.file.newest.uid = file.uid;
    e.file.newest.gid = file.gid;
    path = file.path;
  }
  e.file.newest.file_size = static_cast<uint64_t>(spool.st_size);
  FillAttr(e, path, st);
  return 0;
}

// ---- metadata ----

Result<client::Entry> FileSystem::Lookup(const std::string& path, bool fresh,
                                         client::InlinePieces* inline_pieces) {
  if (!fresh) {
    if (auto e = cache_.GetEntry(path)) {
      stats_.lookups_cached.fetch_add(1, std::memory_order_relaxed);
      return *e;
    }
    if (cache_.KnownAbsent(path)) return Status::NotFound(Escaped(path) + ": no such file");
    // A small folder someone works in (cp -r, tar x, make) is listed again
    // rather than asked name by name: one LIST answers every lookup in it
    // for the next TTL, names that do not exist included.
    const std::string parent = ParentOf(path);
    if (!path.empty() && cache_.WorthRelisting(parent) && GetListing(parent).ok()) {
      if (auto e = cache_.GetEntry(path)) return *e;
      if (cache_.KnownAbsent(path)) return Status::NotFound(Escaped(path) + ": no such file");
    }
  }
  auto token = cache_.Begin();
  stats_.lookups_asked.fetch_add(1, std::memory_order_relaxed);
  auto r = client_->Stat(path, inline_pieces);
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) cache_.PutAbsent(path, token);
    return r.status();
  }
  if (!r->is_dir && !r->file.exists) {
    cache_.PutAbsent(path, token);
    return Status::NotFound(Escaped(path) + ": no such file");
  }
  cache_.PutEntry(path, *r, token);
  return r;
}

Result<FileSystem::Resolved> FileSystem::Resolve(const std::string& path, bool fresh,
                                                 client::InlinePieces* inline_pieces) {
  if (auto base = StripIncompleteSuffix(path)) {
    auto e = Lookup(*base, fresh);
    if (e.ok() && !e->is_dir && !e->complete()) return Resolved{*base, std::move(e).value()};
    // Otherwise it may be a file that is really named so.
  }
  DFS_ASSIGN_OR_RETURN(client::Entry e, Lookup(path, fresh, inline_pieces));
  return Resolved{path, std::move(e)};
}

Result<std::shared_ptr<const client::Listing>> FileSystem::GetListing(const std::string& dir) {
  if (auto cached = cache_.GetListing(dir)) return cached;
  // A stale listing stays for unlink (GetRecentEntry), but not one of a big
  // folder while its successor is fetched: the mount would hold both.
  // Its memory goes back to the system at once: the new one is built by
  // other threads and would not fit in the holes it leaves.
  if (cache_.DropBigListing(dir)) ::malloc_trim(0);
  auto token = cache_.Begin();
  stats_.listings.fetch_add(1, std::memory_order_relaxed);
  auto r = client_->List(dir);
  if (!r.ok()) return r.status();
  auto listing = std::make_shared<const client::Listing>(std::move(r).value());
  cache_.PutListing(dir, listing, token);
  return listing;
}

void FileSystem::FillAttr(const client::Entry& entry, const std::string& path,
                          struct stat* st) const {
  *st = {};
  st->st_ino = InodeOf(path);
  if (entry.is_dir) {
    st->st_nlink = 2 + entry.subdirs;
    if (const auto& h = entry.folder) {
      st->st_mode = S_IFDIR | (h->mode & kPermBits);
      st->st_mtim = ToTimespec(h->mtime_ns);
      st->st_ctim = ToTimespec(static_cast<int64_t>(h->stamp.time_ns));
      st->st_uid = h->uid;
      st->st_gid = h->gid;
    } else {  // a folder made before folders had records
      st->st_mode = S_IFDIR | kDirMode;
      st->st_mtim = ToTimespec(mount_time_ns_);
      st->st_ctim = st->st_mtim;
      st->st_uid = options_.uid;
      st->st_gid = options_.gid;
    }
  } else {
    const PieceHeader& h = entry.file.newest;
    st->st_mode = h.file_type() | (h.mode & kPermBits);
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(entry.size());
    st->st_blocks = static_cast<blkcnt_t>((entry.size() + 511) / 512);
    st->st_mtim = ToTimespec(h.mtime_ns);
    // Every change of a file (content, attributes, name) has a new stamp.
    st->st_ctim =
        h.stamp.time_ns != 0 ? ToTimespec(static_cast<int64_t>(h.stamp.time_ns)) : st->st_mtim;
    st->st_rdev = static_cast<dev_t>(h.rdev);
    st->st_uid = h.uid;
    st->st_gid = h.gid;
  }
  st->st_atim = st->st_mtim;  // atime is not kept (noatime)
  st->st_blksize = kBlockSize;
}

uint64_t FileSystem::InodeOf(const std::string& path) const {
  if (path.empty()) return 1;  // FUSE_ROOT_ID
  {
    MutexLock lock(&inodes_mu_);
    if (auto it = moved_inodes_.find(path); it != moved_inodes_.end()) return it->second;
  }
  uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (unsigned char c : path) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h <= 1 ? h + 2 : h;
}

void FileSystem::MoveInode(const std::string& from, const std::string& to) {
  const uint64_t ino = InodeOf(from);
  MutexLock lock(&inodes_mu_);
  moved_inodes_.erase(from);
  moved_inodes_[to] = ino;
}

int FileSystem::GetAttr(std::string_view fuse_path, std::optional<uint64_t> fh, struct stat* st) {
  std::string path = RelativePath(fuse_path);
  if (fh) {
    if (auto h = FindHandle(*fh)) {
      if (h->file && h->file->SpoolFd() >= 0) return FillOpenFileAttr(*h->file, st);
      if (!h->is_dir) {
        FillAttr(h->entry, h->path, st);
        return 0;
      }
      path = h->path;
    }
  }
  if (auto file = FindSpooled(path)) return FillOpenFileAttr(*file, st);
  if (IsHidden(path)) {
    auto file = FindOpenFile(path);
    if (!file) return -ENOENT;
    MutexLock lock(&file->mu);
    if (!file->hidden_entry) return -ENOENT;
    FillAttr(*file->hidden_entry, path, st);
    return 0;
  }
  auto r = Resolve(path, /*fresh=*/false);
  if (!r.ok()) {
    // A file created here and not uploaded yet is only in the path table; it
    // may have appeared while we asked the servers.
    if (auto file = FindSpooled(path)) return FillOpenFileAttr(*file, st);
    return Errno(r.status());
  }
  FillAttr(r->entry, path, st);
  return 0;
}

// ---- directories ----

int FileSystem::OpenDir(std::string_view fuse_path, uint64_t* fh) {
  auto h = std::make_shared<Handle>();
  h->is_dir = true;
  h->path = RelativePath(fuse_path);
  *fh = AddHandle(std::move(h));
  return 0;
}

int FileSystem::ReadDirAt(uint64_t fh, uint64_t offset, std::shared_ptr<const DirSnapshot>* out) {
  auto h = FindHandle(fh);
  if (!h || !h->is_dir) return -EBADF;
  if (offset > 0) {
    MutexLock lock(&h->dir_mu);
    if (h->dir_snapshot) {
      *out = h->dir_snapshot;
      return 0;
    }
  }
  auto listing = GetListing(h->path);
  if (!listing.ok()) return Errno(listing.status());
  auto snapshot = std::make_shared<DirSnapshot>();
  snapshot->dir = h->path;
  snapshot->listing = std::move(listing).value();
  // Files created here and not uploaded yet are listed too.
  std::set<std::string, std::less<>> local;
  {
    MutexLock lock(&files_mu_);
    for (const auto& [path, file] : open_files_) {
      if (IsHidden(path) || ParentOf(path) != h->path) continue;
      MutexLock file_lock(&file->mu);
      if (file->spool && !file->orphaned) local.emplace(BaseOf(path));
    }
  }
  for (const auto& e : snapshot->listing->entries) {
    if (local.empty()) break;
    if (auto it = local.find(e.name); it != local.end()) {
      snapshot->open_here.insert(local.extract(it));
    }
  }
  snapshot->local.assign(local.begin(), local.end());
  MutexLock lock(&h->dir_mu);
  h->dir_snapshot = std::move(snapshot);
  *out = h->dir_snapshot;
  return 0;
}

DirEntry FileSystem::EntryAt(const DirSnapshot& snapshot, size_t i) const {
  if (i < 2) return {i == 0 ? "." : "..", S_IFDIR | kDirMode};
  i -= 2;
  const auto& entries = snapshot.listing->entries;
  if (i >= entries.size()) return {snapshot.local[i - entries.size()], S_IFREG | 0644};
  const client::Entry& e = entries[i];
  const bool here = snapshot.open_here.contains(e.name);
  DirEntry d;
  d.name = e.name;
  if (!e.is_dir && !e.complete() && !here) d.name += kIncompleteSuffix;
  // A file open for writing here has the spool's attributes: getattr asks.
  d.attrs = !here;
  FillAttr(e, JoinName(snapshot.dir, e.name), &d.st);
  d.mode = d.st.st_mode;
  return d;
}

int FileSystem::ReleaseDir(uint64_t fh) {
  auto h = TakeHandle(fh);
  size_t listed = 0;
  if (h) {
    MutexLock lock(&h->dir_mu);
    if (h->dir_snapshot) listed = h->dir_snapshot->size();
    h->dir_snapshot.reset();
  }
  h.reset();
  // Listing a big folder leaves megabytes in malloc's free lists (what the
  // servers sent, merged meanwhile; a listing it replaced): give them back.
  if (listed >= MetaCache::kBigListing) ::malloc_trim(0);
  return 0;
}

int FileSystem::Mkdir(std::string_view fuse_path, uint32_t mode, Caller caller) {
  std::string path = RelativePath(fuse_path);
  if (path.empty()) return -EEXIST;
  if (IsHidden(path)) return -EINVAL;
  client::FileAttrs attrs;
  attrs.mode = mode & kPermBits;
  attrs.mtime_ns = NowNs();
  attrs.uid = caller.uid;
  attrs.gid = caller.gid;
  Status s = client_->Mkdir(path, attrs);
  cache_.Invalidate(path);
  cache_.ForgetAttributes(ParentOf(path));  // one more subfolder
  if (!s.ok()) return Errno(s);
  // It did not exist on any server: it is empty (as far as the TTL goes).
  const auto token = cache_.Begin();
  client::Entry made = DirectoryEntry();
  made.folder.emplace();  // what the record says (for stat; the record itself is signed)
  made.folder->kind = PieceKind::kFolder;
  made.folder->mode = S_IFDIR | attrs.mode;
  made.folder->mtime_ns = attrs.mtime_ns;
  made.folder->stamp.time_ns = static_cast<uint64_t>(attrs.mtime_ns);
  made.folder->uid = caller.uid;
  made.folder->gid = caller.gid;
  cache_.PutEntry(path, std::move(made), token);
  cache_.PutListing(path, std::make_shared<const client::Listing>(), token);
  return 0;
}

int FileSystem::Rmdir(std::string_view fuse_path) {
  std::string path = RelativePath(fuse_path);
  if (path.empty()) return -EBUSY;
  {
    // Files created inside and not uploaded yet count too.
    MutexLock lock(&files_mu_);
    for (auto it = open_files_.lower_bound(path + "/");
         it != open_files_.end() && it->first.starts_with(path + "/"); ++it) {
      MutexLock file_lock(&it->second->mu);
      if (it->second->spool && !it->second->orphaned) return -ENOTEMPTY;
    }
  }
  Status s = client_->Rmdir(path);
  cache_.Invalidate(path);
  cache_.ForgetAttributes(ParentOf(path));  // one subfolder fewer
  return s.ok() ? 0 : Errno(s);
}

// ---- files ----

int FileSystem::Open(std::string_view fuse_path, int flags, uint64_t* fh) {
  std::string path = RelativePath(fuse_path);
  auto h = std::make_shared<Handle>();
  h->path = path;
  h->append = (flags & O_APPEND) != 0;
  h->file = AcquireOpenFile(path);
  const bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
  if (write) {
    if (Status s = EnsureSpool(*h->file, path, flags, std::nullopt); !s.ok()) {
      DetachOpenFile(h->file);
      return Errno(s);
    }
  } else if (h->file->SpoolFd() < 0) {
    client::InlinePieces inline_pieces;  // a small file comes along with its stat
    auto r = Resolve(path, /*fresh=*/true, &inline_pieces);  // close-to-open: ask the servers
    // The kernel keeps attributes (size!) for a second, perhaps of an older
    // version than this one: it must ask again (getattr is answered from
    // the entry just fetched). Its pages go at open anyway (keep_cache off).
    if (r.ok() && options_.forget_kernel_cache) options_.forget_kernel_cache("/" + path);
    int rc = 0;
    if (!r.ok()) {
      rc = Errno(r.status());
    } else if (r->entry.is_dir) {
      rc = -EISDIR;
    } else if (r->path != path || !r->entry.complete()) {
      log_->info("open {}: file is incomplete (pieces missing)", Escaped(path));
      rc = -EIO;
    } else if (auto reader = client_->Open(r->entry.file, inline_pieces); !reader.ok()) {
      log_->info("open {}: {}", Escaped(path), EscapeControl(reader.status().ToString()));
      rc = Errno(reader.status());
    } else {
      MutexLock lock(&h->reader_mu);  // not shared yet; the lock is for the analysis
      h->reader = std::shared_ptr<client::Reader>(std::move(reader).value());
      h->entry = std::move(r->entry);
    }
    if (rc != 0) {
      DetachOpenFile(h->file);
      return rc;
    }
  }
  *fh = AddHandle(std::move(h));
  return 0;
}

int FileSystem::Create(std::string_view fuse_path, uint32_t mode, int flags, uint64_t* fh,
                       Caller caller) {
  std::string path = RelativePath(fuse_path);
  if (path.empty()) return -EISDIR;
  if (IsHidden(path)) return -EINVAL;  // reserved for unlinked open files
  if (Status s = ValidateName(BaseOf(path)); !s.ok()) return Errno(s);
  // The kernel creates when it believes the name absent, which it may have
  // learned up to a second ago (negative caching). Unless the content is
  // replaced anyway (O_TRUNC), ask the servers: another client's new file
  // is then neither replaced (O_EXCL gets EEXIST) nor emptied (it is opened).
  if ((flags & O_TRUNC) == 0 && !FindSpooled(path)) {
    auto existing = Lookup(path, /*fresh=*/true);
    if (existing.ok()) {
      if (existing->is_dir) return -EISDIR;
      if (flags & O_EXCL) return -EEXIST;
      return Open(fuse_path, flags, fh);
    }
    if (existing.status().code() != Code::kNotFound) return Errno(existing.status());
  }
  auto h = std::make_shared<Handle>();
  h->path = path;
  h->append = (flags & O_APPEND) != 0;
  h->file = AcquireOpenFile(path);
  if (Status s = EnsureSpool(*h->file, path, flags, mode, caller); !s.ok()) {
    DetachOpenFile(h->file);
    return Errno(s);
  }
  cache_.Invalidate(path);
  *fh = AddHandle(std::move(h));
  return 0;
}

int FileSystem::Read(uint64_t fh, char* buf, size_t size, int64_t offset) {
  auto h = FindHandle(fh);
  if (!h || h->is_dir) return -EBADF;
  if (offset < 0) return -EINVAL;
  if (const int fd = h->file->SpoolFd(); fd >= 0) {
    auto done = PreadFull(fd, buf, size, static_cast<uint64_t>(offset), "read spool file");
    if (!done.ok()) return Errno(done.status());
    return static_cast<int>(*done);
  }
  auto reader = h->CurrentReader();
  if (!reader) return -EBADF;
  auto n = reader->Read(static_cast<uint64_t>(offset), size, buf);
  if (n.ok()) stats_.read_bytes.fetch_add(*n, std::memory_order_relaxed);
  auto gone = [](const Status& st) {
    return st.code() == Code::kNotFound || st.code() == Code::kStale;
  };
  if (!n.ok() && gone(n.status())) {
    // Renamed in this mount since the open? The content (cid) moved with the name.
    client::FileVersion moved = reader->version();
    std::string now;
    {
      MutexLock lock(&h->file->mu);
      if (!h->file->orphaned) now = h->file->path;
    }
    if (!now.empty() && now != JoinName(moved.dir, moved.name)) {
      moved.dir = ParentOf(now);
      moved.name = std::string(BaseOf(now));
      auto again = std::make_shared<client::Reader>(client_, std::move(moved));
      n = again->Read(static_cast<uint64_t>(offset), size, buf);
      if (n.ok()) {
        MutexLock lock(&h->reader_mu);
        h->reader = std::move(again);
      }
    }
  }
  if (!n.ok()) {
    log_->info("read {} at {}: {}", Escaped(h->path), offset, EscapeControl(n.status().ToString()));
    // Deleted or replaced by someone else since the open: the handle is stale.
    if (gone(n.status())) return -ESTALE;
    return Errno(n.status());
  }
  return static_cast<int>(*n);
}

int FileSystem::Write(uint64_t fh, const char* buf, size_t size, int64_t offset) {
  auto h = FindHandle(fh);
  if (!h || h->is_dir) return -EBADF;
  if (offset < 0) return -EINVAL;
  const int fd = h->file->SpoolFd();
  if (fd < 0) return -EBADF;
  BeginChange(*h->file);
  size_t done = 0;
  while (done < size) {
    ssize_t n = -1;
    if (h->append) {
      // The kernel's idea of the end may be stale; the spool's is not.
      iovec iov{const_cast<char*>(buf + done), size - done};
      n = ::pwritev2(fd, &iov, 1, -1, RWF_APPEND);
      if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL))
        n = ::pwrite(fd, buf + done, size - done, offset + static_cast<int64_t>(done));
    } else {
      n = ::pwrite(fd, buf + done, size - done, offset + static_cast<int64_t>(done));
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      HashWrite(*h->file, std::nullopt, buf, 0);  // ends the change, drops the MD5
      return Errno(FromErrno(err, "write spool file"));
    }
    done += static_cast<size_t>(n);
  }
  HashWrite(*h->file, h->append ? std::nullopt : std::optional<uint64_t>(offset), buf, size);
  MarkWritten(*h->file);
  return static_cast<int>(size);
}

int FileSystem::Flush(uint64_t fh) {
  auto h = FindHandle(fh);
  if (!h || h->is_dir) return -EBADF;
  Status s = Upload(*h->file);
  return s.ok() ? 0 : Errno(s);
}

int FileSystem::Fsync(uint64_t fh) { return Flush(fh); }

int FileSystem::Release(uint64_t fh) {
  auto h = TakeHandle(fh);
  if (h && h->file) {
    // Changes no flush uploaded: libfuse makes a regular file for mknod(2)
    // with create and release alone (tar --xattrs makes files so).
    if (Status s = Upload(*h->file); !s.ok())
      log_->warn("release of {}: {}", Escaped(h->path), EscapeControl(s.ToString()));
    DetachOpenFile(h->file);
  }
  return 0;
}

int FileSystem::Truncate(std::string_view fuse_path, std::optional<uint64_t> fh, int64_t size) {
  if (size < 0) return -EINVAL;
  std::string path = RelativePath(fuse_path);
  if (fh) {
    if (auto h = FindHandle(*fh)) {
      if (h->file && h->file->SpoolFd() >= 0) {
        Status s = TruncateSpool(*h->file, size);
        return s.ok() ? 0 : Errno(s);
      }
      path = h->path;
    }
  }
  // By path: the change is visible to everyone now, so upload at once.
  auto file = AcquireOpenFile(path);
  Status s = EnsureSpool(*file, path, size == 0 ? O_TRUNC : 0, std::nullopt);
  if (s.ok()) s = TruncateSpool(*file, size);
  if (s.ok()) s = Upload(*file);
  DetachOpenFile(file);
  return s.ok() ? 0 : Errno(s);
}

int FileSystem::Unlink(std::string_view fuse_path) {
  std::string path = RelativePath(fuse_path);
  if (path.empty()) return -EISDIR;
  if (IsHidden(path)) {  // the last release of an unlinked open file
    OrphanOpenFile(path);
    return 0;
  }
  if (StripIncompleteSuffix(path)) {
    if (auto r = Resolve(path, /*fresh=*/false); r.ok()) path = r->path;
  }
  const bool local = FindSpooled(path) != nullptr;
  // `rm -r` lists the folder first: its listing names the version to delete,
  // also once it is older than the TTL (removing a big folder takes
  // longer): the tombstone only has to be newer than what was seen, and a
  // name this mount changed since is not taken from it (touched).
  const std::optional<client::Entry> known = cache_.GetRecentEntry(path, kUnlinkKnownAge);
  Status s = client_->Unlink(path, known ? &*known : nullptr);
  cache_.Invalidate(path);
  // A file created here and never uploaded exists only in the path table.
  if (!s.ok() && !(s.code() == Code::kNotFound && local)) return Errno(s);
  OrphanOpenFile(path);
  return 0;
}

int FileSystem::Rename(std::string_view fuse_from, std::string_view fuse_to, unsigned int flags) {
  constexpr unsigned int kNoReplace = 1;    // RENAME_NOREPLACE
  if (flags & ~kNoReplace) return -EINVAL;  // RENAME_EXCHANGE, RENAME_WHITEOUT
  std::string from = RelativePath(fuse_from);
  std::string to = RelativePath(fuse_to);
  if (from.empty() || to.empty()) return -EBUSY;
  if (IsHidden(from)) return -ENOENT;
  if (StripIncompleteSuffix(from)) {
    if (auto r = Resolve(from, /*fresh=*/false); r.ok()) from = r->path;
  }
  if (IsHidden(to)) return Hide(from, to);
  if (from == to) return 0;
  if (IsUnder(to, from)) return -EINVAL;  // a directory into itself
  if (flags & kNoReplace) {
    if (FindSpooled(to)) return -EEXIST;
    auto e = Lookup(to, /*fresh=*/true);
    if (e.ok()) return -EEXIST;
    if (e.status().code() != Code::kNotFound) return Errno(e.status());
  }
  const bool local = FindSpooled(from) != nullptr;
  Status s = client_->Rename(from, to);
  cache_.Invalidate(from);
  cache_.Invalidate(to);
  cache_.ForgetAttributes(ParentOf(from));  // a folder moved: subfolder counts
  cache_.ForgetAttributes(ParentOf(to));
  if (!s.ok()) {
    if (!(s.code() == Code::kNotFound && local)) return Errno(s);
    // Created here and never uploaded: only the open file moves; its upload
    // will replace `to`, which must not be a directory.
    auto target = Lookup(to, /*fresh=*/true);
    if (target.ok() && target->is_dir) return -EISDIR;
  }
  MoveOpenFiles(from, to);
  MoveInode(from, to);
  return 0;
}

int FileSystem::Hide(const std::string& path, const std::string& hidden) {
  auto entry = Lookup(path, /*fresh=*/false);
  // Handles that read from the servers would lose the content with the file:
  // keep a copy in a spool (files of reasonable size only).
  if (auto file = FindOpenFile(path); file && file->SpoolFd() < 0 && entry.ok() && !entry->is_dir &&
                                      entry->size() <= kKeepOnUnlinkMaxBytes) {
    if (Status s = EnsureSpool(*file, path, 0, std::nullopt); !s.ok())
      log_->info("unlink {}: open readers lose the content: {}", Escaped(path),
                 EscapeControl(s.ToString()));
  }
  const bool local = FindSpooled(path) != nullptr;
  Status s = client_->Unlink(path);
  cache_.Invalidate(path);
  if (!s.ok() && !(s.code() == Code::kNotFound && local)) return Errno(s);
  MutexLock lock(&files_mu_);
  auto it = open_files_.find(path);
  if (it == open_files_.end()) return 0;
  auto file = std::move(it->second);
  open_files_.erase(it);
  {
    MutexLock file_lock(&file->mu);
    file->orphaned = true;
    file->path = hidden;
    if (entry.ok()) file->hidden_entry = std::move(entry).value();
  }
  open_files_[hidden] = std::move(file);
  return 0;
}

int FileSystem::SetAttrs(std::string_view fuse_path, std::optional<uint64_t> fh,
                         const client::AttrChange& change) {
  std::string path = RelativePath(fuse_path);
  std::shared_ptr<OpenFile> file;
  if (fh) {
    if (auto h = FindHandle(*fh)) {
      file = h->file;
      path = h->path;
    }
  }
  if (!file) file = FindOpenFile(path);
  if (file && file->SpoolFd() >= 0) {
    MutexLock lock(&file->mu);
    if (change.mode) file->mode = *change.mode & kPermBits;
    if (change.mtime_ns) file->mtime_ns = *change.mtime_ns;
    if (change.uid) file->uid = *change.uid;
    if (change.gid) file->gid = *change.gid;
    ++file->generation;
    path = file->path;
    // A dirty file's upload carries the change; an orphan is gone for everyone else.
    if (file->dirty || file->orphaned) return 0;
  }
  Status s = client_->SetAttr(path, change);
  cache_.Invalidate(path);
  if (s.ok() || s.code() == Code::kIsDir) return 0;  // directories have no attributes to keep
  return Errno(s);
}

int FileSystem::Chmod(std::string_view path, std::optional<uint64_t> fh, uint32_t mode) {
  client::AttrChange change;
  change.mode = mode & kPermBits;
  return SetAttrs(path, fh, change);
}

int FileSystem::Chown(std::string_view fuse_path, std::optional<uint64_t> fh, uid_t uid, gid_t gid,
                      Caller caller) {
  client::AttrChange change;
  if (uid != static_cast<uid_t>(-1)) change.uid = uid;
  if (gid != static_cast<gid_t>(-1)) change.gid = gid;
  if (change.empty()) return 0;
  if (caller.uid != 0 && !options_.kernel_checks_permissions) {
    // The rules of chown(2) for a process without CAP_CHOWN: the owner may
    // set the group to its own, nothing else (supplementary groups are
    // checked by the kernel with default_permissions).
    struct stat st {};
    if (int rc = GetAttr(fuse_path, fh, &st); rc != 0) return rc;
    if (st.st_uid != caller.uid) return -EPERM;
    if (change.uid && *change.uid != st.st_uid) return -EPERM;
    if (change.gid && *change.gid != st.st_gid && *change.gid != caller.gid) return -EPERM;
  }
  return SetAttrs(fuse_path, fh, change);
}

int FileSystem::Utimens(std::string_view path, std::optional<uint64_t> fh,
                        const struct timespec* times) {
  int64_t mtime_ns = 0;
  if (times == nullptr || times[1].tv_nsec == UTIME_NOW) {
    mtime_ns = NowNs();
  } else if (times[1].tv_nsec == UTIME_OMIT) {
    return 0;  // only the atime, which dfs does not keep
  } else {
    mtime_ns = static_cast<int64_t>(times[1].tv_sec) * 1000000000 + times[1].tv_nsec;
  }
  client::AttrChange change;
  change.mtime_ns = mtime_ns;
  return SetAttrs(path, fh, change);
}

int FileSystem::MakeNode(std::string_view fuse_path, std::string_view content,
                         const client::FileAttrs& attrs) {
  std::string path = RelativePath(fuse_path);
  if (path.empty()) return -EEXIST;
  if (IsHidden(path)) return -EINVAL;
  if (Status s = ValidateName(BaseOf(path)); !s.ok()) return Errno(s);
  if (FindSpooled(path)) return -EEXIST;
  auto existing = Lookup(path, /*fresh=*/true);
  if (existing.ok()) return -EEXIST;
  if (existing.status().code() != Code::kNotFound) return Errno(existing.status());
  auto put = client_->PutBytes(path, content, attrs);
  cache_.Invalidate(path);
  if (!put.ok()) return Errno(put.status());
  if (put->version.exists) {
    client::Entry e;
    e.name = std::string(BaseOf(path));
    e.file = put->version;
    cache_.PutEntry(path, std::move(e), cache_.Begin());
  }
  return 0;
}

int FileSystem::Symlink(std::string_view target, std::string_view fuse_path, Caller caller) {
  if (target.empty()) return -ENOENT;
  if (target.size() > client::Client::kMaxLinkBytes) return -ENAMETOOLONG;
  client::FileAttrs attrs;
  attrs.mode = S_IFLNK | 0777;
  attrs.uid = caller.uid;
  attrs.gid = caller.gid;
  return MakeNode(fuse_path, target, attrs);
}

int FileSystem::Mknod(std::string_view fuse_path, uint32_t mode, uint64_t rdev, Caller caller) {
  client::FileAttrs attrs;
  attrs.uid = caller.uid;
  attrs.gid = caller.gid;
  switch (mode & S_IFMT) {
    case 0:
    case S_IFREG:
      attrs.mode = S_IFREG | (mode & kPermBits);
      break;
    case S_IFIFO:
    case S_IFSOCK:
      attrs.mode = mode & (S_IFMT | kPermBits);
      break;
    case S_IFCHR:
    case S_IFBLK:
      if (caller.uid != 0) return -EPERM;  // device nodes: root only, as on a local disk
      attrs.mode = mode & (S_IFMT | kPermBits);
      attrs.rdev = rdev;
      break;
    default:
      return -EINVAL;
  }
  return MakeNode(fuse_path, "", attrs);
}

int FileSystem::ReadLink(std::string_view fuse_path, char* buf, size_t size) {
  if (size == 0) return -EINVAL;
  std::string path = RelativePath(fuse_path);
  auto r = Resolve(path, /*fresh=*/false);
  if (!r.ok()) return Errno(r.status());
  if (r->entry.is_dir || r->entry.file.newest.file_type() != S_IFLNK) return -EINVAL;
  std::string target;
  {
    MutexLock lock(&links_mu_);
    if (auto it = link_targets_.find(r->entry.file.newest.cid); it != link_targets_.end())
      target = it->second;
  }
  if (target.empty()) {
    client::InlinePieces inline_pieces;  // a link's pieces come along with its stat
    auto fresh = Resolve(path, /*fresh=*/true, &inline_pieces);
    if (!fresh.ok()) return Errno(fresh.status());
    if (fresh->entry.is_dir || fresh->entry.file.newest.file_type() != S_IFLNK) return -EINVAL;
    auto read = client_->ReadSmall(fresh->entry.file, inline_pieces);
    if (!read.ok()) return Errno(read.status());
    target = std::move(read).value();
    MutexLock lock(&links_mu_);
    if (link_targets_.size() >= kMaxLinkTargetsKept) link_targets_.clear();
    link_targets_.emplace(fresh->entry.file.newest.cid, target);
  }
  const size_t n = std::min(target.size(), size - 1);
  std::memcpy(buf, target.data(), n);
  buf[n] = '\0';
  return 0;
}

int FileSystem::StatFs(struct statvfs* st) {
  auto r = client_->StatFs();
  if (!r.ok()) return Errno(r.status());
  constexpr uint64_t kFsBlock = 4096;
  *st = {};
  st->f_bsize = kFsBlock;
  st->f_frsize = kFsBlock;
  st->f_blocks = r->total_bytes / kFsBlock;
  st->f_bfree = r->free_bytes / kFsBlock;
  st->f_bavail = r->avail_bytes / kFsBlock;
  st->f_namemax = kMaxNameBytes;
  return 0;
}

std::string FileSystem::StatsText() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t value) {
    AppendMetric(&out, name, type, help, std::to_string(value));
  };
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  metric("dfcfs_lookups_cached_total", "counter", "Lookups answered from the listing cache.",
         get(stats_.lookups_cached));
  metric("dfcfs_lookups_asked_total", "counter", "Lookups asked of the servers.",
         get(stats_.lookups_asked));
  metric("dfcfs_listings_total", "counter", "Folders listed on the servers.", get(stats_.listings));
  metric("dfcfs_uploads_total", "counter", "Files uploaded (closed after a write).",
         get(stats_.uploads));
  metric("dfcfs_upload_bytes_total", "counter", "Bytes of the files uploaded.",
         get(stats_.upload_bytes));
  metric("dfcfs_upload_failures_total", "counter", "Uploads that failed (the close saw EIO).",
         get(stats_.upload_failures));
  metric("dfcfs_downloads_total", "counter", "Files fetched whole to be written in place.",
         get(stats_.downloads));
  metric("dfcfs_read_bytes_total", "counter", "Bytes read from the servers' files.",
         get(stats_.read_bytes));
  const auto& t = client_->pool().traffic();
  metric("dfcfs_sent_bytes_total", "counter", "Bytes sent to the servers.", get(t.sent));
  metric("dfcfs_received_bytes_total", "counter", "Bytes received from the servers.",
         get(t.received));
  metric("dfcfs_connections_total", "counter", "Connections opened to the servers.",
         get(t.connections));
  const auto& r = client_->repair_stats();
  metric("dfcfs_hints_written_total", "counter", "Changes a server missed while down, noted.",
         get(r.hints_written));
  metric("dfcfs_paths_handed_off_total", "counter", "Of those, brought up to date on it.",
         get(r.paths_handed_off));
  metric("dfcfs_pieces_handed_off_total", "counter", "Piece copies the handoff made.",
         get(r.pieces_handed_off));
  metric("dfcfs_degraded_uploads_total", "counter", "Uploads with fewer copies than wanted.",
         get(r.degraded_uploads));
  metric("dfcfs_read_repairs_total", "counter", "Piece copies a read put back.",
         get(r.read_repairs));
  metric("dfcfs_read_retries_total", "counter",
         "Reads that turned to another copy of a piece (a server down, slow or corrupt).",
         get(r.read_retries));
  return out;
}

Result<XattrMap> FileSystem::XattrsOfVersion(const client::FileVersion& v) {
  if (!v.exists || v.newest.xattr_bytes == 0) return XattrMap{};
  const auto key = std::make_pair(v.newest.cid, v.newest.stamp);
  {
    MutexLock lock(&xattrs_mu_);
    if (auto it = xattrs_.find(key); it != xattrs_.end()) return it->second;
  }
  DFS_ASSIGN_OR_RETURN(XattrMap got, client_->XattrsOf(v));
  MutexLock lock(&xattrs_mu_);
  if (xattrs_.size() >= kMaxXattrSetsKept) xattrs_.clear();
  xattrs_.emplace(key, got);
  return got;
}

Result<XattrMap> FileSystem::XattrsOfPath(const std::string& path,
                                          std::shared_ptr<OpenFile>* file) {
  if (auto spooled = FindSpooled(path)) {
    MutexLock lock(&spooled->mu);
    XattrMap out = spooled->xattrs;
    if (file != nullptr) *file = std::move(spooled);
    return out;
  }
  DFS_ASSIGN_OR_RETURN(Resolved r, Resolve(path, /*fresh=*/false));
  if (r.entry.is_dir) return Status::IsDir(Escaped(path) + " is a folder");
  return XattrsOfVersion(r.entry.file);
}

int FileSystem::GetXattr(std::string_view fuse_path, std::string_view name, char* value,
                         size_t size) {
  std::string path = RelativePath(fuse_path);
  std::string text;
  if (name == kStatsXattr) {
    if (!path.empty()) return -ENODATA;
    text = StatsText();
  } else if (name == kStatusXattr) {
    auto r = Resolve(path, /*fresh=*/false);
    if (!r.ok()) {
      if (r.status().code() != Code::kNotFound || !FindSpooled(path)) return Errno(r.status());
      text = "not uploaded yet (open for writing in this mount)";
    } else if (r->entry.is_dir) {
      return -ENODATA;
    } else {
      auto d = client_->Describe(r->path);
      if (!d.ok()) return Errno(d.status());
      text = std::move(d).value();
    }
  } else {
    // Other namespaces (security.*, system.posix_acl_*: ls asks) hold
    // nothing here, and cost no round trip.
    if (!ValidXattrName(name)) return -ENODATA;
    auto xattrs = XattrsOfPath(path, nullptr);
    if (!xattrs.ok())
      return xattrs.status().code() == Code::kIsDir ? -ENODATA : Errno(xattrs.status());
    auto it = xattrs->find(name);
    if (it == xattrs->end()) return -ENODATA;
    text = it->second;
  }
  if (size == 0) return static_cast<int>(text.size());
  if (size < text.size()) return -ERANGE;
  std::memcpy(value, text.data(), text.size());
  return static_cast<int>(text.size());
}

int FileSystem::ListXattr(std::string_view fuse_path, char* list, size_t size) {
  std::string path = RelativePath(fuse_path);
  auto xattrs = XattrsOfPath(path, nullptr);
  if (!xattrs.ok() && xattrs.status().code() != Code::kIsDir) return Errno(xattrs.status());
  std::string names;
  if (xattrs.ok())
    for (const auto& [name, value] : *xattrs) {
      names += name;
      names.push_back('\0');
    }
  if (size == 0) return static_cast<int>(names.size());
  if (size < names.size()) return -ERANGE;
  std::memcpy(list, names.data(), names.size());
  return static_cast<int>(names.size());
}

int FileSystem::EditXattrs(std::string_view fuse_path, const std::function<int(XattrMap&)>& edit) {
  std::string path = RelativePath(fuse_path);
  std::shared_ptr<OpenFile> file;
  auto xattrs = XattrsOfPath(path, &file);
  if (!xattrs.ok())
    return xattrs.status().code() == Code::kIsDir ? -ENOTSUP : Errno(xattrs.status());
  if (int rc = edit(*xattrs); rc != 0) return rc;
  if (auto encoded = EncodeXattrs(*xattrs); !encoded.ok()) return Errno(encoded.status());
  if (file) {
    MutexLock lock(&file->mu);
    file->xattrs = *xattrs;
    ++file->generation;
    path = file->path;
    // A dirty file's upload carries the change; an orphan is gone for everyone else.
    if (file->dirty || file->orphaned) return 0;
  }
  Status s = client_->SetXattrs(path, *xattrs);
  cache_.Invalidate(path);
  return s.ok() ? 0 : Errno(s);
}

int FileSystem::SetXattr(std::string_view fuse_path, std::string_view name, std::string_view value,
                         int flags) {
  if (name == kStatusXattr || name == kStatsXattr) return -EPERM;
  if (!name.starts_with(kUserXattrPrefix)) return -ENOTSUP;
  if (!ValidXattrName(name)) return -EINVAL;
  if (value.size() > kMaxXattrBytes) return -ENOSPC;
  return EditXattrs(fuse_path, [&](XattrMap& xattrs) {
    auto it = xattrs.find(name);
    if ((flags & XATTR_CREATE) && it != xattrs.end()) return -EEXIST;
    if ((flags & XATTR_REPLACE) && it == xattrs.end()) return -ENODATA;
    if (it == xattrs.end())
      xattrs.emplace(std::string(name), std::string(value));
    else
      it->second = std::string(value);
    return 0;
  });
}

int FileSystem::RemoveXattr(std::string_view fuse_path, std::string_view name) {
  if (name == kStatusXattr || name == kStatsXattr) return -EPERM;
  if (!name.starts_with(kUserXattrPrefix)) return -ENOTSUP;
  return EditXattrs(fuse_path, [&](XattrMap& xattrs) {
    auto it = xattrs.find(name);
    if (it == xattrs.end()) return -ENODATA;
    xattrs.erase(it);
    return 0;
  });
}

}  // namespace dfs::fuse
