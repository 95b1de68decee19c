// Validation of user-supplied names and paths. Every name that reaches a
// server's disk passes ValidateName() on both sides of the wire.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shared/util/status.h"

namespace dfs {

// A server stores file NAME as ".NAME.K" (K up to 2 digits), and a server's
// file system allows 255 bytes, so names are limited to 251 bytes.
inline constexpr size_t kMaxNameBytes = 251;
// A whole relative path (all components joined by '/').
inline constexpr size_t kMaxPathBytes = 4096;

// OK for a single path component: non-empty, at most kMaxNameBytes, not "." or
// "..", no '/', no NUL and no control byte (< 0x20, 0x7f), so that no name can
// forge a log line or drive a terminal. Errors: kInvalidArgument, kNameTooLong.
Status ValidateName(std::string_view name);

// `text` quoted for a log line or a message: 'a\x1bb', control bytes, quote
// and backslash as \xNN, cut after max_bytes with "...". Safe for any bytes.
std::string Escaped(std::string_view text, size_t max_bytes = 300);
// `text` with only control bytes as \xNN (for names printed unquoted, as
// `dfc list` does; valid names pass through unchanged).
std::string EscapeControl(std::string_view text);

// Splits "a/b/c", "/a/b/", "" or "/" into validated components ("" -> {}).
// Empty components from repeated slashes are skipped.
Result<std::vector<std::string>> SplitPath(std::string_view path);

// A path split into its folder and last component: "a/b/c" -> {"a/b", "c"},
// "c" -> {"", "c"}, the root ("" or "/") -> {"", ""}.
struct ParentAndName {
  std::string dir;
  std::string name;
};
Result<ParentAndName> SplitParent(std::string_view path);

// Joins components with '/', no leading or trailing slash ("" for the root).
std::string JoinPath(const std::vector<std::string>& parts);

// Joins a directory path ("" or "a/b") and a name.
std::string JoinName(std::string_view dir, std::string_view name);

// Normalizes a relative directory path (validates and re-joins). "" is the root.
Result<std::string> NormalizeDir(std::string_view dir);

}  // namespace dfs
