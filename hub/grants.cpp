#include "hub/grants.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "crypto/deterministic_stream.h"
#include "hub/audit.h"
#include "hub/consumption.h"
#include "hub/kit_inventory.h"
#include "hub/randomization_store.h"
#include "shared/directive_payloads.h"
#include "shared/numbering.h"
#include "shared/offline_minimization.h"

namespace irt::hub {

namespace {

using nlohmann::json;

// hub_number_ranges: every range ever granted; `first` is unique per site, so
// two nodes of a site never share a number, and a voided range keeps its
// numbers out of every later range. used_through is the highest number the
// node reported using (0: none); a node uses its ranges in order.
// hub_minimization_streams: every stream granted; the node uses its newest.
const std::vector<storage::Migration> kMigrations = {
    {1, R"sql(
CREATE TABLE hub_number_ranges (
  id INTEGER PRIMARY KEY,
  node_id TEXT NOT NULL,
  range_id INTEGER NOT NULL,
  site_id TEXT NOT NULL,
  first INTEGER NOT NULL,
  last INTEGER NOT NULL,
  digits INTEGER NOT NULL,
  used_through INTEGER NOT NULL DEFAULT 0,
  issued_ms INTEGER NOT NULL,
  voided_ms INTEGER,
  UNIQUE (node_id, range_id),
  UNIQUE (site_id, first)
);
CREATE TABLE hub_minimization_streams (
  node_id TEXT NOT NULL,
  stream_id INTEGER NOT NULL,
  seed BLOB NOT NULL,
  allowance INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0,
  synced_participants INTEGER NOT NULL,
  baseline TEXT NOT NULL,
  issued_ms INTEGER NOT NULL,
  voided_ms INTEGER,
  PRIMARY KEY (node_id, stream_id)
);
)sql"},
};

std::int64_t i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }

int digits_of(std::uint32_t n) {
  int d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

double offline_days(const shared::Study& s) { return static_cast<double>(s.supply.offline_days); }

std::string country_of(const shared::Study& study, const std::string& site_id) {
  const auto* site = study.find_site(site_id);
  return site ? site->country : std::string();
}

// ---- numbers

std::uint64_t grant_numbers(HubState& hub, const std::string& node_id, const std::string& site_id,
                            std::int64_t now_ms) {
  auto& db = hub.db();
  std::int64_t first = 1, range_id = 1;
  {
    auto st = db.prepare("SELECT coalesce(max(last), 0) + 1 FROM hub_number_ranges WHERE site_id = ?");
    st.bind(1, site_id);
    st.step();
    first = st.int64(0);
    auto r = db.prepare("SELECT coalesce(max(range_id), 0) + 1 FROM hub_number_ranges WHERE node_id = ?");
    r.bind(1, node_id);
    r.step();
    range_id = r.int64(0);
  }
  shared::NumberRangeGrant g;
  g.range_id = static_cast<std::uint64_t>(range_id);
  g.prefix = site_id;
  g.first = static_cast<std::uint32_t>(first);
  g.last = g.first + kNumbersPerRange - 1;
  g.digits = std::max(3, digits_of(g.last));
  db.prepare("INSERT INTO hub_number_ranges(node_id, range_id, site_id, first, last, digits, issued_ms) "
             "VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind_all(node_id, range_id, site_id, static_cast<std::int64_t>(g.first), static_cast<std::int64_t>(g.last),
                g.digits, now_ms)
      .run();
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
      auto it = std::find_if(factors.begin(), factors.end(), [&](const auto& f) { return f.id == id; });
      if (factors[static_cast<std::size_t>(it - factors.begin())].levels[levels[static_cast<std::size_t>(
              it - factors.begin())]] != level)
        return false;
    }
    return true;
  };
  long best = shared::SliceLedger::kUnlimited;
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
      taken += static_cast<long>(store.used(s32));
      if (s32 != stratum) taken += static_cast<long>(store.slices().outstanding(s32));
    }
    best = std::min(best, static_cast<long>(cap.limit) - taken);
  }
  return best;
}

// Grants whole blocks in each of the node's strata that needs them: at
// enrollment up to the target, later only where fewer than target / divisor
// slots are left.
shared::Result<std::uint64_t> grant_slots(HubState& hub, RandomizationStore& store, const std::string& node_id,
                                          const std::string& site_id, bool initial, std::int64_t now_ms,
                                          GrantsIssued& out) {
  const auto strata = site_strata(store.list(), hub.study(), site_id);
  if (strata.empty()) return std::uint64_t{0};
  const double forecast = kNodeForecastPerDay / static_cast<double>(strata.size());
  const std::size_t target = shared::grant_target_slots(forecast, offline_days(hub.study()));
  shared::GrantSlots g;
  g.study_version = store.list().study_version;
  for (auto s : strata) {
    const std::size_t held = store.slices().free_slots(node_id, s);
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
  store.save_slices(now_ms);
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

std::optional<StreamGrantRecord> newest_stream(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare("SELECT max(stream_id) FROM hub_minimization_streams WHERE node_id = ?");
  st.bind(1, node_id);
  if (!st.step() || st.is_null(0)) return std::nullopt;
  return find_stream(db, node_id, static_cast<std::uint64_t>(st.int64(0)));
}

// Room under the stratum caps over site and country only (the levels known
// before a participant arrives): limit - allocations there - what other
// nodes of the same place may still allocate.
long allowance_headroom(HubState& hub, const std::string& node_id, const std::string& site_id) {
  const auto country = country_of(hub.study(), site_id);
  long best = shared::SliceLedger::kUnlimited;
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
  auto [totals, allocated] = allocation_totals(hub.db(), *config);
  const double share = node_share(hub, site_id);
  std::uint64_t grants_before = 0;  // study-wide: picks the arm this node leans against
  {
    auto st = hub.db().prepare("SELECT count(*) FROM hub_minimization_streams");
    st.step();
    grants_before = static_cast<std::uint64_t>(st.int64(0));
  }
  auto baseline = shared::offline_baseline(*config, totals, share, grants_before);
  std::uint64_t allowance = shared::grant_target_slots(kNodeForecastPerDay, offline_days(hub.study()));
  long room = allowance_headroom(hub, node_id, site_id);
  if (room <= 0) return std::uint64_t{0};
  allowance = std::min<std::uint64_t>(allowance, static_cast<std::uint64_t>(room));

  shared::MinimizationStreamGrant g;
  {
    auto st = hub.db().prepare("SELECT coalesce(max(stream_id), 0) + 1 FROM hub_minimization_streams WHERE node_id = ?");
    st.bind(1, node_id);
    st.step();
    g.stream_id = static_cast<std::uint64_t>(st.int64(0));
  }
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
  json baseline_json = g.baseline;
  hub.db()
      .prepare("INSERT INTO hub_minimization_streams(node_id, stream_id, seed, allowance, synced_participants, "
               "baseline, issued_ms) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind_all(node_id, i64(g.stream_id), storage::BlobView(seed), i64(g.allowance), i64(g.synced_participants),
                baseline_json.dump(), now_ms)
      .run();
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

}  // namespace

shared::Status migrate_grants(storage::Database& db) { return db.migrate("hub.grants", kMigrations); }

std::optional<StreamGrantRecord> find_stream(storage::Database& db, const std::string& node_id,
                                             std::uint64_t stream_id) {
  auto st = db.prepare(
      "SELECT seed, allowance, used, synced_participants, baseline, voided_ms FROM hub_minimization_streams "
      "WHERE node_id = ? AND stream_id = ?");
  st.bind_all(node_id, i64(stream_id));
  if (!st.step()) return std::nullopt;
  StreamGrantRecord r;
  r.stream_id = stream_id;
  auto seed = st.blob(0);
  r.seed_hex = crypto::to_hex(seed);
  crypto::secure_zero(seed.data(), seed.size());
  r.allowance = static_cast<std::uint64_t>(st.int64(1));
  r.used = static_cast<std::uint64_t>(st.int64(2));
  r.synced_participants = static_cast<std::uint64_t>(st.int64(3));
  r.baseline_json = st.text(4);
  r.voided = !st.is_null(5);
  return r;
}

void record_stream_use(storage::Database& db, const std::string& node_id, std::uint64_t stream_id,
                       std::uint64_t decision_sequence) {
  db.prepare("UPDATE hub_minimization_streams SET used = max(used, ?) WHERE node_id = ? AND stream_id = ?")
      .bind_all(i64(decision_sequence), node_id, i64(stream_id))
      .run();
}

std::uint64_t numbers_left(storage::Database& db, const std::string& node_id) {
  auto st = db.prepare(
      "SELECT coalesce(sum(last - max(used_through, first - 1)), 0) FROM hub_number_ranges "
      "WHERE node_id = ? AND voided_ms IS NULL");
  st.bind(1, node_id);
  st.step();
  return static_cast<std::uint64_t>(st.int64(0));
}

bool record_number_use(storage::Database& db, const std::string& node_id, const std::string& number) {
  auto parsed = shared::parse_participant_number(number);
  if (!parsed) return false;
  const auto n = parsed->n;
  db.prepare("UPDATE hub_number_ranges SET used_through = max(used_through, ?) "
             "WHERE node_id = ? AND site_id = ? AND first <= ? AND last >= ?")
      .bind_all(i64(n), node_id, parsed->prefix, i64(n), i64(n))
      .run();
  return db.changes() == 1;
}

shared::Result<GrantsIssued> issue_enrollment_grants(HubState& hub, const std::string& node_id,
                                                     const std::string& site_id, std::int64_t now_ms) {
  GrantsIssued out;
  out.numbers += grant_numbers(hub, node_id, site_id, now_ms);
  ++out.directives;
  if (auto* store = hub.randomization()) {
    if (auto st = store->reload_slices(); !st) return st.error();
    auto r = grant_slots(hub, *store, node_id, site_id, true, now_ms, out);
    if (!r) return r.error();
  } else {
    auto r = grant_stream(hub, node_id, site_id, now_ms, out);
    if (!r) return r.error();
  }
  auto shipment = ship_initial(hub.db(), hub.study(), node_id, site_id, "hub", now_ms);
  if (shipment) {
    json payload = *shipment;
    hub.outbox().issue(node_id, shared::kShipmentDirective, payload.dump(), now_ms);
    out.kits += shipment->kits.size();
    ++out.directives;
  } else {
    // The node can still screen and randomize; the central team ships by hand.
    record_audit(hub.db(), {now_ms, "hub", "shipment.not_sent", node_id, shipment.error().message, "", ""});
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
  if (auto* store = hub.randomization()) {
    if (auto st = store->reload_slices(); !st) return st.error();
    auto r = grant_slots(hub, *store, node_id, node->site_id, false, now_ms, out);
    if (!r) return r.error();
  } else {
    auto current = newest_stream(hub.db(), node_id);
    const auto target = shared::grant_target_slots(kNodeForecastPerDay, offline_days(hub.study()));
    auto config = shared::minimization_config(hub.study());
    if (!config) return config.error();
    const auto allocated = allocation_totals(hub.db(), *config).second;
    bool due = !current || current->voided || (current->allowance - std::min(current->used, current->allowance)) *
                                                      kTopUpDivisor < target ||
               current->synced_participants != allocated;
    if (due) {
      auto r = grant_stream(hub, node_id, node->site_id, now_ms, out);
      if (!r) return r.error();
    }
  }
  return out;
}

GrantsVoided void_node_grants(HubState& hub, const std::string& node_id, const std::string& actor,
                              std::int64_t now_ms) {
  GrantsVoided out;
  auto& db = hub.db();
  if (auto* store = hub.randomization()) {
    if (auto st = store->reload_slices(); !st) throw storage::StorageError(st.error().message);
    for (const auto& v : store->slices().revoke(node_id)) {
      out.slots += v.slots.size();
      record_audit(db, {now_ms, actor, "grant.slots_voided", node_id, "node revoked", "granted",
                        std::to_string(v.slots.size()) + " unused slots of stratum " +
                            store->list().strata.label(v.stratum) + " voided, never to be granted again"});
    }
    store->save_slices(now_ms);
  }
  out.numbers = numbers_left(db, node_id);
  db.prepare("UPDATE hub_number_ranges SET voided_ms = ? WHERE node_id = ? AND voided_ms IS NULL")
      .bind_all(now_ms, node_id)
      .run();
  if (out.numbers > 0)
    record_audit(db, {now_ms, actor, "grant.numbers_voided", node_id, "node revoked", "granted",
                      std::to_string(out.numbers) + " unused participant numbers voided, never to be granted again"});
  db.prepare("UPDATE hub_minimization_streams SET voided_ms = ? WHERE node_id = ? AND voided_ms IS NULL")
      .bind_all(now_ms, node_id)
      .run();
  out.streams = static_cast<std::uint64_t>(db.changes());
  if (out.streams > 0)
    record_audit(db, {now_ms, actor, "grant.minimization_stream_voided", node_id, "node revoked", "granted",
                      std::to_string(out.streams) + " minimization stream(s) voided"});
  out.kits = void_node_kits(db, node_id);
  if (out.kits > 0)
    record_audit(db, {now_ms, actor, "kits.lost_with_node", node_id, "node revoked", "at node",
                      std::to_string(out.kits) + " kits not yet dispensed marked lost with the node"});
  return out;
}

}  // namespace irt::hub
