// The irt-hub commands for decisions about kits and drug accountability:
// quarantine (list, hold, release, reject), kits destroy (at a depot) and reconcile
// (hub/kit_decisions.h, hub/reconcile.h). Signed commands take --user NAME
// and the password as the first line of standard input (a witness's as the
// second line); reads take --reader with view_inventory the same way.
#include <iostream>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "hub/audit.h"
#include "hub/commands.h"
#include "hub/depot_shipments.h"
#include "hub/hub_state.h"
#include "hub/kit_decisions.h"
#include "hub/reconcile.h"
#include "hub/users.h"
#include "sync/hlc.h"
#include "shared/text.h"

namespace irt::hub {

namespace {

using shared::Args;
using shared::Command;
using shared::Option;

struct Signed {
  Signature who;
  ~Signed() { crypto::secure_zero(who.password.data(), who.password.size()); }
};

std::string reading(const std::optional<double>& v) {
  if (!v) return "?";
  auto text = std::to_string(*v);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

int quarantine_list(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto reader = command_line_user(a, *hub, "reader", shared::Permission::view_inventory, rc);
  if (!reader) return rc;
  const bool unblinded = !reads_blinded(hub->study(), hub->study().find_role(reader->role));
  auto kits = quarantined_kits(*hub, unblinded);
  // A depot user sees its own depots' kits only.
  const auto depots = depots_seen_by(*hub, *reader);
  std::erase_if(kits, [&](const QuarantinedKit& k) { return !custodian_seen(depots, k.custody_kind, k.custody_id); });
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& k : kits) out.push_back(to_json(k));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (kits.empty()) {
    std::cout << "no kit is quarantined\n";
    return 0;
  }
  std::string custodian;
  for (const auto& k : kits) {
    auto here = k.custody_kind + " " + k.custody_id + (k.site_id.empty() ? "" : " (site " + k.site_id + ")");
    if (here != custodian) std::cout << (custodian = here) << "\n";
    std::cout << "  kit " << k.kit << (k.kit_type.empty() ? "" : " [" + k.kit_type + "]") << " expiry " << k.expiry;
    if (k.hold) std::cout << ": on hold: " << k.report.reason << " (hold decision " << k.hold << ")";
    if (k.seq) {
      std::cout << ": " << k.report.reason;
      if (!k.report.location.empty()) std::cout << " at " << k.report.location;
      std::cout << " (min " << reading(k.report.minimum_celsius) << " C, max " << reading(k.report.maximum_celsius)
                << " C";
      if (k.report.duration_minutes) std::cout << ", " << *k.report.duration_minutes << " min";
      std::cout << "; reported " << utc_text(k.reported_ms) << ", event " << k.seq << ")";
    }
    std::cout << "\n";
  }
  return 0;
}

int quarantine_decide(const Args& a, bool release) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  Signed signer{{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature, approved): ")}};
  auto done = decide_kits(*hub, release, a.all("kit"), a.get("reason"), signer.who, sync::system_millis());
  if (!done) return report(a, done.error());
  std::cout << (release ? "released" : "rejected") << " " << done->kits.size()
            << (done->kits.size() == 1 ? " kit" : " kits") << " (" << shared::join(done->kits, " ") << "), decision "
            << done->decision_id << ", approved by " << done->signed_by;
  for (const auto& [node, seq] : done->directives)
    std::cout << "; " << (release ? "kits.release" : "kits.reject") << " #" << seq << " to node " << node;
  std::cout << "\n";
  return 0;
}

int quarantine_hold(const Args& a) {
  if (a.find("lot").has_value() == a.find("kit").has_value() || (a.find("site") && !a.find("lot"))) {
    std::cerr << a.command_path() << ": give --lot L (with --site S to hold it at one site only) or --kit K, not both\n";
    return 2;
  }
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  Signed signer{{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature, approved): ")}};
  HoldRequest request{a.get_or("lot", ""), a.get_or("site", ""), a.all("kit")};
  auto done = hold_kits(*hub, request, a.get("reason"), signer.who, sync::system_millis());
  if (!done) return report(a, done.error());
  std::cout << "held " << done->kits.size() << (done->kits.size() == 1 ? " kit" : " kits")
            << (request.lot.empty() ? "" : " of lot " + request.lot) << " (" << shared::join(done->kits, " ")
            << "), quarantined until released or rejected, decision " << done->decision_id << ", approved by "
            << done->signed_by;
  for (const auto& [node, seq] : done->directives) std::cout << "; kits.quarantine #" << seq << " to node " << node;
  std::cout << "\n";
  for (const auto& [status, n] : done->left_alone) std::cout << "left alone: " << n << " " << status << "\n";
  return 0;
}

int kits_destroy(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  Signed person{{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature, performed): ")}};
  Signed witness{
      {a.get("witness"), read_secret_line("password of hub user " + a.get("witness") + " (signature, witnessed): ")}};
  auto done = destroy_depot_kits(*hub, a.get("depot"), a.all("kit"), a.get("reason"), person.who, witness.who,
                                 sync::system_millis());
  if (!done) return report(a, done.error());
  std::cout << "destroyed " << done->kits.size() << (done->kits.size() == 1 ? " kit" : " kits") << " at depot "
            << a.get("depot") << " (" << shared::join(done->kits, " ") << "), decision " << done->decision_id << ", by "
            << done->signed_by << ", witnessed by " << a.get("witness") << "\n";
  return 0;
}

int reconcile_cmd(const Args& a) {
  if (a.find("site") && a.find("depot")) {
    std::cerr << a.command_path() << ": give --site or --depot, not both\n";
    return 2;
  }
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  auto reader = command_line_user(a, *hub, "reader", shared::Permission::view_inventory, rc);
  if (!reader) return rc;
  const bool unblinded = !reads_blinded(hub->study(), hub->study().find_role(reader->role));
  auto all = reconcile(*hub, a.get_or("site", ""), a.get_or("depot", ""), unblinded);
  if (!all) return report(a, all.error());
  // A depot user accounts for its own depots only.
  const auto depots = depots_seen_by(*hub, *reader);
  std::erase_if(*all, [&](const Reconciliation& r) { return !custodian_seen(depots, r.kind, r.id); });
  bool balanced = true;
  for (const auto& r : *all) balanced = balanced && r.balanced();
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *all) out.push_back(to_json(r));
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& r : *all) {
      std::cout << r.kind << " " << r.id << ": " << (r.kind == "site" ? "shipped " : "placed ") << r.received << " =";
      bool first = true;
      for (const auto& [column, n] : r.accounted) {
        std::cout << (first ? " " : " + ") << column << " " << n;
        first = false;
      }
      if (first) std::cout << " 0";
      std::cout << (r.balanced() ? "  [balanced]" : "  [UNBALANCED: " + std::to_string(r.differences.size()) +
                                                         (r.differences.size() == 1 ? " difference]" : " differences]"))
                << "\n";
      for (const auto& d : r.differences) std::cout << "  difference: " << d << "\n";
    }
  }
  // Exit 1 when anything is unaccounted for, so a scheduled run or a site
  // close-out script notices without reading the text.
  return balanced ? 0 : 1;
}

}  // namespace

std::vector<Command> kit_decision_commands() {
  std::vector<Command> out;
  // A reader whose role reads the allocation also sees kit types.
  const Option reader = reader_option(shared::Permission::view_inventory);
  const Option signer{"user", "NAME", "the hub user signing (release_quarantine); the password is the first line of "
                                      "standard input", true};
  const Option kits{"kit", "K", "a kit number; repeat --kit for several kits", true};
  const Option reason{"reason", "TEXT", "why, for the audit trail and the site", true};
  Command q{.name = "quarantine",
            .summary = "Kits quarantined at nodes (excursion readings) and at depots; hold a lot, release or reject "
                       "kits (signed)",
            .options = {kData, kDb, kPassphraseFile, kJson, reader},
            .run = quarantine_list};
  q.subcommands.push_back({.name = "list",
                           .summary = "List the quarantined kits per node, with the excursion readings",
                           .options = {kData, kDb, kPassphraseFile, kJson, reader},
                           .run = quarantine_list});
  q.subcommands.push_back({.name = "release",
                           .summary = "Release quarantined kits (signed, approved): usable again; a kits.release "
                                      "directive reaches their node at its next sync",
                           .options = {kData, kDb, kPassphraseFile, kits, reason, signer},
                           .run = [](const Args& a) { return quarantine_decide(a, true); }});
  q.subcommands.push_back({.name = "reject",
                           .summary = "Reject kits quarantined or in stock (signed, approved): never dispensed again, "
                                      "only returned or destroyed; a kits.reject directive reaches their node",
                           .options = {kData, kDb, kPassphraseFile, kits, reason, signer},
                           .run = [](const Args& a) { return quarantine_decide(a, false); }});
  q.subcommands.push_back(
      {.name = "hold",
       .summary = "Put a lot (at every node and depot, or at one site) or kits on hold (signed, approved): each kit in "
                  "stock becomes quarantined, not dispensed or shipped until released or rejected; a kits.quarantine "
                  "directive reaches each node holding some",
       .options = {kData, kDb, kPassphraseFile, {"lot", "L", "the lot to hold", false},
                   {"site", "S", "hold the lot at this site's nodes only", false},
                   {"kit", "K", "a kit number instead of a lot; repeat --kit for several kits", false}, reason, signer},
       .run = quarantine_hold});
  out.push_back(std::move(q));
  Command k{.name = "kits", .summary = "destroy kits at a depot (signed, with a witness)"};
  k.subcommands.push_back(
      {.name = "destroy",
       .summary = "Destroy rejected, quarantined or stock kits at a depot, signed by the person (destroy_kits) and a "
                  "witness (destroy_kits or manage_supply): passwords on the first and second lines of standard input",
       .options = {kData, kDb, kPassphraseFile, {"depot", "D", "the depot holding the kits", true}, kits, reason,
                   {"user", "NAME", "the hub user destroying the kits (destroy_kits)", true},
                   {"witness", "NAME", "another hub user witnessing (destroy_kits or manage_supply)", true}},
       .run = kits_destroy});
  out.push_back(std::move(k));
  out.push_back({.name = "reconcile",
                 .summary = "Drug accountability per site and depot, kit by kit: shipped = dispensed + returned + "
                            "destroyed + on hand + missing + damaged + ...; exits 1 when anything is unaccounted for",
                 .options = {kData, kDb, kPassphraseFile, {"site", "S", "only this site", false}, {"depot", "D", "only this depot", false},
                             kJson, reader},
                 .run = reconcile_cmd});
  return out;
}

}  // namespace irt::hub
