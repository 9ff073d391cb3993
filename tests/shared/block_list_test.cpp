#include "shared/block_list.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <map>

#include "crypto/bytes.h"
#include "crypto/hash.h"
#include "randomization_fixtures.h"
#include "shared/slot_slice.h"

using namespace irt::shared;

namespace {

std::string list_hash(const RandomizationList& list) {
  return irt::crypto::hash_domain("irt/randlist/v1", irt::crypto::as_bytes(encode_list_csv(list))).hex();
}

RandomizationList make(const Study& study, std::uint8_t seed, std::size_t per_stratum) {
  auto source = irt::test::seeded(seed);
  auto list = generate_list(study, source, per_stratum);
  REQUIRE(list.ok());
  return std::move(*list);
}

}  // namespace

TEST_CASE("strata are the cross product of the factors, site and country included") {
  Study s = irt::test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4});
  auto strata = strata_of(s);
  REQUIRE(strata.ok());
  CHECK(strata->count() == 6);
  CHECK(strata->label(0) == "site=101;sex=F");
  CHECK(strata->label(5) == "site=103;sex=M");
  CHECK(*strata->index_of({{"site", "102"}, {"sex", "M"}, {"age", "old"}}) == 3);
  CHECK(strata->index_of({{"site", "999"}, {"sex", "M"}}).error().code == Errc::invalid_input);
  s.randomization.strata = {"country"};
  CHECK(strata_of(s)->count() == 2);
}

TEST_CASE("every complete block holds exactly the configured ratio, 2:1 with blocks of 3 and 6") {
  Study s = irt::test::stratified_study({{"A", "a", "T", 2}, {"B", "b", "T", 1}}, {3, 6});
  auto list = make(s, 1, 200);
  CHECK(check_block_ratios(list).ok());
  std::map<int, int> sizes;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::array<int, 3>> blocks;  // size, count A, count B
  for (const auto& slot : list.slots) {
    auto& b = blocks[{slot.stratum, slot.block}];
    b[0] = slot.block_size;
    ++b[1 + slot.arm];
  }
  for (auto& [key, b] : blocks) {
    ++sizes[b[0]];
    CHECK(b[1] == 2 * b[2]);
    CHECK(b[1] + b[2] == b[0]);
  }
  CHECK(sizes[3] > 100);  // both sizes are drawn
  CHECK(sizes[6] > 100);
  for (std::size_t st = 0; st < 6; ++st) CHECK(list.stratum_begin[st + 1] - list.stratum_begin[st] >= 200);
}

TEST_CASE("a changed block breaks the ratio check, which names the block but no arm") {
  Study s = irt::test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4});
  auto list = make(s, 1, 20);
  list.slots[5].arm = static_cast<std::uint16_t>(1 - list.slots[5].arm);
  auto st = check_block_ratios(list);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("block 2 of stratum 'site=101;sex=F'") != std::string::npos);
}

TEST_CASE("the same seed and study version reproduce the list byte for byte and its hash") {
  Study s = irt::test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4, 6});
  auto a = make(s, 7, 50);
  auto b = make(s, 7, 50);
  CHECK(encode_list_csv(a) == encode_list_csv(b));
  CHECK(list_hash(a) == list_hash(b));
  CHECK(list_hash(make(s, 8, 50)) != list_hash(a));
  // Pinned: this hash changes only if the generator or the list format does,
  // which would stop every recorded list from regenerating.
  CHECK(list_hash(a) == "7d2e0311e35589b5b1d02daea390f248652851ba70e236f1f45b659ad537a640");
}

TEST_CASE("the CSV encoding parses back to the same rows") {
  Study s = irt::test::stratified_study({{"A,1", "a", "T", 1}, {"B", "b", "T", 1}}, {4});
  auto list = make(s, 2, 8);
  auto csv = encode_list_csv(list);
  CHECK(csv.rfind("stratum,stratum_label,block,block_size,slot,arm\n1,site=101;sex=F,1,4,1,", 0) == 0);
  auto rows = parse_list_csv(csv);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == list.slots.size());
  for (std::size_t i = 0; i < rows->size(); ++i) {
    CHECK((*rows)[i].slot == list.slots[i].slot);
    CHECK((*rows)[i].arm == list.allocation.arms[list.slots[i].arm]);
  }
  CHECK(parse_list_csv("stratum,x\n").error().code == Errc::invalid_input);
}

TEST_CASE("a 100,000-assignment simple randomization passes a chi-square test of its 2:1:1 ratio") {
  Study s = irt::test::two_arm_study(Method::simple);
  s.arms = {{"A", "a", "T", 2}, {"B", "b", "T", 1}, {"C", "c", "T", 1}};
  auto list = make(s, 11, 100000);
  REQUIRE(list.slots.size() == 100000);
  std::array<double, 3> counts{};
  for (const auto& slot : list.slots) counts[slot.arm] += 1;
  const std::array<double, 3> expected{50000, 25000, 25000};
  double chi2 = 0;
  for (std::size_t j = 0; j < 3; ++j) chi2 += (counts[j] - expected[j]) * (counts[j] - expected[j]) / expected[j];
  CHECK(chi2 < 13.816);  // chi-square, 2 df, upper 0.001 point
}

TEST_CASE("lists refuse minimization and block sizes that do not honour the ratio") {
  Study s = irt::test::minimization_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, 2, 0.8);
  auto source = irt::test::seeded(1);
  CHECK(generate_list(s, source, 10).error().code == Errc::invalid_input);
  Study b = irt::test::stratified_study({{"A", "a", "T", 2}, {"B", "b", "T", 1}}, {4});
  auto r = generate_list(b, source, 10);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("multiple of 3") != std::string::npos);
}

TEST_CASE("Efron and big stick lists stay within their design's imbalance") {
  Study s = irt::test::two_arm_study(Method::max_tolerated_imbalance);
  s.randomization.max_tolerated_imbalance = 3;
  auto list = make(s, 12, 5000);
  long d = 0;
  for (const auto& slot : list.slots) {
    d += slot.arm == 0 ? 1 : -1;
    CHECK(std::labs(d) <= 3);
  }
}

// Nodes own whole blocks per site stratum and consume them in any interleaving;
// at every point the study-wide imbalance is bounded by the blocks in progress:
// |n_A - n_B| <= (number of partially used blocks) x (largest block) / 2.
TEST_CASE("site-blocked stratified lists keep total imbalance within partial blocks x largest block / 2") {
  Study s = irt::test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4, 6});
  auto list = make(s, 13, 400);
  SliceLedger ledger(list);
  std::vector<NodeSlots> nodes(3);  // node i is site 101 + i
  auto source = irt::test::seeded(14);
  std::map<std::pair<std::uint32_t, std::uint32_t>, int> used_in_block;
  long d = 0;
  for (int step = 0; step < 1500; ++step) {
    const auto node = static_cast<std::size_t>(uniform(source, 3));
    const auto sex = static_cast<std::uint32_t>(uniform(source, 2));
    const auto stratum = static_cast<std::uint32_t>(node * 2 + sex);
    auto slot = nodes[node].take_next(stratum);
    if (!slot) {
      REQUIRE(slot.error().code == Errc::exhausted);
      auto g = ledger.grant("node-" + std::to_string(node), stratum, 5);
      REQUIRE(g.ok());
      REQUIRE(nodes[node].apply(*g).ok());
      slot = nodes[node].take_next(stratum);
      REQUIRE(slot.ok());
    }
    d += slot->arm == "A" ? 1 : -1;
    int& used = used_in_block[{stratum, slot->block}];
    ++used;
    long partial = 0;
    for (const auto& [key, n] : used_in_block) {
      std::uint32_t size = 0;
      for (std::size_t i = list.stratum_begin[key.first]; i < list.stratum_begin[key.first + 1]; ++i)
        if (list.slots[i].block == key.second) {
          size = list.slots[i].block_size;
          break;
        }
      partial += n < static_cast<int>(size) ? 1 : 0;
    }
    CHECK(std::labs(d) <= partial * 6 / 2);
  }
}
