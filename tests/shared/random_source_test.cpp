#include "shared/random_source.h"

#include <doctest/doctest.h>

#include <array>
#include <deque>
#include <limits>
#include <map>
#include <vector>

#include "randomization_fixtures.h"

using namespace irt::shared;

namespace {

// Replays given 64-bit words (little-endian), so a test can aim at the rejection boundary.
class ScriptedSource final : public RandomSource {
 public:
  explicit ScriptedSource(std::vector<std::uint64_t> words) {
    for (auto w : words)
      for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<std::uint8_t>(w >> (8 * i)));
  }
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) {
      REQUIRE(!bytes_.empty());
      b = bytes_.front();
      bytes_.pop_front();
    }
  }
  std::size_t left() const { return bytes_.size(); }

 private:
  std::deque<std::uint8_t> bytes_;
};

}  // namespace

TEST_CASE("uniform rejects the top of the 64-bit range that would bias the modulo") {
  // 2^64 mod 3 = 1, so exactly the largest word is rejected for n = 3.
  ScriptedSource s({std::numeric_limits<std::uint64_t>::max(), 5});
  CHECK(uniform(s, 3) == 2);
  CHECK(s.left() == 0);
  ScriptedSource t({std::numeric_limits<std::uint64_t>::max() - 1});
  CHECK(uniform(t, 3) == (std::numeric_limits<std::uint64_t>::max() - 1) % 3);
}

TEST_CASE("uniform of a power of two never rejects and of one consumes nothing") {
  ScriptedSource s({std::numeric_limits<std::uint64_t>::max()});
  CHECK(uniform(s, 8) == 7);
  CHECK(uniform(s, 1) == 0);
  CHECK(s.left() == 0);
}

TEST_CASE("uniform over seven values passes a chi-square test") {
  auto source = irt::test::seeded(3);
  std::array<double, 7> counts{};
  const int n = 70000;
  for (int i = 0; i < n; ++i) counts[uniform(source, 7)] += 1;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - n / 7.0) * (c - n / 7.0) / (n / 7.0);
  CHECK(chi2 < 22.46);  // chi-square, 6 df, upper 0.001 point
}

TEST_CASE("every permutation of a Fisher-Yates shuffle of three is equally likely") {
  auto source = irt::test::seeded(4);
  std::map<std::array<int, 3>, double> seen;
  const int n = 60000;
  for (int i = 0; i < n; ++i) {
    std::array<int, 3> a{0, 1, 2};
    shuffle(source, std::span<int>(a));
    seen[a] += 1;
  }
  REQUIRE(seen.size() == 6);
  double chi2 = 0;
  for (auto& [perm, c] : seen) chi2 += (c - n / 6.0) * (c - n / 6.0) / (n / 6.0);
  CHECK(chi2 < 20.52);  // chi-square, 5 df, upper 0.001 point
}

TEST_CASE("the same seed gives the same draws and a counting source reports the bytes used") {
  auto a = irt::test::seeded(9);
  auto b = irt::test::seeded(9);
  CountingSource counted(b, 100);
  for (int i = 0; i < 50; ++i) CHECK(uniform(a, 1000003) == uniform(counted, 1000003));
  CHECK(counted.position() == 100 + 50 * 8);
  CHECK(unit(a) == unit(counted));
}

TEST_CASE("draw_weighted follows the weights and skips zero weights") {
  auto source = irt::test::seeded(5);
  std::array<int, 3> w{2, 0, 1};
  std::array<double, 3> counts{};
  for (int i = 0; i < 30000; ++i) counts[draw_weighted(source, w)] += 1;
  CHECK(counts[1] == 0);
  CHECK(counts[0] / 30000 == doctest::Approx(2.0 / 3).epsilon(0.03));
}
