// The irt-hub command line, one function per group of subcommands, each in the
// file that owns that area (study_commands.cpp, ...). main.cpp assembles them.
#pragma once

#include <string>
#include <vector>

#include "shared/command_line.h"

namespace irt::hub {

std::vector<shared::Command> study_commands();          // check-study, diff-study, amend, study-versions
std::vector<shared::Command> randomization_commands();  // randlist, simulate
std::vector<shared::Command> node_commands();  // init, invite, fingerprint, user, serve, revoke, unfreeze, verify, nodes, audit, alerts

// One line of standard input without its line end (a password for an
// e-signature); on a terminal, prompted on standard error and not echoed.
std::string read_secret_line(const std::string& prompt);

}  // namespace irt::hub
