// Fuzz target: names and paths (shared/util/names.h).
// Input: byte 0 is Escaped()'s max_bytes, the rest is a name or path.
// Properties: a valid name has none of the forbidden bytes; SplitPath gives
// valid components that JoinPath/SplitPath reproduce; NormalizeDir is
// idempotent and equals JoinPath(SplitPath(x)); SplitParent + JoinName give
// the normalized path back; Escaped and EscapeControl never emit a control
// byte, Escaped can be undone, and no error message carries a control byte.
#include <string>
#include <string_view>
#include <vector>

#include "shared/util/names.h"
#include "tests/fuzz/fuzz_util.h"

namespace dfs {
namespace {

void CheckError(const Status& s) {
  FUZZ_CHECK(s.code() == Code::kInvalidArgument || s.code() == Code::kNameTooLong);
  FUZZ_CHECK(!fuzz::HasControlByte(s.message()));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Undoes Escaped(); fails on anything Escaped() cannot have produced.
std::string Unescape(std::string_view quoted, bool cut) {
  FUZZ_CHECK(quoted.size() >= 2 && quoted.front() == '\'' && quoted.back() == '\'');
  std::string_view body = quoted.substr(1, quoted.size() - 2);
  if (cut) {
    FUZZ_CHECK(body.size() >= 3 && body.substr(body.size() - 3) == "...");
    body.remove_suffix(3);
  }
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    FUZZ_CHECK(body[i] != '\'');
    if (body[i] != '\\') {
      out.push_back(body[i]);
      continue;
    }
    FUZZ_CHECK(i + 3 < body.size() && body[i + 1] == 'x');
    const int hi = HexValue(body[i + 2]), lo = HexValue(body[i + 3]);
    FUZZ_CHECK(hi >= 0 && lo >= 0);
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 3;
  }
  return out;
}

void CheckName(std::string_view text) {
  const Status s = ValidateName(text);
  if (!s.ok()) return CheckError(s);
  FUZZ_CHECK(!text.empty() && text.size() <= kMaxNameBytes);
  FUZZ_CHECK(text != "." && text != "..");
  FUZZ_CHECK(text.find('/') == std::string_view::npos);
  FUZZ_CHECK(!fuzz::HasControlByte(text));
  FUZZ_CHECK(EscapeControl(text) == text);
  FUZZ_CHECK(JoinName("", text) == text);
}

void CheckEscapes(std::string_view text, size_t max_bytes) {
  const std::string quoted = Escaped(text, max_bytes);
  FUZZ_CHECK(!fuzz::HasControlByte(quoted));
  const bool cut = text.size() > max_bytes;
  FUZZ_CHECK(Unescape(quoted, cut) == text.substr(0, max_bytes));

  const std::string shown = EscapeControl(text);
  FUZZ_CHECK(!fuzz::HasControlByte(shown));
  FUZZ_CHECK(shown.size() >= text.size());
}

void CheckPath(std::string_view text) {
  Result<std::vector<std::string>> parts = SplitPath(text);
  Result<std::string> normal = NormalizeDir(text);
  Result<ParentAndName> split = SplitParent(text);
  FUZZ_CHECK(parts.ok() == normal.ok() && parts.ok() == split.ok());
  if (!parts.ok()) {
    CheckError(parts.status());
    FUZZ_CHECK(normal.status().code() == parts.status().code());
    return;
  }
  for (const std::string& p : *parts) FUZZ_CHECK_OK(ValidateName(p));
  const std::string joined = JoinPath(*parts);
  FUZZ_CHECK(joined == *normal);
  FUZZ_CHECK(joined.size() <= text.size() && joined.size() <= kMaxPathBytes);
  FUZZ_CHECK(joined.empty() || (joined.front() != '/' && joined.back() != '/'));

  Result<std::vector<std::string>> reparsed = SplitPath(joined);
  FUZZ_CHECK_OK(reparsed.status());
  FUZZ_CHECK(*reparsed == *parts);
  Result<std::string> twice = NormalizeDir(*normal);
  FUZZ_CHECK_OK(twice.status());
  FUZZ_CHECK(*twice == *normal);

  if (parts->empty()) {
    FUZZ_CHECK(split->dir.empty() && split->name.empty());
  } else {
    FUZZ_CHECK(split->name == parts->back());
    FUZZ_CHECK(JoinName(split->dir, split->name) == *normal);
    Result<std::string> dir = NormalizeDir(split->dir);
    FUZZ_CHECK_OK(dir.status());
    FUZZ_CHECK(*dir == split->dir);
  }
}

}  // namespace
}  // namespace dfs

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view text = dfs::fuzz::AsView(data + 1, size - 1);
  dfs::CheckName(text);
  dfs::CheckEscapes(text, data[0]);
  dfs::CheckPath(text);
  return 0;
}
