// Helpers shared by the integration tests: clients on a test cluster, local
// files, and running the dfc binary.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "fuse_client/client/client.h"
#include "shared/util/fd.h"
#include "tests/support/cluster.h"

namespace dfs::testing {

// Short timeouts keep fault tests quick; they are still far above loopback latency.
inline client::Options FastOptions() {
  client::Options o;
  o.connect_timeout = Millis(1000);
  o.request_timeout = Millis(2000);
  o.data_timeout = Millis(5000);
  o.backoff = Millis(2000);
  return o;
}

inline std::unique_ptr<client::Client> MakeClient(const Cluster& c,
                                                  const std::string& user = "Alice",
                                                  const std::string& password = "SimplePassword") {
  return std::make_unique<client::Client>(c.ClientConfigFor(user, password), FastOptions());
}

// Uploads `content` as `remote` through a local temp file.
inline Result<client::PutResult> PutBytes(client::Client& c, const std::string& remote,
                                          const std::string& content) {
  TempDir tmp("dfs-put");
  const std::string path = tmp / "src";
  WriteFile(path, content);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return c.Put(fd.get(), remote, client::FileAttrs{});
}

// Downloads `remote` and returns its bytes (or the failure).
inline Result<std::string> GetBytes(client::Client& c, const std::string& remote) {
  TempDir tmp("dfs-get");
  const std::string path = tmp / "dst";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  Status s = c.Get(remote, fd.get());
  if (!s.ok()) return s;
  return ReadFile(path);
}

// Runs `dfc CONF words...`.
// dfc keeps the result of its last heal under XDG_STATE_HOME: the folder of
// `conf`'s "state", so that tests leave the user's home alone.
inline CommandResult Dfc(const std::string& conf, std::vector<std::string> words,
                         const std::string& cwd = "", const std::string& stdin_data = "") {
  const std::string dir = conf.substr(0, conf.find_last_of('/') + 1);
  std::vector<std::string> argv = {"/usr/bin/env", "XDG_STATE_HOME=" + dir + "state",
                                   BinaryPath("DFC"), conf};
  argv.insert(argv.end(), words.begin(), words.end());
  return Run(argv, stdin_data, 120, cwd);
}

}  // namespace dfs::testing
