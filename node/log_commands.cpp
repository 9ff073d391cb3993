#include "node/commands.h"

namespace irt::node {

std::vector<shared::Command> log_commands() { return {}; }

}  // namespace irt::node
