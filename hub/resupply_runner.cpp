#include "hub/resupply_runner.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "hub/allocations.h"
#include "hub/deviations.h"
#include "hub/kit_inventory.h"
#include "hub/minimization_streams.h"
#include "hub/randomization_store.h"
#include "hub/shipments.h"
#include "hub/site_activation.h"
#include "shared/civil_date.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::KitStatus;
using shared::to_string;

constexpr std::int64_t kDayMs = 86400000;

// The site's active nodes, earliest enrolled first.
std::vector<sync::LedgerNode> site_nodes(HubState& hub, const std::string& site_id) {
  std::vector<sync::LedgerNode> out;
  for (auto& n : hub.ledger().nodes())
    if (n.site_id == site_id && n.status == sync::NodeStatus::active) out.push_back(std::move(n));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.enrolled_ms != b.enrolled_ms ? a.enrolled_ms < b.enrolled_ms : a.node_id < b.node_id;
  });
  return out;
}

std::string receiving_node(const std::vector<sync::LedgerNode>& nodes) {
  for (const auto& n : nodes)
    if (n.kind == "site") return n.node_id;
  return "";
}

// Kits of the type held by the nodes, in status `a` or `b`, expiring after the date.
int count_kits(storage::Database& db, const std::vector<sync::LedgerNode>& nodes, const std::string& kit_type,
               KitStatus a, KitStatus b, const std::string& expiring_after) {
  int total = 0;
  auto st = db.prepare(
      "SELECT count(*) FROM hub_kits WHERE custody_kind = 'node' AND custody_id = ? AND kit_type = ? "
      "AND status IN (?, ?) AND expiry > ?");
  for (const auto& n : nodes) {
    st.reset();
    st.bind_all(n.node_id, kit_type, to_string(a), to_string(b), expiring_after);
    st.step();
    total += static_cast<int>(st.int64(0));
  }
  return total;
}

// Kits of the type reserved at a depot (available, named by a shipment) for
// shipments to the nodes not yet shipped (hub/shipments.h): on their way as
// much as shipped ones.
int count_reserved(storage::Database& db, const std::vector<sync::LedgerNode>& nodes, const std::string& kit_type,
                   const std::string& expiring_after) {
  int total = 0;
  auto st = db.prepare(
      "SELECT count(*) FROM hub_kits k JOIN hub_shipments s ON s.shipment_id = k.shipment_id "
      "WHERE k.custody_kind = 'depot' AND k.status = ? AND s.node_id = ? AND k.kit_type = ? AND k.expiry > ?");
  for (const auto& n : nodes) {
    st.reset();
    st.bind_all(to_string(KitStatus::available), n.node_id, kit_type, expiring_after);
    st.step();
    total += static_cast<int>(st.int64(0));
  }
  return total;
}

int slots_left(HubState& hub, const std::vector<sync::LedgerNode>& nodes) {
  std::size_t left = 0;
  for (const auto& n : nodes) {
    if (auto* store = hub.randomization()) {
      for (const auto& [stratum, free] : store->slices().free_slots_by_stratum(n.node_id)) left += free;
    } else if (auto s = newest_stream(hub.db(), n.node_id); s && !s->voided) {
      left += s->allowance - std::min(s->used, s->allowance);
    }
  }
  return static_cast<int>(left);
}

}  // namespace

shared::ResupplyInput resupply_input(HubState& hub, const std::string& site_id, std::int64_t now_ms) {
  const auto& study = hub.study();
  auto& db = hub.db();
  const auto* site = study.find_site(site_id);
  const std::string country = site ? site->country : "";
  const auto today = shared::day_of_millis(now_ms);
  const auto nodes = site_nodes(hub, site_id);

  shared::ResupplyInput in;
  in.stock = study_stock(study);
  for (auto& s : in.stock) {
    const int dnc = study.expiry_windows(s.kit_type, country).do_not_count_days;
    const auto counted_after = shared::format_date(today + dnc);
    s.usable = count_kits(db, nodes, s.kit_type, KitStatus::received, KitStatus::available, counted_after);
    s.in_transit = count_kits(db, nodes, s.kit_type, KitStatus::shipped, KitStatus::shipped, counted_after) +
                   count_reserved(db, nodes, s.kit_type, counted_after);
  }

  // The allocated participants' visits to come.
  const auto allocated = site_allocations(db, site_id);
  for (const auto& [participant, arm, on_study] : allocated) {
    if (!on_study) continue;
    auto since = days_since_randomization(hub, participant, now_ms);
    if (!since) continue;
    for (const auto& v : study.visits) {
      if (v.randomization || v.day - *since < 0) continue;
      for (const auto& d : v.dispense)
        if (d.arm == arm)
          in.scheduled.push_back({static_cast<int>(v.day - v.window_before - *since), d.kit_type, d.count});
    }
  }

  in.slots_left = slots_left(hub, nodes);
  if (auto since = site_activated_ms(db, site_id))
    in.rate_per_day = static_cast<double>(allocated.size()) /
                      static_cast<double>(std::max<std::int64_t>(1, (now_ms - *since) / kDayMs));
  in.per_new_participant = shared::kits_per_new_participant(study);
  return in;
}

SiteReview review_site(HubState& hub, const std::string& site_id, const std::string& actor, std::int64_t now_ms) {
  SiteReview r;
  r.site_id = site_id;
  r.node_id = receiving_node(site_nodes(hub, site_id));
  r.input = resupply_input(hub, site_id, now_ms);
  r.order = shared::decide_resupply(r.input, hub.study().supply.resupply);
  if (r.order.empty()) return r;
  if (r.node_id.empty()) {
    r.problem = "site " + site_id + " has no active site node to ship to; enroll one";
    return r;
  }
  auto& db = hub.db();
  std::optional<shared::Shipment> shipped;
  bool shortage = false;
  {
    storage::Savepoint part(db);  // a refused pick leaves nothing behind
    auto s = ship_kits(db, hub.study(), r.node_id, site_id, "resupply", r.order, "resupply review of site " + site_id,
                       actor, now_ms);
    if (!s) {
      r.problem = s.error().message;
      shortage = s.error().code == shared::Errc::exhausted;
    } else {
      shipped = std::move(s).value();
      part.release();
    }
  }
  if (!shipped) {
    // The alert is read by every node manager: a shortage names no lot, since
    // the lots held back are those of the short kit type (one lot per kit
    // type in many vendors' lists); `supply run` tells a supply manager which.
    const std::string why = shortage ? "the depot lacks shippable kits for the order; 'irt-hub supply run --site " +
                                           site_id + "' (manage_supply) names the lots held back and why"
                                     : r.problem;
    hub.ledger().raise_node_alert(r.node_id, "supply.resupply_failed", std::nullopt,
                                  "resupply of site " + site_id + " could not ship: " + why, now_ms);
    return r;
  }
  send_if_shipped(hub, *shipped, now_ms);
  r.shipment = std::move(shipped);
  return r;
}

void review_after_sync(HubState& hub, const std::string& node_id, std::int64_t now_ms) {
  auto node = hub.ledger().find_node(node_id);
  if (!node || node->status != sync::NodeStatus::active || !site_active(hub.db(), node->site_id)) return;
  review_site(hub, node->site_id, "hub", now_ms);
}

shared::Result<std::vector<SiteReview>> run_resupply(HubState& hub, const std::optional<std::string>& site,
                                                      const std::string& actor, std::int64_t now_ms) {
  std::vector<std::string> sites;
  if (site) {
    if (!hub.study().find_site(*site))
      return shared::make_error(shared::Errc::not_found, "study " + hub.study().id + " has no site '" + *site +
                                                             "'; use one of the site ids in the study file");
    if (!site_active(hub.db(), *site))
      return shared::make_error(shared::Errc::conflict, "site " + *site + " is not active yet; nothing was reviewed. "
                                                        "Activate it or enroll its first node, then run again");
    sites.push_back(*site);
  } else {
    for (const auto& s : hub.study().sites)
      if (site_active(hub.db(), s.id)) sites.push_back(s.id);
  }
  std::vector<SiteReview> out;
  for (const auto& s : sites) {
    storage::Transaction tx(hub.db());
    out.push_back(review_site(hub, s, actor, now_ms));
    tx.commit();
  }
  return out;
}

std::string describe(const SiteReview& r) {
  std::string line = "site " + r.site_id + ": ";
  if (r.shipment)
    return line + "shipped " + r.shipment->shipment_id + " (" + std::to_string(r.shipment->kits.size()) +
           " kits) to node " + r.node_id;
  if (!r.problem.empty()) return line + "resupply due but not shipped: " + r.problem;
  return line + "nothing due";
}

ResupplySchedule::ResupplySchedule(std::unique_ptr<HubState> hub, std::chrono::milliseconds interval)
    : hub_(std::move(hub)), interval_(interval), thread_([this] { run(); }) {}

ResupplySchedule::~ResupplySchedule() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ResupplySchedule::run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    try {
      if (auto st = hub_->refresh_study(); !st) throw std::runtime_error(st.error().message);
      auto reviews = run_resupply(*hub_, std::nullopt, "hub", sync::system_millis());
      if (reviews)
        for (const auto& r : *reviews)
          if (r.shipment || !r.problem.empty()) std::cerr << "irt-hub: scheduled resupply: " << describe(r) << "\n";
    } catch (const std::exception& e) {
      std::cerr << "irt-hub: scheduled resupply failed: " << e.what() << "; retried at the next interval\n";
    }
  }
}

}  // namespace irt::hub
