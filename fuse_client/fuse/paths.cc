// Path helpers of the mount (see paths.h).
#include "fuse_client/fuse/paths.h"

namespace dfs::fuse {

std::string RelativePath(std::string_view fuse_path) {
  std::string out;
  out.reserve(fuse_path.size());
  size_t i = 0;
  while (i < fuse_path.size()) {
    while (i < fuse_path.size() && fuse_path[i] == '/') ++i;
    size_t end = fuse_path.find('/', i);
    if (end == std::string_view::npos) end = fuse_path.size();
    if (end > i) {
      if (!out.empty()) out += '/';
      out.append(fuse_path.substr(i, end - i));
    }
    i = end;
  }
  return out;
}

std::string ParentOf(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

std::string_view BaseOf(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool IsUnder(std::string_view path, std::string_view dir) {
  if (dir.empty()) return true;
  if (!path.starts_with(dir)) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

std::optional<std::string> StripIncompleteSuffix(std::string_view path) {
  if (!path.ends_with(kIncompleteSuffix)) return std::nullopt;
  std::string_view base = BaseOf(path);
  if (base.size() <= kIncompleteSuffix.size()) return std::nullopt;
  return std::string(path.substr(0, path.size() - kIncompleteSuffix.size()));
}

}  // namespace dfs::fuse
