// A reproducible stream of random bytes from a recorded 32-byte seed:
// libsodium's deterministic generator (randombytes_buf_deterministic), i.e. the
// ChaCha20-IETF keystream under key = seed and nonce = "LibsodiumDRG",
// continued block by block so it can be read in pieces of any size. The same
// seed gives the same bytes on every machine and library version.
// Thread-safety: one stream per thread.
#pragma once

#include <array>
#include <cstdint>

#include "crypto/bytes.h"

namespace irt::crypto {

class DeterministicStream {
 public:
  static constexpr std::size_t kSeedSize = 32;
  // The last byte position a stream can continue from (ChaCha20-IETF's 32-bit block counter).
  static constexpr std::uint64_t kMaxPosition = (std::uint64_t{UINT32_MAX} - 64) * 64;
  explicit DeterministicStream(ByteView seed32);  // throws std::invalid_argument unless 32 bytes
  void fill(std::span<std::uint8_t> out);
  std::uint64_t position() const { return position_; }  // bytes produced so far
  // Continues from byte `position` of the stream, forwards or backwards, in
  // constant time: ChaCha20 computes any 64-byte block from its counter.
  // Throws std::length_error past the stream's end (256 GiB).
  void seek(std::uint64_t position);

 private:
  void refill();
  SecretBytes key_;
  std::array<std::uint8_t, 4096> buffer_{};
  std::size_t used_ = sizeof(buffer_);
  std::uint32_t next_block_ = 0;
  std::uint64_t position_ = 0;
};

}  // namespace irt::crypto
