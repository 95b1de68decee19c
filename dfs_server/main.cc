// dfs_server: the storage server of dfs. Command line, start-up and signals.
//
// Exit codes: 0 after a graceful stop (SIGINT/SIGTERM), 1 when it cannot
// start (cannot bind, cannot create DIR), 2 for bad arguments or dfs.conf.
// SIGHUP reads dfs.conf again (users and passwords; quotas at restart).
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>

// GCC 12 reports a false -Wnull-dereference inside CLI11's inlined string code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop
#ifdef DFS_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "dfs_server/metrics.h"
#include "dfs_server/server.h"
#include "dfs_server/session.h"
#include "dfs_version.h"
#include "shared/config/config.h"
#include "shared/crypto/crypto.h"
#include "shared/net/tls.h"
#include "shared/util/log.h"
#include "shared/util/names.h"

namespace {

constexpr const char* kDescription =
    "dfs_server: a storage server of dfs, the distributed file system.\n"
    "Stores encrypted file pieces of the users listed in dfs.conf under DIR/USER and\n"
    "serves them over TLS 1.3 on PORT. Passwords never cross the wire; pieces are\n"
    "encrypted by the client.\n\n"
    "The server's name (--name, default: the last component of DIR, so\n"
    "'dfs_server /DFS1 10001' is DFS1) must match the Server line in the clients'\n"
    "dfc.conf. Its TLS key is made on first start and kept in DIR/.identity; clients\n"
    "pin its fingerprint ('Fingerprint DFS1 SHA256:...' in dfc.conf) or remember it\n"
    "on first use.\n\n"
    "dfs.conf holds one 'USERNAME SECRET [quota=SIZE]' line per user ('#' starts a\n"
    "comment). SECRET is best a '$dfs2$...' line from --hash-password, made for this\n"
    "server's name: it logs the user in here and nowhere else and opens no content.\n"
    "A plain password still works (with a warning).\n\n"
    "Prints 'dfs_server: NAME key SHA256:...' and then 'dfs_server: listening on\n"
    "HOST:PORT, storing in DIR' once it accepts connections. SIGINT/SIGTERM stop it\n"
    "gracefully (exit 0); SIGHUP reads dfs.conf again (users and passwords: new\n"
    "logins use them, open connections stay; quotas change at restart). Under\n"
    "systemd (Type=notify) it reports ready, reloading and stopping. Exit 1 when it\n"
    "cannot start, 2 for bad arguments or configuration.";

// The write ends of the server's stop and reload pipes, for the signal handlers.
std::atomic<int> g_stop_fd{-1};
std::atomic<int> g_reload_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free);

void WriteByte(const std::atomic<int>& target) {
  const int saved = errno;
  const int fd = target.load();
  const char byte = 1;
  if (fd >= 0) {
    [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
  }
  errno = saved;
}
extern "C" void OnStopSignal(int) { WriteByte(g_stop_fd); }
extern "C" void OnReloadSignal(int) { WriteByte(g_reload_fd); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  struct sigaction reload = sa;
  reload.sa_handler = OnReloadSignal;
  ::sigaction(SIGHUP, &reload, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

// sd_notify(3): a unit of Type=notify learns that the server is ready
// (listening), reloading or stopping. Nothing outside systemd.
void NotifySystemd(const char* state) {
#ifdef DFS_HAVE_SYSTEMD
  ::sd_notify(0, state);
#else
  (void)state;
#endif
}

int Fail(int code, const std::string& message) {
  std::cerr << "dfs_server: " << message << std::endl;
  return code;
}

// The default server name: the last component of DIR ("/srv/DFS1/" -> "DFS1").
std::string DefaultName(const std::string& dir) {
  std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..")
    name = std::filesystem::absolute(p).lexically_normal().filename().string();
  return name;
}

// --hash-password USER: reads one password line from stdin (without echo on
// a terminal) and prints the dfs.conf line "USER $dfs2$<hex>" for server `name`.
int HashPassword(const std::string& user, const std::string& name) {
  if (dfs::Status s = dfs::ValidateName(user); !s.ok() || user.front() == '.')
    return Fail(2, "bad username '" + user + "'");
  const bool tty = ::isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (tty && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::cerr << "Password for " << user << ": " << std::flush;
  }
  std::string password;
  const bool got = static_cast<bool>(std::getline(std::cin, password));
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << std::endl;
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (!got || password.empty()) return Fail(2, "no password on standard input");
  std::cout << user << " " << dfs::HashedSecret(user, password, name) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kDescription, "dfs_server");
  app.set_version_flag("--version", std::string("dfs_server ") + DFS_VERSION);
  std::string dir;
  int port = -1;
  std::string config_path = "dfs.conf";
  dfs::server::ServerOptions options;
  std::string log_level = "warn";
  double grace_seconds = 5;
  std::string hash_user;
  std::string fingerprint_dir;
  std::string name;
  double staging_ttl_seconds = 600;

  app.add_option("DIR", dir, "Folder holding the users' pieces (created if missing)");
  app.add_option("PORT", port, "TCP port to listen on (0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  app.add_option("-c,--config", config_path, "Users and passwords")->capture_default_str();
  app.add_option("--bind", options.bind_address, "Address to listen on")->capture_default_str();
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off (to stderr)")
      ->capture_default_str();
  app.add_option("--max-connections", options.max_connections,
                 "Logged-in connections at once; more are told 'server busy'")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--grace", grace_seconds,
                 "Seconds requests in flight get to finish at SIGINT/SIGTERM")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--name", name,
                 "This server's name, as in the clients' Server lines (default: last part of DIR)");
  app.add_option("--max-connections-per-user", options.max_connections_per_user,
                 "Logged-in connections of one user at once")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--staging-ttl", staging_ttl_seconds,
                 "Seconds after which an upload nobody writes to is removed from staging")
      ->check(CLI::Range(1.0, 30.0 * 86400))
      ->capture_default_str();
  app.add_option("--hash-password", hash_user,
                 "Read a password from stdin and print the dfs.conf line 'USER $dfs2$...' for "
                 "the server named by --name")
      ->option_text("USER");
  std::string metrics_address;
  app.add_option("--metrics", metrics_address,
                 "Serve counters in Prometheus text format on HTTP ADDR:PORT/metrics (plain "
                 "HTTP, no login: bind it to an address only the monitoring can reach)");
  app.add_option("--fingerprint", fingerprint_dir,
                 "Print the fingerprint of the TLS key kept in DIR and exit")
      ->option_text("DIR");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForVersion&) {
    std::cout << "dfs_server " << DFS_VERSION << "\n";
    return 0;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(2, std::string(e.what()) + " (see --help)");
  }

  if (!hash_user.empty()) {
    if (name.empty() && !dir.empty()) name = DefaultName(dir);
    if (name.empty())
      return Fail(2, "--hash-password needs the server's name: --name NAME (or DIR)");
    return HashPassword(hash_user, name);
  }
  if (!fingerprint_dir.empty()) {
    auto print = dfs::FingerprintOfDir(fingerprint_dir);
    if (!print.ok()) return Fail(1, print.status().message());
    std::cout << *print << std::endl;
    return 0;
  }
  if (dir.empty() || port < 0) return Fail(2, "expected DIR and PORT (see --help)");
  if (name.empty()) name = DefaultName(dir);
  if (dfs::Status v = dfs::ValidateName(name); !v.ok() || name.size() > 64)
    return Fail(2, "bad server name '" + dfs::EscapeControl(name) +
                       "' (use --name; at most 64 bytes, no '/')");

  try {
    dfs::SetupLogging(dfs::ParseLogLevel(log_level));
  } catch (const std::invalid_argument& e) {
    return Fail(2, e.what());
  }
  options.root = dir;
  options.port = static_cast<uint16_t>(port);
  options.grace = dfs::Millis(static_cast<int64_t>(grace_seconds * 1000));
  options.staging_ttl = std::chrono::seconds(static_cast<int64_t>(staging_ttl_seconds));
  options.session.server_name = name;

  auto config = dfs::LoadServerConfig(config_path);
  if (!config.ok()) return Fail(2, config.status().message());
  // Users and verifiers, at start and again at each SIGHUP.
  auto load_keys = [config_path,
                    name](const dfs::ServerConfig& loaded) -> dfs::Result<dfs::server::AuthKeys> {
    int plain = 0;
    auto keys = dfs::server::AuthKeys::FromConfig(loaded, config_path, name, &plain);
    if (keys.ok() && plain > 0)
      dfs::Logger("net")->warn(
          "{}: {} user(s) with a plain password: anyone who reads this file can log in on "
          "every server and derive the content key. Replace each with the line "
          "'dfs_server --hash-password USER --name {}' prints.",
          config_path, plain, name);
    return keys;
  };
  auto keys = load_keys(*config);
  if (!keys.ok()) return Fail(2, keys.status().message());
  for (const auto& [user, bytes] : config->quotas) options.store.quota_bytes[user] = bytes;
  options.reload_keys = [config_path, load_keys,
                         quotas = config->quotas]() -> dfs::Result<dfs::server::AuthKeys> {
    DFS_ASSIGN_OR_RETURN(dfs::ServerConfig again, dfs::LoadServerConfig(config_path));
    if (again.quotas != quotas)
      dfs::Logger("net")->warn("{}: quota changes take effect when the server restarts",
                               config_path);
    return load_keys(again);
  };
  options.notify = [](const char* state) { NotifySystemd(state); };

  dfs::server::Metrics metrics;
  std::string metrics_host;
  uint16_t metrics_port = 0;
  if (!metrics_address.empty()) {
    if (dfs::Status s =
            dfs::server::ParseListenAddress(metrics_address, &metrics_host, &metrics_port);
        !s.ok())
      return Fail(2, "--metrics: " + s.message());
    options.session.metrics = &metrics;
  }
  auto server = dfs::server::Server::Start(options, std::move(*keys));
  if (!server.ok()) return Fail(1, server.status().message());
  std::unique_ptr<dfs::server::MetricsServer> metrics_server;
  if (!metrics_address.empty()) {
    dfs::server::Server* s = server->get();
    auto started = dfs::server::MetricsServer::Start(metrics_host, metrics_port, [&metrics, s] {
      metrics.SetUsers(s->users());
      return metrics.Render();
    });
    if (!started.ok()) return Fail(1, "--metrics: " + started.status().message());
    metrics_server = std::move(*started);
  }

  g_stop_fd = (*server)->stop_write_fd();
  g_reload_fd = (*server)->reload_write_fd();
  InstallSignalHandlers();
  const std::string host = options.bind_address.find(':') == std::string::npos
                               ? options.bind_address
                               : "[" + options.bind_address + "]";
  std::cout << "dfs_server: " << name << " key " << (*server)->fingerprint() << "\n";
  if (metrics_server)
    std::cout << "dfs_server: metrics on http://"
              << (metrics_host.find(':') == std::string::npos ? metrics_host
                                                              : "[" + metrics_host + "]")
              << ":" << metrics_server->port() << "/metrics\n";
  std::cout << "dfs_server: listening on " << host << ":" << (*server)->port() << ", storing in "
            << dir << std::endl;

  dfs::Status run = (*server)->Run();
  g_stop_fd = -1;
  g_reload_fd = -1;
  if (!run.ok()) return Fail(1, run.message());
  return 0;
}
