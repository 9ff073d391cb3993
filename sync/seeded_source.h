// The one RandomSource over a recorded seed: libsodium's seeded ChaCha20
// generator (crypto::DeterministicStream) behind shared/'s RandomSource
// interface, and the parsing of the 32-byte seeds that randomization lists,
// kit lists and the minimization streams granted to nodes are generated from.
// The hub generates and replays with it; a node draws its granted
// minimization stream with it, so both read the same bytes by construction.
// Thread-safety: one SeededSource per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "crypto/bytes.h"
#include "crypto/deterministic_stream.h"
#include "shared/random_source.h"

namespace irt::sync {

class SeededSource final : public shared::RandomSource {
 public:
  explicit SeededSource(crypto::ByteView seed32) : stream_(seed32) {}
  void fill(std::span<std::uint8_t> out) override { stream_.fill(out); }
  std::uint64_t position() const { return stream_.position(); }
  // Continues from byte `position` (a decision's recorded stream start), in constant time.
  void seek(std::uint64_t position) { stream_.seek(position); }

 private:
  crypto::DeterministicStream stream_;
};

// A seed given as 64 hex digits; nullopt otherwise.
inline std::optional<crypto::Bytes> parse_seed_hex(std::string_view hex) {
  auto b = crypto::from_hex(hex);
  if (!b || b->size() != crypto::DeterministicStream::kSeedSize) return std::nullopt;
  return b;
}

}  // namespace irt::sync
