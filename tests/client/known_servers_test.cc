// Unit tests of the known-servers file (trust on first use), without servers.
#include "fuse_client/client/known_servers.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>

#include "shared/util/fd.h"
#include "shared/util/log.h"

namespace dfs::client {
namespace {

// A fresh folder, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dfs-known-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

ServerAddress Server(const std::string& name, uint16_t port) {
  ServerAddress a;
  a.name = name;
  a.host = "127.0.0.1";
  a.port = port;
  return a;
}

TEST_CASE("remembers the first key of a server and refuses another one later") {
  SetupLogging(spdlog::level::off);
  ScratchDir dir;
  const std::string file = dir / "known_servers";
  {
    KnownServers trust(file);
    CHECK(trust.Check(Server("DFS1", 7001), "SHA256:first").ok());
    CHECK(trust.Check(Server("DFS1", 7001), "SHA256:first").ok());
  }
  KnownServers later(file);  // a new process reads the file
  CHECK(later.Check(Server("DFS1", 7001), "SHA256:first").ok());
  const Status changed = later.Check(Server("DFS1", 7001), "SHA256:other");
  CHECK(changed.code() == Code::kUntrusted);
  CHECK(later.Check(Server("DFS2", 7002), "SHA256:second").ok());
}

TEST_CASE("a server whose key is known is not held up while another one waits for the file") {
  SetupLogging(spdlog::level::off);
  ScratchDir dir;
  const std::string file = dir / "known_servers";
  KnownServers trust(file);
  REQUIRE(trust.Check(Server("DFS1", 7001), "SHA256:first").ok());

  // Another process (here: another open file description) holds the file's
  // lock, so the first connection to DFS2 waits in flock(2).
  UniqueFd holder(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  REQUIRE(holder.valid());
  REQUIRE(::flock(holder.get(), LOCK_EX) == 0);
  auto waiting = std::async(std::launch::async,
                            [&] { return trust.Check(Server("DFS2", 7002), "SHA256:second"); });
  CHECK(waiting.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);

  // A connection to DFS1 meanwhile needs no file and must not wait.
  auto known = std::async(std::launch::async,
                          [&] { return trust.Check(Server("DFS1", 7001), "SHA256:first"); });
  const bool prompt = known.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
  ::flock(holder.get(), LOCK_UN);
  CHECK(prompt);
  CHECK(known.get().ok());
  CHECK(waiting.get().ok());
}

}  // namespace
}  // namespace dfs::client
