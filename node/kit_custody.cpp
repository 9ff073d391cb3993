#include "node/kit_custody.h"

#include <algorithm>

namespace irt::node {

bool dispensable(const KitRecord& kit, shared::Days today, int do_not_dispense_days) {
  if (kit.status != KitStatus::available) return false;
  auto expiry = shared::parse_date(kit.expiry);
  if (!expiry) return false;
  return *expiry - today > do_not_dispense_days;
}

KitPick pick_kits(const std::map<std::string, KitRecord>& custody, const std::string& kit_type, int count,
                  shared::Days today, int do_not_dispense_days, const std::vector<std::string>& excluded) {
  // Expiry dates are validated ISO dates (directive_payloads.cpp), which order
  // as text: one comparison per kit instead of a parse.
  const std::string last_excluded = shared::format_date(today + do_not_dispense_days);
  std::vector<const KitRecord*> usable;
  for (const auto& [number, kit] : custody) {
    if (kit.status != KitStatus::available || kit.expiry <= last_excluded || kit.kit_type != kit_type) continue;
    if (std::find(excluded.begin(), excluded.end(), number) != excluded.end()) continue;
    usable.push_back(&kit);
  }
  std::sort(usable.begin(), usable.end(), [](const KitRecord* a, const KitRecord* b) {
    if (a->expiry != b->expiry) return a->expiry < b->expiry;  // ISO dates sort as text
    if (a->number.size() != b->number.size()) return a->number.size() < b->number.size();
    return a->number < b->number;
  });
  KitPick pick;
  pick.usable = usable.size();
  for (std::size_t i = 0; i < usable.size() && static_cast<int>(i) < count; ++i) pick.kits.push_back(usable[i]->number);
  return pick;
}

}  // namespace irt::node
