#include "hub/commands.h"

namespace irt::hub {

std::vector<shared::Command> randomization_commands() { return {}; }

}  // namespace irt::hub
