// `irt-hub forecast`: the running trial's forecast (hub/forecast.h) for a
// reader holding view_inventory; kit types only for an unblinded reader.
#include <cstdio>
#include <iostream>

#include "hub/commands.h"
#include "hub/forecast.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::Args;

void print_weeks(const std::string& who, const std::vector<KitNeed>& weeks, bool blinded,
                 const std::vector<shared::KitType>& kit_types) {
  std::printf("%-22s", who.c_str());
  for (const auto& w : weeks) std::printf(" %6.1f", w.total);
  std::printf("\n");
  if (blinded) return;
  for (const auto& kt : kit_types) {
    std::printf("  %-20s", kt.id.c_str());
    for (const auto& w : weeks) {
      auto it = w.per_kit_type.find(kt.id);
      std::printf(" %6.1f", it == w.per_kit_type.end() ? 0.0 : it->second);
    }
    std::printf("\n");
  }
}

std::string at_risk_text(const KitsAtRisk& s, bool blinded) {
  std::string out = std::to_string(s.at_risk) + " of " + std::to_string(s.kits);
  if (s.first_at_risk) out += " (first " + *s.first_at_risk + ")";
  if (!blinded)
    for (const auto& [kt, n] : s.per_kit_type) out += " " + kt + ":" + std::to_string(n);
  return out;
}

int forecast_command_run(const Args& a) {
  auto weeks = shared::parse_u64(a.get("weeks"));
  if (!weeks || *weeks < 1 || *weeks > static_cast<std::uint64_t>(kMaxForecastWeeks)) {
    std::cerr << a.command_path() << ": --weeks must be a whole number from 1 to " << kMaxForecastWeeks
              << " (got \"" << a.get("weeks") << "\")\n";
    return 2;
  }
  int rc = 0;
  auto opened = open_hub(a, rc);
  if (!opened) return rc;
  auto& hub = *opened;
  auto read_blinded = reader_reads_blinded(a, hub, shared::Permission::view_inventory, rc);
  if (!read_blinded) return rc;
  const bool blinded = *read_blinded;
  auto f = forecast(hub, static_cast<int>(*weeks), sync::system_millis());
  if (!f) return report(a, f.error());
  if (a.flag("json")) {
    std::cout << to_json(*f, blinded).dump(2) << "\n";
    return 0;
  }
  std::cout << "forecast on " << f->today << " over " << f->weeks << " weeks: " << f->randomized;
  if (f->target_participants > 0) std::cout << " of " << f->target_participants;
  std::cout << " participants randomized\n";
  if (f->completion)
    std::cout << "enrollment completion: expected " << f->completion->expected << ", 10th to 90th percentile "
              << f->completion->p10 << " to " << f->completion->p90 << " (median " << f->completion->p50
              << "; simulation, " << kForecastRuns << " runs, fixed seed)\n";
  else
    std::cout << "enrollment completion: not forecast: " << f->completion_note << "\n";
  std::printf("\n%-8s %-8s %-10s %10s %10s %10s %9s  %s\n", "SITE", "DEPOT", "STARTS", "EXPECTED/D", "RATE/D",
              "RANDOMIZED", "DAYS", "KITS AT RISK OF EXPIRY (of kits held)");
  for (const auto& s : f->sites)
    std::printf("%-8s %-8s %-10s %10.3f %10.3f %10llu %9.1f  %s\n", s.rate.site.c_str(), s.depot.c_str(),
                s.starts.c_str(), s.rate.expected_per_day, s.rate.estimate.mean(),
                static_cast<unsigned long long>(s.rate.randomized), s.rate.days_active,
                at_risk_text(s.stock, blinded).c_str());
  for (const auto& d : f->depots)
    std::printf("%-8s %-8s %-10s %10s %10s %10s %9s  %s\n", "-", d.depot.c_str(), "-", "-", "-", "-", "-",
                at_risk_text(d.stock, blinded).c_str());
  std::printf("\nkits needed per week (week 1 from %s)\n%-22s", f->today.c_str(), "");
  for (int w = 1; w <= f->weeks; ++w) std::printf(" %6s", ("wk" + std::to_string(w)).c_str());
  std::printf("\n");
  for (const auto& s : f->sites) print_weeks("site " + s.rate.site, s.weeks, blinded, hub.study().kit_types);
  for (const auto& d : f->depots) print_weeks("depot " + d.depot, d.weeks, blinded, hub.study().kit_types);
  return 0;
}

}  // namespace

shared::Command forecast_command() {
  return {.name = "forecast",
          .summary = "Forecast: kits needed per site and depot per week, enrollment completion, expiry risk",
          .options = {kData, kDb, kPassphraseFile, {"weeks", "N", "weeks to forecast, 1 to " + std::to_string(kMaxForecastWeeks), true},
                      kJson, reader_option(shared::Permission::view_inventory)},
          .run = forecast_command_run};
}

}  // namespace irt::hub
