// Clocks and deadlines: every wait in dfs is bounded by a Deadline.
#pragma once

#include <chrono>

namespace dfs {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
using Millis = std::chrono::milliseconds;

inline Deadline DeadlineIn(Millis ms) { return Clock::now() + ms; }

// Milliseconds left before the deadline, clamped to [0, 2^30] (for poll()).
inline int RemainingMs(Deadline deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(left < (1 << 30) ? left : (1 << 30));
}

}  // namespace dfs
