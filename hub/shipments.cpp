#include "hub/shipments.h"

#include <algorithm>

#include "hub/audit.h"
#include "hub/depot_shipments.h"
#include "hub/lots.h"
#include "shared/civil_date.h"

namespace irt::hub {

namespace {

using nlohmann::json;
using shared::Errc;
using shared::KitStatus;
using shared::make_error;

constexpr const char* kColumns =
    "shipment_id, kind, node_id, site_id, depot_id, status, shipped_on, courier, tracking, kits, created_ms, "
    "updated_ms, to_depot";

ShipmentRecord shipment_row(const storage::Statement& st) {
  return {st.text(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5),
          st.text(6), st.text(7), st.text(8), static_cast<std::size_t>(st.int64(9)), st.int64(10), st.int64(11), st.text(12)};
}

// The one table of the lifecycle: which states each step leaves, where it leads.
struct StepRule {
  ShipmentStep step;
  std::vector<std::string> from;
  const char* to;
  const char* meaning;  // of the signature
};
const std::vector<StepRule> kRules = {
    {ShipmentStep::approve, {"requested"}, "approved", "approved"},
    {ShipmentStep::ship, {"approved"}, "shipped", "performed"},
    {ShipmentStep::deliver, {"shipped"}, "delivered", "performed"},
    {ShipmentStep::lose, {"shipped", "delivered", "receiving"}, "lost", "performed"},
    {ShipmentStep::cancel, {"requested", "approved"}, "cancelled", "performed"},
};

const StepRule& rule_of(ShipmentStep step) {
  return *std::find_if(kRules.begin(), kRules.end(), [&](const StepRule& r) { return r.step == step; });
}

// The steps a shipment in `status` may take, for an error message.
std::string steps_allowed(const std::string& status) {
  std::string out;
  for (const auto& r : kRules)
    if (std::find(r.from.begin(), r.from.end(), status) != r.from.end())
      out += (out.empty() ? "" : ", ") + std::string(to_string(r.step));
  if (!out.empty()) return "the steps allowed now are: " + out;
  if (status == "shipped" || status == "delivered" || status == "receiving")
    return "its receiver (the node, or a transfer's or return's depot) receives it kit by kit";
  return "no step is allowed any more";
}

void set_status(storage::Database& db, const std::string& id, const std::string& status, std::int64_t now_ms) {
  db.prepare("UPDATE hub_shipments SET status = ?, updated_ms = ? WHERE shipment_id = ?")
      .bind_all(status, now_ms, id)
      .run();
}

// Why a reserved kit can no longer leave for the node's country today, or "".
std::string unshippable(storage::Database& db, const shared::Study& study, const HubKit& k,
                        const std::string& country, shared::Days today) {
  if (!lot_released(db, k.lot, country)) return "kit " + k.number + ": its lot is not released in " + country;
  const int dns = study.expiry_windows(k.kit_type, country).do_not_ship_days;
  if (k.expiry <= shared::format_date(today + dns))
    return "kit " + k.number + ": expiry " + k.expiry + " is inside the do-not-ship window";
  return "";
}

shared::Shipment directive_of(const ShipmentRecord& s, const std::vector<HubKit>& kits) {
  shared::Shipment out{s.shipment_id, s.kind, s.shipped_on, {}};
  for (const auto& k : kits) out.kits.push_back({k.number, k.kit_type, k.lot, k.expiry});
  return out;
}

}  // namespace

bool shipments_need_approval(storage::Database& db) {
  auto st = db.prepare("SELECT document FROM hub_study_versions ORDER BY version DESC LIMIT 1");
  if (!st.step()) return false;
  auto doc = json::parse(st.text(0), nullptr, false);
  if (doc.is_discarded() || !doc.contains("supply") || !doc["supply"].is_object()) return false;
  const auto& supply = doc["supply"];
  return supply.contains("shipment_approval") && supply["shipment_approval"].is_boolean() &&
         supply["shipment_approval"].get<bool>();
}

std::vector<HubKit> kits_of_shipment(storage::Database& db, const std::string& shipment_id) {
  auto st = db.prepare("SELECT kit_number FROM hub_kits WHERE shipment_id = ? UNION "
                       "SELECT kit_number FROM hub_shipment_kits WHERE shipment_id = ? ORDER BY kit_number");
  st.bind_all(shipment_id, shipment_id);
  std::vector<HubKit> out;
  while (st.step())
    if (auto k = find_kit(db, st.text(0))) out.push_back(std::move(*k));
  return out;
}

std::string shown_status(const HubKit& k) {
  if (k.custody_kind == "depot" && k.status == KitStatus::available && !k.shipment_id.empty()) return "reserved";
  return shared::to_string(k.status);
}

const char* to_string(ShipmentStep step) {
  switch (step) {
    case ShipmentStep::approve: return "approve";
    case ShipmentStep::ship: return "ship";
    case ShipmentStep::deliver: return "deliver";
    case ShipmentStep::lose: return "lose";
    case ShipmentStep::cancel: return "cancel";
  }
  return "?";
}

std::optional<ShipmentRecord> find_shipment(storage::Database& db, const std::string& shipment_id) {
  auto st = db.prepare(std::string("SELECT ") + kColumns + " FROM hub_shipments WHERE shipment_id = ?");
  st.bind(1, shipment_id);
  if (!st.step()) return std::nullopt;
  return shipment_row(st);
}

std::vector<ShipmentRecord> list_shipments(storage::Database& db, const std::string& status) {
  auto st = db.prepare(std::string("SELECT ") + kColumns +
                       " FROM hub_shipments WHERE ? = '' OR status = ? ORDER BY id");
  st.bind_all(status, status);
  std::vector<ShipmentRecord> out;
  while (st.step()) out.push_back(shipment_row(st));
  return out;
}

json to_json(const ShipmentRecord& s) {
  return json{{"shipment_id", s.shipment_id}, {"kind", s.kind},         {"node_id", s.node_id},
              {"site_id", s.site_id},         {"depot_id", s.depot_id}, {"status", s.status},
              {"shipped_on", s.shipped_on},   {"courier", s.courier},   {"tracking", s.tracking},
              {"kits", s.kits},               {"created", utc_text(s.created_ms)},
              {"updated", utc_text(s.updated_ms)}, {"to_depot", s.to_depot}};
}

json kits_json(const std::vector<HubKit>& kits, bool unblinded) {
  json out = json::array();
  for (const auto& k : kits) {
    json j{{"kit", k.number}, {"status", shown_status(k)}};
    if (unblinded) {
      j["kit_type"] = k.kit_type;
      j["lot"] = k.lot;
      j["expiry"] = k.expiry;
    }
    out.push_back(std::move(j));
  }
  return out;
}

bool send_if_shipped(HubState& hub, const shared::Shipment& shipment, std::int64_t now_ms) {
  auto s = find_shipment(hub.db(), shipment.shipment_id);
  if (!s || s->status != "shipped") return false;
  json payload = shipment;
  hub.outbox().issue(s->node_id, shared::kShipmentDirective, payload.dump(), now_ms);
  return true;
}

shared::Result<ShipmentStepDone> step_shipment(HubState& hub, const std::string& shipment_id,
                                               const ShipmentStepRequest& request, const Signature& signer,
                                               std::int64_t now_ms) {
  const auto& rule = rule_of(request.step);
  const std::string step = to_string(request.step);
  if ((request.step == ShipmentStep::lose || request.step == ShipmentStep::cancel) && request.reason.empty())
    return make_error(Errc::invalid_input, "reason: say why shipment " + shipment_id + " is " +
                                               (request.step == ShipmentStep::lose ? "declared lost" : "cancelled"));
  if (request.step == ShipmentStep::ship && (request.courier.empty() || request.tracking.empty()))
    return make_error(Errc::invalid_input, "courier and tracking: name the courier and the tracking number of "
                                           "shipment " + shipment_id);
  auto known = find_shipment(hub.db(), shipment_id);
  if (!known)
    return make_error(Errc::not_found, "shipment " + shipment_id +
                                           " is not a shipment from a depot at this hub; 'irt-hub shipment list' "
                                           "shows them");
  // Approval is the supply manager's; the other steps the acting depot's too (hub/depot_shipments.h).
  auto who = request.step == ShipmentStep::approve
                 ? check_signature(hub, signer, shared::Permission::manage_supply)
                 : check_depot_signature(hub, signer, acting_depot(*known));
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  auto s = find_shipment(db, shipment_id);
  const bool between_depots = s->kind == "transfer" || s->kind == "return";
  if (std::find(rule.from.begin(), rule.from.end(), s->status) == rule.from.end())
    return make_error(Errc::conflict, "shipment " + shipment_id + " is " + s->status + " and cannot take the step " +
                                          step + "; " + steps_allowed(s->status) + ". Nothing was changed");

  ShipmentStepDone done;
  done.signed_by = who->name;
  std::string details;
  const std::string old_status = s->status;
  if (between_depots && (request.step == ShipmentStep::ship || request.step == ShipmentStep::lose)) {
    auto moved = move_depot_shipment(hub, *s, request.step, now_ms);
    if (!moved) return moved.error();
    done.kits = *moved;
    if (request.step == ShipmentStep::ship) {
      s->shipped_on = shared::format_date(shared::day_of_millis(now_ms));
      db.prepare("UPDATE hub_shipments SET courier = ?, tracking = ?, shipped_on = ? WHERE shipment_id = ?")
          .bind_all(request.courier, request.tracking, s->shipped_on, shipment_id)
          .run();
      details = ", courier " + request.courier + ", tracking " + request.tracking + ", " +
                std::to_string(done.kits) + " kits to depot " + s->to_depot;
    } else {
      details = ", " + std::to_string(done.kits) + " kits not received became missing";
    }
  } else if (request.step == ShipmentStep::ship) {
    auto node = hub.ledger().find_node(s->node_id);
    if (!node || node->status != sync::NodeStatus::active)
      return make_error(Errc::conflict, "shipment " + shipment_id + " cannot ship: node " + s->node_id +
                                            " is no longer active; cancel the shipment. Nothing was changed");
    const auto* site = hub.study().find_site(s->site_id);
    const std::string country = site ? site->country : "";
    const auto today = shared::day_of_millis(now_ms);
    auto kits = kits_of_shipment(db, shipment_id);
    for (const auto& k : kits) {
      // A reserved kit rejected or destroyed at the depot while it waited.
      if (k.custody_kind != "depot" || k.status != KitStatus::available)
        return make_error(Errc::conflict, "shipment " + shipment_id + " cannot ship: kit " + k.number + " is " +
                                              shared::to_string(k.status) + " at " + k.custody_kind + " " +
                                              k.custody_id + "; cancel it and let resupply pick again. Nothing was "
                                              "changed");
      if (auto why = unshippable(db, hub.study(), k, country, today); !why.empty())
        return make_error(Errc::conflict, "shipment " + shipment_id + " cannot ship: " + why +
                                              "; cancel it and let resupply pick again. Nothing was changed");
    }
    for (const auto& k : kits)  // each checked above: available at the depot
      change_kit_state(db, k, {KitStatus::shipped, "node", s->node_id, k.participant}, who->name,
                       "shipment " + shipment_id + " shipped from depot " + s->depot_id, now_ms);
    done.kits = kits.size();
    s->shipped_on = shared::format_date(today);
    db.prepare("UPDATE hub_shipments SET courier = ?, tracking = ?, shipped_on = ? WHERE shipment_id = ?")
        .bind_all(request.courier, request.tracking, s->shipped_on, shipment_id)
        .run();
    json payload = directive_of(*s, kits_of_shipment(db, shipment_id));
    done.directive_seq = hub.outbox().issue(s->node_id, shared::kShipmentDirective, payload.dump(), now_ms);
    details = ", courier " + request.courier + ", tracking " + request.tracking + ", " +
              std::to_string(done.kits) + " kits to node " + s->node_id;
  } else if (request.step == ShipmentStep::lose) {
    // The kits the node has not reported: missing at the site (a kit that
    // turns up after all is received by the node as usual).
    done.kits = 0;
    for (const auto& k : kits_of_shipment(db, shipment_id)) {
      if (k.custody_kind != "node" || k.custody_id != s->node_id || k.status != KitStatus::shipped) continue;
      auto to = state_of(k);
      to.status = KitStatus::missing;
      change_kit_state(db, k, to, who->name, "shipment " + shipment_id + " declared lost", now_ms);
      ++done.kits;
    }
    details = ", " + std::to_string(done.kits) + " kits not received became missing";
  } else if (request.step == ShipmentStep::cancel) {
    auto kits = kits_of_shipment(db, shipment_id);
    db.prepare("UPDATE hub_kits SET shipment_id = '' WHERE shipment_id = ? AND custody_kind = 'depot'")
        .bind(1, shipment_id)
        .run();
    done.kits = static_cast<std::size_t>(db.changes());
    // The kits no longer name the shipment: each keeps the hop in its own history.
    for (const auto& k : kits)
      record_audit(db, {now_ms, who->name, "kit.unreserved", k.number, request.reason,
                        "reserved for shipment " + shipment_id,
                        std::string(shared::to_string(k.status)) + " at depot " + s->depot_id + ", no longer reserved"});
    details = ", " + std::to_string(done.kits) + " kits available at depot " + s->depot_id + " again";
  }
  set_status(db, shipment_id, rule.to, now_ms);
  record_audit(db, {now_ms, who->name, std::string("shipment.") + rule.to, shipment_id,
                    request.reason.empty() ? step + " by " + who->name : request.reason, old_status,
                    std::string(rule.to) + details, rule.meaning});
  done.shipment = *find_shipment(db, shipment_id);
  tx.commit();
  return done;
}

void note_receipt(storage::Database& db, const std::string& shipment_id, std::int64_t now_ms) {
  auto s = find_shipment(db, shipment_id);
  if (!s || (s->status != "shipped" && s->status != "delivered" && s->status != "receiving")) return;
  auto st = db.prepare("SELECT count(*) FROM hub_kits WHERE shipment_id = ? AND custody_kind = 'node' "
                       "AND custody_id = ? AND status = ?");
  st.bind_all(shipment_id, s->node_id, shared::to_string(KitStatus::shipped));
  st.step();
  const auto unreported = st.int64(0);
  const std::string to = unreported == 0 ? "closed" : "receiving";
  if (to == s->status) return;
  set_status(db, shipment_id, to, now_ms);
  record_audit(db, {now_ms, "hub", "shipment." + to, shipment_id, "receipt reported by node " + s->node_id,
                    s->status,
                    to == "closed" ? "closed: every kit accounted for by the node"
                                   : "receiving: " + std::to_string(unreported) + " kits not yet reported"});
}

}  // namespace irt::hub
