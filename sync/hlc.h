// Hybrid logical clock (Kulkarni et al., 2014): a 64-bit timestamp that is
// close to physical time but never goes backwards on a node and always moves
// past every timestamp the node has seen from the hub, so events order causally
// even when a tablet's clock is wrong.
//
// Encoding: the upper 48 bits are milliseconds since the Unix epoch, the lower
// 16 bits a logical counter. Thread-safety: not synchronised; the owner locks.
#pragma once

#include <cstdint>
#include <functional>

namespace irt::sync {

// Milliseconds since the Unix epoch; injected so tests can set the time.
using WallClock = std::function<std::int64_t()>;
std::int64_t system_millis();

class HybridClock {
 public:
  explicit HybridClock(WallClock wall = system_millis, std::uint64_t last = 0) : wall_(std::move(wall)), last_(last) {}
  std::uint64_t now();                       // for a local event
  std::uint64_t observe(std::uint64_t remote);  // on receiving a remote timestamp
  std::uint64_t last() const { return last_; }

  static std::uint64_t pack(std::int64_t millis, std::uint16_t counter);
  static std::int64_t millis(std::uint64_t hlc) { return static_cast<std::int64_t>(hlc >> 16); }
  static std::uint16_t counter(std::uint64_t hlc) { return static_cast<std::uint16_t>(hlc & 0xffff); }

 private:
  WallClock wall_;
  std::uint64_t last_;
};

}  // namespace irt::sync
