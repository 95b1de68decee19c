// POSIX conformance of a dfcfs mount: symlinks, special files, ownership,
// permissions for other users (allow_other, default_permissions), folder
// attributes, hard links, times, rename, errnos, inode numbers, df, extended
// attributes (calls, flags, errnos, the 4 KiB limit, folders and links; kept
// through remount, rename, chmod, overwrite and append, seen by a second
// mount; getfattr/setfattr, cp -a and rsync -aX both ways) and whole-tree
// copies with cp -a, tar and rsync (attributes too). Each TEST_CASE is a
// table of rows run in order (earlier rows make what later rows look at); a
// failing row names itself and prints what it got and what it wanted. Runs
// as root; other users are a forked child (AsUser). Skips (exit 77) where
// FUSE is missing.
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shared/format/piece_header.h"
#include "tests/support/cluster.h"
#include "tests/support/mount.h"
#include "tests/support/random_ops.h"

namespace dfs::testing {
namespace {

constexpr uid_t kNobody = 65534;
const std::string kLongName(256, 'n');  // one byte more than NAME_MAX

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// ---- Calls: 0 or the errno ----

std::string ErrnoName(int err) {
  if (err == 0) return "OK";
  const char* name = ::strerrorname_np(err);
  return name ? name : "errno " + std::to_string(err);
}

// 0 when `op` (a call returning a negative value on failure) succeeds, else its errno.
template <class Op>
int ErrnoOf(Op&& op) {
  errno = 0;
  return op() < 0 ? errno : 0;
}

// Runs `op` (returning 0 or an errno) in a forked child that is user and
// group `uid` with no supplementary groups, and returns what it returned;
// 255 when the child could not become that user, -1 when it crashed.
int AsUser(uid_t uid, const std::function<int()>& op) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(255);
    ::_exit(op() & 0xff);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

int Open(const std::string& path, int flags, mode_t mode = 0644) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}
int Create(const std::string& path, const std::string& content, mode_t mode = 0644) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  const bool ok = ::write(fd, content.data(), content.size()) == ssize_t(content.size());
  const int err = errno;
  if (::close(fd) != 0) return errno;
  return ok ? 0 : err;
}
int Stat(const std::string& path) {
  struct stat st {};
  return ErrnoOf([&] { return ::stat(path.c_str(), &st); });
}
int Lstat(const std::string& path) {
  struct stat st {};
  return ErrnoOf([&] { return ::lstat(path.c_str(), &st); });
}
int Mkdir(const std::string& path, mode_t mode = 0755) {
  return ErrnoOf([&] { return ::mkdir(path.c_str(), mode); });
}
int Symlink(const std::string& target, const std::string& path) {
  return ErrnoOf([&] { return ::symlink(target.c_str(), path.c_str()); });
}
int Mkfifo(const std::string& path, mode_t mode) {
  return ErrnoOf([&] { return ::mkfifo(path.c_str(), mode); });
}
int Mknod(const std::string& path, mode_t mode, dev_t dev = 0) {
  return ErrnoOf([&] { return ::mknod(path.c_str(), mode, dev); });
}
int Chmod(const std::string& path, mode_t mode) {
  return ErrnoOf([&] { return ::chmod(path.c_str(), mode); });
}
int Chown(const std::string& path, uid_t uid, gid_t gid) {
  return ErrnoOf([&] { return ::chown(path.c_str(), uid, gid); });
}
int Lchown(const std::string& path, uid_t uid, gid_t gid) {
  return ErrnoOf([&] { return ::lchown(path.c_str(), uid, gid); });
}
int Rename(const std::string& from, const std::string& to, unsigned flags = 0) {
  return ErrnoOf([&] {
    return ::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
  });
}
int Link(const std::string& from, const std::string& to) {
  return ErrnoOf([&] { return ::link(from.c_str(), to.c_str()); });
}
int Unlink(const std::string& path) {
  return ErrnoOf([&] { return ::unlink(path.c_str()); });
}
int Rmdir(const std::string& path) {
  return ErrnoOf([&] { return ::rmdir(path.c_str()); });
}
// utimensat without following a last symlink; a field of UTIME_OMIT or UTIME_NOW as tv_nsec.
int Utimens(const std::string& path, timespec atime, timespec mtime) {
  const timespec times[2] = {atime, mtime};
  return ErrnoOf([&] { return ::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW); });
}
int SetMtime(const std::string& path, time_t sec, long nsec) {
  return Utimens(path, {0, UTIME_OMIT}, {sec, nsec});
}
int Setxattr(const std::string& path, const std::string& name) {
  return ErrnoOf([&] { return ::setxattr(path.c_str(), name.c_str(), "v", 1, 0); });
}
int Getxattr(const std::string& path, const std::string& name) {
  char buf[256];
  return ErrnoOf([&] { return ::getxattr(path.c_str(), name.c_str(), buf, sizeof buf); });
}

// ---- Results as text, so that a failing row prints what it got ----

std::string Type(const struct stat& st) {
  switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "dir";
    case S_IFLNK:
      return "symlink";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    case S_IFCHR:
      return "char device";
    case S_IFBLK:
      return "block device";
  }
  return "type " + std::to_string(st.st_mode & S_IFMT);
}
std::string Perms(const struct stat& st) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", st.st_mode & 07777);
  return buf;
}
std::string Owner(const struct stat& st) {
  return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
}
std::string Size(const struct stat& st) { return std::to_string(st.st_size); }
std::string Nlink(const struct stat& st) { return std::to_string(st.st_nlink); }
std::string Ino(const struct stat& st) { return std::to_string(st.st_ino); }
std::string Rdev(const struct stat& st) {
  return std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
}
std::string TimeText(const timespec& t) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%09ld", static_cast<long long>(t.tv_sec), t.tv_nsec);
  return buf;
}
std::string Mtime(const struct stat& st) { return TimeText(st.st_mtim); }

using Field = std::string (*)(const struct stat&);
// A field of lstat(path) (Lstat) or stat(path) (Stat), or the errno of the call.
std::string Lstat(const std::string& path, Field field) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "lstat: " + ErrnoName(errno);
  return field(st);
}
std::string Stat(const std::string& path, Field field) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "stat: " + ErrnoName(errno);
  return field(st);
}
std::string Readlink(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) return "readlink: " + ErrnoName(errno);
  return std::string(buf, static_cast<size_t>(n));
}
std::string Content(const std::string& path) {
  int err = 0;
  std::string content = ReadWithPosix(path, &err);
  return err ? "read: " + ErrnoName(err) : content;
}
timespec Ctime(const std::string& path) {
  struct stat st {};
  ::lstat(path.c_str(), &st);
  return st.st_ctim;
}
bool operator<(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// ---- Commands and trees ----

std::string Quote(const std::string& s) { return "'" + s + "'"; }

CommandResult Sh(const std::string& command) { return Run({"/bin/sh", "-c", command}, "", 120); }

// Every entry under `root` as a path relative to it ("." for root), sorted.
std::vector<std::string> Walk(const std::string& root, const std::string& rel = ".") {
  std::vector<std::string> out = {rel};
  const std::string dir = rel == "." ? root : root + "/" + rel;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  for (const auto& name : names) {
    auto sub = Walk(root, rel == "." ? name : rel + "/" + name);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// "exit 0", or the exit code and stderr of a command that failed.
std::string ExitOf(const CommandResult& r) {
  return r.exit_code == 0 ? "exit 0" : "exit " + std::to_string(r.exit_code) + ": " + r.err;
}
// A command's stdout, or how it failed.
std::string OutputOf(const CommandResult& r) { return r.exit_code == 0 ? r.out : ExitOf(r); }

// ---- Extended attributes ----

int SetxattrOf(const std::string& path, const std::string& name, const std::string& value,
               int flags = 0) {
  return ErrnoOf(
      [&] { return ::setxattr(path.c_str(), name.c_str(), value.data(), value.size(), flags); });
}
// lsetxattr: on a symlink itself, not its target.
int Lsetxattr(const std::string& path, const std::string& name) {
  return ErrnoOf([&] { return ::lsetxattr(path.c_str(), name.c_str(), "v", 1, 0); });
}
int Lgetxattr(const std::string& path, const std::string& name) {
  char buf[256];
  return ErrnoOf([&] { return ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof buf); });
}
int Removexattr(const std::string& path, const std::string& name) {
  return ErrnoOf([&] { return ::removexattr(path.c_str(), name.c_str()); });
}
// What getxattr (listxattr) returns with a buffer of `size` bytes (0: the
// size it needs), as text, or its errno.
std::string GetxattrSize(const std::string& path, const std::string& name, size_t size) {
  std::string buf(size, '\0');
  const ssize_t n = ::getxattr(path.c_str(), name.c_str(), size ? buf.data() : nullptr, size);
  return n < 0 ? "getxattr: " + ErrnoName(errno) : std::to_string(n);
}
std::string ListxattrSize(const std::string& path, size_t size) {
  std::string buf(size, '\0');
  const ssize_t n = ::listxattr(path.c_str(), size ? buf.data() : nullptr, size);
  return n < 0 ? "listxattr: " + ErrnoName(errno) : std::to_string(n);
}

// A value as text: printable ASCII as it is, other bytes as \xNN; over 64
// bytes, its length and FNV-1a hash.
std::string Printable(const std::string& value) {
  if (value.size() > 64) {
    uint64_t hash = 14695981039346656037ull;
    for (unsigned char c : value) hash = (hash ^ c) * 1099511628211ull;
    char buf[64];
    std::snprintf(buf, sizeof buf, "<%zu bytes, fnv %016llx>", value.size(),
                  static_cast<unsigned long long>(hash));
    return buf;
  }
  std::string out;
  for (unsigned char c : value) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}
// The value of attribute `name` of `path` (following a link), or the errno.
std::string Xattr(const std::string& path, const std::string& name) {
  const ssize_t size = ::getxattr(path.c_str(), name.c_str(), nullptr, 0);
  if (size < 0) return "getxattr: " + ErrnoName(errno);
  std::string value(static_cast<size_t>(size) + 1, '\0');
  const ssize_t n = ::getxattr(path.c_str(), name.c_str(), value.data(), value.size());
  if (n < 0) return "getxattr: " + ErrnoName(errno);
  value.resize(static_cast<size_t>(n));
  return Printable(value);
}

using XattrList = std::vector<std::pair<std::string, std::string>>;
// "name=value name=value" in name order, "(none)" for none.
std::string XattrText(XattrList xattrs) {
  std::sort(xattrs.begin(), xattrs.end());
  std::vector<std::string> parts;
  for (const auto& [name, value] : xattrs) parts.push_back(name + "=" + Printable(value));
  return parts.empty() ? "(none)" : Join(parts, " ");
}
// Every user.* attribute of `path` itself (not a link's target) with its
// value, as XattrText; other namespaces are left out (a local disk may add
// security.* labels). The mount lists nothing but user.* names.
std::string Xattrs(const std::string& path) {
  const ssize_t size = ::llistxattr(path.c_str(), nullptr, 0);
  if (size < 0) return "listxattr: " + ErrnoName(errno);
  std::string names(static_cast<size_t>(size) + 1, '\0');
  const ssize_t n = ::llistxattr(path.c_str(), names.data(), names.size());
  if (n < 0) return "listxattr: " + ErrnoName(errno);
  XattrList out;
  for (size_t at = 0; at < static_cast<size_t>(n);) {
    const std::string name = names.c_str() + at;
    at += name.size() + 1;
    if (!name.starts_with("user.")) continue;
    std::string value(65536, '\0');
    const ssize_t len = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (len < 0) return "getxattr " + name + ": " + ErrnoName(errno);
    value.resize(static_cast<size_t>(len));
    out.emplace_back(name, value);
  }
  return XattrText(std::move(out));
}
// "NAME: attributes" per line for every entry under `root` but symlinks.
std::string TreeXattrs(const std::string& root) {
  std::string out;
  for (const std::string& name : Walk(root)) {
    const std::string path = name == "." ? root : root + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) continue;
    out += name + ": " + Xattrs(path) + "\n";
  }
  return out;
}

// ---- Tables ----

// One row: what it checks, its result as text, and the results that pass.
struct Row {
  std::string what;
  std::function<std::string()> got;
  std::vector<std::string> want;
};

// A row whose result is text (a stat field, a link target, a file's content).
Row Is(std::string what, std::string want, std::function<std::string()> got) {
  return {std::move(what), std::move(got), {std::move(want)}};
}
// A row of a call that must succeed, or fail with the errno (or one of the errnos) given.
Row Ok(std::string what, std::function<int()> op) {
  return {std::move(what), [op] { return ErrnoName(op()); }, {"OK"}};
}
Row Fails(std::string what, std::vector<int> errnos, std::function<int()> op) {
  std::vector<std::string> want;
  for (int err : errnos) want.push_back(ErrnoName(err));
  return {std::move(what), [op] { return ErrnoName(op()); }, std::move(want)};
}
Row Fails(std::string what, int err, std::function<int()> op) {
  return Fails(std::move(what), std::vector<int>{err}, std::move(op));
}

void CheckTable(const std::vector<Row>& rows) {
  for (const Row& row : rows) {
    INFO(row.what);
    const std::string got = row.got();
    const std::string want = Join(row.want, " or ");
    if (row.want.size() == 1) {
      CHECK(got == want);
    } else {
      const bool one_of = std::find(row.want.begin(), row.want.end(), got) != row.want.end();
      CHECK_MESSAGE(one_of, "got ", got, ", want ", want);
    }
  }
}

// A cluster with a mount of Alice's files, under umask 0. The cluster's
// folder is searchable by everyone, so that other users reach the mount.
struct Fixture {
  Fixture() : conf(cluster.WriteClientConfig("Alice", "SimplePassword")) {
    RequireFuse();
    ::umask(0);
    ::chmod(cluster.root().c_str(), 0711);
    Remount();
  }
  // Unmounts, then mounts again on a fresh mount point (the cache starts empty).
  void Remount() {
    if (mount) mount->Unmount();
    mount.reset();
    mount = std::make_unique<Mount>(conf, cluster.root() + "/mnt" + std::to_string(mounts++));
  }
  const std::string& dir() const { return mount->dir(); }
  std::string operator/(const std::string& name) const { return dir() + "/" + name; }

  Cluster cluster;
  std::string conf;
  TempDir local{"dfs-posix-local"};
  std::unique_ptr<Mount> mount;
  int mounts = 0;
};

Row RemountRow(Fixture& fx) {
  return Ok("unmount, and mount again", [&fx] {
    fx.Remount();
    return 0;
  });
}

// How many piece files of Alice's `dir/name` the servers hold (pieces, not
// tombstones), and how many carry sealed extended attributes (header field
// xattr_bytes): "8 piece files, all with attributes".
std::string PieceXattrs(const Fixture& fx, const std::string& dir, const std::string& name) {
  int pieces = 0, with = 0;
  for (int i = 0; i < fx.cluster.size(); ++i) {
    const std::string folder = fx.cluster.server_dir(i) + "/Alice" + (dir.empty() ? "" : "/" + dir);
    DIR* d = ::opendir(folder.c_str());
    if (!d) return "opendir " + folder + ": " + ErrnoName(errno);
    std::vector<std::string> files;
    while (dirent* e = ::readdir(d)) files.push_back(e->d_name);
    ::closedir(d);
    for (const std::string& file : files) {
      std::string piece_name;
      int k = 0;
      if (!ParsePieceFileName(file, &piece_name, &k) || piece_name != name || k == 0) continue;
      auto header = PieceHeader::Decode(ReadFile(folder + "/" + file).substr(0, kPieceHeaderBytes));
      if (!header.ok()) return folder + "/" + file + ": " + header.status().ToString();
      ++pieces;
      if (header->xattr_bytes > 0) ++with;
    }
  }
  return std::to_string(pieces) + " piece files, " +
         (with == pieces ? std::string("all") : std::to_string(with)) + " with attributes";
}

// The files under the servers' folders that contain `bytes`, or "none".
std::string ServerFilesHolding(const Fixture& fx, const std::string& bytes) {
  std::vector<std::string> found;
  for (int i = 0; i < fx.cluster.size(); ++i) {
    const std::string root = fx.cluster.server_dir(i);
    for (const std::string& name : Walk(root)) {
      const std::string path = root + "/" + name;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (ReadFile(path).find(bytes) != std::string::npos) found.push_back(path);
    }
  }
  return found.empty() ? "none" : Join(found, " ");
}

TEST_CASE("symlinks") {
  Fixture fx;
  REQUIRE(Create(fx / "target.txt", "hello") == 0);
  REQUIRE(Mkdir(fx / "sub") == 0);
  CheckTable({
      Ok("symlink to a file", [&] { return Symlink("target.txt", fx / "link"); }),
      Is("lstat: type", "symlink", [&] { return Lstat(fx / "link", Type); }),
      Is("lstat: size is the target's length", "10", [&] { return Lstat(fx / "link", Size); }),
      Is("readlink gives the target exactly", "target.txt", [&] { return Readlink(fx / "link"); }),
      Is("stat follows the link", "file", [&] { return Stat(fx / "link", Type); }),
      Is("stat follows the link: size", "5", [&] { return Stat(fx / "link", Size); }),
      Is("open follows the link", "hello", [&] { return Content(fx / "link"); }),
      Ok("symlink in a folder to ../target.txt",
         [&] { return Symlink("../target.txt", fx / "sub/up"); }),
      Is("stat follows ../target.txt", "hello", [&] { return Content(fx / "sub/up"); }),
      Ok("symlink to an absolute path", [&] { return Symlink("/nowhere/x", fx / "abs"); }),
      Is("readlink gives the absolute path", "/nowhere/x", [&] { return Readlink(fx / "abs"); }),
      Ok("dangling symlink", [&] { return Symlink("missing", fx / "dangling"); }),
      Fails("stat of a dangling link", ENOENT, [&] { return Stat(fx / "dangling"); }),
      Ok("lstat of a dangling link", [&] { return Lstat(fx / "dangling"); }),
      Ok("loop: a -> b", [&] { return Symlink("loop-b", fx / "loop-a"); }),
      Ok("loop: b -> a", [&] { return Symlink("loop-a", fx / "loop-b"); }),
      Fails("stat of a loop", ELOOP, [&] { return Stat(fx / "loop-a"); }),
      Fails("open of a loop", ELOOP, [&] { return Open(fx / "loop-a", O_RDONLY); }),
      Fails("symlink over a file", EEXIST, [&] { return Symlink("x", fx / "target.txt"); }),
      Fails("symlink over a symlink", EEXIST, [&] { return Symlink("x", fx / "link"); }),
      Fails("symlink over a folder", EEXIST, [&] { return Symlink("x", fx / "sub"); }),
      Fails("symlink in a missing folder", ENOENT, [&] { return Symlink("x", fx / "no/l"); }),
      Fails("symlink named 256 bytes", ENAMETOOLONG, [&] { return Symlink("x", fx / kLongName); }),
      Is("readlink of a file", "readlink: EINVAL", [&] { return Readlink(fx / "target.txt"); }),
      Ok("rename a link", [&] { return Rename(fx / "link", fx / "link2"); }),
      Fails("lstat of the old name", ENOENT, [&] { return Lstat(fx / "link"); }),
      Is("the renamed link keeps its target", "target.txt", [&] { return Readlink(fx / "link2"); }),
      Ok("lchown of a link as root", [&] { return Lchown(fx / "link2", 1234, 5678); }),
      Is("the link's owner", "1234:5678", [&] { return Lstat(fx / "link2", Owner); }),
      Is("the target's owner is unchanged", "0:0", [&] { return Stat(fx / "link2", Owner); }),
      Ok("unlink a link", [&] { return Unlink(fx / "link2"); }),
      Fails("the link is gone", ENOENT, [&] { return Lstat(fx / "link2"); }),
      Is("its target is not", "hello", [&] { return Content(fx / "target.txt"); }),
      RemountRow(fx),
      Is("after remount: a link", "symlink", [&] { return Lstat(fx / "sub/up", Type); }),
      Is("after remount: its target", "../target.txt", [&] { return Readlink(fx / "sub/up"); }),
      Is("after remount: its size", "13", [&] { return Lstat(fx / "sub/up", Size); }),
      Is("after remount: it is followed", "hello", [&] { return Content(fx / "sub/up"); }),
      Is("after remount: a dangling link", "missing", [&] { return Readlink(fx / "dangling"); }),
  });
}

TEST_CASE("dfc shows a link as NAME -> TARGET and does not download it or a fifo") {
  Fixture fx;
  REQUIRE(Symlink("../some where", fx / "link") == 0);
  REQUIRE(Mkfifo(fx / "fifo", 0600) == 0);
  REQUIRE(Create(fx / "plain", "x") == 0);
  const std::string dfc = BinaryPath("DFC");
  const CommandResult list = Run({dfc, fx.conf, "list"});
  REQUIRE(list.exit_code == 0);
  CHECK(list.out == "fifo\nlink -> ../some where\nplain\n");
  const CommandResult get = Run({dfc, fx.conf, "get", "link"}, "", 60, fx.local.path());
  CHECK(get.exit_code == 1);
  CHECK(get.err == "get: 'link' is a symbolic link to '../some where'; not downloaded\n");
  const CommandResult fifo = Run({dfc, fx.conf, "get", "fifo"}, "", 60, fx.local.path());
  CHECK(fifo.exit_code == 1);
  CHECK(fifo.err == "get: 'fifo' is a fifo; not downloaded\n");
  struct stat st {};
  CHECK(::lstat((fx.local.path() + "/link").c_str(), &st) != 0);
}

TEST_CASE("fifos, sockets and device nodes") {
  Fixture fx;
  REQUIRE(Mkdir(fx / "open", 0777) == 0);
  REQUIRE(Create(fx / "file", "x") == 0);
  CheckTable({
      Is("the 0777 folder's mode", "0777", [&] { return Lstat(fx / "open", Perms); }),
      Ok("mkfifo 0640", [&] { return Mkfifo(fx / "fifo", 0640); }),
      Is("fifo: type", "fifo", [&] { return Lstat(fx / "fifo", Type); }),
      Is("fifo: mode", "0640", [&] { return Lstat(fx / "fifo", Perms); }),
      Ok("mknod S_IFREG 0600 (an empty file)", [&] { return Mknod(fx / "reg", S_IFREG | 0600); }),
      Is("regular mknod: type", "file", [&] { return Lstat(fx / "reg", Type); }),
      Is("regular mknod: it is on the servers (opens)", "", [&] { return Content(fx / "reg"); }),
      Ok("mknod S_IFSOCK", [&] { return Mknod(fx / "sock", S_IFSOCK | 0600); }),
      Is("socket: type", "socket", [&] { return Lstat(fx / "sock", Type); }),
      Ok("mknod S_IFCHR 1:3 as root",
         [&] { return Mknod(fx / "null", S_IFCHR | 0666, makedev(1, 3)); }),
      Is("char device: type", "char device", [&] { return Lstat(fx / "null", Type); }),
      Is("char device: rdev", "1:3", [&] { return Lstat(fx / "null", Rdev); }),
      Fails("mknod S_IFCHR as user 65534 (in a 0777 folder)", EPERM,
            [&] {
              return AsUser(kNobody,
                            [&] { return Mknod(fx / "open/dev", S_IFCHR | 0600, makedev(1, 3)); });
            }),
      Fails("mkfifo over a fifo", EEXIST, [&] { return Mkfifo(fx / "fifo", 0600); }),
      Fails("mkfifo over a file", EEXIST, [&] { return Mkfifo(fx / "file", 0600); }),
      RemountRow(fx),
      Is("after remount: fifo type", "fifo", [&] { return Lstat(fx / "fifo", Type); }),
      Is("after remount: fifo mode", "0640", [&] { return Lstat(fx / "fifo", Perms); }),
      Is("after remount: the regular mknod file", "0600", [&] { return Lstat(fx / "reg", Perms); }),
      Ok("unlink a fifo", [&] { return Unlink(fx / "fifo"); }),
      Fails("the fifo is gone", ENOENT, [&] { return Lstat(fx / "fifo"); }),
  });
}

TEST_CASE("owners") {
  Fixture fx;
  REQUIRE(Mkdir(fx / "open", 0777) == 0);
  REQUIRE(Create(fx / "open/roots", "r", 0666) == 0);
  CheckTable({
      Is("the 0777 folder's mode", "0777", [&] { return Lstat(fx / "open", Perms); }),
      Ok("create a file as root", [&] { return Create(fx / "f", "f"); }),
      Is("its owner", "0:0", [&] { return Lstat(fx / "f", Owner); }),
      Ok("mkdir as root", [&] { return Mkdir(fx / "d"); }),
      Is("its owner", "0:0", [&] { return Lstat(fx / "d", Owner); }),
      Ok("chown 1234:5678 as root", [&] { return Chown(fx / "f", 1234, 5678); }),
      Is("the new owner", "1234:5678", [&] { return Lstat(fx / "f", Owner); }),
      Fails("chown by user 65534 of root's file", EPERM,
            [&] {
              return AsUser(kNobody, [&] { return Chown(fx / "open/roots", kNobody, kNobody); });
            }),
      Is("its owner is unchanged", "0:0", [&] { return Lstat(fx / "open/roots", Owner); }),
      Ok("create a file as user 65534 (in a 0777 folder)",
         [&] { return AsUser(kNobody, [&] { return Create(fx / "open/mine", "mine"); }); }),
      Is("its owner", "65534:65534", [&] { return Lstat(fx / "open/mine", Owner); }),
      Fails("user 65534 gives its file to root", EPERM,
            [&] { return AsUser(kNobody, [&] { return Chown(fx / "open/mine", 0, 0); }); }),
      RemountRow(fx),
      Is("after remount: the chowned file", "1234:5678", [&] { return Lstat(fx / "f", Owner); }),
      Is("after remount: user 65534's file", "65534:65534",
         [&] { return Lstat(fx / "open/mine", Owner); }),
      Is("after remount: root's folder", "0:0", [&] { return Lstat(fx / "d", Owner); }),
  });
}

TEST_CASE("other users get the permissions of mode and owner") {
  Fixture fx;
  REQUIRE(Create(fx / "private", "secret", 0600) == 0);
  REQUIRE(Create(fx / "public", "public", 0644) == 0);
  REQUIRE(Mkdir(fx / "closed", 0755) == 0);
  REQUIRE(Mkdir(fx / "open", 0777) == 0);
  auto as_nobody = [](std::function<int()> op) { return [op] { return AsUser(kNobody, op); }; };
  CheckTable({
      Is("the 0777 folder's mode", "0777", [&] { return Lstat(fx / "open", Perms); }),
      Ok("stat of the mount root", as_nobody([&] { return Stat(fx.dir()); })),
      Fails("read a root-owned 0600 file", EACCES,
            as_nobody([&] { return Open(fx / "private", O_RDONLY); })),
      Ok("read a root-owned 0644 file", as_nobody([&] { return Open(fx / "public", O_RDONLY); })),
      Fails("write a root-owned 0644 file", EACCES,
            as_nobody([&] { return Open(fx / "public", O_WRONLY); })),
      Fails("mkdir in a root-owned 0755 folder", EACCES,
            as_nobody([&] { return Mkdir(fx / "closed/x"); })),
      Ok("mkdir in a 0777 folder", as_nobody([&] { return Mkdir(fx / "open/x"); })),
  });
}

TEST_CASE("folders have their own mode, owner, mtime and link count") {
  Fixture fx;
  REQUIRE(Mkdir(fx / "n") == 0);
  for (const char* name : {"n/s1", "n/s2", "n/s3"}) REQUIRE(Mkdir(fx / name) == 0);
  for (const char* name : {"n/f1", "n/f2"}) REQUIRE(Create(fx / name, "f") == 0);
  CheckTable({
      Ok("mkdir 0700", [&] { return Mkdir(fx / "d700", 0700); }),
      Is("its mode", "0700", [&] { return Lstat(fx / "d700", Perms); }),
      Ok("mkdir 0755", [&] { return Mkdir(fx / "d", 0755); }),
      Ok("chmod 0751", [&] { return Chmod(fx / "d", 0751); }),
      Is("the new mode", "0751", [&] { return Lstat(fx / "d", Perms); }),
      Ok("chown 1234:5678", [&] { return Chown(fx / "d", 1234, 5678); }),
      Is("the new owner", "1234:5678", [&] { return Lstat(fx / "d", Owner); }),
      Ok("utimensat mtime", [&] { return SetMtime(fx / "d", 1600000000, 987654321); }),
      Is("the new mtime", "1600000000.987654321", [&] { return Lstat(fx / "d", Mtime); }),
      Is("nlink: 3 subfolders and 2 files", "5", [&] { return Lstat(fx / "n", Nlink); }),
      Is("nlink of a file", "1", [&] { return Lstat(fx / "n/f1", Nlink); }),
      RemountRow(fx),
      Is("after remount: mode 0700", "0700", [&] { return Lstat(fx / "d700", Perms); }),
      Is("after remount: mode 0751", "0751", [&] { return Lstat(fx / "d", Perms); }),
      Is("after remount: owner", "1234:5678", [&] { return Lstat(fx / "d", Owner); }),
      Is("after remount: mtime", "1600000000.987654321", [&] { return Lstat(fx / "d", Mtime); }),
      Is("after remount: nlink", "5", [&] { return Lstat(fx / "n", Nlink); }),
  });
}

TEST_CASE("hard links are refused") {
  Fixture fx;
  REQUIRE(Create(fx / "a", "a") == 0);
  CheckTable({
      Fails("link a b", EPERM, [&] { return Link(fx / "a", fx / "b"); }),
      Fails("b was not made", ENOENT, [&] { return Lstat(fx / "b"); }),
      Is("a's link count", "1", [&] { return Lstat(fx / "a", Nlink); }),
  });
}

TEST_CASE("mtime and ctime") {
  Fixture fx;
  REQUIRE(Create(fx / "t", "t") == 0);
  REQUIRE(Create(fx / "kept", "k") == 0);
  auto within_3s_of_now = [](const std::string& path) -> std::string {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return "lstat: " + ErrnoName(errno);
    const long long off = static_cast<long long>(st.st_mtime) - ::time(nullptr);
    return off >= -3 && off <= 3 ? "now" : std::to_string(off) + " s from now";
  };
  // Runs `op` 20 ms after reading the ctime of `path` (or of `after`, its
  // name afterwards); "later" when the ctime grew.
  auto ctime_grows = [](const std::string& path, const std::string& after,
                        std::function<int()> op) -> std::string {
    const timespec before = Ctime(path);
    SleepMs(20);
    if (int err = op()) return ErrnoName(err);
    const timespec now = Ctime(after);
    return before < now ? "later" : TimeText(before) + " then " + TimeText(now);
  };
  CheckTable({
      Ok("utimensat mtime with nanoseconds",
         [&] { return SetMtime(fx / "t", 1500000000, 123456789); }),
      Is("the mtime, exactly", "1500000000.123456789", [&] { return Lstat(fx / "t", Mtime); }),
      Ok("utimensat atime only (mtime UTIME_OMIT)",
         [&] {
           return Utimens(fx / "t", {1400000000, 0}, {0, UTIME_OMIT});
         }),
      Is("mtime unchanged", "1500000000.123456789", [&] { return Lstat(fx / "t", Mtime); }),
      Ok("utimensat mtime UTIME_NOW",
         [&] {
           return Utimens(fx / "t", {0, UTIME_OMIT}, {0, UTIME_NOW});
         }),
      Is("the mtime is now", "now", [&] { return within_3s_of_now(fx / "t"); }),
      Is("ctime grows on chmod", "later",
         [&] { return ctime_grows(fx / "t", fx / "t", [&] { return Chmod(fx / "t", 0600); }); }),
      Is("ctime grows on rename", "later",
         [&] {
           return ctime_grows(fx / "t", fx / "t2", [&] { return Rename(fx / "t", fx / "t2"); });
         }),
      Ok("utimensat mtime of another file", [&] { return SetMtime(fx / "kept", 1300000000, 5); }),
      RemountRow(fx),
      Is("after remount: the mtime, exactly", "1300000000.000000005",
         [&] { return Lstat(fx / "kept", Mtime); }),
  });
}

TEST_CASE("rename") {
  Fixture fx;
  REQUIRE(Create(fx / "x", "x") == 0);
  REQUIRE(Create(fx / "y", "y") == 0);
  REQUIRE(Create(fx / "file", "file") == 0);
  REQUIRE(Mkdir(fx / "src") == 0);
  REQUIRE(Create(fx / "src/inner", "inner") == 0);
  REQUIRE(Mkdir(fx / "empty") == 0);
  REQUIRE(Mkdir(fx / "full") == 0);
  REQUIRE(Create(fx / "full/f", "f") == 0);
  REQUIRE(Mkdir(fx / "other") == 0);
  REQUIRE(Create(fx / "other/g", "g") == 0);
  CheckTable({
      Fails("RENAME_NOREPLACE onto an existing name", EEXIST,
            [&] { return Rename(fx / "x", fx / "y", RENAME_NOREPLACE); }),
      Is("the existing file is unchanged", "y", [&] { return Content(fx / "y"); }),
      Ok("RENAME_NOREPLACE onto a free name",
         [&] { return Rename(fx / "x", fx / "z", RENAME_NOREPLACE); }),
      Is("the file under its new name", "x", [&] { return Content(fx / "z"); }),
      Fails("RENAME_EXCHANGE", EINVAL, [&] { return Rename(fx / "z", fx / "y", RENAME_EXCHANGE); }),
      Ok("a folder over an empty folder", [&] { return Rename(fx / "src", fx / "empty"); }),
      Is("its content under the new name", "inner", [&] { return Content(fx / "empty/inner"); }),
      Fails("the old name is gone", ENOENT, [&] { return Lstat(fx / "src"); }),
      Fails("a folder over a non-empty folder", ENOTEMPTY,
            [&] { return Rename(fx / "full", fx / "other"); }),
      Is("the target folder is unchanged", "g", [&] { return Content(fx / "other/g"); }),
      Fails("a file over a folder", EISDIR, [&] { return Rename(fx / "file", fx / "full"); }),
      Fails("a folder over a file", ENOTDIR, [&] { return Rename(fx / "full", fx / "file"); }),
      Fails("a folder into itself", EINVAL, [&] { return Rename(fx / "full", fx / "full/sub"); }),
  });
}

TEST_CASE("errnos") {
  Fixture fx;
  REQUIRE(Create(fx / "file", "file") == 0);
  REQUIRE(Mkdir(fx / "dir") == 0);
  REQUIRE(Mkdir(fx / "full") == 0);
  REQUIRE(Create(fx / "full/f", "f") == 0);
  CheckTable({
      Fails("open of a missing file", ENOENT, [&] { return Open(fx / "missing", O_RDONLY); }),
      Fails("open of file/x", ENOTDIR, [&] { return Open(fx / "file/x", O_RDONLY); }),
      Fails("stat of file/x", ENOTDIR, [&] { return Stat(fx / "file/x"); }),
      Fails("create file/x", ENOTDIR, [&] { return Open(fx / "file/x", O_WRONLY | O_CREAT); }),
      Fails("open O_WRONLY of a folder", EISDIR, [&] { return Open(fx / "dir", O_WRONLY); }),
      Fails("mkdir of an existing folder", EEXIST, [&] { return Mkdir(fx / "dir"); }),
      Fails("mkdir of an existing file", EEXIST, [&] { return Mkdir(fx / "file"); }),
      Fails("rmdir of a non-empty folder", ENOTEMPTY, [&] { return Rmdir(fx / "full"); }),
      Fails("rmdir of a file", ENOTDIR, [&] { return Rmdir(fx / "file"); }),
      Fails("unlink of a folder", EISDIR, [&] { return Unlink(fx / "dir"); }),
      Fails("open O_CREAT of a 256-byte name", ENAMETOOLONG,
            [&] { return Open(fx / kLongName, O_WRONLY | O_CREAT); }),
      Fails("mkdir of a 256-byte name", ENAMETOOLONG, [&] { return Mkdir(fx / kLongName); }),
      Fails("symlink of a 256-byte name", ENAMETOOLONG,
            [&] { return Symlink("x", fx / kLongName); }),
  });
}

TEST_CASE("inode numbers are stable") {
  Fixture fx;
  REQUIRE(Create(fx / "f", "f") == 0);
  REQUIRE(Create(fx / "g", "g") == 0);
  const std::string ino = Lstat(fx / "f", Ino);
  auto same = [&](const std::string& path) {
    const std::string now = Lstat(path, Ino);
    return now == ino ? "same" : ino + " then " + now;
  };
  CheckTable({
      Is("two files have different numbers", "different",
         [&] { return Lstat(fx / "g", Ino) != ino ? "different" : "both " + ino; }),
      Is("after 1.5 s (past the attribute cache)", "same",
         [&] {
           SleepMs(1500);
           return same(fx / "f");
         }),
      Ok("rename", [&] { return Rename(fx / "f", fx / "h"); }),
      Is("after rename", "same", [&] { return same(fx / "h"); }),
      Is("after rename and 1.5 s", "same",
         [&] {
           SleepMs(1500);
           return same(fx / "h");
         }),
  });
}

TEST_CASE("df shows the free space of the servers over 2 copies") {
  Fixture fx;
  auto free_bytes = [](const std::string& path, double* bytes) {
    struct statvfs vfs {};
    if (::statvfs(path.c_str(), &vfs) != 0) return errno;
    *bytes = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
    return 0;
  };
  CheckTable({
      Is("mount free / one server's free (4 servers on one disk, 2 copies: 2)", "1.5 to 2.5",
         [&]() -> std::string {
           double mount = 0, server = 0;
           if (int err = free_bytes(fx.dir(), &mount)) return "statvfs mount: " + ErrnoName(err);
           if (int err = free_bytes(fx.cluster.server_dir(0), &server))
             return "statvfs server: " + ErrnoName(err);
           const double ratio = server > 0 ? mount / server : 0;
           MESSAGE("mount free ", mount, " B, server folder free ", server, " B, ratio ", ratio);
           return ratio >= 1.5 && ratio <= 2.5 ? "1.5 to 2.5" : std::to_string(ratio);
         }),
  });
}

TEST_CASE("extended attributes") {
  Fixture fx;
  REQUIRE(Create(fx / "f", "f") == 0);
  REQUIRE(Create(fx / "big", "big") == 0);
  REQUIRE(Mkdir(fx / "d") == 0);
  const std::string f = fx / "f", big = fx / "big", d = fx / "d";
  const std::string binary("a\0b\xff", 4);
  const std::string secret = "plaintext of an attribute 7f3a";
  // All of a file's attributes take at most 4096 bytes of encoding: u16
  // count, and per attribute u8 name length, name, u16 value length, value.
  // One attribute named user.a (6 bytes) of V bytes takes 2 + 1 + 6 + 2 + V.
  const std::string fits(4085, 'a'), one_more(4086, 'a');
  CheckTable({
      Is("listxattr of a new file: nothing (user.dfs.status is not listed)", "(none)",
         [&] { return Xattrs(f); }),
      Is("listxattr of a new file with size 0", "0", [&] { return ListxattrSize(f, 0); }),
      Is("getxattr user.dfs.status: a status text", "a status text",
         [&] {
           const std::string v = Xattr(f, "user.dfs.status");
           return v.empty() || v.starts_with("getxattr") ? "'" + v + "'" : "a status text";
         }),
      Fails("setxattr user.dfs.status", EPERM, [&] { return Setxattr(f, "user.dfs.status"); }),
      Fails("removexattr user.dfs.status", EPERM,
            [&] { return Removexattr(f, "user.dfs.status"); }),
      Fails("setxattr trusted.x", ENOTSUP, [&] { return Setxattr(f, "trusted.x"); }),
      Fails("setxattr security.x", ENOTSUP, [&] { return Setxattr(f, "security.x"); }),
      Fails("setxattr unknown.x", ENOTSUP, [&] { return Setxattr(f, "unknown.x"); }),
      Fails("getxattr trusted.x", ENODATA, [&] { return Getxattr(f, "trusted.x"); }),
      Fails("getxattr security.x", ENODATA, [&] { return Getxattr(f, "security.x"); }),
      Fails("getxattr unknown.x", ENODATA, [&] { return Getxattr(f, "unknown.x"); }),
      Fails("removexattr unknown.x", {ENOTSUP, ENODATA},
            [&] { return Removexattr(f, "unknown.x"); }),
      Fails("getxattr of a missing user.* name", ENODATA,
            [&] { return Getxattr(f, "user.missing"); }),
      Fails("removexattr of a missing user.* name", ENODATA,
            [&] { return Removexattr(f, "user.missing"); }),
      Ok("setxattr user.color blue", [&] { return SetxattrOf(f, "user.color", "blue"); }),
      Is("getxattr user.color", "blue", [&] { return Xattr(f, "user.color"); }),
      Is("listxattr", "user.color=blue", [&] { return Xattrs(f); }),
      Fails("XATTR_CREATE of an existing name", EEXIST,
            [&] { return SetxattrOf(f, "user.color", "red", XATTR_CREATE); }),
      Is("its value is unchanged", "blue", [&] { return Xattr(f, "user.color"); }),
      Ok("XATTR_REPLACE of an existing name",
         [&] { return SetxattrOf(f, "user.color", "green", XATTR_REPLACE); }),
      Is("the new value", "green", [&] { return Xattr(f, "user.color"); }),
      Fails("XATTR_REPLACE of a missing name", ENODATA,
            [&] { return SetxattrOf(f, "user.shape", "square", XATTR_REPLACE); }),
      Fails("it was not made", ENODATA, [&] { return Getxattr(f, "user.shape"); }),
      Ok("XATTR_CREATE of a missing name",
         [&] { return SetxattrOf(f, "user.shape", "round", XATTR_CREATE); }),
      Is("its value", "round", [&] { return Xattr(f, "user.shape"); }),
      Is("getxattr with size 0: the size needed", "5",
         [&] { return GetxattrSize(f, "user.color", 0); }),
      Is("getxattr with a buffer of exactly 5", "5",
         [&] { return GetxattrSize(f, "user.color", 5); }),
      Is("getxattr with a buffer of 4", "getxattr: ERANGE",
         [&] { return GetxattrSize(f, "user.color", 4); }),
      Is("listxattr with size 0: the size needed (user.color, user.shape, NUL-ended)", "22",
         [&] { return ListxattrSize(f, 0); }),
      Is("listxattr with a buffer of 21", "listxattr: ERANGE",
         [&] { return ListxattrSize(f, 21); }),
      Ok("setxattr an empty value", [&] { return SetxattrOf(f, "user.empty", ""); }),
      Is("getxattr of the empty value", "0", [&] { return GetxattrSize(f, "user.empty", 0); }),
      Ok("setxattr a value with NUL and 0xff bytes",
         [&] { return SetxattrOf(f, "user.bin", binary); }),
      Is("getxattr gives it exactly", "a\\x00b\\xff", [&] { return Xattr(f, "user.bin"); }),
      Ok("removexattr user.empty", [&] { return Removexattr(f, "user.empty"); }),
      Fails("getxattr of the removed name", ENODATA, [&] { return Getxattr(f, "user.empty"); }),
      Is("listxattr", "user.bin=a\\x00b\\xff user.color=green user.shape=round",
         [&] { return Xattrs(f); }),
      Ok("setxattr user.secret", [&] { return SetxattrOf(f, "user.secret", secret); }),
      Is("every piece file of the file holds sealed attributes",
         "8 piece files, all with attributes", [&] { return PieceXattrs(fx, "", "f"); }),
      Is("no file on the servers holds a value in plaintext", "none",
         [&] { return ServerFilesHolding(fx, secret); }),
      // All attributes of a file: at most 4096 bytes of encoding.
      Fails("a value of 4097 bytes", ENOSPC,
            [&] { return SetxattrOf(big, "user.huge", std::string(4097, 'h')); }),
      Ok("user.a of 4085 bytes: 4096 bytes of encoding",
         [&] { return SetxattrOf(big, "user.a", fits); }),
      Is("its size", "4085", [&] { return GetxattrSize(big, "user.a", 0); }),
      Fails("user.a of 4086 bytes: 4097 bytes of encoding", ENOSPC,
            [&] { return SetxattrOf(big, "user.a", one_more); }),
      Is("the value is unchanged", "4085", [&] { return GetxattrSize(big, "user.a", 0); }),
      Ok("user.a of 4000 bytes", [&] { return SetxattrOf(big, "user.a", fits.substr(0, 4000)); }),
      Ok("and user.b of 76 bytes: 4096 bytes in all",
         [&] { return SetxattrOf(big, "user.b", std::string(76, 'b')); }),
      Fails("user.b of 77 bytes: 4097 in all", ENOSPC,
            [&] { return SetxattrOf(big, "user.b", std::string(77, 'b')); }),
      Fails("one more attribute, empty: 4105 in all", ENOSPC,
            [&] { return SetxattrOf(big, "user.c", ""); }),
      Is("the file keeps user.a and user.b as they were",
         XattrText({{"user.a", fits.substr(0, 4000)}, {"user.b", std::string(76, 'b')}}),
         [&] { return Xattrs(big); }),
      Ok("removexattr user.b makes room", [&] { return Removexattr(big, "user.b"); }),
      Ok("then user.c fits", [&] { return SetxattrOf(big, "user.c", ""); }),
      // Folders keep none.
      Fails("setxattr on a folder", ENOTSUP, [&] { return Setxattr(d, "user.x"); }),
      Is("listxattr of a folder", "(none)", [&] { return Xattrs(d); }),
      Is("listxattr of a folder with size 0", "0", [&] { return ListxattrSize(d, 0); }),
      Fails("getxattr user.x of a folder", ENODATA, [&] { return Getxattr(d, "user.x"); }),
      Fails("getxattr user.dfs.status of a folder", ENODATA,
            [&] { return Getxattr(d, "user.dfs.status"); }),
      Fails("removexattr on a folder", ENOTSUP, [&] { return Removexattr(d, "user.x"); }),
      // Symlinks and fifos: the kernel keeps user.* to files and folders.
      Ok("symlink ln -> f", [&] { return Symlink("f", fx / "ln"); }),
      Fails("lsetxattr user.x on the symlink", EPERM,
            [&] { return Lsetxattr(fx / "ln", "user.x"); }),
      Fails("lgetxattr user.color of the symlink", ENODATA,
            [&] { return Lgetxattr(fx / "ln", "user.color"); }),
      Is("getxattr through the symlink reads the target's", "green",
         [&] { return Xattr(fx / "ln", "user.color"); }),
      Ok("setxattr through the symlink", [&] { return SetxattrOf(fx / "ln", "user.via", "ln"); }),
      Is("sets the target's", "ln", [&] { return Xattr(f, "user.via"); }),
      Ok("mkfifo p", [&] { return Mkfifo(fx / "p", 0600); }),
      Fails("setxattr user.x on the fifo", EPERM, [&] { return Setxattr(fx / "p", "user.x"); }),
      Fails("getxattr user.x of the fifo", ENODATA, [&] { return Getxattr(fx / "p", "user.x"); }),
  });
}

TEST_CASE("extended attributes stay with a file: remount, rename, chmod, overwrite, append") {
  Fixture fx;
  REQUIRE(Create(fx / "keep", "kept") == 0);
  REQUIRE(Create(fx / "other", "other") == 0);
  REQUIRE(Mkdir(fx / "d") == 0);
  // (A function: the mount point changes with each remount.)
  auto path = [&] { return fx / "d/moved"; };
  const XattrList kept = {{"user.color", "blue"},
                          {"user.bin", std::string("\0\xff\x01", 3)},
                          {"user.big", RandomBytes(1000, 7)}};
  XattrList kept_open = kept;
  kept_open.emplace_back("user.open", "1");
  const std::string want = XattrText(kept), want_open = XattrText(kept_open);
  std::unique_ptr<Mount> second;  // unmounted before the cluster stops
  auto second_path = [&] { return *second / "d/moved"; };
  auto after_1500_ms = [](std::function<std::string()> got) {
    return [got] {
      SleepMs(1500);
      return got();
    };
  };
  CheckTable({
      Ok("setxattr user.color, user.bin and user.big (1000 bytes)",
         [&] {
           for (const auto& [name, value] : kept)
             if (int err = SetxattrOf(fx / "keep", name, value)) return err;
           return 0;
         }),
      Is("the attributes", want, [&] { return Xattrs(fx / "keep"); }),
      RemountRow(fx),
      Is("after remount", want, [&] { return Xattrs(fx / "keep"); }),
      Ok("rename (mv)", [&] { return Rename(fx / "keep", fx / "moved"); }),
      Is("under the new name", want, [&] { return Xattrs(fx / "moved"); }),
      Fails("the old name is gone", ENOENT, [&] { return Getxattr(fx / "keep", "user.color"); }),
      Ok("rename into a folder", [&] { return Rename(fx / "moved", path()); }),
      Is("in the folder", want, [&] { return Xattrs(path()); }),
      Is("every piece file there holds them", "8 piece files, all with attributes",
         [&] { return PieceXattrs(fx, "d", "moved"); }),
      Ok("chmod 0600", [&] { return Chmod(path(), 0600); }),
      Is("the new mode", "0600", [&] { return Lstat(path(), Perms); }),
      Is("after chmod", want, [&] { return Xattrs(path()); }),
      Ok("chown 1234:5678", [&] { return Chown(path(), 1234, 5678); }),
      Is("after chown", want, [&] { return Xattrs(path()); }),
      Ok("utimensat mtime", [&] { return SetMtime(path(), 1500000000, 0); }),
      Is("after utimensat", want, [&] { return Xattrs(path()); }),
      Is("echo x > file (O_TRUNC)", "exit 0",
         [&] { return ExitOf(Sh("echo x > " + Quote(path()))); }),
      Is("the new content", "x\n", [&] { return Content(path()); }),
      Is("after the overwrite", want, [&] { return Xattrs(path()); }),
      Is("echo y >> file (O_APPEND)", "exit 0",
         [&] { return ExitOf(Sh("echo y >> " + Quote(path()))); }),
      Is("the appended content", "x\ny\n", [&] { return Content(path()); }),
      Is("after the append", want, [&] { return Xattrs(path()); }),
      Ok("setxattr while the file is open for writing, then close",
         [&] {
           const int fd = ::open(path().c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
           if (fd < 0) return errno;
           int err = ::write(fd, "z\n", 2) == 2 ? SetxattrOf(path(), "user.open", "1") : errno;
           if (::close(fd) != 0 && err == 0) err = errno;
           return err;
         }),
      Is("the content written while open", "x\ny\nz\n", [&] { return Content(path()); }),
      Is("the attributes, with the one set while open", want_open, [&] { return Xattrs(path()); }),
      Is("every piece file holds them", "8 piece files, all with attributes",
         [&] { return PieceXattrs(fx, "d", "moved"); }),
      RemountRow(fx),
      Is("after remount: the content", "x\ny\nz\n", [&] { return Content(path()); }),
      Is("after remount: the attributes", want_open, [&] { return Xattrs(path()); }),
      Is("after remount: the mode", "0600", [&] { return Lstat(path(), Perms); }),
      Ok("mount the same servers a second time",
         [&] {
           second = std::make_unique<Mount>(fx.conf, fx.cluster.root() + "/second");
           return 0;
         }),
      Is("the second mount sees the attributes", want_open, [&] { return Xattrs(second_path()); }),
      Ok("the second mount removes user.open",
         [&] { return Removexattr(second_path(), "user.open"); }),
      Is("the first mount sees it gone (after 1.5 s)", "getxattr: ENODATA",
         after_1500_ms([&] { return Xattr(path(), "user.open"); })),
      Ok("the first mount sets user.color red",
         [&] { return SetxattrOf(path(), "user.color", "red"); }),
      Is("the second mount sees red (after 1.5 s)", "red",
         after_1500_ms([&] { return Xattr(second_path(), "user.color"); })),
      Ok("setxattr user.other on another file",
         [&] { return SetxattrOf(fx / "other", "user.other", "o"); }),
      Ok("rename it over the file", [&] { return Rename(fx / "other", path()); }),
      Is("the file now has the other's attributes", "user.other=o", [&] { return Xattrs(path()); }),
      Ok("unlink the file", [&] { return Unlink(path()); }),
      Ok("make it again", [&] { return Create(path(), "new"); }),
      Is("the new file has no attributes", "(none)", [&] { return Xattrs(path()); }),
      Is("nor in the second mount (after 1.5 s)", "(none)",
         after_1500_ms([&] { return Xattrs(second_path()); })),
      RemountRow(fx),
      Is("after remount: none", "(none)", [&] { return Xattrs(path()); }),
  });
}

TEST_CASE("extended attributes through getfattr and setfattr, cp -a and rsync -aX") {
  Fixture fx;
  REQUIRE(Create(fx / "cli", "c") == 0);
  REQUIRE(Create(fx / "restored", "r") == 0);
  const std::string local = fx.local.path();
  // A local file's attributes as getfattr -d dumps them, for setfattr --restore in the mount.
  REQUIRE(Create(local + "/restored", "r") == 0);
  REQUIRE(SetxattrOf(local + "/restored", "user.text", "some text") == 0);
  REQUIRE(SetxattrOf(local + "/restored", "user.bin", std::string("\0\xff", 2)) == 0);
  REQUIRE(SetxattrOf(local + "/restored", "user.empty", "") == 0);
  const CommandResult dump = Run({"/usr/bin/env", "getfattr", "-d", "restored"}, "", 60, local);
  REQUIRE(dump.exit_code == 0);
  REQUIRE(dump.out.find("user.bin=") != std::string::npos);
  // A local tree whose files have attributes (folders: none, the mount keeps none).
  const std::string tree = local + "/tree";
  REQUIRE(Mkdir(tree) == 0);
  REQUIRE(Mkdir(tree + "/sub") == 0);
  for (const char* name : {"a", "b", "c", "sub/d"})
    REQUIRE(Create(tree + "/" + name, std::string("content of ") + name) == 0);
  REQUIRE(SetxattrOf(tree + "/a", "user.one", "1") == 0);
  REQUIRE(SetxattrOf(tree + "/a", "user.two", "two") == 0);
  REQUIRE(SetxattrOf(tree + "/b", "user.bin", std::string("\0\x01\xfe", 3)) == 0);
  REQUIRE(SetxattrOf(tree + "/b", "user.big", RandomBytes(4000, 11)) == 0);
  REQUIRE(SetxattrOf(tree + "/sub/d", "user.deep", "deep") == 0);
  REQUIRE(SetxattrOf(tree + "/sub/d", "user.empty", "") == 0);
  const std::string want = TreeXattrs(tree);
  REQUIRE(want.find("user.big=<4000 bytes") != std::string::npos);
  // A command (found on PATH) run in the mount's root.
  auto in_mount = [&](std::vector<std::string> argv, std::string input = "") {
    argv.insert(argv.begin(), "/usr/bin/env");
    return Run(argv, input, 60, fx.dir());
  };
  CheckTable({
      Is("setfattr -n user.cli -v 'hello world' cli", "exit 0",
         [&] {
           return ExitOf(in_mount({"setfattr", "-n", "user.cli", "-v", "hello world", "cli"}));
         }),
      Is("getfattr -d cli", "# file: cli\nuser.cli=\"hello world\"\n\n",
         [&] {
           return OutputOf(in_mount({"getfattr", "-d", "cli"}));
         }),
      Is("getfattr -n user.dfs.status cli shows the status", "shown",
         [&] {
           const std::string out = OutputOf(in_mount({"getfattr", "-n", "user.dfs.status", "cli"}));
           return out.starts_with("# file: cli\nuser.dfs.status=\"") ? "shown" : out;
         }),
      Is("setfattr -n user.dfs.status is refused",
         "exit 1: setfattr: cli: Operation not permitted\n",
         [&] {
           return ExitOf(in_mount({"setfattr", "-n", "user.dfs.status", "-v", "x", "cli"}));
         }),
      Is("setfattr -x user.cli cli", "exit 0",
         [&] {
           return ExitOf(in_mount({"setfattr", "-x", "user.cli", "cli"}));
         }),
      Is("getfattr -d cli: nothing", "",
         [&] {
           return OutputOf(in_mount({"getfattr", "-d", "cli"}));
         }),
      Is("setfattr --restore of a local file's getfattr -d dump", "exit 0",
         [&] {
           return ExitOf(in_mount({"setfattr", "--restore=-"}, dump.out));
         }),
      Is("getfattr -d of the restored file: the local dump", dump.out,
         [&] {
           return OutputOf(in_mount({"getfattr", "-d", "restored"}));
         }),
      Is("cp -a of a local tree into the mount", "exit 0",
         [&] { return ExitOf(Sh("cp -a " + Quote(tree) + " " + Quote(fx / "cp"))); }),
      Is("cp -a: every attribute in the mount", want, [&] { return TreeXattrs(fx / "cp"); }),
      Is("cp -a back out of the mount", "exit 0",
         [&] { return ExitOf(Sh("cp -a " + Quote(fx / "cp") + " " + Quote(local + "/cp-back"))); }),
      Is("cp -a back: every attribute, and no user.dfs.status", want,
         [&] { return TreeXattrs(local + "/cp-back"); }),
      Is("rsync -aX of the local tree into the mount", "exit 0",
         [&] { return ExitOf(Sh("rsync -aX " + Quote(tree + "/") + " " + Quote(fx / "rsync/"))); }),
      Is("rsync -aX: every attribute in the mount", want, [&] { return TreeXattrs(fx / "rsync"); }),
      Is("rsync -aX back out of the mount", "exit 0",
         [&] {
           return ExitOf(
               Sh("rsync -aX " + Quote(fx / "rsync/") + " " + Quote(local + "/rsync-back/")));
         }),
      Is("rsync -aX back: every attribute, and no user.dfs.status", want,
         [&] { return TreeXattrs(local + "/rsync-back"); }),
      RemountRow(fx),
      Is("after remount: cp -a's copy", want, [&] { return TreeXattrs(fx / "cp"); }),
      Is("after remount: rsync -aX's copy", want, [&] { return TreeXattrs(fx / "rsync"); }),
      Is("after remount: the restored file", dump.out,
         [&] {
           return OutputOf(in_mount({"getfattr", "-d", "restored"}));
         }),
  });
}

// ---- Tree copies ----

// A tree with every kind of entry the copies must keep, modes, mtimes and
// (on files) user.* extended attributes set.
void BuildTree(const std::string& src) {
  REQUIRE(Mkdir(src, 0755) == 0);
  struct File {
    const char* name;
    mode_t mode;
    time_t mtime;
  };
  const File files[] = {{"private.txt", 0600, 1500000001},
                        {"run.sh", 0755, 1500000002},
                        {"readme", 0644, 1500000003},
                        {"sub/inner.txt", 0644, 1500000004}};
  REQUIRE(Mkdir(src + "/sub", 0750) == 0);
  REQUIRE(Mkdir(src + "/sub/empty", 0700) == 0);
  for (const File& f : files) {
    REQUIRE(Create(src + "/" + f.name, std::string("content of ") + f.name, f.mode) == 0);
    REQUIRE(SetMtime(src + "/" + f.name, f.mtime, 250000000) == 0);
  }
  REQUIRE(SetxattrOf(src + "/private.txt", "user.mime_type", "text/plain") == 0);
  REQUIRE(SetxattrOf(src + "/run.sh", "user.one", "1") == 0);
  REQUIRE(SetxattrOf(src + "/run.sh", "user.bin", std::string("\0\xff", 2)) == 0);
  REQUIRE(SetxattrOf(src + "/sub/inner.txt", "user.empty", "") == 0);
  REQUIRE(SetxattrOf(src + "/sub/inner.txt", "user.big", RandomBytes(3000, 3)) == 0);
  REQUIRE(Symlink("private.txt", src + "/link") == 0);
  REQUIRE(Symlink("../readme", src + "/sub/up") == 0);
  REQUIRE(Symlink("missing", src + "/dangling") == 0);
  REQUIRE(Mkfifo(src + "/pipe.fifo", 0640) == 0);
  REQUIRE(SetMtime(src + "/pipe.fifo", 1500000005, 0) == 0);
  REQUIRE(SetMtime(src + "/sub/empty", 1400000001, 0) == 0);
  REQUIRE(SetMtime(src + "/sub", 1400000002, 0) == 0);
  REQUIRE(SetMtime(src, 1400000003, 0) == 0);
}

// diff -r (fifos left out: diff cannot compare them), then per entry: the
// same names, and the same type, permission bits, (but links) mtime seconds
// and, with `xattrs`, user.* extended attributes.
void CheckSameTree(const std::string& src, const std::string& dst, bool xattrs) {
  auto diff = Sh("diff -r --no-dereference --exclude='*.fifo' " + Quote(src) + " " + Quote(dst));
  CHECK_MESSAGE(diff.exit_code == 0, diff.out, diff.err);
  CHECK(diff.out.empty());
  const auto names = Walk(src);
  const auto copied = Walk(dst);
  CHECK_MESSAGE(names == copied, "source: ", Join(names, " "), "\ncopy: ", Join(copied, " "));
  for (const std::string& name : names) {
    INFO(name);
    const std::string a = src + "/" + name, b = dst + "/" + name;
    CHECK(Lstat(b, Type) == Lstat(a, Type));
    if (Lstat(a, Type) == "symlink") continue;
    CHECK(Lstat(b, Perms) == Lstat(a, Perms));
    struct stat sa {
    }, sb{};
    ::lstat(a.c_str(), &sa);
    ::lstat(b.c_str(), &sb);
    CHECK(sb.st_mtime == sa.st_mtime);
    if (xattrs) CHECK(Xattrs(b) == Xattrs(a));
  }
}

TEST_CASE("cp -a, tar --xattrs and rsync -aX copy a tree exactly") {
  Fixture fx;
  const std::string src = fx.local / "src";
  BuildTree(src);
  struct Copy {
    std::string tool;
    std::string dst;                    // under the mount
    std::vector<std::string> commands;  // SRC and DST replaced
    std::string last_output_has;        // in the last command's stdout
    bool xattrs;                        // whether it copies user.* attributes
  };
  const std::vector<Copy> copies = {
      {"cp -a", "a", {"cp -a SRC DST"}, "", true},
      // tar --xattrs makes each file with mknod(2), sets its attributes,
      // then opens it to write.
      {"tar --xattrs",
       "b",
       {"mkdir DST",
        "tar --xattrs -C SRC -cf - . | tar --xattrs --xattrs-include='user.*' -C DST -xpf -"},
       "",
       true},
      {"rsync -aX, twice",
       "c",
       {"rsync -aX SRC/ DST/", "rsync -aX --stats SRC/ DST/"},
       "Number of regular files transferred: 0",
       true},
  };
  for (const Copy& copy : copies) {
    INFO(copy.tool);
    const std::string dst = fx / copy.dst;
    CommandResult r;
    for (std::string command : copy.commands) {
      for (auto [from, to] : {std::pair{"SRC", Quote(src)}, std::pair{"DST", Quote(dst)}})
        for (size_t at = command.find(from); at != std::string::npos;
             at = command.find(from, at + to.size()))
          command.replace(at, 3, to);
      INFO(command);
      r = Sh(command);
      CHECK_MESSAGE(r.exit_code == 0, r.err);
    }
    if (!copy.last_output_has.empty())
      CHECK_MESSAGE(r.out.find(copy.last_output_has) != std::string::npos, r.out);
    CheckSameTree(src, dst, copy.xattrs);
  }
}

}  // namespace
}  // namespace dfs::testing
