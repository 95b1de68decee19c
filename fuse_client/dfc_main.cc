// dfc: the command-line client. `dfc CONF COMMAND ...` runs one command;
// `dfc CONF` alone opens an interactive prompt.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "dfs_version.h"
#include "fuse_client/cli/dfc.h"
#include "shared/config/config.h"
#include "shared/util/log.h"

int main(int argc, char** argv) {
  CLI::App app{
      "dfc: command-line client of the dfs distributed file system.\n"
      "Files are split into pieces, encrypted on this machine and stored on the\n"
      "servers named in CONF; any one server may be down.",
      "dfc"};
  app.set_version_flag("--version", std::string("dfc ") + DFS_VERSION);
  std::string config_path;
  std::string log_level = "warn";
  bool stats = false;
  dfs::cli::CommandOptions options;
  std::vector<std::string> command;
  app.add_option("config", config_path, "client config (Server/Username/Password lines)")
      ->required();
  app.add_option("command", command, "command and its arguments; none = interactive prompt");
  app.footer("\n" + dfs::cli::CommandHelp() +
             "\nExit status: 0 success, 1 the operation failed, 2 bad command or config.");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str();
  app.add_flag("--stats", stats,
               "print bytes sent to and received from the servers, and connection set-up times");
  app.add_flag("-q,--quiet", options.quiet, "no progress, no result line for put and get");
  app.add_flag("-v,--verbose", options.verbose, "which servers hold each piece (put, get)");
  app.positionals_at_end(false);
  app.prefix_command(false);
  try {
    // Everything after the config's first word belongs to the command, even "-o".
    std::vector<std::string> args(argv + 1, argv + argc);
    size_t first_positional = args.size();
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--log-level") {
        ++i;
        continue;
      }
      if (!args[i].empty() && args[i][0] != '-') {
        first_positional = i;
        break;
      }
    }
    if (first_positional + 1 < args.size()) {
      command.assign(args.begin() + static_cast<long>(first_positional) + 1, args.end());
      args.erase(args.begin() + static_cast<long>(first_positional) + 1, args.end());
    }
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::CallForVersion&) {
    std::cout << "dfc " << DFS_VERSION << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    dfs::SetupLogging(dfs::ParseLogLevel(log_level));
  } catch (const std::exception& e) {
    std::cerr << "dfc: " << e.what() << "\n";
    return 2;
  }
  auto config = dfs::LoadClientConfig(config_path);
  if (!config.ok()) {
    std::cerr << "dfc: " << config.status().message() << "\n";
    return 2;
  }
  dfs::client::Client client(std::move(*config));
  int rc;
  if (command.empty()) {
    rc = dfs::cli::RunPrompt(client, std::cin, std::cout, std::cerr, ::isatty(0) != 0, options);
  } else {
    rc = dfs::cli::RunCommand(client, command, std::cout, std::cerr, options);
  }
  if (stats) {
    const auto& t = client.pool().traffic();
    std::cerr << "traffic: received " << t.received << " bytes, sent " << t.sent << " bytes\n";
    if (t.connections > 0)
      std::cerr << "connections: " << t.connections << " opened, "
                << static_cast<double>(t.connect_us) / 1000.0 / static_cast<double>(t.connections)
                << " ms each on average (TCP + TLS 1.3 + login)\n";
  }
  return rc;
}
