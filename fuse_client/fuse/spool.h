// The spool: local files holding what is being written through the mount until
// close/fsync uploads it, so memory stays bounded whatever the file size. Each
// spool file is nameless from birth (O_TMPFILE, or mkstemp + unlink), so
// nothing is left behind when dfcfs exits or dies.
#pragma once

#include <string>

#include "shared/util/fd.h"
#include "shared/util/status.h"

namespace dfs::fuse {

class Spool {
 public:
  // /var/tmp/dfcfs-UID: on disk, unlike $XDG_RUNTIME_DIR, which is usually a
  // small tmpfs in RAM; a 10 GiB copy must not fill memory.
  static std::string DefaultDir();

  // Creates `dir` (mode 0700) if missing and checks that a spool file can be
  // made in it. With `strict` (the default dir, in a folder everyone can
  // write), the dir must be a real directory owned by us, not something
  // planted by another user, and is made private (0700). Errors name the dir.
  static Result<Spool> Open(const std::string& dir, bool strict);

  const std::string& dir() const { return dir_; }

  // A new, empty, nameless read-write file. Thread-safe.
  Result<UniqueFd> Create() const;

 private:
  explicit Spool(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace dfs::fuse
