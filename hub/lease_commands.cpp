// irt-hub lease shorten: the bound on every node's randomization lease
// (hub/leases.h, docs/randomization.md "The lease").
#include <iostream>

#include "crypto/bytes.h"
#include "hub/audit.h"
#include "hub/commands.h"
#include "hub/leases.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::Args;

int shorten(const Args& a) {
  auto until = shared::parse_utc(a.get("until"));
  if (!until) {
    std::cerr << a.command_path() << ": --until " << a.get("until")
              << " is not a time; write it as YYYY-MM-DDTHH:MM:SSZ (UTC) or YYYY-MM-DD\n";
    return 2;
  }
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  Signature signer{a.get("user"),
                   read_secret_line("password of hub user " + a.get("user") + " (signature, approved): ")};
  auto done = shorten_leases(*hub, *until, a.get("reason"), signer, sync::system_millis());
  crypto::secure_zero(signer.password.data(), signer.password.size());
  if (!done) return report(a, done.error());
  std::cout << "every randomization lease now ends by " << utc_text(done->until_ms) << "; "
            << done->nodes.size() << " node(s) given a shorter lease, which each takes at its next sync";
  for (std::size_t i = 0; i < done->nodes.size(); ++i) std::cout << (i ? ", " : ": ") << done->nodes[i];
  std::cout << "\nsigned by " << signer.user << " (approved)\n";
  return 0;
}

}  // namespace

std::vector<shared::Command> lease_commands() {
  shared::Command shorten_cmd{
      .name = "shorten",
      .summary = "Make every node's randomization lease end by a time (signed, manage_study): nodes that sync "
                 "take it at once, and leases granted until then end then",
      .options = {kData, kDb, kPassphraseFile,
                  {"until", "TIME", "the latest end of every lease, YYYY-MM-DDTHH:MM:SSZ (UTC)", true},
                  {"reason", "TEXT", "why, for the audit trail (an urgent design change)", true},
                  {"user", "NAME",
                   "the hub user signing the decision (manage_study); the password is the first line of standard "
                   "input",
                   true}},
      .run = shorten};
  return {{.name = "lease",
           .summary = "Randomization leases: how long a node may randomize without syncing",
           .subcommands = {std::move(shorten_cmd)}}};
}

}  // namespace irt::hub
