// The irt-hub shipment commands (hub/shipments.h): list and show (--reader
// with view_inventory; kit types, lots and expiry dates only for a reader
// whose role reads the allocation) and the signed steps approve, ship,
// deliver, lose and cancel (--user with manage_supply, the password as the
// first line of standard input).
#include <iostream>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "hub/audit.h"
#include "hub/commands.h"
#include "hub/depot_shipments.h"
#include "hub/shipments.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::Args;
using shared::Command;
using shared::Option;

void print(const ShipmentRecord& s) {
  std::cout << s.shipment_id << "  " << s.status << "  " << s.kind << "  " << s.kits << " kits  ";
  if (s.kind == "transfer") std::cout << "depot " << s.depot_id << " -> depot " << s.to_depot;
  else if (s.kind == "return") std::cout << "node " << s.node_id << " (site " << s.site_id << ") -> depot " << s.to_depot;
  else std::cout << "depot " << s.depot_id << " -> node " << s.node_id << " (site " << s.site_id << ")";
  if (!s.shipped_on.empty()) std::cout << "  shipped " << s.shipped_on;
  if (!s.courier.empty()) std::cout << " by " << s.courier << ", tracking " << s.tracking;
  std::cout << "\n";
}

int list_cmd(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto reader = command_line_user(a, *hub, "reader", shared::Permission::view_inventory, rc);
  if (!reader) return rc;
  // A depot user sees only its depots' shipments.
  const auto depots = depots_seen_by(*hub, *reader);
  std::vector<ShipmentRecord> all;
  for (auto& s : list_shipments(hub->db(), a.get_or("status", "")))
    if (shipment_seen(depots, s)) all.push_back(std::move(s));
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : all) out.push_back(to_json(s));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (all.empty()) std::cout << "no shipment\n";
  for (const auto& s : all) print(s);
  return 0;
}

int show_cmd(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto reader = command_line_user(a, *hub, "reader", shared::Permission::view_inventory, rc);
  if (!reader) return rc;
  const bool blinded = reads_blinded(hub->study(), hub->study().find_role(reader->role));
  auto s = find_shipment(hub->db(), a.get("shipment"));
  // Another depot's shipment is answered as unknown: nothing of it is named.
  if (s && !shipment_seen(depots_seen_by(*hub, *reader), *s)) s.reset();
  if (!s)
    return report(a, shared::Error{shared::Errc::not_found, "shipment " + a.get("shipment") +
                                                                " is not a shipment from a depot at this hub; "
                                                                "'irt-hub shipment list' shows them"});
  auto kits = kits_json(kits_of_shipment(hub->db(), s->shipment_id), !blinded);
  if (a.flag("json")) {
    auto j = to_json(*s);
    j["kit_list"] = kits;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  print(*s);
  for (const auto& k : kits) {
    std::cout << "  kit " << k["kit"].get<std::string>() << "  " << k["status"].get<std::string>();
    if (k.contains("kit_type"))
      std::cout << "  [" << k["kit_type"].get<std::string>() << ", lot " << k["lot"].get<std::string>() << ", expiry "
                << k["expiry"].get<std::string>() << "]";
    std::cout << "\n";
  }
  for (const auto& e : audit_entries(hub->db(), {std::nullopt, "", s->shipment_id}))
    std::cout << "  " << utc_text(e.at_ms) << "  " << e.action << " by " << e.actor << ": " << e.new_value << "\n";
  return 0;
}

int step_cmd(const Args& a, ShipmentStep step) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  ShipmentStepRequest request{step, a.get_or("reason", ""), a.get_or("courier", ""), a.get_or("tracking", "")};
  Signature who{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature): ")};
  auto done = step_shipment(*hub, a.get("shipment"), request, who, sync::system_millis());
  crypto::secure_zero(who.password.data(), who.password.size());
  if (!done) return report(a, done.error());
  std::cout << done->shipment.shipment_id << " " << done->shipment.status << ", signed by " << done->signed_by;
  if (done->kits) std::cout << "; " << done->kits << " kits moved";
  if (done->directive_seq)
    std::cout << "; shipment directive #" << *done->directive_seq << " to node " << done->shipment.node_id;
  std::cout << "\n";
  return 0;
}

// Kit numbers from every --kit and each comma-separated --kits.
std::vector<std::string> kit_numbers(const Args& a) {
  std::vector<std::string> out = a.all("kit");
  for (const auto& list : a.all("kits")) {
    std::size_t start = 0;
    while (start <= list.size()) {
      auto end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      if (end > start) out.push_back(list.substr(start, end - start));
      start = end + 1;
    }
  }
  return out;
}

int transfer_cmd(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  TransferRequest request{a.get("from-depot"), a.get("to-depot"), kit_numbers(a), a.get_or("kit-type", ""), 0,
                          a.get_or("reason", "")};
  if (auto n = a.find("count")) {
    try {
      request.count = std::stoi(*n);
    } catch (const std::exception&) {
      request.count = -1;
    }
  }
  Signature who{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature): ")};
  auto done = request_transfer(*hub, request, who, sync::system_millis());
  crypto::secure_zero(who.password.data(), who.password.size());
  if (!done) return report(a, done.error());
  std::cout << done->shipment_id << " " << done->status << ": " << done->kits << " kits reserved at depot "
            << done->depot_id << " for depot " << done->to_depot << "; ship it with 'irt-hub shipment ship'\n";
  return 0;
}

int receive_cmd(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  std::vector<DepotReceipt> kits;
  for (const auto& item : kit_numbers(a)) {
    auto colon = item.find(':');
    DepotReceipt r{item.substr(0, colon), shared::KitStatus::received};
    if (colon != std::string::npos) {
      auto condition = shared::parse_kit_status(item.substr(colon + 1));
      if (!condition || (*condition != shared::KitStatus::received && *condition != shared::KitStatus::damaged &&
                         *condition != shared::KitStatus::missing))
        return report(a, shared::Error{shared::Errc::invalid_input,
                                       "--kit " + item + ": the condition is received, damaged or missing"});
      r.condition = *condition;
    }
    kits.push_back(std::move(r));
  }
  Signature who{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature): ")};
  auto done = receive_at_depot(*hub, a.get("shipment"), kits, a.get_or("reason", ""), who, sync::system_millis());
  crypto::secure_zero(who.password.data(), who.password.size());
  if (!done) return report(a, done.error());
  std::cout << done->shipment.shipment_id << " " << done->shipment.status << " at depot " << done->shipment.to_depot
            << ": " << done->kits << " kits reported, signed by " << done->signed_by << "\n";
  return 0;
}

}  // namespace

std::vector<Command> shipment_commands() {
  const Option reader = reader_option(shared::Permission::view_inventory);
  const Option id{"shipment", "ID", "the shipment (SHP-...)", true};
  const Option signer{"user", "NAME", "the hub user signing (manage_supply; for ship, deliver, lose, cancel also a "
                                      "user of the acting depot, manage_depot); the password is the first line of "
                                      "standard input", true};
  Command c{.name = "shipment",
            .summary = "Shipments from depots to sites, between depots and from sites back to depots: list, show, "
                       "transfer, and the signed steps approve, ship, deliver, lose, cancel, receive (at a depot)"};
  c.subcommands.push_back({.name = "list",
                           .summary = "List the shipments with their state (requested, approved, shipped, delivered, "
                                      "receiving, closed, lost, cancelled)",
                           .options = {kData, kDb, kPassphraseFile, {"status", "S", "only shipments in this state", false}, kJson,
                                       reader},
                           .run = list_cmd});
  c.subcommands.push_back({.name = "show",
                           .summary = "One shipment: its kits and every step it took",
                           .options = {kData, kDb, kPassphraseFile, id, kJson, reader},
                           .run = show_cmd});
  const Option reason{"reason", "TEXT", "why, for the audit trail", false};
  const Option needed_reason{"reason", "TEXT", "why, for the audit trail", true};
  c.subcommands.push_back({.name = "approve",
                           .summary = "Approve a requested shipment (signed, approved)",
                           .options = {kData, kDb, kPassphraseFile, id, reason, signer},
                           .run = [](const Args& a) { return step_cmd(a, ShipmentStep::approve); }});
  c.subcommands.push_back(
      {.name = "ship",
       .summary = "The depot hands an approved shipment to a courier (signed): its kits leave the depot and the node "
                  "is told at its next sync",
       .options = {kData, kDb, kPassphraseFile, id, {"courier", "NAME", "the courier", true},
                   {"tracking", "NUMBER", "the courier's tracking number", true}, reason, signer},
       .run = [](const Args& a) { return step_cmd(a, ShipmentStep::ship); }});
  c.subcommands.push_back({.name = "deliver",
                           .summary = "Record that a shipped shipment was delivered to the site (signed)",
                           .options = {kData, kDb, kPassphraseFile, id, reason, signer},
                           .run = [](const Args& a) { return step_cmd(a, ShipmentStep::deliver); }});
  c.subcommands.push_back({.name = "lose",
                           .summary = "Declare a shipment lost (signed): its kits the node has not reported become "
                                      "missing",
                           .options = {kData, kDb, kPassphraseFile, id, needed_reason, signer},
                           .run = [](const Args& a) { return step_cmd(a, ShipmentStep::lose); }});
  c.subcommands.push_back({.name = "cancel",
                           .summary = "Cancel a shipment before it ships (signed): its kits are available at the "
                                      "depot again",
                           .options = {kData, kDb, kPassphraseFile, id, needed_reason, signer},
                           .run = [](const Args& a) { return step_cmd(a, ShipmentStep::cancel); }});
  const Option kit{"kit", "K", "a kit number (repeat the option for more)", false};
  const Option kits{"kits", "K1,K2", "kit numbers, comma-separated", false};
  const Option depot_signer{"user", "NAME", "the hub user signing: a user of the depot (manage_depot) or a supply "
                                            "manager (manage_supply); the password is the first line of standard "
                                            "input", true};
  c.subcommands.push_back(
      {.name = "transfer",
       .summary = "Request a transfer from one depot to another (signed by the sending depot): the kits are reserved "
                  "at it, then approved if the study says so, shipped and received at the other depot",
       .options = {kData, kDb, kPassphraseFile, {"from-depot", "A", "the depot sending the kits", true},
                   {"to-depot", "B", "the depot receiving them", true}, kit, kits,
                   {"kit-type", "T", "or: the earliest-expiring kits of this type (unblinded users only)", false},
                   {"count", "N", "with --kit-type: how many", false}, reason, depot_signer},
       .run = transfer_cmd});
  c.subcommands.push_back(
      {.name = "receive",
       .summary = "The receiving depot reports kits of a transfer or return shipment (signed): K or K:received, "
                  "K:damaged (with --reason), K:missing; closed once every kit is reported",
       .options = {kData, kDb, kPassphraseFile, id, {"kit", "K[:CONDITION]", "a kit and how it arrived (repeat the option)", false},
                   {"kits", "K1,K2:missing", "kits and conditions, comma-separated", false}, reason, depot_signer},
       .run = receive_cmd});
  return {std::move(c)};
}

}  // namespace irt::hub
