// The irt-node command line, one function per group of subcommands, each in the
// file that owns that area. main.cpp assembles them.
#pragma once

#include <vector>

#include "shared/command_line.h"

namespace irt::node {

std::vector<shared::Command> node_commands();  // enroll, note, verify, sync, serve, status

}  // namespace irt::node
