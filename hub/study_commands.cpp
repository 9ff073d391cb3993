#include "hub/commands.h"

namespace irt::hub {

std::vector<shared::Command> study_commands() { return {}; }

}  // namespace irt::hub
