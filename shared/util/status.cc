// Status formatting and the single errno -> Status mapping.
#include "shared/util/status.h"

#include <cerrno>
#include <cstring>

namespace dfs {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NotFound";
    case Code::kExists:
      return "Exists";
    case Code::kNotEmpty:
      return "NotEmpty";
    case Code::kNotDir:
      return "NotDir";
    case Code::kIsDir:
      return "IsDir";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kAuthFailed:
      return "AuthFailed";
    case Code::kPermission:
      return "Permission";
    case Code::kIoError:
      return "IoError";
    case Code::kProtocol:
      return "Protocol";
    case Code::kTimeout:
      return "Timeout";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kNoSpace:
      return "NoSpace";
    case Code::kCorrupt:
      return "Corrupt";
    case Code::kIncomplete:
      return "Incomplete";
    case Code::kTooLarge:
      return "TooLarge";
    case Code::kBusy:
      return "Busy";
    case Code::kStale:
      return "Stale";
    case Code::kNameTooLong:
      return "NameTooLong";
    case Code::kCancelled:
      return "Cancelled";
    case Code::kUntrusted:
      return "Untrusted";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

Status FromErrno(int err, std::string_view what) {
  std::string msg = std::string(what) + ": " + std::strerror(err);
  switch (err) {
    case 0:
      return Status::Ok();
    case ENOENT:
      return Status::NotFound(std::move(msg));
    case EEXIST:
      return Status::Exists(std::move(msg));
    case ENOTEMPTY:
      return Status::NotEmpty(std::move(msg));
    case ENOTDIR:
      return Status::NotDir(std::move(msg));
    case EISDIR:
      return Status::IsDir(std::move(msg));
    case EINVAL:
      return Status::Invalid(std::move(msg));
    case EACCES:
    case EPERM:
      return Status::Permission(std::move(msg));
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(std::move(msg));
    case ENAMETOOLONG:
      return Status::NameTooLong(std::move(msg));
    case ETIMEDOUT:
    case EAGAIN:
      return Status::Timeout(std::move(msg));
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case EHOSTUNREACH:
    case ENETUNREACH:
      return Status::Unavailable(std::move(msg));
    case EFBIG:
      return Status::TooLarge(std::move(msg));
    default:
      return Status::IoError(std::move(msg));
  }
}

}  // namespace dfs
