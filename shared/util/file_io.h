// Whole-buffer file I/O that retries short transfers and EINTR, so callers
// never loop over read/write themselves. Errors come back through FromErrno
// with `what` naming the operation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shared/util/status.h"

namespace dfs {

// Writes all n bytes at the file position.
Status WriteAll(int fd, const void* data, size_t n, std::string_view what);
// Writes all n bytes at `offset`.
Status PwriteAll(int fd, const void* data, size_t n, uint64_t offset, std::string_view what);
// Reads up to n bytes at `offset`; fewer only at end of file. Returns the count.
Result<size_t> PreadFull(int fd, void* data, size_t n, uint64_t offset, std::string_view what);

}  // namespace dfs
