#include "shared/kit_numbers.h"

#include <algorithm>
#include <unordered_set>

namespace irt::shared {

Result<KitList> generate_kit_list(std::span<const KitTypeCount> counts, RandomSource& source, int digits,
                                  const std::unordered_set<std::uint64_t>& taken) {
  std::size_t total = 0;
  for (const auto& c : counts) total += c.count;
  if (total == 0)
    return make_error(Errc::invalid_input, "a kit list needs at least one kit; give a positive count for a kit type");
  auto span_of = [](int d) {
    std::uint64_t low = 1;
    for (int i = 1; i < d; ++i) low *= 10;
    return low;
  };
  if (digits == 0) {
    digits = 6;
    while (digits < 18 && 9 * span_of(digits) < 100 * static_cast<std::uint64_t>(total)) ++digits;
  }
  if (digits < 3 || digits > 18 || 9 * span_of(digits) < 100 * static_cast<std::uint64_t>(total))
    return make_error(Errc::invalid_input, "kit numbers of " + std::to_string(digits) + " digits cannot hold " +
                                               std::to_string(total) +
                                               " kits sparsely (at most 1% of the range); use more digits");
  const std::uint64_t low = span_of(digits);
  std::uint64_t taken_here = 0;
  for (auto n : taken) taken_here += n >= low && n < 10 * low;
  if (9 * low - taken_here < 100 * static_cast<std::uint64_t>(total))
    return make_error(Errc::exhausted, "kit numbers of " + std::to_string(digits) + " digits cannot hold " +
                                           std::to_string(total) + " more kits sparsely beside the " +
                                           std::to_string(taken_here) + " in use; use more digits");
  std::vector<std::uint64_t> numbers;
  numbers.reserve(total);
  std::unordered_set<std::uint64_t> seen;
  seen.reserve(total * 2);
  while (numbers.size() < total) {
    std::uint64_t n = low + uniform(source, 9 * low);
    if (!taken.count(n) && seen.insert(n).second) numbers.push_back(n);
  }
  std::vector<std::size_t> types;
  types.reserve(total);
  for (std::size_t t = 0; t < counts.size(); ++t) types.insert(types.end(), counts[t].count, t);
  shuffle(source, std::span<std::size_t>(types));
  KitList list;
  list.digits = digits;
  for (std::size_t i = 0; i < total; ++i) list.kits.push_back({numbers[i], counts[types[i]].kit_type});
  std::sort(list.kits.begin(), list.kits.end(), [](const KitNumber& a, const KitNumber& b) { return a.number < b.number; });
  return list;
}

std::string encode_kit_csv(const KitList& list) {
  std::string out = "kit_number,kit_type\n";
  for (const auto& k : list.kits) out += std::to_string(k.number) + "," + k.kit_type + "\n";
  return out;
}

}  // namespace irt::shared
