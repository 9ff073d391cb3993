// irt-hub cohort list|open|close: cohorts opened and closed by a signed
// decision of the study team (hub/cohort_decisions.h, docs/randomization.md
// "Cohorts opened by decision"). Decisions take --user NAME and the password
// as the first line of standard input; the list takes --reader the same way.
#include <iostream>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "hub/audit.h"
#include "hub/cohort_decisions.h"
#include "hub/commands.h"
#include "sync/hlc.h"

namespace irt::hub {

namespace {

using shared::Args;

int cohort_list_command(const Args& a) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  if (!command_line_user(a, *hub, "reader", shared::Permission::view_participants, rc)) return rc;
  const auto all = cohort_standing(*hub);
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : all) out.push_back(to_json(c));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (all.empty()) {
    std::cout << "the study defines no cohorts\n";
    return 0;
  }
  for (const auto& c : all) {
    std::cout << c.id << " (" << c.name << "): " << to_string(c.state);
    if (c.opened_ms) std::cout << ", opened " << utc_text(c.opened_ms) << " by " << c.opened_by;
    if (c.closed_ms) std::cout << ", closed " << utc_text(c.closed_ms) << " by " << c.closed_by;
    if (c.opens_by_decision && !c.opened_ms)
      std::cout << (c.after.empty() ? ", opens by decision" : ", opens by decision after cohort " + c.after + " closes");
    std::cout << "; " << c.screened << " screened, " << c.randomized << " randomized";
    if (c.limit) std::cout << " of a cap of " << *c.limit << ", " << c.outstanding << " place(s) held by nodes";
    std::cout << "\n";
  }
  return 0;
}

int cohort_decide_command(const Args& a, bool open) {
  int rc = 0;
  auto hub = open_hub(a, rc);
  if (!hub) return rc;
  Signature signer{a.get("user"),
                   read_secret_line("password of hub user " + a.get("user") + " (signature, approved): ")};
  auto done = decide_cohort(*hub, a.get("cohort"), open, a.get("reason"), signer, sync::system_millis());
  crypto::secure_zero(signer.password.data(), signer.password.size());
  if (!done) return report(a, done.error());
  std::cout << "cohort " << done->cohort << " " << (open ? "opened" : "closed") << " (decision " << done->decision_id
            << ", approved by " << done->signed_by << ")";
  if (open)
    std::cout << "; nodes receive places in it at their next sync\n";
  else
    std::cout << "; " << done->places_voided << " unused place(s) voided at " << done->directives.size()
              << " node(s), which stop screening into it at their next sync\n";
  return 0;
}

}  // namespace

std::vector<shared::Command> cohort_commands() {
  const shared::Option cohort{"cohort", "ID", "the cohort (its id in the study)", true};
  const shared::Option reason{"reason", "TEXT", "why, for the audit trail (the safety review)", true};
  const shared::Option signer{
      "user", "NAME", "the hub user signing the decision (manage_study); the password is the first line of standard input",
      true};
  shared::Command group{.name = "cohort",
                        .summary = "Cohorts: their state and counts, and the signed decisions that open and close a "
                                   "cohort that opens by decision"};
  group.subcommands.push_back({.name = "list",
                               .summary = "Each cohort's state (not_opened, open, closed), who decided and when, and "
                                          "its counts",
                               .options = {kData, kDb, kPassphraseFile, kJson,
                                           reader_option(shared::Permission::view_participants)},
                               .run = cohort_list_command});
  group.subcommands.push_back({.name = "open",
                               .summary = "Open a cohort that opens by decision (signed, approved): nodes are granted "
                                          "places under its cap at their next sync",
                               .options = {kData, kDb, kPassphraseFile, cohort, reason, signer},
                               .run = [](const Args& a) { return cohort_decide_command(a, true); }});
  group.subcommands.push_back({.name = "close",
                               .summary = "Close an open cohort (signed, approved): every node's unused places are "
                                          "voided; a node stops screening into it at its next sync",
                               .options = {kData, kDb, kPassphraseFile, cohort, reason, signer},
                               .run = [](const Args& a) { return cohort_decide_command(a, false); }});
  return {std::move(group)};
}

}  // namespace irt::hub
