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
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f)
      return Status::Invalid("name " + Escaped(name) + " contains a control character");
  }
  return Status::Ok();
}

std::string Escaped(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x20 || b == 0x7f || b == '\\' || b == '\'') {
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    } else {
      out.push_back(static_cast<char>(b));
    }
  }
  if (text.size() > max_bytes) out += "...";
  out += "'";
  return out;
}

std::string EscapeControl(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out;
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
