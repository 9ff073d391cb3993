#include "shared/resupply.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>

#include "shared/study.h"

namespace irt::shared {

const KitLevels* ResupplyParameters::find_levels(const std::string& kit_type) const {
  for (const auto& l : levels)
    if (l.kit_type == kit_type) return &l;
  return nullptr;
}

double expected_new_kits(const ResupplyInput& input, const std::string& kit_type, int window_days) {
  double slots = std::max(0, input.slots_left);
  double kits = 0;
  for (const auto& e : input.per_new_participant) {
    if (e.kit_type != kit_type || e.days > window_days) continue;
    double arrivals = std::min(input.rate_per_day * static_cast<double>(window_days - e.days), slots);
    kits += arrivals * e.count;
  }
  return kits;
}

std::vector<ExpectedKits> kits_per_new_participant(const Study& study) {
  double total_ratio = 0;
  for (const auto& a : study.arms) total_ratio += a.ratio;
  std::vector<ExpectedKits> out;
  for (const auto& v : study.visits)
    for (const auto& d : v.dispense) {
      const Arm* arm = study.find_arm(d.arm);
      if (!arm || total_ratio <= 0) continue;
      out.push_back({v.day - v.window_before, d.kit_type, d.count * arm->ratio / total_ratio});
    }
  return out;
}

namespace {

// What one kit type brings to its group's decision: its usable stock, the
// level at which the group orders and the level it orders up to.
struct KitPosition {
  std::size_t index = 0;  // in ResupplyInput::stock
  int usable = 0;
  double need = 0;    // min_max: the trigger level; predictive: the need
  double target = 0;  // the order-up-to level
  double due = 0;     // predictive: kits its randomized participants take within the trigger window
  bool wanted = false;  // someone may still need it: scheduled or expected
};

double scheduled_kits(const ResupplyInput& input, const std::string& kit_type, int window_days) {
  double kits = 0;
  for (const auto& s : input.scheduled)
    if (s.kit_type == kit_type && s.days <= window_days) kits += s.count;
  return kits;
}

KitPosition position_of(const ResupplyInput& input, std::size_t index, const ResupplyParameters& p) {
  const SiteStock& s = input.stock[index];
  KitPosition k{index, s.usable + s.in_transit, 0, 0};
  if (p.strategy == ResupplyStrategy::min_max) {
    const KitLevels* levels = p.find_levels(s.kit_type);
    if (!levels) throw std::invalid_argument("resupply: no min/max levels for kit type " + s.kit_type);
    k.need = levels->trigger;
    k.target = levels->up_to;
    k.wanted = input.slots_left > 0 || scheduled_kits(input, s.kit_type, INT_MAX) > 0;
  } else {
    const PredictiveSettings& w = p.predictive;
    k.due = scheduled_kits(input, s.kit_type, w.trigger_window_days);
    double expected = expected_new_kits(input, s.kit_type, w.trigger_window_days);
    k.wanted = k.due > 0 || expected > 0;
    k.need = k.due + expected + w.min_buffer;
    k.target = scheduled_kits(input, s.kit_type, w.resupply_window_days) +
               expected_new_kits(input, s.kit_type, w.resupply_window_days) + w.max_buffer;
  }
  return k;
}

// Kits never come in fractions: a fractional level is rounded up, with a
// margin so that sums of shares such as 0.5 + 0.5 do not round 1 up to 2.
int kits_for(double level) { return static_cast<int>(std::ceil(level - 1e-9)); }

// The decision for one group of kit types sharing a blinded label. Whether it
// ships, and how many kits in all, are functions of the group's sums; the
// split gives each kit type the minimum, then the rest one kit at a time to the
// kit type furthest below its target (the first in stock order on a tie).
// One exception puts patients before the blind: a kit type with no usable kit
// while someone may still need it, or (predictive) with fewer kits than its
// participants are due to take within the trigger window, makes the group
// order even when the group's sums would not (another kit type's surplus hid
// its shortfall), and then brings every kit type up to its own target.
void decide_group(const std::vector<KitPosition>& group, const ResupplyParameters& p, bool initial,
                  std::vector<ShipmentLine>& out) {
  int usable = 0;
  double need = 0, target = 0;
  for (const auto& k : group) {
    usable += k.usable;
    need += k.need;
    target += k.target;
  }
  // min_max orders at or below the trigger (an integer), predictive below the need.
  bool order = p.strategy == ResupplyStrategy::min_max ? usable <= need : usable < need;
  bool short_kit_type = false;
  for (const auto& k : group)
    if (k.usable < k.due || (k.usable == 0 && k.wanted)) short_kit_type = true;
  if (!initial && !order && !short_kit_type) return;
  int minimum = std::max(0, p.shipment_minimum);
  int total = std::max(kits_for(target) - usable, minimum * static_cast<int>(group.size()));
  // Ordered for a short kit type alone: that kit type is brought up to its own
  // target, whatever the others hold. (When the group orders by its sums, the
  // total stays the one that does not depend on the arms.)
  if (short_kit_type && !order && !initial) {
    int each = 0;
    for (const auto& k : group) each += std::max(minimum, kits_for(k.target) - k.usable);
    total = std::max(total, each);
  }
  if (total <= 0) return;
  std::vector<int> counts(group.size(), minimum);
  for (int left = total - minimum * static_cast<int>(group.size()); left > 0; --left) {
    std::size_t best = 0;
    double best_gap = 0;
    for (std::size_t i = 0; i < group.size(); ++i) {
      double gap = group[i].target - group[i].usable - counts[i];
      if (i == 0 || gap > best_gap + 1e-9) {
        best = i;
        best_gap = gap;
      }
    }
    ++counts[best];
  }
  for (std::size_t i = 0; i < group.size(); ++i)
    out[group[i].index].count = counts[i];
}

std::vector<ShipmentLine> compose(const ResupplyInput& input, const ResupplyParameters& p, bool initial) {
  std::vector<ShipmentLine> out;
  for (const auto& s : input.stock) out.push_back({s.kit_type, 0});
  std::vector<bool> done(input.stock.size(), false);
  for (std::size_t i = 0; i < input.stock.size(); ++i) {
    if (done[i]) continue;
    std::vector<KitPosition> group;
    for (std::size_t j = i; j < input.stock.size(); ++j)
      if (!done[j] && input.stock[j].label == input.stock[i].label) {
        done[j] = true;
        group.push_back(position_of(input, j, p));
      }
    decide_group(group, p, initial, out);
  }
  std::erase_if(out, [](const ShipmentLine& l) { return l.count == 0; });
  return out;
}

}  // namespace

std::vector<ShipmentLine> decide_resupply(const ResupplyInput& input, const ResupplyParameters& parameters) {
  return compose(input, parameters, false);
}

std::vector<ShipmentLine> initial_order(const ResupplyInput& input, const ResupplyParameters& parameters) {
  ResupplyInput empty = input;
  for (auto& s : empty.stock) s.usable = s.in_transit = 0;
  if (parameters.strategy == ResupplyStrategy::predictive) return compose(empty, parameters, true);
  ResupplyParameters initial = parameters;
  for (auto& l : initial.levels) l.up_to = l.initial;
  return compose(empty, initial, true);
}

}  // namespace irt::shared
