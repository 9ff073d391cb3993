// The running trial's forecast (docs/supply.md, "Forecasting"): each site's
// randomization rate estimated from the study's expected rate and the site's
// actual enrollment (shared/forecast.h's gamma-Poisson update), which sizes
// the grants to the site's nodes (hub/grants.h); and the forecast that
// `irt-hub forecast` and GET /api/v1/forecast report: kits needed per site and
// depot per week, the enrollment completion date with an interval, and the
// kits that will pass do-not-dispense before they are likely to be used.
//
// Kit types can name arms: the report holds them, and to_json leaves them out
// for a blinded reader (totals only). Reads only; no table of its own (it
// reads hub/allocations.h, hub/site_activation.h, hub/kit_inventory.h and the
// ledger for randomization dates). Thread-safety: as HubState.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/hub_state.h"
#include "shared/forecast.h"
#include "shared/result.h"

namespace irt::hub {

// Runs of the completion simulation, and its fixed seed (so the same hub on
// the same day gives the same interval).
inline constexpr int kForecastRuns = 2000;
inline constexpr std::string_view kForecastSeedHex =
    "666f7265636173742d636f6d706c6574696f6e2d696e74657276616c2d763031";  // "forecast-completion-interval-v01"
inline constexpr int kMaxForecastWeeks = 104;

// What the hub believes of one site's enrollment rate at `now_ms`.
struct SiteRate {
  std::string site;
  double expected_per_day = 0;       // the prior mean: the study's, else kNodeForecastPerDay
  std::uint64_t randomized = 0;      // participants randomized there, as the hub knows them
  std::optional<std::int64_t> activated_ms;
  double days_active = 0;            // since activation; 0 before
  shared::RateEstimate estimate;     // the posterior
};
SiteRate site_rate(HubState& hub, const std::string& site_id, std::int64_t now_ms);

// Kits needed, per kit type (empty map for a blinded reader's view) and in total.
struct KitNeed {
  double total = 0;
  std::map<std::string, double> per_kit_type;
};

struct KitsAtRisk {
  std::size_t kits = 0;                          // usable kits held (or in transit to a site)
  std::size_t at_risk = 0;                       // of which pass do-not-dispense unused
  std::map<std::string, std::size_t> per_kit_type;  // at risk, per kit type
  std::optional<std::string> first_at_risk;      // the earliest last dispensable day among them
};

struct SiteForecast {
  SiteRate rate;
  std::string depot;
  std::string starts;  // the day it starts randomizing: today, or its planned activation date
  std::vector<KitNeed> weeks;
  KitsAtRisk stock;
};

struct DepotForecast {
  std::string depot;
  std::vector<KitNeed> weeks;
  KitsAtRisk stock;
};

struct Completion {
  std::string expected;            // at every site's mean rate
  std::string p10, p50, p90;       // by simulation
};

struct Forecast {
  std::string today;
  int weeks = 0;
  int target_participants = 0;     // 0: the study states none
  std::uint64_t randomized = 0;
  std::optional<Completion> completion;
  std::string completion_note;     // why there is no completion date, when there is none
  std::vector<SiteForecast> sites;
  std::vector<DepotForecast> depots;
};

// invalid_input when weeks is outside 1 to kMaxForecastWeeks.
shared::Result<Forecast> forecast(HubState& hub, int weeks, std::int64_t now_ms);

nlohmann::json to_json(const Forecast& f, bool blinded);

}  // namespace irt::hub
