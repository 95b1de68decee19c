// Unit tests of shared/util/status.h: codes, formatting and the errno mapping.
#include "shared/util/status.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <set>
#include <string>

namespace dfs {
namespace {

TEST_CASE("gives every code a distinct name and unknown numbers a fallback") {
  std::set<std::string_view> names;
  for (int c = 0; c <= kMaxCode; ++c) {
    std::string_view name = CodeName(static_cast<Code>(c));
    CHECK_MESSAGE(name != "Unknown", "code ", c);
    CHECK_MESSAGE(names.insert(name).second, "duplicate name ", name);
  }
  CHECK(CodeName(static_cast<Code>(kMaxCode + 1)) == "Unknown");
}

TEST_CASE("formats a status as its code name and message") {
  CHECK(Status::Ok().ToString() == "OK");
  CHECK(Status::NotFound("no such file 'a.txt'").ToString() == "NotFound: no such file 'a.txt'");
  CHECK(Status(Code::kTimeout, "").ToString() == "Timeout");
  CHECK(Status::Untrusted("DFS2 presented another key").ToString() ==
        "Untrusted: DFS2 presented another key");
  CHECK(Status::Untrusted("x").code() == Code::kUntrusted);
  CHECK(static_cast<int>(Code::kUntrusted) == 21);  // on the wire: never renumber
  CHECK(kMaxCode == 21);
}

TEST_CASE("annotates the message of an error and leaves OK alone") {
  Status s = Status::Unavailable("connection refused").Annotate("DFS2");
  CHECK(s.code() == Code::kUnavailable);
  CHECK(s.message() == "DFS2: connection refused");
  CHECK(Status::Ok().Annotate("DFS2").ok());
  CHECK(Status::Ok().Annotate("DFS2").message().empty());
}

TEST_CASE("maps errno values to codes and names the operation") {
  struct Case {
    int err;
    Code code;
  };
  const Case cases[] = {
      {0, Code::kOk},
      {ENOENT, Code::kNotFound},
      {EEXIST, Code::kExists},
      {ENOTEMPTY, Code::kNotEmpty},
      {ENOTDIR, Code::kNotDir},
      {EISDIR, Code::kIsDir},
      {EINVAL, Code::kInvalidArgument},
      {EACCES, Code::kPermission},
      {EPERM, Code::kPermission},
      {ENOSPC, Code::kNoSpace},
      {EDQUOT, Code::kNoSpace},
      {ENAMETOOLONG, Code::kNameTooLong},
      {ETIMEDOUT, Code::kTimeout},
      {EAGAIN, Code::kTimeout},
      {ECONNREFUSED, Code::kUnavailable},
      {ECONNRESET, Code::kUnavailable},
      {EPIPE, Code::kUnavailable},
      {EHOSTUNREACH, Code::kUnavailable},
      {ENETUNREACH, Code::kUnavailable},
      {EFBIG, Code::kTooLarge},
      {EIO, Code::kIoError},
      {EBADF, Code::kIoError},
  };
  for (const Case& c : cases) {
    CAPTURE(c.err);
    Status s = FromErrno(c.err, "open /x");
    CHECK(s.code() == c.code);
    if (!s.ok()) CHECK(s.message().rfind("open /x: ", 0) == 0);
  }
}

TEST_CASE("holds either a value or an error in a Result") {
  Result<int> good = 7;
  REQUIRE(good.ok());
  CHECK(*good == 7);
  CHECK(good.status().ok());

  Result<int> bad = Status::Corrupt("bad");
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().code() == Code::kCorrupt);
  CHECK(bad.status().message() == "bad");
}

Result<int> Half(int v) {
  if (v % 2 != 0) return Status::Invalid("odd");
  return v / 2;
}
Result<int> Quarter(int v) {
  DFS_ASSIGN_OR_RETURN(int h, Half(v));
  DFS_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}
Status CheckEven(int v) {
  DFS_RETURN_IF_ERROR(Half(v).status());
  return Status::Ok();
}

TEST_CASE("propagates errors through the DFS_ASSIGN_OR_RETURN and DFS_RETURN_IF_ERROR macros") {
  REQUIRE(Quarter(8).ok());
  CHECK(*Quarter(8) == 2);
  CHECK(Quarter(6).status().code() == Code::kInvalidArgument);
  CHECK(Quarter(5).status().message() == "odd");
  CHECK(CheckEven(4).ok());
  CHECK(CheckEven(3).code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace dfs
