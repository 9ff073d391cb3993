// SiteOperations, the read side: what each route of the node's API answers,
// with the same permission checks and the same blinding rule (blinded()) as
// the operations that change state (site_operations.cpp).
#include <map>

#include "node/api_views.h"
#include "node/site_operations.h"

namespace irt::node {

using nlohmann::json;
using shared::Errc;
using shared::make_error;
using shared::Permission;

json SiteOperations::session_view(const Actor& a) const {
  json permissions = json::array();
  if (const auto* r = role_of(a))
    for (auto p : r->permissions) permissions.push_back(shared::to_string(p));
  return {{"user", a.user}, {"role", a.role}, {"blinded", blinded(a)}, {"permissions", permissions}};
}

json SiteOperations::status_view(const Actor& a, const SyncStatus& sync) const {
  // Counts per stratum and per kit status only: neither depends on an arm.
  const auto& store = state_.domain();
  auto& log = state_.log();
  json slots = json::array();
  if (store.strata())
    for (const auto& [stratum, n] : store.free_slots_by_stratum())
      slots.push_back({{"stratum", store.strata()->label(stratum)}, {"free", n}});
  std::map<std::string, int> kits;
  for (const auto& [n, k] : store.kits()) ++kits[shared::to_string(k.status)];
  json j = {{"node_id", state_.enrollment().node_id},
            {"site_id", state_.enrollment().site_id},
            {"study_id", state_.enrollment().study_id},
            {"online", sync.online},
            {"sync_state", to_string(sync.state)},
            {"sync_error", sync.last_error},
            {"last_sync_ms", sync.last_sync_ms},
            {"sync_failures", sync.consecutive_failures},
            {"sync_rounds", sync.rounds},
            {"pending_events", log.pending_events()},
            {"last_seq", log.last_seq()},
            // This device's clock minus the hub's, from the hub's last answer (0 before it answers).
            {"clock_skew_ms", -log.hub_clock_offset_ms()},
            {"slots_left", slots},
            {"numbers_left", store.numbers_left()},
            {"kits", kits},
            {"user", a.user},
            {"role", a.role}};
  // The site's other nodes (a nurse's tablet, the site node) kits may be handed
  // over to, from the latest roster: empty offline before the first sync.
  json others = json::array();
  if (auto nodes = load_site_nodes(log))
    for (const auto& n : *nodes)
      if (n.node_id != state_.enrollment().node_id) others.push_back({{"node_id", n.node_id}, {"kind", n.kind}});
  j["site_nodes"] = others;
  if (const auto* st = store.stream()) j["minimization_allowance_left"] = st->grant.allowance - st->decisions;
  // When the node may randomize until (hub/leases.h); null before the first lease.
  j["randomization_lease_until_ms"] = store.lease() ? json(store.lease()->until_ms) : json(nullptr);
  return j;
}

json SiteOperations::study_view(const Actor& a) const { return node::study_view(state_.domain(), blinded(a)); }

shared::Result<json> SiteOperations::participants_view(const Actor& a, const std::string& status) const {
  if (!can(a, Permission::view_participants) && !can(a, Permission::dispense))
    return make_error(Errc::forbidden, "role " + a.role + " may not view participants; ask a colleague whose role may");
  bool hide = blinded(a);
  json list = json::array();
  for (const auto& [id, p] : state_.domain().participants())
    if (status.empty() || shared::to_string(p.status) == status) list.push_back(participant_summary(p, state_.domain(), hide));
  return json{{"participants", list}};
}

shared::Result<json> SiteOperations::participant_view(const Actor& a, const std::string& number) const {
  if (!can(a, Permission::view_participants) && !can(a, Permission::dispense))
    return make_error(Errc::forbidden, "role " + a.role + " may not view participants; ask a colleague whose role may");
  auto p = participant(number);
  if (!p) return p.error();
  return node::participant_view(**p, state_.domain(), blinded(a), today(), can(a, Permission::unblind));
}

shared::Result<json> SiteOperations::inventory_view(const Actor& a, const InventoryQuery& q) const {
  if (!can(a, Permission::view_inventory))
    return make_error(Errc::forbidden, "role " + a.role + " may not view the inventory; ask a colleague whose role may");
  if (!q.expiring_before.empty() && !shared::parse_date(q.expiring_before))
    return make_error(Errc::invalid_input, "expiring_before: use a date YYYY-MM-DD");
  const auto& store = state_.domain();
  bool hide = blinded(a);
  json kits = json::array();
  std::map<std::string, int> counts;
  for (const auto& [n, k] : store.kits()) {
    if (!q.status.empty() && shared::to_string(k.status) != q.status) continue;
    if (!q.kit.empty() && n != q.kit) continue;
    if (!q.expiring_before.empty() && k.expiry >= q.expiring_before) continue;
    ++counts[shared::to_string(k.status)];
    kits.push_back(kit_view(k, store, hide));
  }
  return json{{"kits", kits},
              {"by_status", counts},
              {"today", shared::format_date(today())},
              {"do_not_dispense_days", store.study() ? store.study()->supply.do_not_dispense_days : 0}};
}

shared::Result<json> SiteOperations::shipments_view(const Actor& a) const {
  if (!can(a, Permission::view_inventory) && !can(a, Permission::receive_shipment))
    return make_error(Errc::forbidden, "role " + a.role + " may not view shipments; ask a colleague whose role may");
  bool hide = blinded(a);
  json list = json::array();
  for (const auto& [id, s] : state_.domain().shipments()) list.push_back(shipment_view(s, state_.domain(), hide));
  return json{{"shipments", list}};
}

shared::Result<json> SiteOperations::visits_due_view(const Actor& a, int days) const {
  if (!can(a, Permission::view_participants) && !can(a, Permission::dispense))
    return make_error(Errc::forbidden, "role " + a.role + " may not view participants; ask a colleague whose role may");
  if (days < 0 || days > 366) return make_error(Errc::invalid_input, "days: use 0 to 366 (default 7)");
  auto horizon = shared::format_date(today() + days);
  json list = json::array();
  for (const auto& [id, p] : state_.domain().participants()) {
    if (p.status != ParticipantStatus::randomized) continue;
    for (auto v : visit_schedule(p, state_.domain(), today())) {
      const auto state = v["state"].get<std::string>();
      if (state == "overdue" || state == "due" || (state == "upcoming" && v["window_from"].get<std::string>() <= horizon)) {
        v["participant"] = p.number;
        v["randomization_number"] = p.randomization_number;
        list.push_back(v);
      }
    }
  }
  return json{{"today", shared::format_date(today())}, {"days", days}, {"visits", list}};
}

json SiteOperations::outcome_view(const Actor& a, const OperationOutcome& o) const {
  const auto& store = state_.domain();
  bool hide = blinded(a);
  json kits = json::array();
  for (const auto& k : o.kits)
    if (const auto* kit = store.find_kit(k)) kits.push_back(kit_view(*kit, store, hide));
  json j = {{"participant", node::participant_view(o.participant, store, hide, today(), can(a, Permission::unblind))},
            {"kits", kits},
            {"event_seq", o.event_seq}};
  if (o.deviation) j["deviation"] = true;
  return j;
}

json SiteOperations::kit_answer(const Actor& a, const std::string& kit, std::uint64_t event_seq) const {
  return {{"kit", kit_view(*state_.domain().find_kit(kit), state_.domain(), blinded(a))}, {"event_seq", event_seq}};
}

json SiteOperations::shipment_answer(const Actor& a, const std::string& shipment, std::uint64_t event_seq) const {
  auto j = shipment_view(state_.domain().shipments().at(shipment), state_.domain(), blinded(a));
  j["event_seq"] = event_seq;
  return j;
}

json SiteOperations::code_break_answer(const OperationOutcome& o) const {
  const auto* s = state_.domain().study();
  const auto* arm = s ? s->find_arm(o.participant.arm) : nullptr;
  return {{"participant", o.participant.number},
          {"code_break", true},
          {"arm", {{"id", o.participant.arm}, {"name", arm ? arm->name : o.participant.arm}}},
          {"event_seq", o.event_seq}};
}

}  // namespace irt::node
