// The irt-hub command line, one function per group of subcommands, each in the
// file that owns that area (study_commands.cpp, ...). main.cpp assembles them.
#pragma once

#include <vector>

#include "shared/command_line.h"

namespace irt::hub {

std::vector<shared::Command> study_commands();          // check-study, diff-study
std::vector<shared::Command> randomization_commands();  // randlist, simulate
std::vector<shared::Command> node_commands();  // init, invite, fingerprint, user, serve, revoke, unfreeze, verify, nodes, audit, alerts

}  // namespace irt::hub
