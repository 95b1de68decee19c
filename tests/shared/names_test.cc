// Unit tests of shared/util/names.h: name validation and path splitting.
#include "shared/util/names.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace dfs {
namespace {

using namespace std::string_literals;

TEST_CASE("refuses empty, dot, dot-dot, slash, NUL and control-byte names") {
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
      {"0x01",
       "a\x01"
       "b",
       Code::kInvalidArgument},
      {"escape (0x1b)", "\x1b[31mred", Code::kInvalidArgument},
      {"newline", "a\nb", Code::kInvalidArgument},
      {"carriage return", "a\r", Code::kInvalidArgument},
      {"tab", "\tb", Code::kInvalidArgument},
      {"0x1f", "\x1f", Code::kInvalidArgument},
      {"DEL (0x7f)", "a\x7f", Code::kInvalidArgument},
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
      "~tilde and 'quote' and \\backslash",
      "\x20leading space",
      "\x7e",                           // '~', the last printable ASCII byte
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

TEST_CASE("names a control byte escaped in the error, never raw") {
  Status s = ValidateName("evil\x1b[2Jname");
  REQUIRE(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("control character") != std::string::npos);
  CHECK(s.message().find("'evil\\x1b[2Jname'") != std::string::npos);
  CHECK(s.message().find('\x1b') == std::string::npos);
  CHECK(ValidateName("a\nb").message().find('\n') == std::string::npos);
}

TEST_CASE("quotes text for a log line with control bytes, quote and backslash as hex") {
  struct Case {
    std::string text;
    std::string quoted;
  };
  const Case cases[] = {
      {"", "''"},
      {"plain.txt", "'plain.txt'"},
      {"a\nb", "'a\\x0ab'"},
      {"\x1b[31m", "'\\x1b[31m'"},
      {"tab\there", "'tab\\x09here'"},
      {"del\x7f", "'del\\x7f'"},
      {"it's", "'it\\x27s'"},
      {"back\\slash", "'back\\x5cslash'"},
      {"\0"s, "'\\x00'"},
      {"\xc3\xa9t\xc3\xa9", "'\xc3\xa9t\xc3\xa9'"},  // UTF-8 passes through
  };
  for (const Case& c : cases) {
    CAPTURE(c.quoted);
    CHECK(Escaped(c.text) == c.quoted);
  }
  // Cut after max_bytes, and the cut is marked.
  CHECK(Escaped("abcdef", 3) == "'abc...'");
  CHECK(Escaped("abc", 3) == "'abc'");
  CHECK(Escaped(std::string(1000, 'x')).size() == 300 + 2 + 3);
  // Every byte value comes out printable.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (char c : Escaped(all, all.size())) {
    const auto b = static_cast<unsigned char>(c);
    CHECK((b >= 0x20 && b != 0x7f));
  }
}

TEST_CASE("escapes only control bytes for names printed unquoted") {
  CHECK(EscapeControl("") == "");
  CHECK(EscapeControl("report.pdf") == "report.pdf");
  CHECK(EscapeControl("it's a \\ name") == "it's a \\ name");
  CHECK(EscapeControl("\xe6\x96\x87\xe4\xbb\xb6") == "\xe6\x96\x87\xe4\xbb\xb6");
  CHECK(EscapeControl("a\nb") == "a\\x0ab");
  CHECK(EscapeControl("\x1b[2J") == "\\x1b[2J");
  CHECK(EscapeControl("x\x7f\x01"
                      "y") == "x\\x7f\\x01y");
  CHECK(EscapeControl("\0"s) == "\\x00");
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
      {"a/b\nc/d", Code::kInvalidArgument},
      {"a\x1b/b", Code::kInvalidArgument},
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
