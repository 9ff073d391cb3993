#include "hub/list_segments.h"

#include <doctest/doctest.h>

#include <array>
#include <map>
#include <set>
#include <utility>

#include "tests/shared/randomization_fixtures.h"

using namespace irt;
using shared::RandomizationList;
using shared::Study;

namespace {

const std::array<std::uint8_t, 32> kRecordedSeed = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

// Version 1: arms A and B at 1:1 in blocks of 4, six strata (site x sex).
Study version1() {
  Study s = test::stratified_study({{"A", "a", "T", 1}, {"B", "b", "T", 1}}, {4});
  s.version = 1;
  return s;
}

RandomizationList list_in_use(const Study& v1) {
  sync::SeededSource source(kRecordedSeed);
  auto list = shared::generate_list(v1, source, 10);  // 12 slots per stratum: three blocks of 4
  REQUIRE(list.ok());
  return std::move(*list);
}

RandomizationList segment_of(const Study& neu, const RandomizationList& before) {
  auto segment = hub::generate_list_segment(neu, kRecordedSeed, before, 12);
  REQUIRE_MESSAGE(segment.ok(), segment.error().message);
  return std::move(*segment);
}

// Per block of the segment (stratum, block): how many slots of each arm.
std::map<std::pair<std::uint32_t, std::uint32_t>, std::map<std::uint16_t, int>> block_counts(const RandomizationList& l) {
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::map<std::uint16_t, int>> out;
  for (const auto& s : l.slots) ++out[{s.stratum, s.block}][s.arm];
  return out;
}

// Every (stratum, slot) of the list and the segment together is unique, and
// the segment's numbers in each stratum start right after the list's.
void check_numbering_continues(const RandomizationList& before, const RandomizationList& segment) {
  std::set<std::pair<std::uint32_t, std::uint32_t>> keys;
  std::map<std::uint32_t, std::uint32_t> last_slot, last_block;
  for (const auto& s : before.slots) {
    CHECK(keys.insert({s.stratum, s.slot}).second);
    last_slot[s.stratum] = std::max(last_slot[s.stratum], s.slot);
    last_block[s.stratum] = std::max(last_block[s.stratum], s.block);
  }
  for (std::size_t st = 0; st < segment.strata.count(); ++st) {
    const auto& first = segment.slots[segment.stratum_begin[st]];
    CHECK(first.slot == last_slot[static_cast<std::uint32_t>(st)] + 1);
    CHECK(first.block == last_block[static_cast<std::uint32_t>(st)] + 1);
  }
  for (const auto& s : segment.slots) CHECK(keys.insert({s.stratum, s.slot}).second);
}

}  // namespace

TEST_CASE("a list segment regenerates from the recorded seed and its version alone") {
  const Study v1 = version1();
  const auto before = list_in_use(v1);
  Study v2 = v1;
  v2.version = 2;
  v2.arms[0].ratio = 2;
  v2.randomization.block_sizes = {3, 6};
  const auto a = segment_of(v2, before);
  const auto b = segment_of(v2, before);
  CHECK(shared::encode_list_csv(a) == shared::encode_list_csv(b));
  CHECK(a.study_version == 2);

  // Each version has a seed of its own, and none is the recorded seed.
  const auto s2 = hub::list_segment_seed(kRecordedSeed, 2);
  CHECK(s2.size() == 32);
  CHECK(s2 == hub::list_segment_seed(kRecordedSeed, 2));
  CHECK(s2 != hub::list_segment_seed(kRecordedSeed, 3));
  CHECK(s2 != crypto::Bytes(kRecordedSeed.begin(), kRecordedSeed.end()));
  auto other_seed = kRecordedSeed;
  other_seed[0] ^= 1;
  CHECK(s2 != hub::list_segment_seed(other_seed, 2));
  Study v3 = v2;
  v3.version = 3;
  CHECK(shared::encode_list_csv(segment_of(v3, before)) != shared::encode_list_csv(a));
}

TEST_CASE("a ratio change's segment holds whole blocks of the new ratio, numbered after the list in use") {
  const Study v1 = version1();
  const auto before = list_in_use(v1);
  Study v2 = v1;
  v2.version = 2;
  v2.arms[0].ratio = 2;  // 1:1 -> 2:1
  v2.randomization.block_sizes = {3, 6};
  const auto segment = segment_of(v2, before);
  CHECK(shared::check_block_ratios(segment).ok());
  for (const auto& [key, counts] : block_counts(segment)) {
    CHECK(counts.at(0) == 2 * counts.at(1));
    CHECK(counts.size() == 2);
  }
  check_numbering_continues(before, segment);

  // Block sizes that cannot hold the new ratio are refused, naming the setting.
  Study bad = v2;
  bad.randomization.block_sizes = {4};
  auto refused = hub::generate_list_segment(bad, kRecordedSeed, before, 12);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::invalid_input);
  CHECK(refused.error().message.find("block") != std::string::npos);
}

TEST_CASE("an added arm's segment holds balanced blocks over the new arm set, numbered after the list in use") {
  const Study v1 = version1();
  const auto before = list_in_use(v1);
  Study v2 = v1;
  v2.version = 2;
  v2.arms.push_back({"C", "c", "T", 1});
  v2.randomization.block_sizes = {3, 6};
  const auto segment = segment_of(v2, before);
  CHECK(shared::check_block_ratios(segment).ok());
  for (const auto& [key, counts] : block_counts(segment)) {
    REQUIRE(counts.size() == 3);
    CHECK(counts.at(0) == counts.at(1));
    CHECK(counts.at(1) == counts.at(2));
  }
  check_numbering_continues(before, segment);
}
