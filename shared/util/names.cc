// Name and path validation.
#include "shared/util/names.h"

namespace dfs {

Status ValidateName(std::string_view name) {
  if (name.empty()) return Status::Invalid("empty name");
  if (name.size() > kMaxNameBytes)
    return Status::NameTooLong("name longer than " + std::to_string(kMaxNameBytes) + " bytes");
  if (name == "." || name == "..")
    return Status::Invalid("name '" + std::string(name) + "' is not allowed");
  for (char c : name) {
    if (c == '/') return Status::Invalid("name contains '/'");
    if (c == '\0') return Status::Invalid("name contains NUL");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> SplitPath(std::string_view path) {
  if (path.size() > kMaxPathBytes) return Status::NameTooLong("path too long");
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (!part.empty()) {
      DFS_RETURN_IF_ERROR(ValidateName(part));
      parts.emplace_back(part);
    }
    i = j + 1;
  }
  return parts;
}

Result<ParentAndName> SplitParent(std::string_view path) {
  DFS_ASSIGN_OR_RETURN(auto parts, SplitPath(path));
  ParentAndName r;
  if (parts.empty()) return r;
  r.name = std::move(parts.back());
  parts.pop_back();
  r.dir = JoinPath(parts);
  return r;
}

std::string JoinPath(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

std::string JoinName(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out += '/';
  out += name;
  return out;
}

Result<std::string> NormalizeDir(std::string_view dir) {
  DFS_ASSIGN_OR_RETURN(auto parts, SplitPath(dir));
  return JoinPath(parts);
}

}  // namespace dfs
