// The resupply decision: what to ship to one site, given its stock, the
// dispensings its randomized participants have ahead of them, the
// randomizations expected from its remaining slots, and the study's resupply
// parameters. One pure function, called by the live hub and by the supply
// simulator (shared/supply_simulator.h), so that what is simulated before first
// patient in is what runs (docs/supply.md).
//
// Blind-safe composition. Kit types that share a blinded label look the same to
// blinded site staff, so they are decided together as one group: whether the
// group ships and how many kits it ships depend only on quantities that do not
// depend on the arms of the site's participants (the group's total usable stock,
// its total scheduled and expected demand, which in a blinded study is the same
// whatever the arm, since every arm receives the same number of kits at a
// visit). Only the split of that total between the group's kit types follows
// each kit type's own stock, and every kit type of the group is in every
// shipment at least `shipment_minimum` times. docs/supply.md gives the reasoning
// and the property the tests check.
//
// The caller counts usable stock: kits on hand that are neither inside the
// do-not-count window nor quarantined, plus kits in transit to the site.
// Thread-safety: pure functions of their arguments.
#pragma once

#include <string>
#include <vector>

namespace irt::shared {

struct Study;

enum class ResupplyStrategy { min_max, predictive };

// Min/max levels of one kit type at a site: the initial shipment sends
// `initial`; a review orders when usable stock is at or below `trigger`, up to `up_to`.
struct KitLevels {
  std::string kit_type;
  int initial = 0;
  int trigger = 0;
  int up_to = 0;
};

// Predictive resupply: need = kits for the scheduled dispensings whose window
// opens within trigger_window_days, plus kits for the randomizations expected
// within it, plus min_buffer (per kit type); a review orders when usable stock
// is below the need, up to the same demand over resupply_window_days plus max_buffer.
struct PredictiveSettings {
  int trigger_window_days = 14;
  int resupply_window_days = 42;
  int min_buffer = 1;
  int max_buffer = 2;
};

struct ResupplyParameters {
  ResupplyStrategy strategy = ResupplyStrategy::min_max;
  std::vector<KitLevels> levels;  // min_max: one per kit type; predictive: `initial` unused
  PredictiveSettings predictive;
  int shipment_minimum = 1;       // kits of every kit type of a group in each shipment (blind-safe padding)

  const KitLevels* find_levels(const std::string& kit_type) const;
};

// One kit type the site stocks.
struct SiteStock {
  std::string kit_type;
  std::string label;    // its blinded label: kit types sharing one are decided together
  int usable = 0;       // on hand, outside do-not-count, not quarantined
  int in_transit = 0;   // shipped to the site, not yet received
};

// One dispensing a randomized participant has ahead: `count` kits of
// `kit_type` at a visit whose window opens in `days` days (0 or less: open now).
struct ScheduledKits {
  int days = 0;
  std::string kit_type;
  int count = 0;
};

// What one participant randomized now is expected to need: `count` kits of
// `kit_type` (a fraction when it depends on the arm, weighted by the arms'
// expected shares) at a visit whose window opens `days` after randomization.
struct ExpectedKits {
  int days = 0;
  std::string kit_type;
  double count = 0;
};

struct ResupplyInput {
  std::vector<SiteStock> stock;             // every kit type the site stocks, in a fixed order
  std::vector<ScheduledKits> scheduled;     // the site's randomized participants' dispensings to come
  int slots_left = 0;                       // randomizations the site may still make
  double rate_per_day = 0;                  // the site's expected randomizations per day
  std::vector<ExpectedKits> per_new_participant;  // kits_per_new_participant(...) of the study
};

struct ShipmentLine {
  std::string kit_type;
  int count = 0;
};

// Kits to ship per kit type, in the order of ResupplyInput::stock; empty when
// nothing is to be shipped. A kit type of `stock` without levels in a min_max
// parameter set is a programming error (std::invalid_argument): the study
// loader guarantees levels for every kit type.
std::vector<ShipmentLine> decide_resupply(const ResupplyInput& input, const ResupplyParameters& parameters);

// The shipment sent when a site is activated: min_max sends each kit type's
// `initial` level; predictive sends what decide_resupply orders for a site with
// no stock. Either way composed by the same blind-safe rule.
std::vector<ShipmentLine> initial_order(const ResupplyInput& input, const ResupplyParameters& parameters);

// Expected kits of `kit_type` for the randomizations a site makes within the
// next `window_days` days: participants arrive at `rate_per_day`, at most
// `slots_left` of them, and one randomized at time t needs each entry whose
// window opens by the window's end (t + days <= window_days).
double expected_new_kits(const ResupplyInput& input, const std::string& kit_type, int window_days);

// ResupplyInput::per_new_participant for a study: each dispensing visit's kits,
// weighted by the arms' shares of the allocation ratio, at the day its window
// opens (visit day minus window_before).
std::vector<ExpectedKits> kits_per_new_participant(const Study& study);

}  // namespace irt::shared
