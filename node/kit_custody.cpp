#include "node/kit_custody.h"

#include <algorithm>

namespace irt::node {

namespace {

// The rule, once: available, and expiring after the last day on which it may
// not be dispensed. Expiry dates are validated ISO dates
// (directive_payloads.cpp), which order as text: one comparison per kit
// instead of a parse (a kit with no expiry is never dispensable).
bool dispensable_after(const KitRecord& kit, const std::string& last_excluded) {
  return kit.status == KitStatus::available && kit.expiry > last_excluded;
}

std::string last_excluded_day(shared::Days today, int do_not_dispense_days) {
  return shared::format_date(today + do_not_dispense_days);
}

}  // namespace

bool dispensable(const KitRecord& kit, shared::Days today, int do_not_dispense_days) {
  return dispensable_after(kit, last_excluded_day(today, do_not_dispense_days));
}

KitPick pick_kits(const std::map<std::string, KitRecord>& custody, const std::string& kit_type, int count,
                  shared::Days today, int do_not_dispense_days, const std::vector<std::string>& excluded) {
  const std::string last_excluded = last_excluded_day(today, do_not_dispense_days);
  std::vector<const KitRecord*> usable;
  for (const auto& [number, kit] : custody) {
    if (kit.kit_type != kit_type || !dispensable_after(kit, last_excluded)) continue;
    if (std::find(excluded.begin(), excluded.end(), number) != excluded.end()) continue;
    usable.push_back(&kit);
  }
  // Only the first `count` in order are needed: a visit takes a few kits of
  // a stock that may hold thousands.
  auto first = usable.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(usable.size(),
                                                                                   static_cast<std::size_t>(std::max(count, 0))));
  std::partial_sort(usable.begin(), first, usable.end(), [](const KitRecord* a, const KitRecord* b) {
    if (a->expiry != b->expiry) return a->expiry < b->expiry;  // ISO dates sort as text
    if (a->number.size() != b->number.size()) return a->number.size() < b->number.size();
    return a->number < b->number;
  });
  KitPick pick;
  pick.usable = usable.size();
  for (auto it = usable.begin(); it != first; ++it) pick.kits.push_back((*it)->number);
  return pick;
}

}  // namespace irt::node
