#include "hub/list_segments.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "crypto/hash.h"
#include "sync/seeded_source.h"

namespace irt::hub {

crypto::Bytes list_segment_seed(crypto::ByteView recorded_seed, int version) {
  const auto v = static_cast<std::uint32_t>(version);
  const std::array<std::uint8_t, 4> be{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                                       static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  auto hash = crypto::Blake2b("irt/list-segment/v1").update(recorded_seed).update(crypto::ByteView(be)).finish();
  crypto::Bytes seed(hash.bytes.begin(), hash.bytes.end());
  crypto::secure_zero(hash.data(), hash.size());
  return seed;
}

shared::Result<shared::RandomizationList> generate_list_segment(const shared::Study& neu,
                                                               crypto::ByteView recorded_seed,
                                                               const shared::RandomizationList& before,
                                                               std::size_t slots_per_stratum) {
  auto seed = list_segment_seed(recorded_seed, neu.version);
  sync::SeededSource source(seed);
  crypto::secure_zero(seed.data(), seed.size());
  auto segment = shared::generate_list(neu, source, slots_per_stratum);
  if (!segment) return segment.error();
  // The last slot and block number of each stratum in the list before it.
  std::vector<std::uint32_t> last_slot(segment->strata.count(), 0), last_block(segment->strata.count(), 0);
  for (const auto& s : before.slots)
    if (s.stratum < last_slot.size()) {
      last_slot[s.stratum] = std::max(last_slot[s.stratum], s.slot);
      last_block[s.stratum] = std::max(last_block[s.stratum], s.block);
    }
  for (auto& s : segment->slots) {
    s.slot += last_slot[s.stratum];
    s.block += last_block[s.stratum];
  }
  return segment;
}

void append_list_segment(shared::RandomizationList& list, const shared::RandomizationList& segment) {
  // The segment's arm index -> the combined list's.
  std::vector<std::uint16_t> arm_of(segment.allocation.arms.size());
  std::vector<int> ratio(list.allocation.arms.size(), 0);
  for (std::size_t a = 0; a < segment.allocation.arms.size(); ++a) {
    const auto& id = segment.allocation.arms[a];
    auto at = std::find(list.allocation.arms.begin(), list.allocation.arms.end(), id);
    if (at == list.allocation.arms.end()) {
      list.allocation.arms.push_back(id);
      ratio.push_back(0);
      at = list.allocation.arms.end() - 1;
    }
    arm_of[a] = static_cast<std::uint16_t>(at - list.allocation.arms.begin());
    ratio[arm_of[a]] = segment.allocation.ratio[a];
  }
  list.allocation.ratio = std::move(ratio);
  std::vector<shared::ListSlot> slots;
  slots.reserve(list.slots.size() + segment.slots.size());
  std::vector<std::size_t> begin;
  const std::size_t strata = segment.strata.count();
  for (std::size_t s = 0; s < strata; ++s) {
    begin.push_back(slots.size());
    if (s + 1 < list.stratum_begin.size())
      slots.insert(slots.end(), list.slots.begin() + static_cast<std::ptrdiff_t>(list.stratum_begin[s]),
                   list.slots.begin() + static_cast<std::ptrdiff_t>(list.stratum_begin[s + 1]));
    for (std::size_t i = segment.stratum_begin[s]; i < segment.stratum_begin[s + 1]; ++i) {
      auto slot = segment.slots[i];
      slot.arm = arm_of[slot.arm];
      slots.push_back(slot);
    }
  }
  begin.push_back(slots.size());
  list.slots = std::move(slots);
  list.stratum_begin = std::move(begin);
  list.strata = segment.strata;
  list.study_version = segment.study_version;
}

}  // namespace irt::hub
