// Blinded kit lists: random, non-sequential kit numbers mapped to kit types,
// so that no arm can be inferred from a kit's number, from the order of the
// numbers or from their range. The hub generates the list from a recorded seed
// (like randomization lists) and the supply side labels kits with it.
//
// Numbers are drawn uniformly without replacement from [10^(d-1), 10^d), with
// d digits chosen so that at most 1% of that range is used (a mistyped number
// is then unlikely to be another real kit); kit types are laid out in the
// requested order and shuffled (Fisher-Yates), then paired with the numbers in
// drawing order. The list is presented sorted by number.
// Draws: uniform(9 * 10^(d-1)) per number (redrawn on a repeat, or when the
// number is `taken`: a later list's kits never reuse an earlier list's
// numbers), then the shuffle. The same seed and the same taken numbers
// reproduce the list.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "shared/random_source.h"
#include "shared/result.h"

namespace irt::shared {

struct KitTypeCount {
  std::string kit_type;  // KitType::id
  std::size_t count = 0;
};

struct KitNumber {
  std::uint64_t number = 0;
  std::string kit_type;
};

struct KitList {
  int digits = 0;
  std::vector<KitNumber> kits;  // sorted by number
};

// digits = 0 picks the smallest d >= 6 with 9 * 10^(d-1) >= 100 x total kits.
// exhausted when `taken` leaves too few numbers of `digits` digits free.
Result<KitList> generate_kit_list(std::span<const KitTypeCount> counts, RandomSource& source, int digits = 0,
                                  const std::unordered_set<std::uint64_t>& taken = {});

// "kit_number,kit_type" lines, sorted by number. An unblinded artefact.
std::string encode_kit_csv(const KitList& list);

}  // namespace irt::shared
