// A real dfcfs mount for tests (suites 'fuse' and 'faults'): dfcfs runs in
// the foreground as the test's child; the destructor always unmounts.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace dfs::testing {

// The fusermount3 binary, or "" when it is not installed.
std::string FindFusermount();
// Exits with 77 (meson's SKIP) when this machine cannot mount FUSE file systems.
void RequireFuse();
// Whether `dir` is a mount point of a dfs mount (from /proc/self/mountinfo).
bool IsDfsMount(const std::string& dir);

// dfcfs running in the foreground as our child, mounted on `dir`. The
// destructor always unmounts: fusermount3 -u, wait, SIGKILL, fusermount3 -uz.
class Mount {
 public:
  // Throws std::runtime_error when dfcfs does not mount within 10 s.
  Mount(const std::string& conf, const std::string& dir, std::vector<std::string> extra = {});
  ~Mount() { Unmount(); }
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

  const std::string& dir() const { return dir_; }
  std::string spool_dir() const { return dir_ + ".spool"; }
  std::string operator/(const std::string& name) const { return dir_ + "/" + name; }
  pid_t pid() const { return pid_; }
  // What dfcfs wrote to stdout and stderr so far.
  std::string Log() const;
  // Unmounts and reaps the daemon; returns its exit code (-1 if it had to be killed).
  int Unmount();

 private:
  std::string dir_;
  std::string log_;
  pid_t pid_ = -1;
};

}  // namespace dfs::testing
