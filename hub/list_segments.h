// List segments: the part of a list design's randomization list that a design
// change (a ratio change, an added arm; docs/randomization.md, "Design
// changes") generates under the new study version, after the slots of the
// list in use.
//
// A segment is generated, like the first list, by shared::generate_list over
// the new version, from a seed derived from the recorded one:
//   segment seed = BLAKE2b-256 domain "irt/list-segment/v1" of
//                  (recorded seed || u32 big-endian version)
// so it regenerates from the recorded seed and the version alone, and is
// independent of every other segment. Its slot and block numbers continue,
// per stratum, after the last slot and block of the list before it (a stratum
// the earlier list lacks starts at 1), so (stratum, slot) keys and the
// randomization numbers that show them stay unique across segments; each
// block is whole and balanced for the new version's ratio.
//
// The hub keeps the list in use as the first list followed by its segments
// (append_list_segment), one row per version in hub_randomization_lists
// (hub/randomization_store.h).
//
// Who calls it: the hub's amendment of the randomization
// (hub/randomization_store.h amend_randomization) and `irt-hub randlist
// generate|verify --after`. Pure functions.
#pragma once

#include <cstddef>

#include "crypto/bytes.h"
#include "shared/block_list.h"
#include "shared/result.h"
#include "shared/study.h"

namespace irt::hub {

// The seed of study version `version`'s segment, from the list's recorded seed.
crypto::Bytes list_segment_seed(crypto::ByteView recorded_seed, int version);

// The segment of `neu` (slots_per_stratum slots per stratum, whole blocks)
// continuing `before` (the list, or the concatenation of segments, in use).
// invalid_input when `neu` has no list or its block sizes do not honour its
// ratio; the message names the setting to fix.
shared::Result<shared::RandomizationList> generate_list_segment(const shared::Study& neu,
                                                               crypto::ByteView recorded_seed,
                                                               const shared::RandomizationList& before,
                                                               std::size_t slots_per_stratum);

// `list` followed by `segment` (generated to continue it): per stratum, the
// list's slots then the segment's; arms the segment adds are appended to the
// list's arms (an arm is never removed), each slot keeping its arm id; the
// ratio and study version become the segment's. Same strata required.
void append_list_segment(shared::RandomizationList& list, const shared::RandomizationList& segment);

}  // namespace irt::hub
