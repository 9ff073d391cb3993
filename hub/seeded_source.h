// The hub's RandomSource: libsodium's seeded ChaCha20 generator
// (crypto::DeterministicStream) behind shared/'s RandomSource interface, plus
// the parsing of the 32-byte seeds that randomization lists, kit lists and the
// minimization streams granted to nodes are generated from.
// Thread-safety: one SeededSource per thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "crypto/bytes.h"
#include "crypto/deterministic_stream.h"
#include "shared/random_source.h"

namespace irt::hub {

class SeededSource final : public shared::RandomSource {
 public:
  explicit SeededSource(crypto::ByteView seed32) : stream_(seed32) {}
  void fill(std::span<std::uint8_t> out) override { stream_.fill(out); }
  std::uint64_t position() const { return stream_.position(); }
  // Moves forward to byte `position` (a recorded decision's stream start);
  // false when that is behind the current position.
  bool skip_to(std::uint64_t position) {
    if (position < stream_.position()) return false;
    std::uint8_t scratch[4096];
    while (stream_.position() < position) {
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof scratch, position - stream_.position()));
      stream_.fill(std::span<std::uint8_t>(scratch, n));
    }
    return true;
  }

 private:
  crypto::DeterministicStream stream_;
};

// A seed given as 64 hex digits; nullopt otherwise.
inline std::optional<crypto::Bytes> parse_seed_hex(std::string_view hex) {
  auto b = crypto::from_hex(hex);
  if (!b || b->size() != crypto::DeterministicStream::kSeedSize) return std::nullopt;
  return b;
}

}  // namespace irt::hub
