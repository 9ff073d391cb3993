#include "crypto/deterministic_stream.h"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>

namespace irt::crypto {

namespace {
constexpr unsigned char kStreamNonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {'L', 'i', 'b', 's', 'o', 'd',
                                                                          'i', 'u', 'm', 'D', 'R', 'G'};
constexpr std::uint32_t kBlock = 64;
}  // namespace

DeterministicStream::DeterministicStream(ByteView seed32) {
  if (seed32.size() != kSeedSize) throw std::invalid_argument("a deterministic stream seed is 32 bytes");
  key_ = SecretBytes::copy_of(seed32);
}

void DeterministicStream::refill() {
  if (next_block_ > UINT32_MAX - sizeof(buffer_) / kBlock)
    throw std::length_error("deterministic stream exhausted (256 GiB from one seed)");
  std::fill(buffer_.begin(), buffer_.end(), std::uint8_t{0});
  crypto_stream_chacha20_ietf_xor_ic(buffer_.data(), buffer_.data(), buffer_.size(), kStreamNonce, next_block_,
                                     key_.data());
  next_block_ += static_cast<std::uint32_t>(sizeof(buffer_) / kBlock);
  used_ = 0;
}

void DeterministicStream::seek(std::uint64_t position) {
  if (position > kMaxPosition)
    throw std::length_error("deterministic stream position beyond its end (256 GiB from one seed)");
  next_block_ = static_cast<std::uint32_t>(position / kBlock);
  refill();
  used_ = static_cast<std::size_t>(position % kBlock);
  position_ = position;
}

void DeterministicStream::fill(std::span<std::uint8_t> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    if (used_ == buffer_.size()) refill();
    std::size_t n = std::min(out.size() - done, buffer_.size() - used_);
    std::copy_n(buffer_.begin() + static_cast<std::ptrdiff_t>(used_), n, out.begin() + static_cast<std::ptrdiff_t>(done));
    used_ += n;
    done += n;
  }
  position_ += out.size();
}

}  // namespace irt::crypto
