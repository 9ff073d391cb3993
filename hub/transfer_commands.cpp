// The irt-hub commands for participant transfers between sites
// (hub/transfers.h): list the requests the nodes sent, approve or reject one.
// Decisions take --user NAME (manage_study) and the password as the first line
// of standard input; the list takes --reader (view_participants) the same way.
#include <iostream>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "hub/audit.h"
#include "hub/commands.h"
#include "hub/transfers.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::Args;
using shared::Command;
using shared::Option;

int transfer_list(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  if (!command_line_user(a, *hub, "reader", shared::Permission::view_participants, rc)) return rc;
  auto all = transfers(hub->db(), a.get_or("status", ""));
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : all) out.push_back(to_json(t));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (all.empty()) {
    std::cout << "no participant transfer was requested\n";
    return 0;
  }
  for (const auto& t : all) {
    std::cout << "participant " << t.participant << ": site " << t.from_site << " (node " << t.from_node
              << ") -> site " << t.to_site << ", requested by " << t.requested_by << " at " << utc_text(t.requested_ms)
              << ": " << t.reason << "\n  " << t.status;
    if (t.status != "requested")
      std::cout << " by " << t.decided_by << " at " << utc_text(t.decided_ms) << ": " << t.decision_reason;
    if (t.status == "approved") std::cout << "; now at node " << t.to_node << ", " << t.kits << " dispensed kits moved";
    std::cout << "\n";
  }
  return 0;
}

int transfer_decide(const Args& a, bool approve) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  Signature who{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature, approved): ")};
  auto done = decide_transfer(*hub, a.get("participant"), approve, a.get("reason"), who, sync::system_millis());
  crypto::secure_zero(who.password.data(), who.password.size());
  if (!done) return report(a, done.error());
  const auto& t = done->transfer;
  std::cout << "transfer of participant " << t.participant << " to site " << t.to_site << " " << t.status
            << ", signed by " << t.decided_by;
  if (approve) std::cout << "; node " << t.to_node << " serves it from its next sync, " << t.kits << " dispensed kits moved";
  for (const auto& [node, seq] : done->directives) std::cout << "; directive #" << seq << " to node " << node;
  std::cout << "\n";
  return 0;
}

// The lost tablet: every participant of a revoked node to its replacement.
int transfer_rehome(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  Signature who{a.get("user"), read_secret_line("password of hub user " + a.get("user") + " (signature, approved): ")};
  auto done = rehome_participants(*hub, a.get("from"), a.get("to"), a.get("reason"), who, sync::system_millis());
  crypto::secure_zero(who.password.data(), who.password.size());
  if (!done) return report(a, done.error());
  std::cout << done->moved.size() << " participants of node " << a.get("from") << " re-homed to node " << a.get("to")
            << ", signed by " << who.user << "; it serves them from its next sync\n";
  for (const auto& t : done->moved)
    std::cout << "  participant " << t.participant << ": " << t.kits << " dispensed kits moved\n";
  return 0;
}

}  // namespace

std::vector<Command> transfer_commands() {
  const Option participant{"participant", "P", "the participant number whose pending request is decided", true};
  const Option reason{"reason", "TEXT", "why, for the audit trail and the site", true};
  const Option signer{"user", "NAME", "the hub user signing (manage_study); the password is the first line of "
                                      "standard input", true};
  const Option status{"status", "S", "only requests in this status: requested, approved or rejected", false};
  Command t{.name = "transfer",
            .summary = "Participant transfers between sites: list the requests; approve or reject one (signed)",
            .options = {kData, kDb, kPassphraseFile, kJson, status, reader_option(shared::Permission::view_participants)},
            .run = transfer_list};
  t.subcommands.push_back({.name = "list",
                           .summary = "List the transfer requests the nodes sent, with their decisions",
                           .options = {kData, kDb, kPassphraseFile, kJson, status, reader_option(shared::Permission::view_participants)},
                           .run = transfer_list});
  t.subcommands.push_back({.name = "approve",
                           .summary = "Approve a participant's transfer (signed, approved): its record, visits and "
                                      "dispensed kits move by directives to the target site's node",
                           .options = {kData, kDb, kPassphraseFile, participant, reason, signer},
                           .run = [](const Args& a) { return transfer_decide(a, true); }});
  t.subcommands.push_back({.name = "reject",
                           .summary = "Reject a participant's transfer (signed, approved): it stays at its site, "
                                      "whose node shows the decision",
                           .options = {kData, kDb, kPassphraseFile, participant, reason, signer},
                           .run = [](const Args& a) { return transfer_decide(a, false); }});
  t.subcommands.push_back(
      {.name = "rehome",
       .summary = "Move every participant of a revoked node (a lost tablet) to a replacement node of the same site "
                  "(signed, approved): their records, visits and dispensed kits, as an approved transfer",
       .options = {kData, kDb, kPassphraseFile, {"from", "NODE", "the revoked node", true},
                   {"to", "NODE", "the replacement: an active site node of the same site", true}, reason, signer},
       .run = transfer_rehome});
  return {t};
}

}  // namespace irt::hub
