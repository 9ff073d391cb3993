// The irt-hub command line, one function per group of subcommands, each in the
// file that owns that area (study_commands.cpp, ...). main.cpp assembles them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hub/hub_state.h"
#include "hub/users.h"
#include "shared/command_line.h"

namespace irt::hub {

std::vector<shared::Command> study_commands();          // check-study, diff-study, amend, study-versions
std::vector<shared::Command> randomization_commands();  // randlist, simulate
std::vector<shared::Command> supply_commands();  // lot, kits, kit history, site activate
std::vector<shared::Command> node_commands();  // init, invite, fingerprint, user, serve, revoke, unfreeze, verify, nodes, audit, alerts
std::vector<shared::Command> kit_decision_commands();  // quarantine, kits destroy, reconcile: hub/kit_commands.cpp

shared::Command simulate_supply_command();              // simulate supply (under randomization_commands' simulate)

// One line of standard input without its line end (a password for an
// e-signature); on a terminal, prompted on standard error and not echoed.
std::string read_secret_line(const std::string& prompt);

// The hub user acting at the command line: named by `option` (--user for a
// decision, --reader for a read), the password the first line of standard
// input, an enabled user whose role holds `needed`. On refusal, prints why
// and sets `exit_code`. The operating-system account running a command is
// never an identity in the audit trail.
std::optional<User> command_line_user(const shared::Args& a, HubState& hub, const std::string& option,
                                      shared::Permission needed, int& exit_code);

// The --reader option of a read command: who reads, holding `needed`.
shared::Option reader_option(shared::Permission needed);

}  // namespace irt::hub
