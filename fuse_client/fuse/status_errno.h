// The one place a dfs Status becomes an errno, at the FUSE boundary.
#pragma once

#include "shared/util/status.h"

namespace dfs::fuse {

// Positive errno for a non-OK status (0 for OK). Every failure the servers or
// the network cause (unavailable, timeout, corrupt, incomplete, protocol)
// becomes EIO, so tools print "Input/output error".
int ToErrno(const Status& status);

}  // namespace dfs::fuse
