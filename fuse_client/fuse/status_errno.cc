// Status -> errno (see status_errno.h).
#include "fuse_client/fuse/status_errno.h"

#include <cerrno>

namespace dfs::fuse {

int ToErrno(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return 0;
    case Code::kNotFound:
      return ENOENT;
    case Code::kExists:
      return EEXIST;
    case Code::kNotEmpty:
      return ENOTEMPTY;
    case Code::kNotDir:
      return ENOTDIR;
    case Code::kIsDir:
      return EISDIR;
    case Code::kInvalidArgument:
      return EINVAL;
    case Code::kNameTooLong:
      return ENAMETOOLONG;
    case Code::kPermission:
    case Code::kAuthFailed:
      return EACCES;
    case Code::kNoSpace:
      return ENOSPC;
    case Code::kTooLarge:
      return EFBIG;
    case Code::kBusy:
      return EBUSY;
    case Code::kIncomplete:
    case Code::kCorrupt:
    case Code::kIoError:
    case Code::kProtocol:
    case Code::kUnavailable:
    case Code::kTimeout:
    case Code::kStale:
    case Code::kCancelled:
    case Code::kUntrusted:
      return EIO;
  }
  return EIO;
}

}  // namespace dfs::fuse
