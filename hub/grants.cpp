#include "hub/grants.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "crypto/deterministic_stream.h"
#include "hub/allocations.h"
#include "hub/audit.h"
#include "hub/cap_allowances.h"
#include "hub/design_changes.h"
#include "hub/forecast.h"
#include "hub/kit_inventory.h"
#include "hub/leases.h"
#include "hub/minimization_streams.h"
#include "hub/number_ranges.h"
#include "hub/randomization_store.h"
#include "hub/shipments.h"
#include "shared/directive_payloads.h"
#include "shared/numbering.h"
#include "shared/offline_minimization.h"

namespace irt::hub {

namespace {

using nlohmann::json;

double offline_days(const shared::Study& s) { return static_cast<double>(s.supply.offline_days); }

// The participants per day a node of the site is granted for: the site's
// estimated rate (hub/forecast.h). Each node of a site gets the whole of it,
// since any one of them may be the one randomizing while the others are offline.
double forecast_per_day(HubState& hub, const std::string& site_id, std::int64_t now_ms) {
  return site_rate(hub, site_id, now_ms).estimate.mean();
}

// The slots, allowance or stream a node should hold: the forecast over the longest offline period.
std::size_t grant_target(HubState& hub, const std::string& site_id, std::int64_t now_ms) {
  return shared::grant_target_slots(forecast_per_day(hub, site_id, now_ms), offline_days(hub.study()));
}

std::string country_of(const shared::Study& study, const std::string& site_id) {
  const auto* site = study.find_site(site_id);
  return site ? site->country : std::string();
}

// ---- numbers

std::uint64_t grant_numbers(HubState& hub, const std::string& node_id, const std::string& site_id,
                            std::int64_t now_ms) {
  auto& db = hub.db();
  auto g = grant_number_range(db, node_id, site_id, kNumbersPerRange, now_ms);
  json payload = g;
  auto seq = hub.outbox().issue(node_id, shared::kGrantNumbersDirective, payload.dump(), now_ms);
  record_audit(db, {now_ms, "hub", "grant.numbers", node_id, "participant numbers for the node's site", "",
                    "range " + std::to_string(g.range_id) + ": " + shared::format_participant_number(g.prefix, g.digits, g.first) +
                        " to " + shared::format_participant_number(g.prefix, g.digits, g.last) + " (directive " +
                        std::to_string(seq) + ")"});
  return kNumbersPerRange;
}

// ---- slots

// The strata a node of `site_id` randomizes in: their site (and country)
// level is the node's; every combination of the other factors.
std::vector<std::uint32_t> site_strata(const shared::RandomizationList& list, const shared::Study& study,
                                       const std::string& site_id) {
  const auto country = country_of(study, site_id);
  std::vector<std::uint32_t> out;
  for (std::size_t s = 0; s < list.strata.count(); ++s) {
    auto levels = list.strata.levels_of(s);
    bool ours = true;
    for (std::size_t f = 0; f < list.strata.factors.size(); ++f) {
      const auto& factor = list.strata.factors[f];
      const auto& level = factor.levels[levels[f]];
      if (factor.id == shared::kSiteFactor && level != site_id) ours = false;
      if (factor.id == shared::kCountryFactor && level != country) ours = false;
    }
    if (ours) out.push_back(static_cast<std::uint32_t>(s));
  }
  return out;
}

// Room under the stratum caps that can count against `stratum`, as
// SliceLedger::grant expects it (it subtracts this stratum's outstanding
// slots itself): limit - used and outstanding slots of every matching stratum
// + this stratum's outstanding. Caps naming a factor that is not a
// stratification factor cannot be bounded by slices and are left to the
// central check.
long cap_headroom(const HubState& hub, const RandomizationStore& store, std::uint32_t stratum) {
  const auto& list = store.list();
  const auto& factors = list.strata.factors;
  auto matches = [&](const shared::Cap& cap, std::size_t s) {
    auto levels = list.strata.levels_of(s);
    for (const auto& [id, level] : cap.stratum) {
      // An init-capture: clang 14 cannot capture the structured binding itself.
      auto it = std::find_if(factors.begin(), factors.end(), [&factor = id](const auto& f) { return f.id == factor; });
      if (factors[static_cast<std::size_t>(it - factors.begin())].levels[levels[static_cast<std::size_t>(
              it - factors.begin())]] != level)
        return false;
    }
    return true;
  };
  long best = shared::kUnlimitedHeadroom;
  for (const auto& cap : hub.study().caps) {
    if (cap.scope != shared::CapScope::stratum) continue;
    bool boundable = std::all_of(cap.stratum.begin(), cap.stratum.end(), [&](const auto& kv) {
      return std::any_of(factors.begin(), factors.end(), [&](const auto& f) { return f.id == kv.first; });
    });
    if (!boundable || !matches(cap, stratum)) continue;
    long taken = 0;
    for (std::size_t s = 0; s < list.strata.count(); ++s) {
      if (!matches(cap, s)) continue;
      const auto s32 = static_cast<std::uint32_t>(s);
      taken += static_cast<long>(store.slices().used(s32));
      if (s32 != stratum) taken += static_cast<long>(store.slices().outstanding(s32));
    }
    best = std::min(best, static_cast<long>(cap.limit) - taken);
  }
  return best;
}

// The node's free slots in a stratum, less those of arms closed at the node
// for that stratum (hub/cap_allowances.h): the node skips them, so they do not
// count towards what it holds; they stay granted to it.
// A stratum's factor levels, as a participant's factors name them.
std::map<std::string, std::string> stratum_levels(const shared::Strata& strata, std::uint32_t stratum) {
  std::map<std::string, std::string> out;
  const auto levels = strata.levels_of(stratum);
  for (std::size_t f = 0; f < strata.factors.size() && f < levels.size(); ++f)
    out[strata.factors[f].id] = strata.factors[f].levels[levels[f]];
  return out;
}

std::size_t usable_free_slots(const RandomizationStore& store, const std::string& node_id, std::uint32_t stratum,
                              const std::vector<std::string>& closed) {
  const auto& slices = store.slices();
  if (closed.empty()) return slices.free_slots(node_id, stratum);
  const auto& list = store.list();
  std::size_t n = 0;
  for (auto slot : slices.free_slot_numbers(node_id, stratum)) {
    const auto& arm = list.allocation.arms[list.slots[list.stratum_begin[stratum] + slot - 1].arm];
    n += std::find(closed.begin(), closed.end(), arm) == closed.end();
  }
  return n;
}

// Grants whole blocks in each of the node's strata that needs them: at
// enrollment up to the target, later only where fewer than target / divisor
// slots are left.
shared::Result<std::uint64_t> grant_slots(HubState& hub, RandomizationStore& store, const std::string& node_id,
                                          const std::string& site_id, bool initial, std::int64_t now_ms,
                                          GrantsIssued& out) {
  const auto strata = site_strata(store.list(), hub.study(), site_id);
  if (strata.empty()) return std::uint64_t{0};
  const double forecast = forecast_per_day(hub, site_id, now_ms) / static_cast<double>(strata.size());
  const std::size_t target = shared::grant_target_slots(forecast, offline_days(hub.study()));
  shared::GrantSlots g;
  g.study_version = store.list().study_version;
  const auto capped_out = capped_out_arms(hub, node_id);
  const auto today = shared::day_of_millis(now_ms);
  for (auto s : strata) {
    auto closed = capped_out;
    const auto levels = stratum_levels(store.list().strata, s);
    for (const auto& a : hub.study().arms)
      if (hub.study().arm_closed_for(a.id, levels, today)) closed.push_back(a.id);
    const std::size_t held = usable_free_slots(store, node_id, s, closed);
    if (!initial && held * kTopUpDivisor >= target) continue;
    if (held >= target) continue;
    auto r = store.slices().grant(node_id, s, target - held, cap_headroom(hub, store, s));
    if (!r) {
      if (r.error().code == shared::Errc::exhausted) continue;  // cap reached or list used up: nothing to grant
      return r.error();
    }
    if (r->slots.empty()) continue;
    g.grants.push_back(std::move(r).value());
  }
  if (g.grants.empty()) return std::uint64_t{0};
  json payload = g;
  auto seq = hub.outbox().issue(node_id, shared::kGrantSlotsDirective, payload.dump(), now_ms);
  std::uint64_t slots = 0;
  for (const auto& grant : g.grants) {
    slots += grant.slots.size();
    // Slot and block numbers say nothing about arms; the arms stay out of the trail.
    record_audit(hub.db(), {now_ms, "hub", "grant.slots", node_id,
                            initial ? "initial slots at enrollment" : "top-up at sync", "",
                            "grant " + std::to_string(grant.grant_id) + ", stratum " + grant.stratum_label + ": " +
                                std::to_string(grant.slots.size()) + " slots (" +
                                std::to_string(grant.slots.front().slot) + " to " +
                                std::to_string(grant.slots.back().slot) + ", blocks " +
                                std::to_string(grant.slots.front().block) + " to " +
                                std::to_string(grant.slots.back().block) + "), directive " + std::to_string(seq)});
  }
  out.slots += slots;
  ++out.directives;
  return slots;
}

// ---- minimization streams

std::uint64_t active_nodes_of_site(HubState& hub, const std::string& site_id) {
  std::uint64_t n = 0;
  for (const auto& node : hub.ledger().nodes())
    if (node.site_id == site_id && node.status != sync::NodeStatus::revoked) ++n;
  return n;
}

double node_share(HubState& hub, const std::string& site_id) {
  std::size_t sites = 0;
  for (const auto& s : hub.study().sites) sites += s.active;
  auto nodes = active_nodes_of_site(hub, site_id);
  return 1.0 / static_cast<double>(std::max<std::size_t>(sites, 1)) / static_cast<double>(std::max<std::uint64_t>(nodes, 1));
}

// Room under the stratum caps over site and country only (the levels known
// before a participant arrives): limit - allocations there - what other
// nodes of the same place may still allocate.
long allowance_headroom(HubState& hub, const std::string& node_id, const std::string& site_id) {
  const auto country = country_of(hub.study(), site_id);
  long best = shared::kUnlimitedHeadroom;
  for (const auto& cap : hub.study().caps) {
    if (cap.scope != shared::CapScope::stratum || cap.stratum.empty()) continue;
    bool ours = true;
    for (const auto& [id, level] : cap.stratum) {
      if (id == shared::kSiteFactor) ours = ours && level == site_id;
      else if (id == shared::kCountryFactor) ours = ours && level == country;
      else ours = false;
    }
    if (!ours) continue;
    long taken = static_cast<long>(allocations_matching(hub.db(), cap.stratum));
    for (const auto& other : hub.ledger().nodes()) {
      if (other.node_id == node_id || other.status == sync::NodeStatus::revoked) continue;
      if (cap.stratum.count(std::string(shared::kSiteFactor)) && other.site_id != site_id) continue;
      if (cap.stratum.count(std::string(shared::kCountryFactor)) && country_of(hub.study(), other.site_id) != country)
        continue;
      if (auto s = newest_stream(hub.db(), other.node_id); s && !s->voided && s->allowance > s->used)
        taken += static_cast<long>(s->allowance - s->used);
    }
    best = std::min(best, static_cast<long>(cap.limit) - taken);
  }
  return best;
}

shared::Result<std::uint64_t> grant_stream(HubState& hub, const std::string& node_id, const std::string& site_id,
                                           std::int64_t now_ms, GrantsIssued& out) {
  auto config = shared::minimization_config(hub.study());
  if (!config) return config.error();
  auto [totals, allocated] = allocation_totals(hub.db(), *config, minimization_segment_start_ms(design_changes(hub)));
  const double share = node_share(hub, site_id);
  const std::uint64_t grants_before = streams_granted(hub.db());  // picks the arm this node leans against
  auto baseline = shared::offline_baseline(*config, totals, share, grants_before);
  std::uint64_t allowance = grant_target(hub, site_id, now_ms);
  long room = allowance_headroom(hub, node_id, site_id);
  if (room <= 0) return std::uint64_t{0};
  allowance = std::min<std::uint64_t>(allowance, static_cast<std::uint64_t>(room));

  shared::MinimizationStreamGrant g;
  g.stream_id = next_stream_id(hub.db(), node_id);
  auto seed = crypto::random_bytes(crypto::DeterministicStream::kSeedSize);
  g.seed_hex = crypto::to_hex(seed);
  g.allowance = allowance;
  g.synced_participants = allocated;
  g.baseline.resize(config->factors.size());
  for (std::size_t f = 0; f < config->factors.size(); ++f) {
    g.baseline[f].resize(config->factors[f].levels.size());
    for (std::size_t l = 0; l < config->factors[f].levels.size(); ++l)
      for (std::size_t k = 0; k < config->allocation.size(); ++k) g.baseline[f][l].push_back(baseline.at(f, l, k));
  }
  record_stream_grant(hub.db(), node_id, g, seed, now_ms);
  crypto::secure_zero(seed.data(), seed.size());
  json payload = g;
  auto seq = hub.outbox().issue(node_id, shared::kGrantMinimizationStreamDirective, payload.dump(), now_ms);
  crypto::secure_zero(g.seed_hex.data(), g.seed_hex.size());
  std::string text = payload.dump();
  crypto::secure_zero(text.data(), text.size());
  char share_text[32];
  std::snprintf(share_text, sizeof share_text, "%.4f", share);
  record_audit(hub.db(), {now_ms, "hub", "grant.minimization_stream", node_id, "minimization stream for the node", "",
                          "stream " + std::to_string(g.stream_id) + ": allowance " + std::to_string(g.allowance) +
                              ", baseline at " + std::to_string(allocated) + " study-wide allocations, share " +
                              share_text + " (directive " + std::to_string(seq) + ")"});
  out.streams += 1;
  ++out.directives;
  return g.allowance;
}

// ---- arm and cohort caps (hub/cap_allowances.h): sized like the minimization allowance.

shared::Status grant_allowances(HubState& hub, const std::string& node_id, const std::string& site_id, bool initial,
                                std::int64_t now_ms, GrantsIssued& out) {
  const auto target = grant_target(hub, site_id, now_ms);
  AllowanceSizing sizing{target, initial ? target : target / kTopUpDivisor, node_share(hub, site_id)};
  auto r = grant_cap_allowances(hub, node_id, sizing, now_ms);
  if (!r) return r.error();
  out.cap_allowances += *r;
  out.directives += *r;
  return {};
}

}  // namespace

shared::Result<GrantsIssued> issue_enrollment_grants(HubState& hub, const std::string& node_id,
                                                     const std::string& site_id, std::int64_t now_ms) {
  GrantsIssued out;
  out.numbers += grant_numbers(hub, node_id, site_id, now_ms);
  ++out.directives;
  // Allowances first: the slot grant counts only the slots of arms open at the node.
  if (auto st = grant_allowances(hub, node_id, site_id, true, now_ms, out); !st) return st.error();
  if (auto* store = hub.randomization()) {
    auto r = grant_slots(hub, *store, node_id, site_id, true, now_ms, out);
    if (!r) return r.error();
  } else {
    auto r = grant_stream(hub, node_id, site_id, now_ms, out);
    if (!r) return r.error();
  }
  // A nurse's tablet is not a stock point of its own: it takes kits by custody
  // transfer from its site node, and resupply reviews the site as a whole.
  auto node = hub.ledger().find_node(node_id);
  if (!node || node->kind == "site") {
    auto shipment = ship_initial(hub.db(), hub.study(), node_id, site_id, "hub", now_ms);
    if (shipment) {
      out.kits += shipment->kits.size();
      if (send_if_shipped(hub, *shipment, now_ms)) ++out.directives;
    } else {
      // The node can still screen and randomize; the central team ships by hand.
      record_audit(hub.db(), {now_ms, "hub", "shipment.not_sent", node_id, shipment.error().message, "", ""});
    }
  }
  if (renew_lease(hub, node_id, now_ms)) {  // the node's first lease
    ++out.leases;
    ++out.directives;
  }
  return out;
}

shared::Result<GrantsIssued> top_up_grants(HubState& hub, const std::string& node_id, std::int64_t now_ms) {
  GrantsIssued out;
  auto node = hub.ledger().find_node(node_id);
  if (!node || node->status != sync::NodeStatus::active) return out;
  if (numbers_left(hub.db(), node_id) * kTopUpDivisor < kNumbersPerRange) {
    out.numbers += grant_numbers(hub, node_id, node->site_id, now_ms);
    ++out.directives;
  }
  if (auto st = grant_allowances(hub, node_id, node->site_id, false, now_ms, out); !st) return st.error();
  if (auto* store = hub.randomization()) {
    auto r = grant_slots(hub, *store, node_id, node->site_id, false, now_ms, out);
    if (!r) return r.error();
  } else {
    auto current = newest_stream(hub.db(), node_id);
    const auto target = grant_target(hub, node->site_id, now_ms);
    auto config = shared::minimization_config(hub.study());
    if (!config) return config.error();
    const auto segment_start = minimization_segment_start_ms(design_changes(hub));
    const auto allocated = allocation_totals(hub.db(), *config, segment_start).second;
    // A stream issued before an arm was added holds a baseline over the old
    // arms: the node needs one for the current segment.
    bool due = !current || current->voided || current->issued_ms < segment_start ||
               (current->allowance - std::min(current->used, current->allowance)) * kTopUpDivisor < target ||
               current->synced_participants != allocated;
    if (due) {
      auto r = grant_stream(hub, node_id, node->site_id, now_ms, out);
      if (!r) return r.error();
    }
  }
  if (renew_lease(hub, node_id, now_ms)) {
    ++out.leases;
    ++out.directives;
  }
  return out;
}

GrantsVoided void_node_grants(HubState& hub, const std::string& node_id, const std::string& actor,
                              std::int64_t now_ms) {
  GrantsVoided out;
  auto& db = hub.db();
  if (auto* store = hub.randomization()) {
    for (const auto& v : store->slices().revoke(node_id)) {
      out.slots += v.slots.size();
      record_audit(db, {now_ms, actor, "grant.slots_voided", node_id, "node revoked", "granted",
                        std::to_string(v.slots.size()) + " unused slots of stratum " +
                            store->list().strata.label(v.stratum) + " voided, never to be granted again"});
    }
  }
  out.numbers = void_node_numbers(db, node_id, now_ms);
  if (out.numbers > 0)
    record_audit(db, {now_ms, actor, "grant.numbers_voided", node_id, "node revoked", "granted",
                      std::to_string(out.numbers) + " unused participant numbers voided, never to be granted again"});
  out.streams = void_node_streams(db, node_id, now_ms);
  if (out.streams > 0)
    record_audit(db, {now_ms, actor, "grant.minimization_stream_voided", node_id, "node revoked", "granted",
                      std::to_string(out.streams) + " minimization stream(s) voided"});
  out.cap_places = void_cap_allowances(hub, node_id, actor, now_ms);
  out.kits = void_node_kits(db, node_id, actor, "node " + node_id + " revoked", now_ms);
  if (out.kits > 0)
    record_audit(db, {now_ms, actor, "kits.lost_with_node", node_id, "node revoked", "at node",
                      std::to_string(out.kits) + " kits not yet dispensed marked lost with the node"});
  return out;
}

}  // namespace irt::hub
