#include "sync/hlc.h"

#include <algorithm>
#include <chrono>

namespace irt::sync {

std::int64_t system_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t HybridClock::pack(std::int64_t millis, std::uint16_t counter) {
  return (static_cast<std::uint64_t>(std::max<std::int64_t>(millis, 0)) << 16) | counter;
}

std::uint64_t HybridClock::now() {
  std::uint64_t physical = pack(wall_(), 0);
  // Either physical time moved on, or we stay on the last millisecond and count.
  last_ = physical > last_ ? physical : last_ + 1;
  return last_;
}

std::uint64_t HybridClock::observe(std::uint64_t remote) {
  std::uint64_t physical = pack(wall_(), 0);
  last_ = std::max({physical, remote + 1, last_ + 1});
  return last_;
}

}  // namespace irt::sync
