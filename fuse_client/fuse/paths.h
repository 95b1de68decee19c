// Path helpers of the mount: FUSE hands us "/a/b", the client library wants
// "a/b" ("" is the root), and listings mark unreadable files "NAME [incomplete]".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dfs::fuse {

// Appended to the name of a file whose newest version cannot be rebuilt.
inline constexpr std::string_view kIncompleteSuffix = " [incomplete]";

// "/a/b/" -> "a/b"; "/" and "" -> "". Repeated slashes collapse.
std::string RelativePath(std::string_view fuse_path);

// The directory holding `path`: "a/b" -> "a", "b" -> "", "" -> "".
std::string ParentOf(std::string_view path);

// The last component: "a/b" -> "b", "b" -> "b".
std::string_view BaseOf(std::string_view path);

// Whether `path` is `dir` itself or lies below it ("a/b" is under "a", "ab" is not).
// Every path is under the root "".
bool IsUnder(std::string_view path, std::string_view dir);

// "a/x [incomplete]" -> "a/x"; nullopt when the last component lacks the
// suffix or is nothing but the suffix.
std::optional<std::string> StripIncompleteSuffix(std::string_view path);

}  // namespace dfs::fuse
