// The dfc commands (list, get, put, mkdir, rm, rmdir, mv, status, heal), shared
// by the one-shot command line and the interactive prompt.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "fuse_client/client/client.h"

namespace dfs::cli {

struct CommandOptions {
  // Progress (put, get, heal) is shown on stderr when it is a terminal,
  // unless quiet; quiet also drops the one-line results of put and get.
  bool quiet = false;
  // Per-server detail: where each piece went or came from.
  bool verbose = false;
};

// Runs one command given as words ("put", "a.txt", "docs/"). Writes results to
// `out` and messages to `err`. Returns the process exit status: 0 success,
// 1 the operation failed, 2 the command was malformed. "-q"/"--quiet" and
// "-v"/"--verbose" among the words set those options for this command.
int RunCommand(client::Client& client, const std::vector<std::string>& words, std::ostream& out,
               std::ostream& err, CommandOptions options = {});

// Reads commands from `in` until "exit", "quit" or end of input, printing a
// prompt when `interactive`. Returns 0.
int RunPrompt(client::Client& client, std::istream& in, std::ostream& out, std::ostream& err,
              bool interactive, CommandOptions options = {});

// The command summary printed by `help`.
std::string CommandHelp();

}  // namespace dfs::cli
