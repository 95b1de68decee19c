// Unit tests of shared/util/names.h: name validation and path splitting.
#include "shared/util/names.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace dfs {
namespace {

using namespace std::string_literals;

TEST_CASE("refuses empty, dot, dot-dot, slash and NUL names") {
  struct Case {
    std::string_view what;
    std::string name;
    Code code;
  };
  const Case cases[] = {
      {"empty", "", Code::kInvalidArgument},
      {"dot", ".", Code::kInvalidArgument},
      {"dot-dot", "..", Code::kInvalidArgument},
      {"slash alone", "/", Code::kInvalidArgument},
      {"slash inside", "a/b", Code::kInvalidArgument},
      {"trailing slash", "a/", Code::kInvalidArgument},
      {"NUL inside", "a\0b"s, Code::kInvalidArgument},
      {"NUL alone", "\0"s, Code::kInvalidArgument},
      {"one byte too long", std::string(kMaxNameBytes + 1, 'x'), Code::kNameTooLong},
      {"far too long", std::string(4096, 'x'), Code::kNameTooLong},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Status s = ValidateName(c.name);
    CHECK(s.code() == c.code);
  }
}

TEST_CASE("accepts names up to kMaxNameBytes, dot-files and unicode") {
  const std::string cases[] = {
      "a",
      "1.txt",
      ".hidden",
      "...",
      "..a",
      "a..",
      "with space",
      "name with #hash",
      "\xc3\xa9t\xc3\xa9.txt",          // "été.txt"
      "\xe6\x96\x87\xe4\xbb\xb6",       // "文件"
      "\xf0\x9f\x93\x81",               // U+1F4C1, a four-byte sequence
      std::string(kMaxNameBytes, 'x'),  // exactly at the limit
  };
  for (const std::string& name : cases) {
    CAPTURE(name);
    CHECK(ValidateName(name).ok());
  }
}

TEST_CASE("splits paths into components and skips empty ones") {
  struct Case {
    std::string path;
    std::vector<std::string> parts;
  };
  const Case cases[] = {
      {"", {}},
      {"/", {}},
      {"//", {}},
      {"a", {"a"}},
      {"a/b", {"a", "b"}},
      {"/a//b/", {"a", "b"}},
      {"a/.b/c.d", {"a", ".b", "c.d"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.path);
    auto parts = SplitPath(c.path);
    REQUIRE(parts.ok());
    CHECK(*parts == c.parts);
  }
}

TEST_CASE("refuses paths with a dot, dot-dot, NUL or an overlong component") {
  struct Case {
    std::string path;
    Code code;
  };
  const Case cases[] = {
      {"a/../b", Code::kInvalidArgument},
      {"..", Code::kInvalidArgument},
      {"/a/./b", Code::kInvalidArgument},
      {"a/b\0c"s, Code::kInvalidArgument},
      {"a/" + std::string(kMaxNameBytes + 1, 'x'), Code::kNameTooLong},
      {std::string(kMaxPathBytes + 1, 'a'), Code::kNameTooLong},
  };
  for (const Case& c : cases) {
    CAPTURE(c.path.substr(0, 40));
    auto parts = SplitPath(c.path);
    REQUIRE_FALSE(parts.ok());
    CHECK(parts.status().code() == c.code);
  }
}

TEST_CASE("joins components without leading or trailing slashes") {
  CHECK(JoinPath({}) == "");
  CHECK(JoinPath({"a"}) == "a");
  CHECK(JoinPath({"a", "b", "c"}) == "a/b/c");
  CHECK(JoinName("", "f.txt") == "f.txt");
  CHECK(JoinName("a/b", "f.txt") == "a/b/f.txt");
}

TEST_CASE("normalizes a directory path or refuses it") {
  struct Case {
    std::string dir;
    std::string normal;
  };
  const Case cases[] = {{"", ""}, {"/", ""}, {"a", "a"}, {"/a//b/", "a/b"}, {"a/b", "a/b"}};
  for (const Case& c : cases) {
    CAPTURE(c.dir);
    auto n = NormalizeDir(c.dir);
    REQUIRE(n.ok());
    CHECK(*n == c.normal);
  }
  CHECK(NormalizeDir("a/../b").status().code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace dfs

namespace dfs {
namespace {

TEST_CASE("SplitParent separates the folder from the last component") {
  struct Case {
    const char* path;
    const char* dir;
    const char* name;
  };
  for (const Case& c : {Case{"a/b/c", "a/b", "c"}, Case{"/a//b/", "a", "b"}, Case{"c", "", "c"},
                        Case{"", "", ""}, Case{"/", "", ""}}) {
    CAPTURE(c.path);
    auto r = SplitParent(c.path);
    REQUIRE(r.ok());
    CHECK(r->dir == c.dir);
    CHECK(r->name == c.name);
  }
  CHECK_FALSE(SplitParent("a/../b").ok());
}

}  // namespace
}  // namespace dfs
