// How randomness enters the domain library. Every random choice the
// randomization code makes (a list's block order, a minimization tie, a kit
// number) is drawn from a RandomSource through the functions below, never from
// a standard-library distribution: those differ between library versions, and a
// list must regenerate byte for byte anywhere from its recorded seed.
//
// The concrete source is the hub's (or node's) adapter around a seeded ChaCha20
// stream (crypto/deterministic_stream.h); shared/ depends on nothing of ours, so
// it only sees this interface. The exact byte consumption of each draw is part
// of the list format (docs/randomization.md):
//   uniform(n):   8 bytes little-endian -> x; reject while x >= 2^64 - (2^64 mod n);
//                 return x mod n (no modulo bias). n = 1 consumes nothing.
//   unit():       8 bytes little-endian -> (x >> 11) * 2^-53, in [0, 1).
//   bernoulli(p): unit() < p (p <= 0 and p >= 1 consume nothing).
//   shuffle:      Fisher-Yates from the last element down, j = uniform(i + 1).
// Thread-safety: a RandomSource is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace irt::shared {

class RandomSource {
 public:
  virtual ~RandomSource();
  virtual void fill(std::span<std::uint8_t> out) = 0;
};

// Counts the bytes drawn through it, so a decision can record where in a
// granted stream its randomness began and how much it used.
class CountingSource final : public RandomSource {
 public:
  explicit CountingSource(RandomSource& inner, std::uint64_t start = 0) : inner_(inner), position_(start) {}
  void fill(std::span<std::uint8_t> out) override;
  std::uint64_t position() const { return position_; }

 private:
  RandomSource& inner_;
  std::uint64_t position_;
};

// A uniform integer in [0, n); n must be at least 1 (a programming error otherwise).
std::uint64_t uniform(RandomSource& source, std::uint64_t n);

// A uniform double in [0, 1) with 53 random bits.
double unit(RandomSource& source);

// True with probability p.
bool bernoulli(RandomSource& source, double p);

// An index drawn with probability weights[i] / sum(weights); weights are
// non-negative integers with a positive sum. One uniform(sum) draw.
std::size_t draw_weighted(RandomSource& source, std::span<const int> weights);

// Fisher-Yates shuffle in place, every permutation equally likely.
template <class T>
void shuffle(RandomSource& source, std::span<T> items) {
  for (std::size_t i = items.size(); i > 1; --i) {
    auto j = static_cast<std::size_t>(uniform(source, i));
    if (j != i - 1) std::swap(items[i - 1], items[j]);
  }
}

}  // namespace irt::shared
