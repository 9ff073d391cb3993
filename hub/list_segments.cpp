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

}  // namespace irt::hub
