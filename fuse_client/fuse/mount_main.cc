// dfcfs start-up and shutdown (see mount_main.h).

// GCC 12 reports a false "potential null pointer dereference" deep inside
// CLI11's string splitting (inlined std::string code); it must be silenced
// before <string> is first read for the pragma to reach it.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "fuse_client/fuse/mount_main.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "dfs_version.h"
#include "fuse_client/client/client.h"
#include "fuse_client/fuse/fs.h"
#include "fuse_client/fuse/fuse_ops.h"
#include "fuse_client/fuse/spool.h"
#include "shared/config/config.h"
#include "shared/protocol/auth.h"
#include "shared/util/fd.h"
#include "shared/util/log.h"

namespace dfs::fuse {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr unsigned kMaxLoopThreads = 32;

struct CommandLine {
  std::string config_path;
  std::string mountpoint;
  bool foreground = false;
  bool debug = false;
  bool single_thread = false;
  std::vector<std::string> fuse_options;  // each "-o" argument, comma-separated inside
  bool no_mtab = false;
  std::string log_level = "warn";
  std::string spool_dir;
};

int Fail(int code, const std::string& message) {
  std::cerr << "dfcfs: " << message << "\n";
  return code;
}

// Returns -1 to go on, or the exit code (help printed, or a usage error).
int ParseCommandLine(int argc, char** argv, CommandLine* cl) {
  CLI::App app{
      "dfcfs: mounts your files of the dfs distributed file system as a folder.\n"
      "Files are split into pieces, encrypted on this machine and stored on the servers\n"
      "named in CONF; any one server may be down. Unmount with `fusermount3 -u MOUNTPOINT`\n"
      "(or Ctrl-C with -f).",
      "dfcfs"};
  app.set_version_flag("--version", std::string("dfcfs ") + DFS_VERSION);
  app.add_option("CONF", cl->config_path, "client config (Server/Username/Password lines)")
      ->required();
  app.add_option("MOUNTPOINT", cl->mountpoint, "an existing, empty folder")->required();
  app.add_flag("-f,--foreground", cl->foreground, "stay in the foreground (log to stderr)");
  app.add_flag("-d,--debug", cl->debug, "print every FUSE request (implies -f)");
  app.add_flag("-s,--single-thread", cl->single_thread, "handle one request at a time");
  // mount(8) passes -n (no mtab) to a helper; there is no mtab to skip.
  app.add_flag("-n", cl->no_mtab, "(for mount(8): ignored)");
  app.add_option("-o", cl->fuse_options,
                 "mount options, comma-separated: nonempty (mount over a non-empty folder),\n"
                 "allow_other (other users may enter; the kernel then checks modes and\n"
                 "owners: default_permissions; on by default for root), private (root's\n"
                 "mount for root alone), ro, and the other FUSE options; the options of\n"
                 "fstab lines for mount(8) (defaults, _netdev, nofail, user, x-systemd.*)\n"
                 "are accepted and left to mount")
      ->expected(1)
      ->take_all();
  app.add_option("--log-level", cl->log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str();
  app.add_option(
      "--spool-dir", cl->spool_dir,
      "where files being written wait for their upload (default " + Spool::DefaultDir() + ")");
  app.footer(
      "Example: dfcfs ~/dfc.conf ~/dfs && ls ~/dfs && fusermount3 -u ~/dfs\n"
      "Exit codes: 0 mounted (or unmounted cleanly with -f), 1 failure, 2 usage or config "
      "error.\n");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::cout << "dfcfs " << DFS_VERSION << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return Fail(kExitUsage, std::string(e.what()) + " (see dfcfs --help)");
  }
  if (cl->debug) {
    cl->foreground = true;
    if (app.count("--log-level") == 0) cl->log_level = "debug";
  }
  return -1;
}

std::vector<std::string> SplitOptions(const std::vector<std::string>& groups) {
  std::vector<std::string> out;
  for (const auto& group : groups) {
    size_t start = 0;
    while (start <= group.size()) {
      size_t comma = group.find(',', start);
      if (comma == std::string::npos) comma = group.size();
      if (comma > start) out.push_back(group.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

// Returns -1 when the mountpoint is usable, else the exit code (message printed).
// Detaches the dead FUSE mount on `mountpoint` (its daemon died: every access
// fails with ENOTCONN) the way its owner would: fusermount3 -u -z, which
// also works for a user's own mounts; umount2(MNT_DETACH) as a fallback for
// root. True once the mountpoint answers again.
bool DetachDeadMount(const std::string& mountpoint) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, STDERR_FILENO);
    ::execlp("fusermount3", "fusermount3", "-u", "-z", "--", mountpoint.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (pid > 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) == 0) return true;
  if (errno == ENOTCONN && ::umount2(mountpoint.c_str(), MNT_DETACH) == 0)
    return ::stat(mountpoint.c_str(), &st) == 0;
  return false;
}

int CheckMountpoint(const std::string& mountpoint, bool nonempty) {
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) != 0 && errno == ENOTCONN) {
    // The mount of a dfcfs that died (kill -9, OOM): replace it.
    if (!DetachDeadMount(mountpoint))
      return Fail(kExitFailure, "mountpoint " + mountpoint +
                                    ": Transport endpoint is not connected (a dead mount) and "
                                    "fusermount3 -u -z could not detach it");
    Logger("fuse")->warn("{}: detached the dead mount of a dfcfs that had stopped", mountpoint);
  }
  if (::stat(mountpoint.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return Fail(kExitFailure, "mountpoint " + mountpoint + " does not exist");
    return Fail(kExitFailure, "mountpoint " + mountpoint + ": " + std::strerror(err));
  }
  if (!S_ISDIR(st.st_mode))
    return Fail(kExitFailure, "mountpoint " + mountpoint + " is not a directory");
  if (nonempty) return -1;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(mountpoint.c_str()), ::closedir);
  if (!dir) return Fail(kExitFailure, "mountpoint " + mountpoint + ": " + std::strerror(errno));
  while (const dirent* d = ::readdir(dir.get())) {
    if (std::strcmp(d->d_name, ".") != 0 && std::strcmp(d->d_name, "..") != 0)
      return Fail(kExitFailure,
                  "mountpoint " + mountpoint + " is not empty (use -o nonempty to mount over it)");
  }
  return -1;
}

// Forks; the parent waits until the child reports the mount live (exit 0) or
// dies (its exit code). Returns the write end of the report pipe in the child.
UniqueFd StartDaemon() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::cerr << "dfcfs: pipe: " << std::strerror(errno) << "\n";
    std::exit(kExitFailure);
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "dfcfs: fork: " << std::strerror(errno) << "\n";
    std::exit(kExitFailure);
  }
  if (pid > 0) {
    ::close(fds[1]);
    char ready = 0;
    ssize_t n;
    do {
      n = ::read(fds[0], &ready, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1) ::_exit(0);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure);
  }
  ::close(fds[0]);
  return UniqueFd(fds[1]);
}

// In the daemon once the mount is live: detach from the terminal and let the parent exit 0.
void FinishDaemon(UniqueFd ready) {
  ::setsid();
  if (::chdir("/") != 0) {
    // Nothing depends on the working directory; the mountpoint is absolute.
  }
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null) {
    ::dup2(null.get(), STDIN_FILENO);
    ::dup2(null.get(), STDOUT_FILENO);
    ::dup2(null.get(), STDERR_FILENO);
  }
  char ok = 0;
  ssize_t ignored = ::write(ready.get(), &ok, 1);
  (void)ignored;
}

struct FuseDeleter {
  void operator()(struct fuse* f) const { fuse_destroy(f); }
};
struct LoopConfigDeleter {
  void operator()(fuse_loop_config* c) const { fuse_loop_cfg_destroy(c); }
};
// Options of an fstab line or a mount unit that mean something to mount(8),
// systemd or mount.fuse3 only ("defaults,_netdev,nofail,user,x-systemd.*");
// dfcfs run as `mount -t fuse.dfcfs` sees them and leaves them alone.
bool IsMountCommandOption(std::string_view opt) {
  for (std::string_view exact : {"defaults", "_netdev", "nofail", "auto", "noauto", "user", "users",
                                 "nouser", "owner", "group"})
    if (opt == exact) return true;
  return opt.starts_with("x-") || opt.starts_with("comment=");
}

struct ArgsDeleter {
  void operator()(fuse_args* a) const { fuse_opt_free_args(a); }
};

std::string Sanitize(std::string s) {
  for (char& c : s)
    if (c == ',' || c == '\\' || c == ' ') c = '_';
  return s;
}

}  // namespace

int RunDfcfs(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  // Two malloc arenas, not glibc's 8 per core: a big listing is built on the
  // client's workers and freed on FUSE threads, and with an arena per thread
  // the next one is built beside the freed memory instead of in it (100,000
  // names: 133 MB peak instead of 96 on the second `ls -l`). MALLOC_ARENA_MAX
  // in the environment still wins.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) ::mallopt(M_ARENA_MAX, 2);
  CommandLine cl;
  if (int rc = ParseCommandLine(argc, argv, &cl); rc >= 0) return rc;
  try {
    SetupLogging(ParseLogLevel(cl.log_level));
  } catch (const std::exception& e) {
    return Fail(kExitUsage, e.what());
  }
  auto log = Logger("fuse");

  auto config = LoadClientConfig(cl.config_path);
  if (!config.ok()) return Fail(kExitUsage, config.status().message());

  bool nonempty = false;
  // Other users may enter a mount made by root unless it is -o private; the
  // kernel then checks modes and owners (default_permissions), as it does
  // whenever allow_other is on.
  bool allow_other = ::geteuid() == 0;
  bool default_permissions = false;
  std::vector<std::string> fuse_options;
  for (auto& opt : SplitOptions(cl.fuse_options)) {
    if (opt == "nonempty") {
      nonempty = true;  // libfuse 3 dropped the option; the check is ours
    } else if (opt == "private") {
      allow_other = false;
    } else if (opt == "allow_other") {
      allow_other = true;
    } else if (IsMountCommandOption(opt)) {
      continue;  // for mount(8) and systemd (fstab), not for the file system
    } else {
      if (opt == "default_permissions") default_permissions = true;
      fuse_options.push_back(std::move(opt));
    }
  }
  if (allow_other) {
    fuse_options.emplace_back("allow_other");
    if (!default_permissions) fuse_options.emplace_back("default_permissions");
    default_permissions = true;
  }
  if (int rc = CheckMountpoint(cl.mountpoint, nonempty); rc >= 0) return rc;
  char resolved[PATH_MAX];
  if (!::realpath(cl.mountpoint.c_str(), resolved))
    return Fail(kExitFailure, "mountpoint " + cl.mountpoint + ": " + std::strerror(errno));
  const std::string mountpoint = resolved;

  const bool default_spool = cl.spool_dir.empty();
  auto spool = Spool::Open(default_spool ? Spool::DefaultDir() : cl.spool_dir, default_spool);
  if (!spool.ok()) return Fail(kExitFailure, spool.status().message());

  if (::access("/dev/fuse", F_OK) != 0)
    return Fail(kExitFailure, std::string("FUSE is not available: /dev/fuse: ") +
                                  std::strerror(errno) + " (modprobe fuse; install fuse3)");

  UniqueFd ready;
  if (!cl.foreground) ready = StartDaemon();

  try {
    const std::string username = config->username;
    client::Client client(std::move(config).value());
    Status ping = client.Ping();
    if (ping.code() == Code::kAuthFailed) {
      std::cerr << kAuthFailedMessage << "\n";
      return kExitFailure;
    }
    if (!ping.ok())
      std::cerr << "dfcfs: warning: " << ping.ToString()
                << "; mounting anyway, files appear when servers answer\n";

    FsOptions fs_options;
    fs_options.uid = ::getuid();
    fs_options.gid = ::getgid();
    fs_options.kernel_checks_permissions = default_permissions;
    // Set once the session exists, before the first request can arrive.
    std::atomic<struct fuse*> fuse_handle{nullptr};
    fs_options.forget_kernel_cache = [&fuse_handle](const std::string& fuse_path) {
      if (struct fuse* f = fuse_handle.load()) (void)fuse_invalidate_path(f, fuse_path.c_str());
    };
    FileSystem fs(&client, std::move(spool).value(), fs_options);

    std::vector<std::string> args = {"dfcfs", "-o",
                                     "fsname=dfs:" + Sanitize(username) + ",subtype=dfcfs"};
    for (const auto& opt : fuse_options) {
      args.push_back("-o");
      args.push_back(opt);
    }
    if (cl.debug) args.push_back("-d");
    std::vector<char*> argv_fuse;
    for (auto& a : args) argv_fuse.push_back(a.data());
    argv_fuse.push_back(nullptr);
    fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(args.size()), argv_fuse.data());
    std::unique_ptr<fuse_args, ArgsDeleter> fargs_guard(&fargs);

    const fuse_operations ops = MakeOperations();
    std::unique_ptr<struct fuse, FuseDeleter> session(fuse_new(&fargs, &ops, sizeof ops, &fs));
    if (!session) return Fail(kExitUsage, "bad mount options (see above)");
    fuse_handle = session.get();
    if (fuse_mount(session.get(), mountpoint.c_str()) != 0)
      return Fail(kExitFailure, "cannot mount on " + mountpoint + " (is FUSE available?)");
    fuse_session* se = fuse_get_session(session.get());
    if (fuse_set_signal_handlers(se) != 0) {
      fuse_unmount(session.get());
      return Fail(kExitFailure, "cannot install signal handlers");
    }
    log->info("mounted {} on {}", username, mountpoint);
    // What servers miss while they are down is handed to them once they are back.
    client.StartHandOffThread();
    if (ready) FinishDaemon(std::move(ready));

    int rc = 0;
    if (cl.single_thread) {
      rc = fuse_loop(session.get());
    } else {
      std::unique_ptr<fuse_loop_config, LoopConfigDeleter> loop(fuse_loop_cfg_create());
      fuse_loop_cfg_set_clone_fd(loop.get(), 0);
      fuse_loop_cfg_set_max_threads(loop.get(), kMaxLoopThreads);
      rc = fuse_loop_mt(session.get(), loop.get());
    }
    fuse_remove_signal_handlers(se);
    fuse_unmount(session.get());
    session.reset();
    log->info("unmounted {}; traffic: received {} bytes, sent {} bytes", mountpoint,
              client.pool().traffic().received.load(), client.pool().traffic().sent.load());
    // The loop returns the number of the signal that ended it (a clean exit)
    // or a negative errno.
    return rc < 0 ? kExitFailure : 0;
  } catch (const std::exception& e) {
    return Fail(kExitFailure, e.what());
  }
}

}  // namespace dfs::fuse
