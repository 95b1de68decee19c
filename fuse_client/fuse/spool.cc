// Spool files (see spool.h).
#include "fuse_client/fuse/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

namespace dfs::fuse {

std::string Spool::DefaultDir() { return "/var/tmp/dfcfs-" + std::to_string(::geteuid()); }

Result<Spool> Spool::Open(const std::string& dir, bool strict) {
  if (dir.empty()) return Status::Invalid("empty spool directory");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return FromErrno(errno, "spool directory " + dir);
  struct stat st {};
  if ((strict ? ::lstat(dir.c_str(), &st) : ::stat(dir.c_str(), &st)) != 0)
    return FromErrno(errno, "spool directory " + dir);
  if (!S_ISDIR(st.st_mode)) return Status::NotDir("spool directory " + dir + " is not a directory");
  if (strict) {
    if (st.st_uid != ::geteuid())
      return Status::Permission("spool directory " + dir + " belongs to another user");
    if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0)
      return FromErrno(errno, "chmod 0700 " + dir);
  }
  Spool spool(dir);
  auto probe = spool.Create();
  if (!probe.ok()) return probe.status();
  return spool;
}

Result<UniqueFd> Spool::Create() const {
  UniqueFd fd(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd) return fd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    return FromErrno(errno, "spool file in " + dir_);
  // No O_TMPFILE on this file system: a named file, unlinked at once.
  std::string pattern = dir_ + "/spool-XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  fd.Reset(::mkostemp(name.data(), O_CLOEXEC));
  if (!fd) return FromErrno(errno, "spool file in " + dir_);
  if (::unlink(name.data()) != 0) return FromErrno(errno, std::string("unlink ") + name.data());
  return fd;
}

}  // namespace dfs::fuse
