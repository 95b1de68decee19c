// dfs_server: the storage server of dfs. Command line, start-up and signals.
//
// Exit codes: 0 after a graceful stop (SIGINT/SIGTERM), 1 when it cannot
// start (cannot bind, cannot create DIR), 2 for bad arguments or dfs.conf.
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>

// GCC 12 reports a false -Wnull-dereference inside CLI11's inlined string code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include "dfs_server/server.h"
#include "dfs_server/session.h"
#include "shared/config/config.h"
#include "shared/crypto/crypto.h"
#include "shared/util/log.h"
#include "shared/util/names.h"

namespace {

constexpr const char* kDescription =
    "dfs_server: a storage server of dfs, the distributed file system.\n"
    "Stores encrypted file pieces of the users listed in dfs.conf under DIR/USER and\n"
    "serves them over TCP on PORT. Passwords never cross the wire; pieces are\n"
    "encrypted by the client.\n\n"
    "dfs.conf holds one 'USERNAME PASSWORD' pair per line ('#' starts a comment).\n"
    "PASSWORD may be a '$dfs1$...' hash from --hash-password, so the server never\n"
    "stores the password itself.\n\n"
    "Prints 'dfs_server: listening on HOST:PORT, storing in DIR' once it accepts\n"
    "connections. SIGINT/SIGTERM stop it gracefully (exit 0). Exit 1 when it cannot\n"
    "start, 2 for bad arguments or configuration.";

// The write end of the server's stop pipe, for the signal handler.
std::atomic<int> g_stop_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void OnStopSignal(int) {
  const int saved = errno;
  const int fd = g_stop_fd.load();
  const char byte = 1;
  if (fd >= 0) {
    [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
  }
  errno = saved;
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

int Fail(int code, const std::string& message) {
  std::cerr << "dfs_server: " << message << std::endl;
  return code;
}

// --hash-password USER: reads one password line from stdin (without echo on
// a terminal) and prints the dfs.conf line "USER $dfs1$<hex>".
int HashPassword(const std::string& user) {
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
  std::cout << user << " " << dfs::HashedSecret(user, password) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kDescription, "dfs_server");
  std::string dir;
  int port = -1;
  std::string config_path = "dfs.conf";
  dfs::server::ServerOptions options;
  std::string log_level = "warn";
  double grace_seconds = 5;
  std::string hash_user;

  app.add_option("DIR", dir, "Folder holding the users' pieces (created if missing)");
  app.add_option("PORT", port, "TCP port to listen on (0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  app.add_option("-c,--config", config_path, "Users and passwords")->capture_default_str();
  app.add_option("--bind", options.bind_address, "Address to listen on")->capture_default_str();
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off (to stderr)")
      ->capture_default_str();
  app.add_option("--max-connections", options.max_connections,
                 "Connections served at once; more are told 'server busy'")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--grace", grace_seconds,
                 "Seconds requests in flight get to finish at SIGINT/SIGTERM")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--hash-password", hash_user,
                 "Read a password from stdin and print the dfs.conf line 'USER $dfs1$...'")
      ->option_text("USER");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(2, std::string(e.what()) + " (see --help)");
  }

  if (!hash_user.empty()) return HashPassword(hash_user);
  if (dir.empty() || port < 0) return Fail(2, "expected DIR and PORT (see --help)");

  try {
    dfs::SetupLogging(dfs::ParseLogLevel(log_level));
  } catch (const std::invalid_argument& e) {
    return Fail(2, e.what());
  }
  options.root = dir;
  options.port = static_cast<uint16_t>(port);
  options.grace = dfs::Millis(static_cast<int64_t>(grace_seconds * 1000));

  auto config = dfs::LoadServerConfig(config_path);
  if (!config.ok()) return Fail(2, config.status().message());
  auto keys = dfs::server::AuthKeys::FromConfig(*config, config_path);
  if (!keys.ok()) return Fail(2, keys.status().message());

  auto server = dfs::server::Server::Start(options, std::move(*keys));
  if (!server.ok()) return Fail(1, server.status().message());

  g_stop_fd = (*server)->stop_write_fd();
  InstallSignalHandlers();
  const std::string host = options.bind_address.find(':') == std::string::npos
                               ? options.bind_address
                               : "[" + options.bind_address + "]";
  std::cout << "dfs_server: listening on " << host << ":" << (*server)->port() << ", storing in "
            << dir << std::endl;

  dfs::Status run = (*server)->Run();
  g_stop_fd = -1;
  if (!run.ok()) return Fail(1, run.message());
  return 0;
}
