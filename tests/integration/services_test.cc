// Integration: what dfs runs as a service needs. dfs_server tells a service
// manager its state (sd_notify, to a socket of the test's own, as systemd's
// NOTIFY_SOCKET); the systemd units pass systemd-analyze verify with not a
// warning; `meson install` puts binaries, man pages, the unit, the sysusers
// file and the mount helper in place.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <poll.h>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "dfs_version.h"
#include "tests/integration/helpers.h"

namespace dfs::testing {
namespace {

namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The next datagram on `fd` within `seconds`, "" on timeout.
std::string NextState(int fd, int seconds) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, seconds * 1000) != 1) return "";
  char buf[512];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST_CASE("dfs_server reports ready, reloading and stopping to its service manager") {
  TempDir dir("dfs-notify");
  const std::string sock_path = dir / "notify";
  UniqueFd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(sock);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(sock_path.size() < sizeof addr.sun_path);
  std::copy(sock_path.begin(), sock_path.end(), addr.sun_path);
  REQUIRE(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string conf = dir / "dfs.conf";
  WriteFile(conf, "Alice SimplePassword\n");

  const std::string server = BinaryPath("DFS_SERVER");
  const std::string store = dir / "DFS1";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setenv("NOTIFY_SOCKET", sock_path.c_str(), 1);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(server.c_str(), server.c_str(), store.c_str(), "0", "-c", conf.c_str(), "--bind",
            "127.0.0.1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  CHECK(NextState(sock.get(), 20) == "READY=1");
  ::kill(pid, SIGHUP);
  CHECK(NextState(sock.get(), 20) == "RELOADING=1");
  CHECK(NextState(sock.get(), 20) == "READY=1");
  ::kill(pid, SIGTERM);
  CHECK(NextState(sock.get(), 20) == "STOPPING=1");
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("the systemd units pass systemd-analyze verify without a warning") {
  if (!fs::exists("/usr/bin/systemd-analyze")) {
    MESSAGE("SKIPPED: systemd-analyze is not installed (Debian package systemd)");
    return;
  }
  const std::string src = Env("DFS_SOURCE_ROOT");
  REQUIRE_FALSE(src.empty());
  TempDir dir("dfs-units");
  // The server unit as installed, with this build's binary in it (verify
  // checks that ExecStart can be run); instance DFS1.
  std::string unit = ReadFile(src + "/conf/systemd/dfs_server@.service.in");
  const std::string bindir = fs::path(BinaryPath("DFS_SERVER")).parent_path().string();
  for (size_t at = unit.find("@bindir@"); at != std::string::npos; at = unit.find("@bindir@"))
    unit.replace(at, 8, bindir);
  WriteFile(dir / "dfs_server@DFS1.service", unit);
  WriteFile(dir / "mnt-dfs.mount", ReadFile(src + "/conf/systemd/mnt-dfs.mount"));
  for (const char* name : {"dfs_server@DFS1.service", "mnt-dfs.mount"}) {
    CAPTURE(name);
    auto r = Run({"/usr/bin/systemd-analyze", "verify", "--man=no", dir / name});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    CHECK_MESSAGE(r.err.empty(), r.err);  // parse warnings do not change the exit code
  }
  // The server runs hardened: little exposure by systemd's own measure.
  auto sec = Run(
      {"/usr/bin/systemd-analyze", "security", "--offline=true", dir / "dfs_server@DFS1.service"});
  INFO(sec.out);
  const auto at = sec.out.find("Overall exposure level");
  REQUIRE(at != std::string::npos);
  const auto colon = sec.out.find(": ", at);
  REQUIRE(colon != std::string::npos);
  CHECK(std::stod(sec.out.substr(colon + 2)) <= 2.0);
}

TEST_CASE("meson install puts binaries, man pages, the unit and the mount helper in place") {
  const std::string build = Env("DFS_BUILD_ROOT");
  REQUIRE_FALSE(build.empty());
  TempDir dest("dfs-install");
  auto r = Run({"/usr/bin/env", "meson", "install", "-C", build, "--destdir", dest.path(),
                "--no-rebuild", "--quiet"},
               "", 120);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  // The prefix this build was configured with, under the destdir.
  fs::path root;
  for (const auto& e : fs::recursive_directory_iterator(dest.path()))
    if (e.path().filename() == "dfs_server" && e.path().parent_path().filename() == "bin")
      root = e.path().parent_path().parent_path();
  REQUIRE_FALSE(root.empty());
  for (const char* file : {"bin/dfs_server", "bin/dfc", "share/man/man8/dfs_server.8",
                           "share/man/man1/dfc.1", "lib/systemd/system/dfs_server@.service",
                           "lib/sysusers.d/dfs.conf", "share/doc/dfs/examples/mnt-dfs.mount"}) {
    CAPTURE(file);
    CHECK(fs::exists(root / file));
  }
  // dfcfs, its page and the mount helper when the build has FUSE.
  const bool fuse = !Env("DFCFS").empty();
  CHECK(fs::exists(root / "bin/dfcfs") == fuse);
  CHECK(fs::exists(root / "share/man/man8/dfcfs.8") == fuse);
  const fs::path helper = root / "sbin/mount.fuse.dfcfs";
  CHECK(fs::is_symlink(helper) == fuse);
  if (fuse) {
    CHECK(fs::read_symlink(helper) == "../bin/dfcfs");
    CHECK(fs::equivalent(fs::canonical(helper), root / "bin/dfcfs"));
  }
  // The unit runs the installed binary.
  const std::string unit = ReadFile(root / "lib/systemd/system/dfs_server@.service");
  const std::string prefix = "/" + fs::relative(root, dest.path()).string();
  CHECK(unit.find("ExecStart=" + prefix + "/bin/dfs_server ") != std::string::npos);
  CHECK(unit.find("@bindir@") == std::string::npos);
  // Each man page renders without a warning.
  if (fs::exists("/usr/bin/man")) {
    for (const char* page :
         {"share/man/man8/dfs_server.8", "share/man/man1/dfc.1", "share/man/man8/dfcfs.8"}) {
      CAPTURE(page);
      if (!fs::exists(root / page)) continue;  // dfcfs.8 without FUSE (checked above)
      auto m = Run({"/usr/bin/env", "MANWIDTH=80", "LC_ALL=C.UTF-8", "/usr/bin/man", "--warnings",
                    "-l", root / page});
      CHECK(m.exit_code == 0);
      CHECK_MESSAGE(m.err.empty(), m.err);
      CHECK(m.out.find("SYNOPSIS") != std::string::npos);
    }
  } else {
    MESSAGE("man pages not rendered: man is not installed");
  }
}

// GET of `url` through Python's urllib: {status, body}.
std::pair<int, std::string> HttpGet(const std::string& url) {
  auto r = Run({"/usr/bin/env", "python3", "-c",
                "import sys, urllib.request, urllib.error\n"
                "try:\n"
                "  r = urllib.request.urlopen(sys.argv[1], timeout=10)\n"
                "  print(r.status); sys.stdout.write(r.read().decode())\n"
                "except urllib.error.HTTPError as e:\n"
                "  print(e.code)\n",
                url});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const size_t nl = r.out.find('\n');
  return {std::stoi(r.out.substr(0, nl)), r.out.substr(nl + 1)};
}

// The value of the sample `name` (with labels, as printed) in `text`; -1 if absent.
double Sample(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name + " ";
  const size_t at = ("\n" + text).find(key);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + key.size() - 1));
}

TEST_CASE("dfs_server --metrics serves Prometheus counters that follow the traffic") {
  Cluster::Options options;
  options.extra_args = {"--metrics", "127.0.0.1:0"};
  Cluster cluster(options);
  std::vector<std::string> urls;
  for (int s = 0; s < cluster.size(); ++s) {
    const std::string& out = cluster.startup(s);
    const size_t at = out.find("metrics on http://");
    REQUIRE_MESSAGE(at != std::string::npos, out);
    urls.push_back(out.substr(at + 11, out.find('\n', at) - at - 11));
  }
  const auto first = HttpGet(urls[0]);
  REQUIRE(first.first == 200);
  const std::string& before = first.second;
  // Every line is a comment or "name{labels} value".
  auto lines = Run({"/usr/bin/env", "python3", "-c",
                    "import re,sys\n"
                    "for l in sys.stdin.read().splitlines():\n"
                    "  assert l.startswith('# HELP ') or l.startswith('# TYPE ') or "
                    "re.fullmatch(r'[a-z_]+(\\{[a-z_]+=\"[^\"]*\"\\})? [0-9.e+-]+', l), l\n"},
                   before);
  CHECK_MESSAGE(lines.exit_code == 0, lines.err);
  CHECK(Sample(before, "dfs_users") == 2);
  CHECK(Sample(before, "dfs_build_info{version=\"" DFS_VERSION "\"}") == 1);
  const double stages = Sample(before, "dfs_requests_total{type=\"stage\"}");
  const double received = Sample(before, "dfs_received_bytes_total");
  const double fsyncs = Sample(before, "dfs_fsync_seconds_count");

  auto c = MakeClient(cluster);
  const std::string content = RandomBytes(2 << 20, 3);
  REQUIRE(PutBytes(*c, "m.bin", content).ok());
  auto back = GetBytes(*c, "m.bin");
  REQUIRE(back.ok());
  REQUIRE(*back == content);
  CHECK(c->Stat("nope").status().code() == Code::kNotFound);
  auto wrong = MakeClient(cluster, "Alice", "WrongPassword");
  CHECK(wrong->Ping().code() == Code::kAuthFailed);

  const auto second = HttpGet(urls[0]);
  REQUIRE(second.first == 200);
  const std::string& after = second.second;
  INFO(after);
  // Every server holds two of the four pieces: staged, fsync'ed, received.
  CHECK(Sample(after, "dfs_requests_total{type=\"stage\"}") >= stages + 1);
  CHECK(Sample(after, "dfs_requests_total{type=\"commit\"}") >= 1);
  CHECK(Sample(after, "dfs_received_bytes_total") >= received + content.size() / 2);
  CHECK(Sample(after, "dfs_staged_bytes_total") >= content.size() / 2);
  CHECK(Sample(after, "dfs_sent_bytes_total") > 0);
  CHECK(Sample(after, "dfs_fsync_seconds_count") > fsyncs);
  CHECK(Sample(after, "dfs_fsync_seconds_bucket{le=\"+Inf\"}") ==
        Sample(after, "dfs_fsync_seconds_count"));
  CHECK(Sample(after, "dfs_connections_open") >= 1);  // the client's pooled connection
  CHECK(Sample(after, "dfs_connections_total") >= 2);
  CHECK(Sample(after, "dfs_logins_failed_total") >= 1);
  CHECK(Sample(after, "dfs_request_errors_total{code=\"NotFound\"}") >= 1);
  CHECK(HttpGet(urls[0].substr(0, urls[0].size() - 8) + "/other").first == 404);
}

}  // namespace
}  // namespace dfs::testing
