#include <sodium.h>

#include <iostream>

#include "hub/commands.h"

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::cerr << "irt-hub: libsodium failed to initialise; the system's random source is unavailable\n";
    return 1;
  }
  irt::shared::Command root;
  root.name = "irt-hub";
  root.summary = "The central hub of the offline-first IRT: study setup, node enrollment, sync, ledger.";
  for (auto& c : irt::hub::study_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::randomization_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::node_commands()) root.subcommands.push_back(std::move(c));
  for (auto& c : irt::hub::kit_decision_commands()) root.subcommands.push_back(std::move(c));
  return irt::shared::run_commands(root, argc, argv);
}
