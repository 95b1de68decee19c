// The libfuse high-level operations table of dfcfs: thin adapters that turn
// FUSE calls into FileSystem calls. Every adapter returns exactly one result
// and catches every exception (none escapes into libfuse's C code).
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse.h>

namespace dfs::fuse {

// The table, filled in one place. fuse_new() must get a FileSystem* as its
// user data; init() hands it on as the private data of every request and sets
// the cache policy: entry timeout 1 s, attribute timeout 0 (our own 1 s cache
// answers, and open() refreshes it, which keeps close-to-open exact), no
// negative caching, no writeback cache. Unlinked open files are hidden by
// libfuse (renamed to .fuse_hidden*), which FileSystem does in memory only.
fuse_operations MakeOperations();

}  // namespace dfs::fuse
