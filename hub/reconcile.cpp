#include "hub/reconcile.h"

#include <set>

#include "hub/depot_shipments.h"
#include "hub/kit_decisions.h"
#include "hub/kit_inventory.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::KitStatus;

// The column of the equation a status falls in at a site's node; nullptr: a difference.
const char* site_column(KitStatus s) {
  switch (s) {
    case KitStatus::shipped: return "in_transit";
    case KitStatus::received: return "on_hand";
    case KitStatus::quarantined: return "quarantined";
    case KitStatus::rejected: return "rejected";
    case KitStatus::dispensed: return "dispensed";
    case KitStatus::returned: return "returned";
    case KitStatus::destroyed: return "destroyed";
    case KitStatus::missing: return "missing";
    case KitStatus::damaged: return "damaged";
    case KitStatus::lost: return "lost";
    default: return nullptr;
  }
}

const char* depot_column(KitStatus s) {
  switch (s) {
    case KitStatus::available: return "on_hand";
    case KitStatus::quarantined: return "quarantined";
    case KitStatus::rejected: return "rejected";
    case KitStatus::destroyed: return "destroyed";
    case KitStatus::shipped: return "in_transit";  // a transfer or a return on its way here
    case KitStatus::returned: return "returned";
    case KitStatus::missing: return "missing";
    case KitStatus::damaged: return "damaged";
    default: return nullptr;
  }
}

void add(Reconciliation& r, const HubKit& k, const char* column, bool unblinded, storage::Database& db) {
  ++r.received;
  ReconciledKit line{k.number, shared::to_string(k.status), k.custody_id, k.shipment_id, k.participant, {}, ""};
  if (k.status == KitStatus::returned)
    if (auto ret = find_return(db, k.number)) line.units_returned = ret->units_returned;
  if (unblinded) line.kit_type = k.kit_type;
  if (column) ++r.accounted[column];
  else
    r.differences.push_back("kit " + k.number + " is " + line.status + " at " + k.custody_kind + " " + k.custody_id +
                            (k.status == KitStatus::lost_with_node ? " (the node was revoked while holding it)" : "") +
                            ": not accounted for; find it and record what became of it");
  r.kits.push_back(std::move(line));
}

}  // namespace

shared::Result<std::vector<Reconciliation>> reconcile(HubState& hub, const std::string& site, const std::string& depot,
                                                      bool unblinded) {
  const auto& study = hub.study();
  if (!site.empty() && !study.find_site(site))
    return shared::make_error(shared::Errc::not_found, "site " + site + " is not a site of the study; check --site");
  bool depot_known = depot.empty();
  for (const auto& d : study.depots) depot_known = depot_known || d.id == depot;
  if (!depot_known)
    return shared::make_error(shared::Errc::not_found, "depot " + depot + " is not a depot of the study; check --depot");

  std::vector<Reconciliation> out;
  std::map<std::string, std::size_t> at;  // "site:101" -> index in out
  auto entry = [&](const std::string& kind, const std::string& id) -> Reconciliation& {
    auto key = kind + ":" + id;
    auto it = at.find(key);
    if (it != at.end()) return out[it->second];
    at[key] = out.size();
    out.push_back({kind, id, 0, {}, {}, {}});
    return out.back();
  };
  const bool all = site.empty() && depot.empty();
  if (all || !site.empty())
    for (const auto& s : study.sites)
      if (site.empty() || s.id == site) entry("site", s.id);
  if (all || !depot.empty())
    for (const auto& d : study.depots)
      if (depot.empty() || d.id == depot) entry("depot", d.id);

  auto& db = hub.db();
  const auto from = shipment_depots(db);
  std::map<std::string, std::string> site_of;  // node -> site
  auto site_of_node = [&](const std::string& node) -> const std::string& {
    auto it = site_of.find(node);
    if (it == site_of.end()) {
      auto n = hub.ledger().find_node(node);
      it = site_of.emplace(node, n ? n->site_id : "").first;
    }
    return it->second;
  };
  // What left by a transfer or went back in a return (hub/depot_shipments.h),
  // counted once for each depot and site it left.
  const auto flows = depot_flows(db);
  auto count_out = [&](const std::string& kind, const std::string& id, const char* column) {
    if (!at.count(kind + ":" + id)) return;
    auto& r = entry(kind, id);
    ++r.received;
    ++r.accounted[column];
  };
  for (const auto& k : all_kits(db)) {
    std::set<std::string> depots_done, sites_done;
    if (k.custody_kind == "node") {
      const auto& s = site_of_node(k.custody_id);
      sites_done.insert(s);
      if (at.count("site:" + s)) add(entry("site", s), k, site_column(k.status), unblinded, db);
      auto d = from.find(k.shipment_id);
      if (d != from.end() && !d->second.empty()) {
        depots_done.insert(d->second);
        count_out("depot", d->second, "shipped");
      }
    } else {
      depots_done.insert(k.custody_id);
      if (at.count("depot:" + k.custody_id)) add(entry("depot", k.custody_id), k, depot_column(k.status), unblinded, db);
    }
    if (auto t = flows.transferred_from.find(k.number); t != flows.transferred_from.end())
      for (const auto& d : t->second)
        if (depots_done.insert(d).second) count_out("depot", d, "transferred_out");
    if (auto ret = flows.returned_from.find(k.number); ret != flows.returned_from.end())
      for (const auto& node : ret->second)
        if (const auto& s = site_of_node(node); sites_done.insert(s).second) count_out("site", s, "returned_to_depot");
  }
  for (const auto& alert : hub.ledger().alerts(true)) {
    if (alert.kind != "kit.not_in_custody") continue;
    const auto& s = site_of_node(alert.node_id);
    if (at.count("site:" + s)) entry("site", s).differences.push_back(alert.message);
  }
  return out;
}

json to_json(const Reconciliation& r) {
  json kits = json::array();
  for (const auto& k : r.kits) {
    json j{{"kit", k.kit}, {"status", k.status}, {"custodian", k.custodian}};
    if (!k.shipment.empty()) j["shipment"] = k.shipment;
    if (!k.participant.empty()) j["participant"] = k.participant;
    if (k.units_returned) j["units_returned"] = *k.units_returned;
    if (!k.kit_type.empty()) j["kit_type"] = k.kit_type;
    kits.push_back(std::move(j));
  }
  std::size_t accounted = 0;
  for (const auto& [column, n] : r.accounted) accounted += n;
  return {{"kind", r.kind},
          {r.kind == "site" ? "shipped" : "placed", r.received},
          {"accounted", r.accounted},
          {"unaccounted", r.received - accounted},
          {"balanced", r.balanced()},
          {"differences", r.differences},
          {"kits", kits},
          {"id", r.id}};
}

}  // namespace irt::hub
