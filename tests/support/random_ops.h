// The randomized differential test of a dfs mount, shared by the 'fuse' suite
// (a quiet cluster) and the 'faults' suite (servers killed and restarted
// while it runs): the same random POSIX calls on a local folder and on the
// mount, side by side, every result compared at once. Reports through doctest
// (CHECK, FAIL_CHECK), so it runs only inside a TEST_CASE.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dfs::testing {

// The content of `path` through plain open/read/close, or "" with *err set to
// the errno of the call that failed (*err is 0 on success).
std::string ReadWithPosix(const std::string& path, int* err = nullptr);

// The seed from the environment variable DFS_SEED, or else the current time,
// so that a failure prints the DFS_SEED=... that replays it.
uint64_t RandomSeedFromEnv();
// The number of steps from DFS_RANDOM_STEPS, or else `default_steps`.
int RandomStepsFromEnv(int default_steps);

// The paths, relative to a root, that the random operations touch: files in
// the root and in its folder "d".
const std::vector<std::string>& RandomOperationNames();

// Runs `steps` operations drawn from `seed` (open with various flags, pwrite,
// pread, ftruncate, fstat, close, truncate, rename, unlink, stat, chmod, whole
// reads) on local_root and mount_root alike and compares return value, errno
// and data after each one. Creates either root if missing and the folder "d"
// in each (REQUIRES: no "d" there yet). Calls between_steps(step), when set,
// before every step but the first. At the first difference, FAIL_CHECKs with
// the seed and the last 40 operations of both sides and stops. Every
// descriptor it opened is closed when it returns, also by an exception.
// Returns whether every result matched.
bool RunRandomOperations(const std::string& local_root, const std::string& mount_root,
                         uint64_t seed, int steps,
                         const std::function<void(int step)>& between_steps = {});

// CHECKs that each of RandomOperationNames() reads the same under both roots:
// the same bytes, or the same errno.
void CheckSameFiles(const std::string& local_root, const std::string& other_root);

}  // namespace dfs::testing
