// dfcfs start-up: command line, configuration, checks, daemonizing, the FUSE
// session and its clean shutdown. dfcfs_main.cc only calls RunDfcfs.
//
// Exit codes: 0 after a clean unmount (fusermount3 -u, SIGINT, SIGTERM) or,
// without -f, once the mount is live; 2 for usage and configuration errors;
// 1 for everything else (mountpoint, authentication, FUSE unavailable).
// Every error is one line on stderr, "dfcfs: ..." (a failed login prints
// exactly "Invalid Username/Password. Please try again.").
#pragma once

namespace dfs::fuse {

int RunDfcfs(int argc, char** argv);

}  // namespace dfs::fuse
