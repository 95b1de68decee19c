// Test fixture implementation: processes, folders and configs.
#include "tests/support/cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace dfs::testing {
namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string BinaryPath(const char* env_name) {
  const char* p = std::getenv(env_name);
  if (!p || !*p)
    throw std::runtime_error(std::string("environment variable ") + env_name +
                             " is not set (run the tests through meson test)");
  return p;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

namespace {

// Reads everything from fd until EOF or the deadline.
void DrainInto(int fd, std::string* out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return;  // EOF, EAGAIN or error
  }
}

std::vector<char*> Argv(const std::vector<std::string>& args) {
  std::vector<char*> v;
  for (const auto& a : args) v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  return v;
}

}  // namespace

CommandResult Run(const std::vector<std::string>& argv, const std::string& stdin_data,
                  int timeout_seconds, const std::string& cwd) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) _exit(126);
    auto args = Argv(argv);
    ::execv(args[0], args.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Feed stdin then close it (small inputs only). A child that is gone
  // (exec failed, exited early) must not take the test down with SIGPIPE.
  static const bool sigpipe_ignored = [] {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    return ::sigaction(SIGPIPE, &ignore, nullptr) == 0;
  }();
  (void)sigpipe_ignored;
  if (!stdin_data.empty()) {
    ssize_t ignored = ::write(in[1], stdin_data.data(), stdin_data.size());
    (void)ignored;
  }
  ::close(in[1]);
  CommandResult r;
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  ::fcntl(err[0], F_SETFL, O_NONBLOCK);
  auto deadline = start + std::chrono::seconds(timeout_seconds);
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd p[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    int n = ::poll(p, 2, static_cast<int>(std::min<long>(left, 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int k = 0; k < 2; ++k) {
      if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t got = ::read(p[k].fd, buf, sizeof buf);
      if (got > 0)
        (k == 0 ? r.out : r.err).append(buf, static_cast<size_t>(got));
      else if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
        (k == 0 ? out_open : err_open) = false;
    }
  }
  int status = 0;
  bool timed_out = out_open || err_open;
  if (timed_out) ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  DrainInto(out[0], &r.out);
  DrainInto(err[0], &r.err);
  ::close(out[0]);
  ::close(err[0]);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

Cluster::Cluster() : Cluster(Options{}) {}

Cluster::Cluster(Options options) : options_(std::move(options)), root_("dfs-cluster") {
  server_conf_ = root_ / "dfs.conf";
  std::string conf = "# test users\n";
  for (const auto& [user, password] : options_.users) conf += user + " " + password + "\n";
  WriteFile(server_conf_, conf);
  servers_.resize(static_cast<size_t>(options_.servers));
  try {
    for (int i = 0; i < options_.servers; ++i) {
      servers_[i].dir = root_ / ("DFS" + std::to_string(i + 1));
      Start(i);
    }
  } catch (...) {
    for (int i = 0; i < size(); ++i)
      if (servers_[i].pid > 0) Kill(i);
    throw;
  }
}

Cluster::~Cluster() {
  for (int i = 0; i < size(); ++i) {
    if (servers_[i].pid <= 0) continue;
    ::kill(servers_[i].pid, SIGCONT);
    Kill(i);
  }
}

std::string Cluster::server_dir(int i) const { return servers_[i].dir; }

void Cluster::Start(int i, const std::vector<std::string>& prefix, const std::string& bind) {
  Server& s = servers_[i];
  int out[2];
  if (::pipe2(out, O_CLOEXEC)) throw std::runtime_error("pipe failed");
  std::vector<std::string> args = prefix;
  for (const std::string& a : {BinaryPath("DFS_SERVER"), s.dir, std::to_string(s.port),
                               std::string("-c"), server_conf_, std::string("--bind"), bind})
    args.push_back(a);
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out[1], 1);
    auto argv = Argv(args);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(out[1]);
  // Wait for "dfs_server: NAME key SHA256:..." and "dfs_server: listening on
  // BIND:PORT, ..." (up to 20 s: scrypt per plain password).
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto ready = [&] {
    const auto at = line.find("listening on");
    return at != std::string::npos && line.find('\n', at) != std::string::npos;
  };
  while (!ready() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  const std::string listening = "listening on " + bind + ":";
  auto at = line.find(listening);
  if (at == std::string::npos) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw std::runtime_error("dfs_server did not start: '" + line + "'");
  }
  s.port = static_cast<uint16_t>(std::stoi(line.substr(at + listening.size())));
  s.pid = pid;
  s.startup = line;
  if (auto key = line.find(" key SHA256:"); key != std::string::npos)
    s.fingerprint = line.substr(key + 5, line.find('\n', key) - key - 5);
}

void Cluster::Kill(int i) {
  if (servers_[i].pid <= 0) return;
  ::kill(servers_[i].pid, SIGKILL);
  ::waitpid(servers_[i].pid, nullptr, 0);
  servers_[i].pid = -1;
}

int Cluster::TerminateStatus(int i) {
  if (servers_[i].pid <= 0) return -1;
  ::kill(servers_[i].pid, SIGTERM);
  int status = 0;
  ::waitpid(servers_[i].pid, &status, 0);
  servers_[i].pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

void Cluster::Terminate(int i) { (void)TerminateStatus(i); }

void Cluster::Pause(int i) { ::kill(servers_[i].pid, SIGSTOP); }
void Cluster::Resume(int i) { ::kill(servers_[i].pid, SIGCONT); }
void Cluster::Signal(int i, int sig) { ::kill(servers_[i].pid, sig); }

void Cluster::Restart(int i) { RestartIn(i, {}, "127.0.0.1"); }

void Cluster::RestartIn(int i, const std::vector<std::string>& prefix, const std::string& bind) {
  Kill(i);
  // The port was ours a moment ago; retry briefly in case it lingers.
  for (int attempt = 0;; ++attempt) {
    try {
      Start(i, prefix, bind);
      return;
    } catch (const std::exception&) {
      if (attempt >= 20) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

ClientConfig Cluster::ClientConfigFor(const std::string& user, const std::string& password,
                                      bool pin) const {
  ClientConfig cfg;
  for (int i = 0; i < size(); ++i)
    cfg.servers.push_back({"DFS" + std::to_string(i + 1), "127.0.0.1", servers_[i].port,
                           pin ? servers_[i].fingerprint : ""});
  cfg.username = user;
  cfg.password = password;
  cfg.known_servers = known_servers();
  return cfg;
}

std::vector<std::string> Cluster::HintFiles() const {
  std::vector<std::string> out;
  for (int s = 0; s < size(); ++s) {
    const std::filesystem::path dir = std::filesystem::path(server_dir(s)) / ".hints";
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file()) out.push_back(it->path().string());
  }
  return out;
}

std::string Cluster::WriteClientConfig(const std::string& user, const std::string& password,
                                       const std::string& file_name, bool pin) const {
  std::string path = root_ / (file_name.empty() ? "dfc-" + user + ".conf" : file_name);
  std::string text;
  for (int i = 0; i < size(); ++i)
    text += "Server DFS" + std::to_string(i + 1) +
            " 127.0.0.1:" + std::to_string(servers_[i].port) + "\n";
  text += "Username: " + user + "\nPassword: " + password + "\n";
  if (pin)
    for (int i = 0; i < size(); ++i)
      text += "Fingerprint DFS" + std::to_string(i + 1) + " " + servers_[i].fingerprint + "\n";
  text += "KnownServers " + known_servers() + "\n";
  WriteFile(path, text);
  return path;
}

}  // namespace dfs::testing
