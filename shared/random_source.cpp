#include "shared/random_source.h"

#include <array>
#include <limits>
#include <stdexcept>

namespace irt::shared {

RandomSource::~RandomSource() = default;

void CountingSource::fill(std::span<std::uint8_t> out) {
  inner_.fill(out);
  position_ += out.size();
}

namespace {

std::uint64_t next_u64(RandomSource& source) {
  std::array<std::uint8_t, 8> b{};
  source.fill(b);
  std::uint64_t x = 0;
  for (int i = 7; i >= 0; --i) x = (x << 8) | b[static_cast<std::size_t>(i)];
  return x;
}

}  // namespace

std::uint64_t uniform(RandomSource& source, std::uint64_t n) {
  if (n == 0) throw std::invalid_argument("uniform(source, 0): the range must hold at least one value");
  if (n == 1) return 0;
  // 2^64 mod n computed without overflow: (2^64 - n) mod n.
  const std::uint64_t excess = (std::numeric_limits<std::uint64_t>::max() - n + 1) % n;
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - excess;  // accept x <= limit
  for (;;) {
    std::uint64_t x = next_u64(source);
    if (excess == 0 || x <= limit) return x % n;
  }
}

double unit(RandomSource& source) {
  return static_cast<double>(next_u64(source) >> 11) * 0x1.0p-53;
}

bool bernoulli(RandomSource& source, double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return unit(source) < p;
}

std::size_t draw_weighted(RandomSource& source, std::span<const int> weights) {
  std::uint64_t total = 0;
  for (int w : weights) {
    if (w < 0) throw std::invalid_argument("draw_weighted: negative weight");
    total += static_cast<std::uint64_t>(w);
  }
  if (total == 0) throw std::invalid_argument("draw_weighted: the weights sum to zero");
  std::uint64_t x = uniform(source, total);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    auto w = static_cast<std::uint64_t>(weights[i]);
    if (x < w) return i;
    x -= w;
  }
  return weights.size() - 1;  // unreachable: x < total
}

}  // namespace irt::shared
