// Test fixture: a real cluster of dfs_server processes on 127.0.0.1, each in
// its own temp folder on a port the kernel picked, cleaned up on destruction
// (also when a test fails). Binaries come from the environment variables
// DFS_SERVER, DFC and DFCFS, which tests/meson.build sets.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shared/config/config.h"

namespace dfs::testing {

// A fresh folder under $TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "dfs-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Path of a binary under test, from an environment variable (DFS_SERVER, DFC, DFCFS).
std::string BinaryPath(const char* env_name);

// Writes `content` to `path` (truncating); throws on failure.
void WriteFile(const std::string& path, const std::string& content);
// Reads a whole file; throws on failure.
std::string ReadFile(const std::string& path);
// `n` reproducible pseudo-random bytes.
std::string RandomBytes(size_t n, uint64_t seed);

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;     // stdout
  std::string err;     // stderr
  double seconds = 0;
};
// Runs argv (no shell) with an optional stdin and a timeout; kills it (SIGKILL) on timeout.
CommandResult Run(const std::vector<std::string>& argv, const std::string& stdin_data = "",
                  int timeout_seconds = 60, const std::string& cwd = "");

class Cluster {
 public:
  struct Options {
    int servers = 4;
    std::map<std::string, std::string> users = {{"Alice", "SimplePassword"},
                                                {"Bob", "BobPassword"}};
    std::vector<std::string> extra_args;  // more dfs_server arguments for every server
  };
  Cluster();
  explicit Cluster(Options options);
  ~Cluster();  // SIGKILLs every server still running, removes the folders
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  int size() const { return static_cast<int>(servers_.size()); }
  const std::string& root() const { return root_.path(); }
  // The dfs.conf every server reads (rewrite it, then Restart, to change users).
  const std::string& server_conf() const { return server_conf_; }
  // The storage folder of server i (0-based), e.g. root/DFS1.
  std::string server_dir(int i) const;
  uint16_t port(int i) const { return servers_[i].port; }
  // The TLS key fingerprint server i printed at start ("SHA256:...").
  const std::string& fingerprint(int i) const { return servers_[i].fingerprint; }
  bool running(int i) const { return servers_[i].pid > 0; }
  // What server i printed on stdout up to "listening on ..." when it started.
  const std::string& startup(int i) const { return servers_[i].startup; }

  void Kill(int i);             // SIGKILL and reap
  void Terminate(int i);        // SIGTERM, wait for a graceful exit; returns its status
  int TerminateStatus(int i);   // SIGTERM, wait, exit code (or -signal)
  void Pause(int i);            // SIGSTOP
  void Resume(int i);           // SIGCONT
  void Signal(int i, int sig);  // any signal (SIGHUP: read dfs.conf again)
  void Restart(int i);          // start again on the same port and folder
  // Restart, with the server run under `prefix` (e.g. {"/usr/sbin/ip",
  // "netns", "exec", NS}) and listening on `bind`. Restart() undoes it.
  void RestartIn(int i, const std::vector<std::string>& prefix, const std::string& bind);

  // A client config for the cluster with every server's key pinned
  // (Fingerprint lines), unless `pin` is false (then keys are remembered in
  // the cluster's own known-servers file, never the user's).
  ClientConfig ClientConfigFor(const std::string& user, const std::string& password,
                               bool pin = true) const;
  // Writes a dfc.conf for the user into the cluster folder and returns its path.
  std::string WriteClientConfig(const std::string& user, const std::string& password,
                                const std::string& file_name = "", bool pin = true) const;
  // Every hint file (DIR/.hints/USER/TARGET/ID) left on any server, as paths.
  std::vector<std::string> HintFiles() const;
  // The known-servers file configs made with pin = false use.
  std::string known_servers() const { return root_ / "known_servers"; }

 private:
  struct Server {
    std::string dir;
    uint16_t port = 0;
    pid_t pid = -1;
    std::string fingerprint;
    std::string startup;
  };
  void Start(int i, const std::vector<std::string>& prefix = {},
             const std::string& bind = "127.0.0.1");

  Options options_;
  TempDir root_;
  std::string server_conf_;
  std::vector<Server> servers_;
};

}  // namespace dfs::testing
