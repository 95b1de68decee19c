// libfuse adapters of dfcfs (see fuse_ops.h).
#include "fuse_client/fuse/fuse_ops.h"

#include <cerrno>
#include <exception>
#include <new>
#include <optional>
#include <string_view>
#include <vector>

#include "fuse_client/fuse/fs.h"
#include "shared/util/log.h"

namespace dfs::fuse {
namespace {

// How long the kernel may keep names, attributes and absent names: the
// metadata cache's TTL. open() always asks the servers and makes the kernel
// forget a stale size (close-to-open); other changes by other clients show
// within a second, as on NFS.
constexpr double kEntryTimeoutSeconds = 1.0;
constexpr double kAttrTimeoutSeconds = 1.0;
// FUSE requests of up to 1 MiB (the kernel's default is 128 KiB).
constexpr unsigned kMaxRequestBytes = 1u << 20;

FileSystem& Fs() { return *static_cast<FileSystem*>(fuse_get_context()->private_data); }
Caller Who() {
  const fuse_context* c = fuse_get_context();
  return Caller{c->uid, c->gid};
}

// Runs one handler; an exception becomes an errno instead of unwinding into C.
template <typename Fn>
int Guard(const char* op, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (const std::exception& e) {
    try {
      Logger("fuse")->error("{}: unexpected exception: {}", op, e.what());
    } catch (...) {
    }
    return -EIO;
  } catch (...) {
    return -EIO;
  }
}

// libfuse passes NULL paths for operations on open handles (nullpath_ok).
std::string_view PathOf(const char* path) { return path ? std::string_view(path) : ""; }
std::optional<uint64_t> HandleOf(const fuse_file_info* fi) {
  return fi ? std::optional<uint64_t>(fi->fh) : std::nullopt;
}

void* Init(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->entry_timeout = kEntryTimeoutSeconds;
  cfg->attr_timeout = kAttrTimeoutSeconds;
  cfg->negative_timeout = kEntryTimeoutSeconds;
  conn->max_write = kMaxRequestBytes;
  conn->max_readahead = kMaxRequestBytes;
  cfg->hard_remove = 0;  // unlinked open files stay reachable (see FileSystem::Hide)
  cfg->nullpath_ok = 1;
  cfg->use_ino = 1;  // FileSystem::InodeOf: stable numbers, kept across a rename
  cfg->kernel_cache = 0;
  cfg->auto_cache = 0;
  cfg->direct_io = 0;
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  // Every readdir chunk with attributes, not only the first (the "auto"
  // mode switches plus off until the reader stats something, and `ls -l`
  // reads the whole folder before its first stat: one lookup per file).
  // The attributes come from the listing either way.
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_READDIRPLUS_AUTO);
  return fuse_get_context()->private_data;
}

int GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
  return Guard("getattr", [&] { return Fs().GetAttr(PathOf(path), HandleOf(fi), st); });
}

int OpenDir(const char* path, fuse_file_info* fi) {
  return Guard("opendir", [&] { return Fs().OpenDir(PathOf(path), &fi->fh); });
}

int ReadDir(const char* /*path*/, void* buf, fuse_fill_dir_t filler, off_t offset,
            fuse_file_info* fi, fuse_readdir_flags flags) {
  return Guard("readdir", [&] {
    // Offsets (index + 1) rather than one call with every entry: libfuse's
    // high-level API passes attributes to the kernel's readdirplus only in
    // this mode (3.14 sends the others with nodeid 0: one LOOKUP per name).
    std::shared_ptr<const DirSnapshot> snapshot;
    int rc = Fs().ReadDirAt(fi->fh, offset > 0 ? static_cast<uint64_t>(offset) : 0, &snapshot);
    if (rc != 0) return rc;
    const bool plus = (flags & FUSE_READDIR_PLUS) != 0;
    for (size_t i = offset > 0 ? static_cast<size_t>(offset) : 0; i < snapshot->size(); ++i) {
      const DirEntry e = Fs().EntryAt(*snapshot, i);
      struct stat st {};
      st.st_mode = e.mode;
      const bool with_attrs = plus && e.attrs;
      const fuse_fill_dir_flags fill = with_attrs ? FUSE_FILL_DIR_PLUS : fuse_fill_dir_flags{};
      if (filler(buf, e.name.c_str(), with_attrs ? &e.st : &st, static_cast<off_t>(i + 1), fill) !=
          0)
        break;
    }
    return 0;
  });
}

int ReleaseDir(const char* /*path*/, fuse_file_info* fi) {
  return Guard("releasedir", [&] { return Fs().ReleaseDir(fi->fh); });
}

int Mkdir(const char* path, mode_t mode) {
  return Guard("mkdir", [&] { return Fs().Mkdir(PathOf(path), mode, Who()); });
}

int Symlink(const char* target, const char* path) {
  return Guard("symlink", [&] { return Fs().Symlink(target, PathOf(path), Who()); });
}

int ReadLink(const char* path, char* buf, size_t size) {
  return Guard("readlink", [&] { return Fs().ReadLink(PathOf(path), buf, size); });
}

int Mknod(const char* path, mode_t mode, dev_t rdev) {
  return Guard("mknod", [&] { return Fs().Mknod(PathOf(path), mode, rdev, Who()); });
}

// Files are whole versions kept under their name: one file cannot have two.
int Link(const char* /*from*/, const char* /*to*/) { return -EPERM; }

int Rmdir(const char* path) {
  return Guard("rmdir", [&] { return Fs().Rmdir(PathOf(path)); });
}

int Unlink(const char* path) {
  return Guard("unlink", [&] { return Fs().Unlink(PathOf(path)); });
}

int Rename(const char* from, const char* to, unsigned int flags) {
  return Guard("rename", [&] { return Fs().Rename(PathOf(from), PathOf(to), flags); });
}

int Open(const char* path, fuse_file_info* fi) {
  return Guard("open", [&] {
    fi->keep_cache = 0;
    fi->direct_io = 0;
    return Fs().Open(PathOf(path), fi->flags, &fi->fh);
  });
}

int Create(const char* path, mode_t mode, fuse_file_info* fi) {
  return Guard("create", [&] {
    fi->keep_cache = 0;
    fi->direct_io = 0;
    return Fs().Create(PathOf(path), mode, fi->flags, &fi->fh, Who());
  });
}

int Read(const char* /*path*/, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  return Guard("read", [&] { return Fs().Read(fi->fh, buf, size, offset); });
}

int Write(const char* /*path*/, const char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  return Guard("write", [&] { return Fs().Write(fi->fh, buf, size, offset); });
}

int Flush(const char* /*path*/, fuse_file_info* fi) {
  return Guard("flush", [&] { return Fs().Flush(fi->fh); });
}

int Fsync(const char* /*path*/, int /*datasync*/, fuse_file_info* fi) {
  return Guard("fsync", [&] { return Fs().Fsync(fi->fh); });
}

int Release(const char* /*path*/, fuse_file_info* fi) {
  return Guard("release", [&] { return Fs().Release(fi->fh); });
}

int Truncate(const char* path, off_t size, fuse_file_info* fi) {
  return Guard("truncate", [&] { return Fs().Truncate(PathOf(path), HandleOf(fi), size); });
}

int Chmod(const char* path, mode_t mode, fuse_file_info* fi) {
  return Guard("chmod", [&] { return Fs().Chmod(PathOf(path), HandleOf(fi), mode); });
}

int Chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
  return Guard("chown", [&] { return Fs().Chown(PathOf(path), HandleOf(fi), uid, gid, Who()); });
}

int Utimens(const char* path, const struct timespec tv[2], fuse_file_info* fi) {
  return Guard("utimens", [&] { return Fs().Utimens(PathOf(path), HandleOf(fi), tv); });
}

int StatFs(const char* /*path*/, struct statvfs* st) {
  return Guard("statfs", [&] { return Fs().StatFs(st); });
}

int GetXattr(const char* path, const char* name, char* value, size_t size) {
  return Guard("getxattr", [&] { return Fs().GetXattr(PathOf(path), name, value, size); });
}

int ListXattr(const char* path, char* list, size_t size) {
  return Guard("listxattr", [&] { return Fs().ListXattr(PathOf(path), list, size); });
}

int SetXattr(const char* path, const char* name, const char* value, size_t size, int flags) {
  return Guard("setxattr", [&] {
    return Fs().SetXattr(PathOf(path), name, std::string_view(value, size), flags);
  });
}

int RemoveXattr(const char* path, const char* name) {
  return Guard("removexattr", [&] { return Fs().RemoveXattr(PathOf(path), name); });
}

}  // namespace

fuse_operations MakeOperations() {
  fuse_operations ops{};
  ops.init = Init;
  ops.getattr = GetAttr;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.releasedir = ReleaseDir;
  ops.mkdir = Mkdir;
  ops.symlink = Symlink;
  ops.readlink = ReadLink;
  ops.mknod = Mknod;
  ops.link = Link;
  ops.rmdir = Rmdir;
  ops.unlink = Unlink;
  ops.rename = Rename;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.fsync = Fsync;
  ops.release = Release;
  ops.truncate = Truncate;
  ops.chmod = Chmod;
  ops.chown = Chown;
  ops.utimens = Utimens;
  ops.statfs = StatFs;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.setxattr = SetXattr;
  ops.removexattr = RemoveXattr;
  return ops;
}

}  // namespace dfs::fuse
