// Unit tests of the mount's FUSE-free pieces: Status -> errno, path helpers,
// the listing/lookup cache and spool files.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fuse_client/fuse/meta_cache.h"
#include "fuse_client/fuse/paths.h"
#include "fuse_client/fuse/spool.h"
#include "fuse_client/fuse/status_errno.h"

namespace dfs::fuse {
namespace {

client::Entry FileEntry(const std::string& name, uint64_t size) {
  client::Entry e;
  e.name = name;
  e.file.name = name;
  e.file.exists = true;
  e.file.newest.file_size = size;
  e.file.holders = {{0}, {1}, {2}, {3}};
  return e;
}

std::shared_ptr<const client::Listing> ListingOf(std::vector<client::Entry> entries) {
  auto l = std::make_shared<client::Listing>();
  l->entries.assign(std::make_move_iterator(entries.begin()),
                    std::make_move_iterator(entries.end()));
  return l;
}

TEST_CASE("ToErrno maps every status code to the errno tools expect") {
  struct Case {
    Code code;
    int err;
  };
  const Case cases[] = {
      {Code::kOk, 0},
      {Code::kNotFound, ENOENT},
      {Code::kExists, EEXIST},
      {Code::kNotEmpty, ENOTEMPTY},
      {Code::kNotDir, ENOTDIR},
      {Code::kIsDir, EISDIR},
      {Code::kInvalidArgument, EINVAL},
      {Code::kNameTooLong, ENAMETOOLONG},
      {Code::kPermission, EACCES},
      {Code::kAuthFailed, EACCES},
      {Code::kNoSpace, ENOSPC},
      {Code::kTooLarge, EFBIG},
      {Code::kIncomplete, EIO},
      {Code::kCorrupt, EIO},
      {Code::kIoError, EIO},
      {Code::kProtocol, EIO},
      {Code::kUnavailable, EIO},
      {Code::kTimeout, EIO},
  };
  for (const auto& c : cases) {
    CAPTURE(CodeName(c.code));
    CHECK(ToErrno(Status(c.code, "x")) == c.err);
  }
}

TEST_CASE("RelativePath turns FUSE paths into client paths") {
  CHECK(RelativePath("/") == "");
  CHECK(RelativePath("") == "");
  CHECK(RelativePath("/a") == "a");
  CHECK(RelativePath("/a/b/") == "a/b");
  CHECK(RelativePath("//a//b") == "a/b");
  CHECK(RelativePath("a/b") == "a/b");
}

TEST_CASE("ParentOf, BaseOf and IsUnder split paths") {
  CHECK(ParentOf("a/b/c") == "a/b");
  CHECK(ParentOf("c") == "");
  CHECK(BaseOf("a/b/c") == "c");
  CHECK(BaseOf("c") == "c");
  CHECK(IsUnder("a/b", "a"));
  CHECK(IsUnder("a", "a"));
  CHECK_FALSE(IsUnder("ab", "a"));
  CHECK_FALSE(IsUnder("a", "a/b"));
  CHECK(IsUnder("x", ""));
}

TEST_CASE("StripIncompleteSuffix finds the real name of an incomplete file") {
  CHECK(StripIncompleteSuffix("x.txt [incomplete]") == std::optional<std::string>("x.txt"));
  CHECK(StripIncompleteSuffix("d/x [incomplete]") == std::optional<std::string>("d/x"));
  CHECK_FALSE(StripIncompleteSuffix("x.txt").has_value());
  CHECK_FALSE(StripIncompleteSuffix(" [incomplete]").has_value());
  CHECK_FALSE(StripIncompleteSuffix("d/ [incomplete]").has_value());
}

TEST_CASE("MetaCache answers lookups from a fresh listing of the parent") {
  MetaCache cache(std::chrono::seconds(10));
  cache.PutListing("d", ListingOf({FileEntry("a", 1), FileEntry("b", 2)}), cache.Begin());
  auto b = cache.GetEntry("d/b");
  REQUIRE(b.has_value());
  CHECK(b->size() == 2);
  CHECK_FALSE(cache.GetEntry("d/c").has_value());
  CHECK_FALSE(cache.GetEntry("e/a").has_value());
  REQUIRE(cache.GetListing("d") != nullptr);
}

TEST_CASE("MetaCache drops a listing only when it is big") {
  MetaCache cache(std::chrono::seconds(10));
  cache.PutListing("small", ListingOf({FileEntry("a", 1)}), cache.Begin());
  CHECK_FALSE(cache.DropBigListing("small"));
  CHECK(cache.GetListing("small") != nullptr);
  CHECK_FALSE(cache.DropBigListing("absent"));
  std::vector<client::Entry> many;
  for (size_t i = 0; i < MetaCache::kBigListing; ++i)
    many.push_back(FileEntry(std::to_string(i), 1));
  auto big = ListingOf(std::move(many));
  std::weak_ptr<const client::Listing> watch = big;
  cache.PutListing("big", std::move(big), cache.Begin());
  REQUIRE(cache.GetListing("big") != nullptr);
  CHECK(cache.DropBigListing("big"));
  CHECK(cache.GetListing("big") == nullptr);
  CHECK_FALSE(cache.GetEntry("big/1").has_value());
  CHECK(watch.expired());  // freed, not only forgotten
}

TEST_CASE("MetaCache forgets a path, its subtree and its parent's listing on Invalidate") {
  MetaCache cache(std::chrono::seconds(10));
  cache.PutListing("", ListingOf({FileEntry("d", 0)}), cache.Begin());
  cache.PutListing("d", ListingOf({FileEntry("a", 1)}), cache.Begin());
  cache.PutEntry("d/a", FileEntry("a", 1), cache.Begin());
  cache.PutEntry("d-x", FileEntry("d-x", 1), cache.Begin());
  cache.Invalidate("d");
  CHECK(cache.GetListing("") == nullptr);
  CHECK(cache.GetListing("d") == nullptr);
  CHECK_FALSE(cache.GetEntry("d/a").has_value());
  CHECK(cache.GetEntry("d-x").has_value());
}

TEST_CASE("MetaCache drops a result fetched before an invalidation") {
  MetaCache cache(std::chrono::seconds(10));
  auto token = cache.Begin();
  cache.Invalidate("x");
  cache.PutEntry("a", FileEntry("a", 1), token);
  cache.PutListing("", ListingOf({FileEntry("a", 1)}), token);
  CHECK_FALSE(cache.GetEntry("a").has_value());
  CHECK(cache.GetListing("") == nullptr);
}

TEST_CASE("MetaCache knows a name is absent from a fresh listing or a failed lookup") {
  MetaCache cache(std::chrono::seconds(10));
  CHECK_FALSE(cache.KnownAbsent("d/x"));  // nothing known yet
  cache.PutListing("d", ListingOf({FileEntry("a", 1)}), cache.Begin());
  CHECK(cache.KnownAbsent("d/x"));
  CHECK_FALSE(cache.KnownAbsent("d/a"));
  CHECK_FALSE(cache.KnownAbsent("e/x"));
  cache.PutAbsent("e/x", cache.Begin());
  CHECK(cache.KnownAbsent("e/x"));
  CHECK_FALSE(cache.KnownAbsent(""));  // the root always exists
}

TEST_CASE("MetaCache forgets only the changed name in its folder's listing") {
  MetaCache cache(std::chrono::seconds(10));
  cache.PutListing("d", ListingOf({FileEntry("a", 1), FileEntry("b", 2)}), cache.Begin());
  cache.PutAbsent("d/x", cache.Begin());
  cache.Invalidate("d/x");  // created here
  CHECK_FALSE(cache.KnownAbsent("d/x"));
  CHECK_FALSE(cache.GetEntry("d/x").has_value());
  cache.Invalidate("d/a");  // deleted or rewritten here
  CHECK_FALSE(cache.GetEntry("d/a").has_value());
  CHECK_FALSE(cache.KnownAbsent("d/a"));
  // The other names still come from the listing...
  REQUIRE(cache.GetEntry("d/b").has_value());
  CHECK(cache.KnownAbsent("d/y"));
  // ...but readdir must not see the listing from before the changes.
  CHECK(cache.GetListing("d") == nullptr);
  CHECK(cache.WorthRelisting("d"));
  CHECK_FALSE(cache.WorthRelisting("e"));
}

TEST_CASE("MetaCache forgets absent names after the TTL") {
  MetaCache cache(std::chrono::milliseconds(20));
  cache.PutAbsent("a", cache.Begin());
  CHECK(cache.KnownAbsent("a"));
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  CHECK_FALSE(cache.KnownAbsent("a"));
}

TEST_CASE("MetaCache expires entries after the TTL") {
  MetaCache cache(std::chrono::milliseconds(20));
  cache.PutEntry("a", FileEntry("a", 1), cache.Begin());
  CHECK(cache.GetEntry("a").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  CHECK_FALSE(cache.GetEntry("a").has_value());
}

TEST_CASE("MetaCache gives recent entries past the TTL, never a name changed here") {
  MetaCache cache(std::chrono::milliseconds(20));
  cache.PutListing("d", ListingOf({FileEntry("a", 1), FileEntry("b", 2)}), cache.Begin());
  cache.PutEntry("e", FileEntry("e", 3), cache.Begin());
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  CHECK_FALSE(cache.GetEntry("d/a").has_value());
  const auto long_ago = std::chrono::seconds(30);
  REQUIRE(cache.GetRecentEntry("d/a", long_ago).has_value());
  CHECK(cache.GetRecentEntry("d/a", long_ago)->size() == 1);
  CHECK(cache.GetRecentEntry("e", long_ago).has_value());
  CHECK_FALSE(cache.GetRecentEntry("d/zz", long_ago).has_value());
  // Too old for the caller's bound.
  CHECK_FALSE(cache.GetRecentEntry("d/a", std::chrono::milliseconds(30)).has_value());
  // A name changed in this mount since the listing is not taken from it.
  cache.Invalidate("d/b");
  CHECK_FALSE(cache.GetRecentEntry("d/b", long_ago).has_value());
  CHECK(cache.GetRecentEntry("d/a", long_ago).has_value());
}

TEST_CASE("Spool files are nameless and private") {
  char tmpl[] = "/tmp/dfcfs-spool-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string dir = std::string(tmpl) + "/spool";
  {
    auto spool = Spool::Open(dir, /*strict=*/true);
    REQUIRE(spool.ok());
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    auto fd = spool->Create();
    REQUIRE(fd.ok());
    CHECK(::pwrite(fd->get(), "hello", 5, 0) == 5);
    char buf[5];
    CHECK(::pread(fd->get(), buf, 5, 0) == 5);
    CHECK(std::string(buf, 5) == "hello");
    CHECK(std::system(("test -z \"$(ls -A " + dir + ")\"").c_str()) == 0);
  }
  CHECK(::rmdir(dir.c_str()) == 0);
  CHECK(::rmdir(tmpl) == 0);
}

TEST_CASE("Spool refuses a file where its directory should be") {
  char tmpl[] = "/tmp/dfcfs-spool-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string file = std::string(tmpl) + "/f";
  REQUIRE(std::system(("touch " + file).c_str()) == 0);
  CHECK_FALSE(Spool::Open(file, true).ok());
  CHECK(::unlink(file.c_str()) == 0);
  CHECK(::rmdir(tmpl) == 0);
}

}  // namespace
}  // namespace dfs::fuse
