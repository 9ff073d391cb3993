#include "shared/kit_numbers.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "randomization_fixtures.h"

using namespace irt::shared;

TEST_CASE("kit numbers are distinct, sparse and cover the requested kit types") {
  std::vector<KitTypeCount> counts{{"KT-A", 3000}, {"KT-B", 3000}};
  auto source = irt::test::seeded(41);
  auto list = generate_kit_list(counts, source);
  REQUIRE(list.ok());
  CHECK(list->digits == 6);
  REQUIRE(list->kits.size() == 6000);
  std::set<std::uint64_t> numbers;
  int a = 0;
  for (const auto& k : list->kits) {
    numbers.insert(k.number);
    CHECK(k.number >= 100000);
    CHECK(k.number <= 999999);
    a += k.kit_type == "KT-A";
  }
  CHECK(numbers.size() == 6000);
  CHECK(a == 3000);
  CHECK(std::is_sorted(list->kits.begin(), list->kits.end(),
                       [](const KitNumber& x, const KitNumber& y) { return x.number < y.number; }));
}

TEST_CASE("a kit's number, order and range say nothing about its kit type") {
  std::vector<KitTypeCount> counts{{"KT-A", 2000}, {"KT-B", 2000}};
  auto source = irt::test::seeded(42);
  auto list = *generate_kit_list(counts, source);
  // Rank-sum (Mann-Whitney) of type A's position among the sorted numbers:
  // under no association its mean is n_a (N + 1) / 2 with sd sqrt(n_a n_b (N + 1) / 12).
  double rank_sum = 0;
  int sequential_pairs = 0;
  for (std::size_t i = 0; i < list.kits.size(); ++i) {
    if (list.kits[i].kit_type == "KT-A") rank_sum += static_cast<double>(i + 1);
    if (i > 0 && list.kits[i].number == list.kits[i - 1].number + 1) ++sequential_pairs;
  }
  const double mean = 2000.0 * 4001 / 2, sd = std::sqrt(2000.0 * 2000 * 4001 / 12);
  CHECK(std::fabs(rank_sum - mean) < 4 * sd);
  CHECK(sequential_pairs < 20);  // about 4000 x 4000 / 900000 ~ 18 expected by chance at most
  // Runs of the same type along the sorted numbers: mean N/2 + 1 for a random arrangement.
  int runs = 1;
  for (std::size_t i = 1; i < list.kits.size(); ++i) runs += list.kits[i].kit_type != list.kits[i - 1].kit_type;
  CHECK(std::fabs(runs - 2001.0) < 4 * std::sqrt(999.75));
}

TEST_CASE("the same seed reproduces the kit list") {
  std::vector<KitTypeCount> counts{{"KT-A", 10}, {"KT-B", 5}};
  auto a = irt::test::seeded(43);
  auto b = irt::test::seeded(43);
  CHECK(encode_kit_csv(*generate_kit_list(counts, a)) == encode_kit_csv(*generate_kit_list(counts, b)));
  auto c = irt::test::seeded(43);
  CHECK(generate_kit_list(counts, c, 3).error().code == Errc::invalid_input);
}

TEST_CASE("a later kit list never draws a number already in use, and says so when too few are left") {
  // 3 digits: 900 numbers, 9 kits at most (1%). 800 of them taken: every draw lands on the other 100.
  std::unordered_set<std::uint64_t> taken;
  for (std::uint64_t n = 100; n < 900; ++n) taken.insert(n);
  std::vector<KitTypeCount> counts{{"KT-A", 1}};
  for (std::uint8_t seed = 1; seed <= 20; ++seed) {
    auto source = irt::test::seeded(seed);
    auto list = generate_kit_list(counts, source, 3, taken);
    REQUIRE(list.ok());
    for (const auto& k : list->kits) CHECK(k.number >= 900);
  }
  // 801 taken leave 99 numbers: fewer than 100 per kit.
  taken.insert(900);
  auto source = irt::test::seeded(1);
  auto refused = generate_kit_list(counts, source, 3, taken);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Errc::exhausted);
  CHECK(refused.error().message == "kit numbers of 3 digits cannot hold 1 more kits sparsely beside the 801 in use; use more digits");
}
