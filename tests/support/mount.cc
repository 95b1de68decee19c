#include "tests/support/mount.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/cluster.h"

namespace dfs::testing {

using Clock = std::chrono::steady_clock;

std::string FindFusermount() {
  for (const char* p : {"/usr/bin/fusermount3", "/bin/fusermount3", "/usr/local/bin/fusermount3"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

void RequireFuse() {
  std::string reason;
  if (::access("/dev/fuse", R_OK | W_OK) != 0)
    reason = std::string("/dev/fuse is not usable: ") + std::strerror(errno);
  else if (FindFusermount().empty())
    reason = "fusermount3 is not installed";
  if (reason.empty()) return;
  std::printf("SKIP: FUSE mount tests need FUSE: %s\n", reason.c_str());
  std::fflush(stdout);
  std::_Exit(77);
}

bool IsDfsMount(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mountpoint;
    fields >> id >> parent >> dev >> root >> mountpoint;
    if (mountpoint != dir) continue;
    auto dash = line.find(" - ");
    if (dash != std::string::npos && line.compare(dash + 3, 11, "fuse.dfcfs ") == 0) return true;
  }
  return false;
}

Mount::Mount(const std::string& conf, const std::string& dir, std::vector<std::string> extra)
    : dir_(dir), log_(dir + ".log") {
  ::mkdir(dir.c_str(), 0755);
  std::vector<std::string> args = {BinaryPath("DFCFS"), conf,   dir,           "-f",
                                   "--log-level",       "info", "--spool-dir", spool_dir()};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!IsDfsMount(dir_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("dfcfs exited before mounting: " + Log());
    }
    if (Clock::now() > deadline) {
      Unmount();
      throw std::runtime_error("dfcfs did not mount within 10 s: " + Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string Mount::Log() const {
  try {
    return ReadFile(log_);
  } catch (const std::exception&) {
    return "";
  }
}

int Mount::Unmount() {
  int code = -1;
  if (pid_ > 0) {
    Run({FindFusermount(), "-u", dir_}, "", 20);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (WIFEXITED(status)) code = WEXITSTATUS(status);
    pid_ = -1;
  }
  if (IsDfsMount(dir_)) Run({FindFusermount(), "-uz", dir_}, "", 20);
  return code;
}

}  // namespace dfs::testing
