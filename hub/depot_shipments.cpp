#include "hub/depot_shipments.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "hub/audit.h"
#include "hub/kit_inventory.h"
#include "hub/lots.h"
#include "shared/civil_date.h"
#include "shared/directive_payloads.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

using shared::Errc;
using shared::KitStatus;
using shared::make_error;
using shared::Permission;
using shared::to_string;

const shared::Depot* find_depot(const shared::Study& study, const std::string& id) {
  for (const auto& d : study.depots)
    if (d.id == id) return &d;
  return nullptr;
}

shared::Error unknown_depot(const shared::Study& study, const std::string& id, const std::string& option) {
  std::vector<std::string> ids;
  for (const auto& d : study.depots) ids.push_back(d.id);
  return {Errc::not_found, "depot '" + id + "' is not a depot of study " + study.id + "; check " + option +
                               " (the depots are: " + shared::join(ids) + ")"};
}

bool in_transit_to(const HubKit& k, const ShipmentRecord& s) {
  return k.custody_kind == "depot" && k.custody_id == s.to_depot && k.status == KitStatus::shipped &&
         k.shipment_id == s.shipment_id;
}

// The next row id of hub_shipments: ship_kits numbers its rows itself, so every insert does.
std::int64_t next_row(storage::Database& db) {
  auto st = db.prepare("SELECT coalesce(max(id), 0) + 1 FROM hub_shipments");
  st.step();
  return st.int64(0);
}

std::string next_id(storage::Database& db, const char* prefix) {
  char id[32];
  std::snprintf(id, sizeof id, "%s-%06lld", prefix, static_cast<long long>(next_row(db)));
  return id;
}

void insert_shipment(storage::Database& db, const ShipmentRecord& s) {
  db.prepare("INSERT INTO hub_shipments(id, shipment_id, node_id, site_id, depot_id, kind, shipped_on, kits, "
             "created_ms, status, courier, tracking, updated_ms, to_depot) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(next_row(db), s.shipment_id, s.node_id, s.site_id, s.depot_id, s.kind, s.shipped_on,
                static_cast<std::int64_t>(s.kits), s.created_ms, s.status, s.courier, s.tracking, s.updated_ms,
                s.to_depot)
      .run();
}

void list_kit(storage::Database& db, const std::string& shipment_id, const std::string& kit) {
  db.prepare("INSERT INTO hub_shipment_kits(shipment_id, kit_number) VALUES (?, ?)").bind_all(shipment_id, kit).run();
}

// Why `k` cannot leave depot `from` for depot `to` today, or "". Kit numbers
// and lots only: never the kit type.
std::string untransferable(storage::Database& db, const HubKit& k, const std::string& from, const shared::Depot& to,
                           shared::Days today) {
  if (k.custody_kind != "depot" || k.custody_id != from)
    return "kit " + k.number + " is not at depot " + from + " (it is at " + k.custody_kind + " " + k.custody_id + ")";
  if (k.status != KitStatus::available)
    return "kit " + k.number + " is " + to_string(k.status) + " at depot " + from + ", not in its stock";
  if (!k.shipment_id.empty()) return "kit " + k.number + " is reserved for shipment " + k.shipment_id;
  if (k.expiry < shared::format_date(today)) return "kit " + k.number + " expired on " + k.expiry;
  const bool released = std::any_of(to.countries.begin(), to.countries.end(),
                                    [&](const std::string& c) { return lot_released(db, k.lot, c); });
  if (!released)
    return "kit " + k.number + ": its lot " + k.lot + " is not released in any country depot " + to.id + " serves (" +
           shared::join(to.countries) + ")";
  return "";
}

// A return shipment's node learns how the depot found its kits
// (kits.at_depot): they leave its records. Inside the caller's transaction.
void tell_returning_node(HubState& hub, const ShipmentRecord& s, const std::vector<shared::KitCondition>& kits,
                         const std::string& by, std::int64_t now_ms) {
  if (s.kind != "return" || s.node_id.empty() || kits.empty()) return;
  nlohmann::json payload = shared::KitsAtDepot{s.shipment_id, s.to_depot, kits};
  auto seq = hub.outbox().issue(s.node_id, shared::kKitsAtDepotDirective, payload.dump(), now_ms);
  std::vector<std::string> numbers;
  for (const auto& k : kits) numbers.push_back(k.kit + " " + to_string(k.condition));
  record_audit(hub.db(), {now_ms, by, "directive.issued", s.node_id, "return " + s.shipment_id + " at depot " + s.to_depot,
                          "", std::string(shared::kKitsAtDepotDirective) + " #" + std::to_string(seq) + ": " +
                                  shared::join(numbers)});
}

}  // namespace

bool is_depot_role(const shared::Role& role) { return role.can(Permission::manage_depot); }

shared::Status acts_for_depot(HubState& hub, const User& user, const std::string& depot) {
  const auto* role = hub.study().find_role(user.role);
  if (role && role->can(Permission::manage_supply)) return {};
  if (role && is_depot_role(*role) && std::find(user.sites.begin(), user.sites.end(), depot) != user.sites.end())
    return {};
  if (role && is_depot_role(*role))
    return make_error(Errc::forbidden, "hub user " + user.name + " acts for depot(s) " + shared::join(user.sites) +
                                           ", not for depot " + depot + "; a user of depot " + depot +
                                           " or a supply manager signs this step. Nothing was changed");
  return make_error(Errc::forbidden, "hub user " + user.name + " (role " + user.role + ") does not act for depot " +
                                         depot + ": it needs manage_depot for that depot, or manage_supply");
}

std::optional<std::vector<std::string>> depots_seen_by(HubState& hub, const User& reader) {
  const auto* role = hub.study().find_role(reader.role);
  if (!role || !is_depot_role(*role) || role->can(Permission::manage_supply)) return std::nullopt;
  return reader.sites;
}

bool custodian_seen(const std::optional<std::vector<std::string>>& depots, const std::string& kind,
                    const std::string& id) {
  return !depots || (kind == "depot" && std::find(depots->begin(), depots->end(), id) != depots->end());
}

bool shipment_seen(const std::optional<std::vector<std::string>>& depots, const ShipmentRecord& s) {
  return custodian_seen(depots, "depot", s.depot_id) || custodian_seen(depots, "depot", s.to_depot);
}

shared::Result<User> check_depot_signature(HubState& hub, const Signature& s, const std::string& depot) {
  // Which permission to check follows the named user's role; an unknown user
  // or a wrong password is refused alike by check_signature.
  auto named = find_user(hub.db(), s.user);
  const auto* role = named ? hub.study().find_role(named->role) : nullptr;
  const auto needed = role && !role->can(Permission::manage_supply) && is_depot_role(*role) ? Permission::manage_depot
                                                                                           : Permission::manage_supply;
  auto who = check_signature(hub, s, needed);
  if (!who) return who.error();
  if (auto st = acts_for_depot(hub, *who, depot); !st) return st.error();
  return who;
}

std::string acting_depot(const ShipmentRecord& s) { return s.kind == "return" ? s.to_depot : s.depot_id; }

shared::Result<ShipmentRecord> request_transfer(HubState& hub, const TransferRequest& r, const Signature& signer,
                                                std::int64_t now_ms) {
  const auto& study = hub.study();
  if (!find_depot(study, r.from_depot)) return unknown_depot(study, r.from_depot, "--from-depot");
  const auto* to = find_depot(study, r.to_depot);
  if (!to) return unknown_depot(study, r.to_depot, "--to-depot");
  if (r.from_depot == r.to_depot)
    return make_error(Errc::invalid_input, "--to-depot: a transfer goes to another depot than " + r.from_depot);
  const bool by_type = !r.kit_type.empty();
  if (by_type == !r.kits.empty())
    return make_error(Errc::invalid_input, "say which kits to transfer: either their numbers (--kits K1,K2) or a "
                                           "kit type and a count (--kit-type T --count N)");
  if (by_type && r.count <= 0)
    return make_error(Errc::invalid_input, "--count: how many kits of the type to transfer, 1 or more");
  std::set<std::string> seen;
  for (const auto& k : r.kits)
    if (!seen.insert(k).second)
      return make_error(Errc::invalid_input, "kit " + k + " is listed twice; list each kit once");
  auto who = check_depot_signature(hub, signer, r.from_depot);
  if (!who) return who.error();
  const bool blinded = reads_blinded(study, study.find_role(who->role));
  if (by_type && blinded)
    return make_error(Errc::invalid_input, "a blinded user names the kits to transfer by number (--kits); nothing "
                                           "was changed");
  if (by_type && !study.find_kit_type(r.kit_type))
    return make_error(Errc::invalid_input, "study " + study.id + " has no kit type '" + r.kit_type + "'");

  auto& db = hub.db();
  storage::Transaction tx(db);
  const auto today = shared::day_of_millis(now_ms);
  std::vector<std::string> kits = r.kits;
  if (by_type) {
    auto st = db.prepare("SELECT kit_number FROM hub_kits WHERE custody_kind = 'depot' AND custody_id = ? AND "
                         "status = ? AND kit_type = ? AND shipment_id = '' AND expiry >= ? ORDER BY expiry, kit_number");
    st.bind_all(r.from_depot, to_string(KitStatus::available), r.kit_type, shared::format_date(today));
    while (st.step() && kits.size() < static_cast<std::size_t>(r.count)) {
      auto k = find_kit(db, st.text(0));
      if (k && untransferable(db, *k, r.from_depot, *to, today).empty()) kits.push_back(k->number);
    }
    if (kits.size() < static_cast<std::size_t>(r.count))
      return make_error(Errc::exhausted, "depot " + r.from_depot + " holds " + std::to_string(kits.size()) +
                                             " kits of type " + r.kit_type + " that can go to depot " + r.to_depot +
                                             " (in stock, unreserved, unexpired, of lots released where it ships), "
                                             "not " + std::to_string(r.count) + "; nothing was changed");
  }
  for (const auto& number : kits) {
    auto k = find_kit(db, number);
    if (!k)
      return make_error(Errc::not_found, "kit " + number + " is not a kit of this hub; check the number; nothing "
                                                            "was changed");
    if (auto why = untransferable(db, *k, r.from_depot, *to, today); !why.empty())
      return make_error(Errc::conflict, why + "; it cannot go to depot " + r.to_depot + ". Nothing was changed");
  }
  ShipmentRecord s;
  s.shipment_id = next_id(db, "TRF");
  s.kind = "transfer";
  s.depot_id = r.from_depot;
  s.to_depot = r.to_depot;
  s.status = shipments_need_approval(db) ? "requested" : "approved";
  s.kits = kits.size();
  s.created_ms = s.updated_ms = now_ms;
  insert_shipment(db, s);
  auto reserve = db.prepare("UPDATE hub_kits SET shipment_id = ? WHERE kit_number = ?");
  for (const auto& k : kits) {
    reserve.reset();
    reserve.bind_all(s.shipment_id, k).run();
    list_kit(db, s.shipment_id, k);
    record_audit(db, {now_ms, who->name, "kit.reserved", k, r.reason.empty() ? "transfer " + s.shipment_id : r.reason,
                      "available at depot " + r.from_depot,
                      "reserved for transfer " + s.shipment_id + " to depot " + r.to_depot, "performed"});
  }
  record_audit(db, {now_ms, who->name, "shipment.requested", s.shipment_id,
                    r.reason.empty() ? "transfer by " + who->name : r.reason, "",
                    s.status + ": transfer of " + std::to_string(kits.size()) + " kits from depot " + r.from_depot +
                        " to depot " + r.to_depot,
                    "performed"});
  tx.commit();
  return s;
}

shared::Result<std::size_t> move_depot_shipment(HubState& hub, const ShipmentRecord& s, ShipmentStep step,
                                                std::int64_t now_ms) {
  auto& db = hub.db();
  const auto today = shared::day_of_millis(now_ms);
  std::size_t moved = 0;
  if (step == ShipmentStep::ship) {
    const auto* to = find_depot(hub.study(), s.to_depot);
    if (!to) return unknown_depot(hub.study(), s.to_depot, "the study's depots");
    auto kits = kits_of_shipment(db, s.shipment_id);
    for (auto k : kits) {
      k.shipment_id.clear();  // reserved for this very shipment
      if (auto why = untransferable(db, k, s.depot_id, *to, today); !why.empty())
        return make_error(Errc::conflict, "shipment " + s.shipment_id + " cannot ship: " + why +
                                              "; cancel it and request another transfer. Nothing was changed");
    }
    for (const auto& k : kits) {
      change_kit_state(db, k, {KitStatus::shipped, "depot", s.to_depot, k.participant}, "hub",
                       "transfer " + s.shipment_id + " shipped", now_ms);
      record_audit(db, {now_ms, "hub", "kit.custody_moved", k.number, "transfer " + s.shipment_id + " shipped",
                        "depot " + s.depot_id, "depot " + s.to_depot + ", in transit (shipment " + s.shipment_id + ")"});
      ++moved;
    }
  } else if (step == ShipmentStep::lose) {
    std::vector<shared::KitCondition> gone;
    for (const auto& k : kits_of_shipment(db, s.shipment_id)) {
      if (!in_transit_to(k, s)) continue;
      set_kit_status(db, k.number, KitStatus::missing, "hub", "shipment " + s.shipment_id + " declared lost", now_ms);
      db.prepare("UPDATE hub_shipment_kits SET outcome = ? WHERE shipment_id = ? AND kit_number = ?")
          .bind_all(to_string(KitStatus::missing), s.shipment_id, k.number)
          .run();
      record_audit(db, {now_ms, "hub", "kit.missing", k.number, "shipment " + s.shipment_id + " declared lost",
                        "in transit to depot " + s.to_depot, "missing at depot " + s.to_depot});
      gone.push_back({k.number, KitStatus::missing});
      ++moved;
    }
    tell_returning_node(hub, s, gone, "hub", now_ms);
  }
  return moved;
}

shared::Result<std::vector<DepotReceipt>> depot_receipts_from_json(const nlohmann::json& listed) {
  auto refuse = [](const char* what) {
    return make_error(Errc::invalid_input, std::string("kits: ") + what +
                                               " {\"kit\": K, \"condition\": received|damaged|missing}");
  };
  if (!listed.is_array() || listed.empty()) return refuse("a list of");
  std::vector<DepotReceipt> kits;
  for (const auto& k : listed) {
    // A condition that is not a string (null, a number) is refused like an
    // unknown one, not read as a string (which throws).
    const auto condition_given = k.is_object() && k.contains("condition");
    const auto& name = condition_given ? k["condition"] : nlohmann::json("received");
    auto condition = name.is_string() ? shared::parse_kit_status(name.get<std::string>()) : std::nullopt;
    if (!k.is_object() || !k.contains("kit") || !k["kit"].is_string() || !condition) return refuse("each is");
    kits.push_back({k["kit"].get<std::string>(), *condition});
  }
  return kits;
}

shared::Result<DepotReceiptDone> receive_at_depot(HubState& hub, const std::string& shipment_id,
                                                  const std::vector<DepotReceipt>& kits, const std::string& reason,
                                                  const Signature& signer, std::int64_t now_ms) {
  if (kits.empty())
    return make_error(Errc::invalid_input, "kits: list the kits received (K or K:received, K:damaged, K:missing)");
  std::set<std::string> seen;
  bool damaged = false;
  for (const auto& k : kits) {
    if (!seen.insert(k.kit).second)
      return make_error(Errc::invalid_input, "kit " + k.kit + " is listed twice; list each kit once");
    if (k.condition != KitStatus::received && k.condition != KitStatus::damaged && k.condition != KitStatus::missing)
      return make_error(Errc::invalid_input, "kit " + k.kit + ": a kit arrives received, damaged or missing");
    damaged = damaged || k.condition == KitStatus::damaged;
  }
  if (damaged && reason.empty())
    return make_error(Errc::invalid_input, "reason: say what damage the kits reported damaged have");
  auto s = find_shipment(hub.db(), shipment_id);
  if (!s)
    return make_error(Errc::not_found, "shipment " + shipment_id + " is not a shipment of this hub; 'irt-hub "
                                                                   "shipment list' shows them");
  if (s->kind != "transfer" && s->kind != "return")
    return make_error(Errc::conflict, "shipment " + shipment_id + " goes to node " + s->node_id +
                                          ", which receives it kit by kit; a depot receives transfers and returns");
  auto who = check_depot_signature(hub, signer, s->to_depot);
  if (!who) return who.error();
  auto& db = hub.db();
  storage::Transaction tx(db);
  s = find_shipment(db, shipment_id);
  if (s->status != "shipped" && s->status != "delivered" && s->status != "receiving")
    return make_error(Errc::conflict, "shipment " + shipment_id + " is " + s->status +
                                          "; a depot receives a shipment once it is shipped. Nothing was changed");
  std::vector<HubKit> found;
  for (const auto& r : kits) {
    auto k = find_kit(db, r.kit);
    auto listed = shipment_kits(db, shipment_id);
    auto it = std::find_if(listed.begin(), listed.end(), [&](const ShipmentKit& l) { return l.kit == r.kit; });
    if (!k || it == listed.end())
      return make_error(Errc::conflict, "kit " + r.kit + " is not in shipment " + shipment_id +
                                            "; 'irt-hub shipment show' lists its kits. Nothing was changed");
    if (!it->outcome.empty() || !in_transit_to(*k, *s))
      return make_error(Errc::conflict, "kit " + r.kit + " of shipment " + shipment_id + " was already reported (" +
                                            (it->outcome.empty() ? to_string(k->status) : it->outcome) +
                                            "); nothing was changed");
    found.push_back(std::move(*k));
  }
  const bool transfer = s->kind == "transfer";
  for (std::size_t i = 0; i < found.size(); ++i) {
    const auto& k = found[i];
    const auto condition = kits[i].condition;
    const KitStatus now_status =
        condition == KitStatus::received ? (transfer ? KitStatus::available : KitStatus::returned) : condition;
    // A kit received from a transfer is the depot's stock again: no longer tied to the shipment.
    db.prepare("UPDATE hub_kits SET shipment_id = ? WHERE kit_number = ?")
        .bind_all(now_status == KitStatus::available ? "" : shipment_id, k.number)
        .run();
    auto to = state_of(k);
    to.status = now_status;
    change_kit_state(db, k, to, who->name, "shipment " + shipment_id + " received at depot " + s->to_depot, now_ms);
    db.prepare("UPDATE hub_shipment_kits SET outcome = ? WHERE shipment_id = ? AND kit_number = ?")
        .bind_all(to_string(condition), shipment_id, k.number)
        .run();
    record_audit(db, {now_ms, who->name, "kit.received_at_depot", k.number,
                      reason.empty() ? "shipment " + shipment_id + " received" : reason,
                      "in transit to depot " + s->to_depot + " (shipment " + shipment_id + ")",
                      std::string(to_string(condition)) + ": " + to_string(now_status) + " at depot " + s->to_depot,
                      "performed"});
  }
  std::vector<shared::KitCondition> reported;
  for (std::size_t i = 0; i < found.size(); ++i) reported.push_back({found[i].number, kits[i].condition});
  tell_returning_node(hub, *s, reported, who->name, now_ms);
  std::size_t unreported = 0;
  for (const auto& l : shipment_kits(db, shipment_id)) unreported += l.outcome.empty() ? 1 : 0;
  const std::string to = unreported == 0 ? "closed" : "receiving";
  if (to != s->status) {
    db.prepare("UPDATE hub_shipments SET status = ?, updated_ms = ? WHERE shipment_id = ?")
        .bind_all(to, now_ms, shipment_id)
        .run();
    record_audit(db, {now_ms, who->name, "shipment." + to, shipment_id,
                      "receipt at depot " + s->to_depot, s->status,
                      to == "closed" ? "closed: every kit accounted for by depot " + s->to_depot
                                     : "receiving: " + std::to_string(unreported) + " kits not yet reported",
                      "performed"});
  }
  DepotReceiptDone done{*find_shipment(db, shipment_id), who->name, found.size()};
  tx.commit();
  return done;
}

std::string return_shipment_id(const std::string& node_id, std::uint64_t seq) {
  return "RET-" + node_id + "-" + std::to_string(seq);
}

std::vector<std::string> record_return_shipment(HubState& hub, const std::string& node_id, std::uint64_t seq,
                                                const shared::KitsReturnShipped& r, std::int64_t now_ms) {
  auto& db = hub.db();
  const std::string id = return_shipment_id(node_id, seq);
  if (find_shipment(db, id)) return {};
  if (!find_depot(hub.study(), r.depot))
    return {"node " + node_id + " sent a return shipment (event " + std::to_string(seq) + ") to depot " + r.depot +
            ", which is not a depot of the study; its kits stay in the node's custody at the hub. Find where they "
            "went"};
  auto node = hub.ledger().find_node(node_id);
  std::vector<std::string> problems;
  ShipmentRecord s;
  s.shipment_id = id;
  s.kind = "return";
  s.node_id = node_id;
  s.site_id = node ? node->site_id : "";
  s.to_depot = r.depot;
  s.status = "shipped";
  s.shipped_on = shared::format_date(shared::day_of_millis(now_ms));
  s.courier = r.courier;
  s.tracking = r.tracking;
  s.created_ms = s.updated_ms = now_ms;
  std::vector<HubKit> moving;
  for (const auto& number : r.kits) {
    auto k = find_kit(db, number);
    if (!k || k->custody_kind != "node" || k->custody_id != node_id || k->status == KitStatus::dispensed)
      problems.push_back("kit " + number + " was sent back to depot " + r.depot + " by node " + node_id + ", " +
                         (k && k->status == KitStatus::dispensed ? "which dispensed it to a participant"
                                                                 : "which does not hold it at the hub") +
                         "; the event is kept. Check the kit's custody and the site's records");
    else moving.push_back(std::move(*k));
  }
  s.kits = moving.size();
  insert_shipment(db, s);
  const std::string why = "return shipment by node " + node_id + " (event " + std::to_string(seq) + ")" +
                          (r.reason.empty() ? "" : ": " + r.reason);
  for (const auto& k : moving) {
    db.prepare("UPDATE hub_kits SET shipment_id = ? WHERE kit_number = ?").bind_all(id, k.number).run();
    change_kit_state(db, k, {KitStatus::shipped, "depot", r.depot, k.participant}, "hub", why, now_ms);
    list_kit(db, id, k.number);
    record_audit(db, {now_ms, "hub", "kit.custody_moved", k.number, why,
                      "node " + node_id + " (" + to_string(k.status) + ")",
                      "depot " + r.depot + ", in transit (shipment " + id + ")"});
  }
  record_audit(db, {now_ms, "hub", "shipment.shipped", id, why, "",
                    "shipped: return of " + std::to_string(moving.size()) + " kits from node " + node_id +
                        " to depot " + r.depot + (r.courier.empty() ? "" : ", courier " + r.courier) +
                        (r.tracking.empty() ? "" : ", tracking " + r.tracking)});
  return problems;
}

std::vector<ShipmentKit> shipment_kits(storage::Database& db, const std::string& shipment_id) {
  auto st = db.prepare("SELECT kit_number, outcome FROM hub_shipment_kits WHERE shipment_id = ? ORDER BY kit_number");
  st.bind(1, shipment_id);
  std::vector<ShipmentKit> out;
  while (st.step()) out.push_back({st.text(0), st.text(1)});
  return out;
}

DepotFlows depot_flows(storage::Database& db) {
  auto st = db.prepare("SELECT k.kit_number, s.kind, s.depot_id, s.node_id FROM hub_shipment_kits k "
                       "JOIN hub_shipments s ON s.shipment_id = k.shipment_id "
                       "WHERE s.status NOT IN ('requested', 'approved', 'cancelled') ORDER BY s.id");
  DepotFlows out;
  while (st.step()) {
    if (st.text(1) == "transfer") out.transferred_from[st.text(0)].push_back(st.text(2));
    else if (st.text(1) == "return") out.returned_from[st.text(0)].push_back(st.text(3));
  }
  return out;
}

}  // namespace irt::hub
